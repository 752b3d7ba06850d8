"""CPU per call: the real service (`ivr serve`) against a minimal FastAGI server, on the simulated Asterisk.

Separate processes, so each CPU figure is one process's own:
- two simulated Asterisks (`--role sim`, real clock), one per server, alike: each originates its calls as AMI
  `Originate Local/bench@ivr-bench` does (the ;2 half runs `AGI(agi://...)`, un-answered until the flow answers),
  with the per-call AMI event stream of a real Asterisk 22 (tests/sim/test_event_counts.py); the service's one
  also serves it AMI;
- the service, `python main.py serve` with a bench flow (ANSWER, 7 channel variables set, HANGUP: the 9 AGI
  commands of the call of measurements.md), AMI on (call registry, queue statistics, metrics) or off
  (`IVR_AMI_ENABLED=false`);
- a minimal asyncio FastAGI server (`--role minimal`) sending exactly the commands the service sent (taken from
  the simulator's transcript of the service's first call), reading each reply.

The flow-file watcher and the callback scheduler are off (settings `reload.watch`, `callbacks.enabled`): they
cost CPU per second, not per call.

Measuring CPU on a shared 2-core machine: each figure is the process's own CPU clock (clock_getcpuclockid, in
nanoseconds, all threads; /proc/<pid>/stat ticks of 10 ms where that is missing) over a batch of 2,000 calls
after a warm-up batch, so the clock's resolution and the start-up are out of it. The service and the minimal
server run side by side: both simulators get their batch at the same moment and the clocks are read around
both, so whatever else the machine does falls on both alike and the ratio of a round compares like with like.
Each round runs AMI on and AMI off (each beside a fresh minimal server), in an order that turns each round.
The summary gives each server's median and range over the rounds and the median and range of the per-round
ratios; per round it also prints the user/system split and the sleeps and preemptions per call.

Prints CPU ms per call of each, the ratio service/minimal, the AMI share (AMI on - AMI off), the AMI events and
bytes per call the service's session received (reference: measurements.md), and the simulators' own CPU.

    .venv/bin/python bench/call_cpu.py              # 2,000 calls, 50 in flight, 5 rounds
    .venv/bin/python bench/call_cpu.py --quick      # 300 calls, 2 rounds
    .venv/bin/python bench/call_cpu.py --tree ../old-checkout   # another checkout's service (before/after)
    CALL_CPU_PROFILE=/tmp/ivr.prof .venv/bin/python bench/call_cpu.py --rounds 1   # the service under cProfile
    .venv/bin/python bench/call_cpu.py --rounds 1 --py-spy /tmp/ivr.txt   # py-spy samples of the AMI-on service
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEASUREMENTS = ROOT / "tests" / "data" / "asterisk" / "measurements.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DID = "bench"
CONTEXT = "ivr-bench"

FLOW = """\
name: bench
description: The call of measurements.md - answer, seven channel variables, hang up
language: en
languages: [en]
timezone: Europe/Vilnius
answer: true
start: mark
nodes:
  mark:
    type: set
    channel: true
    variables: {BENCH_A: "1", BENCH_B: "2", BENCH_C: "3", BENCH_D: "4", BENCH_E: "5", BENCH_F: "6", BENCH_G: "7"}
    next: bye
  bye:
    type: hangup
"""


def reference_counts(path: Path = MEASUREMENTS) -> tuple[dict[str, int], int]:
    """The per-call AMI event counts of measurements.md ("| VarSet | 12 (...) |", "| Newchannel, Newstate | 2 each |")
    and its total row ("| total | 39 events, ... |")."""
    text = path.read_text(encoding="utf-8")
    section = text.split("## AMI traffic of one short call", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, int] = {}
    total = 0
    for names, value in re.findall(r"^\| ([A-Za-z, ]+) \| (\d+)[^|]*\|$", section, re.M):
        if names.strip() == "total":
            total = int(value)
            continue
        for name in names.split(","):
            rows[name.strip()] = int(value)
    return rows, total


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children: none here) from /proc, in 10 ms ticks."""
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process from /proc/<pid>/stat (10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


class CPUClock:
    """Another process's CPU time in nanoseconds: its POSIX CPU-time clock (clock_getcpuclockid(3), all threads),
    read with time.clock_gettime_ns. Falls back to /proc ticks (10 ms) where the C library does not offer it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.clock_id: int | None = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            clock_id = ctypes.c_int()
            if libc.clock_getcpuclockid(pid, ctypes.byref(clock_id)) == 0:
                time.clock_gettime_ns(clock_id.value)  # readable (same user, process alive)
                self.clock_id = clock_id.value
        except (AttributeError, OSError):
            self.clock_id = None

    def seconds(self) -> float:
        if self.clock_id is not None:
            return time.clock_gettime_ns(self.clock_id) / 1e9
        return cpu_seconds(self.pid)

    def split(self) -> tuple[float, float]:
        return cpu_split(self.pid)

    def switches(self) -> tuple[int, int]:
        """(voluntary, involuntary) context switches so far: the waits that slept, the times it was preempted."""
        counts = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.endswith("ctxt_switches:", 0, line.find(":") + 1):
                    name, value = line.split(":")
                    counts[name] = int(value)
        return counts.get("voluntary_ctxt_switches", 0), counts.get("nonvoluntary_ctxt_switches", 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the simulated Asterisk (its own process) -----------------------------------------------------------------


async def sim_main() -> None:
    from ivr.sim import RealClock, Route, SimConfig, SimulatedAsterisk
    from ivr.sim.ami_filter import event_classes, load_manager_conf

    # [ivr-enter]'s Set() priorities before the AGI (one Newexten and one VarSet each, as on a real Asterisk)
    preset = {"IVR_STATUS": "", "IVR_TRANSFERRED": "", "IVR_FLOW": "bench"}
    users = load_manager_conf(ROOT / "dialplans" / "manager_ivr.conf", secrets={"ivr": "ivrsecret"})
    config = SimConfig(
        routes={
            DID: Route(flow="bench", context=CONTEXT, preset=preset),
            "hold": Route(flow="hold", context=CONTEXT, preset={**preset, "IVR_FLOW": "hold"}),  # held_calls.py
        },
        answer_delay=0.02,
        ami_users=dict(users),  # the service's AMI user exactly as shipped: read classes, event filters
    )
    sim = SimulatedAsterisk(config, clock=RealClock())
    await sim.start(("127.0.0.1", 9), ami=True)
    names: Counter[str] = Counter()
    readable = users["ivr"].read

    def count(ev: Any) -> None:
        if all(c in readable for c in event_classes(ev.privilege)):
            names[ev.name] += 1

    sim.pbx.bus.subscribe(count)
    print(json.dumps({"ami_port": sim.ami_port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    seq = 0
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "stop":
            break
        if cmd["op"] == "filters":  # allow the Filter action (write class `system`) for the next logins, or not
            write = set(users["ivr"].write)
            users["ivr"].write = frozenset(write | {"system"} if cmd["allow"] else write - {"system"})
            print(json.dumps({"ok": True}), flush=True)
            continue
        sim.fastagi = ("127.0.0.1", int(cmd["port"]))
        if cmd["op"] in ("hold", "release"):
            print(json.dumps(await hold_or_release(sim, cmd)), flush=True)
            continue
        sessions = list(sim.ami.sessions) if sim.ami else []
        before = [(s.events_sent, s.event_bytes) for s in sessions]
        names.clear()
        sem = asyncio.Semaphore(int(cmd["concurrency"]))
        seq += 1
        outcomes = await asyncio.gather(*(originate(sim, sem, f"bench-{seq}-{i}") for i in range(int(cmd["calls"]))))
        records = [r for r in outcomes if r is not None]
        failed = int(cmd["calls"]) - len(records)
        while sim.live_calls or any(not ch.hungup for ch in list(sim.pbx.channels.values())):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # let the last events reach the service's session
        events = [s.events_sent - b[0] for s, b in zip(sessions, before, strict=True)]
        nbytes = [s.event_bytes - b[1] for s, b in zip(sessions, before, strict=True)]
        first = next((r for r in records if r is not True), None)
        commands = first.commands() if first is not None else []
        status = first.agi_status if first is not None else None
        reply = {
            "failed": failed,
            "events": events,
            "bytes": nbytes,
            "commands": commands,
            "agi_status": status,
            "names": {k: round(v / max(1, int(cmd["calls"])), 2) for k, v in sorted(names.items())},
        }
        print(json.dumps(reply), flush=True)
    await sim.stop()


async def originate(sim: Any, sem: asyncio.Semaphore, cid: str) -> Any:
    """One call as AMI Originate places it; the ;1 half waits in Wait() like the recordings' caller, ;2 runs the
    flow. Returns its CallRecord (None if it failed)."""
    from ivr.sim.ami_originate import Originate

    async with sem:
        orig = Originate(sim, f"Local/{DID}@{CONTEXT}", "", "", "Wait", "600", 30.0, "", "", {}, "", cid, None)
        if not await orig.run():
            return None
        call = sim.calls_by_linkedid.get(cid)
        return await call.finished() if call is not None else True


async def hold_or_release(sim: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """held_calls.py: `hold` starts N calls of the `hold` flow and answers once all are held; `release` hangs them
    up and answers once all are gone."""
    from ivr.sim.ami_originate import Originate

    if cmd["op"] == "release":
        for call in sim.live_calls:
            call.hangup()
        while sim.live_calls or any(not ch.hungup for ch in list(sim.pbx.channels.values())):
            await asyncio.sleep(0.05)
        return {"live": 0}
    sem = asyncio.Semaphore(int(cmd["concurrency"]))
    base = len(sim.live_calls)

    async def one(cid: str) -> None:
        async with sem:
            await Originate(sim, f"Local/hold@{CONTEXT}", "", "", "Wait", "3600", 30.0, "", "", {}, "", cid, None).run()

    await asyncio.gather(*(one(f"hold-{time.monotonic_ns()}-{i}") for i in range(int(cmd["calls"]))))
    want = base + int(cmd["calls"])
    while sum(1 for c in sim.live_calls if c.session is not None and c.session.current) < want:
        await asyncio.sleep(0.05)  # every call waits in its hold command (SET MUSIC / EXEC Wait)
    return {"live": len(sim.live_calls)}


# --- the minimal FastAGI server (its own process) ---------------------------------------------------------------


async def minimal_main(commands: list[str]) -> None:
    lines = [c.encode("latin-1") + b"\n" for c in commands]

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\n", b""):
                pass
            for line in lines:
                writer.write(line)
                reply = await reader.readline()
                while reply.startswith(b"520-"):
                    reply = await reader.readline()
                if not reply:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0, backlog=1024)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
    server.close()


# --- the bench -----------------------------------------------------------------------------------------------------


class Proc:
    """A helper process spoken to in JSON lines over its stdin/stdout."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if env is None else subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def ask(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        if obj is not None:
            self.send(obj)
        return self.read()

    def send(self, obj: dict[str, Any]) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(obj) + "\n")
        self.p.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.p.args!r} ended (exit {self.p.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.p.stdin is not None:
                self.p.stdin.close()
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def write_settings(tmp: Path, tree: Path = ROOT) -> Path:
    flows = tmp / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "bench.yaml").write_text(FLOW)
    text = (tree / "config" / "ivr.yaml").read_text()
    text = re.sub(r"(reload:\n  watch:) true", r"\1 false", text)
    text = re.sub(r"(callbacks:\n  enabled:) true", r"\1 false", text)
    text = re.sub(r"auth: md5", "auth: plain", text)
    settings = tmp / "config" / "ivr.yaml"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(text)
    return settings


def start_service(
    tmp: Path, settings: Path, ami_port: int, ami: bool, tree: Path = ROOT
) -> tuple[subprocess.Popen[str], int]:
    """`python main.py serve` of the checkout `tree` (default this one; another for before/after runs)."""
    port, http = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        IVR_CONFIG=str(settings),
        IVR_AMI_PORT=str(ami_port),
        IVR_AMI_SECRET="ivrsecret",
        IVR_AMI_ENABLED="true" if ami else "false",
        IVR_FASTAGI_PORT=str(port),
        IVR_HTTP_PORT=str(http),
        IVR_API_TOKEN="bench-token",
        IVR_FLOWS_DIR=str(tmp / "flows"),
        IVR_STORAGE_URL=f"sqlite:///{tmp / 'ivr.db'}",
        IVR_RECORDINGS_DIR=str(tmp / "rec"),
        IVR_LOG_LEVEL="warning",
    )
    profile = os.environ.get("CALL_CPU_PROFILE")  # a file name: run the service under cProfile (AMI on only)
    python = [sys.executable, "-m", "cProfile", "-o", profile] if profile and ami else [sys.executable]
    proc = subprocess.Popen(
        [*python, "main.py", "serve"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ivr serve exited: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            if not ami or ready(http):
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("ivr serve did not start within 60 s")


def ready(http: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=1) as r:
            return bool(json.loads(r.read()).get("checks", {}).get("ami"))
    except Exception:
        return False


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def batch(sim: Proc, port: int, calls: int, concurrency: int) -> dict[str, Any]:
    reply = sim.ask({"op": "calls", "port": port, "calls": calls, "concurrency": concurrency})
    if reply["failed"]:
        print(f"    ! {reply['failed']} of {calls} calls failed", flush=True)
    return reply


class Measured:
    """One server's figures over one measured batch (per call)."""

    def __init__(self, ms: float, user_ms: float, sys_ms: float, sim_ms: float, reply: dict[str, Any]) -> None:
        self.ms, self.user_ms, self.sys_ms, self.sim_ms, self.reply = ms, user_ms, sys_ms, sim_ms, reply
        self.sleeps = self.preempted = 0.0  # context switches per call (voluntary: waits that slept)


def measure_pair(
    service: tuple[Proc, int, int], minimal: tuple[Proc, int, int], calls: int, concurrency: int
) -> tuple[Measured, Measured]:
    """One measured batch on both servers at once, each `(simulator, server pid, FastAGI port)`: both
    simulators get their `calls` order together and the CPU clocks are read around both, so the two servers run
    through the same moments of the shared machine (a job that takes a core slows both, not one)."""
    clocks = [(CPUClock(pid), CPUClock(sim.p.pid)) for sim, pid, _ in (service, minimal)]
    before = [(c.split(), c.seconds(), sc.seconds()) for c, sc in clocks]
    switches = [c.switches() for c, _ in clocks]
    for sim, _, port in (service, minimal):
        sim.send({"op": "calls", "port": port, "calls": calls, "concurrency": concurrency})
    replies = [sim.read() for sim, _, _ in (service, minimal)]
    after = [(c.seconds(), sc.seconds(), c.split()) for c, sc in clocks]
    out = []
    per = 1000 / calls
    for reply, ((u0, k0), c0, s0), (c1, s1, (u1, k1)), (v0, n0), (clock, _) in zip(
        replies, before, after, switches, clocks, strict=True
    ):
        if reply["failed"]:
            print(f"    ! {reply['failed']} of {calls} calls failed", flush=True)
        m = Measured((c1 - c0) * per, (u1 - u0) * per, (k1 - k0) * per, (s1 - s0) * per, reply)
        v1, n1 = clock.switches()
        m.sleeps, m.preempted = (v1 - v0) / calls, (n1 - n0) / calls
        out.append(m)
    return out[0], out[1]


def span(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def median_span(values: list[float]) -> str:
    """`median [min-max]`, or `-`."""
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} [{span(values)}]"


LABELS = {"on": "AMI on        ", "off": "AMI off       ", "unfiltered": "AMI unfiltered"}


def rotate(kinds: tuple[str, ...], r: int) -> list[str]:
    """Round r's order: the kinds turned by r places, so each runs first and last in turn."""
    turn = r % len(kinds)
    return list(kinds[turn:] + kinds[:turn])


def spy(pid: int, out: str, rate: int = 250) -> subprocess.Popen[bytes] | None:
    """Attach py-spy (pip install py-spy) to `pid`, raw (collapsed) stacks into `out`; None if it is missing."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        print("    ! py-spy is not installed in this environment (pip install py-spy)", flush=True)
        return None
    args = [str(exe), "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--output", out]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="measured calls per batch (default 2000)")
    ap.add_argument("--concurrency", type=int, default=50, help="calls in flight (default 50)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=200, help="calls before each measured batch (default 200)")
    ap.add_argument("--quick", action="store_true", help="300 calls, 2 rounds")
    ap.add_argument(
        "--unfiltered",
        action="store_true",
        help="also AMI on without event filters (the simulator refuses Filter, as Asterisk does without `system`)",
    )
    ap.add_argument("--tree", type=Path, default=ROOT, help="run `main.py serve` of this checkout (before/after)")
    ap.add_argument("--py-spy", metavar="FILE", help="sample the AMI-on service with py-spy into FILE (raw stacks)")
    ap.add_argument("--role", choices=["sim", "minimal"], help=argparse.SUPPRESS)
    ap.add_argument("--commands", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "sim":
        asyncio.run(sim_main())
        return 0
    if args.role == "minimal":
        asyncio.run(minimal_main(json.loads(args.commands)))
        return 0
    if args.quick:
        args.calls, args.rounds, args.warmup = 300, 2, 100

    rows, total = reference_counts()
    print(
        f"call_cpu: {args.calls} calls x {args.rounds} rounds, {args.concurrency} in flight, warm-up {args.warmup}; "
        f"service from {args.tree}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    kinds = ("on", "off", "unfiltered") if args.unfiltered else ("on", "off")
    service: dict[str, list[Measured]] = {k: [] for k in kinds}
    minimal: dict[str, list[Measured]] = {k: [] for k in kinds}
    per_round: list[dict[str, Measured]] = []
    unfiltered_events: list[float] = []
    events: list[float] = []
    emitted: dict[str, float] = {}
    nbytes: list[float] = []
    commands: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ivr-call-cpu-") as d:
        tmp = Path(d)
        settings = write_settings(tmp, args.tree)
        sim = Proc([sys.executable, __file__, "--role", "sim"])  # the service's Asterisk
        sim_min = Proc([sys.executable, __file__, "--role", "sim"])  # the minimal server's, alike
        try:
            ami_port = int(sim.ask()["ami_port"])
            sim_min.ask()
            for r in range(args.rounds):
                this_round: dict[str, Measured] = {}
                for kind in rotate(kinds, r):
                    t0 = time.monotonic()
                    sim.ask({"op": "filters", "allow": kind != "unfiltered"})
                    proc, port = start_service(tmp, settings, ami_port, kind != "off", args.tree)
                    mini: Proc | None = None
                    sampler = None
                    try:
                        warm = batch(sim, port, args.warmup, args.concurrency)
                        commands = commands or warm["commands"]
                        mini = Proc([sys.executable, __file__, "--role", "minimal", "--commands", json.dumps(commands)])
                        mini_port = int(mini.ask()["port"])
                        batch(sim_min, mini_port, args.warmup, args.concurrency)
                        if args.py_spy and kind == "on":
                            sampler = spy(proc.pid, args.py_spy)
                        m, mm = measure_pair(
                            (sim, proc.pid, port), (sim_min, mini.p.pid, mini_port), args.calls, args.concurrency
                        )
                    finally:
                        if sampler is not None:
                            sampler.send_signal(2)  # py-spy writes its file on SIGINT
                            sampler.wait(30)
                        if mini is not None:
                            mini.stop()
                        stop(proc)
                    reply = m.reply
                    if kind == "unfiltered" and reply["events"]:
                        unfiltered_events.append(max(reply["events"]) / args.calls)
                    if kind == "on":
                        emitted = reply["names"]
                        if reply["events"]:
                            events.append(max(reply["events"]) / args.calls)
                            nbytes.append(max(reply["bytes"]) / args.calls)
                    service[kind].append(m)
                    minimal[kind].append(mm)
                    this_round[kind] = m
                    this_round[f"minimal-{kind}"] = mm
                    print(
                        f"  round {r + 1}/{args.rounds}  {LABELS[kind]} {m.ms:6.3f} ms CPU/call (user {m.user_ms:.2f}, "
                        f"system {m.sys_ms:.2f}); minimal server beside it {mm.ms:6.3f} (user {mm.user_ms:.2f}, "
                        f"system {mm.sys_ms:.2f}): {m.ms / mm.ms:.2f}x; simulators {m.sim_ms:.2f} / "
                        f"{mm.sim_ms:.2f} ms/call; sleeps/call {m.sleeps:.1f} / {mm.sleeps:.1f}, preempted "
                        f"{m.preempted:.2f} / {mm.preempted:.2f}; {time.monotonic() - t0:.1f} s",
                        flush=True,
                    )
                per_round.append(this_round)
        finally:
            for p in (sim, sim_min):
                with contextlib.suppress(Exception):
                    p.send({"op": "stop"})
                p.stop()

    def ms(ms_of: list[Measured]) -> list[float]:
        return [m.ms for m in ms_of]

    all_minimal = [m for kind in kinds for m in minimal[kind]]
    print()
    words = [" ".join(c.split(" ")[:2]) if c.startswith("SET") else c.split(" ")[0] for c in commands]
    print(f"AGI commands per call ({len(commands)}): {', '.join(words)}")
    print(
        f"AMI events per call to the service's session: {span(events)} ({span([b / 1024 for b in nbytes])} KiB); "
        f"measurements.md on a real Asterisk: {total} events, {rows}"
    )
    print(f"emitted per call in the AMI user's read classes (before event filters): {emitted}")
    print()
    print("| server | CPU ms per call: median [range] | user | system |")
    print("|---|---:|---:|---:|")
    names = {
        "off": "ivr serve, AMI off",
        "on": "ivr serve, AMI on (registry, queue stats, metrics)",
        "unfiltered": f"ivr serve, AMI on, no event filters ({span(unfiltered_events)} events per call)",
    }
    for label, runs in [("minimal asyncio FastAGI server, same commands", all_minimal)] + [
        (names[k], service[k]) for k in ("off", "on", "unfiltered") if k in service
    ]:
        user = [m.user_ms for m in runs]
        system = [m.sys_ms for m in runs]
        print(f"| {label} | {median_span(ms(runs))} | {median_span(user)} | {median_span(system)} |")
    print()
    for kind in kinds:
        ratios = [a.ms / b.ms for a, b in zip(service[kind], minimal[kind], strict=True) if b.ms > 0]
        goal = "   goal <= 1.3" if kind == "on" else ""
        print(f"ratio {names[kind]} / the minimal server beside it: median {median_span(ratios)}{goal}")
    shares = [rd["on"].ms - rd["off"].ms for rd in per_round if "on" in rd and "off" in rd]
    print(f"AMI share (AMI on - AMI off, per round): median {median_span(shares)} ms per call   goal <= 0.3")
    if args.unfiltered:
        saved = [rd["unfiltered"].ms - rd["on"].ms for rd in per_round]
        print(f"CPU the event filters save the service (unfiltered - filtered, per round): {median_span(saved)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""FastAGI benchmark: ivr.agi.FastAGIServer vs panoramisk 1.4's FastAGI on the same machine, in one run.

    .venv/bin/python bench/agi_bench.py            # full run (1 x 20k commands, 200 x 250, 2,000 idle calls)
    .venv/bin/python bench/agi_bench.py --rounds 5 # more interleaved rounds (the ratio's range tightens)
    .venv/bin/python bench/agi_bench.py --quick    # smoke run in a few seconds

Each server runs alone in a child process; this process plays Asterisk with a minimal asyncio client (a
BufferedProtocol) that answers every command line with `200 result=0` (the reply to NOOP in the transcripts). The
comparison is kept fair: the same client code, env block, command (NOOP), one command in flight per call, default
asyncio event loop in both children, and the servers alternate round by round (ivr, panoramisk, ivr, ...) so a noisy
neighbour on the machine hits both. The client's own CPU per command is printed too, to check that the client is not
what is being measured (it runs the same code for both servers; it costs a little less per command when the server
answers faster, because more replies arrive per loop iteration). Figures:
- commands/s: wall clock, and per CPU-second of the server process (independent of the client's speed);
  the median over the rounds, and the range of the per-round ratio;
- memory per idle call: server RSS growth with N calls connected, each blocked in `EXEC Wait 3600`, / N;
- classic AGI start-up: spawn -> first command received (and -> the flow's first prompt), ours (agi/ivr_agi.py;
  trivial router, then the real router with the sample flows) vs pyst2 (`AGI()`), `import asyncio` alone and a
  bare interpreter, medians of interleaved rounds (`--classic`: only this table; `--before DIR` adds another
  checkout's real router, e.g. `git archive <commit> | tar -x -C DIR`, for before/after figures).
Goals: at least panoramisk's throughput, under 30 KiB per idle call (issue 2); classic start-up within the bare
interpreter's + 25 ms (issue 12). Dev-only (needs the bench extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
REPLY = b"200 result=0\n"


def env_block(n: int, network: bool = True) -> bytes:
    head = (
        b"agi_network: yes\nagi_network_script: bench\nagi_request: agi://127.0.0.1/bench\n"
        if network
        else b"agi_request: ivr_agi.py\n"
    )
    return (
        head + b"agi_channel: Local/bench@agi-scen-00000001;2\nagi_language: en\nagi_type: Local\n"
        b"agi_uniqueid: 1795909233.19\nagi_version: 22.10.1\nagi_callerid: 5551234\n"
        b"agi_calleridname: IVR Caller\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
        b"agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: agi-scen\n"
        b"agi_extension: bench\nagi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \n"
        b"agi_threadid: 140188048737984\nagi_arg_1: " + str(n).encode() + b"\n\n"
    )


# --- servers (child process) -----------------------------------------------------------------------------


def serve(kind: str) -> None:
    sys.path.insert(0, str(REPO))
    import logging

    logging.basicConfig(level=logging.ERROR)

    async def main() -> None:
        if kind == "panoramisk":
            from panoramisk.fast_agi import Application

            async def bench(request) -> None:
                n = int(request.headers["agi_arg_1"])
                if n == 0:
                    await request.send_command("EXEC Wait 3600")
                for _ in range(n):
                    await request.send_command("NOOP")

            app = Application(loop=asyncio.get_running_loop())
            app.add_route("bench", bench)
            server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)
            port = server.sockets[0].getsockname()[1]
        else:
            from ivr.agi import FastAGIServer, Router

            async def bench(session) -> None:
                n = int(session.env.args[0])
                if n == 0:
                    await session.command("EXEC", "Wait", "3600", timeout=None)
                for _ in range(n):
                    await session.noop()

            router = Router()
            router.add("bench", bench)
            ours = FastAGIServer(router, "127.0.0.1", 0, max_connections=100_000, backlog=4096)
            await ours.start()
            port = ours.port
        print(f"PORT {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --- load generator --------------------------------------------------------------------------------------

_CLIENT_BUFFER = memoryview(bytearray(65536))  # one loop: read callbacks never interleave


class FakeCall(asyncio.BufferedProtocol):
    """Plays Asterisk for one call: env block, then `200 result=0` per command (or no reply when idle).

    A BufferedProtocol (recv_into a shared buffer): a plain Protocol makes asyncio call recv(256 KiB) per read,
    which costs ~20 us here and made this client slower than the servers it measures, so the wall-clock ratio
    said more about the client than about the servers."""

    def __init__(
        self, env: bytes, done: asyncio.Future, idle: bool = False, started: asyncio.Future | None = None
    ) -> None:
        self.env, self.done, self.idle, self.started = env, done, idle, started
        self.commands = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.env)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _CLIENT_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        n = _CLIENT_BUFFER[:nbytes].tobytes().count(b"\n")
        self.commands += n
        if self.idle:
            if n and self.started is not None and not self.started.done():
                self.started.set_result(True)
        elif n:
            self.transport.write(REPLY * n)

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(self.commands)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


class Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        # stderr dropped: panoramisk logs a ValueError traceback per call when the client closes (its EOF bug)
        self.proc = subprocess.Popen([PY, __file__, "--serve", kind], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT"):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


async def run_calls(port: int, calls: int, commands: int, concurrency: int) -> int:
    loop = asyncio.get_running_loop()
    env = env_block(commands)
    sem = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with sem:
            done = loop.create_future()
            await loop.create_connection(lambda: FakeCall(env, done), "127.0.0.1", port)
            return await done

    results = await asyncio.gather(*(one() for _ in range(calls)))
    return sum(results)


def throughput(kind: str, calls: int, commands: int) -> dict:
    server = Server(kind)
    try:
        asyncio.run(run_calls(server.port, 5, 200, 5))  # warm-up
        cpu0, client0, t0 = cpu_seconds(server.proc.pid), time.process_time(), time.perf_counter()
        total = asyncio.run(run_calls(server.port, calls, commands, calls))
        wall, cpu = time.perf_counter() - t0, cpu_seconds(server.proc.pid) - cpu0
        client = time.process_time() - client0
        if total != calls * commands:
            raise RuntimeError(f"{kind}: {total} commands seen, expected {calls * commands}")
        return {
            "per_s": total / wall,
            "per_cpu_s": total / cpu if cpu > 0 else float("nan"),
            "wall": wall,
            "client_us": client / total * 1e6,
        }
    finally:
        server.stop()


async def hold_idle(port: int, calls: int, pid: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    env = env_block(0)
    transports = []
    started = []
    t0 = time.perf_counter()
    for i in range(0, calls, 200):  # connect in batches: a burst of thousands of SYNs overflows backlogs
        batch = []
        for _ in range(min(200, calls - i)):
            done, first = loop.create_future(), loop.create_future()
            batch.append(loop.create_connection(lambda d=done, f=first: FakeCall(env, d, True, f), "127.0.0.1", port))
            started.append(first)
        transports += [t for t, _ in await asyncio.gather(*batch)]
    await asyncio.wait_for(asyncio.gather(*started), 120)  # every server handler is inside EXEC Wait
    setup = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    rss = rss_kib(pid)
    for t in transports:
        t.close()
    await asyncio.sleep(0.5)
    return setup, rss


def idle_memory(kind: str, calls: int) -> dict:
    server = Server(kind)
    try:
        asyncio.run(run_calls(server.port, 20, 20, 20))  # warm-up: imports, metric children, code paths
        time.sleep(0.3)
        before = rss_kib(server.proc.pid)
        setup, after = asyncio.run(hold_idle(server.port, calls, server.proc.pid))
        return {"kib_per_call": (after - before) / calls, "setup": setup}
    finally:
        server.stop()


def classic_startup(runs: int, before: Path | None = None) -> dict:
    """Median ms from spawn to the first command on stdout, to the second (the sample flow's first prompt, after
    `200 result=0` to ANSWER), and to process exit.

    Rows: ivr with a trivial router (the AGI layer's own cost), ivr with the real router and the sample flows
    (`ivr.flow.classic.classic_router`: compiled flows and settings from the classic AGI cache that one
    unmeasured run fills, what a call really pays), the same with a bytecode cache, pyst2, an interpreter that
    imports asyncio (the event loop the AGI layer runs on, shared with FastAGI), and a bare interpreter.
    "no .pyc" keeps this environment's PYTHONDONTWRITEBYTECODE (set on the build machine: every run recompiles
    the ivr sources, as a read-only checkout would); ".pyc cached" lets Python write its bytecode under a
    temporary PYTHONPYCACHEPREFIX, warmed by one unmeasured run (what an installed package, or a checkout
    Asterisk's user can write to, gets). `before`: another checkout (e.g. `git archive <commit> | tar -x -C
    DIR`) whose real router is timed the same way, its variant in turn with the others."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="agi-bench-"))
    trivial = dict(
        os.environ,
        IVR_AGI_ROUTER="classic_noop:noop_router",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), str(REPO)]),
    )
    # The sample config, with the database in a scratch directory instead of the checkout's var/.
    real = {k: v for k, v in os.environ.items() if k != "IVR_AGI_ROUTER"}
    real.update(IVR_CONFIG=str(REPO / "config" / "ivr.yaml"), IVR_STORAGE_URL=f"sqlite:///{work / 'ivr.db'}")
    # The classic AGI cache (ivr/flow/cache.py) in a private scratch directory; warmed by the first, unmeasured run.
    real["IVR_AGI_CACHE_DIR"] = str(work / "agi-cache")
    cached = {k: v for k, v in real.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    script = [PY, str(REPO / "agi" / "ivr_agi.py")]
    variants = {
        "ivr (agi/ivr_agi.py), trivial router (IVR_AGI_ROUTER), no .pyc": (script, trivial, "bench", False),
        "ivr (agi/ivr_agi.py), real router + sample flows `main`, no .pyc": (script, real, "main", True),
        "ivr (agi/ivr_agi.py), real router + sample flows `main`, .pyc cached": (script, cached, "main", True),
        **(
            {
                f"ivr before ({before}), real router + sample flows `main`, .pyc cached": (
                    [PY, str(before / "agi" / "ivr_agi.py")],
                    dict(cached, IVR_AGI_CACHE_DIR=str(work / "agi-cache-before")),
                    "main",
                    True,
                )
            }
            if before is not None
            else {}
        ),
        "pyst2 (import asterisk.agi; AGI())": (
            [PY, "-c", "import asterisk.agi as a; agi = a.AGI(); agi.answer()"],
            dict(os.environ),
            "bench",
            False,
        ),
        "python -c 'import asyncio' (the AGI layer's event loop alone)": (
            [PY, "-c", "import asyncio, sys; sys.stdout.write('ANSWER\\n'); sys.stdout.flush()"],
            dict(os.environ),
            "bench",
            False,
        ),
        "python -c pass (floor)": (
            [PY, "-c", "import sys; sys.stdout.write('ANSWER\\n'); sys.stdout.flush()"],
            dict(os.environ),
            "bench",
            False,
        ),
    }
    out = {}
    try:
        _time_variants(variants, runs, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _time_variants(variants: dict, runs: int, out: dict) -> None:
    """Each round spawns every variant once, in turn, so the machine's load hits all of them alike."""
    samples: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in variants}
    for run in range(runs + 1):  # round 0 warms caches (the flow cache, .pyc) and is not counted
        for name, (argv, env, flow, _warm_up) in variants.items():
            first, prompt, total = _time_one(name, argv, env, flow)
            if run:
                samples[name][0].append(first)
                samples[name][1].append(prompt)
                samples[name][2].append(total)
    for name, (first, prompt, total) in samples.items():
        known = [p for p in prompt if p == p]  # NaN: no second command (the script ended after the first)
        out[name] = (
            statistics.median(first) * 1000,
            statistics.median(known) * 1000 if known else float("nan"),
            statistics.median(total) * 1000,
        )


def _time_one(name: str, argv: list[str], env: dict, flow: str) -> tuple[float, float, float]:
    header = env_block(0, network=False).replace(b"agi_arg_1: 0", b"agi_arg_1: " + flow.encode())
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdin.write(header)
    proc.stdin.flush()
    line = proc.stdout.readline()
    t_first = time.perf_counter() - t0
    if line != b"ANSWER\n":  # both routers (and the sample flow `main`) start with ANSWER
        proc.kill()
        raise RuntimeError(f"{name}: expected ANSWER, got {line!r}; stderr: {proc.stderr.read()[-500:]!r}")
    t_prompt = float("nan")
    try:
        proc.stdin.write(REPLY)
        proc.stdin.flush()
        if proc.stdout.readline():  # the flow's first prompt (the trivial scripts end instead)
            t_prompt = time.perf_counter() - t0
        proc.stdin.close()  # EOF: the flow ends (AGIConnectionLost), as on hangup
    except BrokenPipeError:
        pass
    proc.stderr.read()
    proc.wait(10)
    return t_first, t_prompt, time.perf_counter() - t0


FLOOR = "python -c pass (floor)"
REAL_CACHED = "ivr (agi/ivr_agi.py), real router + sample flows `main`, .pyc cached"


def print_classic(runs: int, before: Path | None = None) -> None:
    print(
        f"Classic AGI start-up (median of {runs} interleaved runs, ms; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}): spawn -> first command | -> second command (the "
        "flow's first prompt) | -> exit"
    )
    print("| script | first command (ms) | first prompt (ms) | exit (ms) |")
    print("|---|---:|---:|---:|")
    rows = classic_startup(runs, before)
    for name, (first, prompt, total) in rows.items():
        shown = f"{prompt:.0f}" if prompt == prompt else ""
        print(f"| {name} | {first:.0f} | {shown} | {total:.0f} |")
    over = rows[REAL_CACHED][0] - rows[FLOOR][0]
    print(
        f"\nGoal (issue 12): the real router's first command (.pyc cached) within the floor + 25 ms: "
        f"{'met' if over <= 25 else 'NOT met'} ({over:+.0f} ms over the floor)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds per size (default 3)")
    parser.add_argument("--classic", action="store_true", help="only the classic AGI start-up table")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="--classic: also time the real router of the checkout in DIR (git archive <commit> | tar -x -C DIR)",
    )
    parser.add_argument("--serve", choices=["ivr", "panoramisk"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.before is not None and not (args.before / "agi" / "ivr_agi.py").is_file():
        parser.error(
            f"--before {args.before}: not a checkout (no agi/ivr_agi.py); use git archive <commit> | tar -x -C DIR"
        )
    if args.classic:
        print_classic(3 if args.quick else 15, args.before)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    one = (1, 2_000) if args.quick else (1, 20_000)
    many = (20, 50) if args.quick else (200, 250)
    idle_calls = 200 if args.quick else 2_000
    runs = 3 if args.quick else 15
    rounds = max(1, 1 if args.quick else args.rounds)

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; server in a child process, client here; "
        f"{rounds} interleaved round(s).\n"
    )
    rows = []
    wall_ratios: list[float] = []
    for label, (calls, commands) in (
        (f"{one[0]} call x {one[1]:,} commands", one),
        (f"{many[0]} calls x {many[1]:,} commands", many),
    ):
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(throughput("ivr", calls, commands))
            theirs.append(throughput("panoramisk", calls, commands))
        for key, what in (("per_s", "commands/s, wall"), ("per_cpu_s", "commands per server CPU-s")):
            ratios = [a[key] / b[key] for a, b in zip(ours, theirs, strict=False)]
            rows.append(
                (
                    f"{label} ({what})",
                    statistics.median(a[key] for a in ours),
                    statistics.median(b[key] for b in theirs),
                    ratios,
                )
            )
            if key == "per_s":
                wall_ratios.append(statistics.median(ratios))
        rows.append(
            (
                f"{label} (client CPU us per command, lower is better)",
                statistics.median(a["client_us"] for a in ours),
                statistics.median(b["client_us"] for b in theirs),
                [a["client_us"] / b["client_us"] for a, b in zip(ours, theirs, strict=False)],
            )
        )
    ours_idle = idle_memory("ivr", idle_calls)
    theirs_idle = idle_memory("panoramisk", idle_calls)
    rows.append(
        (
            f"{idle_calls:,} concurrent idle calls (KiB per call, lower is better)",
            ours_idle["kib_per_call"],
            theirs_idle["kib_per_call"],
            None,
        )
    )
    rows.append(
        (f"{idle_calls:,} idle calls set up (s, lower is better)", ours_idle["setup"], theirs_idle["setup"], None)
    )

    print("| measurement | ivr | panoramisk | ivr / panoramisk | per-round ratios |")
    print("|---|---:|---:|---:|---|")
    for label, a, b, ratios in rows:
        ratio = statistics.median(ratios) if ratios else a / b
        spread = " ".join(f"{r:.2f}" for r in ratios) if ratios else ""
        print(f"| {label} | {a:,.1f} | {b:,.1f} | {ratio:.2f} | {spread} |")
    print()
    print_classic(runs)
    goal_mem = ours_idle["kib_per_call"] < 30
    goal_tp = all(r >= 1.0 for r in wall_ratios)  # median of the per-round wall-clock ratios
    print(
        f"\nGoals: throughput >= panoramisk: {'met' if goal_tp else 'NOT met'}; "
        f"< 30 KiB per idle call: {'met' if goal_mem else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

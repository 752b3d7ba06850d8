"""Memory per concurrent call and `GET /calls` with many live calls: `ivr serve` (AMI on) on the simulated Asterisk.

The simulated Asterisk (bench/call_cpu.py's `--role sim`, its own process, real clock) originates N calls into a
`hold` flow (answer, music on hold for up to 10 minutes): each is a FastAGI session waiting in its hold command
and two channels in the live call registry, as 400 calls held in MusicOnHold were on a real Asterisk
(tests/data/asterisk/measurements.md: +21.6 KiB per call). Printed per size:

- service RSS growth per held call (VmRSS from /proc, after a warm-up batch held and released);
- `GET /calls` (all N calls, JSON) wall time and the service's CPU time per request (median and max of 10).

    .venv/bin/python bench/held_calls.py                 # 400 and 2,000 held calls, 3 rounds
    .venv/bin/python bench/held_calls.py --quick         # 200 calls, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from call_cpu import CPUClock, Proc, free_port, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOLD_FLOW = """\
name: hold
description: Answer and hold (music on hold) for up to ten minutes
language: en
languages: [en]
timezone: Europe/Vilnius
answer: true
start: wait
nodes:
  wait:
    type: hold
    music_class: default
    max: 10m
    next: bye
  bye:
    type: hangup
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def get_calls(http: int) -> tuple[float, int]:
    """(seconds from sending the request to the last byte of the answer, calls in it). The answer is decoded
    after the clock stops: decoding 2 MB of JSON in this process (~15-30 ms) is the client's time, not the
    service's."""
    req = urllib.request.Request(f"http://127.0.0.1:{http}/calls", headers={"Authorization": "Bearer bench-token"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
    elapsed = time.perf_counter() - t0
    body = json.loads(data)
    calls = body if isinstance(body, list) else body.get("calls", [])
    return elapsed, len(calls)


def start_service(tmp: Path, ami_port: int, tree: Path = ROOT) -> tuple[subprocess.Popen[bytes], int, int]:
    """`python main.py serve` of the checkout `tree` (default this one; another for before/after runs)."""
    from call_cpu import write_settings

    settings = write_settings(tmp, tree)
    (tmp / "flows" / "hold.yaml").write_text(HOLD_FLOW)
    port, http = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        IVR_CONFIG=str(settings),
        IVR_AMI_PORT=str(ami_port),
        IVR_AMI_SECRET="ivrsecret",
        IVR_FASTAGI_PORT=str(port),
        IVR_FASTAGI_MAX_CONNECTIONS="10000",
        IVR_HTTP_PORT=str(http),
        IVR_API_TOKEN="bench-token",
        IVR_FLOWS_DIR=str(tmp / "flows"),
        IVR_STORAGE_URL=f"sqlite:///{tmp / 'ivr.db'}",
        IVR_RECORDINGS_DIR=str(tmp / "rec"),
        IVR_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen(
        [sys.executable, "main.py", "serve"], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=1) as r:
                if json.loads(r.read()).get("status") == "ready":
                    return proc, port, http
        except Exception:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("ivr serve did not become ready")


def wait_registry(http: int, want: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, n = get_calls(http)
        if n >= want:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the registry shows {n} calls, expected {want}")


def round_(sizes: list[int], concurrency: int, tree: Path = ROOT) -> dict[int, tuple[float, list[float], list[float]]]:
    out: dict[int, tuple[float, list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ivr-held-") as d:
        tmp = Path(d)
        sim = Proc([sys.executable, str(ROOT / "bench" / "call_cpu.py"), "--role", "sim"])
        try:
            ami_port = int(sim.ask()["ami_port"])
            for n in sizes:
                proc, port, http = start_service(tmp, ami_port, tree)
                try:
                    # warm-up: imports, code paths, metric children, allocator pools
                    sim.ask({"op": "hold", "port": port, "calls": 50, "concurrency": concurrency})
                    wait_registry(http, 50)
                    sim.ask({"op": "release", "port": port})
                    time.sleep(1.0)
                    before = rss_kib(proc.pid)
                    t0 = time.monotonic()
                    sim.ask({"op": "hold", "port": port, "calls": n, "concurrency": concurrency})
                    wait_registry(http, n)
                    time.sleep(1.0)
                    per_call = (rss_kib(proc.pid) - before) / n
                    walls, cpus = [], []
                    clock = CPUClock(proc.pid)
                    for _ in range(10):
                        c0 = clock.seconds()
                        wall, count = get_calls(http)
                        cpus.append((clock.seconds() - c0) * 1000)
                        walls.append(wall * 1000)
                    print(
                        f"  {n} held calls: +{per_call:.1f} KiB RSS per call; GET /calls ({count} calls) "
                        f"median {statistics.median(walls):.0f} ms (max {max(walls):.0f}), service CPU "
                        f"{statistics.median(cpus):.0f} ms per request (max {max(cpus):.0f})  "
                        f"[{time.monotonic() - t0:.0f} s]\n    each request, ms: "
                        + " ".join(f"{w:.0f}/{c:.0f}" for w, c in zip(walls, cpus, strict=True))
                        + " (wall/service CPU)",
                        flush=True,
                    )
                    out[n] = (per_call, walls, cpus)
                    sim.ask({"op": "release", "port": port})
                finally:
                    stop(proc)
        finally:
            sim.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="*", default=[400, 2000], help="held calls (default 400 2000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=100, help="originates in flight while filling (default 100)")
    ap.add_argument("--quick", action="store_true", help="200 calls, 1 round")
    ap.add_argument("--tree", type=Path, default=ROOT, help="run `main.py serve` of this checkout (before/after)")
    args = ap.parse_args()
    if args.quick:
        args.calls, args.rounds = [200], 1
    print(f"held_calls: {args.calls} calls x {args.rounds} rounds; Python {sys.version.split()[0]}, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    results: dict[int, list[tuple[float, list[float], list[float]]]] = {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", flush=True)
        for n, res in round_(args.calls, args.concurrency, args.tree).items():
            results.setdefault(n, []).append(res)
    print()
    print(
        "| held calls | RSS per call (KiB) | GET /calls median (ms) | GET /calls max (ms) | service CPU per GET (ms) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n, rows in results.items():
        kib = [r[0] for r in rows]
        med = [statistics.median(r[1]) for r in rows]
        mx = [max(r[1]) for r in rows]
        cpu = [statistics.median(r[2]) for r in rows]
        print(
            f"| {n} | {min(kib):.1f}-{max(kib):.1f} | {min(med):.0f}-{max(med):.0f} | {min(mx):.0f}-{max(mx):.0f} "
            f"| {min(cpu):.0f}-{max(cpu):.0f} |"
        )
    print("goals: <= 30 KiB per call; GET /calls with 2,000 live calls within 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

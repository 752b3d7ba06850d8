"""Load test of the simulated Asterisk: N concurrent simulated calls in real time, in one process, on one core.

Each call: the simulator connects to a minimal FastAGI server (in the same process, so the figure includes both
sides), sends the env block, and runs ANSWER, STREAM FILE silence/<n>, GET DATA (the caller presses a key on the
prompt), EXEC Wait, HANGUP -- about `--hold` seconds per call, with AMI events emitted for every command.
Calls are placed evenly over `--ramp` seconds, so the peak concurrency is about `--calls` when hold > ramp.

Prints: peak concurrent calls, completed/failed calls, AGI commands per second, CPU seconds used, CPU share of
one core, and the event-loop lag (how late a 100 ms timer fired: median, p99, max).

    .venv/bin/python bench/sim_bench.py            # 2,000 calls, 20 s ramp, 40 s hold
    .venv/bin/python bench/sim_bench.py --quick    # 200 calls, short
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.sim import CallSpec, NextPrompt, Press, RealClock, SimConfig, SimulatedAsterisk  # noqa: E402


class MiniAGI:
    """The smallest FastAGI server that drives a realistic call; counts commands."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.commands = 0
        self.errors = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.conn, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cmd(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> str:
        writer.write(line.encode() + b"\n")
        self.commands += 1
        reply = (await reader.readline()).decode()
        if reply.startswith("520-"):
            while not reply.startswith("520 "):
                reply = (await reader.readline()).decode()
        return reply

    async def conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\n", b""):
                pass
            half = max(1, int(self.hold / 2))
            await self.cmd(reader, writer, "ANSWER")
            await self.cmd(reader, writer, f'STREAM FILE silence/{half} ""')
            await self.cmd(reader, writer, "GET DATA beep 3000 1")
            await self.cmd(reader, writer, f"EXEC Wait {half}")
            await self.cmd(reader, writer, "HANGUP")
        except (ConnectionError, OSError):
            self.errors += 1
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.1)
        samples.append(loop.time() - t0 - 0.1)


async def main(args: argparse.Namespace) -> int:
    agi = MiniAGI(args.hold)
    await agi.start()
    sim = SimulatedAsterisk(SimConfig(), clock=RealClock())
    await sim.start(("127.0.0.1", agi.port), ami=not args.no_ami)
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.get_running_loop().create_task(lag_probe(lags, stop))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    calls = []
    peak = 0
    interval = args.ramp / args.calls
    for i in range(args.calls):
        spec = CallSpec(
            flow="bench",
            caller_id=f"+3706{i:07d}",
            sends_media=True,
            script=[NextPrompt(0.2), NextPrompt(0.5), Press("1")],
        )
        calls.append(await sim.place_call(spec))
        if i % 50 == 0:
            peak = max(peak, len(sim.live_calls))
        target = t0 + (i + 1) * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    while True:
        live = len(sim.live_calls)
        peak = max(peak, live)
        if live == 0:
            break
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await probe
    records = [await c.finished() for c in calls]
    await sim.stop()
    await agi.stop()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    statuses = Counter(r.agi_status for r in records)
    lags.sort()
    print(
        f"simulated calls        {args.calls} (ramp {args.ramp:.0f} s, hold ~{args.hold:.0f} s, "
        f"AMI events {'off' if args.no_ami else 'on'})"
    )
    print(f"peak concurrent calls  {peak}")
    print(f"completed              {len(records)}  AGISTATUS {dict(statuses)}  server errors {agi.errors}")
    print(f"wall time              {wall:.1f} s")
    print(f"AGI commands           {agi.commands}  ({agi.commands / wall:.0f} per second)")
    print(f"AMI events emitted     {sim.pbx.bus.count}")
    print(f"CPU used               {cpu:.1f} s  ({100 * cpu / wall:.0f}% of one core)")
    if lags:
        print(
            f"event-loop lag         median {1000 * statistics.median(lags):.1f} ms"
            f"  p99 {1000 * lags[int(0.99 * (len(lags) - 1))]:.1f} ms  max {1000 * lags[-1]:.1f} ms"
        )
    return 0 if statuses.get("SUCCESS", 0) + statuses.get("HANGUP", 0) == len(records) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--ramp", type=float, default=20.0, help="seconds over which calls are placed")
    p.add_argument("--hold", type=float, default=40.0, help="approximate seconds per call")
    p.add_argument("--no-ami", action="store_true", help="do not start the AMI server")
    p.add_argument("--quick", action="store_true", help="200 calls, 2 s ramp, 6 s hold")
    p.add_argument("--any-core", action="store_true", help="do not pin the process to one CPU core")
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.ramp, args.hold = 200, 2.0, 6.0
    return args


if __name__ == "__main__":
    ns = parse()
    if not ns.any_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.exit(asyncio.run(main(ns)))

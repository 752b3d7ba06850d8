"""A realistic stream of simulated callers for the demo and soak runs (`make run`, `python main.py demo`).

Rules for this file:
- Callers arrive as a Poisson process (`rate` calls per second) on the simulator's clock (real time in the demo).
- Each caller gets one behaviour drawn from `TrafficMix`: choose a menu option (sometimes two levels), let the
  menu time out, hang up early, wait for an agent (and maybe abandon the queue), or leave a voicemail (speaks
  while recorded).  The flow decides what the options mean; callers only press keys at prompts, as people do.
- The generator never blocks on a call: it places calls and collects their records in the background.
- `TrafficSummary` counts what happened (ended by whom, where calls went); `line()` is the live summary text.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.sim.model import CallSpec
from ivr.sim.script import Hangup, NextPrompt, OnCommand, Press, Sleep, Step
from ivr.sim.simulator import CallRecord, SimulatedAsterisk

if TYPE_CHECKING:
    import argparse


@dataclass
class TrafficMix:
    """Relative weights of caller behaviours (they need not sum to 1)."""

    choose_option: float = 0.45
    two_levels: float = 0.15
    time_out: float = 0.10
    hang_up_early: float = 0.10
    wait_for_agent: float = 0.12
    leave_voicemail: float = 0.08

    def pick(self, rng: random.Random) -> str:
        names = ["choose_option", "two_levels", "time_out", "hang_up_early", "wait_for_agent", "leave_voicemail"]
        weights = [getattr(self, n) for n in names]
        return rng.choices(names, weights)[0]


@dataclass
class TrafficPlan:
    """What callers dial and press.  `options` are the menu keys worth pressing; `agent_key` reaches the queue or
    an agent; `voicemail_key` reaches the voicemail box."""

    flows: Sequence[str] = ("main",)
    dids: Sequence[str] = ()  # when set, calls dial these DIDs (SimConfig.routes) instead of flows
    options: str = "123"
    agent_key: str = "2"
    voicemail_key: str = "3"
    languages: Sequence[str] = ("en",)
    caller_prefix: str = "+3706"
    abandon_after: tuple[float, float] = (20.0, 120.0)  # how long an impatient queue caller waits
    patience_share: float = 0.5  # share of queue callers who wait until answered
    preamble: tuple[Step, ...] = ()  # steps every caller takes first (e.g. choose a language)
    menu_prompt: int = 1  # the menu is the n-th prompt that starts after the preamble


@dataclass
class TrafficSummary:
    placed: int = 0
    finished: int = 0
    failed: int = 0
    behaviours: Counter = field(default_factory=Counter)
    ended_by: Counter = field(default_factory=Counter)
    destinations: Counter = field(default_factory=Counter)
    agi_status: Counter = field(default_factory=Counter)
    talk_seconds: float = 0.0

    def add(self, behaviour: str, rec: CallRecord) -> None:
        self.finished += 1
        self.behaviours[behaviour] += 1
        self.ended_by[rec.ended.by] += 1
        self.destinations[rec.ended.destination.split(":", 1)[0]] += 1
        self.agi_status[rec.agi_status or "NONE"] += 1
        self.talk_seconds += rec.duration

    def line(self, active: int) -> str:
        avg = self.talk_seconds / self.finished if self.finished else 0.0
        dest = " ".join(f"{k}={v}" for k, v in sorted(self.destinations.items()))
        ended = " ".join(f"{k}={v}" for k, v in sorted(self.ended_by.items()))
        return (
            f"calls placed={self.placed} active={active} done={self.finished} failed={self.failed} avg={avg:.1f}s"
            f" | ended by: {ended or '-'} | went to: {dest or '-'}"
        )


class TrafficGenerator:
    def __init__(
        self,
        sim: SimulatedAsterisk,
        *,
        rate: float = 0.5,
        plan: TrafficPlan | None = None,
        mix: TrafficMix | None = None,
        seed: int | None = None,
        max_active: int = 500,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 calls per second (e.g. 0.5 = one call every 2 s on average)")
        self.sim = sim
        self.rate = rate
        self.plan = plan or TrafficPlan()
        self.mix = mix or TrafficMix()
        self.rng = random.Random(seed)
        self.max_active = max_active
        self.summary = TrafficSummary()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    # -- callers -------------------------------------------------------------------------------------------------
    def caller(self) -> tuple[str, CallSpec]:
        """One caller: (behaviour, CallSpec with its script)."""
        rng, plan = self.rng, self.plan
        behaviour = self.mix.pick(rng)

        def think() -> float:  # seconds into a prompt before a caller presses
            return rng.uniform(0.8, 3.5)

        script: list[Step]
        speech = None
        if behaviour == "choose_option":
            script = [NextPrompt(think()), Press(rng.choice(plan.options))]
        elif behaviour == "two_levels":
            script = [
                NextPrompt(think()),
                Press(rng.choice(plan.options)),
                NextPrompt(think()),
                Press(rng.choice(plan.options)),
            ]
        elif behaviour == "time_out":
            script = []
        elif behaviour == "hang_up_early":
            script = [NextPrompt(rng.uniform(0.5, 6.0)), Hangup()]
        elif behaviour == "wait_for_agent":
            script = [NextPrompt(think()), Press(plan.agent_key)]
            if rng.random() > plan.patience_share:
                script += [OnCommand("EXEC Queue"), Sleep(rng.uniform(*plan.abandon_after)), Hangup()]
        else:
            script = [NextPrompt(think()), Press(plan.voicemail_key)]
            speech = rng.uniform(4.0, 25.0)
        if behaviour != "time_out" and plan.menu_prompt > 1:
            script = [NextPrompt() for _ in range(plan.menu_prompt - 1)] + script
        script = list(plan.preamble) + script
        number = plan.caller_prefix + "".join(rng.choice("0123456789") for _ in range(7))
        spec = CallSpec(
            caller_id=number, language=rng.choice(list(plan.languages)), script=script, record_speech=speech
        )
        if plan.dids:
            spec.did = rng.choice(list(plan.dids))
        else:
            spec.flow = rng.choice(list(plan.flows))
        return behaviour, spec

    async def _one(self, behaviour: str, spec: CallSpec) -> None:
        try:
            call = await self.sim.place_call(spec)
            rec = await call.finished()
            self.summary.add(behaviour, rec)
        except Exception:  # a failed call is counted, the stream goes on
            self.summary.failed += 1

    def place_one(self) -> None:
        behaviour, spec = self.caller()
        self.summary.placed += 1
        task = asyncio.get_running_loop().create_task(self._one(behaviour, spec))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the stream ------------------------------------------------------------------------------------------------
    async def run(self, duration: float | None = None, calls: int | None = None) -> TrafficSummary:
        """Place calls until `duration` clock seconds passed or `calls` were placed (or `stop()`)."""
        clock = self.sim.clock
        end = clock.now() + duration if duration is not None else None
        placed = 0
        while not self._stopping:
            await clock.sleep(self.rng.expovariate(self.rate))
            if end is not None and clock.now() >= end:
                break
            if self.active < self.max_active:
                self.place_one()
                placed += 1
            if calls is not None and placed >= calls:
                break
        return self.summary

    async def drain(self) -> None:
        """Wait for the calls in progress to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stop(self) -> None:
        self._stopping = True

    async def report(self, every: float = 5.0, out: Callable[[str], None] = print) -> None:
        """Print the live summary every `every` real seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            out(self.summary.line(self.active))


# -- command line: `python -m ivr.sim.traffic --fastagi 127.0.0.1:4573 --rate 1` ----------------------------------


def _parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m ivr.sim.traffic",
        description="Run a simulated Asterisk that sends a realistic call mix to a "
        "FastAGI server, with an AMI server, on the real clock.",
    )
    p.add_argument("--fastagi", default="127.0.0.1:4573", help="host:port of the service's FastAGI server")
    p.add_argument("--ami-port", type=int, default=0, help="AMI port to listen on (0 = ephemeral)")
    p.add_argument("--rate", type=float, default=0.5, help="calls per second (Poisson arrivals)")
    p.add_argument("--flows", default="main", help="comma-separated flow names the calls run")
    p.add_argument("--options", default="123", help="menu keys callers press")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between summary lines")
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args(argv)


async def _main(argv: Sequence[str] | None = None) -> int:
    from ivr.sim.clock import RealClock
    from ivr.sim.model import SimConfig

    args = _parse(argv)
    host, _, port = args.fastagi.rpartition(":")
    sim = SimulatedAsterisk(SimConfig(), clock=RealClock())
    await sim.start((host or "127.0.0.1", int(port)), ami_port=args.ami_port)
    print(
        f"simulated Asterisk: calls -> agi://{host or '127.0.0.1'}:{port}, AMI on 127.0.0.1:{sim.ami_port}"
        " (user ivr / ivrsecret)"
    )
    gen = TrafficGenerator(
        sim,
        rate=args.rate,
        seed=args.seed,
        plan=TrafficPlan(flows=tuple(f for f in args.flows.split(",") if f), options=args.options),
    )
    reporter = asyncio.get_running_loop().create_task(gen.report(args.every))
    try:
        await gen.run(duration=args.duration)
        await gen.drain()
    finally:
        reporter.cancel()
        print(gen.summary.line(gen.active))
        await sim.stop()
    return 0


if __name__ == "__main__":
    import sys

    try:
        sys.exit(asyncio.run(_main()))
    except KeyboardInterrupt:
        sys.exit(0)

"""Clocks for the simulated Asterisk: one interface, real time or virtual time.

Rules for this file:
- Everything in the simulator that a caller could feel (prompt lengths, digit time-outs, ringing, hold music,
  park timeouts) waits through a `Clock`, never through `asyncio.sleep` directly.
- `RealClock` is wall-clock time (demo, soak runs, benchmarks).
- `VirtualClock` jumps to the next simulated timer, but only when the simulation is *quiet*: nobody holds the
  clock (`hold()`), and the event loop has nothing else ready to run.  A simulated call holds the clock whenever
  it waits for the service (for the FastAGI connection, for the next AGI command) so virtual time never runs
  while the service is thinking.  A 60-second call therefore finishes in milliseconds with the same result,
  independent of machine speed.
- Consequence (documented in docs/simulator.md): anything that should happen "while the service is idle" must
  be driven by the service itself or by a caller-script step that fires on idleness, not by a timer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the simulator needs from time."""

    def now(self) -> float:
        """Seconds since the epoch (float)."""

    def datetime(self) -> datetime:
        """`now()` as an aware UTC datetime."""

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` at epoch time `when` (synchronously, from the event loop)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    @contextmanager
    def hold(self) -> Iterator[None]:
        """While held, virtual time does not advance (no-op on the real clock)."""

    def acquire(self) -> None:
        """`hold()` without a context (balanced by `release()`)."""

    def release(self) -> None: ...


class RealClock:
    """Wall-clock time; timers are asyncio timers."""

    def now(self) -> float:
        return time.time()

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, when - self.now()), callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    @contextmanager
    def hold(self) -> Iterator[None]:
        yield

    def acquire(self) -> None:
        """No-op: real time runs regardless."""

    def release(self) -> None:
        """No-op: real time runs regardless."""


class _VirtualTimer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


DEFAULT_START = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


class VirtualClock:
    """Simulated time that jumps from timer to timer when the simulation is quiet.

    `start` is the datetime the clock shows at creation (naive datetimes are taken as UTC), so business-hours
    tests can start on a Sunday night.  The advancer task starts lazily with the first timer.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or DEFAULT_START
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.timestamp()
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self._seq = itertools.count()
        self._holds = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.jumps = 0  # how many times time advanced (for tests and benchmarks)

    # -- interface -------------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self._now, tz=UTC)

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def fire() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(seconds, fire)
        try:
            await fut
        finally:
            timer.cancel()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(max(when, self._now), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        self._ensure_running()
        self._poke()
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now + max(0.0, delay), callback)

    @contextmanager
    def hold(self) -> Iterator[None]:
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if self._holds == 0:
                self._poke()

    def acquire(self) -> None:
        """Non-context form of `hold()` for holds that span callbacks."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        if self._holds == 0:
            self._poke()

    @property
    def held(self) -> bool:
        return self._holds > 0

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass (for tests): sleeps on the clock itself."""
        await self.sleep(seconds)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- the advancer ----------------------------------------------------------------------------------------
    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _ensure_running(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop  # a clock reused under a new event loop (e.g. the next test) restarts here
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="virtual-clock")

    async def _quiet(self) -> bool:
        """Yield until the loop has nothing else ready; True if nobody holds the clock afterwards."""
        loop = asyncio.get_running_loop()
        for _ in range(200):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            if self._holds:
                return False
            if ready is not None and len(ready) == 0:
                # one more round: a socket read may be pending in the selector with zero timeout
                await asyncio.sleep(0)
                if self._holds == 0 and len(ready) == 0:
                    return True
        return self._holds == 0

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._drop_cancelled()
            if not self._heap or self._holds:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not await self._quiet():
                continue
            self._drop_cancelled()
            if not self._heap:
                continue
            when = self._heap[0][0]
            if when > self._now:
                self._now = when
                self.jumps += 1
            while self._heap and self._heap[0][0] <= self._now:
                _, _, timer = heapq.heappop(self._heap)
                if not timer.cancelled:
                    timer.cancelled = True
                    timer.callback()

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

"""Clocks: virtual time jumps only when nothing holds it; start datetime; timers in order; reuse across loops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ivr.sim import RealClock, VirtualClock


async def test_virtual_sleep_jumps_and_keeps_order() -> None:
    clock = VirtualClock(start=datetime(2026, 12, 6, 23, 59, 0))  # naive = UTC
    t0 = clock.now()
    fired: list[tuple[str, float]] = []
    clock.call_later(30, lambda: fired.append(("b", clock.now() - t0)))
    clock.call_later(10, lambda: fired.append(("a", clock.now() - t0)))
    await clock.sleep(60)
    assert fired == [("a", 10.0), ("b", 30.0)]
    assert clock.now() - t0 == 60.0
    assert clock.datetime() == datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC)
    clock.close()


async def test_hold_stops_virtual_time() -> None:
    clock = VirtualClock()
    t0 = clock.now()
    fired = asyncio.Event()
    clock.call_later(5, fired.set)
    with clock.hold():
        for _ in range(50):
            await asyncio.sleep(0)
        assert not fired.is_set() and clock.now() == t0  # held: the timer cannot fire
    await asyncio.wait_for(fired.wait(), 1)
    assert clock.now() - t0 == 5.0
    clock.close()


async def test_cancelled_timer_does_not_fire() -> None:
    clock = VirtualClock()
    hits: list[int] = []
    handle = clock.call_later(1, lambda: hits.append(1))
    handle.cancel()
    await clock.sleep(2)
    assert hits == []
    clock.close()


SHARED = VirtualClock()


def test_a_clock_reused_by_another_event_loop_still_runs() -> None:
    for _ in range(2):  # each asyncio.run is a new loop, like pytest-asyncio per test
        asyncio.run(asyncio.wait_for(SHARED.sleep(3), 1))


async def test_real_clock_interface() -> None:
    clock = RealClock()
    with clock.hold():
        clock.acquire()
        clock.release()
    before = clock.now()
    await clock.sleep(0.01)
    assert clock.now() >= before + 0.009
    assert clock.datetime().tzinfo is UTC

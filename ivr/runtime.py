"""The `serve` process's runtime: which event loop runs it, and how the garbage collector is set once it is up.

Rules for this file:
- Only process-wide choices that must be made before (the loop) or right after (the collector) start-up; no
  service logic. `ivr serve` calls it; tests, the demo and the tools keep Python's defaults.
- The loop: uvloop (libuv, the same asyncio API) when `event_loop` is `auto` or `uvloop` and it is installed,
  else the standard loop. Why: with the same code a call costs ~0.1 ms less CPU (the loop's reads, writes,
  timers and callbacks in C; bench/call_cpu.py, docs/agi.md). `asyncio` turns it off (a platform without
  uvloop wheels, or to rule the loop out when hunting a bug).
- The collector: after start-up everything alive (modules, settings, flows, pydantic models: ~65,000 objects)
  is moved out of the collector's sight with `gc.freeze()`, so a full collection no longer walks it, and the
  youngest generation is collected after 10,000 net allocations instead of 700. Measured on the bench's calls:
  ~190 young collections per 3,200 calls costing ~35 us of CPU per call, against ~5 us after; a full
  collection with 2,000 live calls cost a `GET /calls` every third or fourth request ~100-130 ms
  (bench/held_calls.py). Reference cycles are still collected, in larger batches (a young one within 10,000
  allocations).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]
T = TypeVar("T")
YOUNG_THRESHOLD = 10_000  # net container allocations between young-generation collections (Python's default: 700)


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for `asyncio.Runner(loop_factory=...)`: uvloop's, or None for the standard loop.
    `uvloop` when it is not installed raises RuntimeError (the settings asked for it explicitly)."""
    if choice == "asyncio":
        return None
    if not uvloop_available():
        if choice == "uvloop":
            raise RuntimeError("event_loop is uvloop but uvloop is not installed (pip install uvloop)")
        return None
    import uvloop

    return uvloop.new_event_loop


def loop_name() -> str:
    """`uvloop` or `asyncio`: what runs the current thread's loop (`none` outside one)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "none"
    return type(loop).__module__.split(".")[0]


def run(main: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> T:
    """`asyncio.run(main)` on a loop from `factory` (`loop_factory()`; None: the standard loop)."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def settle_gc(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Call once the service has started: collect what start-up left, freeze the survivors (they live as long as
    the process), and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    log.debug("gc: %d start-up objects frozen; thresholds %s", gc.get_freeze_count(), gc.get_threshold())

"""Running the async flow code in a process without a running event loop (classic AGI, one process per call).

Rules for this file:
- `drive(coro)` runs a coroutine whose awaits never really suspend (classic AGI's `BlockingSession` does blocking
  I/O inside `async def` methods) to its end in one `send()`. If it does suspend, something awaited a real
  event-loop future on this path: that is a bug, so `drive` throws `Suspended` into the coroutine (its `finally`
  blocks and the flow engine's error handling still run, the call ends as an error and is logged) and never
  waits for it.
- `LoopBridge` serves what truly needs an event loop (the storage's drivers and worker thread, aiohttp for
  lookups): `bridge.wrap(service)` returns a proxy whose coroutine methods run to completion on the bridge's own
  loop (`run_until_complete`: legal, since no loop runs in this thread), created, and asyncio imported, on first
  use, i.e. only when a call reaches a node that stores or looks something up, after its first commands went out.
  `close()` closes the wrapped services and the loop at the end of the call.
- No asyncio import at module level: classic AGI imports this before its first command.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from types import CoroutineType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_THROWS = 8  # a coroutine that keeps suspending after this many Suspended errors is closed


class Suspended(RuntimeError):
    """A coroutine driven without an event loop awaited something that really suspends (an event-loop future)."""


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`, which must never suspend, to its end and return its value (its exception propagates)."""
    try:
        awaited = coro.send(None)
        for _ in range(MAX_THROWS):
            awaited = coro.throw(
                Suspended(
                    f"awaited {awaited!r}, which suspends, on a path without an event loop; "
                    "an async service must be reached through ivr.syncrun.LoopBridge"
                )
            )
    except StopIteration as stop:
        value: T = stop.value
        return value
    coro.close()
    raise Suspended(f"the coroutine kept suspending ({awaited!r}) after {MAX_THROWS} Suspended errors; closed it")


async def _value(value: T) -> T:
    """A coroutine that returns `value` at once (what a bridged method gives its caller to await)."""
    return value


class BridgedService:
    """`service`'s attributes; calling one of its coroutine methods runs the coroutine on the bridge's loop."""

    def __init__(self, bridge: LoopBridge, service: Any) -> None:
        self._bridge = bridge
        self.service = service

    def __getattr__(self, name: str) -> Any:  # only names this class does not have: the service's API
        attr = getattr(self.service, name)
        if not callable(attr):
            return attr
        bridge = self._bridge

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if isinstance(result, CoroutineType):
                return _value(bridge.run(result))
            return result

        return call


class LoopBridge:
    """A private event loop for the services a loop-less process reaches (see the rules)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._services: list[Any] = []

    @property
    def started(self) -> bool:
        """True once a coroutine ran (asyncio imported, the loop created)."""
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` to completion on the bridge's loop (created on first use)."""
        loop = self._loop
        if loop is None:
            import asyncio  # here, not at the top: only a call that reaches such a service pays for it

            loop = self._loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)

    def wrap(self, service: Any) -> Any:
        """`service` behind the bridge; its `close()` (if any) runs in `close()`."""
        self._services.append(service)
        return BridgedService(self, service)

    def close(self) -> None:
        """Close the wrapped services (those the loop ran, or that say they are `opened`), then the loop."""
        services, self._services = self._services, []
        for service in services:
            close = getattr(type(service), "close", None)
            if close is None or not (self._loop is not None or getattr(service, "opened", False)):
                continue
            try:
                self.run(service.close())
            except Exception:  # the call is over; what is left to close must not hide the others
                log.exception("closing %s after the call failed", type(service).__name__)
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


BRIDGE = LoopBridge()
"""The process's bridge: classic AGI's services are wrapped in it, and its runner closes it after the call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ivr.agi import FastAGIServer, Router
from ivr.agi.session import AGISession


class Outcome:
    """What a test handler returned or raised, awaited by the test (bounded)."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.session: AGISession | None = None

    async def wait(self, timeout: float = 5.0) -> object:
        await asyncio.wait_for(self.done.wait(), timeout)
        return self.value


def capture(body: Callable[[AGISession], Awaitable[object]], outcome: Outcome):
    async def handler(session: AGISession) -> None:
        outcome.session = session
        try:
            outcome.value = await body(session)
        except BaseException as exc:
            outcome.error = exc
            raise
        finally:
            outcome.done.set()

    return handler


@contextlib.asynccontextmanager
async def running_server(router: Router, **kwargs) -> AsyncIterator[FastAGIServer]:
    kwargs.setdefault("shutdown_deadline", 1.0)
    kwargs.setdefault("hangup_grace", 0.2)
    server = FastAGIServer(router, "127.0.0.1", 0, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def outcome() -> Outcome:
    return Outcome()

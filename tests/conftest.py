"""Suite-wide fixtures.

The suite runs with warnings as errors (pyproject: filterwarnings = ["error"]), so every socket a test opens must be
closed. Test-side peers (FakeAsterisk, AMIPeer) register their StreamWriter with `client_connections`; the autouse
fixture below closes whatever a test left open, on the test's own event loop, before the loop goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.streams import client_connections


@pytest.fixture(autouse=True)
async def _close_test_connections() -> AsyncIterator[None]:
    yield
    writers = list(client_connections)
    client_connections.clear()
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)

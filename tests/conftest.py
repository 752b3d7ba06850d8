"""Suite-wide fixtures.

The suite runs with warnings as errors (pyproject: filterwarnings = ["error"]), so every socket a test opens must be
closed. Test-side peers (FakeAsterisk, AMIPeer) register their StreamWriter with `client_connections`; the autouse
fixture below closes whatever a test left open, on the test's own event loop, before the loop goes away.

A throwaway PostgreSQL cluster (real server, never a mock): `pg_cluster` is started once per session (initdb +
pg_ctl in a temporary directory, 127.0.0.1, free port; see `ivr.storage.testing`) and removed at the end. Tests
that need it skip, with the reason, only where the PostgreSQL binaries are absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from ivr.storage.testing import PgCluster, create_cluster, missing_reason
from tests.streams import client_connections

_names = itertools.count(1)


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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = create_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session cluster (its URL; the password is `pg_cluster.password`)."""
    return pg_cluster.create_database(f"t{next(_names)}")

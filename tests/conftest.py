"""Fixtures shared by several test directories: a throwaway PostgreSQL cluster (real server, never a mock).

`pg_cluster` is started once per session (initdb + pg_ctl in a temporary directory, 127.0.0.1, free port; see
`ivr.storage.testing`) and removed at the end. Tests that need it skip, with the reason, only where the
PostgreSQL binaries are absent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from ivr.storage.testing import PgCluster, create_cluster, missing_reason

_names = itertools.count(1)


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

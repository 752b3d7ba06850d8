"""`store`: every contract test runs once on SQLite (in memory) and once on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.storage import SQLStorage, open_storage

TABLES = "voicemail, callback_attempt, callback, recording, campaign_attempt, campaign_contact, campaign, dnc"


@pytest.fixture(scope="session")
def contract_db(pg_cluster) -> str:
    return pg_cluster.create_database("contract")


async def postgres_store(pg_cluster, url: str) -> SQLStorage:
    s = open_storage(url, password=pg_cluster.password, min_size=1, max_size=4)
    await s.open()
    async with s.db.transaction() as tx:  # each test starts on empty tables, ids from 1
        await tx.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return s


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request) -> AsyncIterator[SQLStorage]:
    if request.param == "sqlite":
        s = open_storage("memory:")
    else:
        cluster = request.getfixturevalue("pg_cluster")
        s = await postgres_store(cluster, request.getfixturevalue("contract_db"))
    try:
        yield s
    finally:
        await s.close()

"""The PostgreSQL backend's own behaviour on a real server: schema types, migrations under concurrent start,
login, and losing the database while running (a second throwaway cluster that the test stops and starts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from ivr.storage import SCHEMA_VERSION, CallbackRequest, StorageError, StorageUnavailable, Voicemail, open_storage
from ivr.storage.testing import create_cluster, free_port, missing_reason

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


async def columns(pg_cluster, url: str) -> dict[tuple[str, str], str]:
    conn = await asyncpg.connect(url, password=pg_cluster.password)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
        )
        return {(r["table_name"], r["column_name"]): r["data_type"] for r in rows}
    finally:
        await conn.close()


async def test_times_are_timestamptz_and_ids_bigint(pg_cluster, pg_database):
    s = open_storage(pg_database, password=pg_cluster.password)
    await s.open()
    await s.close()
    cols = await columns(pg_cluster, pg_database)
    for table, column in [
        ("voicemail", "created_at"),
        ("callback", "next_attempt_at"),
        ("callback", "lease_until"),
        ("callback_attempt", "at"),
        ("recording", "started_at"),
    ]:
        assert cols[(table, column)] == "timestamp with time zone", (table, column)
    assert cols[("callback", "id")] == "bigint"
    assert cols[("voicemail", "seconds")] == "double precision"


async def test_instances_starting_together_migrate_once(pg_cluster, pg_database):
    stores = [open_storage(pg_database, password=pg_cluster.password, min_size=1, max_size=2) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))  # all four race for the advisory lock
        conn = await asyncpg.connect(pg_database, password=pg_cluster.password)
        try:
            assert await conn.fetch("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        finally:
            await conn.close()
        vm = await stores[0].add_voicemail(Voicemail(mailbox="m", caller="c", path="/p", seconds=1.0))
        assert [v.id for v in await stores[3].list_voicemails()] == [vm]
    finally:
        for s in stores:
            await s.close()


async def test_newer_schema_is_refused(pg_cluster, pg_database):
    s = open_storage(pg_database, password=pg_cluster.password)
    await s.open()
    async with s.db.transaction() as tx:
        await tx.execute("UPDATE schema_version SET version = ?", SCHEMA_VERSION + 1)
    await s.close()
    again = open_storage(pg_database, password=pg_cluster.password)
    with pytest.raises(StorageError, match="newer than this ivr"):
        await again.open()


async def test_login_needs_the_right_password_and_never_shows_it(pg_cluster, pg_database):
    for password in ("wrong-one", None):
        s = open_storage(pg_database, password=password)
        with pytest.raises(StorageUnavailable) as caught:
            await s.open()
        assert "wrong-one" not in str(caught.value) and "127.0.0.1" in str(caught.value)
        await s.close()


async def test_unreachable_at_start():
    s = open_storage(f"postgresql://ivr@127.0.0.1:{free_port()}/ivr", password="x", connect_timeout=2)
    with pytest.raises(StorageUnavailable, match="cannot connect to PostgreSQL at postgresql://ivr@127.0.0.1"):
        await s.open()
    await s.close()
    with pytest.raises(StorageError, match="closed"):
        await s.list_voicemails()


@pytest.fixture(scope="module")
def own_cluster():
    """A cluster of its own: these tests stop and start it."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = create_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


async def test_database_lost_while_running_then_back(own_cluster):
    url = own_cluster.create_database("lost")
    s = open_storage(url, password=own_cluster.password, backoff_min=0.05, backoff_max=0.2, connect_timeout=2)
    await s.open()
    try:
        cb = await s.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
        await asyncio.to_thread(own_cluster.stop)
        with pytest.raises(StorageUnavailable):
            await s.get_callback(cb)
        # Within the backoff window calls fail at once, saying when the next attempt is.
        with pytest.raises(StorageUnavailable, match="next attempt in"):
            await s.get_callback(cb)
        await asyncio.to_thread(own_cluster.start)
        for _ in range(200):  # reconnects after the backoff window; bounded, not timed
            try:
                got = await s.get_callback(cb)
                break
            except StorageUnavailable:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the storage never reconnected")
        assert got.state == "pending"  # nothing lost with the connection
        assert await s.add_voicemail(Voicemail(mailbox="m", caller="c", path="/p", seconds=1.0)) == 1
    finally:
        if not own_cluster.running:
            own_cluster.start()
        await s.close()


async def test_api_answers_503_storage_unavailable_while_the_database_is_away(own_cluster, tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from ivr.api.app import create_app
    from ivr.calls.operations import CallOperations
    from ivr.calls.registry import CallRegistry
    from ivr.calls.settings import CallControlSettings
    from tests.calls.fakes import FakeAMI

    url = own_cluster.create_database("api")
    storage = open_storage(url, password=own_cluster.password, backoff_min=0.05, backoff_max=0.2, connect_timeout=2)
    await storage.open()
    registry = CallRegistry(clock=lambda: 1000.0)
    settings = CallControlSettings(recordings_dir=str(tmp_path), download_dir=str(tmp_path))
    app = create_app(
        operations=CallOperations(FakeAMI(), registry, storage, settings),
        registry=registry,
        storage=storage,
        token="t",
        settings=settings,
    )
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    auth = {"Authorization": "Bearer t"}
    try:
        assert (await client.get("/callbacks", headers=auth)).status == 200
        await asyncio.to_thread(own_cluster.stop)
        for path in ("/callbacks", "/recordings", "/callbacks/1"):
            resp = await client.get(path, headers=auth)
            assert resp.status == 503, path
            assert (await resp.json())["error"] == "storage_unavailable"
        await asyncio.to_thread(own_cluster.start)
        for _ in range(200):
            resp = await client.get("/callbacks", headers=auth)
            if resp.status == 200:
                break
            await asyncio.sleep(0.05)
        assert resp.status == 200  # back without a restart
    finally:
        if not own_cluster.running:
            own_cluster.start()
        await client.close()
        await storage.close()


def test_serve_refuses_an_unreachable_database_with_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "ivr.yaml"
    cfg.write_text(
        f"storage: {{url: 'postgresql://ivr@127.0.0.1:{free_port()}/ivr', connect_timeout: 2s}}\n"
        f"flows_dir: {root}/config/flows\nfastagi: {{port: 0}}\nhttp: {{port: 0}}\nami: {{enabled: false}}\n",
        encoding="utf-8",
    )
    env = {"PATH": "/usr/bin:/bin", "IVR_STORAGE_PASSWORD": "x", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "main.py", "serve", "--config", str(cfg)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout.strip().splitlines()  # stderr holds only the usual start-up log lines
    assert len(out) == 1 and out[0].startswith("ivr: cannot start: storage.url: cannot connect to PostgreSQL"), out
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


async def test_first_call_opens_the_pool_when_nobody_called_open(pg_cluster, pg_database):
    """Classic AGI and the tools build the storage without the service's start: the first call connects."""
    s = open_storage(pg_database, password=pg_cluster.password)
    try:
        results = await asyncio.gather(*(s.add_voicemail(Voicemail("m", "c", "/p", 1.0)) for _ in range(5)))
        assert sorted(results) == [1, 2, 3, 4, 5]
    finally:
        await s.close()

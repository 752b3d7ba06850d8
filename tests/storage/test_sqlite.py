"""The SQLite backend's own behaviour: a file that survives restarts (WAL), migrations of older files, URLs."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from ivr.storage import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CallbackRequest,
    Recording,
    StorageError,
    Voicemail,
    open_storage,
)
from ivr.storage.migrations import render

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


async def test_file_survives_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/sub/ivr.db"
    s = open_storage(url)
    vm_id = await s.add_voicemail(
        Voicemail(
            mailbox="sales",
            caller="+37060000001",
            path="/vm/1.wav",
            seconds=12.5,
            flow="main",
            call_id="1795909439.108",
            created_at=T0,
        )
    )
    cb_id = await s.add_callback(CallbackRequest(number="+37060000002", queue="support", requested_at=T0))
    rec_id = await s.add_recording(Recording(call_id="c1", path="/rec/c1.wav", caller="301", started_at=T0))
    await s.finish_recording(rec_id, T0 + timedelta(seconds=6), 6.0)
    await s.close()

    s2 = open_storage(url)
    try:
        [vm] = await s2.list_voicemails("sales")
        assert (vm.id, vm.caller, vm.seconds, vm.created_at) == (vm_id, "+37060000001", 12.5, T0)
        cb = await s2.get_callback(cb_id)
        assert (cb.number, cb.queue, cb.state, cb.next_attempt_at) == ("+37060000002", "support", "pending", T0)
        rec = await s2.get_recording(rec_id)
        assert (rec.state, rec.seconds, rec.ended_at) == ("finished", 6.0, T0 + timedelta(seconds=6))
    finally:
        await s2.close()
    # WAL mode and the schema version are on the file.
    conn = sqlite3.connect(tmp_path / "sub" / "ivr.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "ivr.db"
    s = open_storage(f"sqlite:///{path}")
    await s.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this ivr"):
        open_storage(f"sqlite:///{path}")


def test_relative_and_absolute_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import asyncio

    async def roundtrip(url: str) -> None:
        s = open_storage(url)
        await s.add_voicemail(Voicemail(mailbox="m", caller="c", path="/p", seconds=1.0))
        await s.close()

    asyncio.run(roundtrip("sqlite:///var/ivr.db"))  # three slashes: relative, as in SQLAlchemy
    assert (tmp_path / "var" / "ivr.db").is_file()
    asyncio.run(roundtrip(f"sqlite:///{tmp_path}/abs/ivr.db"))  # four slashes: absolute
    assert (tmp_path / "abs" / "ivr.db").is_file()


def test_bad_urls():
    with pytest.raises(StorageError, match="unsupported storage URL"):
        open_storage("mysql://x/ivr")
    with pytest.raises(StorageError, match="write PostgreSQL URLs like"):
        open_storage("postgres://x")
    with pytest.raises(StorageError, match="must not contain a password"):
        open_storage("postgresql://ivr:hunter2@db/ivr")
    with pytest.raises(StorageError, match="three slashes"):
        open_storage("sqlite://relative.db")


async def test_version_1_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    for statement in render(MIGRATIONS[0], "sqlite"):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO callback (number, queue, flow, caller_name, source_call_id, language, requested_at, "
        "next_attempt_at, max_attempts, attempts, state, last_result) VALUES ('1', 'q', 'callback', '', "
        "'', '', ?, ?, 3, 0, 'dialing', NULL)",
        (T0.isoformat(), T0.isoformat()),
    )
    conn.commit()
    conn.close()
    s = open_storage(f"sqlite:///{path}")
    try:
        old = await s.get_callback(1)
        assert (old.state, old.not_before) == ("dialing", None)
        assert await s.requeue_stale_callbacks(claimed_before=T0) == 1  # claimed at an unknown time: stale
    finally:
        await s.close()


async def test_closed_storage_refuses(tmp_path):
    s = open_storage("memory:")
    await s.close()
    with pytest.raises(StorageError, match="closed"):
        await s.list_voicemails()


async def test_concurrent_writers_are_serialised(tmp_path):
    import asyncio

    s = open_storage(f"sqlite:///{tmp_path}/ivr.db")
    try:
        ids = await asyncio.gather(
            *(s.add_callback(CallbackRequest(number=str(n), queue="q", requested_at=T0)) for n in range(200))
        )
        assert len(set(ids)) == 200
        claims = await asyncio.gather(*(s.mark_callback_dialing(ids[0], T0) for _ in range(20)))
        assert claims.count(True) == 1  # exactly one claimant wins a request
    finally:
        await s.close()


def test_processes_opening_one_new_file_together_migrate_once(tmp_path):
    """Several openers of one new file at the same moment (threads here, processes in production): BEGIN
    IMMEDIATE makes one apply each migration; the others find it applied."""
    import asyncio
    import threading

    url = f"sqlite:///{tmp_path}/race.db"
    opened, errors = [], []
    start = threading.Barrier(4)

    def opener() -> None:
        start.wait()
        try:
            opened.append(open_storage(url))
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 4

    async def close_all() -> None:
        for s in opened:
            await s.close()

    asyncio.run(close_all())
    conn = sqlite3.connect(tmp_path / "race.db")
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()

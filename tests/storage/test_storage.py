"""Storage: the SQLite implementation through the `Storage` interface, on a file (restart) and in memory."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from ivr.storage import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CallbackRequest,
    NotFound,
    Recording,
    Storage,
    StorageError,
    Voicemail,
    open_storage,
)

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
async def store():
    s = open_storage("memory:")
    yield s
    await s.close()


async def test_is_a_storage(store):
    assert isinstance(store, Storage)


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
        open_storage("postgres://x")
    with pytest.raises(StorageError, match="three slashes"):
        open_storage("sqlite://relative.db")


async def test_due_callbacks_order_queue_filter_and_not_before(store):
    a = await store.add_callback(CallbackRequest(number="1", queue="q1", requested_at=T0 + timedelta(minutes=2)))
    b = await store.add_callback(CallbackRequest(number="2", queue="q2", requested_at=T0))
    await store.add_callback(
        CallbackRequest(number="3", queue="q1", requested_at=T0, not_before=T0 + timedelta(hours=1))
    )
    due = await store.due_callbacks(T0 + timedelta(minutes=5), limit=10)
    assert [c.id for c in due] == [b, a]
    assert [c.id for c in await store.due_callbacks(T0 + timedelta(minutes=5), limit=10, queue="q1")] == [a]
    assert [c.id for c in await store.due_callbacks(T0 + timedelta(minutes=5), limit=1)] == [b]
    assert await store.due_callback_queues(T0 + timedelta(minutes=5)) == ["q1", "q2"]
    assert await store.due_callback_queues(T0 + timedelta(minutes=1)) == ["q2"]


async def test_attempts_retry_then_fail(store):
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0, max_attempts=2))
    assert await store.mark_callback_dialing(cb, T0)
    assert not await store.mark_callback_dialing(cb, T0)  # already claimed
    assert await store.due_callbacks(T0, 10) == []  # dialing requests are not due
    after = await store.record_callback_attempt(cb, "busy", T0, retry_at=T0 + timedelta(minutes=5), call_id="x1")
    assert (after.state, after.attempts, after.last_result) == ("pending", 1, "busy")
    assert await store.due_callbacks(T0 + timedelta(minutes=4), 10) == []
    assert [c.id for c in await store.due_callbacks(T0 + timedelta(minutes=5), 10)] == [cb]
    await store.mark_callback_dialing(cb, T0 + timedelta(minutes=5))
    final = await store.record_callback_attempt(
        cb, "no_answer", T0 + timedelta(minutes=5), retry_at=T0 + timedelta(minutes=10)
    )
    assert (final.state, final.attempts) == ("failed", 2)  # max_attempts reached: no more retries
    attempts = await store.callback_attempts(cb)
    assert [(a.result, a.call_id) for a in attempts] == [("busy", "x1"), ("no_answer", "")]


async def test_answered_waits_for_the_flow_then_completes_and_unknown_result_refused(store):
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
    with pytest.raises(ValueError, match="unknown callback result"):
        await store.record_callback_attempt(cb, "maybe", T0)
    await store.mark_callback_dialing(cb, T0)
    answered = await store.record_callback_attempt(cb, "answered", T0)
    assert answered.state == "answered"  # not completed before the flow connected the customer
    done = await store.resolve_answered_callback(cb, True, T0)
    assert done is not None and done.state == "completed"
    assert await store.list_callbacks(state="completed") == [done]
    assert await store.resolve_answered_callback(cb, False, T0) is None  # a repeated report changes nothing


async def test_answered_but_not_connected_is_retried_as_no_agent(store):
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0, max_attempts=2))
    await store.mark_callback_dialing(cb, T0)
    await store.record_callback_attempt(cb, "answered", T0, call_id="c1")
    again = await store.resolve_answered_callback(cb, False, T0, retry_at=T0 + timedelta(minutes=10))
    assert (again.state, again.attempts, again.last_result) == ("pending", 1, "no_agent")
    assert again.next_attempt_at == T0 + timedelta(minutes=10)
    assert [(a.result, a.call_id) for a in await store.callback_attempts(cb)] == [("no_agent", "c1")]
    await store.mark_callback_dialing(cb, T0 + timedelta(minutes=10))
    await store.record_callback_attempt(cb, "answered", T0 + timedelta(minutes=10))
    last = await store.resolve_answered_callback(cb, False, T0 + timedelta(minutes=11), retry_at=None)
    assert (last.state, last.attempts) == ("failed", 2)


async def test_not_before_is_returned(store):
    later = T0 + timedelta(hours=2)
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0, not_before=later))
    assert (await store.get_callback(cb)).not_before == later
    plain = await store.add_callback(CallbackRequest(number="2", queue="q", requested_at=T0))
    assert (await store.get_callback(plain)).not_before is None


async def test_version_1_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    for statement in MIGRATIONS[0]:
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


async def test_requeue_only_dialing_rows_claimed_long_ago_and_not_running(store):
    old = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
    running = await store.add_callback(CallbackRequest(number="2", queue="q", requested_at=T0))
    fresh = await store.add_callback(CallbackRequest(number="3", queue="q", requested_at=T0))
    for cb in (old, running):
        await store.mark_callback_dialing(cb, T0)
    await store.mark_callback_dialing(fresh, T0 + timedelta(minutes=5))
    assert await store.requeue_stale_callbacks(claimed_before=T0 + timedelta(minutes=1), keep=[running]) == 1
    assert [(await store.get_callback(c)).state for c in (old, running, fresh)] == ["pending", "dialing", "dialing"]


async def test_stale_answered_rows_are_closed(store):
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
    await store.mark_callback_dialing(cb, T0)
    await store.record_callback_attempt(cb, "answered", T0)
    assert await store.close_stale_answered_callbacks(T0) == 0
    assert await store.close_stale_answered_callbacks(T0 + timedelta(hours=2)) == 1
    assert (await store.get_callback(cb)).state == "completed"


async def test_cancel_and_requeue_stale(store):
    a = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
    b = await store.add_callback(CallbackRequest(number="2", queue="q", requested_at=T0))
    await store.mark_callback_dialing(b, T0)
    assert await store.requeue_stale_callbacks() == 1
    assert (await store.get_callback(b)).state == "pending"
    assert await store.cancel_callback(a)
    assert not await store.cancel_callback(a)
    with pytest.raises(NotFound):
        await store.cancel_callback(999)
    assert [c.id for c in await store.due_callbacks(T0, 10)] == [b]


async def test_recordings_filters_and_states(store):
    r1 = await store.add_recording(
        Recording(call_id="c1", path="/r/1.wav", agent="1001", queue="sales", flow="main", started_at=T0)
    )
    r2 = await store.add_recording(
        Recording(call_id="c2", path="/r/2.wav", agent="1002", queue="support", started_at=T0 + timedelta(hours=1))
    )
    await store.set_recording_state(r1, "paused")
    assert (await store.get_recording(r1)).state == "paused"
    with pytest.raises(ValueError):
        await store.set_recording_state(r1, "exploded")
    assert [r.id for r in await store.list_recordings()] == [r2, r1]
    assert [r.id for r in await store.list_recordings(agent="1001")] == [r1]
    assert [r.id for r in await store.list_recordings(since=T0 + timedelta(minutes=30))] == [r2]
    assert [r.id for r in await store.list_recordings(until=T0 + timedelta(minutes=30))] == [r1]
    assert [r.id for r in await store.list_recordings(limit=1, offset=1)] == [r1]
    with pytest.raises(NotFound):
        await store.get_recording(42)
    with pytest.raises(NotFound):
        await store.finish_recording(42, T0, 1.0)


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

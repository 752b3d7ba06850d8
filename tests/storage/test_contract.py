"""The storage contract: every `Storage` method, run on both backends (SQLite in memory, a real PostgreSQL).

The `store` fixture (conftest) is parametrized by backend; `pair` gives two independent storages on one database
(two processes' worth: two SQLite connections on one file, two PostgreSQL pools), for what must hold across
service instances: leasing, per-queue limits, lease take-over.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.storage import (
    CallbackRequest,
    NotFound,
    Recording,
    Storage,
    StorageError,
    Voicemail,
    open_storage,
)

from .conftest import postgres_store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


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


async def test_is_a_storage(store):
    assert isinstance(store, Storage)


async def test_voicemail_rows_round_trip_newest_first(store):
    first = await store.add_voicemail(
        Voicemail(mailbox="sales", caller="+37060000001", path="/vm/1.wav", seconds=12.5, flow="main", created_at=T0)
    )
    second = await store.add_voicemail(
        Voicemail(mailbox="sales", caller="+37060000002", path="/vm/2.wav", seconds=3.0, created_at=T0 + H)
    )
    await store.add_voicemail(Voicemail(mailbox="other", caller="x", path="/vm/3.wav", seconds=1.0, created_at=T0))
    rows = await store.list_voicemails("sales")
    assert [v.id for v in rows] == [second, first]
    assert (rows[1].caller, rows[1].seconds, rows[1].flow, rows[1].created_at) == ("+37060000001", 12.5, "main", T0)
    assert len(await store.list_voicemails()) == 3
    assert len(await store.list_voicemails(limit=1)) == 1


async def test_naive_times_are_utc(store):
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0.replace(tzinfo=None)))
    got = await store.get_callback(cb)
    assert got.requested_at == T0 and got.requested_at.tzinfo is not None


async def test_get_list_and_missing_callback(store):
    a = await store.add_callback(CallbackRequest(number="1", queue="q1", requested_at=T0, caller_name="Ona"))
    b = await store.add_callback(CallbackRequest(number="2", queue="q2", requested_at=T0, language="lt"))
    assert [c.id for c in await store.list_callbacks()] == [b, a]
    assert [c.id for c in await store.list_callbacks(queue="q1")] == [a]
    assert [c.id for c in await store.list_callbacks(state="pending", limit=1)] == [b]
    got = await store.get_callback(b)
    assert (got.number, got.queue, got.language, got.state, got.attempts) == ("2", "q2", "lt", "pending", 0)
    with pytest.raises(NotFound):
        await store.get_callback(999)
    with pytest.raises(ValueError):
        await store.add_callback(CallbackRequest(number="3", queue="q", max_attempts=0))


async def test_lease_claims_due_rows_up_to_the_queue_limit(store):
    ids = [await store.add_callback(CallbackRequest(number=str(n), queue="q", requested_at=T0)) for n in range(5)]
    later = await store.add_callback(CallbackRequest(number="9", queue="q", requested_at=T0 + H))
    got = await store.lease_due_callbacks(T0, queue="q", limit=3, owner="a", lease_until=T0 + M)
    assert [c.id for c in got] == ids[:3] and {c.state for c in got} == {"dialing"}
    # The limit counts live leases of every owner: nothing is free for b until one ends.
    assert await store.lease_due_callbacks(T0, queue="q", limit=3, owner="b", lease_until=T0 + M) == []
    await store.record_callback_attempt(ids[0], "busy", T0, retry_at=T0 + H, owner="a")
    [next_one] = await store.lease_due_callbacks(T0, queue="q", limit=3, owner="b", lease_until=T0 + M)
    assert next_one.id == ids[3]
    assert later not in [c.id for c in await store.list_callbacks(state="dialing")]
    assert await store.lease_due_callbacks(T0, queue="other", limit=3, owner="a", lease_until=T0 + M) == []


async def test_expired_lease_is_taken_over_and_renewal_keeps_it(store):
    kept, dead = [await store.add_callback(CallbackRequest(number=str(n), queue="q", requested_at=T0)) for n in (1, 2)]
    await store.lease_due_callbacks(T0, queue="q", limit=2, owner="a", lease_until=T0 + M)
    assert await store.renew_callback_leases("a", [kept], T0 + 3 * M) == 1
    assert await store.renew_callback_leases("b", [dead], T0 + 3 * M) == 0  # not b's lease
    assert await store.due_callback_queues(T0 + M / 2) == []
    # a stopped renewing `dead` (it died): after the expiry the queue is due again and b takes it over.
    assert await store.due_callback_queues(T0 + 2 * M) == ["q"]
    [taken] = await store.lease_due_callbacks(T0 + 2 * M, queue="q", limit=2, owner="b", lease_until=T0 + 4 * M)
    assert taken.id == dead
    # a's late result for the request b now holds is kept as history but does not change its state.
    late = await store.record_callback_attempt(dead, "busy", T0 + 2 * M, retry_at=T0 + H, owner="a")
    assert (late.state, late.attempts) == ("dialing", 0)
    done = await store.record_callback_attempt(dead, "answered", T0 + 2 * M, owner="b")
    assert (done.state, done.attempts) == ("answered", 1)
    assert [a.result for a in await store.callback_attempts(dead)] == ["busy", "answered"]


async def test_a_flow_report_that_overtakes_its_attempt_is_applied_by_it(store):
    connected, cancelled, missed = [
        await store.add_callback(CallbackRequest(number=str(n), queue="q", requested_at=T0, max_attempts=2))
        for n in range(3)
    ]
    await store.lease_due_callbacks(T0, queue="q", limit=3, owner="a", lease_until=T0 + M)
    assert await store.defer_callback_verdict(connected, "connected")
    assert await store.defer_callback_verdict(cancelled, "cancelled")
    assert await store.defer_callback_verdict(missed, "not_connected")
    with pytest.raises(ValueError):
        await store.defer_callback_verdict(missed, "maybe")
    one = await store.record_callback_attempt(connected, "answered", T0, owner="a")
    two = await store.record_callback_attempt(cancelled, "answered", T0, owner="a")
    three = await store.record_callback_attempt(missed, "answered", T0, retry_at=T0 + H, owner="a")
    assert (one.state, two.state, three.state) == ("completed", "cancelled", "pending")
    assert (three.last_result, three.next_attempt_at) == ("no_agent", T0 + H)
    assert [a.result for a in await store.callback_attempts(missed)] == ["no_agent"]
    assert not await store.defer_callback_verdict(connected, "connected")  # not dialing any more


async def test_recording_finish_and_missing(store):
    rec = await store.add_recording(Recording(call_id="c1", path="/rec/c1.wav", caller="301", started_at=T0))
    await store.finish_recording(rec, T0 + timedelta(seconds=6), 6.0)
    got = await store.get_recording(rec)
    assert (got.state, got.seconds, got.ended_at) == ("finished", 6.0, T0 + timedelta(seconds=6))
    with pytest.raises(NotFound):
        await store.set_recording_state(999, "paused")


async def test_a_failed_multi_row_change_leaves_nothing_half_written(store):
    """record_callback_attempt inserts an attempt row and updates the request: an error between them undoes both."""
    cb = await store.add_callback(CallbackRequest(number="1", queue="q", requested_at=T0))
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO callback_attempt (callback_id, result, at, call_id) VALUES (?, 'busy', ?, '')", cb, T0
            )
            await tx.execute("UPDATE callback SET attempts = 1 WHERE id = ?", cb)
            raise RuntimeError("the process failed between the two writes")
    assert await store.callback_attempts(cb) == []
    assert (await store.get_callback(cb)).attempts == 0
    with pytest.raises(StorageError):
        async with store.db.transaction() as tx:
            await tx.execute("UPDATE callback SET attempts = 5 WHERE id = ?", cb)
            await tx.execute("INSERT INTO no_such_table VALUES (1)")
    assert (await store.get_callback(cb)).attempts == 0


# --- two instances on one database -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def pair(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/shared.db"
        stores = [open_storage(url), open_storage(url)]
    else:
        cluster = request.getfixturevalue("pg_cluster")
        url = request.getfixturevalue("pg_database")
        stores = [await postgres_store(cluster, url), await postgres_store(cluster, url)]
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_leasing_never_hands_a_request_to_two_instances(pair):
    a, b = pair
    ids = set()
    for q in ("q1", "q2"):
        for n in range(30):
            ids.add(await a.add_callback(CallbackRequest(number=str(n), queue=q, requested_at=T0)))
    leased: dict[str, list[int]] = {"a": [], "b": []}

    async def worker(store, owner: str) -> None:
        for _ in range(40):
            for q in ("q1", "q2"):
                for req in await store.lease_due_callbacks(T0, queue=q, limit=4, owner=owner, lease_until=T0 + M):
                    leased[owner].append(req.id)
                    active = await store.list_callbacks(state="dialing", queue=q, limit=100)
                    assert len(active) <= 4  # the per-queue limit holds across both instances
                    await store.record_callback_attempt(req.id, "answered", T0, owner=owner)
            await asyncio.sleep(0)

    await asyncio.gather(worker(a, "a"), worker(b, "b"))
    every = leased["a"] + leased["b"]
    assert sorted(every) == sorted(ids)  # each request leased exactly once, none lost


async def test_both_instances_see_each_others_writes(pair):
    a, b = pair
    vm = await a.add_voicemail(Voicemail(mailbox="m", caller="c", path="/p", seconds=2.0, created_at=T0))
    assert [v.id for v in await b.list_voicemails("m")] == [vm]


# --- survey answers ----------------------------------------------------------------------------------------


async def test_survey_answers_round_trip_and_filters(store):
    from ivr.storage import SurveyAnswer

    rows = [
        SurveyAnswer("c1", "main", "survey", "csat", "5", "sales", "PJSIP/1001", T0),
        SurveyAnswer("c1", "main", "survey", "resolved", "1", "sales", "PJSIP/1001", T0 + M),
        SurveyAnswer("c2", "main", "survey", "csat", "3", "support", "", T0 + H),
        SurveyAnswer("c3", "after", "exit_poll", "csat", "1", "", "", T0 + 2 * H),
    ]
    ids = [await store.add_survey_answer(r) for r in reversed(rows)]  # stored newest first: listed by time
    assert len(set(ids)) == 4
    listed = await store.list_survey_answers()
    assert [(a.call_id, a.question, a.answer) for a in listed] == [(r.call_id, r.question, r.answer) for r in rows]
    assert listed[0].answered_at == T0 and listed[0].agent == "PJSIP/1001" and listed[0].id == ids[3]
    assert [a.call_id for a in await store.list_survey_answers(queue="sales", question="csat")] == ["c1"]
    assert [a.call_id for a in await store.list_survey_answers(flow="after")] == ["c3"]
    assert [a.call_id for a in await store.list_survey_answers(since=T0 + M, until=T0 + 2 * H)] == ["c1", "c2"]
    assert [a.call_id for a in await store.list_survey_answers(limit=1, offset=2)] == ["c2"]


# --- repeat callers ----------------------------------------------------------------------------------------


async def test_each_call_marks_the_callers_previous_one_and_old_contacts_are_purged(store):
    day = timedelta(days=1)
    assert await store.record_contact("h1", "c1", "main", "sales", T0, lookback=T0 - 7 * day) == []
    assert await store.record_contact("h2", "c2", "main", "", T0 + H, lookback=T0 + H - 7 * day) == []
    # h1 calls again 2 h later: the first call is returned (its flow, queue and time), once
    again = await store.record_contact("h1", "c3", "main", "support", T0 + 2 * H, lookback=T0 + 2 * H - 7 * day)
    assert again == [("main", "sales", T0)]
    # and a third time 9 days later: the second call is past the lookback, nothing is repeated
    late = T0 + 2 * H + 9 * day
    assert await store.record_contact("h1", "c4", "main", "sales", late, lookback=late - 7 * day) == []
    assert await store.purge_contacts(T0 + 2 * H) == 2  # c1 and c2 (c3 is at the cut, kept)
    assert await store.purge_contacts(T0 + 2 * H) == 0

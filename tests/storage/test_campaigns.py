"""The storage contract of outbound campaigns, on both backends (SQLite in memory, a real PostgreSQL): campaigns and
their states, contacts (duplicates skipped), leasing within a limit counted across instances, attempts, flow
verdicts before and after the attempt's result, statistics, the do-not-call list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.storage import Campaign, CampaignContact, Conflict, DncEntry, NotFound

from .test_contract import pair  # noqa: F401 (fixture: two storages on one database)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
M = timedelta(minutes=1)


async def campaign(store, name: str = "renewals") -> int:
    return await store.add_campaign(
        Campaign(name=name, flow="campaign", queue="sales", settings={"ratio": 2.0}, created_at=T0, updated_at=T0)
    )


def contacts(campaign_id: int, count: int, start: int = 0) -> list[CampaignContact]:
    return [
        CampaignContact(
            campaign_id=campaign_id,
            number=f"+3706{n:07d}",
            name=f"N{n}",
            variables={"offer": "gold"},
            line=n + 2,
            next_attempt_at=T0,
        )
        for n in range(start, start + count)
    ]


async def test_campaigns_round_trip_names_are_unique_and_states_move_only_from_allowed_ones(store):
    cid = await campaign(store)
    got = await store.get_campaign(cid)
    assert (got.name, got.state, got.settings, got.created_at) == ("renewals", "draft", {"ratio": 2.0}, T0)
    with pytest.raises(Conflict):
        await campaign(store)
    assert await store.set_campaign_state(cid, "paused", T0 + M, from_states=("running",)) is None
    moved = await store.set_campaign_state(cid, "running", T0 + M, from_states=("draft",))
    assert moved is not None and (moved.state, moved.updated_at) == ("running", T0 + M)
    assert [c.id for c in await store.list_campaigns(state="running")] == [cid]
    assert await store.list_campaigns(state="draft") == []
    with pytest.raises(NotFound):
        await store.set_campaign_state(999, "running", T0, from_states=("draft",))
    with pytest.raises(NotFound):
        await store.get_campaign(999)


async def test_contacts_are_added_once_and_listed(store):
    cid = await campaign(store)
    added, skipped = await store.add_campaign_contacts(cid, contacts(cid, 3))
    assert (added, skipped) == (3, [])
    added, skipped = await store.add_campaign_contacts(cid, contacts(cid, 3, start=2))  # one overlaps
    assert added == 2 and [c.line for c in skipped] == [4]
    listed = await store.list_campaign_contacts(cid)
    assert [c.number for c in listed] == [f"+3706{n:07d}" for n in range(5)]
    assert listed[0].variables == {"offer": "gold"} and listed[0].state == "pending"
    assert await store.list_campaign_contacts(cid, state="dialing") == []
    other = await campaign(store, "winback")  # the same number may be in another campaign
    assert (await store.add_campaign_contacts(other, contacts(other, 1)))[0] == 1
    with pytest.raises(NotFound):
        await store.add_campaign_contacts(999, contacts(999, 1))


async def test_many_contacts_in_one_upload(store):
    cid = await campaign(store)
    added, _ = await store.add_campaign_contacts(cid, contacts(cid, 1200))  # more than one INSERT chunk
    assert added == 1200
    assert (await store.campaign_stats(cid)).contacts == {"pending": 1200}


async def test_leasing_respects_the_limit_expiry_and_release(store):
    cid = await campaign(store)
    await store.add_campaign_contacts(cid, contacts(cid, 5))
    first = await store.lease_campaign_contacts(cid, T0, limit=2, owner="a", lease_until=T0 + M)
    assert [c.state for c in first] == ["dialing", "dialing"]
    assert await store.lease_campaign_contacts(cid, T0, limit=2, owner="b", lease_until=T0 + M) == []  # full
    assert await store.renew_campaign_leases("a", [c.id for c in first], T0 + 3 * M) == 2
    # a's leases lapse (its instance died): another instance takes the contacts over, up to the limit
    later = T0 + 4 * M
    taken = await store.lease_campaign_contacts(cid, later, limit=3, owner="b", lease_until=later + M)
    assert {c.id for c in first} <= {c.id for c in taken} and len(taken) == 3
    # giving back without an attempt: outside hours (pending later) or a final state
    assert await store.release_campaign_contact(taken[0].id, "b", next_attempt_at=later + 60 * M)
    assert await store.release_campaign_contact(taken[1].id, "b", state="dnc")
    assert not await store.release_campaign_contact(taken[2].id, "a", state="dnc")  # not a's lease any more
    back = await store.get_campaign_contact(taken[0].id)
    assert (back.state, back.next_attempt_at) == ("pending", later + 60 * M)
    assert (await store.get_campaign_contact(taken[1].id)).last_result == "dnc"


async def test_answered_contacts_in_their_flow_count_as_calls_in_progress(store):
    cid = await campaign(store)
    await store.add_campaign_contacts(cid, contacts(cid, 4))
    [one] = await store.lease_campaign_contacts(cid, T0, limit=1, owner="a", lease_until=T0 + M)
    await store.record_campaign_attempt(one.id, "answered", T0, owner="a")  # in its flow, no report yet
    later = T0 + M
    # answered since `answered_since`: it holds its slot on every instance; without the bound it does not
    assert (
        await store.lease_campaign_contacts(cid, later, limit=1, owner="b", lease_until=later + M, answered_since=T0)
        == []
    )
    [two] = await store.lease_campaign_contacts(
        cid, later, limit=2, owner="b", lease_until=later + M, answered_since=T0
    )
    await store.release_campaign_contact(two.id, "b", next_attempt_at=later)
    # older than the bound: counted no more (a report that never comes must not hold the slot for ever)
    assert (
        len(
            await store.lease_campaign_contacts(
                cid, later, limit=1, owner="b", lease_until=later + M, answered_since=T0 + timedelta(seconds=1)
            )
        )
        == 1
    )
    await store.resolve_campaign_contact(one.id, "connected", later)  # reported: no longer in progress
    assert (
        len(
            await store.lease_campaign_contacts(
                cid, later, limit=2, owner="c", lease_until=later + M, answered_since=T0
            )
        )
        == 1
    )  # b's live lease + 1


async def test_campaigns_on_one_queue_count_each_others_calls(store):
    one, two = await campaign(store, "one"), await campaign(store, "two")  # both on queue sales
    await store.add_campaign_contacts(one, contacts(one, 2))
    await store.add_campaign_contacts(two, contacts(two, 2, start=10))
    [ringing] = await store.lease_campaign_contacts(one, T0, limit=1, owner="a", lease_until=T0 + M, queue="sales")
    assert await store.lease_campaign_contacts(two, T0, limit=1, owner="a", lease_until=T0 + M, queue="sales") == []
    assert len(await store.lease_campaign_contacts(two, T0, limit=1, owner="a", lease_until=T0 + M)) == 1  # alone
    assert ringing.campaign_id == one


async def test_a_campaign_is_done_when_it_has_contacts_and_none_left_to_dial(store):
    cid = await campaign(store)
    assert not await store.campaign_done(cid)  # no contacts yet: not done
    await store.add_campaign_contacts(cid, contacts(cid, 1))
    assert not await store.campaign_done(cid)  # pending
    [one] = await store.lease_campaign_contacts(cid, T0, limit=1, owner="a", lease_until=T0 + M)
    assert not await store.campaign_done(cid)  # dialing
    await store.record_campaign_attempt(one.id, "answered", T0, owner="a")
    assert await store.campaign_done(cid)  # answered: nothing left to dial


async def test_attempt_results_retry_fail_and_answer(store):
    cid = await campaign(store)
    await store.add_campaign_contacts(cid, contacts(cid, 3))
    busy, silent, answered = await store.lease_campaign_contacts(cid, T0, limit=3, owner="a", lease_until=T0 + M)
    retried = await store.record_campaign_attempt(busy.id, "busy", T0, retry_at=T0 + 10 * M, owner="a", call_id="c1")
    assert (retried.state, retried.attempts, retried.next_attempt_at) == ("pending", 1, T0 + 10 * M)
    failed = await store.record_campaign_attempt(silent.id, "no_answer", T0, owner="a")
    assert (failed.state, failed.last_result) == ("failed", "no_answer")
    up = await store.record_campaign_attempt(answered.id, "answered", T0 + M, owner="a")
    assert (up.state, up.answered_at) == ("answered", T0 + M)
    assert await store.lease_campaign_contacts(cid, T0 + 5 * M, limit=3, owner="a", lease_until=T0 + 6 * M) == []
    again = await store.lease_campaign_contacts(cid, T0 + 10 * M, limit=3, owner="a", lease_until=T0 + 11 * M)
    assert [c.id for c in again] == [busy.id]
    [attempt] = await store.campaign_attempts(busy.id)
    assert (attempt.result, attempt.call_id, attempt.outcome) == ("busy", "c1", None)
    with pytest.raises(ValueError):
        await store.record_campaign_attempt(busy.id, "maybe", T0)


async def test_verdicts_before_and_after_the_result_and_abandon_retries(store):
    cid = await campaign(store)
    await store.add_campaign_contacts(cid, contacts(cid, 3))
    early, late, abandoned = await store.lease_campaign_contacts(cid, T0, limit=3, owner="a", lease_until=T0 + M)
    # The flow reported before the originate result was stored: the verdict waits on the row.
    assert await store.defer_campaign_verdict(early.id, "connected")
    up = await store.record_campaign_attempt(early.id, "answered", T0, owner="a")
    assert (up.state, up.verdict) == ("answered", "connected")
    done = await store.resolve_campaign_contact(early.id, "connected", T0)
    assert (done.state, done.verdict) == ("connected", None)
    assert await store.resolve_campaign_contact(early.id, "connected", T0) is None  # reported twice
    # The usual order: result, then report.
    await store.record_campaign_attempt(late.id, "answered", T0, owner="a")
    assert not await store.defer_campaign_verdict(late.id, "declined")  # not dialing any more
    assert (await store.resolve_campaign_contact(late.id, "declined", T0)).state == "declined"
    # Abandoned with attempts left: pending again at the retry time; the attempt keeps the outcome.
    await store.record_campaign_attempt(abandoned.id, "answered", T0, owner="a")
    again = await store.resolve_campaign_contact(abandoned.id, "abandoned", T0, retry_at=T0 + 60 * M)
    assert (again.state, again.next_attempt_at, again.last_result) == ("pending", T0 + 60 * M, "abandoned")
    assert [a.outcome for a in await store.campaign_attempts(abandoned.id)] == ["abandoned"]
    stats = await store.campaign_stats(cid)
    assert stats.contacts == {"connected": 1, "declined": 1, "pending": 1}
    assert stats.attempts == {"answered": 3}
    assert stats.outcomes == {"connected": 1, "declined": 1, "abandoned": 1}
    assert (stats.answered, stats.abandoned, round(stats.abandon_rate, 3)) == (3, 1, 0.333)
    assert (await store.campaign_stats(cid, since=T0 + M)).answered == 0  # the guard's window


async def test_a_contact_taken_over_keeps_its_new_holders_state(store):
    cid = await campaign(store)
    await store.add_campaign_contacts(cid, contacts(cid, 1))
    [mine] = await store.lease_campaign_contacts(cid, T0, limit=1, owner="a", lease_until=T0 + M)
    [theirs] = await store.lease_campaign_contacts(cid, T0 + 2 * M, limit=1, owner="b", lease_until=T0 + 3 * M)
    assert mine.id == theirs.id
    late = await store.record_campaign_attempt(mine.id, "busy", T0 + 2 * M, retry_at=T0 + 9 * M, owner="a")
    assert (late.state, late.attempts) == ("dialing", 0)  # b's attempt decides; a's is only logged
    assert len(await store.campaign_attempts(mine.id)) == 1


async def test_do_not_call_list(store):
    assert await store.add_dnc([DncEntry("+37060000001", "asked", T0), DncEntry("+37060000002", "", T0)]) == 2
    assert await store.add_dnc([DncEntry("+37060000001", "again", T0 + M)]) == 0  # listed already: kept as it was
    assert await store.is_dnc("+37060000001") and not await store.is_dnc("+37060000003")
    [entry] = await store.list_dnc(number="+37060000001")
    assert (entry.reason, entry.added_at) == ("asked", T0)
    assert [e.number for e in await store.list_dnc(limit=1, offset=1)] == ["+37060000002"]
    assert await store.remove_dnc("+37060000001") and not await store.remove_dnc("+37060000001")


async def test_two_instances_never_lease_one_contact_twice(pair):  # noqa: F811
    a, b = pair
    cid = await campaign(a)
    await a.add_campaign_contacts(cid, contacts(cid, 60))
    leased: dict[str, list[int]] = {"a": [], "b": []}

    async def worker(store, owner: str) -> None:
        for _ in range(60):
            for contact in await store.lease_campaign_contacts(cid, T0, limit=5, owner=owner, lease_until=T0 + M):
                leased[owner].append(contact.id)
                ringing = await store.list_campaign_contacts(cid, state="dialing", limit=100)
                assert len(ringing) <= 5  # the campaign's limit holds across both instances
                await store.record_campaign_attempt(contact.id, "no_answer", T0, owner=owner)
            await asyncio.sleep(0)

    await asyncio.gather(worker(a, "a"), worker(b, "b"))
    every = leased["a"] + leased["b"]
    assert len(every) == len(set(every)) == 60  # each contact leased exactly once, none lost

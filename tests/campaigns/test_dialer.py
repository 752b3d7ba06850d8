"""The campaign dialer's decisions on a real (in-memory SQLite) storage, with call control stood in by scripted
Originate results: a flow report that overtakes its attempt's result, refused originates, an abandoned contact
called again (reopening a finished campaign), pacing on available agents and waiting callers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from ivr.calls.errors import AsteriskUnavailable, InvalidRequest
from ivr.calls.operations import Originated
from ivr.calls.queues import Queue, QueueCaller, QueueMember
from ivr.campaigns.dialer import CampaignDialer, DialerPolicy
from ivr.storage import Campaign, CampaignContact, open_storage
from tests.calls.test_callbacks import result

T0 = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # Monday 10:00 in Vilnius
SETTINGS = {
    "schedule": {"timezone": "Europe/Vilnius", "weekly": {"mon-fri": "09:00-20:00"}},
    "ratio": 2.0,
    "max_attempts": 2,
    "retry": {"busy": 600, "abandoned": 3600, "error": 60},
    "abandon": {"min_answered": 1},
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Ops:
    """Stands in for CallOperations: per number, an OriginateResponse reason or an exception; `gate` holds results."""

    script: dict[str, object] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    dialled: list[tuple[str, dict]] = field(default_factory=list)

    async def originate_flow(
        self, number, flow, *, caller_id=None, variables=None, service_variables=None, timeout=None
    ):
        self.dialled.append((number, dict(service_variables or {})))
        step = self.script[number]
        if isinstance(step, Exception):
            raise step
        return Originated(f"ivr-{len(self.dialled)}", number)

    async def wait_originate(self, originated, timeout):
        if self.gate is not None:
            await self.gate.wait()
        return result(int(self.script[originated.action_id]))


def registry(available: int, waiting: int = 0) -> SimpleNamespace:
    queue = Queue(name="sales")
    for n in range(available):
        queue.members[f"PJSIP/{n}"] = QueueMember(queue="sales", interface=f"PJSIP/{n}", status=1)
    queue.members["PJSIP/busy"] = QueueMember(queue="sales", interface="PJSIP/busy", status=2)
    for n in range(waiting):
        queue.callers[str(n)] = QueueCaller(uniqueid=str(n), channel=f"PJSIP/x-{n}", linkedid=str(n))
    return SimpleNamespace(queues={"sales": queue})


async def setup(numbers: list[str], ops: Ops, available: int = 1, waiting: int = 0):
    store = open_storage("memory:")
    clock = Clock()
    campaign = await store.add_campaign(
        Campaign(name="renewals", flow="campaign", queue="sales", settings=SETTINGS, state="running")
    )
    await store.add_campaign_contacts(
        campaign, [CampaignContact(campaign_id=campaign, number=n, next_attempt_at=T0) for n in numbers]
    )
    dialer = CampaignDialer(
        store, ops, registry(available, waiting), DialerPolicy(names=frozenset({"renewals"})), clock=clock
    )
    return store, clock, campaign, dialer


def report(contact_id: int, outcome: str, transfer: bool = True, **variables: str) -> SimpleNamespace:
    visits = [SimpleNamespace(kind="menu")] + ([SimpleNamespace(kind="transfer")] if transfer else [])
    return SimpleNamespace(outcome=outcome, visits=visits, variables={"param_contact": str(contact_id), **variables})


async def test_a_flow_report_that_overtakes_the_attempts_result_is_applied_by_it():
    ops = Ops(script={"+37060000001": 4}, gate=asyncio.Event())
    store, _, campaign, dialer = await setup(["+37060000001"], ops)
    try:
        assert await dialer.run_once() == 1
        await asyncio.sleep(0.01)  # the attempt waits for its OriginateResponse
        [contact] = await store.list_campaign_contacts(campaign)
        assert contact.state == "dialing"
        await dialer.on_flow_report(report(contact.id, "transferred"))  # the flow ended first
        assert (await store.get_campaign_contact(contact.id)).verdict == "connected"
        ops.gate.set()
        await dialer.drain()
        done = await store.get_campaign_contact(contact.id)
        assert (done.state, done.attempts) == ("connected", 1)
        [attempt] = await store.campaign_attempts(contact.id)
        assert (attempt.result, attempt.outcome) == ("answered", "connected")
        assert ops.dialled[0][1]["IVR_CONTACT_ID"] == str(contact.id)
    finally:
        await store.close()


async def test_refused_originates_are_errors_to_retry_or_failures():
    ops = Ops(script={"+37060000001": AsteriskUnavailable("AMI down"), "+37060000002": InvalidRequest("bad")})
    store, clock, campaign, dialer = await setup(["+37060000001", "+37060000002"], ops, available=2)
    try:
        assert await dialer.run_once() == 2
        await dialer.drain()
        by_number = {c.number: c for c in await store.list_campaign_contacts(campaign)}
        unreachable, refused = by_number["+37060000001"], by_number["+37060000002"]
        assert (unreachable.state, unreachable.last_result) == ("pending", "error")
        assert unreachable.next_attempt_at == T0 + timedelta(seconds=60)  # retry.error
        assert (refused.state, refused.last_result) == ("pending", "failed")  # one attempt of two used
    finally:
        await store.close()


async def test_an_abandoned_contact_is_called_again_and_reopens_a_finished_campaign():
    ops = Ops(script={"+37060000001": 4})
    store, clock, campaign, dialer = await setup(["+37060000001"], ops)
    try:
        await dialer.run_once()
        await dialer.drain()
        [contact] = await store.list_campaign_contacts(campaign)
        assert contact.state == "answered"
        await dialer.run_once()  # nothing left to dial: finished (the contact is still in its flow)
        assert (await store.get_campaign(campaign)).state == "finished"
        await dialer.on_flow_report(report(contact.id, "abandoned"))  # hung up waiting in the queue
        again = await store.get_campaign_contact(contact.id)
        assert (again.state, again.next_attempt_at) == ("pending", T0 + timedelta(seconds=3600))
        assert (await store.get_campaign(campaign)).state == "running"
        stats = await store.campaign_stats(campaign)
        assert (stats.answered, stats.abandoned) == (1, 1)
        # due again; one answered, one abandoned in the guard's hour, evidence enough (min_answered 1): paused
        clock.now = T0 + timedelta(seconds=3600)
        assert await dialer.run_once() == 0 and dialer.paces[campaign].reason == "paused"
        # a second later the abandon has left the window: no evidence, 1:1 again
        clock.now = T0 + timedelta(seconds=3601)
        assert await dialer.run_once() == 1 and dialer.paces[campaign].reason == "no_evidence"
        await dialer.drain()
    finally:
        await store.close()


async def test_pacing_counts_available_agents_and_subtracts_waiting_callers():
    numbers = [f"+3706000001{n}" for n in range(8)]
    ops = Ops(script=dict.fromkeys(numbers, 5), gate=asyncio.Event())
    store, _, campaign, dialer = await setup(numbers, ops, available=3, waiting=1)
    try:
        # no evidence yet: 1:1 -> 3 available agents, one caller already waits for them -> 2 may ring
        assert await dialer.run_once() == 2
        assert await dialer.run_once() == 0  # both still ring: the slots are taken
        ops.gate.set()
        await dialer.drain()
        assert [c.last_result for c in await store.list_campaign_contacts(campaign, state="pending")][:2] == [
            "busy",
            "busy",
        ]
    finally:
        await store.close()


async def test_a_contact_who_opts_out_goes_on_the_do_not_call_list():
    ops = Ops(script={"+37060000001": 4})
    store, _, campaign, dialer = await setup(["+37060000001"], ops)
    try:
        await dialer.run_once()
        await dialer.drain()
        [contact] = await store.list_campaign_contacts(campaign)
        await dialer.on_flow_report(report(contact.id, "contained", transfer=False, campaign_result="dnc"))
        assert (await store.get_campaign_contact(contact.id)).state == "declined"
        assert await store.is_dnc("+37060000001")
        assert dialer.on_flow_report(SimpleNamespace(variables={"param_contact": "x1"})) is None  # not a contact id
    finally:
        await store.close()

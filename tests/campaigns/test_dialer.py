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
    ami: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(logged_in=True))  # CallOperations.ami

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
        step = self.script[originated.action_id]
        return None if step is None else result(int(step))  # None: the OriginateResponse never came


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


async def test_refused_originates_wait_for_asterisk_or_use_an_attempt():
    ops = Ops(script={"+37060000001": AsteriskUnavailable("AMI down"), "+37060000002": InvalidRequest("bad")})
    store, clock, campaign, dialer = await setup(["+37060000001", "+37060000002"], ops, available=2)
    try:
        assert await dialer.run_once() == 2
        await dialer.drain()
        by_number = {c.number: c for c in await store.list_campaign_contacts(campaign)}
        unreachable, refused = by_number["+37060000001"], by_number["+37060000002"]
        # Asterisk could not take the call: no attempt used, back after retry.error
        assert (unreachable.state, unreachable.attempts, unreachable.last_result) == ("pending", 0, None)
        assert unreachable.next_attempt_at == T0 + timedelta(seconds=60)
        assert await store.campaign_attempts(unreachable.id) == []
        assert (refused.state, refused.last_result, refused.attempts) == ("pending", "failed", 1)  # 1 of 2 used
    finally:
        await store.close()


async def test_an_ami_outage_does_not_use_up_the_contacts_attempts():
    """Asterisk away for 3 minutes, the registry still showing its agents available: the rounds while AMI is not
    logged in dial nobody, and Originates refused in between (the link fell mid-round) use no attempt."""
    numbers = [f"+3706000001{n}" for n in range(3)]
    ops = Ops(script=dict.fromkeys(numbers, AsteriskUnavailable("AMI not connected")))
    store, clock, campaign, dialer = await setup(numbers, ops, available=3)
    try:
        for _ in range(3):  # the link is up by the flag but every Originate is refused
            await dialer.run_once()
            await dialer.drain()
            clock.now += timedelta(seconds=61)
        ops.ami.logged_in = False  # now AMI knows it is logged out: rounds are skipped
        for _ in range(3):
            assert await dialer.run_once() == 0
            clock.now += timedelta(seconds=61)
        assert dialer.paces[campaign].reason == "asterisk_down"
        assert len(ops.dialled) == 9  # 3 rounds of 3 refused, none while logged out
        contacts = await store.list_campaign_contacts(campaign)
        assert [(c.state, c.attempts) for c in contacts] == [("pending", 0)] * 3
        ops.ami.logged_in = True  # back: every contact is dialled with all its attempts
        ops.script.update(dict.fromkeys(numbers, 5))
        assert await dialer.run_once() == 3
        await dialer.drain()
        assert [(c.attempts, c.last_result) for c in await store.list_campaign_contacts(campaign)] == [(1, "busy")] * 3
    finally:
        await store.close()


async def test_answered_contacts_in_their_flow_count_against_the_pace():
    """Every contact answers and stays in the campaign flow (no report yet), one agent free at 2:1 (the guard has
    its evidence): never more than 2 calls in progress, ringing or answered, until a flow reports or flow_time
    (60 s) passes without a report."""
    numbers = [f"+3706000001{n}" for n in range(6)]
    ops = Ops(script=dict.fromkeys(numbers, 4))  # every contact answers
    store, clock, campaign, dialer = await setup(numbers, ops, available=1)
    try:
        for _ in range(5):
            await dialer.run_once()
            await dialer.drain()
            clock.now += timedelta(seconds=1)
        assert dialer.paces[campaign].slots == 2
        first, second = await store.list_campaign_contacts(campaign, state="answered")
        assert len(ops.dialled) == 2  # the answered contacts hold both slots
        await dialer.on_flow_report(report(first.id, "transferred"))  # a flow ends: one slot is free
        assert await dialer.run_once() == 1
        await dialer.drain()
        assert await dialer.run_once() == 0
        clock.now = T0 + timedelta(seconds=62)  # the second (answered at +1 s) is past flow_time, unreported: freed
        assert await dialer.run_once() == 1
        await dialer.drain()
        assert len(ops.dialled) == 4
        assert len(await store.list_campaign_contacts(campaign, state="answered")) == 3
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


async def test_a_flow_report_after_a_lost_originate_response_applies_its_verdict():
    """No OriginateResponse came (attempt `error`, the contact pending for a retry), yet the contact answered and
    an agent took the call: the flow's report turns the attempt into `answered` and connects the contact, who is
    not called again."""
    ops = Ops(script={"+37060000001": None})
    store, clock, campaign, dialer = await setup(["+37060000001"], ops)
    try:
        await dialer.run_once()
        await dialer.drain()
        [contact] = await store.list_campaign_contacts(campaign)
        assert (contact.state, contact.last_result) == ("pending", "error")
        await dialer.on_flow_report(report(contact.id, "transferred"))
        done = await store.get_campaign_contact(contact.id)
        assert (done.state, done.attempts) == ("connected", 1)
        [attempt] = await store.campaign_attempts(contact.id)
        assert (attempt.result, attempt.outcome) == ("answered", "connected")
        clock.now += timedelta(hours=1)
        assert await dialer.run_once() == 0 and len(ops.dialled) == 1
        assert (await store.get_campaign(campaign)).state == "finished"
    finally:
        await store.close()


async def test_campaigns_on_one_queue_share_its_agents_counted_over_every_queue():
    """Two available members in `sales`, but PJSIP/1 is on a call of `support` (busy there): one agent is free. A
    second campaign on `sales` sees the first one's call in progress: together they stay at 1:1 of that agent."""
    numbers = ["+37060000001", "+37060000002", "+37060000003"]
    ops = Ops(script=dict.fromkeys(numbers, 5), gate=asyncio.Event())
    store, _, first, dialer = await setup(numbers[:2], ops, available=2)
    try:
        support = Queue(name="support")
        support.members["PJSIP/1"] = QueueMember(queue="support", interface="PJSIP/1", status=2)  # in use
        dialer.registry.queues["support"] = support
        second = await store.add_campaign(
            Campaign(name="winback", flow="campaign", queue="sales", settings=SETTINGS, state="running")
        )
        await store.add_campaign_contacts(
            second, [CampaignContact(campaign_id=second, number=numbers[2], next_attempt_at=T0)]
        )
        assert await dialer.run_once() == 1  # one free agent: the first campaign's call; the second waits
        assert dialer.paces[first].slots == dialer.paces[second].slots == 1
        assert [n for n, _ in ops.dialled] == [numbers[0]]
        ops.gate.set()
        await dialer.drain()
    finally:
        await store.close()

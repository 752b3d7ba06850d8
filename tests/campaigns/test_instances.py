"""Two service instances dial one campaign from one PostgreSQL database: each with its own AMI login to the same
simulated Asterisk, call control and campaign dialer. No contact is dialled twice, at most the campaign's pace
rings at once across both, and a dead instance's contacts are taken over once its leases expire."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from ivr.ami.client import AMIClient
from ivr.calls.settings import CallControlSettings
from ivr.calls.wiring import CallControl
from ivr.campaigns.dialer import CampaignDialer, DialerPolicy
from ivr.sim import AgentSpec, QueueSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.storage import Campaign, CampaignContact, open_storage

MONDAY_10 = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)
AGENTS = ("a1", "a2", "a3")
SETTINGS = {
    "schedule": {"timezone": "Europe/Vilnius", "weekly": {"mon-sun": "00:00-24:00"}},
    "ratio": 2.0,
    "max_attempts": 1,
    "ring_timeout": 5.0,
}


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def instance(stack: AsyncExitStack, sim: SimulatedAsterisk, url: str, password: str, name: str):
    storage = open_storage(url, password=password)
    await storage.open()
    stack.push_async_callback(storage.close)
    ami = AMIClient(
        "127.0.0.1", sim.ami.port, "ivr", "ivrsecret", ping_interval=0, backoff_min=0.01, rng=random.Random(1)
    )
    control = CallControl.build(ami, storage, CallControlSettings(), run_callbacks=False)
    await control.start()
    stack.push_async_callback(control.stop)
    await ami.start()
    stack.push_async_callback(ami.close)
    await ami.wait_logged_in(5)
    await until(lambda: _true(control.sync.resyncs >= 1), f"{name}'s first resync")
    dialer = CampaignDialer(
        storage,
        control.operations,
        control.registry,
        DialerPolicy(poll_interval=0.02, share_delay=0.02, lease=30.0),
        clock=sim.clock.datetime,
        instance=name,
    )
    return storage, dialer


async def _true(value: bool) -> bool:
    return value


async def test_two_instances_dial_every_contact_once_within_the_pace(pg_cluster, pg_database):
    numbers = [f"+3706300{n:04d}" for n in range(16)]
    config = SimConfig(
        queues={"outq": QueueSpec("outq", members=[f"Local/{a}@agents" for a in AGENTS])},
        agents={a: AgentSpec(a, answer_after=1.0, talk=10.0) for a in AGENTS},
        callees={n: AgentSpec("ringing", answer_after=None) for n in numbers},  # rings out: no answer
    )
    sim = SimulatedAsterisk(config, clock=VirtualClock(start=MONDAY_10))
    await sim.start(ami=True)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sim.stop)
        a_store, a = await instance(stack, sim, pg_database, pg_cluster.password, "ivr-a")
        b_store, b = await instance(stack, sim, pg_database, pg_cluster.password, "ivr-b")
        campaign = await a_store.add_campaign(
            Campaign(name="outq", flow="campaign", queue="outq", settings=SETTINGS, state="running")
        )
        await a_store.add_campaign_contacts(
            campaign,
            [
                CampaignContact(campaign_id=campaign, number=n, line=i + 2, next_attempt_at=MONDAY_10)
                for i, n in enumerate(numbers)
            ],
        )
        live: set[str] = set()
        most = 0

        def count(event) -> None:  # the contacts' calls at once, as the simulator sees its channels
            nonlocal most
            channel = event.get("Channel") or ""
            if not (channel.startswith("Local/+3706300") and channel.endswith(";1")):
                return
            if event.name == "Newchannel":
                live.add(channel)
                most = max(most, len(live))
            elif event.name == "Hangup":
                live.discard(channel)

        stack.callback(sim.pbx.bus.subscribe(count))

        async def done() -> bool:
            return (await b_store.campaign_stats(campaign)).contacts.get("failed", 0) == len(numbers)

        for dialer in (a, b):
            await dialer.start()
            stack.push_async_callback(dialer.stop)
        await until(done, "every contact to ring out once")
        dialled = [o.channel.split("/")[1].split("@")[0] for o in sim.originates]
        assert sorted(dialled) == sorted(numbers)  # each contact dialled exactly once by the two instances
        assert 0 < most <= len(AGENTS)  # no evidence yet: 1:1, three available agents, across both instances
        for contact in await a_store.list_campaign_contacts(campaign):
            assert (contact.attempts, contact.last_result) == (1, "no_answer")


async def test_a_dead_instances_contacts_are_taken_over_after_its_leases_expire(pg_cluster, pg_database):
    number = "+37063009999"
    config = SimConfig(
        queues={"outq": QueueSpec("outq", members=["Local/a1@agents"])},
        agents={"a1": AgentSpec("a1")},
        callees={number: AgentSpec("busy", busy=True)},
    )
    sim = SimulatedAsterisk(config, clock=VirtualClock(start=MONDAY_10))
    await sim.start(ami=True)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sim.stop)
        store, b = await instance(stack, sim, pg_database, pg_cluster.password, "ivr-b")
        campaign = await store.add_campaign(
            Campaign(name="outq", flow="campaign", queue="outq", settings=SETTINGS, state="running")
        )
        await store.add_campaign_contacts(
            campaign, [CampaignContact(campaign_id=campaign, number=number, next_attempt_at=MONDAY_10)]
        )
        # Instance a leased the contact and died (kill -9): its lease runs until 08:00:30.
        [held] = await store.lease_campaign_contacts(
            campaign, MONDAY_10, limit=1, owner="ivr-a/1", lease_until=MONDAY_10 + timedelta(seconds=30)
        )
        assert await b.run_once() == 0  # the slot is a's while its lease lives
        await sim.clock.sleep(31)
        assert await b.run_once() == 1
        await b.drain()
        contact = await store.get_campaign_contact(held.id)
        assert (contact.state, contact.attempts, contact.last_result) == ("failed", 1, "busy")
        assert [o.channel for o in sim.originates] == [f"Local/{number}@ivr-dial-out"]

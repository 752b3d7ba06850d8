"""Outbound campaigns end to end: the whole service as `serve` builds it (settings -> Service: the dialer, the API,
FastAGI running the sample `campaign` flow, AMI) against the simulated Asterisk over real sockets, in virtual time
(a day of calling hours passes in seconds). Contacts answer, are busy, never answer, are on the do-not-call list
or live in another time zone, by the simulator's per-number callee scripts; the service restarts mid-campaign and
carries on from the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from ivr import dialplan
from ivr.service import Service
from ivr.settings import load_settings
from ivr.sim import AgentSpec, NextPrompt, Press, QueueSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.storage import Campaign, CampaignContact, open_storage

ROOT = Path(__file__).resolve().parents[2]
MONDAY_10 = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # 10:00 in Vilnius, 04:00 in New York
TOKEN = "campaign-token"
HOURS = {"timezone": "Europe/Vilnius", "weekly": {"mon-fri": "09:00-20:00"}}
WANTS_AGENT = (NextPrompt(0.5), Press("1"))  # the contact hears the greeting and presses 1


def answers(script: tuple = WANTS_AGENT) -> AgentSpec:
    return AgentSpec("contact", answer_after=4.0, talk=None, script=script)


class Env:
    def __init__(self, sim: SimulatedAsterisk, settings) -> None:
        self.sim, self.settings = sim, settings
        self.service: Service | None = None

    async def start(self) -> None:
        """The service as `serve` builds it, on the simulator's clock (also after a restart)."""
        self.service = service = Service.from_settings(self.settings, clock=self.sim.clock.datetime)
        await service.start()
        self.sim.fastagi = ("127.0.0.1", service.fastagi.port)
        self.sim.pbx.globals[dialplan.SERVER] = f"127.0.0.1:{service.fastagi.port}"  # the dialplan's AGI target
        await service.ami.wait_logged_in(5)
        self.base = f"http://127.0.0.1:{service.http_port}"

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    async def call(self, method: str, path: str, *, json=None, data: bytes | None = None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if data is not None:
            headers["Content-Type"] = "text/csv"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, json=json, data=data, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    async def campaign(self, name: str, queue: str, csv: str, **settings) -> int:
        status, body = await self.call(
            "POST",
            "/campaigns",
            json={"name": name, "flow": "campaign", "queue": queue, "settings": {"schedule": HOURS, **settings}},
        )
        assert status == 201, body
        status, uploaded = await self.call("POST", f"/campaigns/{body['id']}/contacts", data=csv.encode())
        assert status == 200, uploaded
        return body["id"]

    async def contacts(self, campaign_id: int) -> dict[str, dict]:
        status, body = await self.call("GET", f"/campaigns/{campaign_id}/contacts")
        assert status == 200, body
        return {c["number"]: c for c in body["contacts"]}

    async def until(self, campaign_id: int, check, what: str, timeout: float = 20.0) -> dict[str, dict]:
        contacts: dict[str, dict] = {}
        try:
            async with asyncio.timeout(timeout):
                while not check(contacts := await self.contacts(campaign_id)):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {contacts}") from None
        return contacts

    def dialled(self, number: str) -> int:
        return sum(1 for o in self.sim.originates if o.channel == f"Local/{number}@ivr-dial-out")


def settings_for(sim: SimulatedAsterisk, tmp_path: Path):
    env = {
        "IVR_FASTAGI_HOST": "127.0.0.1",
        "IVR_FASTAGI_PORT": "0",
        "IVR_HTTP_PORT": "0",
        "IVR_AMI_PORT": str(sim.ami_port),
        "IVR_AMI_SECRET": "s3cret",
        "IVR_API_TOKEN": TOKEN,
        "IVR_STORAGE_URL": f"sqlite:///{tmp_path / 'ivr.db'}",
        "IVR_RECORDINGS_DIR": str(tmp_path / "rec"),
    }
    settings = load_settings(ROOT / "config" / "ivr.yaml", env=env)
    settings.reload.watch = False
    settings.campaigns.interval = 0.05  # real seconds between rounds; calls themselves run in virtual time
    settings.campaigns.names = ["renewals", "winback"]  # their own metric series; others count as "other"
    return settings


@pytest.fixture
async def env(tmp_path: Path):
    config = SimConfig(
        queues={
            "renewals": QueueSpec("renewals", members=["Local/ona@agents", "Local/jonas@agents"]),
            "winback": QueueSpec("winback", members=["Local/ghost@agents"]),  # rings, never answers
        },
        agents={
            "ona": AgentSpec("ona", answer_after=2.0, talk=30.0),
            "jonas": AgentSpec("jonas", answer_after=2.0, talk=30.0),
            "ghost": AgentSpec("ghost", answer_after=None),
        },
        ami_users={"ivr": "s3cret"},
    )
    sim = SimulatedAsterisk(config, clock=VirtualClock(start=MONDAY_10))
    await sim.start(ami=True)
    env = Env(sim, settings_for(sim, tmp_path))
    try:
        await env.start()
        yield env
    finally:
        await env.stop()
        await sim.stop()


async def test_a_campaign_runs_through_a_day_of_calling_hours(env: Env) -> None:
    sim = env.sim
    answered, busy, silent, listed, new_york = (f"+3706000000{i}" for i in range(1, 6))
    sim.config.callees.update(
        {
            answered: answers(),
            busy: AgentSpec("busy", busy=True),
            silent: AgentSpec("silent", answer_after=None),
            listed: answers(),
            new_york: answers(),
        }
    )
    status, _ = await env.call("POST", "/dnc", json={"numbers": [listed], "reason": "asked by letter"})
    assert status == 201
    csv = (
        "number;name;language;timezone;offer\n"
        f"{answered};Ona;lt;;gold\n"
        f"{busy};Jonas;;;silver\n"
        f"{silent.replace('+370', '+370 ')};Petras;;;gold\n"  # spaces are formatting: removed
        f"{listed};Asta;;;gold\n"
        f"{new_york};Mary;en;America/New_York;gold\n"
    )
    campaign = await env.campaign(
        "renewals", "renewals", csv, max_attempts=2, retry={"busy": 600, "no_answer": 600}, ratio=2.0
    )
    assert (await env.call("POST", f"/campaigns/{campaign}/start"))[0] == 200

    # 10:00 in Vilnius: everyone in calling hours is dialled; the listed number is skipped; New York sleeps.
    opens = datetime(2026, 3, 23, 13, 0, tzinfo=UTC)  # 09:00 in New York (summer time there since March 8)
    contacts = await env.until(
        campaign,
        lambda c: (
            c[answered]["state"] == "connected"
            and c[busy]["attempts"] == 1
            and c[silent]["attempts"] == 1
            and c[listed]["state"] == "dnc"
            and c[new_york]["state"] == "pending"
            and datetime.fromisoformat(c[new_york]["next_attempt_at"]) == opens
        ),  # looked at, sent back to sleep
        "the first round of attempts",
    )
    assert (contacts[busy]["state"], contacts[busy]["last_result"]) == ("pending", "busy")
    assert (contacts[silent]["state"], contacts[silent]["last_result"]) == ("pending", "no_answer")
    assert contacts[listed]["state"] == "dnc" and env.dialled(listed) == 0
    assert contacts[new_york]["state"] == "pending" and contacts[new_york]["attempts"] == 0
    assert datetime.fromisoformat(contacts[new_york]["next_attempt_at"]) == opens
    # The answered contact ran the campaign flow with its contact id, language and queue; an agent took it.
    [attempt] = [o for o in sim.originates if o.channel == f"Local/{answered}@ivr-dial-out"]
    assert (
        attempt.exten == "campaign" and attempt.variables["IVR_LANG"] == "lt" and attempt.variables["offer"] == "gold"
    )

    # The service restarts (a deployment): the campaign's state is in the database, nothing is lost or redone.
    await env.stop()
    await env.start()
    assert (await env.call("GET", f"/campaigns/{campaign}"))[1]["state"] == "running"

    # The busy line is free now: the retry 10 minutes later reaches them; the silent one fails after 2 attempts.
    sim.config.callees[busy] = answers()
    await sim.clock.sleep(601)
    contacts = await env.until(
        campaign,
        lambda c: c[busy]["state"] == "connected" and c[silent]["state"] == "failed",
        "the retries",
    )
    assert contacts[busy]["attempts"] == 2 and env.dialled(silent) == 2
    assert contacts[new_york]["attempts"] == 0  # still before 09:00 in New York

    # 09:00 in New York: Mary is called; then nothing is left and the campaign finishes by itself.
    await sim.clock.sleep((opens - sim.clock.datetime()).total_seconds() + 1)
    await env.until(campaign, lambda c: c[new_york]["state"] == "connected", "the New York contact")
    async with asyncio.timeout(10):
        while (await env.call("GET", f"/campaigns/{campaign}"))[1]["state"] != "finished":
            await asyncio.sleep(0.05)
    status, body = await env.call("GET", f"/campaigns/{campaign}/stats")
    assert status == 200
    assert body["contacts"]["connected"] == 3 and body["contacts"]["failed"] == 1 and body["contacts"]["dnc"] == 1
    assert body["attempts"] == {"answered": 3, "busy": 1, "no_answer": 2}
    assert (body["answered"], body["connected"], body["abandoned"], body["abandon_rate"]) == (3, 3, 0, 0.0)
    assert [env.dialled(n) for n in (answered, busy, silent, listed, new_york)] == [1, 2, 2, 0, 1]
    status, one = await env.call("GET", f"/campaigns/{campaign}/contacts/{contacts[busy]['id']}")
    assert [(a["result"], a["outcome"]) for a in one["attempts_log"]] == [("busy", None), ("answered", "connected")]
    assert (await env.call("GET", f"/campaigns/{campaign + 1}/contacts/{contacts[busy]['id']}"))[0] == 404
    # New contacts reopen a finished campaign. This one asks not to be called again (presses 2 in the flow).
    late = "+37060000006"
    sim.config.callees[late] = answers((NextPrompt(0.5), Press("2")))
    status, body = await env.call("POST", f"/campaigns/{campaign}/contacts", data=f"number\n{late}\n".encode())
    assert (status, body["added"]) == (200, 1)
    await env.until(campaign, lambda c: c[late]["state"] == "declined", "the late contact")
    status, body = await env.call("GET", "/dnc?number=%2B37060000006")
    assert [(n["number"], n["reason"]) for n in body["numbers"]] == [(late, "asked during a campaign call")]


async def test_the_abandon_guard_pauses_dialling_when_contacts_wait_for_no_agent(env: Env) -> None:
    """The queue's agent never answers: answered contacts wait out the flow's 15 s and hear the apology
    (abandoned). With the guard's evidence threshold at 2 answered calls, 2 of 2 abandoned pauses the campaign's
    dialling while contacts remain."""
    numbers = [f"+3706100000{i}" for i in range(6)]
    for number in numbers:
        env.sim.config.callees[number] = answers()
    csv = "number\n" + "\n".join(numbers) + "\n"
    guard = {"min_answered": 2, "backoff_from": 0.02, "pause_at": 0.027, "limit": 0.03}
    campaign = await env.campaign("winback", "winback", csv, max_attempts=1, abandon=guard)
    assert (await env.call("POST", f"/campaigns/{campaign}/start"))[0] == 200
    await env.until(campaign, lambda c: sum(x["state"] == "abandoned" for x in c.values()) >= 2, "two abandons")
    await asyncio.sleep(0.5)  # rounds go on: none may dial
    status, stats = await env.call("GET", f"/campaigns/{campaign}/stats")
    assert stats["pacing"] == {"ratio": 0.0, "slots": 0, "reason": "paused"}
    assert stats["abandoned"] == stats["answered"] == 2 and stats["abandon_rate_window"] == 1.0
    assert stats["contacts"]["pending"] == len(numbers) - 2
    assert sum(env.dialled(n) for n in numbers) == 2
    # The metrics say the same (winback is listed in campaigns.names).
    async with aiohttp.ClientSession() as http, http.get(env.base + "/metrics") as resp:
        text = await resp.text()
    assert 'ivr_campaign_outcomes_total{campaign="winback",outcome="abandoned"} 2.0' in text
    assert 'ivr_campaign_pacing_ratio{campaign="winback"} 0.0' in text
    assert 'ivr_campaign_abandon_rate{campaign="winback"} 1.0' in text


async def test_pause_resume_and_stop(env: Env) -> None:
    first, second, night = "+37062000001", "+37062000002", "+37062000009"
    env.sim.config.callees.update({first: answers(), second: answers(), night: answers()})
    # 01:00 in Los Angeles: that contact waits, so the campaign stays running after the first is done.
    csv = f"number,timezone\n{first},\n{night},America/Los_Angeles\n"
    campaign = await env.campaign("paused", "renewals", csv)
    body = {"name": "typo", "flow": "campaing", "queue": "renewals", "settings": {"schedule": HOURS}}
    status, refused = await env.call("POST", "/campaigns", json=body)
    assert status == 422 and refused["detail"][0]["field"] == "flow"  # the service has no such flow
    body = {
        "name": "hol",
        "flow": "campaign",
        "queue": "renewals",
        "settings": {"schedule": {**HOURS, "holiday_calendar": "nope.ics"}},
    }
    status, refused = await env.call("POST", "/campaigns", json=body)
    assert status == 422 and "cannot be read" in refused["detail"][0]["message"]  # not in the flows directory
    body["settings"]["schedule"]["holiday_calendar"] = "holidays-lt.ics"  # the sample one is
    assert (await env.call("POST", "/campaigns", json=body))[0] == 201
    assert (await env.call("POST", f"/campaigns/{campaign}/pause"))[0] == 409  # a draft is not running
    assert (await env.call("POST", f"/campaigns/{campaign}/start"))[1]["state"] == "running"
    await env.until(campaign, lambda c: c[first]["state"] == "connected", "the first contact")
    assert (await env.call("POST", f"/campaigns/{campaign}/pause"))[1]["state"] == "paused"
    status, body = await env.call(
        "POST", f"/campaigns/{campaign}/contacts", data=f"number\n{first}\n{second}\n".encode()
    )
    assert (status, body["added"], [s["line"] for s in body["skipped"]]) == (200, 1, [2])  # the first is there already
    await asyncio.sleep(0.3)
    assert env.dialled(second) == 0  # paused: nothing dialled
    assert (await env.call("POST", f"/campaigns/{campaign}/resume"))[1]["state"] == "running"
    await env.until(campaign, lambda c: c[second]["state"] == "connected", "the second contact after resume")
    assert (await env.call("POST", f"/campaigns/{campaign}/stop"))[1]["state"] == "stopped"
    async with aiohttp.ClientSession() as http, http.get(env.base + "/metrics") as resp:
        text = await resp.text()  # "paused" is not in campaigns.names: its calls count under "other"
    assert 'ivr_campaign_attempts_total{campaign="other",result="answered"}' in text
    status, body = await env.call("POST", f"/campaigns/{campaign}/resume")
    assert status == 409 and "needs it paused" in body["detail"]
    status, body = await env.call("POST", f"/campaigns/{campaign}/contacts", data=b"number\n+37062000003\n")
    assert status == 409
    assert env.dialled(night) == 0


async def test_answered_contacts_hold_their_slot_until_their_flow_is_done(env: Env) -> None:
    """Every contact answers and asks for an agent; two available agents at 1:1. A contact in the greeting is on
    the line for an agent as much as one ringing: never more than two contacts' calls at once, as the simulator
    counts them from its own channel events (Newchannel / Hangup of each Local/<number>@ivr-dial-out;1)."""
    numbers = [f"+3706300000{i}" for i in range(5)]
    for number in numbers:
        env.sim.config.callees[number] = answers()
    live: set[str] = set()
    most = 0

    def count(event) -> None:
        nonlocal most
        channel = event.get("Channel") or ""
        if not (channel.startswith("Local/+3706300000") and channel.endswith(";1")):
            return
        if event.name == "Newchannel":
            live.add(channel)
            most = max(most, len(live))
        elif event.name == "Hangup":
            live.discard(channel)

    stop_counting = env.sim.pbx.bus.subscribe(count)
    try:
        csv = "number\n" + "\n".join(numbers) + "\n"
        campaign = await env.campaign("overdial", "renewals", csv, max_attempts=1)
        assert (await env.call("POST", f"/campaigns/{campaign}/start"))[0] == 200
        await env.until(
            campaign, lambda c: all(x["state"] == "connected" for x in c.values()), "every contact connected"
        )
    finally:
        stop_counting()
    assert most == 2 and sum(env.dialled(n) for n in numbers) == len(numbers)


async def test_an_ami_outage_dials_nobody_and_uses_no_attempt(env: Env) -> None:
    """The AMI link to Asterisk is down when the campaign starts: rounds are skipped (pacing `asterisk_down`),
    the contacts keep every attempt; once AMI is back they are called."""
    from ivr.sim.ami_server import AMIServer

    numbers = ["+37064000001", "+37064000002"]
    for number in numbers:
        env.sim.config.callees[number] = answers()
    campaign = await env.campaign("outage", "renewals", "number\n" + "\n".join(numbers) + "\n", max_attempts=1)
    sim, service = env.sim, env.service
    assert sim.ami is not None and service is not None
    await sim.ami.stop()  # Asterisk's AMI goes away
    async with asyncio.timeout(10):
        while service.ami.logged_in:
            await asyncio.sleep(0.01)
    assert (await env.call("POST", f"/campaigns/{campaign}/start"))[0] == 200
    async with asyncio.timeout(10):
        while (await env.call("GET", f"/campaigns/{campaign}/stats"))[1]["pacing"] is None:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # several rounds (every 0.05 s)
    status, stats = await env.call("GET", f"/campaigns/{campaign}/stats")
    assert stats["pacing"]["reason"] == "asterisk_down" and stats["contacts"]["pending"] == 2
    assert stats["attempts"] == {} and not sim.originates
    sim.ami = AMIServer(sim, port=sim.ami_port)  # back on the same port: the client logs in again
    await sim.ami.start()
    await service.ami.wait_logged_in(10)
    contacts = await env.until(
        campaign, lambda c: all(x["state"] == "connected" for x in c.values()), "the contacts after the outage"
    )
    assert [c["attempts"] for c in contacts.values()] == [1, 1]


async def test_with_the_dialer_off_flow_reports_still_resolve_contacts_and_stop_waits_for_them(tmp_path: Path):
    """campaigns.enabled false: this instance dials nobody, but a campaign call it serves still reports its
    contact's outcome, and the service's stop lets that report be stored before the storage closes."""
    sim = SimulatedAsterisk(SimConfig(ami_users={"ivr": "s3cret"}), clock=VirtualClock(start=MONDAY_10))
    await sim.start(ami=True)
    settings = settings_for(sim, tmp_path)
    settings.campaigns.enabled = False
    service = Service.from_settings(settings, clock=sim.clock.datetime)
    await service.start()
    try:
        store, dialer = service.storage, service.dialer
        assert dialer is not None and not service.run_dialer
        campaign = await store.add_campaign(
            Campaign(name="elsewhere", flow="campaign", queue="renewals", settings={"schedule": HOURS})
        )
        await store.add_campaign_contacts(
            campaign, [CampaignContact(campaign_id=campaign, number="+37065000001", next_attempt_at=MONDAY_10)]
        )
        until = MONDAY_10 + timedelta(minutes=1)
        [contact] = await store.lease_campaign_contacts(campaign, MONDAY_10, limit=1, owner="b", lease_until=until)
        await store.record_campaign_attempt(contact.id, "answered", MONDAY_10, owner="b")  # dialled by instance b
        report = SimpleNamespace(outcome="transferred", visits=[], variables={"param_contact": str(contact.id)})
        task = dialer.on_flow_report(report)  # the campaign call ran its flow here
    finally:
        await service.stop()
        await sim.stop()
    assert task is not None and task.done() and not task.cancelled()
    store = open_storage(f"sqlite:///{tmp_path / 'ivr.db'}")
    await store.open()
    try:
        assert (await store.get_campaign_contact(contact.id)).state == "connected"
    finally:
        await store.close()

"""Issue 17: no caller is dropped when the service dies in the middle of a call.

`python main.py serve` runs as a subprocess; the simulated Asterisk runs the shipped dialplans/extensions_ivr.conf
(calls enter at [ivr-inbound] with a DID, as on a real PBX) and the sample `main` flow (copied with its office
hours pinned open, so the wall clock does not choose the path, and the CRM lookup pointed at a test server that
never answers). At each moment the service is killed with SIGKILL while virtual time is held, and the test checks
where the caller ends up. Times are the simulator's virtual clock: the kill moment is exact, nothing is timed in
real seconds."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from ivr import dialplan
from ivr.sim import (
    AgentSpec,
    CallSpec,
    Hangup,
    NextPrompt,
    Press,
    QueueSpec,
    SimConfig,
    SimulatedAsterisk,
    VirtualClock,
)
from ivr.sim.ami_originate import Originate
from ivr.sim.call import Call, CallRecord
from ivr.sim.events import Event
from ivr.sim.extensions_conf import SHIPPED

ROOT = Path(__file__).resolve().parents[2]
DID = "37052000000"  # [ivr-inbound]: Set(IVR_FLOW=main), Goto(ivr-enter,s,1)
OPERATOR = "Local/operator@agents"
QUEUES = ("sales", "support", "billing", "complaints", "technical")
# language 1 (English), consent notice, welcome, main menu
TO_MENU = [NextPrompt(0.5), Press("1"), NextPrompt(), NextPrompt()]
TO_SALES = [*TO_MENU, NextPrompt(0.5), Press("1")]
TO_OPERATOR = [*TO_MENU, NextPrompt(0.5), Press("0")]
TO_BILLING_LOOKUP = [
    *TO_MENU,
    NextPrompt(0.5),
    Press("3"),
    NextPrompt(0.5),
    Press("123456#"),
    NextPrompt(0.5),
    Press("1"),
]
BANNER = re.compile(r"FastAGI\s+agi://127\.0\.0\.1:(\d+)/")


@dataclass
class Instance:
    """One `python main.py serve` process."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def _flows(tmp_path: Path, crm_port: int) -> Path:
    flows = tmp_path / "flows"
    if not flows.exists():
        shutil.copytree(ROOT / "config" / "flows", flows)
        main = flows / "main.yaml"
        text = main.read_text()
        text = text.replace("    # override: closed\n", "    override: open\n")
        text = text.replace("    holiday_calendar: holidays-lt.ics\n", "")
        text = text.replace("http://127.0.0.1:8089/crm/", f"http://127.0.0.1:{crm_port}/crm/")
        main.write_text(text)
    return flows


def start_instance(tmp_path: Path, name: str, crm_port: int) -> Instance:
    settings = tmp_path / f"{name}.yaml"
    (tmp_path / "rec" / "voicemail").mkdir(parents=True, exist_ok=True)  # RECORD FILE creates no directories
    settings.write_text(
        "ami: {enabled: false}\nfastagi: {host: 127.0.0.1, port: 0}\nhttp: {port: 0}\n"
        f"flows_dir: {_flows(tmp_path, crm_port)}\nprompts_dir: {ROOT / 'recordings' / 'prompts'}\n"
        f"recordings_dir: {tmp_path / 'rec'}\nstorage: {{url: 'memory:'}}\nreload: {{watch: false}}\n"
        "lookups: {timeout: 60s, allowed_hosts: [127.0.0.1]}\n"
    )
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "serve", "--config", str(settings)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Instance(proc, 0, log)


def wait_listening(instance: Instance) -> Instance:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = BANNER.search(instance.log.read_text(errors="replace"))
        if m:
            instance.port = int(m.group(1))
            return instance
        if instance.proc.poll() is not None:
            break
        time.sleep(0.02)
    instance.kill()
    raise AssertionError(f"serve did not start:\n{instance.log.read_text(errors='replace')}")


@dataclass
class Stage:
    sim: SimulatedAsterisk
    victim: Instance
    crm_asked: asyncio.Event
    events: list[Event] = field(default_factory=list)
    spare: Instance | None = None

    async def kill_at(
        self, moment: Callable[[Event], bool] | None, *, session_sees_close: bool, call: Call | None = None
    ) -> tuple[Call, float]:
        """When `moment(event)` first holds (None: now), hold virtual time, SIGKILL the service, and return the call
        (of the event's channel, or `call`) and the virtual time of the death. `session_sees_close`: the AGI session
        notices the closed socket at once (waiting for a command, or a prompt/digit wait that watches the socket);
        else an EXEC'd app runs on."""
        reached: list[Event] = []
        event = asyncio.Event()
        if moment is None:
            self.sim.clock.acquire()
            event.set()

        def watch(ev: Event) -> None:
            if not reached and moment(ev):
                self.sim.clock.acquire()  # synchronous: nothing moves between the moment and the kill
                reached.append(ev)
                event.set()

        unsubscribe = self.sim.pbx.bus.subscribe(watch)
        try:
            await asyncio.wait_for(event.wait(), 20)
        finally:
            unsubscribe()
        try:
            if call is None:
                call = self.sim.call_for_channel(reached[0].get("Channel") or "") or self.sim.live_calls[0]
            killed_at = self.sim.clock.now()
            await asyncio.to_thread(self.victim.kill)
            if session_sees_close:
                assert call.session is not None
                await asyncio.wait_for(call.session.service_closed.wait(), 10)
        finally:
            self.sim.clock.release()
        return call, killed_at

    def first(self, name: str, after: float = 0.0, **headers: str) -> Event:
        for ev in self.events:
            if ev.name == name and ev.time >= after and all(ev.get(k) == v for k, v in headers.items()):
                return ev
        raise AssertionError(f"no {name} {headers} after {after}")

    def newexten(self, context: str, exten: str, priority: str = "1") -> list[Event]:
        return [
            e
            for e in self.events
            if e.name == "Newexten"
            and (e.get("Context"), e.get("Extension"), e.get("Priority")) == (context, exten, priority)
        ]


async def crm_that_never_answers(asked: asyncio.Event, done: asyncio.Event) -> tuple[web.AppRunner, int]:
    """A CRM that takes the lookup and answers only when the test is over (the service is dead by then)."""

    async def account(request: web.Request) -> web.Response:
        asked.set()
        await done.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/crm/accounts/{account}", account)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def sim_config(agents: dict[str, AgentSpec] | None = None) -> SimConfig:
    return SimConfig(
        queues={q: QueueSpec(q, members=["Local/agent@agents"], member_timeout=15) for q in QUEUES},
        agents={
            "agent": AgentSpec("agent", answer_after=2.0, talk=20.0),
            "operator": AgentSpec("operator", answer_after=1.0, talk=5.0),
            "6000": AgentSpec("6000", answer_after=None),  # the flow's operator extension does not answer
            **(agents or {}),
        },
        globals={dialplan.OPERATOR: OPERATOR},
    )


@contextlib.asynccontextmanager
async def staged(tmp_path: Path, config: SimConfig, *, spare: bool = False) -> AsyncIterator[Stage]:
    asked, done = asyncio.Event(), asyncio.Event()
    runner, crm_port = await crm_that_never_answers(asked, done)
    victim = start_instance(tmp_path, "victim", crm_port)
    second = start_instance(tmp_path, "spare", crm_port) if spare else None
    sim: SimulatedAsterisk | None = None
    try:
        await asyncio.to_thread(wait_listening, victim)
        if second is not None:
            await asyncio.to_thread(wait_listening, second)
            # Several instances, as the dialplan's header says: hagi://<name>/ in the three AGI() lines and SRV
            # records for _agi._tcp.<name> (the victim first, as a resolver would order them by priority).
            variant = tmp_path / "extensions_ivr.conf"
            text = SHIPPED.read_text()
            assert text.count("AGI(agi://${IVR_SERVER}/") == 3
            variant.write_text(text.replace("AGI(agi://${IVR_SERVER}/", "AGI(hagi://ivr.example/"))
            config.dialplan_file = variant
            config.srv["ivr.example"] = [f"127.0.0.1:{victim.port}", f"127.0.0.1:{second.port}"]
        sim = SimulatedAsterisk(config, clock=VirtualClock(start=datetime(2026, 3, 23, 10, 0, tzinfo=UTC)))
        await sim.start(fastagi=("127.0.0.1", victim.port), ami=False)
        stage = Stage(sim, victim, asked, spare=second)
        sim.pbx.bus.subscribe(stage.events.append)
        yield stage
    finally:
        if sim is not None:
            await sim.stop()
        for instance in (victim, second):
            if instance is not None:
                instance.kill()
        done.set()
        await runner.cleanup()


async def place(stage: Stage, script: Sequence[object]) -> Call:
    return await stage.sim.place_call(CallSpec(did=DID, context="ivr-inbound", caller_id="+37060000001", script=script))


def operator_reached_within(stage: Stage, rec: CallRecord, since: float, seconds: float) -> None:
    fallback = stage.newexten(dialplan.ENTER_CONTEXT, dialplan.FALLBACK_EXTEN)
    assert fallback, rec.text()
    assert fallback[0].time - since <= seconds, (fallback[0].time - since, rec.text())
    assert rec.dials[-1] == (OPERATOR, "ANSWER"), rec.dials
    assert rec.destinations[-1] == "agent:" + OPERATOR


async def test_killed_in_a_menu_prompt_the_caller_reaches_the_operator(tmp_path: Path) -> None:
    async with staged(tmp_path, sim_config()) as stage:
        call = await place(stage, TO_MENU)
        _, killed = await stage.kill_at(
            lambda ev: ev.name == "AGIExecStart" and "main_menu" in (ev.get("Command") or ""),
            session_sees_close=True,
        )
        rec = await call.finished(timeout=20)
    # the prompt stopped at the close (res_agi: STREAM FILE watches the socket); AGI() ended SUCCESS, no report
    assert rec.agi_runs[0].status == "SUCCESS" and rec.variables.get(dialplan.STATUS, "") == ""
    assert not [line for line in rec.replies() if "main_menu" in line]
    operator_reached_within(stage, rec, killed, 2.0)


async def test_killed_during_a_lookup_the_caller_reaches_the_operator(tmp_path: Path) -> None:
    async with staged(tmp_path, sim_config()) as stage:
        call = await place(stage, TO_BILLING_LOOKUP)
        await asyncio.wait_for(stage.crm_asked.wait(), 20)  # the service waits for the CRM (node timeout 2 s)
        asked_at = len(call.transcript)
        _, killed = await stage.kill_at(None, session_sees_close=True, call=call)
        rec = await call.finished(timeout=20)
    assert not [line for line in rec.transcript[asked_at:] if line.direction == ">>>"]  # killed in the lookup
    assert rec.agi_runs[0].status == "SUCCESS" and rec.variables.get(dialplan.STATUS, "") == ""  # no report
    operator_reached_within(stage, rec, killed, 2.0)


async def test_killed_while_the_caller_talks_to_an_agent_the_conversation_goes_on(tmp_path: Path) -> None:
    async with staged(tmp_path, sim_config()) as stage:
        call = await place(stage, TO_SALES)
        _, killed = await stage.kill_at(lambda ev: ev.name == "AgentConnect", session_sees_close=False)
        rec = await call.finished(timeout=20)
    complete = stage.first("AgentComplete")
    assert complete["Reason"] == "agent" and int(complete["TalkTime"]) >= 19  # the full 20 s, undisturbed
    assert complete.time - killed >= 19
    assert rec.variables[dialplan.STATUS] == dialplan.AGENT and int(rec.variables["ANSWEREDTIME_MS"]) >= 19000
    # after the agent hung up: the report says so, the call ends; the operator never rings
    assert stage.newexten(dialplan.ENTER_CONTEXT, "done") and not stage.newexten(
        dialplan.ENTER_CONTEXT, dialplan.FALLBACK_EXTEN
    )
    assert OPERATOR not in [d for d, _ in rec.dials]
    assert rec.ended.by == "service" and rec.destinations[-1].startswith("queue:sales")


async def test_killed_while_parked_the_caller_stays_parked_then_reaches_the_operator(tmp_path: Path) -> None:
    async with staged(tmp_path, sim_config()) as stage:
        call = await place(stage, TO_OPERATOR)
        _, killed = await stage.kill_at(lambda ev: ev.name == "ParkedCall", session_sees_close=False)
        rec = await call.finished(timeout=20)
    timeout = stage.first("ParkedCallTimeOut")
    assert timeout.time - killed >= 44  # parked for the flow's 45 s although the service was gone
    assert [r.status for r in rec.agi_runs] == ["HANGUP", "FAILURE"]  # the comeback finds no service
    operator_reached_within(stage, rec, timeout.time, 2.0)


async def test_with_several_instances_the_comeback_and_new_calls_reach_a_live_one(tmp_path: Path) -> None:
    async with staged(tmp_path, sim_config(), spare=True) as stage:
        assert stage.spare is not None
        call = await place(stage, TO_OPERATOR)
        await stage.kill_at(lambda ev: ev.name == "ParkedCall", session_sees_close=False)
        # a new call while the first one is parked: the dead instance refuses, the next SRV target takes it
        fresh = await place(stage, [NextPrompt(0.5), Hangup()])
        rec, new = await call.finished(timeout=20), await fresh.finished(timeout=20)
    assert new.agi_runs[0].env["request"].startswith("hagi://ivr.example/main")
    assert new.agi_runs[0].status == "HANGUP" and new.commands()  # served: the caller heard the first prompt
    assert new.transcript[0].t == 0.0  # connected at once, no time lost on the dead instance
    # the parked caller's comeback: the live instance picked the flow up at the park's comeback node
    assert [r.script for r in rec.agi_runs] == ["main?lang=&did=" + DID, "main?node=general_voicemail"]
    assert any(c.startswith("RECORD FILE") for c in rec.session_commands(1))  # voicemail, then goodbye
    assert (rec.ended.by, rec.ended.during) == ("service", "HANGUP")  # the flow's own hangup node
    assert OPERATOR not in [d for d, _ in rec.dials]


async def test_killed_on_hold_the_caller_stays_on_hold_then_reaches_the_operator(tmp_path: Path) -> None:
    config = sim_config({"6000": AgentSpec("6000", busy=True)})  # busy operator: the flow holds the caller
    async with staged(tmp_path, config) as stage:
        call = await place(stage, TO_OPERATOR)
        _, killed = await stage.kill_at(
            lambda ev: ev.name == "AGIExecStart" and (ev.get("Command") or "").startswith("EXEC MusicOnHold"),
            session_sees_close=False,
        )
        rec = await call.finished(timeout=20)
    hold_end = stage.first("MusicOnHoldStop", after=killed)
    assert hold_end.time - killed >= 19  # the 20 s slice of hold music played on
    assert rec.variables[dialplan.STATUS] == dialplan.RUNNING  # back in the flow after the busy Dial
    operator_reached_within(stage, rec, hold_end.time, 2.0)


async def test_killed_in_an_outbound_callback_the_customer_reaches_the_callback_queue(tmp_path: Path) -> None:
    customer = "+37060000002"
    config = sim_config({customer: AgentSpec(customer, answer_after=1.0, talk=None)})  # answers the callback
    async with staged(tmp_path, config) as stage:
        # What the callback scheduler sends over AMI (ivr.calls.callbacks): the customer leg, answered -> the flow
        originate = Originate(
            stage.sim,
            target=f"Local/{customer}@{dialplan.DIAL_OUT_CONTEXT}",
            context=dialplan.OUTBOUND_CONTEXT,
            exten="callback",
            app="",
            data="",
            timeout=30,
            num="",
            name="",
            variables={dialplan.CALLBACK_QUEUE: "support", dialplan.CALLBACK_ID: "7", dialplan.LANG: "en"},
            account="",
            channel_id=None,
            action_id=None,
        )
        assert await originate.run()
        call, killed = await stage.kill_at(
            lambda ev: ev.name == "AGIExecStart" and "callback_hello" in (ev.get("Command") or ""),
            session_sees_close=True,
        )
        rec = await call.finished(timeout=20)
    assert rec.agi_runs[0].script.startswith("callback?outbound=1&lang=en&queue=support&callback=7")
    entered = stage.newexten(dialplan.OUTBOUND_FALLBACK_CONTEXT, "s")
    assert entered and entered[0].time - killed <= 2.0, rec.text()
    assert stage.first("QueueCallerJoin", Queue="support").time - killed <= 2.0
    assert "queue:support" in " ".join(rec.destinations) and OPERATOR not in [d for d, _ in rec.dials]

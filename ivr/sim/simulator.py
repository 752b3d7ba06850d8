"""SimulatedAsterisk: the test-facing API -- start, place calls with caller scripts, read what happened.

Rules for this file:
- One `SimulatedAsterisk` = one PBX model + (optionally) one AMI server, on loopback ephemeral ports.
- `place_call()` returns at once with a `Call`; `await call.finished()` gives the `CallRecord`: the AGI
  transcript, the channel variables, the AMI events of the call, AGISTATUS and where/how the call ended.
- A call holds the virtual clock from placement until its AGI session is connected and idle-waiting is
  handled by the session (see clock.py / agi_session.py).
- Nothing in the service's runtime imports this package.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Sequence
from urllib.parse import urlencode

from ivr.sim.agi_session import AGISession
from ivr.sim.bridging import ring_agent, talk
from ivr.sim.channel import MediaEvent, SimChannel
from ivr.sim.clock import Clock, RealClock, VirtualClock
from ivr.sim.events import Event
from ivr.sim.model import CallSpec, Route, SimConfig
from ivr.sim.parking import park_channel, retrieve
from ivr.sim.pbx import PBX
from ivr.sim.script import (At, CallerScript, Hangup, NextPrompt, OnCommand, Press, Sleep, Speak, Step,
                            WhenIdle)
from ivr.sim.wav import write_wav

AGI_VERSION = "22.10.1"
ASYNC_AGI = "agi:async"     # Route(flow="agi:async"): AGI(agi:async), driven over AMI `Action: AGI`


class SimError(Exception):
    """Misuse of the simulator API (the message says what to do)."""


@dataclass(frozen=True)
class TranscriptLine:
    t: float            # seconds since the call was placed (clock time)
    direction: str      # "<<<" sent by Asterisk, ">>>" sent by the service
    text: str           # the line including its terminator

    def __str__(self) -> str:
        return "+%.3f %s %r" % (self.t, self.direction, self.text)


@dataclass(frozen=True)
class Ending:
    """How and where a call ended.

    `by`: "caller" (the caller hung up), "service" (AGI HANGUP, or the service closed the AGI and the dialplan
    hung up), "agent" (the agent the caller was bridged to hung up), "timeout" (parking timeout and comeback),
    "limit" (max_call_seconds), "ami" (hung up over AMI), "shutdown" (sim.stop()).  `during`: the AGI command or EXEC'd app running at that moment ("idle" between commands,
    "dialplan" after the AGI).  `destination`: the last place the call reached ("ivr", "agent:<dialstring>",
    "queue:<name>[:<member>]", "parked:<space>", "recording:<path>").
    """

    by: str
    during: str
    destination: str


@dataclass(frozen=True)
class RecordingInfo:
    path: str
    seconds: float
    kind: str           # "record" (RECORD FILE) | "mixmonitor"


@dataclass
class CallRecord:
    channel: str
    uniqueid: str
    linkedid: str
    flow: str
    transcript: list[TranscriptLine]
    variables: dict[str, str]
    events: list[Event]
    agi_status: str | None
    ended: Ending
    destinations: list[str]
    recordings: list[RecordingInfo]
    dials: list[tuple[str, str]]
    started: float
    duration: float
    log: list[tuple[str, str]] = field(default_factory=list)
    spied: list[str] = field(default_factory=list)    # ChanSpy modes a supervisor used: listen/whisper/barge

    def commands(self) -> list[str]:
        """Command lines the service sent (without the final newline)."""
        return [l.text[:-1] for l in self.transcript if l.direction == ">>>"]

    def replies(self) -> list[str]:
        """Lines Asterisk sent after the env block (without the final newline)."""
        lines = [l.text for l in self.transcript if l.direction == "<<<"]
        out: list[str] = []
        for chunk in lines[1:]:
            out += chunk.splitlines()
        return out

    def env_lines(self) -> list[str]:
        first = next((l.text for l in self.transcript if l.direction == "<<<"), "")
        return first.split("\n")[:-2]

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def text(self) -> str:
        """The transcript in the recordings' notation (`+0.504 >>> ANSWER\n`), for assertion messages."""
        out = []
        for line in self.transcript:
            for part in line.text.splitlines(keepends=True):
                shown = part.replace("\r", "\\r").replace("\n", "\\n")
                out.append("+%.3f %s %s" % (line.t, line.direction, shown))
        return "\n".join(out)


@dataclass
class MixMon:
    id: str
    channel: SimChannel
    path: Path
    started: float


class Call:
    """A live simulated call; `await finished()` for its record."""

    def __init__(self, sim: "SimulatedAsterisk", spec: CallSpec, route: Route) -> None:
        self.sim = sim
        self.spec = spec
        self.route = route
        self.started = sim.clock.now()
        self.transcript: list[TranscriptLine] = []
        self.events: list[Event] = []
        self.log: list[tuple[str, str]] = []
        self.destinations: list[str] = ["ivr"]
        self.recordings: list[RecordingInfo] = []
        self.dials: list[tuple[str, str]] = []
        self.ending: Ending | None = None
        self.agi_status: str | None = None
        self.channel: SimChannel | None = None     # runs the AGI
        self.caller_leg: SimChannel | None = None  # ;1 of a Local pair
        self.session: AGISession | None = None
        self.linkedid = ""
        self._done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._script_task: asyncio.Task[None] | None = None
        self._created: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._existing: SimChannel | None = None           # an originated channel put into a flow
        self._goto: tuple[str, str, float | None] | None = None
        self.spied: list[str] = []                          # ChanSpy modes used on this call

    # -- recording what happened ------------------------------------------------------------------------------
    def add_line(self, direction: str, data: bytes) -> None:
        self.transcript.append(TranscriptLine(self.sim.clock.now() - self.started, direction,
                                              data.decode("latin-1")))

    def note_end(self, by: str, during: str) -> None:
        if self.ending is None:
            self.ending = Ending(by, during, self.destinations[-1])

    # -- control (tests and AMI) -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.channel.name if self.channel else ""

    @property
    def uniqueid(self) -> str:
        return self.channel.uniqueid if self.channel else ""

    def press(self, digits: str) -> None:
        """Inject DTMF now (digit delivered 120 ms later, at DTMF end)."""
        asyncio.get_running_loop().create_task(self._press(Press(digits)))

    def hangup(self) -> None:
        """The caller hangs up now."""
        self._caller_hangs_up()

    def hangup_caller_leg(self, cause: int) -> None:
        if self.caller_leg is not None and not self.caller_leg.hungup:
            self.caller_leg.hangup(cause)
        if self.channel is not None and not self.channel.hungup:
            self.channel.hangup(cause)

    def _caller_hangs_up(self, by: str = "caller") -> None:
        if self.channel is None or self.channel.hungup:
            return
        during = self.session.current if self.session and self.session.in_command else (
            "idle" if self.session else "dialplan")
        self.note_end(by, during or "idle")
        self.hangup_caller_leg(16)

    async def finished(self, timeout: float | None = None) -> CallRecord:
        """The record once the call is over.  `timeout` is in real seconds (a safety net for tests)."""
        if timeout is None:
            return await asyncio.shield(self._done)
        return await asyncio.wait_for(asyncio.shield(self._done), timeout)

    @property
    def done(self) -> bool:
        return self._done.done()

    # -- the call's life ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-call")

    async def _run(self) -> None:
        sim = self.sim
        clock = sim.clock
        clock.acquire()
        held = True
        try:
            ch = self._existing if self._existing is not None else self._create_channels()
            if self._existing is not None:
                self._adopt(ch)
            self._created.set_result(None)
            script = CallerScript.of(self.spec.script)
            self._script_task = asyncio.get_running_loop().create_task(self._run_script(script.steps))
            limit = clock.call_later(sim.config.max_call_seconds, lambda: self._caller_hangs_up("limit"))
            route: Route | None = self.route
            while route is not None:
                if not held:
                    clock.acquire()
                held = True
                status = await self._run_agi(ch, route)
                clock.release()
                held = False
                self.agi_status = status
                ch.set_var("AGISTATUS", status)
                route = await self._after_agi(ch)
            limit.cancel()
        except Exception as exc:  # a bug in the simulator must not hang the test: fail the record loudly
            if not self._done.done():
                self._done.set_exception(exc)
            raise
        finally:
            if not self._created.done():
                self._created.set_result(None)
            if held:
                clock.release()
            if self._script_task is not None:
                self._script_task.cancel()
            self._finish()

    async def _run_agi(self, ch: SimChannel, route: Route) -> str:
        sim, spec = self.sim, self.spec
        query = dict(route.query)
        if route is self.route:
            query.update(spec.params)
        script_path = route.flow + ("?" + urlencode(query) if query else "")
        host, port = sim.fastagi
        args = (tuple(spec.args) if route is self.route else ()) or route.args
        is_async = route.flow == ASYNC_AGI
        appdata = (ASYNC_AGI if is_async else "agi://%s:%d/%s" % (host, port, script_path)) + "".join(
            "," + a for a in args)
        ch.newexten("AGI", appdata, priority=ch.priority)
        env = self._env(ch, host, port, script_path)
        if is_async:
            env["request"] = "async"
        self.session = AGISession(sim, self, ch, host, port, env, args, async_mode=is_async)
        ch.holding_clock = True
        try:
            return await self.session.run()
        finally:
            ch.holding_clock = False

    # -- redirects (AMI Redirect, Park, transfers of a caller that is not bridged) ----------------------------
    def goto(self, context: str, exten: str, *, park_timeout: float | None = None) -> None:
        """Move the caller to context/exten: the AGI sees a hangup (async goto), the channel lives on there."""
        ch = self.channel
        if ch is None or ch.hungup:
            return
        self._goto = (context, exten, park_timeout)
        session = self.session
        if session is not None and session.comeback_context is None:
            session.comeback(context)
            if not session.in_command and not session.dead:
                session._send_notice()
        ch.post(MediaEvent("hangup", "goto", self.sim.clock.now()))

    async def _after_agi(self, ch: SimChannel) -> Route | None:
        """The dialplan after the AGI; returns the next flow's route when a redirect led into one."""
        session = self.session
        assert session is not None
        if ch.hungup:
            return None
        if self._goto is not None:
            context, exten, park_timeout = self._goto
            self._goto = None
            ch.drain()
            return await self._continue_at(ch, context, exten, park_timeout)
        if session.comeback_context is not None:
            ch.context, ch.exten = session.comeback_context, "s"
            # the Newexten for s,1 carries the previous application (async goto quirk, agi-07c)
            ch.newexten(*session.comeback_app, priority=1)
            ch.newexten("Hangup", "", priority=2)
            self.note_end("timeout", "comeback")
            self.hangup_caller_leg(16)
            return None
        ch.newexten("NoOp", "AGISTATUS=%s" % self.agi_status, priority=ch.priority + 1)
        ch.newexten("Hangup", "", priority=ch.priority + 1)
        self.note_end("service", "dialplan")
        self.hangup_caller_leg(16)
        return None

    async def _continue_at(self, ch: SimChannel, context: str, exten: str,
                           park_timeout: float | None) -> Route | None:
        sim = self.sim
        lot = sim.config.parking
        ch.context, ch.exten = context, exten
        app = self.session.comeback_app if self.session is not None else (ch.app, ch.appdata)
        ch.newexten(*app, priority=1)
        if park_timeout is not None or exten == lot.parkext:
            timeout = park_timeout if park_timeout is not None else lot.parkingtime
            ch.set_var("PARKEDLOT", lot.name)
            outcome, space = await park_channel(ch, timeout=timeout, parker=ch.name, announce=False,
                                                on_space=lambda sp: self.destinations.append("parked:%d" % sp))
            if outcome == "retrieved":
                await sim.wait_retrieval_end(ch, space)
                self.note_end("service", "parked")
            elif outcome == "timeout":
                self.note_end("timeout", "parked")
            else:
                self.note_end("caller", "parked")
            self.hangup_caller_leg(16)
            return None
        route = sim.config.routes.get(exten)
        if route is not None:
            ch.priority = 1
            return route
        agent = sim.config.agents.get(exten)
        if agent is not None:
            target = "Local/%s@%s" % (exten, context)
            ring = await ring_agent(ch, target, None)
            self.dials.append((target, ring.status))
            if ring.status == "ANSWER" and ring.leg is not None:
                self.destinations.append("agent:" + target)
                outcome = await talk(ch, ring.leg, ring.other, agent.talk)
                self.note_end("caller" if outcome == "caller" else "agent", "bridge")
            else:
                self.note_end("service", "dial " + ring.status)
            self.hangup_caller_leg(16)
            return None
        self.note_end("service", "goto %s,%s" % (context, exten))
        self.hangup_caller_leg(16)
        return None

    def _create_channels(self) -> SimChannel:
        sim, spec, route = self.sim, self.spec, self.route
        pbx = sim.pbx
        context = spec.context or route.context
        exten = spec.did
        if spec.technology.upper() == "LOCAL":
            one, two = pbx.local_pair(exten, context, caller_num=spec.caller_id, caller_name=spec.caller_name,
                                      language=spec.language)
            one.state = 6
            self.caller_leg, ch = one, two
        else:
            ch = pbx.pjsip_channel(spec.trunk or sim.config.default_trunk, context=context, exten=exten,
                                   caller_num=spec.caller_id, caller_name=spec.caller_name,
                                   language=spec.language, accountcode=spec.accountcode)
        self.channel = ch
        self.linkedid = ch.linkedid
        sim.calls_by_linkedid[ch.linkedid] = self
        ch.media_flowing = spec.sends_media
        prio = 1
        ch.newexten("NoOp", "Inbound call to %s" % exten, priority=prio)
        for name, value in spec.variables.items():      # like Originate's Variable: no dialplan priority
            ch.set_var(name, value)
        for name, value in route.preset.items():
            prio += 1
            ch.newexten("Set", "%s=%s" % (name, value), priority=prio)
            ch.set_var(name, value)
        ch.priority = prio + 1
        return ch

    def _adopt(self, ch: SimChannel) -> None:
        """An answered channel enters the flow's dialplan: <exten>,1 Answer(), <exten>,2 AGI(...)."""
        self.channel = ch
        self.linkedid = ch.linkedid
        self.sim.calls_by_linkedid[ch.linkedid] = self
        ch.context, ch.exten = self.spec.context or self.route.context, self.spec.did
        ch.newexten("Answer" if ch.state == 6 else "NoOp", "", priority=1)
        ch.priority = 2

    def _env(self, ch: SimChannel, host: str, port: int, script_path: str) -> dict[str, str]:
        local = ch.tech == "Local"
        return {
            "network": "yes", "network_script": script_path,
            "request": "agi://%s:%d/%s" % (host, port, script_path), "channel": ch.name,
            "language": ch.language, "type": ch.tech, "uniqueid": ch.uniqueid, "version": AGI_VERSION,
            "callerid": ch.caller_num or "unknown", "calleridname": ch.caller_name or "unknown",
            "callingpres": "0", "callingani2": "0", "callington": "0", "callingtns": "0",
            "dnid": "unknown" if local else ch.exten, "rdnis": "unknown", "context": ch.context,
            "extension": ch.exten, "priority": str(ch.priority), "enhanced": "0.0",
            "accountcode": ch.accountcode, "threadid": str(self.sim.next_threadid()),
        }

    def _finish(self) -> None:
        self.sim.stop_all_mixmonitors(self.channel)
        if self.caller_leg is not None and not self.caller_leg.hungup:
            self.caller_leg.hangup(16)
        if self._done.done():
            return
        ch = self.channel
        rec = CallRecord(
            channel=ch.name if ch else "", uniqueid=ch.uniqueid if ch else "", linkedid=self.linkedid,
            flow=self.route.flow, transcript=list(self.transcript),
            variables=dict(ch.variables) if ch else {}, events=list(self.events),
            agi_status=self.agi_status, ended=self.ending or Ending("service", "dialplan", self.destinations[-1]),
            destinations=list(self.destinations), recordings=list(self.recordings), dials=list(self.dials),
            started=self.started, duration=self.sim.clock.now() - self.started, log=list(self.log),
            spied=list(self.spied))
        self._done.set_result(rec)
        self.sim.calls_by_linkedid.pop(self.linkedid, None)
        self.sim.finished_calls += 1

    # -- caller script -----------------------------------------------------------------------------------------
    async def _run_script(self, steps: Sequence[Step]) -> None:
        clock = self.sim.clock
        ch = self.channel
        assert ch is not None
        for step in steps:
            if ch.hungup:
                return
            if isinstance(step, At):
                await clock.sleep(self.started + step.seconds - clock.now())
            elif isinstance(step, Sleep):
                await clock.sleep(step.seconds)
            elif isinstance(step, NextPrompt):
                await ch.wait_prompt()
                await clock.sleep(step.delay)
            elif isinstance(step, OnCommand):
                await ch.wait_command(step.name)
                await clock.sleep(step.delay)
            elif isinstance(step, WhenIdle):
                while self.session is None:
                    await asyncio.sleep(0)
                await self.session.wait_idle()
            elif isinstance(step, Press):
                await self._press(step)
            elif isinstance(step, Speak):
                now = clock.now()
                ch.voice.append((now, now + step.seconds))
                ch.post(MediaEvent("voice", time=now))
            elif isinstance(step, Hangup):
                self._caller_hangs_up()
                return

    async def _press(self, step: Press) -> None:
        clock = self.sim.clock
        ch = self.channel
        assert ch is not None
        for i, digit in enumerate(step.digits):
            if ch.hungup:
                return
            ch.emit("DTMFBegin", "dtmf,all", [("Digit", digit), ("Direction", "Received")])
            await clock.sleep(step.duration)
            ch.post(MediaEvent("dtmf", digit, clock.now()))
            ch.emit("DTMFEnd", "dtmf,all", [("Digit", digit), ("DurationMs", str(int(step.duration * 1000))),
                                             ("Direction", "Received")])
            if i + 1 < len(step.digits):
                await clock.sleep(max(0.0, step.gap - step.duration))


class SimulatedAsterisk:
    """The simulated PBX.  Use as `async with SimulatedAsterisk(cfg, clock=VirtualClock()) as sim:`."""

    def __init__(self, config: SimConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock: Clock = clock or RealClock()
        self.pbx = PBX(self.config, self.clock)
        self.database: dict[tuple[str, str], str] = {}
        self.extra_apps: dict[str, Callable[[AGISession, str], Awaitable[int]]] = {}
        self.retrieval_talk: dict[int, float | None] = {}
        self._retrievers: dict[int, SimChannel] = {}
        self.calls_by_linkedid: dict[str, Call] = {}
        self.finished_calls = 0
        self.fastagi: tuple[str, int] = ("127.0.0.1", 4573)
        self.ami = None
        self.ami_port = 0
        self._threadids = itertools.count(140188048737984, 512)
        self._mixmons: dict[str, MixMon] = {}
        self._mm_seq = itertools.count(0x7F802800B260, 0x1A0)
        self._calls: list[Call] = []
        self._jobs: set[asyncio.Task[object]] = set()
        self.errors: list[BaseException] = []
        self._started = False
        self.pbx.bus.subscribe(self._route_event)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self, fastagi: tuple[str, int] | None = None, *, fastagi_host: str = "127.0.0.1",
                    fastagi_port: int | None = None, ami: bool = True, ami_host: str = "127.0.0.1",
                    ami_port: int = 0) -> "SimulatedAsterisk":
        """Point calls at the service's FastAGI server and start the AMI server (ephemeral port by default)."""
        if fastagi is not None:
            self.fastagi = (fastagi[0], int(fastagi[1]))
        elif fastagi_port is not None:
            self.fastagi = (fastagi_host, int(fastagi_port))
        if ami:
            from ivr.sim.ami_server import AMIServer
            self.ami = AMIServer(self, host=ami_host, port=ami_port)
            await self.ami.start()
            self.ami_port = self.ami.port
        self._started = True
        return self

    async def _hangup_all(self, grace: float) -> bool:
        """Soft-hang-up every live call, wait up to `grace` real seconds for their AGI sessions to end, then cut
        the sockets of the sessions that are still open.  True if every call ended within the grace time."""
        live = [c for c in self._calls if not c.done]
        for call in live:
            call._caller_hangs_up("shutdown")
        tasks = [c._task for c in live if c._task is not None and not c._task.done()]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for call in live:
            if call.session is not None and call._task in pending:
                call.session.abort()
        if pending:
            _, still = await asyncio.wait(pending, timeout=1.0)
            for task in still:
                task.cancel()
        return not pending

    async def shutdown(self, grace: float | None = None) -> bool:
        """`core stop now`: hang up every call, wait for the AGI sessions (up to `SimConfig.shutdown_grace`),
        send `Event: Shutdown` (Cleanly/Uncleanly) to AMI sessions with events on, close every socket."""
        clean = await self._hangup_all(self.config.shutdown_grace if grace is None else grace)
        if self.ami is not None:
            self.ami.broadcast_shutdown(clean)
        await self.stop()
        return clean

    async def stop(self) -> None:
        """Hang up every live call (5 s grace), stop the AMI server and the virtual clock."""
        await self._hangup_all(5.0)
        me = asyncio.current_task()
        for job in list(self._jobs):
            if job is not me:       # `core stop now` runs stop() from a job of its own
                job.cancel()
        if self.ami is not None:
            await self.ami.stop()
        if isinstance(self.clock, VirtualClock):
            self.clock.close()
        self._started = False

    async def __aenter__(self) -> "SimulatedAsterisk":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- calls -------------------------------------------------------------------------------------------------
    async def place_call(self, spec: CallSpec | None = None, **kw: object) -> Call:
        """Start a simulated inbound call; returns at once.  `place_call(flow="main", script=[...])` works too."""
        if spec is None:
            spec = CallSpec(**kw)  # type: ignore[arg-type]
        route = self._route_for(spec)
        call = Call(self, spec, route)
        self._calls.append(call)
        if len(self._calls) > 10000:
            self._calls = [c for c in self._calls if not c.done]
        call.start()
        await call._created          # the channel exists: call.name / call.uniqueid are usable
        return call

    def adopt_call(self, ch: SimChannel, route: Route, script: Sequence[Step] = (), exten: str | None = None,
                   context: str | None = None, sends_media: bool = True) -> Call:
        """Put an existing (e.g. AMI-originated) channel into a flow over FastAGI at context/exten."""
        spec = CallSpec(flow=route.flow, did=exten or ch.exten, caller_id=ch.caller_num,
                        caller_name=ch.caller_name, language=ch.language, script=tuple(script),
                        technology=ch.tech, sends_media=sends_media, context=context)
        call = Call(self, spec, route)
        call._existing = ch
        self._calls.append(call)
        call.start()
        return call

    async def run_call(self, spec: CallSpec | None = None, **kw: object) -> CallRecord:
        """place_call + finished."""
        call = await self.place_call(spec, **kw)
        return await call.finished()

    def _route_for(self, spec: CallSpec) -> Route:
        if spec.flow:
            return Route(flow=spec.flow, context=spec.context or "ivr-inbound")
        route = self.config.routes.get(spec.did)
        if route is None:
            raise SimError("no route for DID %r: give CallSpec(flow=...) or add SimConfig.routes[%r] = Route(...)"
                           % (spec.did, spec.did))
        return route

    @property
    def live_calls(self) -> list[Call]:
        return [c for c in self._calls if not c.done]

    def call_for_channel(self, name: str) -> Call | None:
        ch = self.pbx.find_channel(name)
        return self.calls_by_linkedid.get(ch.linkedid) if ch else None

    # -- bookkeeping used by sessions and apps ------------------------------------------------------------------
    def next_threadid(self) -> int:
        return next(self._threadids)

    def _route_event(self, ev: Event) -> None:
        """Give each call the events of its channels (Linkedid, ParkeeLinkedid, SpyeeLinkedid ...)."""
        seen: set[str] = set()
        for key, value in ev.pairs:
            if key.endswith("Linkedid") and value not in seen:
                seen.add(value)
                call = self.calls_by_linkedid.get(value)
                if call is not None:
                    call.events.append(ev)

    def note_destination(self, session: AGISession, dest: str) -> None:
        session.call.destinations.append(dest)

    def note_recording(self, session: AGISession | None, path: str, seconds: float, kind: str,
                       call: Call | None = None) -> None:
        target = call or (session.call if session else None)
        if target is not None:
            target.recordings.append(RecordingInfo(path, seconds, kind))

    def note_dial(self, session: AGISession, target: str, status: str) -> None:
        session.call.dials.append((target, status))

    # -- MixMonitor --------------------------------------------------------------------------------------------
    def start_mixmonitor(self, ch: SimChannel, filename: str) -> MixMon | None:
        if "\x00" in filename or ".." in Path(filename).parts:
            return None
        name = filename if os.path.isabs(filename) else str(self.config.monitor_dir / filename)
        path = Path(self.config.map_path(name))
        if not path.parent.is_dir():
            return None
        mm = MixMon("0x%x" % next(self._mm_seq), ch, path, self.clock.now())
        self._mixmons[mm.id] = mm
        ch.set_var("MIXMONITOR_FILENAME", filename)
        ch.emit("MixMonitorStart", "call,all")
        return mm

    def stop_mixmonitor(self, ch: SimChannel, mm_id: str | None, emit: bool = True) -> bool:
        found = [m for m in self._mixmons.values()
                 if m.channel is ch and (mm_id is None or m.id == mm_id)]
        for mm in found[:1] if mm_id is None else found:
            self._finish_mixmon(mm)
            if emit:
                ch.emit("MixMonitorStop", "call,all")
        return bool(found)

    def _finish_mixmon(self, mm: MixMon) -> None:
        self._mixmons.pop(mm.id, None)
        seconds = self.clock.now() - mm.started
        samples = int(seconds * 50) * 160
        write_wav(mm.path, samples)
        call = self.calls_by_linkedid.get(mm.channel.linkedid)
        self.note_recording(None, str(mm.path), samples / 8000, "mixmonitor", call=call)

    def stop_all_mixmonitors(self, ch: SimChannel | None) -> None:
        for mm in [m for m in self._mixmons.values() if m.channel is ch]:
            self._finish_mixmon(mm)   # a hangup ends MixMonitor without a MixMonitorStop event

    # -- call control used by the AMI actions -------------------------------------------------------------------
    def spawn(self, coro: Awaitable[object]) -> "asyncio.Task[object]":
        """Run a background job of the PBX (originates, apps of originated channels); errors are kept."""
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._jobs.add(task)
        task.add_done_callback(self._job_done)
        return task

    def _job_done(self, task: "asyncio.Task[object]") -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def _call_of(self, ch: SimChannel) -> Call | None:
        call = self.calls_by_linkedid.get(ch.linkedid)
        if call is not None and ch in (call.channel, call.caller_leg):
            return call
        return None

    def _caller_side(self, ch: SimChannel) -> tuple[Call | None, SimChannel | None]:
        """The call whose caller `ch` is, or is bridged to."""
        call = self._call_of(ch)
        if call is not None:
            return call, call.channel
        peer = ch.bridge_peer
        if peer is not None:
            call = self._call_of(peer)
            if call is not None:
                return call, call.channel
        return None, None

    def hangup_channel(self, ch: SimChannel, cause: int = 0) -> None:
        """AMI Hangup: the caller of a call, an agent leg, or any other channel."""
        call = self._call_of(ch)
        if call is not None:
            if call.channel is not None and not call.channel.hungup:
                during = call.session.current if call.session and call.session.in_command else "idle"
                call.note_end("ami", during or "idle")
            call.hangup_caller_leg(cause)
            return
        ch.hangup(cause)
        if ch.peer is not None and not ch.peer.hungup:
            ch.peer.hangup(cause)

    def redirect_channel(self, ch: SimChannel, context: str, exten: str) -> None:
        call = self._call_of(ch)
        if call is not None:
            call.goto(context, exten)
            return
        if ch.bridge_peer is not None:           # an agent leg leaves its caller
            ch.hangup(16)
            return
        route = self.config.routes.get(exten)
        ch.context, ch.exten = context, exten
        if route is not None:
            self.adopt_call(ch, route, exten=exten, context=context)

    def transfer(self, ch: SimChannel, context: str, exten: str) -> bool:
        """BlindTransfer/Atxfer: the caller bridged with (or being) `ch` goes to context/exten."""
        call, caller = self._caller_side(ch)
        if call is None or caller is None or caller.bridge_peer is None:
            return False
        if exten in self.config.routes or exten == self.config.parking.parkext:
            call.goto(context, exten)
            return True
        caller.transfer_to = "Local/%s@%s" % (exten, context)
        caller.wake()
        return True

    def park_channel(self, ch: SimChannel, timeout: float | None) -> bool:
        call, caller = self._caller_side(ch)
        if call is None:
            return False
        lot = self.config.parking
        call.goto("parkedcalls", lot.parkext, park_timeout=timeout if timeout is not None else lot.parkingtime)
        return True

    # -- parking ----------------------------------------------------------------------------------------------
    def retrieve_parked(self, space: int, talk: float | None = 3.0, retriever: SimChannel | None = None) -> bool:
        """Someone dials the parking space: the parked call is bridged to them for `talk` seconds
        (None: until the retriever channel or the parked caller hangs up)."""
        parked = retrieve(self.pbx, space, retriever)
        if parked is None:
            return False
        self.retrieval_talk[space] = talk
        if retriever is not None:
            self._retrievers[space] = retriever
            retriever.on_hangup(parked.channel.wake)
        return True

    async def wait_retrieval_end(self, ch: SimChannel, space: int) -> None:
        """The parked channel talks to its retriever until that ends."""
        talk = self.retrieval_talk.pop(space, None)
        if talk is not None:
            await ch.pause(talk)
            return
        retriever = self._retrievers.pop(space, None)
        if retriever is None:      # retrieved without a channel (parking.retrieve): a default conversation
            await ch.pause(self.config.parking.retrieved_talk)
            return
        while not ch.hungup and not retriever.hungup:
            ev = await ch.next_event(None)
            if ev is not None and ev.kind == "hangup":
                return

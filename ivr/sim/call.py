"""One simulated call and what it leaves behind: channel setup, the dialplan around the AGI, caller scripts,
redirects, and the `CallRecord`.

Rules for this file:
- A call holds the clock from placement until its AGI session runs (the session then holds it while it waits
  for the service); after the AGI, the dialplan (NoOp/Hangup, park comeback, redirect targets) runs on timers.
- One channel can run several FastAGI sessions in turn (a parked caller's comeback: ivr-park-comeback runs
  AGI(agi://${IVR_SERVER}/<flow>?node=<node>) on the same channel); each is an `AgiRun` of the record, and the
  transcript holds them one after the other.
- The record is built from what happened on the wire and on the PBX bus; nothing is inferred afterwards.
- The caller script runs as its own task and never holds the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ivr import dialplan
from ivr.sim.agi_session import AGISession
from ivr.sim.bridging import ring_agent, talk
from ivr.sim.channel import MediaEvent, SimChannel
from ivr.sim.dialplan import AgiStep, lookup, run_context
from ivr.sim.events import Event
from ivr.sim.model import CallSpec, Route
from ivr.sim.parking import park_channel
from ivr.sim.script import At, CallerScript, Hangup, NextPrompt, OnCommand, Press, Sleep, Speak, Step, WhenIdle

if TYPE_CHECKING:
    from ivr.sim.simulator import SimulatedAsterisk

AGI_VERSION = "22.10.1"
ASYNC_AGI = "agi:async"  # Route(flow="agi:async"): AGI(agi:async), driven over AMI `Action: AGI`


@dataclass(frozen=True)
class TranscriptLine:
    t: float  # seconds since the call was placed (clock time)
    direction: str  # "<<<" sent by Asterisk, ">>>" sent by the service
    text: str  # the line including its terminator

    def __str__(self) -> str:
        return f"+{self.t:.3f} {self.direction} {self.text!r}"


@dataclass(frozen=True)
class Ending:
    """How and where a call ended.

    `by`: "caller" (the caller hung up), "service" (AGI HANGUP, or the service closed the AGI and the dialplan
    hung up), "agent" (the agent the caller was bridged to hung up), "timeout" (parking timeout and comeback),
    "limit" (max_call_seconds), "ami" (hung up over AMI), "shutdown" (sim.stop()).  `during`: the AGI command or
    EXEC'd app running at that moment ("idle" between commands, "dialplan" after the AGI).  `destination`: the last
    place the call reached ("ivr", "agent:<dialstring>",
    "queue:<name>[:<member>]", "parked:<space>", "recording:<path>").
    """

    by: str
    during: str
    destination: str


@dataclass(frozen=True)
class AgiRun:
    """One FastAGI session of the call: where the dialplan ran it, its env, its AGISTATUS and its transcript."""

    context: str
    exten: str
    priority: int
    env: dict[str, str]  # the agi_* block without the prefix ("network_script": "main?node=x")
    status: str  # AGISTATUS it left
    first_line: int  # its slice of CallRecord.transcript: [first_line, end_line)
    end_line: int

    @property
    def script(self) -> str:
        return self.env.get("network_script", "")


@dataclass(frozen=True)
class RecordingInfo:
    path: str
    seconds: float
    kind: str  # "record" (RECORD FILE) | "mixmonitor"


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
    spied: list[str] = field(default_factory=list)  # ChanSpy modes a supervisor used: listen/whisper/barge
    agi_runs: list[AgiRun] = field(default_factory=list)  # every FastAGI session, in order

    def session_lines(self, index: int) -> list[TranscriptLine]:
        """The transcript of the index-th AGI session (env block included)."""
        run = self.agi_runs[index]
        return self.transcript[run.first_line : run.end_line]

    def session_commands(self, index: int) -> list[str]:
        """Command lines the service sent in the index-th AGI session."""
        return [line.text[:-1] for line in self.session_lines(index) if line.direction == ">>>"]

    def commands(self) -> list[str]:
        """Command lines the service sent (without the final newline)."""
        return [line.text[:-1] for line in self.transcript if line.direction == ">>>"]

    def replies(self) -> list[str]:
        """Lines Asterisk sent after the env block (without the final newline)."""
        # env blocks (one per FastAGI session; Async AGI has none on the wire) are not replies
        chunks = [line.text for line in self.transcript if line.direction == "<<<" and not line.text.startswith("agi_")]
        out: list[str] = []
        for chunk in chunks:
            out += chunk.splitlines()
        return out

    def env_lines(self) -> list[str]:
        first = next((line.text for line in self.transcript if line.direction == "<<<"), "")
        return first.split("\n")[:-2] if first.startswith("agi_") else []

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def text(self) -> str:
        """The transcript in the recordings' notation (`+0.504 >>> ANSWER\n`), for assertion messages."""
        out = []
        for line in self.transcript:
            for part in line.text.splitlines(keepends=True):
                shown = part.replace("\r", "\\r").replace("\n", "\\n")
                out.append(f"+{line.t:.3f} {line.direction} {shown}")
        return "\n".join(out)


@dataclass
class MixMon:
    id: str
    channel: SimChannel
    path: Path | None  # None: the directory could not be created, so nothing is written (Asterisk goes on too)
    started: float


class Call:
    """A live simulated call; `await finished()` for its record."""

    def __init__(self, sim: SimulatedAsterisk, spec: CallSpec, route: Route) -> None:
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
        self.channel: SimChannel | None = None  # runs the AGI
        self.caller_leg: SimChannel | None = None  # ;1 of a Local pair
        self.session: AGISession | None = None
        self.linkedid = ""
        self._done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._script_task: asyncio.Task[None] | None = None
        self._created: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._session_started = asyncio.Event()
        self._existing: SimChannel | None = None  # an originated channel put into a flow
        self._goto: tuple[str, str, float | None] | None = None
        self.spied: list[str] = []  # ChanSpy modes used on this call
        self.in_agi = False  # an AGI session runs (else: dialplan)
        self.dialplan_at = "dialplan"  # Ending.during outside the AGI
        self.in_modelled = False  # running a dialplan.py context (during(): where)
        self.agi_runs: list[AgiRun] = []
        self._resume: AgiStep | None = None  # the modelled AGI priority the dialplan goes on after
        self._dnid: str | None = None  # the channel's DNID (the same for every session)

    # -- recording what happened ------------------------------------------------------------------------------
    def add_line(self, direction: str, data: bytes) -> None:
        self.transcript.append(TranscriptLine(self.sim.clock.now() - self.started, direction, data.decode("latin-1")))

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

    def during(self) -> str:
        """What the call is doing now, for `Ending.during`: the AGI command, "idle", or "dialplan"."""
        if self.in_modelled and not self.in_agi and self.channel is not None:
            return f"dialplan {self.channel.context},{self.channel.exten}"
        if self.session is None or not self.in_agi:
            return self.dialplan_at
        return (self.session.current or "idle") if self.session.in_command else "idle"

    def _caller_hangs_up(self, by: str = "caller") -> None:
        if self.channel is None or self.channel.hungup:
            return
        during = self.during()
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
            route: Route | AgiStep | None = self.route
            if self.route.dialplan:  # the shipped dialplan from priority 1; it runs on timers, like after an AGI
                clock.release()
                held = False
                route = await self._run_modelled(ch, ch.context, ch.exten, None, resume=True)
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
            if self._done.done():
                raise
            self._done.set_exception(exc)  # finished() raises it (re-raising here too would leave it unretrieved)
        finally:
            if not self._created.done():
                self._created.set_result(None)
            if held:
                clock.release()
            if self._script_task is not None:
                self._script_task.cancel()
            self._finish()

    async def _run_agi(self, ch: SimChannel, route: Route | AgiStep) -> str:
        sim, spec = self.sim, self.spec
        targets: list[tuple[str, int]] = []
        request = ""
        args: tuple[str, ...]
        if isinstance(route, AgiStep):  # a modelled context's AGI(agi://${IVR_SERVER}/...): announced there
            script_path, args, is_async = route.script, (), False
            targets = self._agi_targets(route.url)
            host, port = targets[0] if targets else ("", 0)  # no SRV target: AGISTATUS=FAILURE
            request = route.url
        else:
            query = dict(route.query)
            if route is self.route:
                query.update(spec.params)
            script_path = route.flow + ("?" + urlencode(query) if query else "")
            host, port = sim.fastagi
            args = (tuple(spec.args) if route is self.route else ()) or route.args
            is_async = route.flow == ASYNC_AGI
            appdata = (ASYNC_AGI if is_async else f"agi://{host}:{port}/{script_path}") + "".join("," + a for a in args)
            ch.newexten("AGI", appdata, priority=ch.priority)
        env = self._env(ch, host, port, script_path)
        if request:
            env["request"] = request  # res_agi's agi_request is the URL as AGI() got it (hagi:// included)
        if is_async:
            env["request"] = "async"
        self.session = AGISession(sim, self, ch, host, port, env, args, async_mode=is_async, also=targets[1:])
        self._session_started.set()
        ch.holding_clock = True
        self.in_agi = True
        first = len(self.transcript)
        status = "FAILURE"
        try:
            status = await self.session.run()
            return status
        finally:
            self.in_agi = False
            ch.holding_clock = False
            self.agi_runs.append(
                AgiRun(
                    env["context"],
                    env["extension"],
                    int(env["priority"]),
                    dict(env),
                    status,
                    first,
                    len(self.transcript),
                )
            )

    def _agi_targets(self, url: str) -> list[tuple[str, int]]:
        """Where AGI(<url>) connects, in order: agi://host[:port] (4573 by default) is one target; hagi://<name>
        without a port is every SRV target of _agi._tcp.<name> (SimConfig.srv), tried in turn (res_agi's
        launch_ha_netscript); with a port it is plain agi://. [] = nothing to try (AGISTATUS=FAILURE)."""
        scheme, _, rest = url.partition("://")
        hostport = rest.split("/", 1)[0]
        if scheme.lower() == "hagi" and ":" not in hostport:
            found = [t.rpartition(":") for t in self.sim.config.srv.get(hostport, [])]
            return [(h, int(p)) for h, _, p in found if h and p.isdigit()]
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "4573")
        if scheme.lower() not in ("agi", "hagi") or not host or not port.isdigit():
            return [self._ivr_server()]  # not a URL the model reads: the simulator's FastAGI target
        return [(host, int(port))]

    def _ivr_server(self) -> tuple[str, int]:
        """${IVR_SERVER} (host:port) as the dialplan's AGI URL names it; the simulator's target if unusable."""
        value = self.sim.pbx.globals.get(dialplan.SERVER, "")
        host, _, port = value.rpartition(":")
        return (host, int(port)) if host and port.isdigit() else self.sim.fastagi

    # -- redirects (AMI Redirect, Park, transfers of a caller that is not bridged) ----------------------------
    @property
    def goto_pending(self) -> bool:
        return self._goto is not None

    def goto(self, context: str, exten: str, *, park_timeout: float | None = None) -> None:
        """Move the caller to context/exten: the AGI sees a hangup (async goto), the channel lives on there."""
        ch = self.channel
        if ch is None or ch.hungup:
            return
        self._goto = (context, exten, park_timeout)
        session = self.session
        if session is not None and session.comeback_context is None:
            session.comeback(context, exten)
            if not session.in_command and not session.dead:
                session._send_notice()
        ch.post(MediaEvent("hangup", "goto", self.sim.clock.now()))

    async def _after_agi(self, ch: SimChannel) -> Route | AgiStep | None:
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
            # A Park timeout: the channel is at the comeback location, whose Newexten (naming Park, the async-goto
            # quirk of agi-07c) went out at the time-out.  The dialplan runs that priority without a Newexten of
            # its own (agi-07c: "no separate Newexten naming NoOp follows"), then the next ones.  Modelled: the
            # recorded lot context (s,2 Hangup) and the service's contexts (ivr-park-comeback: back into the flow).
            self._resume = None
            ch.context, ch.exten = session.comeback_context, session.comeback_exten
            ch.priority = session.comeback_priority
            if lookup(ch.context, ch.exten, self.sim.config.dialplan_file) is not None:
                ch.drain()
                return await self._run_modelled(ch, ch.context, ch.exten, None, start=ch.priority)
            if (ch.context, ch.exten, ch.priority) == (self.sim.config.parking.comebackcontext, "s", 1):
                ch.newexten("Hangup", "", priority=2)
            self.note_end("timeout", "comeback")
            self.hangup_caller_leg(16)
            return None
        if self._resume is not None:  # the AGI was a priority of a modelled context: go on after it
            step, self._resume = self._resume, None
            return await self._run_modelled(ch, step.context, step.exten, None, start=step.priority + 1, resume=True)
        ch.newexten("NoOp", f"AGISTATUS={self.agi_status}", priority=ch.priority + 1)
        ch.newexten("Hangup", "", priority=ch.priority + 1)
        self.note_end("service", "dialplan")
        ch.dialplan_hangup(16)
        self.hangup_caller_leg(16)
        return None

    async def _continue_at(
        self, ch: SimChannel, context: str, exten: str, park_timeout: float | None
    ) -> Route | AgiStep | None:
        sim = self.sim
        lot = sim.config.parking
        ch.context, ch.exten = context, exten
        app = self.session.comeback_app if self.session is not None else (ch.app, ch.appdata)
        ch.newexten(*app, priority=1)
        if park_timeout is not None or exten == lot.parkext:
            timeout = park_timeout if park_timeout is not None else lot.parkingtime
            ch.set_var("PARKEDLOT", lot.name)
            outcome, space = await park_channel(
                ch,
                timeout=timeout,
                parker=ch.name,
                announce=False,
                on_space=lambda sp: self.destinations.append(f"parked:{sp}"),
            )
            if outcome == "retrieved":
                await sim.wait_retrieval_end(ch, space)
                if self._goto is not None and not ch.hungup:  # redirected out of the retriever's bridge (hold ...)
                    context, exten, park_timeout = self._goto
                    self._goto = None
                    ch.drain()
                    return await self._continue_at(ch, context, exten, park_timeout)
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
        if lookup(context, exten, sim.config.dialplan_file) is not None:  # ivr-hold, ivr-queue, ivr-outbound ...
            if context == dialplan.HOLD_CONTEXT:
                self.destinations.append("hold")
            return await self._run_modelled(ch, context, exten, None)
        agent = sim.config.agents.get(exten)
        if agent is not None:
            target = f"Local/{exten}@{context}"
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
        self.note_end("service", f"goto {context},{exten}")
        self.hangup_caller_leg(16)
        return None

    async def _run_modelled(
        self,
        ch: SimChannel,
        context: str,
        exten: str,
        previous_app: tuple[str, str] | None,
        *,
        start: int = 1,
        resume: bool = False,
    ) -> Route | AgiStep | None:
        """Run a dialplan.py context; an AGI priority there is returned for the call loop to run."""
        self.in_modelled = True
        try:
            outcome = await run_context(
                self.sim, ch, context, exten, previous_app, call=self, start=start, resume=resume
            )
        finally:
            self.in_modelled = False
        self.dialplan_at = f"dialplan {ch.context},{ch.exten}"
        if isinstance(outcome, AgiStep):
            self._resume = outcome
            self.destinations.append("ivr")
            return outcome
        if outcome == "goto" and self._goto is not None and not ch.hungup:
            context, exten, park_timeout = self._goto
            self._goto = None
            ch.drain()
            if self.session is not None:  # the next Newexten 1 carries what ran here (async goto)
                self.session.comeback_app = (ch.app, ch.appdata)
            return await self._continue_at(ch, context, exten, park_timeout)
        self.note_end("caller" if ch.hungup else "service", self.dialplan_at)
        self.hangup_caller_leg(16)
        return None

    def _create_channels(self) -> SimChannel:
        sim, spec, route = self.sim, self.spec, self.route
        pbx = sim.pbx
        context = spec.context or route.context
        exten = spec.did
        if spec.technology.upper() == "LOCAL":
            one, two = pbx.local_pair(
                exten, context, caller_num=spec.caller_id, caller_name=spec.caller_name, language=spec.language
            )
            one.state = 6
            self.caller_leg, ch = one, two
        else:
            ch = pbx.pjsip_channel(
                spec.trunk or sim.config.default_trunk,
                context=context,
                exten=exten,
                caller_num=spec.caller_id,
                caller_name=spec.caller_name,
                language=spec.language,
                accountcode=spec.accountcode,
            )
        self.channel = ch
        self.linkedid = ch.linkedid
        sim.calls_by_linkedid[ch.linkedid] = self
        ch.media_flowing = spec.sends_media
        if route.dialplan:  # the modelled dialplan announces its own priorities
            for name, value in spec.variables.items():
                ch.set_var(name, value)
            ch.priority = 1
            return ch
        prio = 1
        ch.newexten("NoOp", f"Inbound call to {exten}", priority=prio)
        for name, value in spec.variables.items():  # like Originate's Variable: no dialplan priority
            ch.set_var(name, value)
        for name, value in route.preset.items():
            prio += 1
            ch.newexten("Set", f"{name}={value}", priority=prio)
            ch.set_var(name, value)
        ch.priority = prio + 1
        return ch

    def _adopt(self, ch: SimChannel) -> None:
        """An answered channel enters the flow's dialplan: <exten>,1 Answer(), <exten>,2 AGI(...)."""
        self.channel = ch
        self.linkedid = ch.linkedid
        self.sim.calls_by_linkedid[ch.linkedid] = self
        ch.context, ch.exten = self.spec.context or self.route.context, self.spec.did
        if self.route.dialplan:  # the modelled dialplan announces its own priorities
            ch.priority = 1
            return
        ch.newexten("Answer" if ch.state == 6 else "NoOp", "", priority=1)
        prio = 1
        for name, value in self.route.preset.items():  # Set() priorities before the AGI, as in _create_channels
            prio += 1
            ch.newexten("Set", f"{name}={value}", priority=prio)
            ch.set_var(name, value)
        ch.priority = prio + 1

    def _env(self, ch: SimChannel, host: str, port: int, script_path: str) -> dict[str, str]:
        if self._dnid is None:  # the dialled number stays the channel's for later sessions
            self._dnid = "unknown" if ch.tech == "Local" else ch.exten
        return {
            "network": "yes",
            "network_script": script_path,
            "request": f"agi://{host}:{port}/{script_path}",
            "channel": ch.name,
            "language": ch.language,
            "type": ch.tech,
            "uniqueid": ch.uniqueid,
            "version": AGI_VERSION,
            "callerid": ch.caller_num or "unknown",
            "calleridname": ch.caller_name or "unknown",
            "callingpres": "0",
            "callingani2": "0",
            "callington": "0",
            "callingtns": "0",
            "dnid": self._dnid or "unknown",
            "rdnis": "unknown",
            "context": ch.context,
            "extension": ch.exten,
            "priority": str(ch.priority),
            "enhanced": "0.0",
            "accountcode": ch.accountcode,
            "threadid": str(self.sim.next_threadid()),
        }

    def _finish(self) -> None:
        self.sim.stop_all_mixmonitors(self.channel)
        if self.caller_leg is not None and not self.caller_leg.hungup:
            self.caller_leg.hangup(16)
        if self._done.done():
            return
        ch = self.channel
        rec = CallRecord(
            channel=ch.name if ch else "",
            uniqueid=ch.uniqueid if ch else "",
            linkedid=self.linkedid,
            flow=self.route.flow,
            transcript=list(self.transcript),
            variables=dict(ch.variables) if ch else {},
            events=list(self.events),
            agi_status=self.agi_status,
            ended=self.ending or Ending("service", "dialplan", self.destinations[-1]),
            destinations=list(self.destinations),
            recordings=list(self.recordings),
            dials=list(self.dials),
            started=self.started,
            duration=self.sim.clock.now() - self.started,
            log=list(self.log),
            spied=list(self.spied),
            agi_runs=list(self.agi_runs),
        )
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
                await self._session_started.wait()
                assert self.session is not None
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
            ch.emit(
                "DTMFEnd",
                "dtmf,all",
                [("Digit", digit), ("DurationMs", str(int(step.duration * 1000))), ("Direction", "Received")],
            )
            if i + 1 < len(step.digits):
                await clock.sleep(max(0.0, step.gap - step.duration))

"""SimulatedAsterisk: the test-facing API -- start, place calls with caller scripts, read what happened.

Rules for this file:
- One `SimulatedAsterisk` = one PBX model + (optionally) one AMI server, on loopback ephemeral ports.
- `place_call()` returns at once with a `Call`; `await call.finished()` gives the `CallRecord`: the AGI
  transcript, the channel variables, the AMI events of the call, AGISTATUS and where/how the call ended.
- The call itself lives in call.py; this file owns what is shared between calls: the PBX, the AMI server,
  MixMonitor files, parked-call retrieval and the call-control hooks the AMI actions use.
- Nothing in the service's runtime imports this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ivr import dialplan
from ivr.sim.agi_session import AGISession
from ivr.sim.call import Call, CallRecord, Ending, MixMon, RecordingInfo, TranscriptLine
from ivr.sim.channel import MediaEvent, SimChannel
from ivr.sim.clock import Clock, RealClock, VirtualClock
from ivr.sim.dialplan import lookup, run_context
from ivr.sim.events import Event
from ivr.sim.model import CallSpec, OriginateLog, Route, SimConfig
from ivr.sim.parking import retrieve
from ivr.sim.pbx import PBX
from ivr.sim.script import Step
from ivr.sim.wav import write_wav

if TYPE_CHECKING:
    from ivr.sim.ami_server import AMIServer

__all__ = ["Call", "CallRecord", "Ending", "RecordingInfo", "SimError", "SimulatedAsterisk", "TranscriptLine"]


class SimError(Exception):
    """Misuse of the simulator API (the message says what to do)."""


class SimulatedAsterisk:
    """The simulated PBX.  Use as `async with SimulatedAsterisk(cfg, clock=VirtualClock()) as sim:`."""

    def __init__(self, config: SimConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock: Clock = clock or RealClock()
        self.pbx = PBX(self.config, self.clock)
        self.pbx.globals.update(self.config.globals)
        self.database: dict[tuple[str, str], str] = {}
        self.extra_apps: dict[str, Callable[[AGISession, str], Awaitable[int]]] = {}
        self.retrieval_talk: dict[int, float | None] = {}
        self._retrievers: dict[int, SimChannel] = {}
        self.calls_by_linkedid: dict[str, Call] = {}
        self.finished_calls = 0
        self.fastagi: tuple[str, int] = ("127.0.0.1", 4573)
        self.ami: AMIServer | None = None
        self.ami_port = 0
        self._threadids = itertools.count(140188048737984, 512)
        self._mixmons: dict[str, MixMon] = {}
        self._mm_seq = itertools.count(0x7F802800B260, 0x1A0)
        self._calls: list[Call] = []
        self._jobs: set[asyncio.Task[object]] = set()
        self.errors: list[BaseException] = []
        self.originates: list[OriginateLog] = []  # every AMI Originate received, in order (whichever client sent it)
        self._started = False
        self._in_dialplan: set[str] = set()  # uniqueids of channels (not calls) running dialplan.py contexts
        self.pbx.bus.subscribe(self._route_event)
        self.pbx.on_redirect = self._redirected

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(
        self,
        fastagi: tuple[str, int] | None = None,
        *,
        fastagi_host: str = "127.0.0.1",
        fastagi_port: int | None = None,
        ami: bool = True,
        ami_host: str = "127.0.0.1",
        ami_port: int = 0,
    ) -> SimulatedAsterisk:
        """Point calls at the service's FastAGI server and start the AMI server (ephemeral port by default)."""
        if fastagi is not None:
            self.fastagi = (fastagi[0], int(fastagi[1]))
        elif fastagi_port is not None:
            self.fastagi = (fastagi_host, int(fastagi_port))
        if dialplan.SERVER not in self.config.globals:  # ${IVR_SERVER} of the dialplan's AGI(agi://...) lines
            self.pbx.globals[dialplan.SERVER] = f"{self.fastagi[0]}:{self.fastagi[1]}"
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
            if job is not me:  # `core stop now` runs stop() from a job of its own
                job.cancel()
        if self.ami is not None:
            await self.ami.stop()
        if isinstance(self.clock, VirtualClock):
            self.clock.close()
        self._started = False

    async def __aenter__(self) -> SimulatedAsterisk:
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
        await call._created  # the channel exists: call.name / call.uniqueid are usable
        return call

    def adopt_call(
        self,
        ch: SimChannel,
        route: Route,
        script: Sequence[Step] = (),
        exten: str | None = None,
        context: str | None = None,
        sends_media: bool = True,
    ) -> Call:
        """Put an existing (e.g. AMI-originated) channel into a flow over FastAGI at context/exten."""
        spec = CallSpec(
            flow=route.flow,
            did=exten or ch.exten,
            caller_id=ch.caller_num,
            caller_name=ch.caller_name,
            language=ch.language,
            script=tuple(script),
            technology=ch.tech,
            sends_media=sends_media,
            context=context,
        )
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
        if route is None and spec.context and lookup(spec.context, spec.did, self.config.dialplan_file) is not None:
            return Route(flow="", context=spec.context, dialplan=True)  # the shipped dialplan from <context>,<did>,1
        if route is None:
            raise SimError(
                f"no route for DID {spec.did!r}: give CallSpec(flow=...), add SimConfig.routes[{spec.did!r}] = "
                "Route(...), or name a context of the shipped dialplan (CallSpec(context=...))"
            )
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

    def note_recording(
        self, session: AGISession | None, path: str, seconds: float, kind: str, call: Call | None = None
    ) -> None:
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
        mapped = self.config.map_path(name)
        target = Path(mapped)
        # MixMonitor creates the file's directory itself (app_mixmonitor's filename_parse: ast_mkdir) and starts
        # even when it cannot: the recording is then just not written. Directories are created only inside the
        # simulated PBX's own tree (a `path_map` target), never on the host's real paths.
        if mapped != name and not target.parent.is_dir():
            with contextlib.suppress(OSError):
                target.parent.mkdir(parents=True, exist_ok=True)
        path = target if target.parent.is_dir() else None
        mm = MixMon(f"0x{next(self._mm_seq):x}", ch, path, self.clock.now())
        self._mixmons[mm.id] = mm
        ch.set_var("MIXMONITOR_FILENAME", filename)
        ch.emit("MixMonitorStart", "call,all")
        return mm

    def stop_mixmonitor(self, ch: SimChannel, mm_id: str | None, emit: bool = True) -> bool:
        found = [m for m in self._mixmons.values() if m.channel is ch and (mm_id is None or m.id == mm_id)]
        for mm in found[:1] if mm_id is None else found:
            self._finish_mixmon(mm)
            if emit:
                ch.emit("MixMonitorStop", "call,all")
        return bool(found)

    def _finish_mixmon(self, mm: MixMon) -> None:
        self._mixmons.pop(mm.id, None)
        if mm.path is None:
            return
        seconds = self.clock.now() - mm.started
        samples = int(seconds * 50) * 160
        write_wav(mm.path, samples)
        call = self.calls_by_linkedid.get(mm.channel.linkedid)
        self.note_recording(None, str(mm.path), samples / 8000, "mixmonitor", call=call)

    def stop_all_mixmonitors(self, ch: SimChannel | None) -> None:
        for mm in [m for m in self._mixmons.values() if m.channel is ch]:
            self._finish_mixmon(mm)  # a hangup ends MixMonitor without a MixMonitorStop event

    # -- call control used by the AMI actions -------------------------------------------------------------------
    def spawn(self, coro: Awaitable[object]) -> asyncio.Task[object]:
        """Run a background job of the PBX (originates, apps of originated channels); errors are kept."""
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._jobs.add(task)
        task.add_done_callback(self._job_done)
        return task

    def _job_done(self, task: asyncio.Task[object]) -> None:
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
        if not ch.hungup:
            ch.emit("HangupRequest", "call,all", [("Cause", str(cause))])
        call = self._call_of(ch)
        if call is not None:
            if call.channel is not None and not call.channel.hungup:
                call.note_end("ami", call.during())
            call.hangup_caller_leg(cause)
            return
        ch.hangup(cause)
        if ch.peer is not None and not ch.peer.hungup:
            ch.peer.hangup(cause)

    def goto_pending(self, ch: SimChannel) -> bool:
        """A Redirect moved the caller `ch` of a simulated call, which has not got there yet."""
        call = self._call_of(ch)
        return call is not None and call.channel is ch and call.goto_pending

    def runs_dialplan(self, ch: SimChannel) -> bool:
        """A Redirect took `ch` (no simulated call's caller) out of its bridge: the dialplan runs it now."""
        return ch.uniqueid in self._in_dialplan

    def redirect_channel(self, ch: SimChannel, context: str, exten: str) -> None:
        call = self._call_of(ch)
        if call is not None:
            call.goto(context, exten)
            return
        known = lookup(context, exten, self.config.dialplan_file) is not None or exten in self.config.routes
        if ch.uniqueid in self._in_dialplan:  # waiting in ivr-hold-wait ...: an async goto
            ch.redirect_to = (context, exten) if known else None
            ch.post(MediaEvent("hangup", "goto", self.clock.now()))
            if not known:
                ch.hangup(16)
            return
        if ch.bridge_peer is not None:  # an agent leg (or a parked call's retriever) leaves its caller
            if known:  # e.g. the partner of a held caller -> ivr-hold-wait
                ch.redirect_to = (context, exten)
                ch.bridge_peer.wake()
                ch.wake()  # a retriever waits in its own ParkedCall()
            else:
                ch.hangup(16)
            return
        route = self.config.routes.get(exten)
        ch.context, ch.exten = context, exten
        if route is not None:
            self.adopt_call(ch, route, exten=exten, context=context)

    def _redirected(self, ch: SimChannel) -> None:
        """A channel that is no simulated call left a bridge for `ch.redirect_to`: run the dialplan there."""
        self._in_dialplan.add(ch.uniqueid)
        self.spawn(self._run_dialplan(ch))

    async def _run_dialplan(self, ch: SimChannel) -> None:
        previous = (ch.app, ch.appdata)
        try:
            while ch.redirect_to is not None and not ch.hungup:
                context, exten = ch.redirect_to
                ch.redirect_to = None
                ch.drain()
                if lookup(context, exten, self.config.dialplan_file) is None:
                    route = self.config.routes[exten]
                    ch.context, ch.exten = context, exten
                    self._in_dialplan.discard(ch.uniqueid)
                    self.adopt_call(ch, route, exten=exten, context=context)
                    return
                outcome = await run_context(self, ch, context, exten, previous)
                previous = (ch.app, ch.appdata)
                if outcome != "goto":
                    break
        finally:
            self._in_dialplan.discard(ch.uniqueid)
        if not ch.hungup and ch.uniqueid not in self._in_dialplan:
            self.hangup_channel(ch, 16)

    def transfer(self, ch: SimChannel, context: str, exten: str) -> bool:
        """BlindTransfer/Atxfer: the caller bridged with (or being) `ch` goes to context/exten."""
        call, caller = self._caller_side(ch)
        if call is None or caller is None or caller.bridge_peer is None:
            return False
        # The transferee goes to context,exten,1: a flow, the parking lot or a context of the shipped dialplan
        # ([ivr-outbound] for a transfer to a flow) runs there; any other extension is dialled as an agent.
        if (
            exten in self.config.routes
            or exten == self.config.parking.parkext
            or lookup(context, exten, self.config.dialplan_file) is not None
        ):
            call.goto(context, exten)
            return True
        caller.transfer_to = f"Local/{exten}@{context}"
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
        if retriever is None:  # retrieved without a channel (parking.retrieve): a default conversation
            await ch.pause(self.config.parking.retrieved_talk)
            return
        # until the retriever hung up and (ParkedCall's bridge) the bridge let the parked channel go; a Redirect
        # (async goto) takes the parked channel out: the retriever's ParkedCall then ends the bridge first
        redirected = False
        while not ch.hungup and (ch.bridge_id or not (redirected or retriever.hungup)):
            ev = await ch.next_event(None)
            if ev is not None and ev.kind == "hangup":
                if ch.hungup or not ch.bridge_id or not self.goto_pending(ch):
                    return
                redirected = True
                retriever.wake()

"""Run one scripted call on the simulated Asterisk: ivr.sim -> real FastAGIServer -> router -> production engine.

Rules for this file:
- Everything between the caller and the engine is the real thing: the simulator speaks FastAGI over loopback
  (ephemeral port), the production flow routes (`ivr.flow.routing`) run the call, `AGIChannel`
  turns engine calls into AGI commands, and media, DTMF, Dial, Queue, Park,
  MusicOnHold and RECORD FILE happen in the simulated PBX on its `VirtualClock`.
- The caller follows the same `Step`s with the same meaning as on `ScriptedChannel` (`caller.py`): a thin
  `SimCaller` wrapper around the engine's channel sees when the IVR is about to listen and has the simulated
  caller press keys (real DTMF, 120 ms each, delivered only while Asterisk listens) or hang up at that moment.
  The wrapper never answers for Asterisk: every result comes back over AGI.
- The `World` is applied to the simulated PBX just before each Dial/Queue/Park (so a list of behaviours per
  attempt works): agents as `AgentSpec`s, queues as one member that answers or never does, or no member at all
  (`empty` and `full` both give JOINEMPTY: the simulator has no queue length limit).
- A park nobody retrieves comes back as the simulator's dialplan makes it ([ivr-park-comeback]: a second FastAGI
  session on the same channel, or [ivr-enter,fallback]'s Dial to IVR_OPERATOR, which is the World's agent
  `operator`). The same `SimCaller` carries the caller's script into the next session. Each session's trace
  events and report are told apart by a context variable set in its handler task, so the call's trace is in
  session order with a `comeback` mark between sessions (`comeback.py`) whatever the tasks' interleaving.
- Every call gets its own simulator, server, storage and temporary directory; nothing is shared.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ivr import dialplan
from ivr.flow.channel import CallInfo, Channel, DialResult, ParkResult, QueueResult, RecordResult
from ivr.flow.model import Flow
from ivr.flow.report import CallReport, TraceEvent
from ivr.flowtest.caller import Step
from ivr.flowtest.channel import PromptBook, World
from ivr.flowtest.comeback import Comeback, comeback_after, mark, merge
from ivr.flowtest.runner import CallRun, CallSetup, call_start, read_stored

_AGENT = "ivr-sim-agent"
_NOBODY = "ivr-sim-nobody"
_OPERATOR = "ivr-sim-operator"
_OPERATOR_DIAL = f"Local/{_OPERATOR}@agents"
_session: contextvars.ContextVar[int] = contextvars.ContextVar("ivr_tools_sim_session", default=0)


class SimCaller:
    """The engine's `Channel` (an `AGIChannel`), with the scripted caller acting at the moments it would."""

    def __init__(
        self,
        inner: Channel,
        call: Any,
        sim: Any,
        steps: Sequence[Step],
        world: World,
        prompts: PromptBook,
        started: float,
        ask: Callable[[], Awaitable[Sequence[Step]]] | None = None,
    ) -> None:
        self.inner, self.call, self.sim, self.world, self.prompts = inner, call, sim, world, prompts
        self.steps = list(steps)
        self.started = started  # clock time of the call's start
        self.ask = ask
        self.index = 0
        self.fresh = True
        self.heard: set[str] = set()
        self._armed: int | None = None

    # -- the caller -----------------------------------------------------------------------------------------
    @property
    def info(self) -> CallInfo:
        return self.inner.info

    @property
    def steps_left(self) -> list[Step]:
        return self.steps[self.index :]

    @property
    def steps_used(self) -> list[Step]:
        return self.steps[: self.index]

    def _pending(self) -> Step | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    def next_session(self, inner: Channel) -> None:
        """The parked caller came back in a new FastAGI session: same caller, same script, fresh entry."""
        self.inner, self.fresh = inner, True

    def _now(self) -> float:
        return self.sim.clock.now() - self.started

    def _ready(self, step: Step) -> bool:
        if step.after_prompt and step.after_prompt not in self.heard:
            return False
        return step.at is None or step.at <= self._now() + 1e-9

    def _act(self, step: Step) -> None:
        self.index += 1
        if step.action == "press":
            self.fresh = False
            self.call.press(step.digits)
        elif step.action == "hangup":
            self.call.hangup()

    def _arm(self) -> None:
        """A step due at a moment acts at that moment, wherever the call is (through the simulator's clock)."""
        step = self._pending()
        if step is None or step.at is None or self._armed == self.index or step.after_prompt:
            return
        index = self._armed = self.index

        def fire() -> None:
            if self.index == index and self.fresh and not self.call.done:
                self._act(step)

        self.sim.clock.call_at(self.started + step.at, fire)

    def _before_prompt(self, escape: str) -> None:
        """Barge-in and due steps act as the prompt starts (the DTMF lands 120 ms into it)."""
        self._arm()
        step = self._pending()
        if step is None or not self.fresh or not self._ready(step):
            return
        if (
            step.action == "hangup"
            and (step.at is not None or step.after_prompt)
            or (
                step.action == "press"
                and escape
                and step.digits[0] in escape
                and (step.barge_in or step.at is not None or step.after_prompt)
            )
        ):
            self._act(step)

    async def _before_wait(self) -> None:
        """The IVR waits for a key: the caller's turn."""
        if self.ask is not None and self.fresh and self._pending() is None:
            self.steps.extend(await self.ask())
        self._arm()
        step = self._pending()
        if step is None or not self.fresh or not self._ready(step):
            return
        if step.action == "wait":
            self.index += 1
        else:
            self._act(step)

    # -- Channel ---------------------------------------------------------------------------------------------
    async def answer(self) -> None:
        await self.inner.answer()

    async def play(self, files: Sequence[str], escape_digits: str = "") -> str | None:
        self._before_prompt(escape_digits)
        digit = await self.inner.play(files, escape_digits)
        if digit is None:
            self.heard.update(self.prompts.describe(f)[0] for f in files)
            self.fresh = True
        return digit

    async def wait_for_digit(self, timeout: float) -> str | None:
        await self._before_wait()
        digit = await self.inner.wait_for_digit(timeout)
        if digit is None:
            self.fresh = True  # the entry (if any) is over: the next question is a fresh one
        return digit

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        self._before_prompt(escape_digits)
        digit = await self.inner.say_digits(digits, escape_digits)
        self.fresh = self.fresh or digit is None
        return digit

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        self._before_prompt(escape_digits)
        digit = await self.inner.say_number(number, escape_digits)
        self.fresh = self.fresh or digit is None
        return digit

    async def set_variable(self, name: str, value: str) -> None:
        await self.inner.set_variable(name, value)

    async def get_variable(self, name: str) -> str | None:
        return await self.inner.get_variable(name)

    async def set_language(self, language: str) -> None:
        await self.inner.set_language(language)

    async def dial(self, destination: str, timeout: float, options: str = "") -> DialResult:
        behaviour = self.world.agent(destination)
        _, exten, _ = self.sim.pbx.resolve_agent(destination)
        self.sim.config.agents[exten] = _agent_spec(exten, behaviour, self.world)
        self._arm()
        return await self.inner.dial(destination, timeout, options)

    async def queue(self, queue: str, timeout: float, options: str = "") -> QueueResult:
        from ivr.sim import AgentSpec, QueueSpec
        from ivr.sim.pbx import QueueMember, QueueState

        behaviour = self.world.queue(queue)
        agents = self.sim.config.agents
        # The member answers within one ring attempt (the simulated queue rings a member 10 s at a time).
        agents[_AGENT] = AgentSpec(_AGENT, answer_after=min(self.world.ring_seconds, 8.0), talk=self.world.talk_seconds)
        agents[_NOBODY] = AgentSpec(_NOBODY, answer_after=None)
        member = {"answer": f"Local/{_AGENT}@agents", "timeout": f"Local/{_NOBODY}@agents"}.get(behaviour)
        spec = QueueSpec(queue, members=[member] if member else [], joinempty=False)
        self.sim.pbx.queues[queue] = QueueState(spec, members={m: QueueMember(m) for m in spec.members})
        self._arm()
        return await self.inner.queue(queue, timeout, options)

    async def park(self, lot: str, timeout: float, comeback: str = "") -> ParkResult:
        if self.world.parking == "retrieved":
            from ivr.sim.parking import retrieve

            def pick_up() -> None:
                for space, parked in list(self.sim.pbx.parked.items()):
                    if parked.channel is self.call.channel and not parked.done:
                        retrieve(self.sim.pbx, space)

            self.sim.clock.call_later(min(20.0, timeout / 2), pick_up)
        self._arm()
        return await self.inner.park(lot, timeout, comeback)

    async def music_on_hold(self, moh_class: str, seconds: float) -> None:
        self._arm()
        await self.inner.music_on_hold(moh_class, seconds)

    async def record_file(
        self, path: str, fmt: str, escape_digits: str, max_seconds: float, silence_seconds: float, beep: bool
    ) -> RecordResult:
        # The caller speaks their message (so silence detection has something to end), then hangs up if the
        # script says so, as on ScriptedChannel.
        from ivr.sim.channel import MediaEvent

        channel = self.call.channel
        now = self.sim.clock.now()
        length = min(self.world.voicemail_seconds, max_seconds)
        speech_end = now + (0.5 if beep else 0.0) + length
        channel.voice.append((now, speech_end))
        channel.post(MediaEvent("voice", time=now))
        step = self._pending()
        if step is not None and step.action == "hangup" and step.at is None and not step.after_prompt:
            self.index += 1
            self.sim.clock.call_at(speech_end + 0.2, self.call.hangup)
        self._arm()
        return await self.inner.record_file(path, fmt, escape_digits, max_seconds, silence_seconds, beep)

    async def start_recording(self, path: str, append: bool = False) -> None:
        await self.inner.start_recording(path, append)

    async def stop_recording(self) -> None:
        await self.inner.stop_recording()

    async def hangup(self) -> None:
        await self.inner.hangup()


async def run_call_on_sim(
    flows: Mapping[str, Flow],
    setup: CallSetup,
    *,
    on_trace: Callable[[TraceEvent], None] | None = None,
    ask: Callable[[], Awaitable[Sequence[Step]]] | None = None,
    max_seconds: float = 3600.0,
) -> CallRun:
    """Place one call on a fresh simulated Asterisk and run it through the real FastAGI server and engine."""
    from ivr.agi.fastagi import FastAGIServer
    from ivr.flow.agi_channel import AGIChannel
    from ivr.flow.engine import EngineSettings, FlowEngine
    from ivr.flow.lookup import FixtureLookupClient
    from ivr.flow.routing import fixed_flow_router
    from ivr.sim import CallSpec, SimConfig, SimulatedAsterisk, SoundCatalog, VirtualClock
    from ivr.storage import open_storage

    flow = flows[setup.flow]
    started = call_start(flow, setup.at)
    book = PromptBook([flows[name] for name in flows])
    clock = VirtualClock(start=started)
    sessions: list[list[TraceEvent]] = []  # trace events of each FastAGI session
    marks: dict[int, Comeback] = {}  # session index -> the comeback that started it
    callers: list[SimCaller] = []  # one entry per FastAGI session: the same SimCaller carries the caller on
    reports: list[tuple[int, CallReport]] = []

    def observe(event: TraceEvent) -> None:
        index = _session.get()
        while len(sessions) <= index:
            sessions.append([])
        sessions[index].append(event)
        if on_trace:
            on_trace(event)

    with tempfile.TemporaryDirectory(prefix="ivr-sim-") as scratch:
        for sub in ("rec", "vm"):
            os.mkdir(os.path.join(scratch, sub))  # where the simulated Asterisk writes recordings and messages
        storage = open_storage("memory:")
        engine = FlowEngine(
            flows,
            storage=storage,
            lookup_client=FixtureLookupClient(setup.lookups),
            clock=clock.datetime,
            settings=EngineSettings(recordings_dir=f"{scratch}/rec", voicemail_dir=f"{scratch}/vm"),
            observer=observe,
        )
        texts = {
            variant.file: variant.text
            for name in flows
            for prompt in flows[name].prompts.values()
            for variant in prompt.values()
            if variant.text
        }
        config = SimConfig(sounds=SoundCatalog(texts=texts), max_call_seconds=max_seconds)
        # [ivr-enter,fallback] dials ${IVR_OPERATOR}: the World's `operator` (its first behaviour if a list).
        operator = setup.world.agents.get("operator", "answer")
        operator = (operator[0] if operator else "answer") if isinstance(operator, list) else operator
        config.agents[_OPERATOR] = _agent_spec(_OPERATOR, operator, setup.world)
        config.globals[dialplan.OPERATOR] = _OPERATOR_DIAL
        sim = SimulatedAsterisk(config, clock=clock)

        def scripted_caller(session: Any) -> SimCaller:
            inner = AGIChannel(session)
            if callers:  # [ivr-park-comeback]'s AGI(): the parked caller is back, in a new session
                index = len(callers)
                _session.set(index)
                callers.append(callers[-1])
                callers[-1].next_session(inner)
                came = _live_comeback(sessions, clock.datetime())
                if came is not None:
                    marks[index] = came
                    if on_trace:
                        on_trace(mark(came))
                return callers[-1]
            _session.set(0)
            call = sim.call_for_channel(inner.info.channel)
            caller = SimCaller(
                inner, call, sim, setup.steps, setup.world, book, call.started if call is not None else clock.now(), ask
            )
            callers.append(caller)
            return caller

        def on_report(report: CallReport) -> None:
            reports.append((_session.get(), report))

        # The production handler as it is (start node, IVR_STATUS/IVR_OUTCOME), with the caller wrapped around
        # its AGIChannel.
        router = fixed_flow_router(engine, on_report=on_report, channel_factory=scripted_caller)
        # The call is over before the server stops; a short deadline only matters after Ctrl-C. The simulator
        # sends its HANGUP notice in virtual time, so the real-time grace for it can be short (production: 0.2 s);
        # with 0.2 s every call that ends on a media command would cost 0.2 real seconds.
        server = FastAGIServer(router, "127.0.0.1", 0, shutdown_deadline=1.0, hangup_grace=0.02)
        await server.start()
        try:
            await sim.start(fastagi=("127.0.0.1", server.port), ami=False)
            try:
                params = dict(setup.params)
                if setup.start:
                    params["node"] = setup.start
                call = await sim.place_call(
                    CallSpec(
                        flow=setup.flow,
                        caller_id=setup.caller_number,
                        caller_name=setup.caller_name,
                        language=setup.language or flow.language,
                        params=params,
                    )
                )
                record = await call.finished(timeout=60)
                for _ in range(100):  # the handlers finish their reports just after the channel is gone
                    if reports and len(reports) >= len(record.agi_runs):
                        break
                    await asyncio.sleep(0.01)
            finally:
                await sim.stop()
        finally:
            await server.stop()
            stored = await read_stored(storage)
            await storage.close()
    if not reports:
        raise RuntimeError(
            f"the simulated call never reached the flow (AGI status {record.agi_status}); "
            f"transcript: {record.commands()}"
        )
    caller = callers[0]
    ordered = [report for _, report in sorted(reports, key=lambda pair: pair[0])]
    trace: list[TraceEvent] = []
    comebacks: list[Comeback] = []
    for index, events in enumerate(sessions):
        if index in marks:
            comebacks.append(marks[index])
            trace.append(mark(marks[index]))
        trace.extend(events)
    last = comeback_after(
        ordered[-1], sessions[-1] if sessions else [], ordered[-1].ended_at or started, first_session=len(ordered) == 1
    )
    operator_dialled = any(target == _OPERATOR_DIAL for target, _ in record.dials)
    if last is not None and last.fallback and operator_dialled:  # [ivr-enter,fallback], after the last session
        comebacks.append(last)
        trace.append(mark(last))
        if on_trace:
            on_trace(mark(last))
    hung_up_by = "caller" if record.ended.by == "caller" else "ivr"
    return CallRun(
        merge(ordered),
        trace,
        started,
        hung_up_by=hung_up_by,
        steps_left=caller.steps_left,
        steps_used=caller.steps_used,
        backend="sim",
        stored=stored,
        sessions=ordered,
        comebacks=comebacks,
        destinations=list(record.destinations),
    )


def _agent_spec(exten: str, behaviour: str, world: World) -> Any:
    from ivr.sim import AgentSpec

    return {
        "answer": AgentSpec(exten, answer_after=world.ring_seconds, talk=world.talk_seconds),
        "busy": AgentSpec(exten, busy=True),
        "no_answer": AgentSpec(exten, answer_after=None),
    }.get(behaviour, AgentSpec(exten, unavailable=True))


def _live_comeback(sessions: list[list[TraceEvent]], at: Any) -> Comeback | None:
    """The comeback that is starting a new session, from the park node's trace event of the session before."""
    for events in reversed(sessions):
        for event in reversed(events):
            if event.kind == "park" and "comeback" in event.data:
                return Comeback(at, f"{event.flow}:{event.node}", str(event.data["comeback"]))
    return None

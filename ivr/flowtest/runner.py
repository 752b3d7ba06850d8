"""Run one simulated call: the real flow engine on a `ScriptedChannel`, with a virtual clock, fixture lookups and
throw-away storage. Shared by `simulate` and `test-flows`.

Rules for this file:
- The engine and the node handlers are the production ones (`ivr.flow.engine`); only the world around them is
  simulated: the channel (`channel.py`), the clock (call time + virtual seconds), lookups (fixtures) and storage
  (in memory). So a passing flow test means the flow behaves that way in production, given those answers.
- Business hours are evaluated at `at` (the flow's local time unless the datetime carries an offset) plus the
  virtual seconds the call has lasted.
- Each call gets a fresh storage and lookup client: calls never see each other's data.
- A park that times out comes back as the dialplan makes it (`comeback.py`): the engine runs again on the same
  channel at IVR_COMEBACK's node (a new session: fresh entry, digits in flight lost), or the channel does the
  operator fallback. `CallRun.report` is the whole call; `sessions` has each session's own report.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ivr.flow.channel import CallInfo
from ivr.flow.engine import EngineSettings, FlowEngine
from ivr.flow.lookup import FixtureLookupClient
from ivr.flow.model import Flow
from ivr.flow.report import CallReport, TraceEvent
from ivr.flowtest.caller import Step
from ivr.flowtest.channel import Event, PromptBook, ScriptedChannel, World
from ivr.flowtest.comeback import Comeback, comeback_after, mark, merge

# A Monday at 10:00 local time: inside any ordinary office hours, so a case that does not care about the time
# does not depend on the day the tests run.
DEFAULT_CALL_TIME = datetime(2026, 11, 30, 10, 0)
_call_numbers = itertools.count(1)


@dataclass
class CallSetup:
    flow: str
    start: str | None = None
    caller_number: str = "+37060000001"
    caller_name: str = ""
    language: str | None = None  # channel language on arrival; None = the flow's default
    at: datetime | None = None  # naive = the flow's local time
    steps: list[Step] = field(default_factory=list)
    lookups: Mapping[str, Any] = field(default_factory=dict)
    world: World = field(default_factory=World)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """What the call left in storage: voicemail messages, callback requests, call recordings."""

    voicemails: tuple[dict[str, Any], ...] = ()  # mailbox, caller, seconds
    callbacks: tuple[dict[str, Any], ...] = ()  # number, queue, language
    recordings: tuple[dict[str, Any], ...] = ()  # path, state, seconds


async def read_stored(storage: Any) -> Stored:
    voicemails = await storage.list_voicemails()
    callbacks = await storage.list_callbacks()
    recordings = await storage.list_recordings()
    return Stored(
        tuple({"mailbox": v.mailbox, "caller": v.caller, "seconds": v.seconds} for v in voicemails),
        tuple({"number": c.number, "queue": c.queue, "language": c.language} for c in callbacks),
        tuple({"path": r.path, "state": r.state, "seconds": r.seconds} for r in recordings),
    )


@dataclass
class CallRun:
    """Everything one simulated call produced (on either backend), across all its IVR sessions."""

    report: CallReport  # the whole call (`_comeback.merge` of `sessions`)
    trace: list[TraceEvent]
    started_at: datetime
    hung_up_by: str | None = None  # "caller", "ivr", or None (the call left the IVR otherwise)
    steps_left: list[Step] = field(default_factory=list)  # script the call did not use
    steps_used: list[Step] = field(default_factory=list)  # what the caller did (script and keyboard)
    backend: str = "engine"  # "engine" (ScriptedChannel) or "sim" (simulated Asterisk over FastAGI)
    events: list[Event] = field(default_factory=list)  # ScriptedChannel's own events (engine backend)
    stored: Stored = field(default_factory=Stored)
    sessions: list[CallReport] = field(default_factory=list)  # one report per IVR (FastAGI) session, in order
    comebacks: list[Comeback] = field(default_factory=list)  # what came between the sessions (and after the last)
    destinations: list[str] = field(default_factory=list)  # sim backend: where the channel went (CallRecord's)

    def __post_init__(self) -> None:
        if not self.sessions:
            self.sessions = [self.report]

    @property
    def fallback(self) -> bool:
        """The call ended in the dialplan's operator fallback (no comeback node, or an error after a comeback)."""
        return any(c.fallback for c in self.comebacks)

    @property
    def heard(self) -> list[str]:
        """Prompt ids in the order the caller heard them (interrupted ones included)."""
        return [str(e.data["prompt"]) for e in self.trace if e.kind == "prompt" and "prompt" in e.data]


def call_start(flow: Flow, at: datetime | None) -> datetime:
    """The moment the call starts, as an aware datetime."""
    when = at or DEFAULT_CALL_TIME
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(flow.timezone))
    return when.astimezone(UTC)


async def run_call(
    flows: Mapping[str, Flow],
    setup: CallSetup,
    *,
    on_trace: Callable[[TraceEvent], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    ask: Callable[[], Awaitable[Sequence[Step]]] | None = None,
    max_seconds: float = 3600.0,
) -> CallRun:
    """Run one call through `setup.flow` and return what happened. `ask` (interactive mode) is awaited for the
    caller's next step whenever the IVR listens and the script has run out."""
    from ivr.storage import open_storage

    flow = flows[setup.flow]
    started = call_start(flow, setup.at)
    number = next(_call_numbers)
    info = CallInfo(
        uniqueid=f"sim-{number}",
        channel=f"SIM/caller-{number:08x}",
        caller_id=setup.caller_number,
        caller_name=setup.caller_name,
        language=setup.language or flow.language,
        context="ivr",
        extension="s",
        params=dict(setup.params),
    )
    channel = ScriptedChannel(
        info,
        setup.steps,
        setup.world,
        PromptBook([flows[name] for name in flows]),
        max_seconds=max_seconds,
        on_event=on_event,
        ask=ask,
    )
    trace: list[TraceEvent] = []

    def observe(event: TraceEvent) -> None:
        trace.append(event)
        if on_trace:
            on_trace(event)

    storage = open_storage("memory:")
    engine = FlowEngine(
        flows,
        storage=storage,
        lookup_client=FixtureLookupClient(setup.lookups),
        clock=lambda: started + timedelta(seconds=channel.elapsed),
        settings=EngineSettings(),
        observer=observe,
    )
    from ivr.flow.routing import start_node

    reports: list[CallReport] = []
    comebacks: list[Comeback] = []
    flow_name, start = setup.flow, setup.start
    try:
        while True:
            reports.append(await engine.run(channel, flow_name, start))
            comeback = comeback_after(
                reports[-1], trace, started + timedelta(seconds=channel.elapsed), first_session=len(reports) == 1
            )
            if comeback is None or channel.hung_up_by:
                break
            comebacks.append(comeback)
            observe(mark(comeback))
            if comeback.fallback:
                await channel.operator_fallback(comeback.describe())
                break
            flow_name, _, node = comeback.target.partition(":")
            channel.come_back(flow_name, node)
            # As the FastAGI handler does with `?node=`: a node the flow lacks restarts the flow.
            start = start_node(engine, flow_name, node, info.uniqueid)
        stored = await read_stored(storage)
    finally:
        await storage.close()
    return CallRun(
        merge(reports),
        trace,
        started,
        hung_up_by=channel.hung_up_by,
        steps_left=channel.steps_left,
        steps_used=channel.steps_used,
        backend="engine",
        events=channel.events,
        stored=stored,
        sessions=reports,
        comebacks=comebacks,
    )

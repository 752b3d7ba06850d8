"""FastAGI glue: script path `<flow>` (optionally `?node=<id>`) -> run that flow on the call.

Rules for this file:
- The router's fallback resolver looks the flow up in the repository's *current* set when the call arrives, so
  flows added by a hot reload are routed without restarting, and a call keeps the set (and engine) it started
  with. An unknown flow -> None -> the router's NOROUTE behaviour.
- One engine per flow-set version (built by the factory, cached while that version is current).
- `?node=` (park comeback: the dialplan passes IVR_COMEBACK's node) starts at that node if the engine can resolve
  it from the flow (a node id, an inline option id `menu.1`, or `flow:node`); a stale node after a reload falls
  back to the flow's start, so a returning caller is never stranded.
- At the end, while the channel is alive: IVR_STATUS=OK|ERROR and IVR_OUTCOME=<outcome> for the dialplan.
- Hooks for the service and the tools, none of which can break a call (a raising hook is logged, the call goes
  on): `on_node(uniqueid, flow, node)` as the call enters each node and `(uniqueid, flow, None)` once when it
  leaves the flow (live call registry); `on_report(report)` after the call; `channel_factory(session)` builds
  the engine's `Channel` (default `AGIChannel`; the admin tools wrap it with a scripted caller).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ivr import dialplan
from ivr.agi.errors import AGIError
from ivr.agi.router import Handler, Router
from ivr.agi.session import AGISession
from ivr.flow.agi_channel import AGIChannel
from ivr.flow.channel import Channel
from ivr.flow.context import EngineError
from ivr.flow.engine import FlowEngine
from ivr.flow.model import Flow
from ivr.flow.report import CallReport, Observer, TraceEvent

log = logging.getLogger(__name__)

STATUS_VARIABLE = dialplan.STATUS
OUTCOME_VARIABLE = dialplan.OUTCOME

EngineFactory = Callable[[Mapping[str, Flow]], FlowEngine]
ReportSink = Callable[[CallReport], None]
NodeSink = Callable[[str, str, str | None], None]  # (uniqueid, flow, node); node None: the call left the flow
ChannelFactory = Callable[[AGISession], Channel]


class FlowResolver:
    """`Router` fallback: script path -> handler running that flow, or None when there is no such flow."""

    def __init__(
        self,
        repository: Any,
        engine: FlowEngine | EngineFactory,
        *,
        on_report: ReportSink | None = None,
        on_node: NodeSink | None = None,
        channel_factory: ChannelFactory = AGIChannel,
    ) -> None:
        self.repository = repository
        self._engine = engine
        self._cache: tuple[object, FlowEngine] | None = None
        self.on_report = on_report
        self.on_node = on_node
        self.channel_factory = channel_factory

    def flows(self) -> Mapping[str, Flow]:
        current: Mapping[str, Flow] | None = getattr(self.repository, "current", None)
        if current is not None:
            return current
        flows: Mapping[str, Flow] = self.repository  # a plain mapping of flows (tests, simulate)
        return flows

    def engine_for(self, flows: Mapping[str, Flow]) -> FlowEngine:
        if isinstance(self._engine, FlowEngine):
            return self._engine
        if self._cache is None or self._cache[0] is not flows:
            self._cache = (flows, self._engine(flows))
        return self._cache[1]

    def __call__(self, path: str) -> Handler | None:
        # A fixed engine runs its own flows; a factory runs the repository's current set.
        flows = self._engine.flows if isinstance(self._engine, FlowEngine) else self.flows()
        name = path.strip("/")
        if name not in flows:
            return None
        engine = self.engine_for(flows)

        async def handler(session: AGISession) -> None:
            report = await run_call(engine, session, name, channel_factory=self.channel_factory, on_node=self.on_node)
            if self.on_report is not None:
                try:
                    self.on_report(report)
                except Exception:  # the call is over; a broken sink must not turn it into a FastAGI failure
                    log.exception("on_report failed for call %r", report.uniqueid)

        return handler


def start_node(engine: FlowEngine, flow_name: str, requested: str | None, uniqueid: str) -> str | None:
    """The `?node=` start if the engine can resolve it from the flow, else None (the flow's start)."""
    if not requested:
        return None
    try:
        engine.resolve(flow_name, requested)
    except EngineError:
        log.warning(
            "call %r asked to start %s at node %r, which the flow (version %s) does not have; starting at %r",
            uniqueid,
            flow_name,
            requested,
            engine.version,
            engine.flows[flow_name].start,
        )
        return None
    return requested


class NodeNotifier:
    """Engine observer passing node entries to `on_node` (after the engine's own observer); never raises."""

    def __init__(self, uniqueid: str, flow: str, on_node: NodeSink, inner: Observer | None) -> None:
        self.uniqueid, self.flow, self.on_node, self.inner = uniqueid, flow, on_node, inner

    def __call__(self, event: TraceEvent) -> None:
        if self.inner is not None:
            try:
                self.inner(event)
            except Exception:
                log.exception("trace observer failed on %s event", event.kind)
        if event.kind == "enter":
            self.flow = event.flow
            self.notify(event.node)

    def notify(self, node: str | None) -> None:
        try:
            self.on_node(self.uniqueid, self.flow, node)
        except Exception:  # the live view is a side show: the caller's call goes on
            log.exception("on_node failed for call %r at %s:%s", self.uniqueid, self.flow, node)


async def run_call(
    engine: FlowEngine,
    session: AGISession,
    flow_name: str,
    *,
    channel_factory: ChannelFactory = AGIChannel,
    on_node: NodeSink | None = None,
) -> CallReport:
    """Run `flow_name` on the call behind `session` and tell the dialplan how it ended."""
    channel = channel_factory(session)
    info = channel.info
    start = start_node(engine, flow_name, info.params.get("node"), info.uniqueid)
    notifier = NodeNotifier(info.uniqueid, flow_name, on_node, engine.observer) if on_node is not None else None
    try:
        report = await engine.run(channel, flow_name, start, observer=notifier)
    finally:
        if notifier is not None:
            notifier.notify(None)
    log.info(
        "call %r flow %s version %s: %s%s after %.1f s (%d nodes, ended at %s)",
        info.uniqueid,
        flow_name,
        engine.version,
        report.outcome,
        f" -> {report.end_target}" if report.end_target else "",
        report.seconds,
        len(report.visits),
        report.end_node,
    )
    if not session.hung_up and not session.closed:
        try:
            await session.set_variable(STATUS_VARIABLE, dialplan.ERROR if report.outcome == "error" else dialplan.OK)
            await session.set_variable(OUTCOME_VARIABLE, report.outcome)
        except AGIError as exc:
            log.info("could not set %s on %r: %s", STATUS_VARIABLE, info.channel, exc)
    return report


def build_flow_router(
    repository: Any,
    engine: FlowEngine | EngineFactory,
    *,
    router: Router | None = None,
    on_report: ReportSink | None = None,
    on_node: NodeSink | None = None,
    channel_factory: ChannelFactory = AGIChannel,
) -> Router:
    """A Router whose fallback runs flows from `repository` (a FlowRepository, or any name -> Flow mapping).

    `engine` is a FlowEngine (fixed flows) or a factory `flows -> FlowEngine` called once per flow-set version.
    `on_node(uniqueid, flow, node)` is called as the call enters each node, and with node None once the call has
    left the flow (e.g. `CallRegistry.note_flow`); `channel_factory(session) -> Channel` (default `AGIChannel`).
    """
    router = router or Router()
    router.fallback = FlowResolver(
        repository, engine, on_report=on_report, on_node=on_node, channel_factory=channel_factory
    )
    return router

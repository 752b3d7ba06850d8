"""AGI script path -> flow: the routes of the FastAGI service and of classic AGI, in one module.

The chain is two hops: `ivr.agi.router.Router` (script path -> handler; the AGI layer, knows nothing of flows)
asks its fallback, a `FlowRoutes`, which looks the flow up and returns a handler running it with `run_flow`.

Rules for this file:
- `FlowRoutes` reads the *current* flow set (`current_flows()`) when a call arrives, so flows added by a hot reload
  are routed without restarting, and a call keeps the set (and engine) it started with. An unknown flow -> None ->
  the router's NOROUTE behaviour.
- One engine per flow-set version (`engine_for_flows(flows)`, cached while that version is current).
- `service_router(settings, ...)` wires the service's parts (repository, storage, lookups, engine settings);
  `flow_router(current_flows, engine_for_flows)` is the general form; `fixed_flow_router(engine)` routes one
  engine's own flows (tests, the flow-test runner). Kept light (no aiohttp, no AMI): classic AGI imports this
  once per call (agi/ivr_agi.py), so start-up time matters.
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
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ivr import dialplan
from ivr.agi.commands import AGICommands
from ivr.agi.errors import AGIError
from ivr.agi.router import Handler, Router
from ivr.flow.agi_channel import AGIChannel
from ivr.flow.channel import Channel
from ivr.flow.context import EngineError
from ivr.flow.engine import AnyFlows, FlowEngine
from ivr.flow.report import CallReport

if TYPE_CHECKING:
    from ivr.flow.repository import FlowRepository
    from ivr.settings import Settings

log = logging.getLogger(__name__)

STATUS_VARIABLE = dialplan.STATUS
OUTCOME_VARIABLE = dialplan.OUTCOME

CurrentFlows = Callable[[], AnyFlows]  # the flow set new calls run (a repository's current version)
EngineFactory = Callable[[AnyFlows], FlowEngine]  # one engine per flow-set version
ReportSink = Callable[[CallReport], None]
NodeSink = Callable[[str, str, str | None], None]  # (uniqueid, flow, node); node None: the call left the flow
ChannelFactory = Callable[[AGICommands], Channel]


class FlowRoutes:
    """`Router` fallback: script path -> handler running the flow of that name, or None when there is none."""

    def __init__(
        self,
        current_flows: CurrentFlows,
        engine_for_flows: EngineFactory,
        *,
        on_report: ReportSink | None = None,
        on_node: NodeSink | None = None,
        channel_factory: ChannelFactory = AGIChannel,
    ) -> None:
        self.current_flows = current_flows
        self._make_engine = engine_for_flows
        self._cache: tuple[AnyFlows, FlowEngine] | None = None
        self.on_report = on_report
        self.on_node = on_node
        self.channel_factory = channel_factory

    def engine_for(self, flows: AnyFlows) -> FlowEngine:
        """The engine of this flow-set version (built once while it is current)."""
        if self._cache is None or self._cache[0] is not flows:
            self._cache = (flows, self._make_engine(flows))
        return self._cache[1]

    def __call__(self, path: str) -> Handler | None:
        flows = self.current_flows()
        name = path.strip("/")
        if name not in flows:
            return None
        engine = self.engine_for(flows)

        async def handler(session: AGICommands) -> None:
            report = await run_flow(engine, session, name, channel_factory=self.channel_factory, on_node=self.on_node)
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
    """Passes the call's node entries to `on_node` (the engine's `on_enter` hook); never raises."""

    def __init__(self, uniqueid: str, flow: str, on_node: NodeSink) -> None:
        self.uniqueid, self.flow, self.on_node = uniqueid, flow, on_node

    def enter(self, flow: str, node: str) -> None:
        self.flow = flow
        self.notify(node)

    def notify(self, node: str | None) -> None:
        try:
            self.on_node(self.uniqueid, self.flow, node)
        except Exception:  # the live view is a side show: the caller's call goes on
            log.exception("on_node failed for call %r at %s:%s", self.uniqueid, self.flow, node)


async def run_flow(
    engine: FlowEngine,
    session: AGICommands,
    flow_name: str,
    *,
    channel_factory: ChannelFactory = AGIChannel,
    on_node: NodeSink | None = None,
) -> CallReport:
    """Run `flow_name` on the call behind `session` and tell the dialplan how it ended."""
    channel = channel_factory(session)
    info = channel.info
    start = start_node(engine, flow_name, info.params.get("node"), info.uniqueid)
    # A direct hook, not a trace observer: no trace event is built per step for the live view (bench/call_cpu.py).
    notifier = NodeNotifier(info.uniqueid, flow_name, on_node) if on_node is not None else None
    try:
        report = await engine.run(channel, flow_name, start, on_enter=notifier.enter if notifier else None)
    finally:
        if notifier is not None:
            notifier.notify(None)
    if log.isEnabledFor(logging.INFO):  # the arguments are built only for a record that is emitted
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


def flow_router(
    current_flows: CurrentFlows,
    engine_for_flows: EngineFactory,
    *,
    router: Router | None = None,
    on_report: ReportSink | None = None,
    on_node: NodeSink | None = None,
    channel_factory: ChannelFactory = AGIChannel,
) -> Router:
    """A Router (`router`, or a new one) whose fallback runs the flows of `current_flows()`, each flow-set version
    on its own engine from `engine_for_flows(flows)`.

    `on_node(uniqueid, flow, node)` is called as the call enters each node, and with node None once the call has
    left the flow (e.g. `CallRegistry.note_flow`); `on_report(report)` after each call;
    `channel_factory(session) -> Channel` (default `AGIChannel`).
    """
    router = router or Router()
    router.fallback = FlowRoutes(
        current_flows, engine_for_flows, on_report=on_report, on_node=on_node, channel_factory=channel_factory
    )
    return router


def fixed_flow_router(
    engine: FlowEngine,
    *,
    on_report: ReportSink | None = None,
    on_node: NodeSink | None = None,
    channel_factory: ChannelFactory = AGIChannel,
) -> Router:
    """A Router running `engine`'s own flows on that engine (no reloads): tests and the flow-test runner."""
    return flow_router(
        lambda: engine.flows,
        lambda _flows: engine,
        on_report=on_report,
        on_node=on_node,
        channel_factory=channel_factory,
    )


def service_router(
    settings: Settings,
    *,
    storage: Any = None,
    lookup_client: Any = None,
    repository: FlowRepository | None = None,
    clock: Callable[[], datetime] | None = None,
    on_node: NodeSink | None = None,
    on_report: ReportSink | None = None,
) -> Router:
    """The service's routes (FastAGI and classic AGI): the repository's current flows (loaded here if not given;
    invalid flows raise ConfigError), one engine per version with the service's storage, lookups and settings.

    `clock` is the time flows see (business hours, holidays); default: now. The demo shifts it into a business day.
    `on_node(uniqueid, flow, node)` is told where each call is (node None when it leaves the flow);
    `on_report(report)` gets each call's CallReport when it ends (callbacks use it to retry or complete).
    """
    from ivr.flow.lookup import HttpLookupClient
    from ivr.flow.repository import FlowRepository
    from ivr.storage import open_storage

    if repository is None:
        repository = FlowRepository.from_settings(settings)
        repository.load()
    flows = repository  # bound for the closure below (mypy: not None)
    storage = storage if storage is not None else open_storage(settings.storage.url, **settings.storage.open_options())
    lookup_client = lookup_client if lookup_client is not None else HttpLookupClient.from_settings(settings.lookups)
    return flow_router(
        lambda: flows.current,
        FlowEngine.factory(settings, storage=storage, lookup_client=lookup_client, clock=clock),
        on_node=on_node,
        on_report=on_report,
    )

"""FastAGI glue: script path `<flow>` (optionally `?node=<id>`) -> run that flow on the call.

Rules for this file:
- The router's fallback resolver looks the flow up in the repository's *current* set when the call arrives, so
  flows added by a hot reload are routed without restarting, and a call keeps the set (and engine) it started
  with. An unknown flow -> None -> the router's NOROUTE behaviour.
- One engine per flow-set version (built by the factory, cached while that version is current).
- `?node=` (park comeback: the dialplan passes IVR_COMEBACK's node) starts at that node if the flow has it;
  a stale node after a reload falls back to the flow's start, so a returning caller is never stranded.
- At the end, while the channel is alive: IVR_STATUS=OK|ERROR and IVR_OUTCOME=<outcome> for the dialplan.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from ivr.agi.errors import AGIError
from ivr.agi.router import Handler, Router
from ivr.agi.session import AGISession
from ivr.flow.agi_channel import AGIChannel
from ivr.flow.engine import FlowEngine
from ivr.flow.model import Flow
from ivr.flow.report import CallReport

log = logging.getLogger(__name__)

STATUS_VARIABLE = "IVR_STATUS"
OUTCOME_VARIABLE = "IVR_OUTCOME"

EngineFactory = Callable[[Mapping[str, Flow]], FlowEngine]
ReportSink = Callable[[CallReport], None]


class FlowResolver:
    """`Router` fallback: script path -> handler running that flow, or None when there is no such flow."""

    def __init__(self, repository: Any, engine: FlowEngine | EngineFactory, *,
                 on_report: ReportSink | None = None) -> None:
        self.repository = repository
        self._engine = engine
        self._cache: tuple[object, FlowEngine] | None = None
        self.on_report = on_report

    def flows(self) -> Mapping[str, Flow]:
        current = getattr(self.repository, "current", None)
        return current if current is not None else self.repository

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
            report = await run_call(engine, session, name)
            if self.on_report is not None:
                self.on_report(report)

        return handler


async def run_call(engine: FlowEngine, session: AGISession, flow_name: str) -> CallReport:
    channel = AGIChannel(session)
    flow = engine.flows[flow_name]
    start = channel.info.params.get("node") or None
    if start is not None and start not in flow.nodes:
        log.warning("call %r asked to start %s at node %r, which the flow (version %s) does not have; starting at %r",
                    channel.info.uniqueid, flow_name, start, engine.version, flow.start)
        start = None
    report = await engine.run(channel, flow_name, start)
    log.info("call %r flow %s version %s: %s%s after %.1f s (%d nodes, ended at %s)", channel.info.uniqueid,
             flow_name, engine.version, report.outcome, f" -> {report.end_target}" if report.end_target else "",
             report.seconds, len(report.visits), report.end_node)
    if not session.hung_up and not session.closed:
        try:
            await session.set_variable(STATUS_VARIABLE, "ERROR" if report.outcome == "error" else "OK")
            await session.set_variable(OUTCOME_VARIABLE, report.outcome)
        except AGIError as exc:
            log.info("could not set %s on %r: %s", STATUS_VARIABLE, channel.info.channel, exc)
    return report


def build_flow_router(repository: Any, engine: FlowEngine | EngineFactory, *, router: Router | None = None,
                      on_report: ReportSink | None = None) -> Router:
    """A Router whose fallback runs flows from `repository` (a FlowRepository, or any name -> Flow mapping).

    `engine` is a FlowEngine (fixed flows) or a factory `flows -> FlowEngine` called once per flow-set version.
    """
    router = router or Router()
    router.fallback = FlowResolver(repository, engine, on_report=on_report)
    return router

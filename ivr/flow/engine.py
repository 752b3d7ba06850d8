"""The flow engine: runs one call through a flow set and returns its `CallReport`.

Rules for this file:
- The engine walks nodes: resolve a reference, run the node kind's handler (ivr.flow.nodes registry), record the
  visit, follow the `Goto`, stop at a `Finish`. Node semantics live in the node modules, not here.
- It never sleeps and never imports AGI, AMI or the simulator: every wait is a `Channel` call, and time comes
  from the injected clock (so simulated calls have simulated durations in reports and metrics).
- A caller hangup anywhere (`CallerHangup`) ends the call cleanly: outcome "abandoned" (or the outcome already
  reached, e.g. a voicemail left before hanging up), with the node where it happened. Unless the channel
  carries IVR_TRANSFERRED=<target> (read in dead mode): then the API moved the call out of the IVR (its Redirect
  ends the AGI like a hangup) and the outcome is "transferred", end target "api:<target>" (sanitised).
- The outcome is the last decisive event (transferred, parked, voicemail, callback); a call with none is
  "contained" when the flow ends it. A failed transfer is not decisive.
- Every other failure ends the call with outcome "error" and a logged reason: an undefined node, a
  `ChannelError`, a bug in a handler, or the step budget (a cycle that never waits for the caller).
- Metrics: labels are flow and node names from the configuration and fixed words only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ivr import dialplan
from ivr.flow.channel import CallerHangup, Channel, ChannelError
from ivr.flow.compiled import Flow, MenuNode, MenuOption, compile_flows
from ivr.flow.context import (
    CallContext,
    EngineError,
    EngineSettings,
    Finish,
    Goto,
    StepBudgetExceeded,
    clean_value,
)
from ivr.flow.nodes import handler_for
from ivr.flow.recording import Recorder
from ivr.flow.report import CallReport, NodeVisit, Observer
from ivr.flow.templates import NAME_RE, render
from ivr.metric_batch import BATCH

if TYPE_CHECKING:
    from ivr.flow import model

# What an engine is built from: validated flows (a FlowSet, compiled once per engine) or compiled ones (classic AGI).
AnyFlows: TypeAlias = "Mapping[str, Flow] | Mapping[str, model.Flow]"

__all__ = ["FlowEngine", "EngineSettings", "EngineError", "UnknownFlow"]

log = logging.getLogger(__name__)

API_TRANSFER_VARIABLE = dialplan.TRANSFERRED  # set by call control (AMI Setvar) right before it moves a call in the IVR
_UNSAFE_TARGET = re.compile(r"[^A-Za-z0-9_\-+*#@/.:]")


class UnknownFlow(EngineError):
    """The flow named by the AGI script path is not in the flow set."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FlowEngine:
    """Runs calls through one flow set (a `FlowSet` or any mapping of name -> Flow).

    A new flow set version means a new engine (cheap): calls in progress keep the engine they started with.
    """

    def __init__(
        self,
        flows: AnyFlows,
        *,
        storage: Any = None,
        lookup_client: Any = None,
        clock: Callable[[], datetime] | None = None,
        settings: EngineSettings | None = None,
        observer: Observer | None = None,
        version: str | None = None,
        **overrides: Any,
    ) -> None:
        self.flows: Mapping[str, Flow] = compile_flows(flows)  # the engine runs plain objects (ivr/flow/compiled.py)
        self.storage = storage
        self.lookup_client = lookup_client
        self.clock = clock or _utcnow
        self.settings = settings or EngineSettings()
        for key, value in overrides.items():  # FlowEngine(flows, prompts_dir=..., dial_template=...)
            if not hasattr(self.settings, key):
                raise TypeError(f"FlowEngine got an unknown setting {key!r}")
            setattr(self.settings, key, value)
        self.observer = observer
        self.version = version if version is not None else str(getattr(flows, "version", ""))
        sources = getattr(flows, "sources", None) or {}
        self.base_dirs: dict[str, Path] = {
            name: Path(src.file).parent for name, src in sources.items() if getattr(src, "file", None)
        }

    @staticmethod
    def settings_from(service_settings: Any) -> EngineSettings:
        """EngineSettings from the service's `Settings` (paths as Asterisk sees them)."""
        prompts = getattr(service_settings, "asterisk_prompts_dir", None) or str(service_settings.prompts_dir)
        # Asterisk's view of the recordings directory, as the API's MixMonitor uses it (calls.asterisk_recordings_dir).
        asterisk_view = getattr(getattr(service_settings, "calls", None), "asterisk_recordings_dir", None)
        settings = EngineSettings(prompts_dir=prompts, dial_template=service_settings.dial_template)
        settings.set_recordings_dir(str(asterisk_view or service_settings.recordings_dir))
        # Optional sections: a Settings without them keeps the engine's defaults.
        pattern = getattr(getattr(service_settings, "callbacks", None), "number_pattern", None)
        if pattern:
            settings.callback_number_pattern = str(pattern)
        comeback = getattr(getattr(service_settings, "calls", None), "park_comeback_context", None)
        if comeback:
            settings.park_comeback_context = str(comeback)
        return settings

    @classmethod
    def factory(cls, service_settings: Any, **kwargs: Any) -> Callable[[AnyFlows], FlowEngine]:
        """`flows -> FlowEngine` for `ivr.flow.routing.flow_router`: one engine per flow-set version, same services."""
        settings = cls.settings_from(service_settings)

        def make(flows: AnyFlows) -> FlowEngine:
            return cls(flows, settings=settings, **kwargs)

        return make

    # -- resolving references --------------------------------------------------------------------------------
    def resolve(self, current_flow: str, ref: str) -> tuple[Flow, str, Any]:
        """`node`, `flow:node` or an inline menu option `menu.digits` -> (flow, node id, node)."""
        flow_name, _, node_id = ref.rpartition(":")
        flow_name = flow_name or current_flow
        flow = self.flows.get(flow_name)
        if flow is None:
            raise EngineError(f"reference {ref!r}: there is no flow {flow_name!r}")
        node = flow.nodes.get(node_id)
        if node is None and "." in node_id:
            menu_id, _, digits = node_id.partition(".")
            menu = flow.nodes.get(menu_id)
            if isinstance(menu, MenuNode):
                option = menu.options.get(digits)
                if option is not None and not isinstance(option, (str, MenuOption)):  # an inline node
                    node = option
        if node is None:
            raise EngineError(f"reference {ref!r}: flow {flow_name!r} has no node {node_id!r}")
        return flow, node_id, node

    # -- one call --------------------------------------------------------------------------------------------
    def _initial_variables(self, ctx: CallContext) -> None:
        info = ctx.info
        builtins = {
            "caller_id": info.caller_id,
            "caller_name": info.caller_name,
            "dnid": info.dnid,
            "uniqueid": info.uniqueid,
            "channel": info.channel,
            "context": info.context,
            "extension": info.extension,
            "flow": ctx.flow.name,
            "language": ctx.language,
        }
        for key, value in info.params.items():
            # An empty value is no value: the flow's `variables:` default for param_<key> applies instead.
            if NAME_RE.fullmatch(key) and key != "node" and value:
                builtins[f"param_{key}"] = clean_value(value)
        ctx.variables.update(builtins)

    def _enter_flow(self, ctx: CallContext, flow: Flow) -> None:
        ctx.flow = flow
        ctx.variables["flow"] = flow.name
        if flow.name not in ctx.entered_flows:
            ctx.entered_flows.add(flow.name)
            # A flow's declared variables are defaults: they never overwrite what the call already knows.
            for name, template in flow.variables.items():
                if name not in ctx.variables:
                    ctx.variables[name] = render(template, ctx.variables)

    async def run(
        self,
        channel: Channel,
        flow_name: str,
        start_node: str | None = None,
        *,
        observer: Observer | None = None,
        on_enter: Callable[[str, str], None] | None = None,
    ) -> CallReport:
        """Run one call. `observer` (default: the engine's) gets every trace event; `on_enter(flow, node)` is
        called as the call enters each node, after the observer's "enter" event (the live call registry)."""
        flow = self.flows.get(flow_name)
        if flow is None:
            raise UnknownFlow(f"no flow named {flow_name!r}; known flows: {', '.join(sorted(self.flows)) or 'none'}")
        info = channel.info
        started = self.clock()
        # The dialplan's `?lang=` (a per-DID language, extensions_ivr.conf IVR_LANG) first, then the channel's
        # language, when the flow offers it; else the flow's default.
        language = next(
            (lang for lang in (info.params.get("lang", ""), info.language) if lang in flow.languages), flow.language
        )
        recorder = Recorder()
        ctx = CallContext(
            channel=channel,
            info=info,
            flows=self.flows,
            flow=flow,
            settings=self.settings,
            clock=self.clock,
            storage=self.storage,
            lookup_client=self.lookup_client,
            observer=observer or self.observer,
            version=self.version,
            base_dirs=self.base_dirs,
            language=language,
            recorder=recorder,
        )
        self._initial_variables(ctx)
        self._enter_flow(ctx, flow)
        start = start_node or flow.start
        report = CallReport(
            flow=flow_name,
            start_node=start,
            version=self.version,
            uniqueid=info.uniqueid,
            caller_id=info.caller_id,
            started_at=started,
        )
        record = BATCH.record  # metrics are folded into Prometheus in batches (ivr/metric_batch.py)
        flow_label = (flow_name,)
        record("CALLS_STARTED", flow_label)
        record("CALLS_ACTIVE", flow_label)
        traced = ctx.observer is not None  # trace texts are only built for an observer
        if traced:
            ctx.emit(
                "call",
                f"call {info.uniqueid} from {info.caller_id or 'unknown'} enters {flow_name}:{start}"
                + (f" (version {self.version})" if self.version else ""),
                caller_id=info.caller_id,
            )
        visit: NodeVisit | None = None
        try:
            if flow.answer:
                await channel.answer()
            if language != info.language:
                await channel.set_language(language)
            if start_node is not None:  # re-entry (park comeback): recording and consent carry over
                await recorder.restore(ctx)
            if flow.recording.policy == "always":
                await recorder.start(ctx, "flow policy")
            ref = start
            while True:
                ctx.tick()
                node_flow, node_id, node = self.resolve(ctx.flow.name, ref)
                if node_flow is not ctx.flow:
                    self._enter_flow(ctx, node_flow)
                ctx.node_id = node_id
                visit = NodeVisit(node_flow.name, node_id, node.type, self.clock())
                report.visits.append(visit)
                record("NODE_VISITS", (node_flow.name, node_id))
                if traced:
                    ctx.emit(
                        "enter",
                        f"{node.type} node" + (f": {node.description}" if node.description else ""),
                        node_kind=node.type,
                    )
                if on_enter is not None:
                    on_enter(node_flow.name, node_id)
                step = await handler_for(node.type)(node, ctx)
                self._leave(
                    ctx, visit, step.reason, step.detail, ctx.qualify(step.target) if isinstance(step, Goto) else ""
                )
                if traced:
                    ctx.emit(
                        "exit", f"{step.reason}: {step.detail}" if step.detail else step.reason, reason=step.reason
                    )
                visit = None
                if isinstance(step, Finish):
                    report.outcome = ctx.outcome or step.outcome or "contained"
                    if report.outcome == "error":
                        report.error = step.detail  # the report of a failed call says why
                    report.end_target = ctx.end_target or step.end_target
                    report.end_node = ctx.ref
                    break
                ref = ctx.qualify(step.target)
        except CallerHangup as exc:
            api_target = await self._api_transfer(channel)
            report.end_node = ctx.ref
            if api_target is not None:
                self._leave(ctx, visit, "transferred", f"transferred by the API to {api_target}", "")
                report.outcome, report.end_target = "transferred", f"api:{api_target}"
                record("TRANSFERS", (flow_name, "api", "redirected"))
                ctx.emit("transfer", f"transferred by the API to {api_target} at {ctx.ref}", target=api_target)
            else:
                self._leave(ctx, visit, "hangup", "caller hung up", "")
                report.outcome = ctx.outcome or "abandoned"
                report.end_target = ctx.end_target or "hangup:caller"
                ctx.emit("hangup", f"caller hung up at {ctx.ref}" + (f" ({exc})" if str(exc) else ""))
        except (EngineError, ChannelError) as exc:
            self._leave(ctx, visit, "error", str(exc), "")
            report.outcome, report.error, report.end_node = "error", str(exc), ctx.ref
            report.end_target = ctx.end_target
            level = logging.ERROR if isinstance(exc, StepBudgetExceeded) else logging.WARNING
            log.log(level, "call %r in flow %r ended with an error at %s: %s", info.uniqueid, flow_name, ctx.ref, exc)
            ctx.emit("error", str(exc))
        except Exception as exc:  # a bug must not leave the call without a record
            self._leave(ctx, visit, "error", repr(exc), "")
            report.outcome, report.error, report.end_node = "error", f"internal error: {exc!r}", ctx.ref
            log.exception("call %r in flow %r failed at %s", info.uniqueid, flow_name, ctx.ref)
            ctx.emit("error", f"internal error: {exc!r}")
        finally:
            # A parked call keeps its MixMonitor through the comeback; the re-entered session finishes it.
            if ctx.recorder is not None and report.outcome != "parked":
                await ctx.recorder.finish(ctx)
            report.ended_at = self.clock()
            report.variables = dict(ctx.variables)
            report.language = ctx.language
            record("CALLS_ACTIVE", flow_label, -1.0)
            if report.outcome:
                record("CALL_OUTCOMES", (flow_name, report.outcome))
            record("IVR_SECONDS", flow_label, max(0.0, report.seconds))
        if ctx.observer is not None:
            ctx.emit(
                "end",
                f"outcome {report.outcome}"
                + (f" -> {report.end_target}" if report.end_target else "")
                + f" after {report.seconds:.1f} s",
                outcome=report.outcome,
            )
        return report

    @staticmethod
    async def _api_transfer(channel: Channel) -> str | None:
        """The target the API moved this call to (IVR_TRANSFERRED, set just before its Redirect), else None.

        A Redirect ends the AGI like a hangup; GET VARIABLE still works in dead mode (agi-06), so the variable
        tells a transferred call from an abandoned one. No answer (connection gone) counts as a hangup."""
        try:
            value = await channel.get_variable(API_TRANSFER_VARIABLE)
        except (CallerHangup, ChannelError):
            return None
        if not value:
            return None
        return _UNSAFE_TARGET.sub("_", value.strip())[:80] or None

    def _leave(self, ctx: CallContext, visit: NodeVisit | None, reason: str, detail: str, target: str) -> None:
        if visit is None:
            return
        visit.left_at = self.clock()
        visit.reason, visit.detail, visit.target = reason, detail, target
        BATCH.record("NODE_EXITS", (visit.flow, visit.node, reason))
        BATCH.record("NODE_SECONDS", (visit.flow, visit.node), max(0.0, visit.seconds))

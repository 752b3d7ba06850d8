"""A parked caller nobody retrieves comes back: one call, several IVR sessions. Shared by both backends.

Rules for this file:
- What happens is what dialplans/extensions_ivr.conf's [ivr-park-comeback] does: the park node set
  IVR_COMEBACK=<flow>:<node>; at the park time-out the caller re-enters the service in a new FastAGI session at
  that node (`<flow>?node=<node>`). An empty IVR_COMEBACK, or a comeback session that ends in an error
  (IVR_STATUS=ERROR: no positive report, ivr.dialplan), sends the caller to [ivr-enter,fallback]: the operator's
  Dial (`OPERATOR_FALLBACK`).
- The comeback is read from the engine's own record: the park node's `park` trace event carries `comeback`
  (qualified, "" for none) and its visit's detail is the Park result ("timeout" / "retrieved").
- The whole call is one `CallReport` (`merge`): the first session's start, every session's visits in order, the
  last session's end (outcome, end target, end node, language, error), variables as they ended up.
- The trace marks each comeback with a `comeback` event between the sessions, so the admin sees where and why the
  call went on ("← park timeout: back at goodbye").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ivr import dialplan
from ivr.flow.report import CallReport, TraceEvent

OPERATOR_FALLBACK = f"{dialplan.ENTER_CONTEXT},{dialplan.FALLBACK_EXTEN}"


@dataclass(frozen=True)
class Comeback:
    """One return from the parking lot: when, from which park node, to which node ("" = operator fallback)."""

    at: datetime
    parked_at: str  # flow:node of the park node
    target: str  # flow:node where the next session starts; "" = the dialplan's operator fallback
    why: str = "park timeout"

    @property
    def fallback(self) -> bool:
        return not self.target

    def describe(self) -> str:
        if self.target:
            return f"← {self.why}: back at {self.target}"
        return f"← {self.why}: the dialplan's operator fallback ({OPERATOR_FALLBACK}) dials the operator"


def park_timed_out(report: CallReport) -> bool:
    """The session ended in a park node whose Park() timed out (nobody retrieved the caller)."""
    last = report.visits[-1] if report.visits else None
    return last is not None and last.kind == "park" and last.detail == "timeout"


def comeback_after(
    report: CallReport, trace: Sequence[TraceEvent], at: datetime, first_session: bool
) -> Comeback | None:
    """Where the call goes after this session, as the dialplan decides; None when it does not come back."""
    if park_timed_out(report):
        target = next(
            (str(e.data["comeback"]) for e in reversed(trace) if e.kind == "park" and "comeback" in e.data), ""
        )
        return Comeback(at, report.end_node, target)
    if not first_session and report.outcome == "error":
        return Comeback(at, report.end_node, "", why="error in the comeback session (IVR_STATUS=ERROR)")
    return None


def mark(comeback: Comeback) -> TraceEvent:
    """The trace event shown between two sessions of one call."""
    flow, _, node = comeback.target.partition(":")
    return TraceEvent(
        comeback.at,
        "comeback",
        flow or comeback.parked_at.partition(":")[0],
        node,
        comeback.describe(),
        {"from": comeback.parked_at, "target": comeback.target, "why": comeback.why},
    )


def merge(reports: Sequence[CallReport]) -> CallReport:
    """One report for the whole call, across its sessions (in order)."""
    if not reports:
        raise ValueError("no session reports to merge: the call never reached the flow")
    first, last = reports[0], reports[-1]
    if len(reports) == 1:
        return first
    variables: dict[str, str] = {}
    for report in reports:
        variables.update(report.variables)
    return CallReport(
        flow=first.flow,
        start_node=first.start_node,
        version=first.version,
        uniqueid=first.uniqueid,
        caller_id=first.caller_id,
        started_at=first.started_at,
        ended_at=last.ended_at,
        outcome=last.outcome,
        end_target=last.end_target,
        end_node=last.end_node,
        visits=[visit for report in reports for visit in report.visits],
        variables=variables,
        language=last.language,
        error=last.error,
    )


def path_words(sessions: Sequence[CallReport], comebacks: Sequence[Comeback], flow: str) -> str:
    """The visited nodes, session by session, joined by what brought the caller back ("⇢ park timeout ⇢");
    nodes of `flow` are shown bare."""

    def short(ref: str) -> str:
        return ref.split(":", 1)[1] if ref.startswith(flow + ":") else ref

    parts = [" → ".join(short(p) for p in session.path) for session in sessions]
    text = parts[0] if parts else ""
    for index, comeback in enumerate(comebacks):
        after = parts[index + 1] if index + 1 < len(parts) else "operator fallback"
        text += f"  ⇢ {comeback.why} ⇢  {after}"
    return text

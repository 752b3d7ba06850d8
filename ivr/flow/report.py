"""What a call did in the IVR: the `CallReport` returned by `FlowEngine.run`, and the trace events an observer sees.

Rules for this file:
- Plain records (`ivr.records`, not dataclasses: classic AGI builds them before its first command), no behaviour
  beyond formatting: the engine fills them, tools print them, tests assert on them.
- Times come from the engine's injected clock, so a simulated call has simulated times.
- `to_dict()` gives JSON-ready data (ISO times) for the admin tools and the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ivr.records import FrozenRecord, Record

_set = object.__setattr__


class TraceEvent(FrozenRecord):
    """One thing that happened, in the order it happened.

    kind: call, enter, prompt, digit, timeout, no_input, invalid, choice, variable, route, language, lookup,
    transfer, park, hold, record, voicemail, callback, hangup, exit, error, end.
    """

    __slots__ = ("at", "kind", "flow", "node", "text", "data")

    at: datetime
    kind: str
    flow: str
    node: str
    text: str
    data: dict[str, Any]

    def __init__(
        self, at: datetime, kind: str, flow: str, node: str, text: str, data: dict[str, Any] | None = None
    ) -> None:
        _set(self, "at", at)
        _set(self, "kind", kind)
        _set(self, "flow", flow)
        _set(self, "node", node)
        _set(self, "text", text)
        _set(self, "data", {} if data is None else data)

    def format(self, start: datetime | None = None) -> str:
        offset = f"+{(self.at - start).total_seconds():7.2f}s " if start is not None else ""
        where = f"{self.flow}:{self.node}" if self.node else self.flow
        return f"{offset}[{where}] {self.kind}: {self.text}"


Observer = Callable[[TraceEvent], None]


class NodeVisit(Record):
    __slots__ = ("flow", "node", "kind", "entered_at", "left_at", "reason", "target", "detail")

    def __init__(
        self,
        flow: str,
        node: str,
        kind: str,
        entered_at: datetime,
        left_at: datetime | None = None,
        reason: str = "",  # one of metrics.EXIT_REASONS
        target: str = "",  # flow:node we went to next ("" when the call ended here)
        detail: str = "",  # human words: "option 2", "BUSY", "exhausted after 3 invalid inputs"
    ) -> None:
        self.flow = flow
        self.node = node
        self.kind = kind
        self.entered_at = entered_at
        self.left_at = left_at
        self.reason = reason
        self.target = target
        self.detail = detail

    @property
    def seconds(self) -> float:
        return (self.left_at - self.entered_at).total_seconds() if self.left_at else 0.0


class CallReport(Record):
    __slots__ = (
        "flow",
        "start_node",
        "version",
        "uniqueid",
        "caller_id",
        "started_at",
        "ended_at",
        "outcome",
        "end_target",
        "end_node",
        "visits",
        "variables",
        "language",
        "error",
    )

    def __init__(
        self,
        flow: str,
        start_node: str,
        version: str,
        uniqueid: str,
        caller_id: str,
        started_at: datetime,
        ended_at: datetime | None = None,
        outcome: str = "",  # one of metrics.OUTCOMES
        end_target: str = "",  # queue:sales, extension:1001, voicemail:sales, park:default, hangup, ...
        end_node: str = "",  # flow:node where the call left the IVR (or hung up)
        visits: list[NodeVisit] | None = None,
        variables: dict[str, str] | None = None,
        language: str = "",
        error: str | None = None,
    ) -> None:
        self.flow = flow
        self.start_node = start_node
        self.version = version
        self.uniqueid = uniqueid
        self.caller_id = caller_id
        self.started_at = started_at
        self.ended_at = ended_at
        self.outcome = outcome
        self.end_target = end_target
        self.end_node = end_node
        self.visits: list[NodeVisit] = [] if visits is None else visits
        self.variables: dict[str, str] = {} if variables is None else variables
        self.language = language
        self.error = error

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else 0.0

    @property
    def path(self) -> list[str]:
        """Visited nodes as flow:node, in order."""
        return [f"{v.flow}:{v.node}" for v in self.visits]

    def to_dict(self) -> dict[str, Any]:
        data = self.as_dict()

        def iso(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, Record):  # the visits (what dataclasses.asdict did: fields, recursively)
                return iso(value.as_dict())
            if isinstance(value, dict):
                return {k: iso(v) for k, v in value.items()}
            if isinstance(value, list):
                return [iso(v) for v in value]
            return value

        out: dict[str, Any] = iso(data)
        out["seconds"] = self.seconds
        return out

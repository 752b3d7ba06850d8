"""What a call did in the IVR: the `CallReport` returned by `FlowEngine.run`, and the trace events an observer sees.

Rules for this file:
- Plain dataclasses, no behaviour beyond formatting: the engine fills them, tools print them, tests assert on them.
- Times come from the engine's injected clock, so a simulated call has simulated times.
- `to_dict()` gives JSON-ready data (ISO times) for the admin tools and the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened, in the order it happened.

    kind: call, enter, prompt, digit, timeout, no_input, invalid, choice, variable, route, language, lookup,
    transfer, park, hold, record, voicemail, callback, hangup, exit, error, end.
    """

    at: datetime
    kind: str
    flow: str
    node: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def format(self, start: datetime | None = None) -> str:
        offset = f"+{(self.at - start).total_seconds():7.2f}s " if start is not None else ""
        where = f"{self.flow}:{self.node}" if self.node else self.flow
        return f"{offset}[{where}] {self.kind}: {self.text}"


Observer = Callable[[TraceEvent], None]


@dataclass
class NodeVisit:
    flow: str
    node: str
    kind: str
    entered_at: datetime
    left_at: datetime | None = None
    reason: str = ""  # one of metrics.EXIT_REASONS
    target: str = ""  # flow:node we went to next ("" when the call ended here)
    detail: str = ""  # human words: "option 2", "BUSY", "exhausted after 3 invalid inputs"

    @property
    def seconds(self) -> float:
        return (self.left_at - self.entered_at).total_seconds() if self.left_at else 0.0


@dataclass
class CallReport:
    flow: str
    start_node: str
    version: str
    uniqueid: str
    caller_id: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = ""  # one of metrics.OUTCOMES
    end_target: str = ""  # queue:sales, extension:1001, voicemail:sales, park:default, hangup, ...
    end_node: str = ""  # flow:node where the call left the IVR (or hung up)
    visits: list[NodeVisit] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    language: str = ""
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else 0.0

    @property
    def path(self) -> list[str]:
        """Visited nodes as flow:node, in order."""
        return [f"{v.flow}:{v.node}" for v in self.visits]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)

        def iso(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: iso(v) for k, v in value.items()}
            if isinstance(value, list):
                return [iso(v) for v in value]
            return value

        out: dict[str, Any] = iso(data)
        out["seconds"] = self.seconds
        return out

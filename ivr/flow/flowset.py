"""A validated set of flows (`FlowSet`) and where each flow came from (`FlowSource`).

Rules for this file:
- Data only: the loader (`ivr.flow.loader`) builds these, validation (`ivr.flow.validate`), the repository, the
  cache and the engine read them. Kept apart from the loader so that validation does not import the loader that
  calls it (no import cycle).
- A `FlowSet` is immutable once built: calls in progress keep the object they started with while a reload
  builds a new one (see `ivr.flow.repository`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ivr.flow.model import Flow
from ivr.yamlsource import PathKey, PositionMap, Problem, Severity


@dataclass(frozen=True)
class FlowSource:
    """Where a flow came from: its file and the positions of every key in it (for located messages)."""

    file: Path
    display: str  # the file name used in messages
    positions: PositionMap
    calendars: tuple[Path, ...] = ()  # .ics files this flow reads

    def problem(
        self,
        path: PathKey,
        message: str,
        hint: str = "",
        *,
        severity: Severity = "error",
        code: str = "graph",
        at_key: bool = True,
    ) -> Problem:
        return self.positions.problem(
            path,
            message,
            hint,
            severity=severity,
            code=code,
            at_key=at_key,
        )


@dataclass(frozen=True)
class FlowSet(Mapping[str, Flow]):
    """A validated set of flows, by name (a read-only mapping). `version` is a short hash of the files' contents."""

    flows: Mapping[str, Flow]
    sources: Mapping[str, FlowSource]
    version: str
    loaded_at: datetime
    directory: Path | None = None
    warnings: tuple[Problem, ...] = ()
    files: tuple[Path, ...] = field(default=(), repr=False)  # every file read (flows and calendars)

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def names(self) -> list[str]:
        return sorted(self.flows)

    def resolve(self, flow_name: str, ref: str) -> tuple[str, str]:
        """`node` (in `flow_name`) or `flow:node` -> (flow, node)."""
        if ":" in ref:
            other, node = ref.split(":", 1)
            return other, node
        return flow_name, ref

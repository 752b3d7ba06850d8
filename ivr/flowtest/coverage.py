"""Which nodes, menu options and branches of the flows the test cases reached, and which they did not.

Rules for this file:
- The items to cover come from the same `FlowGraph` that `graph` draws (`ivr.flowgraph.graph`): every node, every
  way out of a node that is an option (menu digits, direct dial, language choice) or a branch (no input,
  invalid, exhaustion, busy, no answer, unavailable, queue timeout, closed hours, route rules, lookup error,
  failure, park comeback). Plain "next" arrows are covered by the nodes they join.
- What a call took is read from the engine's own record: each `NodeVisit` (reason, detail) and the trace events
  between its `enter` and `exit` (menu choices, no-input and invalid retries).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ivr.flow.model import Flow, MenuNode
from ivr.flow.report import CallReport, NodeVisit, TraceEvent
from ivr.flowgraph.graph import FlowGraph, GraphEdge, build_graph

_PLAIN_KEYS = {"next", "valid"}
_BRANCH_WORDS = {
    "retry:no_input": "no input",
    "retry:invalid": "invalid",
    "exhausted:no_input": "no-input exhaustion",
    "exhausted:invalid": "invalid exhaustion",
    "on_busy": "busy",
    "on_no_answer": "no answer",
    "on_unavailable": "unavailable",
    "on_timeout": "queue timeout",
    "error": "lookup error",
    "failure": "failure",
    "comeback": "park timeout (comeback)",
    "language:default": "no language chosen",
    "else": "else",
}
_TRANSFER_BRANCH = re.compile(r"-> (on_busy|on_no_answer|on_unavailable|on_timeout|next)$")
_RULE = re.compile(r"^rule (\d+):")


@dataclass(frozen=True)
class Item:
    flow: str
    node: str
    category: str  # node, option, branch
    key: str  # "" for nodes
    words: str  # how the report names it

    def describe(self) -> str:
        return f"{self.flow}:{self.node}" + (f" {self.category} {self.words}" if self.key else "")


def _edge_item(flow: str, edge: GraphEdge) -> Item | None:
    if edge.key in _PLAIN_KEYS:
        return None
    if (
        edge.key.startswith("option:")
        or edge.key == "direct_dial"
        or (edge.key.startswith("language:") and edge.key != "language:default")
    ):
        return Item(flow, edge.src, "option", edge.key, edge.label or edge.key)
    if edge.key.startswith("rule:"):
        words = f"closed hours: {edge.label}" if edge.kind == "closed" else f"rule {edge.label}"
        return Item(flow, edge.src, "branch", edge.key, words)
    return Item(flow, edge.src, "branch", edge.key, _BRANCH_WORDS.get(edge.key, edge.key))


def items_of(flow: Flow, graph: FlowGraph | None = None) -> list[Item]:
    graph = graph or build_graph(flow)
    items: list[Item] = []
    for node in graph.nodes.values():
        if node.kind not in ("flow", "verb", "missing"):
            items.append(Item(flow.name, node.id, "node", "", node.id))
    seen: set[tuple[str, str]] = set()
    for edge in graph.edges:
        item = _edge_item(flow.name, edge)
        if item and (item.node, item.key) not in seen:
            seen.add((item.node, item.key))
            items.append(item)
    return items


def _segments(trace: Iterable[TraceEvent]) -> list[list[TraceEvent]]:
    """Trace events grouped per node visit (an `enter` starts a group), in visit order."""
    groups: list[list[TraceEvent]] = []
    for event in trace:
        if event.kind == "enter":
            groups.append([])
        if groups:
            groups[-1].append(event)
    return groups


def _node_of(flows: Mapping[str, Flow], visit: NodeVisit) -> object | None:
    flow = flows.get(visit.flow)
    if flow is None:
        return None
    node = flow.nodes.get(visit.node)
    if node is None and "." in visit.node:
        menu_id, _, digits = visit.node.partition(".")
        menu = flow.nodes.get(menu_id)
        if isinstance(menu, MenuNode):
            return menu.options.get(digits)
    return node


def taken_keys(visit: NodeVisit, events: list[TraceEvent], node: object | None) -> set[str]:
    """The ways out of this node that this visit took (see `ivr.flowgraph.graph` edge keys)."""
    keys: set[str] = set()
    kind, reason, detail = visit.kind, visit.reason, visit.detail
    if kind == "menu":
        for event in events:
            if event.kind == "choice" and "choice" in event.data:
                option = event.data.get("option")
                keys.add("direct_dial" if option == "direct_dial" else f"option:{event.data['choice']}")
            elif event.kind in ("no_input", "invalid") and isinstance(node, MenuNode):
                retry = node.no_input if event.kind == "no_input" else node.invalid
                if int(event.data.get("count", 0)) <= retry.retries:
                    keys.add(f"retry:{event.kind}")
        if reason == "exhausted":
            keys.add("exhausted:no_input" if detail.startswith("no input") else "exhausted:invalid")
    elif kind == "language":
        if reason == "valid" and detail.startswith("chose "):
            keys.add(f"language:{detail[len('chose ') :]}")
        elif reason == "exhausted":
            keys.add("language:default")
    elif kind == "route":
        match = _RULE.match(detail)
        keys.add(f"rule:{int(match.group(1)) - 1}" if match else "else")
    elif kind == "transfer":
        match = _TRANSFER_BRANCH.search(detail)
        keys.add(match.group(1) if match else "next")
    elif kind in ("input", "callback"):
        keys.add("failure" if reason == "exhausted" else "valid")
    elif kind == "lookup":
        keys.add("error" if reason == "error" else "next")
    elif kind == "park":
        if detail == "timeout":
            keys.add("comeback")
    else:
        keys.add("next")
    return keys


@dataclass
class Coverage:
    items: list[Item] = field(default_factory=list)
    covered: set[Item] = field(default_factory=set)

    @property
    def missing(self) -> list[Item]:
        return [item for item in self.items if item not in self.covered]

    def ratio(self, category: str | None = None) -> float:
        items = [i for i in self.items if category is None or i.category == category]
        if not items:
            return 1.0
        return sum(1 for i in items if i in self.covered) / len(items)

    def add_call(self, flows: Mapping[str, Flow], report: CallReport, trace: list[TraceEvent]) -> None:
        by_place: dict[tuple[str, str, str], Item] = {(i.flow, i.node, i.key): i for i in self.items}
        segments = _segments(trace)
        for index, visit in enumerate(report.visits):
            events = segments[index] if index < len(segments) else []
            node_item = by_place.get((visit.flow, visit.node, ""))
            if node_item:
                self.covered.add(node_item)
            for key in taken_keys(visit, events, _node_of(flows, visit)):
                item = by_place.get((visit.flow, visit.node, key))
                if item:
                    self.covered.add(item)


def coverage_for(flows: Mapping[str, Flow], names: Iterable[str]) -> Coverage:
    items: list[Item] = []
    for name in names:
        items += items_of(flows[name])
    return Coverage(items)

"""A flow as a plain graph (boxes and arrows), independent of how it is drawn.

Rules for this file:
- Which fields of which node kind lead where, each node kind says itself (`exits()` in `ivr.flow.model`, also read
  by validation); this file only turns those exits into boxes and arrows. The DOT and Mermaid writers
  (`dot.py`, `mermaid.py`) and the coverage report of `test-flows` all read the same `FlowGraph`, so a new
  branch added to a node kind shows up in every picture and in the coverage at once.
- Every edge says which Prometheus series counts it (`EdgeMetric`), so traffic can be laid over the picture
  without the writers knowing the metric names.
- Inline menu options become nodes of their own, named `<menu>.<digits>` (the engine's name for them).
- Nothing here imports graphviz: Mermaid and DOT text need no binary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ivr.flow.model import (
    MENU_VERBS,
    CallbackNode,
    ExitKind,
    Flow,
    HangupNode,
    HoldNode,
    InputNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    ParkNode,
    PlayNode,
    RecordNode,
    RouteNode,
    SayNode,
    SetNode,
    TransferNode,
    VoicemailNode,
)

# How an edge is drawn: the kind of the node's exit. Branch kinds are styled apart (and counted by coverage).
EdgeKind = ExitKind
BRANCH_KINDS: frozenset[str] = frozenset(
    {"no_input", "invalid", "exhausted", "busy", "no_answer", "unavailable", "timeout", "closed", "error", "failure"}
)


@dataclass(frozen=True)
class EdgeMetric:
    """The series that counts callers taking an edge: a menu choice or a node exit with a reason."""

    metric: Literal["choice", "exit", "transfer"]
    node: str  # node id; for "transfer" the configured extension/queue text (the metric's `target` label)
    key: str  # option digits for "choice", exit reason for "exit", branch (on_busy, ..., next) for "transfer"


@dataclass(frozen=True)
class GraphNode:
    id: str  # unique in the graph: node id, `<menu>.<digits>` for inline options, `flow:<name>` for other flows
    kind: str  # a node kind from the model, "flow" (another flow), "verb" (menu back/top), "missing" (undefined)
    title: str
    details: tuple[str, ...] = ()
    start: bool = False


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    kind: EdgeKind
    label: str = ""
    metric: EdgeMetric | None = None
    key: str = "next"  # which way out of `src` this is, for coverage: option:1, exhausted:no_input, on_busy ...


@dataclass
class FlowGraph:
    flow: str
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[GraphEdge] = field(default_factory=list)

    def add_node(self, node: GraphNode) -> None:
        self.nodes.setdefault(node.id, node)


class _Builder:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.graph = FlowGraph(flow.name)

    # --- helpers ---------------------------------------------------------------------------------------

    def prompt_text(self, prompt_ids: Iterable[str], limit: int = 48) -> str:
        """The first prompt's words in the flow's default language, shortened: what the caller hears."""
        for pid in prompt_ids:
            variants = self.flow.prompts.get(pid)
            if not variants:
                return f"[{pid}]"
            variant = variants.get(self.flow.language) or next(iter(variants.values()))
            text = variant.text or f"[{pid}]"
            return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
        return ""

    def target(self, ref: str) -> str:
        """Graph id for a node reference; a reference into another flow gets one box per flow."""
        if ":" in ref:
            other, node = ref.split(":", 1)
            if other != self.flow.name:
                gid = f"flow:{other}"
                self.graph.add_node(GraphNode(gid, "flow", other))
                return gid
            return node
        return ref

    def edge(
        self,
        src: str,
        ref: str | None,
        kind: EdgeKind,
        label: str = "",
        metric: EdgeMetric | None = None,
        key: str = "next",
    ) -> None:
        if ref is None:
            return
        dst = self.target(ref)
        if ":" in ref and dst.startswith("flow:"):
            label = f"{label} → {ref.split(':', 1)[1]}".strip(" →") if label else f"→ {ref.split(':', 1)[1]}"
        self.graph.edges.append(GraphEdge(src, dst, kind, label, metric, key))

    # --- nodes ----------------------------------------------------------------------------------------

    def build(self) -> FlowGraph:
        for node_id, node in self.flow.nodes.items():
            self.add(node_id, node, start=node_id == self.flow.start)
        # A flow that does not validate can still be drawn: an undefined target shows as a "missing" box.
        for edge in self.graph.edges:
            if edge.dst not in self.graph.nodes:
                self.graph.add_node(GraphNode(edge.dst, "missing", edge.dst, ("undefined node",)))
        self.graph.edges = _only_telling_metrics(self.graph.edges)
        return self.graph

    def add(self, nid: str, node: Node, start: bool = False) -> None:
        kind = node.type
        details = list(self.describe(node))
        description = getattr(node, "description", "")
        if description:
            details.insert(0, description if len(description) <= 48 else description[:47] + "…")
        self.graph.add_node(GraphNode(nid, kind, nid, tuple(d for d in details if d), start))
        for way in node.exits(self.flow.language):
            count = way.count
            metric = None if count is None else EdgeMetric(count.metric, count.target or nid, count.key)
            if way.inline is not None:
                child = f"{nid}.{way.target}"  # the engine's name for an inline option node
                self.graph.edges.append(GraphEdge(nid, child, way.kind, way.label, metric, way.key))
                self.add(child, way.inline)
            elif way.verbs and way.target in MENU_VERBS:
                dst = self.verb_node(nid, way.target)
                self.graph.edges.append(GraphEdge(nid, dst, way.kind, way.label, metric, way.key))
            else:
                self.edge(nid, way.target, way.kind, way.label, metric, way.key)

    def describe(self, node: object) -> Iterable[str]:
        if isinstance(node, PlayNode):
            yield f"“{self.prompt_text(node.prompts)}”"
        elif isinstance(node, MenuNode):
            yield f"“{self.prompt_text(node.greeting)}”"
            yield f"timeout {node.timeout:g}s · retries {node.no_input.retries}/{node.invalid.retries}"
        elif isinstance(node, SayNode):
            yield f"say {node.mode} {node.value}"
        elif isinstance(node, SetNode):
            yield ", ".join(f"{k}={v}" for k, v in node.variables.items())
        elif isinstance(node, InputNode):
            yield f"“{self.prompt_text(node.prompts)}”"
            yield f"→ ${{{node.variable}}} ({node.min_length}-{node.max_length} digits)"
        elif isinstance(node, RouteNode):
            yield f"{len(node.rules)} rule(s)"
        elif isinstance(node, LanguageNode):
            yield " · ".join(f"{d}={lang}" for d, lang in node.options.items())
        elif isinstance(node, LookupNode):
            yield f"{node.method} {node.url}"
        elif isinstance(node, TransferNode):
            yield f"queue {node.queue}" if node.queue else f"ext {node.extension or node.dial}"
            if node.record:
                yield "recorded"
        elif isinstance(node, ParkNode):
            yield f"lot {node.lot} · {node.timeout:g}s"
        elif isinstance(node, HoldNode):
            yield f"moh {node.music_class} · max {node.max:g}s"
        elif isinstance(node, RecordNode):
            yield f"recording: {node.action}"
        elif isinstance(node, VoicemailNode):
            yield f"mailbox {node.mailbox}"
        elif isinstance(node, CallbackNode):
            yield f"queue {node.queue}"
        elif isinstance(node, HangupNode) and node.prompts:
            yield f"“{self.prompt_text(node.prompts)}”"

    def verb_node(self, nid: str, verb: str) -> str:
        """repeat -> the menu itself; back/top -> a small node of their own (where they lead depends on the call)."""
        if verb == "repeat":
            return nid
        verb_id = f"{nid}.{verb}"
        self.graph.add_node(GraphNode(verb_id, "verb", verb, ("previous menu" if verb == "back" else "first menu",)))
        return verb_id


def _only_telling_metrics(edges: list[GraphEdge]) -> list[GraphEdge]:
    """Drop the metric of edges the counters cannot tell apart, so traffic never puts one count on several arrows:
    ways out of one node with the same exit reason (route rules other than hours, languages, the two kinds of
    exhaustion), retry loops (retries are not exits), and transfers that share a target with another node."""
    from dataclasses import replace

    keys_by_metric: dict[EdgeMetric, set[str]] = {}
    transfer_nodes: dict[str, set[str]] = {}
    for edge in edges:
        if edge.metric is not None:
            keys_by_metric.setdefault(edge.metric, set()).add(edge.key)
            if edge.metric.metric == "transfer":
                transfer_nodes.setdefault(edge.metric.node, set()).add(edge.src)
    result = []
    for edge in edges:
        metric = edge.metric
        if metric is not None and (
            len(keys_by_metric[metric]) > 1
            or edge.key.startswith("retry:")
            or (metric.metric == "transfer" and len(transfer_nodes[metric.node]) > 1)
        ):
            edge = replace(edge, metric=None)
        result.append(edge)
    return result


def build_graph(flow: Flow) -> FlowGraph:
    """The boxes and arrows of one flow."""
    return _Builder(flow).build()

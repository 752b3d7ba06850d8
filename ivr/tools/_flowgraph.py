"""A flow as a plain graph (boxes and arrows), independent of how it is drawn.

Rules for this file:
- This is the only place that knows which fields of which node kind lead where. The DOT and Mermaid writers
  (`_dot.py`, `_mermaid.py`) and the coverage report of `test-flows` all read the same `FlowGraph`, so a new
  branch added here shows up in every picture and in the coverage at once.
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
    Flow,
    GotoNode,
    HangupNode,
    HoldNode,
    InputNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    MenuOption,
    Node,
    ParkNode,
    PlayNode,
    RecordNode,
    Retry,
    RouteNode,
    RouteRule,
    SayNode,
    SetNode,
    TransferNode,
    VoicemailNode,
)

# How an edge is drawn. Branch kinds are the ones the issue wants styled apart (and counted by coverage).
EdgeKind = Literal[
    "next",
    "option",
    "direct_dial",
    "verb",
    "rule",
    "closed",
    "open",
    "else",
    "no_input",
    "invalid",
    "exhausted",
    "busy",
    "no_answer",
    "unavailable",
    "timeout",
    "error",
    "failure",
]
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

    def exit_edge(
        self, src: str, ref: str | None, kind: EdgeKind, reason: str, label: str = "", key: str = "next"
    ) -> None:
        self.edge(src, ref, kind, label, EdgeMetric("exit", src, reason), key)

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
        getattr(self, f"edges_{kind}")(nid, node)

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

    def edges_play(self, nid: str, node: PlayNode) -> None:
        self.exit_edge(nid, node.next, "next", "next")

    edges_say = edges_play
    edges_set = edges_play
    edges_record = edges_play
    edges_hold = edges_play

    def edges_voicemail(self, nid: str, node: VoicemailNode) -> None:
        self.exit_edge(nid, node.next, "next", "next")
        self.exit_edge(nid, node.on_failure, "failure", "storage_error", "not stored", key="failure")

    def verb_node(self, nid: str, verb: str) -> str:
        """repeat -> the menu itself; back/top -> a small node of their own (where they lead depends on the call)."""
        if verb == "repeat":
            return nid
        verb_id = f"{nid}.{verb}"
        self.graph.add_node(GraphNode(verb_id, "verb", verb, ("previous menu" if verb == "back" else "first menu",)))
        return verb_id

    def edges_menu(self, nid: str, node: MenuNode) -> None:
        for digits, option in node.options.items():
            metric = EdgeMetric("choice", nid, digits)
            if isinstance(option, str) and option in MENU_VERBS:
                self.graph.edges.append(
                    GraphEdge(
                        nid, self.verb_node(nid, option), "verb", f"{digits}: {option}", metric, f"option:{digits}"
                    )
                )
            elif isinstance(option, str):
                self.edge(nid, option, "option", digits, metric, f"option:{digits}")
            elif isinstance(option, MenuOption):
                self.edge(
                    nid,
                    option.goto,
                    "option",
                    f"{digits}: {option.label}" if option.label else digits,
                    metric,
                    f"option:{digits}",
                )
            else:  # an inline node
                child = f"{nid}.{digits}"
                self.graph.edges.append(GraphEdge(nid, child, "option", digits, metric, f"option:{digits}"))
                self.add(child, option)
        if node.direct_dial:
            self.edge(
                nid,
                node.direct_dial.target,
                "direct_dial",
                f"dial {node.direct_dial.pattern}",
                EdgeMetric("choice", nid, "direct_dial"),
                "direct_dial",
            )
        retries: tuple[tuple[EdgeKind, Retry], ...] = (("no_input", node.no_input), ("invalid", node.invalid))
        for branch, retry in retries:
            label = "no input" if branch == "no_input" else "invalid"
            if retry.retries:
                # The retry loop: the caller hears the menu again.
                self.graph.edges.append(
                    GraphEdge(
                        nid,
                        nid,
                        branch,
                        f"{label} ×{retry.retries}",
                        EdgeMetric("exit", nid, branch),
                        f"retry:{branch}",
                    )
                )
            if retry.exhausted in MENU_VERBS:
                self.graph.edges.append(
                    GraphEdge(
                        nid,
                        self.verb_node(nid, retry.exhausted),
                        "exhausted",
                        f"{label}: exhausted → {retry.exhausted}",
                        EdgeMetric("exit", nid, "exhausted"),
                        f"exhausted:{branch}",
                    )
                )
            else:
                self.edge(
                    nid,
                    retry.exhausted,
                    "exhausted",
                    f"{label}: exhausted",
                    EdgeMetric("exit", nid, "exhausted"),
                    f"exhausted:{branch}",
                )

    def edges_input(self, nid: str, node: InputNode) -> None:
        self.exit_edge(nid, node.next, "next", "valid", "valid", key="valid")
        self.exit_edge(nid, node.on_failure, "exhausted", "exhausted", f"failed ×{node.retries + 1}", key="failure")

    def edges_route(self, nid: str, node: RouteNode) -> None:
        for index, rule in enumerate(node.rules):
            kind, label = _rule_label(rule)
            reason = "closed" if kind == "closed" else ("open" if kind == "open" else "next")
            self.exit_edge(nid, rule.goto, kind, reason, label, key=f"rule:{index}")
        self.exit_edge(nid, node.else_, "else", "next", "else", key="else")

    def edges_language(self, nid: str, node: LanguageNode) -> None:
        for digit, language in node.options.items():
            self.exit_edge(nid, node.next, "option", "valid", f"{digit}: {language}", key=f"language:{language}")
        fallback = node.default or self.flow.language
        self.exit_edge(nid, node.next, "exhausted", "exhausted", f"no choice: {fallback}", key="language:default")

    def edges_lookup(self, nid: str, node: LookupNode) -> None:
        self.exit_edge(nid, node.next, "next", "next", "ok")
        self.exit_edge(nid, node.on_error, "error", "error", "lookup failed", key="error")

    def edges_transfer(self, nid: str, node: TransferNode) -> None:
        # Every way out of a transfer exits with reason "next"; ivr_transfers_total{target,result} tells them apart.
        target = node.queue or node.extension or node.dial or ""
        for ref, kind, label, key in (
            (node.on_busy, "busy", "busy", "on_busy"),
            (node.on_no_answer, "no_answer", "no answer", "on_no_answer"),
            (node.on_unavailable, "unavailable", "unavailable", "on_unavailable"),
            (node.on_timeout, "timeout", "queue timeout", "on_timeout"),
            (node.next, "next", "after the call", "next"),
        ):
            self.edge(nid, ref, kind, label, EdgeMetric("transfer", target, key), key)  # type: ignore[arg-type]

    def edges_park(self, nid: str, node: ParkNode) -> None:
        # Park ends the session; the comeback arrives as a new call at that node (agi://.../flow?node=...).
        self.exit_edge(nid, node.comeback, "timeout", "next", "not retrieved (comeback)", key="comeback")

    def edges_callback(self, nid: str, node: CallbackNode) -> None:
        self.exit_edge(nid, node.next, "next", "valid", "requested")
        self.exit_edge(nid, node.on_failure, "failure", "exhausted", "failed", key="failure")

    def edges_goto(self, nid: str, node: GotoNode) -> None:
        self.exit_edge(nid, node.target, "next", "next")

    def edges_hangup(self, nid: str, node: HangupNode) -> None:
        return None


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


def _rule_label(rule: RouteRule) -> tuple[EdgeKind, str]:
    if rule.open:
        return "open", f"open ({rule.open})"
    if rule.closed:
        return "closed", f"closed ({rule.closed})"
    if rule.holiday:
        return "closed", f"holiday ({rule.holiday})"
    if rule.caller:
        return "rule", f"caller ~ {rule.caller}"
    if rule.language:
        return "rule", f"language = {rule.language}"
    if rule.equals is not None:
        return "rule", f"{rule.variable} = {rule.equals}"
    if rule.matches is not None:
        return "rule", f"{rule.variable} ~ {rule.matches}"
    return "rule", f"{rule.variable} in {', '.join(rule.in_ or [])}"


def build_graph(flow: Flow) -> FlowGraph:
    """The boxes and arrows of one flow."""
    return _Builder(flow).build()

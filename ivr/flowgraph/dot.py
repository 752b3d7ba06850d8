"""Write a `FlowGraph` as Graphviz DOT (through the `graphviz` binding) and render it with Debian's `dot`.

Rules for this file:
- Looks only: shapes and colours per node kind, line styles per edge kind, widths from traffic.
  What leads where each node kind says itself (`exits()` in `ivr.flow.model`); `graph.py` makes the graph.
- Labels are HTML-like and every piece of flow text is escaped (a prompt saying "<b>" must not break the picture).
- `dot` missing is a `GraphvizMissing` error that says how to install it; DOT text itself needs no binary.
"""

from __future__ import annotations

import html

import graphviz

from ivr.flowgraph.graph import FlowGraph, GraphEdge
from ivr.flowgraph.traffic import Traffic


class GraphvizMissing(RuntimeError):
    """The Graphviz `dot` program is not installed."""


# kind -> (shape, fill colour, border colour)
NODE_STYLE: dict[str, tuple[str, str, str]] = {
    "menu": ("box", "#d6e9ff", "#1f5fa8"),
    "language": ("hexagon", "#d6e9ff", "#1f5fa8"),
    "input": ("box", "#e4f5e0", "#3b7d2c"),
    "play": ("note", "#f4f4f4", "#666666"),
    "say": ("note", "#f4f4f4", "#666666"),
    "set": ("box", "#f4f4f4", "#999999"),
    "route": ("diamond", "#fff3c4", "#a67c00"),
    "lookup": ("cylinder", "#efe3ff", "#6a3fb0"),
    "transfer": ("cds", "#d7f5dd", "#1e7b34"),
    "park": ("box3d", "#ffe7cc", "#b35c00"),
    "hold": ("box3d", "#ffe7cc", "#b35c00"),
    "record": ("box", "#ffe0e0", "#b03030"),
    "voicemail": ("tab", "#fde2f3", "#a3307a"),
    "callback": ("tab", "#fde2f3", "#a3307a"),
    "goto": ("box", "#ffffff", "#999999"),
    "hangup": ("doubleoctagon", "#ffd6d6", "#b03030"),
    "flow": ("folder", "#e8e8e8", "#333333"),
    "verb": ("plain", "#ffffff", "#666666"),
    "missing": ("box", "#ffffff", "#c00000"),
}

# edge kind -> (colour, style, arrowhead)
EDGE_STYLE: dict[str, tuple[str, str, str]] = {
    "next": ("#333333", "solid", "normal"),
    "option": ("#1f5fa8", "solid", "normal"),
    "direct_dial": ("#1f5fa8", "bold", "normal"),
    "verb": ("#1f5fa8", "dashed", "normal"),
    "rule": ("#a67c00", "solid", "normal"),
    "open": ("#1e7b34", "solid", "normal"),
    "closed": ("#7b2fbf", "dashed", "normal"),
    "else": ("#777777", "solid", "empty"),
    "no_input": ("#888888", "dotted", "normal"),
    "invalid": ("#d46a00", "dotted", "normal"),
    "exhausted": ("#c00000", "dashed", "normal"),
    "busy": ("#8b4513", "dashed", "tee"),
    "no_answer": ("#8b4513", "dashed", "tee"),
    "unavailable": ("#8b4513", "dashed", "tee"),
    "timeout": ("#8b4513", "dotted", "normal"),
    "error": ("#c00000", "dotted", "normal"),
    "failure": ("#c00000", "dotted", "normal"),
}


def _dot_id(gid: str) -> str:
    # "a:b" in DOT edge statements means node a, port b; other flows' boxes are "flow:<name>".
    return gid.replace(":", "/")


def _fmt_count(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def _node_label(title: str, kind: str, details: tuple[str, ...], start: bool, hangups: float | None) -> str:
    rows = [f'<B>{html.escape(title)}</B>']
    rows.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{"▶ start · " if start else ""}{html.escape(kind)}</FONT>')
    rows += [f'<FONT POINT-SIZE="10">{html.escape(d)}</FONT>' for d in details]
    if hangups:
        rows.append(f'<FONT POINT-SIZE="10" COLOR="#c00000">✆ {_fmt_count(hangups)} hung up here</FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _edge_weight(edge: GraphEdge, traffic: Traffic | None) -> float | None:
    if traffic is None or edge.metric is None:
        return None
    return traffic.count(edge.metric.metric, edge.metric.node, edge.metric.key)


def to_digraph(graph: FlowGraph, traffic: Traffic | None = None) -> graphviz.Digraph:
    dot = graphviz.Digraph(name=graph.flow, comment=f"IVR flow {graph.flow}")
    dot.attr(
        rankdir="TB",
        fontname="Helvetica",
        label=f"flow: {graph.flow}",
        labelloc="t",
        fontsize="16",
        nodesep="0.35",
        ranksep="0.55",
        pad="0.3",
    )
    dot.attr("node", fontname="Helvetica", fontsize="11", style="filled", margin="0.15,0.06")
    dot.attr("edge", fontname="Helvetica", fontsize="10")
    for node in graph.nodes.values():
        shape, fill, border = NODE_STYLE.get(node.kind, ("box", "#ffffff", "#000000"))
        hangups = traffic.hangups(node.id) if traffic else None
        attrs = {"shape": shape, "fillcolor": fill, "color": border}
        if node.start:
            attrs["penwidth"] = "2.5"
        if node.kind == "verb":
            attrs["style"] = ""
        if node.kind == "record":
            attrs["style"] = "filled,rounded"
        if shape == "cds":
            attrs["margin"] = "0.3,0.06"  # the arrow point eats into the label otherwise
        if node.kind == "verb":
            label = f"<<B>{html.escape(node.title)}</B>>"
        else:
            label = _node_label(node.title, node.kind, node.details, node.start, hangups)
        dot.node(_dot_id(node.id), label=label, **attrs)
    weights = [w for w in (_edge_weight(e, traffic) for e in graph.edges) if w]
    top = max(weights, default=0.0)
    loops: dict[str, list[str]] = {}
    for edge in graph.edges:
        colour, style, arrow = EDGE_STYLE.get(edge.kind, ("#000000", "solid", "normal"))
        attrs = {"color": colour, "fontcolor": colour, "style": style, "arrowhead": arrow}
        label = edge.label
        weight = _edge_weight(edge, traffic)
        if traffic is not None and edge.metric is not None:
            count = weight or 0.0
            label = f"{label} ({_fmt_count(count)})" if label else f"({_fmt_count(count)})"
            # Width grows with the share of the busiest edge; an edge nobody took stays hairline-thin.
            attrs["penwidth"] = f"{0.6 + 5.4 * (count / top) if top else 0.6:.2f}"
        if edge.src == edge.dst:
            # Several self-loops (repeat, no-input and invalid retries) would stack their labels on top of each
            # other; one loop carries all of them, one per line.
            loops.setdefault(edge.src, []).append(label)
            continue
        if edge.kind in ("no_input", "invalid", "exhausted", "closed", "error", "failure", "else"):
            attrs["weight"] = "0"  # branches should not pull the main path out of line
        # HTML-like label: flow text (regexes with backslashes, quotes) is shown literally, never as DOT escapes.
        dot.edge(_dot_id(edge.src), _dot_id(edge.dst), label=f"<{html.escape(label)}>" if label else "", **attrs)
    for node_id, labels in loops.items():
        text = "<BR/>".join(html.escape(label) for label in labels)
        dot.edge(
            _dot_id(node_id), _dot_id(node_id), label=f"<{text}>", color="#888888", fontcolor="#666666", style="dotted"
        )
    return dot


def render_binary(dot: graphviz.Digraph, fmt: str) -> bytes:
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(
            "the Graphviz program `dot` is not installed; install it (Debian/Ubuntu: apt-get install graphviz) "
            "or use --format mermaid or --format dot, which need no binary"
        ) from None

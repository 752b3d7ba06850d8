"""Write a `FlowGraph` as Mermaid flowchart text (renders in GitHub/GitLab Markdown, no binary needed).

Rules for this file:
- Mermaid ids are generated (`n0`, `n1`, ...): flow node ids such as `end` or `graph` are Mermaid keywords.
- Label text is quoted; `#` becomes `#35;` and `"` becomes `#quot;`, so flow text cannot end a label, start an
  entity or inject syntax.
- Edge colours go through `linkStyle <index>`, so edges are counted in the order they are written.
"""

from __future__ import annotations

from ivr.flowgraph.graph import FlowGraph
from ivr.flowgraph.traffic import Traffic

# kind -> (opening, closing) bracket pair of the Mermaid shape
_SHAPES: dict[str, tuple[str, str]] = {
    "menu": ("[", "]"),
    "language": ("{{", "}}"),
    "input": ("[/", "/]"),
    "play": (">", "]"),
    "say": (">", "]"),
    "set": ("[", "]"),
    "route": ("{", "}"),
    "lookup": ("[(", ")]"),
    "transfer": ("([", "])"),
    "park": ("[[", "]]"),
    "hold": ("[[", "]]"),
    "record": ("(", ")"),
    "voicemail": ("[\\", "\\]"),
    "callback": ("[\\", "\\]"),
    "goto": ("[", "]"),
    "hangup": ("(((", ")))"),
    "flow": ("[[", "]]"),
    "verb": ("(", ")"),
    "missing": ("[", "]"),
}
_CLASSES = {
    "menu": "fill:#d6e9ff,stroke:#1f5fa8",
    "language": "fill:#d6e9ff,stroke:#1f5fa8",
    "input": "fill:#e4f5e0,stroke:#3b7d2c",
    "play": "fill:#f4f4f4,stroke:#666",
    "say": "fill:#f4f4f4,stroke:#666",
    "set": "fill:#f4f4f4,stroke:#999",
    "route": "fill:#fff3c4,stroke:#a67c00",
    "lookup": "fill:#efe3ff,stroke:#6a3fb0",
    "transfer": "fill:#d7f5dd,stroke:#1e7b34",
    "park": "fill:#ffe7cc,stroke:#b35c00",
    "hold": "fill:#ffe7cc,stroke:#b35c00",
    "record": "fill:#ffe0e0,stroke:#b03030",
    "voicemail": "fill:#fde2f3,stroke:#a3307a",
    "callback": "fill:#fde2f3,stroke:#a3307a",
    "goto": "fill:#fff,stroke:#999",
    "hangup": "fill:#ffd6d6,stroke:#b03030",
    "flow": "fill:#e8e8e8,stroke:#333",
    "verb": "fill:#fff,stroke:#666,stroke-dasharray:3",
    "missing": "fill:#fff,stroke:#c00000,stroke-dasharray:4",
}
# edge kind -> (arrow, link style)
_EDGES: dict[str, tuple[str, str]] = {
    "next": ("-->", "stroke:#333"),
    "option": ("-->", "stroke:#1f5fa8"),
    "direct_dial": ("==>", "stroke:#1f5fa8"),
    "verb": ("-.->", "stroke:#1f5fa8"),
    "rule": ("-->", "stroke:#a67c00"),
    "open": ("-->", "stroke:#1e7b34"),
    "closed": ("-.->", "stroke:#7b2fbf"),
    "else": ("-->", "stroke:#777"),
    "no_input": ("-.->", "stroke:#888"),
    "invalid": ("-.->", "stroke:#d46a00"),
    "exhausted": ("-.->", "stroke:#c00000"),
    "busy": ("-.->", "stroke:#8b4513"),
    "no_answer": ("-.->", "stroke:#8b4513"),
    "unavailable": ("-.->", "stroke:#8b4513"),
    "timeout": ("-.->", "stroke:#8b4513"),
    "error": ("-.->", "stroke:#c00000"),
    "failure": ("-.->", "stroke:#c00000"),
}


def _text(value: str) -> str:
    # Mermaid entity codes start with "#": escape it first, then the quote that would end the label.
    return value.replace("#", "#35;").replace('"', "#quot;").replace("\n", " ")


def to_mermaid(graph: FlowGraph, traffic: Traffic | None = None) -> str:
    ids = {gid: f"n{i}" for i, gid in enumerate(graph.nodes)}
    lines = ["flowchart TD", f"%% IVR flow {_text(graph.flow)}"]  # the diagram type comes first
    for gid, node in graph.nodes.items():
        opening, closing = _SHAPES.get(node.kind, ("[", "]"))
        parts = [f"<b>{node.title}</b>", ("▶ start · " if node.start else "") + node.kind, *node.details]
        if traffic and traffic.hangups(gid):
            parts.append(f"✆ {traffic.hangups(gid):.0f} hung up here")
        if node.kind == "verb":
            parts = [node.title]
        lines.append(f'    {ids[gid]}{opening}"{_text("<br/>".join(parts))}"{closing}')
    styles: list[str] = []
    top = 0.0
    if traffic:
        top = max(
            (traffic.count(e.metric.metric, e.metric.node, e.metric.key) or 0.0 for e in graph.edges if e.metric),
            default=0.0,
        )
    for index, edge in enumerate(graph.edges):
        arrow, style = _EDGES.get(edge.kind, ("-->", "stroke:#000"))
        label = edge.label
        if traffic is not None and edge.metric is not None:
            count = traffic.count(edge.metric.metric, edge.metric.node, edge.metric.key) or 0.0
            label = f"{label} ({count:.0f})" if label else f"({count:.0f})"
            style += f",stroke-width:{1 + 7 * (count / top) if top else 1:.1f}px"
        text = f'|"{_text(label)}"|' if label else ""
        lines.append(f"    {ids[edge.src]} {arrow}{text} {ids[edge.dst]}")
        styles.append(f"    linkStyle {index} {style}")
    lines += styles
    for kind, css in _CLASSES.items():
        members = [ids[gid] for gid, node in graph.nodes.items() if node.kind == kind]
        if members:
            lines.append(f"    classDef {kind} {css}")
            lines.append(f"    class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"

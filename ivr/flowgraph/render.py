"""`render(flow, fmt, traffic=None)`: draw a flow as SVG, PNG, DOT or Mermaid.

Rules for this file:
- SVG and PNG come back as bytes, DOT and Mermaid as text. Only SVG and PNG need Graphviz's `dot`; when it is
  missing the error (`GraphvizMissing`) says how to install it, and the other two formats keep working.
- This is the stable entry point: the `graph` command (`ivr.tools.graph`) and the HTTP API (through the service's
  `draw_flow`) both call it.
"""

from __future__ import annotations

from typing import Literal

from ivr.flow.model import Flow
from ivr.flowgraph.dot import render_binary, to_digraph
from ivr.flowgraph.graph import build_graph
from ivr.flowgraph.mermaid import to_mermaid
from ivr.flowgraph.traffic import Traffic

Format = Literal["svg", "png", "dot", "mermaid"]
FORMATS: tuple[str, ...] = ("svg", "png", "dot", "mermaid")
MEDIA_TYPES: dict[str, str] = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "dot": "text/vnd.graphviz",
    "mermaid": "text/plain; charset=utf-8",
}

__all__ = ["render", "Format", "FORMATS", "MEDIA_TYPES"]


def render(flow: Flow, fmt: Format = "svg", traffic: Traffic | None = None) -> bytes | str:
    """Draw `flow`. `fmt`: svg/png -> bytes (needs Graphviz `dot`), dot/mermaid -> str.
    Raises ValueError for an unknown format and GraphvizMissing when `dot` is needed but absent."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
    graph = build_graph(flow)
    if fmt == "mermaid":
        return to_mermaid(graph, traffic)
    digraph = to_digraph(graph, traffic)
    if fmt == "dot":
        return digraph.source
    return render_binary(digraph, fmt)

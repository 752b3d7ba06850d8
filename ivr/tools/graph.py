"""`ivr graph FLOW`: draw a flow as SVG, PNG, DOT or Mermaid, optionally weighted by live traffic.

Rules for this file:
- `render(flow, fmt, traffic=None)` is the stable entry point (the HTTP API serves its result); SVG and PNG come
  back as bytes, DOT and Mermaid as text.
- Only SVG and PNG need Graphviz's `dot`; when it is missing the error says how to install it, and the other two
  formats keep working.
- Traffic comes from the service's own metrics (`--metrics URL|FILE`): edge widths and counts from
  ivr_menu_choices_total / ivr_node_exits_total, hang-ups per node from ivr_node_exits_total{reason="hangup"}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Literal

from ivr.flow.model import Flow
from ivr.tools._dot import GraphvizMissing, render_binary, to_digraph
from ivr.tools._flowgraph import build_graph
from ivr.tools._mermaid import to_mermaid
from ivr.tools._traffic import Traffic, TrafficError, load_traffic, parse_traffic, traffic_from_registry

Format = Literal["svg", "png", "dot", "mermaid"]
FORMATS: tuple[str, ...] = ("svg", "png", "dot", "mermaid")
MEDIA_TYPES: dict[str, str] = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "dot": "text/vnd.graphviz",
    "mermaid": "text/plain; charset=utf-8",
}

__all__ = [
    "render",
    "FORMATS",
    "MEDIA_TYPES",
    "GraphvizMissing",
    "Traffic",
    "TrafficError",
    "load_traffic",
    "parse_traffic",
    "traffic_from_registry",
    "configure",
    "run",
]


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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="flow name (in --flows-dir) or path to a flow .yaml file")
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="output format (default: from the -o file extension, else svg)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    parser.add_argument(
        "--metrics", metavar="URL|FILE", help="weight edges by traffic: the service's /metrics URL or a saved scrape"
    )
    parser.add_argument("--flows-dir", type=Path, default=None, help="directory of flows (default: config/flows)")


def _choose_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output:
        suffix = Path(args.output).suffix.lower().lstrip(".")
        if suffix in ("mmd", "mermaid"):
            return "mermaid"
        if suffix in ("gv", "dot"):
            return "dot"
        if suffix in ("svg", "png"):
            return suffix
    return "svg"


def run(args: argparse.Namespace) -> int:
    from ivr.tools._flowsource import FlowSourceError, resolve

    fmt = _choose_format(args)
    try:
        flow, _ = resolve(args.flow, args.flows_dir, check=False)
        traffic = load_traffic(args.metrics, flow.name) if args.metrics else None
        result = render(flow, fmt, traffic)  # type: ignore[arg-type]
    except (FlowSourceError, TrafficError, GraphvizMissing) as exc:
        print(f"graph: {exc}", file=sys.stderr)
        return 1
    data = result.encode("utf-8") if isinstance(result, str) else result
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"graph: wrote {args.output} ({fmt}, {len(data)} bytes)", file=sys.stderr)
    elif fmt == "png" and sys.stdout.isatty():
        print("graph: PNG is binary; give -o FILE or redirect standard output", file=sys.stderr)
        return 2
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0

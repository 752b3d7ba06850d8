"""`ivr graph FLOW`: draw a flow as SVG, PNG, DOT or Mermaid, optionally weighted by live traffic.

Rules for this file:
- The drawing itself is `ivr.flowgraph` (`ivr.flowgraph.render.render`, which the HTTP API serves too); this
  module is the command line over it and re-exports `render` and friends for scripts.
- Only SVG and PNG need Graphviz's `dot`; when it is missing the error says how to install it, and the other two
  formats keep working.
- Traffic comes from the service's own metrics (`--metrics URL|FILE`): edge widths and counts from
  ivr_menu_choices_total / ivr_node_exits_total, hang-ups per node from ivr_node_exits_total{reason="hangup"}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr.flowgraph.dot import GraphvizMissing
from ivr.flowgraph.render import FORMATS, MEDIA_TYPES, Format, render
from ivr.flowgraph.traffic import Traffic, TrafficError, load_traffic, parse_traffic, traffic_from_registry

__all__ = [
    "render",
    "Format",
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
    from ivr.tools.flowsource import FlowSourceError, resolve

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

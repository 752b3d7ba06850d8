"""Draw a Grafana dashboard JSON as an SVG picture (for docs, without a Grafana server).

Rules for this file:
- Series that the panel's overrides put on a right-hand axis (byFrameRefID + custom.axisPlacement) get their own
  scale and unit there, drawn dashed, as Grafana gives them their own axis.
- Input is the dashboard JSON only (config/grafana/dashboards/*.json); the layout comes from each panel's gridPos
  (24 columns; one height unit = `UNIT_H` pixels), titles and types from the panels.
- The series drawn are SAMPLE data, generated deterministically from the panel id (same JSON -> same picture), and
  the picture says so. Legends come from the panels' legendFormat with sample label values.
- Standard library only: the SVG is written as text. Every text from the JSON is XML-escaped.
Usage: python -m ivr.tools.dashboard_preview config/grafana/dashboards/ivr.json -o docs/dashboard.svg
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

WIDTH = 1600
MARGIN = 16
GAP = 8
UNIT_H = 30
HEADER_H = 64
COL_W = (WIDTH - 2 * MARGIN) / 24

BG, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#d8d9e0", "#8e8e9a"
PALETTE = ("#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a")
STATE_COLOURS = {"available": "#73bf69", "busy": "#5794f2", "paused": "#ff9830", "unavailable": "#f2495c"}

# Sample label values used to expand legendFormat templates such as "{{queue}} 5m".
SAMPLE_LABELS: dict[str, tuple[str, ...]] = {
    "flow": ("main", "after-hours"),
    "queue": ("sales", "support"),
    "state": ("available", "busy", "paused", "unavailable"),
    "outcome": ("transferred", "contained", "voicemail", "callback", "parked", "abandoned", "error"),
    "node": ("welcome", "main_menu", "billing_menu", "to_sales", "voicemail", "goodbye"),
    "reason": ("no_input", "invalid"),
    "option": ("1", "2", "3"),
    "result": ("ok", "failed"),
    "target": ("sales", "support"),
    "event": ("Newexten", "VarSet", "Hangup"),
    "action": ("Originate", "QueueStatus"),
    "command": ("GET DATA", "STREAM FILE"),
    "lot": ("default",),
    "version": ("flows-2026-11-29",),
    "instance": ("ivr-a", "ivr-b"),
    "pbx": ("pbx1", "pbx2"),
}
# `result` means different things per metric: sample values that fit the metric the query reads.
SAMPLE_RESULTS: dict[str, tuple[str, ...]] = {
    "ivr_queue_calls": ("answered", "abandoned", "timeout"),
    "ivr_agi_command_results": ("hangup", "timeout"),
    "ivr_agi_connections": ("ok", "noroute"),
    "ivr_lookups": ("ok", "timeout"),
    "ivr_callbacks": ("requested", "completed"),
}
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


def _box(grid: dict[str, int]) -> Box:
    return Box(
        MARGIN + grid["x"] * COL_W + GAP / 2,
        HEADER_H + grid["y"] * UNIT_H + GAP / 2,
        grid["w"] * COL_W - GAP,
        grid["h"] * UNIT_H - GAP,
    )


def _text(
    x: float, y: float, s: str, size: int = 12, fill: str = TEXT, anchor: str = "start", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{escape(s)}</text>'
    )


def _sample_values(label: str, expr: str) -> tuple[str, ...]:
    """Sample values for `label`, narrowed by the query's own matchers (result!="ok", reason=~"a|b", ...)."""
    values = SAMPLE_LABELS.get(label, ("a", "b"))
    if label == "result":
        values = next((v for metric, v in SAMPLE_RESULTS.items() if metric in expr), values)
    for name, op, pattern in _MATCHER.findall(expr):
        if name != label or "$" in pattern:
            continue
        if op == "=":
            values = (pattern,)
        elif op == "!=":
            values = tuple(v for v in values if v != pattern)
        elif op == "=~":
            values = tuple(pattern.split("|"))
        else:
            values = tuple(v for v in values if not re.fullmatch(pattern, v))
    return values or ("other",)


def _legends(panel: dict[str, Any]) -> list[str]:
    """Series names for a panel: each target's legendFormat expanded with sample label values (at most 7)."""
    return [name for name, _ in _legends_by_target(panel)]


def _legends_by_target(panel: dict[str, Any]) -> list[tuple[str, str]]:
    """(series name, refId of the target drawing it) for every series of a panel."""
    out: list[tuple[str, str]] = []
    for target in panel.get("targets", []):
        names = _target_legends(target)
        out.extend((name, target.get("refId", "")) for name in names)
    return out


def _target_legends(target: dict[str, Any]) -> list[str]:
    fmt = target.get("legendFormat") or target.get("refId", "")
    labels = list(dict.fromkeys(_TEMPLATE.findall(fmt)))
    if not labels:
        return [fmt or "value"]
    names: list[str] = []
    limit = 7 if labels[0] in ("state", "outcome", "node") else 2
    combos = list(itertools.product(*(_sample_values(label, target.get("expr", "")) for label in labels)))
    for combo in combos[:limit] if len(labels) == 1 else _spread(combos, limit):
        name = fmt
        for label, value in zip(labels, combo, strict=False):
            name = re.sub(r"\{\{\s*" + label + r"\s*\}\}", value, name)
        names.append(name)
    return names


def _right_axis(panel: dict[str, Any]) -> tuple[set[str], str | None]:
    """RefIds drawn on a right-hand axis by the panel's overrides (byFrameRefID + custom.axisPlacement=right), and
    that axis' unit: Grafana gives such series their own scale, as the preview does."""
    refs: set[str] = set()
    unit: str | None = None
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        props = {p.get("id"): p.get("value") for p in override.get("properties", [])}
        if matcher.get("id") == "byFrameRefID" and props.get("custom.axisPlacement") == "right":
            refs.add(str(matcher.get("options")))
            unit = props.get("unit", unit)
    return refs, unit


def _spread(combos: list[tuple[str, ...]], limit: int) -> list[tuple[str, ...]]:
    """Up to `limit` combinations that vary every label (node1/reason1, node2/reason2, ...) rather than the last."""
    columns = [list(dict.fromkeys(c[i] for c in combos)) for i in range(len(combos[0]))]
    return [tuple(col[k % len(col)] for col in columns) for k in range(min(limit, max(len(c) for c in columns)))]


def _format(value: float, unit: str | None) -> str:
    if value == 0:
        return "0"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.0f} s"
    if unit == "ops":
        return f"{value:.0f}/s"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _sample_range(panel: dict[str, Any]) -> tuple[float, float]:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    title = panel["title"].lower()
    if unit == "percentunit":
        if "abandon" in title and "contain" not in title:
            return 0.02, 0.14
        return 0.55, 0.95
    if unit == "s":
        if "latency" in title or "round trip" in title:
            return 0.002, 0.03
        return 5.0, 150.0 if "aht" in title or "handle" in title else 40.0
    return 0.0, 24.0


def _walk(rng: random.Random, n: int, lo: float, hi: float) -> list[float]:
    level = rng.uniform(lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.7)
    out = []
    for i in range(n):
        level += rng.uniform(-1, 1) * (hi - lo) * 0.08 + math.sin(i / 6 + rng.random()) * (hi - lo) * 0.02
        level = min(hi, max(lo, level))
        out.append(level)
    return out


def _sample_series(rng: random.Random, name: str, lo: float, hi: float, unit: str | None) -> list[float]:
    if name == "up":
        return [1.0] * 48
    if "failing" in name:
        return [0.0] * 48
    if unit == "percentunit" and "abandon" in name:
        return _walk(rng, 48, 0.02, 0.14)
    return _walk(rng, 48, lo, hi)


def _timeseries(panel: dict[str, Any], box: Box, rng: random.Random) -> Iterable[str]:
    named = _legends_by_target(panel)
    names = [name for name, _ in named]
    right_refs, right_unit = _right_axis(panel)
    on_right = [ref in right_refs for _, ref in named]
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    stacked = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}).get("stacking", {}).get("mode")
    lo, hi = _sample_range(panel)
    right_lo, right_hi = _sample_range({**panel, "fieldConfig": {"defaults": {"unit": right_unit}}})
    legend_width = sum(22 + 6.4 * len(name) for name in names)
    legend_rows = max(1, min(3, math.ceil(legend_width / (box.w - 64))))
    right_gap = 48 if any(on_right) else 0
    plot = Box(box.x + 52, box.y + 30, box.w - 64 - right_gap, box.h - 44 - 16 * legend_rows)
    series = [
        _sample_series(rng, name, right_lo, right_hi, right_unit)
        if right
        else _sample_series(rng, name, lo, hi / (len(names) if stacked == "normal" else 1), unit)
        for name, right in zip(names, on_right, strict=False)
    ]
    if stacked == "normal":
        for i in range(1, len(series)):
            series[i] = [a + b for a, b in zip(series[i], series[i - 1], strict=False)]
    left_series = [s for s, right in zip(series, on_right, strict=False) if not right] or [[1.0]]
    top = max(max(s) for s in left_series) * 1.1 if series else 1
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    if defaults.get("max") is not None:
        top = min(top, float(defaults["max"])) if unit != "percentunit" else float(defaults["max"])
    bottom = float(defaults.get("min") or 0.0)
    right_top = max((max(s) for s, r in zip(series, on_right, strict=False) if r), default=1.0) * 1.1
    for k in range(3):  # grid lines with axis labels
        value = bottom + (top - bottom) * k / 2
        y = plot.y + plot.h - plot.h * k / 2
        yield f'<line x1="{plot.x:.1f}" y1="{y:.1f}" x2="{plot.x + plot.w:.1f}" y2="{y:.1f}" stroke="{BORDER}"/>'
        yield _text(plot.x - 6, y + 4, _format(value, unit), 10, DIM, "end")
        if right_gap:
            yield _text(plot.x + plot.w + 6, y + 4, _format(right_top * k / 2, right_unit), 10, DIM)
    thresholds = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    for step in thresholds:
        if step.get("value") is not None and bottom < step["value"] < top:
            y = plot.y + plot.h - plot.h * (step["value"] - bottom) / (top - bottom)
            yield (
                f'<line x1="{plot.x:.1f}" y1="{y:.1f}" x2="{plot.x + plot.w:.1f}" y2="{y:.1f}" '
                f'stroke="{step["color"]}" stroke-dasharray="6 4" stroke-width="1.2"/>'
            )
    for i, (name, values) in enumerate(zip(names, series, strict=False)):
        colour = STATE_COLOURS.get(name, PALETTE[i % len(PALETTE)])
        low, high = (0.0, right_top) if on_right[i] else (bottom, top)
        points = " ".join(
            f"{plot.x + plot.w * j / (len(values) - 1):.1f},{plot.y + plot.h - plot.h * (v - low) / (high - low):.1f}"
            for j, v in enumerate(values)
        )
        if stacked == "normal":
            below = series[i - 1] if i else [bottom] * len(values)
            back = " ".join(
                f"{plot.x + plot.w * j / (len(values) - 1):.1f},"
                f"{plot.y + plot.h - plot.h * (v - bottom) / (top - bottom):.1f}"
                for j, v in reversed(list(enumerate(below)))
            )
            yield f'<polygon points="{points} {back}" fill="{colour}" fill-opacity="0.35" stroke="none"/>'
        dash = ' stroke-dasharray="5 3"' if on_right[i] else ""
        yield f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>'
    # legend
    x, y = plot.x, box.y + box.h - 8 - 16 * (legend_rows - 1)
    for i, name in enumerate(names):
        colour = STATE_COLOURS.get(name, PALETTE[i % len(PALETTE)])
        label = name + (" (right axis)" if on_right[i] else "")
        width = 22 + 6.4 * len(label)
        if x + width > box.x + box.w and x > plot.x:
            x, y = plot.x, y + 16
        yield f'<rect x="{x:.1f}" y="{y - 4:.1f}" width="12" height="3" fill="{colour}"/>'
        yield _text(x + 16, y, label, 11, DIM)
        x += width


def _stat(panel: dict[str, Any], box: Box, rng: random.Random) -> Iterable[str]:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit")
    steps = defaults.get("thresholds", {}).get("steps", [{"color": "#5794f2"}])
    mappings = defaults.get("mappings", [])
    if mappings:  # value mappings (AMI UP/DOWN, reload OK/FAILING): show the healthy one
        options = mappings[0]["options"]
        chosen = next((o for o in options.values() if o.get("color") == "green"), options[max(options)])
        yield _text(
            box.x + box.w / 2, box.y + box.h / 2 + 18, chosen["text"], 34, _colour(chosen["color"]), "middle", "bold"
        )
        return
    if panel.get("options", {}).get("textMode") == "name":  # the series name is the content (config version)
        for i, name in enumerate(_legends(panel)):
            yield _text(box.x + box.w / 2, box.y + box.h / 2 + 14 + i * 24, name, 18, TEXT, "middle", "bold")
        return
    lo, hi = _sample_range(panel)
    value = rng.uniform(lo + (hi - lo) * 0.4, hi * 0.9)
    colour = steps[0]["color"]
    for step in steps:
        if step.get("value") is None or value >= step["value"]:
            colour = step["color"]
    yield _text(box.x + box.w / 2, box.y + box.h / 2 + 18, _format(value, unit), 34, _colour(colour), "middle", "bold")


def _bargauge(panel: dict[str, Any], box: Box, rng: random.Random) -> Iterable[str]:
    names = _legends(panel)[:7]
    values = sorted((rng.uniform(5, 100) for _ in names), reverse=True)
    top = box.y + 32
    row_h = min(26.0, (box.h - 40) / max(1, len(names)))
    label_w = min(150.0, box.w * 0.38)
    for i, (name, value) in enumerate(zip(names, values, strict=False)):
        y = top + i * row_h
        bar_w = (box.w - label_w - 60) * value / values[0]
        yield _text(box.x + label_w, y + row_h * 0.65, name, 11, TEXT, "end")
        yield (
            f'<rect x="{box.x + label_w + 8:.1f}" y="{y + 3:.1f}" width="{box.w - label_w - 60:.1f}" '
            f'height="{row_h - 6:.1f}" fill="{BORDER}"/>'
        )
        yield (
            f'<rect x="{box.x + label_w + 8:.1f}" y="{y + 3:.1f}" width="{bar_w:.1f}" height="{row_h - 6:.1f}" '
            f'fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.8"/>'
        )
        yield _text(box.x + box.w - 10, y + row_h * 0.65, f"{value:.0f}", 11, TEXT, "end")


def _piechart(panel: dict[str, Any], box: Box, rng: random.Random) -> Iterable[str]:
    names = _legends(panel)
    values = [rng.uniform(1, 10) * (4 if i == 0 else 1) for i in range(len(names))]
    total = sum(values)
    radius = min(box.h - 50, box.w * 0.45) / 2
    cx, cy = box.x + radius + 24, box.y + 32 + (box.h - 40) / 2
    angle = -math.pi / 2
    for i, value in enumerate(values):
        sweep = 2 * math.pi * value / total
        x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        x2, y2 = cx + radius * math.cos(angle + sweep), cy + radius * math.sin(angle + sweep)
        large = 1 if sweep > math.pi else 0
        yield (
            f'<path d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} A{radius:.1f},{radius:.1f} 0 {large} 1 '
            f'{x2:.1f},{y2:.1f} Z" fill="{PALETTE[i % len(PALETTE)]}" stroke="{PANEL}" stroke-width="1.5"/>'
        )
        angle += sweep
    yield f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius * 0.55:.1f}" fill="{PANEL}"/>'
    lx, ly = cx + radius + 24, box.y + 44
    for i, (name, value) in enumerate(zip(names, values, strict=False)):
        colour = PALETTE[i % len(PALETTE)]
        yield f'<rect x="{lx:.1f}" y="{ly + i * 17 - 9:.1f}" width="10" height="10" fill="{colour}"/>'
        yield _text(lx + 16, ly + i * 17, f"{name}  {value / total * 100:.0f}%", 11, TEXT)


def _colour(name: str) -> str:
    return {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "blue": "#5794f2"}.get(name, name)


_DRAW = {"timeseries": _timeseries, "stat": _stat, "bargauge": _bargauge, "piechart": _piechart}


def render_svg(dashboard: dict[str, Any]) -> str:
    """The dashboard as an SVG document (sample data)."""
    panels = dashboard.get("panels", [])
    bottom = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    height = HEADER_H + bottom * UNIT_H + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Inter, Helvetica, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="{BG}"/>',
        _text(MARGIN, 28, dashboard.get("title", "dashboard"), 20, TEXT, weight="bold"),
        _text(WIDTH - MARGIN, 28, "preview with SAMPLE data (ivr.tools.dashboard_preview)", 12, DIM, "end"),
    ]
    x = MARGIN
    for var in dashboard.get("templating", {}).get("list", []):
        label = f'{var.get("label") or var["name"]}: {"Prometheus" if var["type"] == "datasource" else "All"}'
        width = 16 + 7 * len(label)
        out.append(f'<rect x="{x}" y="38" width="{width}" height="20" rx="3" fill="{PANEL}" stroke="{BORDER}"/>')
        out.append(_text(x + 8, 52, label, 11, TEXT))
        x += width + 8
    time_range = dashboard.get("time", {})
    out.append(
        _text(
            WIDTH - MARGIN,
            52,
            f'{time_range.get("from", "now-6h")} .. {time_range.get("to", "now")}, '
            f'refresh {dashboard.get("refresh", "off")}',
            11,
            DIM,
            "end",
        )
    )
    for panel in panels:
        box = _box(panel["gridPos"])
        if panel["type"] == "row":
            out.append(_text(box.x, box.y + 18, "\u25be " + panel["title"], 15, TEXT, weight="bold"))
            continue
        out.append(f'<g class="panel" data-id="{panel["id"]}">')
        out.append(
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="3" '
            f'fill="{PANEL}" stroke="{BORDER}"/>'
        )
        out.append(_text(box.x + 10, box.y + 19, panel["title"], 13, TEXT, weight="bold"))
        out.append(_text(box.x + box.w - 8, box.y + 19, panel["type"], 10, DIM, "end"))
        draw = _DRAW.get(panel["type"])
        if draw is not None:
            out.extend(draw(panel, box, random.Random(panel["id"])))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dashboard",
        type=Path,
        nargs="?",
        default=Path("config/grafana/dashboards/ivr.json"),
        help="Grafana dashboard JSON (default: %(default)s)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("docs/dashboard.svg"), help="SVG file to write (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        dashboard = json.loads(args.dashboard.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read dashboard {args.dashboard}: {exc} (give the path of a Grafana dashboard JSON file)")
        return 2
    args.output.write_text(render_svg(dashboard), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    main_parser = argparse.ArgumentParser(description="Draw a Grafana dashboard JSON as SVG (sample data).")
    configure(main_parser)
    raise SystemExit(run(main_parser.parse_args()))

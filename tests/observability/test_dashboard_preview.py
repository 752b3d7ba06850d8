"""ivr.tools.dashboard_preview draws every panel of the shipped dashboard, as valid SVG, deterministically; and
docs/dashboard.svg is up to date with the dashboard JSON."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from ivr.tools import dashboard_preview
from tests.observability.promql_names import DASHBOARD, ROOT

SVG_NS = "{http://www.w3.org/2000/svg}"


def test_every_panel_is_drawn_with_its_title() -> None:
    dash = json.loads(DASHBOARD.read_text())
    svg = dashboard_preview.render_svg(dash)
    root = ET.fromstring(svg)  # well-formed XML (titles are escaped)
    groups = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "panel"]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert sorted(int(g.get("data-id")) for g in groups) == sorted(p["id"] for p in panels)
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    for panel in dash["panels"]:
        assert panel["title"] in texts or "\u25be " + panel["title"] in texts, panel["title"]
    assert "preview with SAMPLE data (ivr.tools.dashboard_preview)" in texts
    # drawing only (no empty panel): every panel group holds more than its frame, title and type
    for group in groups:
        assert len(list(group)) > 3, group.get("data-id")


def test_titles_are_escaped_and_output_is_deterministic() -> None:
    dash = {
        "title": "a <b> & c",
        "panels": [
            {
                "id": 1,
                "type": "stat",
                "title": "x < y",
                "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
                "targets": [{"expr": "vector(1)", "legendFormat": ""}],
                "fieldConfig": {"defaults": {}},
            }
        ],
    }
    first = dashboard_preview.render_svg(dash)
    ET.fromstring(first)
    assert "x &lt; y" in first and "a &lt;b&gt; &amp; c" in first
    assert first == dashboard_preview.render_svg(dash)


def test_legend_values_follow_the_query_matchers() -> None:
    panel = {
        "targets": [
            {
                "expr": 'sum by (command, result) (rate(ivr_agi_command_results_total{result!="ok"}[5m]))',
                "legendFormat": "{{command}} {{result}}",
            }
        ]
    }
    names = dashboard_preview._legends(panel)
    assert names and not any(name.endswith(" ok") for name in names)


def test_docs_picture_is_current(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.svg"
    assert dashboard_preview.run(argparse.Namespace(dashboard=DASHBOARD, output=out)) == 0
    docs = ROOT / "docs" / "dashboard.svg"
    assert docs.read_text() == out.read_text(), (
        "docs/dashboard.svg is stale: run `python -m ivr.tools.dashboard_preview` after changing the dashboard"
    )


def test_unreadable_dashboard_is_a_clear_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert dashboard_preview.run(argparse.Namespace(dashboard=bad, output=tmp_path / "x.svg")) == 2
    assert "cannot read dashboard" in capsys.readouterr().out

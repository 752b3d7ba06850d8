"""The Grafana dashboard and provisioning files: they load, every panel queries something through the datasource
variable, the layout is a valid grid, and the panels the issue asks for are there."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.observability.promql_names import DASHBOARD, ROOT

GRAFANA = ROOT / "config" / "grafana"


@pytest.fixture(scope="module")
def dash() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def test_dashboard_header(dash: dict) -> None:
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] == "ivr-call-center" and dash["title"]
    assert dash["id"] is None  # importable into any Grafana without clashing with an existing dashboard id
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("flow", "queue"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["includeAll"] and variables[name]["multi"]


def test_every_panel_has_a_query_on_the_datasource_variable(dash: dict) -> None:
    for panel in panels(dash):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} needs a description (shown as its tooltip)"


def test_layout_is_a_valid_grid(dash: dict) -> None:
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    occupied: dict[tuple[int, int], str] = {}
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in occupied, f"{panel['title']!r} overlaps {occupied[(x, y)]!r}"
                occupied[(x, y)] = panel["title"]


def test_panels_the_issue_asks_for(dash: dict) -> None:
    titles = " | ".join(p["title"].lower() for p in panels(dash))
    for wanted in (
        "active calls",
        "calls per flow",
        "outcome mix",
        "containment",
        "abandon rate",
        "node funnel",
        "menu choices",
        "transfer success",
        "service level",
        "asa",
        "aht",
        "queue abandon rate",
        "agents by state",
        "parked calls",
        "recordings",
        "ami health",
        "agi latency p50 / p99",
        "config version",
        "config reload",
        "config reloads",
    ):
        assert wanted in titles, wanted


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ivr.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]

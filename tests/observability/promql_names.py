"""Find the metric and recording-rule names that the Grafana dashboard and the Prometheus rules use.

Reusable by an end-to-end test that scrapes a running service: `used_metric_names()` must all appear in its
/metrics text. String literals are removed before matching, so label values such as job="ivr" never count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "ivr.json"
RULES = ROOT / "config" / "prometheus" / "rules" / "ivr-rules.yml"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![A-Za-z0-9_:])ivr[_:][A-Za-z0-9_:]*")


def names_in(expr: str) -> set[str]:
    return set(_NAME.findall(_STRING.sub('""', expr)))


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if t.get("expr")]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def rule_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in rules()]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def used_names() -> set[str]:
    return set().union(*(names_in(e) for e in dashboard_exprs() + rule_exprs()))


def used_metric_names() -> set[str]:
    """Exported metric sample names (ivr_...) that the dashboard or the rules read."""
    return {n for n in used_names() if ":" not in n}


def used_recorded_names() -> set[str]:
    """Recording-rule names (ivr:...) that the dashboard or the rules read."""
    return {n for n in used_names() if ":" in n}

"""The Prometheus files pass promtool: config and rule syntax, and the rule unit tests in
config/prometheus/tests/ (recording-rule values and alert firing). Skips only when promtool is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "config" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus; .ci/run installs it)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(PROM / "rules" / "ivr-rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_config_passes_promtool_check() -> None:
    result = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rule_unit_tests() -> None:
    files = sorted(str(p) for p in (PROM / "tests").glob("*.test.yml"))
    assert len(files) >= 2
    result = promtool("test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in as Grafana would, parses as PromQL: promtool checks
    them as recording rules in a throw-away rule file."""
    import json

    import yaml

    dash = json.loads((ROOT / "config" / "grafana" / "dashboards" / "ivr.json").read_text())
    substitutions = {
        "$__rate_interval": "1m",
        "$__range": "6h",
        "$__interval": "15s",
        "$flow": ".*",
        "$queue": ".*",
        "$instance": ".*",
        "$pbx": ".*",
        "$campaign": ".*",
    }
    rules = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown variable in {panel['title']!r}: {expr}"
            rules.append({"record": f"dashboard:panel{panel['id']}_{target['refId']}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout

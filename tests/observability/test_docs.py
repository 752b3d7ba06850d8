"""docs/observability.md stays complete: every metric, recording rule and alert is described there."""

from __future__ import annotations

from tests.observability.exercise import all_metrics
from tests.observability.promql_names import ROOT, rules

DOC = (ROOT / "docs" / "observability.md").read_text()


def exposed_name(metric) -> str:
    suffix = {"counter": "_total", "info": "_info"}.get(metric._type, "")
    return metric._name + suffix


def test_every_metric_is_in_the_reference_table() -> None:
    missing = [exposed_name(m) for m in all_metrics().values() if f"| `{exposed_name(m)}` |" not in DOC]
    assert not missing, f"add these metrics to the reference table in docs/observability.md: {missing}"


def test_every_rule_and_alert_is_described() -> None:
    names = [rule.get("record") or rule["alert"] for rule in rules()]
    # a rule family is described once, e.g. "`ivr:queue_asa:seconds5m` / `1h`": match up to the last colon
    missing = [name for name in names if name.rsplit(":", 1)[0] not in DOC]
    assert not missing, f"describe these rules/alerts in docs/observability.md: {missing}"
    for rule in rules():
        if "alert" in rule:
            assert f"`{rule['alert']}`" in DOC, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]

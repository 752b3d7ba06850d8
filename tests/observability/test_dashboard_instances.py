"""The dashboard's panels stay right when several instances are scraped (promtool evaluates the panels' own
queries over made-up scrapes of two instances, ivr-a and ivr-b, both logged in to pbx1 and pbx2):

- what each instance counts on its own (its FastAGI calls) adds up across instances;
- what every instance sees alike through AMI (queues, agents, parked calls, recordings) is counted once (max across
  instances), and added up across Asterisk servers where it carries `pbx`;
- "Agents by state" counts 6 distinct agents, not their 15 queue memberships (issue 14).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.observability.promql_names import DASHBOARD
from tests.observability.test_prometheus_rules import needs_promtool, promtool

SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__range": "10m",
    "$flow": ".*",
    "$queue": ".*",
    "$instance": ".*",
    "$campaign": ".*",
}


def panel_expr(title: str, ref: str = "A", **variables: str) -> str:
    dash = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in dash["panels"] if p["title"] == title]
    (target,) = [t for t in panel["targets"] if t["refId"] == ref]
    expr = target["expr"]
    chosen = {f"${name}": value for name, value in variables.items()}
    for name, value in {**SUBSTITUTIONS, "$pbx": ".*", **chosen}.items():
        expr = expr.replace(name, value)
    return expr


def series(text: str, values: str) -> list[dict[str, str]]:
    return [{"series": text.replace("INSTANCE", inst), "values": values} for inst in ("ivr-a", "ivr-b")]


@needs_promtool
def test_panels_with_two_instances_and_two_servers(tmp_path: Path) -> None:
    inputs = [
        # each instance runs its own calls: 3 and 5 in flows now
        {"series": 'ivr_calls_active{instance="ivr-a",flow="main"}', "values": "3x10"},
        {"series": 'ivr_calls_active{instance="ivr-b",flow="main"}', "values": "5x10"},
        # both see the same queues (AMI): 4 callers waiting in sales, longest 90 s; 12 answered per minute
        *series('ivr_queue_callers{instance="INSTANCE",queue="sales"}', "4x10"),
        *series('ivr_queue_longest_wait_seconds{instance="INSTANCE",queue="sales"}', "90x10"),
        *series('ivr_queue_calls_total{instance="INSTANCE",queue="sales",result="answered"}', "0+12x10"),
        # 6 distinct agents (15 memberships in ivr_queue_agents): 4 available, 2 busy
        *series('ivr_agents{instance="INSTANCE",state="available"}', "4x10"),
        *series('ivr_agents{instance="INSTANCE",state="busy"}', "2x10"),
        *series('ivr_queue_agents{instance="INSTANCE",queue="sales",state="available"}', "9x10"),
        *series('ivr_queue_agents{instance="INSTANCE",queue="support",state="available"}', "6x10"),
        # parked: 2 on pbx1, 1 on pbx2, both seen by both instances
        *series('ivr_parked_calls{instance="INSTANCE",lot="default",pbx="pbx1"}', "2x10"),
        *series('ivr_parked_calls{instance="INSTANCE",lot="default",pbx="pbx2"}', "1x10"),
        *series('ivr_recordings_active{instance="INSTANCE",pbx="pbx1"}', "1x10"),
        *series('ivr_recordings_active{instance="INSTANCE",pbx="pbx2"}', "2x10"),
        # AMI links: ivr-b lost pbx2
        {"series": 'ivr_ami_up{instance="ivr-a",pbx="pbx1"}', "values": "1x10"},
        {"series": 'ivr_ami_up{instance="ivr-a",pbx="pbx2"}', "values": "1x10"},
        {"series": 'ivr_ami_up{instance="ivr-b",pbx="pbx1"}', "values": "1x10"},
        {"series": 'ivr_ami_up{instance="ivr-b",pbx="pbx2"}', "values": "0x10"},
        # a campaign dialled by both instances: each counts its own attempts (1 and 2 answered per minute) and
        # its own calls ringing; both read the same abandon rate and pacing from the shared database
        {
            "series": 'ivr_campaign_attempts_total{instance="ivr-a",campaign="renewals",result="answered"}',
            "values": "0+1x10",
        },
        {
            "series": 'ivr_campaign_attempts_total{instance="ivr-b",campaign="renewals",result="answered"}',
            "values": "0+2x10",
        },
        {"series": 'ivr_campaign_dialing{instance="ivr-a",campaign="renewals"}', "values": "2x10"},
        {"series": 'ivr_campaign_dialing{instance="ivr-b",campaign="renewals"}', "values": "1x10"},
        *series('ivr_campaign_abandon_rate{instance="INSTANCE",campaign="renewals"}', "0.02x10"),
        *series('ivr_campaign_pacing_ratio{instance="INSTANCE",campaign="renewals"}', "1.5x10"),
    ]

    def case(expr: str, *samples: tuple[str, float]) -> dict:
        return {
            "expr": expr,
            "eval_time": "5m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }

    tests = [
        case(panel_expr("Active calls"), ("{}", 8)),
        case(panel_expr("Callers waiting and longest wait"), ('{queue="sales"}', 4)),
        case(panel_expr("Callers waiting and longest wait", "B"), ('{queue="sales"}', 90)),
        case(panel_expr("Agents by state"), ('{state="available"}', 4), ('{state="busy"}', 2)),
        case(
            f"round({panel_expr('Queue calls by result (per minute)')}, 0.001)",
            ('{queue="sales",result="answered"}', 12),
        ),
        case(panel_expr("Parked calls"), ('{lot="default"}', 3)),
        case(panel_expr("Parked calls", pbx="pbx2"), ('{lot="default"}', 1)),
        case(panel_expr("Recordings"), ("{}", 3)),
        case(panel_expr("AMI"), ("{}", 0)),
        case(panel_expr("AMI", pbx="pbx1"), ("{}", 1)),
        case(panel_expr("AMI", instance="ivr-a"), ("{}", 1)),
        case(
            f"round({panel_expr('Campaign answered, connected, abandoned (per hour)')}, 0.001)",
            ('{campaign="renewals"}', 15),  # 3 per minute over both instances; the range is 5 min here
        ),
        case(panel_expr("Campaign abandon rate"), ('{campaign="renewals"}', 0.02)),
        case(panel_expr("Campaign pacing and calls ringing"), ('{campaign="renewals"}', 1.5)),
        case(panel_expr("Campaign pacing and calls ringing", "B"), ('{campaign="renewals"}', 3)),
    ]
    path = tmp_path / "instances.test.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}],
            }
        )
    )
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr

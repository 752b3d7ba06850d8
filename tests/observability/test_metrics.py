"""ivr.metrics: bounded labels, and every metric the dashboard and the rules read is exported."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr import metrics
from tests.observability.exercise import all_metrics
from tests.observability.promql_names import ROOT, names_in, recorded_names, used_metric_names, used_recorded_names

# Labels prometheus-client adds itself (histogram buckets), and the standard process/platform collectors' metrics.
_CLIENT_LABELS = {"le"}


@pytest.fixture(scope="module")
def scrape() -> str:
    """The exposition of ivr.metrics.REGISTRY after one observation on every metric (in a child process)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.observability.exercise"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture(scope="module")
def sample_names(scrape: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(scrape) for s in family.samples}


def test_every_ivr_label_is_in_the_allowed_set(scrape: str) -> None:
    assert {
        "flow",
        "node",
        "option",
        "outcome",
        "reason",
        "queue",
        "lot",
        "command",
        "result",
        "event",
        "target",
        "state",
        "subscriber",
        "action",
        "version",
        "question",
        "answer",
        "window",
        "instance",
        "pbx",
        "campaign",
    } == metrics.ALLOWED_LABELS
    seen_ivr = 0
    for family in text_string_to_metric_families(scrape):
        for s in family.samples:
            if s.name.startswith("ivr_"):
                seen_ivr += 1
                extra = set(s.labels) - metrics.ALLOWED_LABELS - _CLIENT_LABELS
                assert not extra, f"{s.name} has labels {sorted(extra)} outside ivr.metrics.ALLOWED_LABELS"
            else:  # only the standard process/platform collectors may export anything else
                assert s.name.startswith(("process_", "python_")), s.name
    assert seen_ivr > 100


def test_declared_label_names_are_allowed() -> None:
    for name, metric in all_metrics().items():
        assert set(metric._labelnames) <= metrics.ALLOWED_LABELS, name
        assert metric._name.startswith("ivr_"), name


def test_metric_set_covers_the_issue() -> None:
    exported = {m._name for m in all_metrics().values()}
    required = {
        # calls and outcomes, containment (outcome="contained"), time in IVR
        "ivr_calls_started",
        "ivr_calls_active",
        "ivr_call_outcomes",
        "ivr_time_in_ivr_seconds",
        # funnel
        "ivr_node_visits",
        "ivr_node_exits",
        "ivr_menu_choices",
        "ivr_node_seconds",
        # transfers, parking, recordings
        "ivr_transfers",
        "ivr_parked_calls",
        "ivr_parked_seconds",
        "ivr_park_timeouts",
        "ivr_recordings_active",
        "ivr_recordings_finished",
        "ivr_recording_seconds",
        # queues
        "ivr_queue_callers",
        "ivr_queue_longest_wait_seconds",
        "ivr_queue_agents",
        "ivr_queue_calls",
        "ivr_queue_wait_seconds",
        "ivr_queue_talk_seconds",
        "ivr_queue_answered_within_sl",
        "ivr_queue_service_level_ratio",
        "ivr_queue_service_level_threshold_seconds",
        # health
        "ivr_ami_up",
        "ivr_ami_reconnects",
        "ivr_ami_events",
        "ivr_ami_events_dropped",
        "ivr_agi_connections",
        "ivr_agi_connections_active",
        "ivr_agi_command_seconds",
        "ivr_agi_command_results",
        "ivr_config_reloads",
        "ivr_config_reload_failing",
        "ivr_config",
    }
    assert required <= exported, sorted(required - exported)
    assert set(metrics.OUTCOMES) >= {
        "transferred",
        "parked",
        "voicemail",
        "callback",
        "contained",
        "abandoned",
        "error",
    }


def test_bounded_event_folds_unknown_names() -> None:
    assert metrics.bounded_event("QueueCallerJoin") == "QueueCallerJoin"
    assert metrics.bounded_event("Event-From-A-Hostile-Peer-12345") == "other"


def test_dashboard_and_rules_only_read_exported_metrics(sample_names: set[str]) -> None:
    used = used_metric_names()
    assert {"ivr_queue_calls_total", "ivr_ami_up", "ivr_agi_command_seconds_bucket"} <= used  # the parser works
    missing = used - sample_names
    assert not missing, f"dashboard/rules read metrics that ivr.metrics does not export: {sorted(missing)}"


def test_dashboard_and_rules_only_read_recorded_rules() -> None:
    missing = used_recorded_names() - recorded_names()
    assert not missing, f"names used but never recorded in ivr-rules.yml: {sorted(missing)}"


def test_name_extraction_ignores_strings() -> None:
    assert names_in('sum(rate(ivr_a_total{job="ivr_fake"}[5m])) / ivr:b:ratio5m') == {"ivr_a_total", "ivr:b:ratio5m"}


def test_record_config_reload() -> None:
    saved_info = dict(metrics.CONFIG_INFO._value)
    saved_failing = metrics.REGISTRY.get_sample_value("ivr_config_reload_failing")
    before_failed = metrics.REGISTRY.get_sample_value("ivr_config_reloads_total", {"result": "failed"}) or 0
    try:
        metrics.record_config_reload(False)
        assert metrics.REGISTRY.get_sample_value("ivr_config_reload_failing") == 1
        assert metrics.REGISTRY.get_sample_value("ivr_config_reloads_total", {"result": "failed"}) == before_failed + 1
        metrics.record_config_reload(True, "flows-2026-11-29")
        assert metrics.REGISTRY.get_sample_value("ivr_config_reload_failing") == 0
        assert metrics.REGISTRY.get_sample_value("ivr_config_info", {"version": "flows-2026-11-29"}) == 1
    finally:  # the registry is process-wide: leave the version and flag as other tests found them
        metrics.CONFIG_INFO.info(saved_info)
        metrics.CONFIG_RELOAD_FAILING.set(saved_failing or 0)


def test_a_failing_hook_does_not_break_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    metrics.add_collect_hook(broken)
    try:
        assert metrics.REGISTRY.get_sample_value("ivr_config_reload_failing") is not None
    finally:
        metrics.remove_collect_hook(broken)
    assert "collect hook" in caplog.text


def test_transfer_success_results_match_the_rules() -> None:
    from tests.observability.promql_names import RULES

    text = RULES.read_text()
    regex = "|".join(metrics.TRANSFER_SUCCESS_RESULTS)
    assert text.count(f'result=~"{regex}"') == 2  # ivr:transfer_success:ratio5m and 1h
    dashboard = (ROOT / "config" / "grafana" / "dashboards" / "ivr.json").read_text()
    assert f'result=~\\"{regex}\\"' in dashboard


def test_collect_hooks_run_before_gauges_are_read() -> None:
    calls: list[int] = []

    def hook() -> None:
        calls.append(1)
        metrics.QUEUE_TRACKED.set(len(calls))

    saved = metrics.REGISTRY.get_sample_value("ivr_queue_tracked") or 0
    metrics.add_collect_hook(hook)
    try:
        value = metrics.REGISTRY.get_sample_value("ivr_queue_tracked")
    finally:
        metrics.remove_collect_hook(hook)
        metrics.QUEUE_TRACKED.set(saved)
    assert calls and value == len(calls)


def test_series_exist_at_zero_before_the_first_event() -> None:
    assert metrics.REGISTRY.get_sample_value("ivr_agi_connections_total", {"result": "noroute"}) is not None
    assert metrics.REGISTRY.get_sample_value("ivr_config_reloads_total", {"result": "failed"}) is not None
    metrics.init_flow_series("flow-never-called")
    assert (
        metrics.REGISTRY.get_sample_value(
            "ivr_call_outcomes_total", {"flow": "flow-never-called", "outcome": "contained"}
        )
        == 0
    )
    assert metrics.REGISTRY.get_sample_value("ivr_calls_started_total", {"flow": "flow-never-called"}) == 0
    for metric in (metrics.CALLS_STARTED, metrics.CALLS_ACTIVE, metrics.VOICEMAILS):
        metric.remove("flow-never-called")
    for outcome in metrics.OUTCOMES:
        metrics.CALL_OUTCOMES.remove("flow-never-called", outcome)

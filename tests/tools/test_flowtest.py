"""`ivr test-flows`: the shipped flow tests pass with full coverage; failures, errors and JUnit are useful."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.tools.flowtest import TestLoadError, run_suite, write_junit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED = ROOT / "config" / "flows"


def test_shipped_flows_pass_and_cover_every_node_option_and_branch() -> None:
    """`make test` runs the sample configuration's flow tests through the tool, as CI would."""
    suite = run_suite(SHIPPED)
    failures = {r.case.name: r.verdict.failures for r in suite.failed}
    assert failures == {}
    assert {r.flow for r in suite.results} == {"main", "callback", "survey", "campaign"}
    missing = [item.describe() for item in suite.coverage.missing]
    assert missing == []
    assert suite.coverage.ratio() == 1.0
    categories = {item.category for item in suite.coverage.items}
    assert categories == {"node", "option", "branch"}


def test_fixture_suite_covers_its_flow(tmp_path: Path) -> None:
    suite = run_suite(FIXTURES)
    assert not suite.failed and suite.coverage.ratio() == 1.0
    junit = tmp_path / "junit.xml"
    write_junit(suite, junit)
    root = ET.parse(junit).getroot()
    assert root.get("tests") == str(len(suite.results)) and root.get("failures") == "0"
    assert root.find("testsuite").get("name") == "flows.frontdoor"


def _copy_fixtures(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("frontdoor.yaml", "other.yaml"):
        shutil.copy(FIXTURES / name, flows / name)
    return flows


def test_failing_case_shows_a_path_diff_exits_1_and_lands_in_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = _copy_fixtures(tmp_path)
    (flows / "frontdoor.test.yaml").write_text("""\
cases:
  - name: sales expected but support chosen
    caller: {digits: "1,2,1"}
    expect:
      path: [main_menu, sales]
      ends: {queue: sales}
  - name: this one passes
    caller: {digits: "1,1"}
    expect: {ends: {queue: sales}}
""")
    junit = tmp_path / "out.xml"
    assert main(["test-flows", str(flows), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  sales expected but support chosen" in out
    assert "expected sales after main_menu, but the call went" in out
    assert "-sales" in out and "+support_menu" in out and "+internet" in out  # the diff
    assert "ends: expected queue sales, but the call ended: queue:support at internet" in out
    assert "1 passed, 1 failed" in out
    root = ET.parse(junit).getroot()
    failure = root.find(".//testcase[@name='sales expected but support chosen']/failure")
    assert failure is not None and "trace:" in failure.text and "[frontdoor:internet] enter" in failure.text
    assert root.find(".//testcase[@name='this one passes']/failure") is None


def test_coverage_lists_what_no_case_reaches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = _copy_fixtures(tmp_path)
    (flows / "frontdoor.test.yaml").write_text("""\
cases:
  - name: sales
    caller: {digits: "1,1"}
    expect: {ends: {queue: sales}}
""")
    suite = run_suite(flows)
    missing = {item.describe() for item in suite.coverage.missing}
    assert "frontdoor:main_menu branch no input" in missing
    assert "frontdoor:hours branch closed hours: closed (office)" in missing
    assert "frontdoor:dial_ext branch busy" in missing
    assert "frontdoor:crm branch lookup error" in missing
    assert "frontdoor:main_menu option 0" in missing
    assert "frontdoor:park_it" in missing
    assert "frontdoor:main_menu option 1: sales" not in missing
    assert "frontdoor:sales" not in missing
    assert main(["test-flows", str(flows), "--fail-under", "90"]) == 1
    assert "below --fail-under 90%" in capsys.readouterr().err


def test_errors_in_a_test_file_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = _copy_fixtures(tmp_path)
    (flows / "frontdoor.test.yaml").write_text("""\
cases:
  - name: typo
    caller: {digit: "1"}
    expect: {ends: {queue: sales}}
  - name: two ends
    expect: {ends: {queue: sales, park: default}}
""")
    assert main(["test-flows", str(flows)]) == 2
    err = capsys.readouterr().err
    assert "frontdoor.test.yaml:3:14" in err and "digit" in err and "digits" in err  # did you mean
    assert "frontdoor.test.yaml:6:" in err and "exactly one of" in err


def test_unknown_flow_and_missing_files(tmp_path: Path) -> None:
    flows = _copy_fixtures(tmp_path)
    with pytest.raises(TestLoadError, match="no test files"):
        run_suite(flows)
    (flows / "nosuch.test.yaml").write_text("cases: [{name: x, expect: {outcome: contained}}]\n")
    with pytest.raises(TestLoadError, match="flow 'nosuch' is not in"):
        run_suite(flows)
    with pytest.raises(TestLoadError, match="no such file"):
        run_suite(tmp_path / "absent")


def test_exact_path_variables_prompts_and_language_are_checked(tmp_path: Path) -> None:
    flows = _copy_fixtures(tmp_path)
    (flows / "frontdoor.test.yaml").write_text("""\
cases:
  - name: all wrong
    caller: {digits: "1,1"}
    expect:
      exact_path: [hours, main_menu, sales]
      variables: {language: lt}
      prompts: [main, welcome]
      language: lt
      outcome: voicemail
      not_visited: [welcome]
      recorded: true
      callback_number: "860012345"
      voicemail_from: "+37060000001"
""")
    suite = run_suite(flows)
    failures = suite.results[0].verdict.failures
    assert any(f.startswith("path differs") for f in failures)
    assert "variable language: expected 'lt', got 'en'" in failures
    assert any(f.startswith("prompt welcome was not heard in that order") for f in failures)
    assert "language: expected lt, got en" in failures
    assert "outcome: expected voicemail, got transferred" in failures
    assert any(f.startswith("welcome was visited") for f in failures)
    assert "the call was not recorded but should be" in failures
    assert "callback number: expected '860012345', stored: no callback request" in failures
    assert "voicemail from: expected '+37060000001', stored: no message" in failures
    assert len(failures) == 9


def test_both_backends_agree_on_every_case() -> None:
    """The scripted channel (fast, no sockets) must mean what the simulated Asterisk does over FastAGI."""
    on_sim = run_suite(FIXTURES, backend="sim")
    on_engine = run_suite(FIXTURES, backend="engine")
    assert [r.case.name for r in on_sim.results] == [r.case.name for r in on_engine.results]
    for sim, engine in zip(on_sim.results, on_engine.results, strict=False):
        assert sim.run is not None and engine.run is not None
        assert sim.run.backend == "sim" and engine.run.backend == "engine"
        assert sim.run.report.path == engine.run.report.path, sim.case.name
        assert (sim.run.report.outcome, sim.run.report.end_target) == (
            engine.run.report.outcome,
            engine.run.report.end_target,
        ), sim.case.name
        assert sim.run.heard == engine.run.heard, sim.case.name
        # A parked caller nobody retrieves comes back in a second session on both (the fixture's park_it case).
        assert [c.target for c in sim.run.comebacks] == [c.target for c in engine.run.comebacks], sim.case.name
        assert [s.path for s in sim.run.sessions] == [s.path for s in engine.run.sessions], sim.case.name
    assert any(r.run is not None and r.run.comebacks for r in on_sim.results)


def test_committed_json_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/flowtest.schema.json (editor completion for *.test.yaml) is regenerated from the model."""
    import json

    from ivr.flowtest.testspec import json_schema

    committed = json.loads((ROOT / "docs" / "flowtest.schema.json").read_text())
    assert committed == json_schema(), "run: python main.py test-flows --schema > docs/flowtest.schema.json"
    assert main(["test-flows", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == committed
    for test_file in SHIPPED.glob("*.test.yaml"):
        assert test_file.read_text().startswith("# yaml-language-server: $schema=../../docs/flowtest.schema.json")

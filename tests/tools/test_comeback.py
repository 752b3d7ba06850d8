"""A parked caller nobody retrieves comes back: the admin tools show the whole call, on both backends alike."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.flowtest.caller import parse_digits
from ivr.flowtest.channel import World
from ivr.flowtest.runner import CallRun, CallSetup, run_call
from ivr.flowtest.simrun import run_call_on_sim
from ivr.flowtest.verdict import describe_end
from ivr.tools.flowsource import resolve
from ivr.tools.flowtest import print_results, run_suite

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "config" / "flows"

# Parks twice: first with a comeback (a menu that offers goodbye or another park), then without one (the
# dialplan's operator fallback).
LOT = """\
name: lot
language: en
timezone: Europe/Vilnius
start: hello
prompts:
  hello: {en: {file: en/hello, text: "Hello, please hold."}}
  again: {en: {file: en/again, text: "Welcome back. For goodbye press 1, to hold again press 2."}}
  bye: {en: {file: en/bye, text: "Goodbye."}}
nodes:
  hello: {type: play, prompts: [hello], next: park_back}
  park_back: {type: park, timeout: 30s, comeback: returned}
  returned:
    type: menu
    greeting: [again]
    options: {'1': goodbye, '2': park_plain}
    no_input: {exhausted: goodbye}
    invalid: {exhausted: goodbye}
  park_plain: {type: park, timeout: 30s}
  goodbye: {type: hangup, prompts: [bye]}
"""

BACKENDS = {"engine": run_call, "sim": run_call_on_sim}


@pytest.fixture()
def lot(tmp_path: Path) -> Path:
    path = tmp_path / "lot.yaml"
    path.write_text(LOT)
    return path


def call(flow_file: Path, backend: str, digits: str, **world: object) -> CallRun:
    _, flows = resolve(str(flow_file))
    setup = CallSetup("lot", steps=parse_digits(digits), world=World(**world))  # type: ignore[arg-type]
    return asyncio.run(BACKENDS[backend](flows, setup))


@pytest.mark.parametrize("backend", ["engine", "sim"])
def test_comeback_is_a_second_session_of_the_same_call(lot: Path, backend: str) -> None:
    run = call(lot, backend, "1")  # the "1" is pressed in the comeback session: the script carries over
    assert [s.path for s in run.sessions] == [["lot:hello", "lot:park_back"], ["lot:returned", "lot:goodbye"]]
    assert run.report.path == ["lot:hello", "lot:park_back", "lot:returned", "lot:goodbye"]
    assert (run.report.outcome, run.report.end_target, run.report.end_node) == ("contained", "hangup", "lot:goodbye")
    assert run.report.started_at == run.sessions[0].started_at and run.report.ended_at == run.sessions[1].ended_at
    assert run.sessions[0].outcome == "parked"
    assert [(c.parked_at, c.target, c.fallback) for c in run.comebacks] == [("lot:park_back", "lot:returned", False)]
    assert run.heard == ["hello", "again", "bye"] and not run.steps_left
    kinds = [e.kind for e in run.trace]
    marked = kinds.index("comeback")
    assert kinds[marked - 1] == "end" and kinds[marked + 1] == "call"  # between the two sessions
    assert run.trace[marked].text == "← park timeout: back at lot:returned"
    # The comeback comes after the park's 30 s (plus the dialplan's few steps on the simulator).
    waited = (run.comebacks[0].at - run.report.started_at).total_seconds()
    assert 30.0 < waited < 33.0


@pytest.mark.parametrize("backend", ["engine", "sim"])
def test_park_without_comeback_ends_in_the_operator_fallback(lot: Path, backend: str) -> None:
    run = call(lot, backend, "2")
    assert run.report.path[-2:] == ["lot:returned", "lot:park_plain"]
    assert (run.report.outcome, run.report.end_target) == ("parked", "park:default")
    assert [(c.parked_at, c.target) for c in run.comebacks] == [
        ("lot:park_back", "lot:returned"),
        ("lot:park_plain", ""),
    ]
    assert run.fallback and run.trace[-1].kind == "comeback"
    assert "operator fallback (ivr-enter,fallback)" in run.trace[-1].text
    if backend == "sim":  # the simulated dialplan really dialled ${IVR_OPERATOR}, the World's operator
        assert run.destinations[-1] == "agent:Local/ivr-sim-operator@agents"
    else:
        kinds = [(e.kind, e.data.get("prompt") or e.data.get("status")) for e in run.events[-4:]]
        assert kinds == [
            ("fallback", None),
            ("prompt", "pls-hold-while-try"),
            ("dial", None),
            ("dial_result", "ANSWER"),
        ]


@pytest.mark.parametrize("backend", ["engine", "sim"])
def test_fallback_operator_follows_the_world(lot: Path, backend: str) -> None:
    run = call(lot, backend, "2", agents={"operator": "busy"})
    assert run.fallback
    if backend == "sim":
        assert not any(d.startswith("agent:") for d in run.destinations)
    else:
        statuses = [e.data.get("status") for e in run.events if e.kind == "dial_result"]
        assert statuses == ["BUSY"] and run.events[-1].data.get("prompt") == "sorry-youre-having-problems"


def test_retrieved_park_does_not_come_back(lot: Path) -> None:
    for backend in BACKENDS:
        run = call(lot, backend, "1", parking="retrieved")
        assert run.comebacks == [] and len(run.sessions) == 1 and run.report.outcome == "parked", backend


def test_caller_hanging_up_while_parked_does_not_come_back(lot: Path) -> None:
    for backend in BACKENDS:
        run = call(lot, backend, "h@10s")
        assert run.comebacks == [] and len(run.sessions) == 1, backend
        assert run.hung_up_by == "caller" and run.report.path[-1] == "lot:park_back", backend


def test_flow_test_expectations_cover_the_comeback(lot: Path, tmp_path: Path) -> None:
    (tmp_path / "lot.test.yaml").write_text("""\
cases:
  - name: comes back and says goodbye
    caller: {digits: "1"}
    expect:
      exact_path: [hello, park_back, returned, goodbye]
      prompts: [hello, again, bye]
      ends: {hangup: goodbye}
      outcome: contained
  - name: comes back, parks again, operator fallback
    caller: {digits: "2"}
    expect:
      path: [park_back, returned, park_plain]
      ends: {park: default}
  - name: stale expectation (the park is not the end any more)
    caller: {digits: "1"}
    expect:
      ends: {park: default}
""")
    for backend in BACKENDS:
        suite = run_suite(tmp_path, backend=backend)
        failures = {r.case.name: r.verdict.failures for r in suite.failed}
        assert failures == {
            "stale expectation (the park is not the end any more)": [
                "ends: expected park default, but the call ended: hangup at goodbye"
            ]
        }, backend
        fallback = next(r for r in suite.results if r.case.name.endswith("operator fallback"))
        assert (
            describe_end(fallback.run, "lot") == "park:default at park_plain, then the dialplan's operator fallback"
        ), backend  # type: ignore[arg-type]
        # The comeback branch and the nodes after it are covered by the calls that came back; the menu's
        # no-input and invalid branches are all that no case reaches.
        assert {(i.node, i.key) for i in suite.coverage.covered} >= {
            ("park_back", "comeback"),
            ("returned", ""),
            ("returned", "option:1"),
            ("returned", "option:2"),
            ("park_plain", ""),
            ("goodbye", ""),
        }, backend
        assert {i.key for i in suite.coverage.missing} == {
            "retry:no_input",
            "retry:invalid",
            "exhausted:no_input",
            "exhausted:invalid",
        }, backend


def test_test_flows_shows_a_failing_case_path_per_session(lot: Path, tmp_path: Path) -> None:
    import io

    (tmp_path / "lot.test.yaml").write_text("""\
cases:
  - name: stale expectation
    caller: {digits: "1"}
    expect: {path: [park_back, hello]}
""")
    out = io.StringIO()
    print_results(run_suite(tmp_path), out)
    assert "        path: hello → park_back  ⇢ park timeout ⇢  returned → goodbye\n" in out.getvalue()
    assert "        end:  hangup at goodbye (outcome contained)\n" in out.getvalue()


def test_simulate_prints_the_comeback(lot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for backend in BACKENDS:
        assert main(["simulate", str(lot), "--digits", "2", "--backend", backend]) == 0
        out = capsys.readouterr().out
        assert "╞══ ← park timeout: back at lot:returned  (a new IVR session)" in out, backend
        assert (
            "╞══ ← park timeout: the dialplan's operator fallback (ivr-enter,fallback) dials the operator  "
            "(the IVR is done)" in out
        )
        assert (
            "Path: hello → park_back  ⇢ park timeout ⇢  returned → park_plain  ⇢ park timeout ⇢  "
            "operator fallback" in out
        )
        assert "Outcome: parked -> park:default at lot:park_plain, " in out and " over 2 IVR sessions." in out
        assert "Then the dialplan's operator fallback (ivr-enter,fallback) dialled the operator." in out
        # The comeback mark comes after the first session's end and before the second session's first node.
        assert out.index("■ end") < out.index("╞══ ← park timeout: back") < out.index("┌ returned")


def test_simulate_json_has_sessions_and_comebacks(lot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(lot), "--digits", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["start_node"] for s in data["sessions"]] == ["hello", "returned"]
    assert [(c["from"], c["target"], c["why"]) for c in data["comebacks"]] == [
        ("lot:park_back", "lot:returned", "park timeout")
    ]
    assert data["report"]["end_node"] == "lot:goodbye"
    assert [e["kind"] for e in data["trace"]].count("comeback") == 1


def test_shipped_main_flow_parked_caller_comes_back_to_voicemail(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "main", "--flows-dir", str(FLOWS), "--digits", "1,w,0,h", "--agent", "6000=no_answer"])
    out = capsys.readouterr().out
    assert code == 0
    assert "╞══ ← park timeout: back at main:general_voicemail  (a new IVR session)" in out
    assert "Outcome: voicemail -> voicemail:1000 at main:general_voicemail (caller hung up)" in out


def test_error_in_the_comeback_session_goes_to_the_operator_fallback(tmp_path: Path) -> None:
    # [ivr-park-comeback] s,9: GotoIf IVR_STATUS = ERROR -> ivr-enter,fallback.
    flow = tmp_path / "lot.yaml"
    flow.write_text("""\
name: lot
language: en
timezone: Europe/Vilnius
start: park_back
prompts:
  bye: {en: {file: en/bye, text: "Goodbye."}}
nodes:
  park_back: {type: park, timeout: 30s, comeback: broken}
  broken: {type: transfer, queue: "${nothing}"}
""")
    for backend in BACKENDS:
        run = call(flow, backend, "")
        assert (run.report.outcome, run.report.path) == ("error", ["lot:park_back", "lot:broken"]), backend
        assert [(c.target, c.why) for c in run.comebacks] == [
            ("lot:broken", "park timeout"),
            ("", "error in the comeback session (IVR_STATUS=ERROR)"),
        ], backend
        assert run.fallback
        if backend == "sim":
            assert run.destinations == ["ivr", "parked:701", "ivr", "agent:Local/ivr-sim-operator@agents"]

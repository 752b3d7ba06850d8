"""`ivr simulate`: scripted and interactive calls through the shipped main flow, in virtual time."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.cli import main

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "config" / "flows"


def simulate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["simulate", "main", "--flows-dir", str(FLOWS), *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_scripted_call_shows_prompts_nodes_and_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = simulate(capsys, "--digits", "1,w,1")
    assert code == 0
    assert "┌ language_select" in out and "┌ main_menu  (menu node)" in out
    assert "“For English, press 1.”" in out  # the prompt text, as the caller hears it
    assert "leaves: valid: chose en" in out  # why the call moved on
    assert "✓ choice    1 -> sales" in out
    assert "QUEUESTATUS ANSWERED" in out
    assert "Outcome: transferred -> queue:sales at main:post_call_survey" in out  # the survey after the call
    assert "Path: language_select → hours_check → recording_start → welcome → main_menu → sales" in out


def test_language_and_clock_change_what_the_caller_hears(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = simulate(capsys, "--digits", "2,1,h", "--at", "2026-12-24T19:30")
    assert code == 0
    assert "Thu 2026-12-24 19:30 (Europe/Vilnius)" in out
    assert "office holiday: True" in out
    assert "“Šiandien valstybinė šventė, todėl mūsų biuras nedirba.”" in out  # Lithuanian prompt text
    assert "Outcome: voicemail -> voicemail:1000" in out and "(caller hung up)" in out


def test_agents_queues_and_lookup_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = tmp_path / "crm.json"
    fixture.write_text(json.dumps({"crm_lookup": {"name": "Ona", "balance": {"euros": 42}, "vip": False}}))
    code, out = simulate(
        capsys,
        "--digits",
        "1,w,3,123456#,1",
        "--lookup-fixture",
        str(fixture),
        "--queue",
        "billing=timeout",
        "--caller",
        "860012345",
    )
    assert code == 0
    assert "(says number 42)" in out
    assert "QUEUESTATUS TIMEOUT" in out and "┌ callback_request" in out
    code, out = simulate(capsys, "--digits", "1,w,0,h", "--agent", "6000=busy")
    assert "DIALSTATUS BUSY" in out and "┌ operator_hold" in out and "┌ general_voicemail" in out


def test_json_output_is_the_report_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = simulate(capsys, "--digits", "1,w,6123", "--json", "--agent", "6123=no_answer")
    assert code == 0
    data = json.loads(out)
    assert (data["report"]["outcome"], data["report"]["end_target"]) == ("voicemail", "voicemail:6123")
    assert data["report"]["visits"][5]["node"] == "dial_extension"
    assert data["report"]["visits"][5]["detail"] == "NOANSWER -> on_no_answer"
    assert "ext_no_answer" in data["heard"]
    assert any(e["kind"] == "prompt" and e["text"].startswith("For sales, press 1") for e in data["trace"])


def test_start_at_an_inline_option_through_the_production_handler(capsys: pytest.CaptureFixture[str]) -> None:
    # The sim backend runs the service's FastAGI handler, which takes `?node=` when the engine can resolve it.
    for backend in ("sim", "engine"):
        code, out = simulate(capsys, "--start", "technical_menu.1", "--digits", "", "--backend", backend)
        assert code == 0, out
        assert "Path: technical_menu.1" in out and "Outcome: transferred -> queue:technical" in out


def test_hash_after_a_full_account_number_ends_it_on_both_backends(capsys: pytest.CaptureFixture[str]) -> None:
    for backend in ("sim", "engine"):
        code, out = simulate(capsys, "--digits", "1,w,3,12345678#,1", "--backend", backend, "--json")
        data = json.loads(out)
        visit = next(v for v in data["report"]["visits"] if v["node"] == "billing_account")
        assert (visit["reason"], data["report"]["variables"]["account"]) == ("valid", "12345678"), backend
        assert data["heard"].count("enter_account") == 1 and "account_confirm" in data["heard"]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate(capsys, "--digits", "1,x")[0] == 2
    code, out = simulate(capsys, "--agent", "6000=asleep", "--digits", "1")
    assert code == 2 and "BEHAVIOUR one of answer, busy" in out
    assert simulate(capsys, "--start", "nowhere", "--digits", "1")[0] == 2


def test_interactive_with_piped_answers() -> None:
    from ivr.tools import simulate as simulate_module

    args = _parse(["simulate", "main", "--flows-dir", str(FLOWS)])
    out = io.StringIO()
    code = simulate_module.simulate(args, out, io.StringIO("1\n\n2\n*\nq\n"))
    text = out.getvalue()
    assert code == 0
    assert text.count("? your turn") == 5
    assert "┌ support_menu" in text and "✓ choice    * -> repeat" in text
    assert "Outcome: abandoned -> hangup:caller at main:support_menu (caller hung up)" in text


def test_interactive_end_of_input_hangs_up() -> None:
    from ivr.tools import simulate as simulate_module

    args = _parse(["simulate", "main", "--flows-dir", str(FLOWS)])
    out = io.StringIO()
    assert simulate_module.simulate(args, out, io.StringIO("1\n")) == 0
    assert "(end of input: hanging up)" in out.getvalue()


def _parse(argv: list[str]):  # type: ignore[no-untyped-def]
    import argparse

    from ivr.cli import build_parser
    from ivr.tools import simulate as simulate_module

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    simulate_module.configure(sub.choices["simulate"])
    return parser.parse_args(argv)


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    data = b""
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"did not see {marker!r} in {data.decode(errors='replace')!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_interactive_in_a_terminal() -> None:
    """A real pseudo-terminal: the tool asks, we type like a person would."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "main.py", "simulate", "main", "--caller", "860012345"],
        cwd=ROOT,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    deadline = time.monotonic() + 20
    try:
        seen = _read_until(leader, b"your turn", deadline)
        assert b"For English, press 1." in seen
        os.write(leader, b"1\n")
        _read_until(leader, b"your turn", deadline)  # recording consent pause
        os.write(leader, b"w\n")
        seen = _read_until(leader, b"your turn", deadline)
        assert b"main_menu" in seen
        os.write(leader, b"h\n")
        seen = _read_until(leader, b"Outcome:", deadline)
        seen += _read_until(leader, b"Path:", deadline)
        assert b"caller hung up" in seen
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_ctrl_c_hangs_up_cleanly() -> None:
    import signal

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "main.py", "simulate", "main"],
        cwd=ROOT,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    deadline = time.monotonic() + 20
    try:
        _read_until(leader, b"your turn", deadline)
        process.send_signal(signal.SIGINT)
        seen = _read_until(leader, b"Path:", deadline)
        assert b"(interrupted: hanging up)" in seen and b"Outcome: abandoned" in seen
        assert b"Traceback" not in seen
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_save_case_freezes_the_call_as_a_passing_regression_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from ivr.tools.flowtest import run_suite

    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("main.yaml", "callback.yaml", "holidays-lt.ics"):
        shutil.copy(FLOWS / name, flows / name)
    target = flows / "main.test.yaml"
    assert (
        main(
            [
                "simulate",
                "main",
                "--flows-dir",
                str(flows),
                "--digits",
                "1,w,0,h",
                "--agent",
                "6000=busy",
                "--save-case",
                str(target),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "simulate",
                "main",
                "--flows-dir",
                str(flows),
                "--digits",
                "1,w,0,h",
                "--agent",
                "6000=busy",
                "--save-case",
                str(target),
            ]
        )
        == 0
    )  # same name again: made unique
    assert "Saved as case '1,w,0,h -> voicemail (2)'" in capsys.readouterr().out
    text = target.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    assert "agents: {'6000': busy}" in text and "ends: {voicemail: '1000'}" in text
    suite = run_suite(flows)
    assert [r.passed for r in suite.results] == [True, True]
    assert suite.results[0].case.expect.exact_path[-2:] == ["operator_retry", "general_voicemail"]


def test_save_case_refuses_a_file_it_cannot_append_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "main.test.yaml"
    original = "cases:\n  - name: x\n    expect: {outcome: contained}\nflow: main\n"
    target.write_text(original)
    assert main(["simulate", "main", "--flows-dir", str(FLOWS), "--digits", "1,w,1", "--save-case", str(target)]) == 2
    assert "`cases:` must be the last top-level key" in capsys.readouterr().err
    assert target.read_text() == original

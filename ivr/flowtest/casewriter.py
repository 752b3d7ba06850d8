"""Freeze a simulated call as a flow test case: what the caller did becomes `caller`, what happened `expect`.

Rules for this file:
- The case is appended to a `<flow>.test.yaml` as text, so the admin's comments and layout stay as they are;
  the file is then loaded with the test-case model, and restored if the result would not load.
- Expectations are exactly what the call did (exact path, where it ended, outcome): a regression test. The admin
  may loosen them afterwards (`path:` instead of `exact_path:`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ivr.flow.model import Flow
from ivr.flowtest.caller import format_steps
from ivr.flowtest.runner import CallRun, CallSetup, call_start
from ivr.flowtest.testspec import load_test_file
from ivr.yamlsource import ConfigError

_END_KINDS = {
    "queue": "queue",
    "park": "park",
    "voicemail": "voicemail",
    "callback": "callback",
    "extension": "transfer",
    "dial": "transfer",
}


class CaseWriteError(Exception):
    """The case could not be added; the file is unchanged."""


def _short(flow: str, ref: str) -> str:
    return ref.split(":", 1)[1] if ref.startswith(f"{flow}:") else ref


def ends_of(call: CallRun, flow: str) -> dict[str, str] | None:
    report = call.report
    if call.hung_up_by == "caller" and report.outcome == "abandoned":
        return {"caller_hangup": _short(flow, report.end_node)}
    kind, _, value = report.end_target.partition(":")
    if kind in _END_KINDS and value:
        return {_END_KINDS[kind]: value}
    if kind == "hangup" and report.outcome != "error":
        return {"hangup": _short(flow, report.end_node)}
    return None


def case_from_call(name: str, flow: Flow, setup: CallSetup, call: CallRun) -> dict[str, Any]:
    local = call_start(flow, setup.at).astimezone(__import__("zoneinfo").ZoneInfo(flow.timezone))
    caller: dict[str, Any] = {"number": setup.caller_number}
    if setup.language:
        caller["language"] = setup.language
    caller["at"] = local.strftime("%Y-%m-%dT%H:%M")
    steps = call.steps_used
    if any(s.after_prompt for s in steps):
        caller["actions"] = [
            {
                k: v
                for k, v in (
                    ("press", s.digits or None),
                    ("wait", s.action == "wait" or None),
                    ("hangup", s.action == "hangup" or None),
                    ("at", s.at),
                    ("after_prompt", s.after_prompt),
                    ("barge_in", s.barge_in or None),
                )
                if v is not None
            }
            for s in steps
        ]
    elif steps:
        caller["digits"] = format_steps(steps)
    case: dict[str, Any] = {"name": name}
    if setup.start:
        case["start"] = setup.start
    case["caller"] = caller
    if setup.lookups:
        case["lookups"] = dict(setup.lookups)
    if setup.world.agents:
        case["agents"] = dict(setup.world.agents)
    if setup.world.queues:
        case["queues"] = dict(setup.world.queues)
    if setup.world.parking != "timeout":
        case["parking"] = setup.world.parking
    expect: dict[str, Any] = {"exact_path": [_short(flow.name, p) for p in call.report.path]}
    ends = ends_of(call, flow.name)
    if ends:
        expect["ends"] = ends
    expect["outcome"] = call.report.outcome
    case["expect"] = expect
    return case


def _dump(case: dict[str, Any]) -> str:
    text = yaml.safe_dump([case], sort_keys=False, allow_unicode=True, default_flow_style=None, width=118)
    return "".join(f"  {line}\n" if line.strip() else "\n" for line in text.splitlines())


def append_case(path: Path, flow: str, case: dict[str, Any]) -> None:
    """Add `case` to the test file at `path` (created when missing). Raises CaseWriteError and leaves the file as it
    was when the case cannot be added."""
    header = (
        "# yaml-language-server: $schema=../../docs/flowtest.schema.json\n"
        f"# Flow tests for {flow}.yaml (format: docs/admin-tools.md).\n\ncases:\n"
    )
    original = path.read_text(encoding="utf-8") if path.exists() else None
    if original is not None:
        top_level = [line for line in original.splitlines() if line and not line[0].isspace() and line[0] != "#"]
        if not top_level or top_level[-1].rstrip() != "cases:":
            raise CaseWriteError(f"{path}: `cases:` must be the last top-level key to append a case there")
        names = {c.name for c in load_test_file(path).cases}
        base, number = case["name"], 2
        while case["name"] in names:
            case["name"] = f"{base} ({number})"
            number += 1
    text = original if original is not None else header
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n" + _dump(case), encoding="utf-8")
    try:
        load_test_file(path)
    except ConfigError as exc:
        if original is None:
            path.unlink()
        else:
            path.write_text(original, encoding="utf-8")
        raise CaseWriteError(f"the new case would not load, {path} is unchanged: {exc}") from None

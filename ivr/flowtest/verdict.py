"""Compare what a simulated call did with what a test case expects; say precisely what differs.

Rules for this file:
- Pure functions over a finished `CallRun`: no running, no printing.
- Node ids in expectations may be bare (`main_menu`, the case's flow) or qualified (`other:tv`); inline menu
  options are `menu.digits`. Actual paths are always qualified, and messages show them as written.
- A path mismatch comes with a diff of expected and actual paths, so the admin sees where the call went instead.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ivr.flowtest.runner import CallRun
from ivr.flowtest.testspec import Ends, Expect


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)  # expected vs actual path, unified-diff lines

    @property
    def passed(self) -> bool:
        return not self.failures


def qualify(flow: str, ref: str) -> str:
    return ref if ":" in ref else f"{flow}:{ref}"


def _short(flow: str, ref: str) -> str:
    return ref.split(":", 1)[1] if ref.startswith(f"{flow}:") else ref


def _subsequence_gap(expected: list[str], actual: list[str]) -> int | None:
    """Index of the first expected item not found in order, or None when all are."""
    position = 0
    for index, item in enumerate(expected):
        try:
            position = actual.index(item, position) + 1
        except ValueError:
            return index
    return None


def path_diff(flow: str, expected: list[str], actual: list[str]) -> list[str]:
    return list(
        difflib.unified_diff(
            [_short(flow, e) for e in expected],
            [_short(flow, a) for a in actual],
            "expected path",
            "actual path",
            lineterm="",
            n=2,
        )
    )


def check(run: CallRun, expect: Expect, flow: str) -> Verdict:
    verdict = Verdict()
    report = run.report
    actual = report.path
    shown = " → ".join(_short(flow, a) for a in actual)
    if report.error and expect.outcome != "error":
        verdict.failures.append(f"the call ended with an error at {_short(flow, report.end_node)}: {report.error}")
    if expect.exact_path is not None:
        wanted = [qualify(flow, n) for n in expect.exact_path]
        if wanted != actual:
            verdict.failures.append(f"path differs: the call went {shown}")
            verdict.diff = path_diff(flow, wanted, actual)
    if expect.path is not None:
        wanted = [qualify(flow, n) for n in expect.path]
        gap = _subsequence_gap(wanted, actual)
        if gap is not None:
            after = f" after {expect.path[gap - 1]}" if gap else ""
            verdict.failures.append(f"expected {expect.path[gap]}{after}, but the call went {shown}")
            # Diff from the first expected node the call did reach: what came before is not in question.
            start = actual.index(wanted[0]) if wanted and wanted[0] in actual else 0
            verdict.diff = path_diff(flow, wanted, actual[start:])
    for node in expect.not_visited:
        if qualify(flow, node) in actual:
            verdict.failures.append(f"{node} was visited but should not be: {shown}")
    if expect.prompts is not None:
        gap = _subsequence_gap(list(expect.prompts), run.heard)
        if gap is not None:
            verdict.failures.append(
                f"prompt {expect.prompts[gap]} was not heard in that order; heard: {', '.join(run.heard) or 'nothing'}"
            )
    for name, value in expect.variables.items():
        got = report.variables.get(name)
        if got != value:
            verdict.failures.append(f"variable {name}: expected {value!r}, got {got!r}")
    if expect.language is not None and report.language != expect.language:
        verdict.failures.append(f"language: expected {expect.language}, got {report.language}")
    if expect.outcome is not None and report.outcome != expect.outcome:
        verdict.failures.append(f"outcome: expected {expect.outcome}, got {report.outcome}")
    stored = run.stored
    if expect.recorded is not None and bool(stored.recordings) != expect.recorded:
        verdict.failures.append(
            "the call was recorded but should not be"
            if stored.recordings
            else "the call was not recorded but should be"
        )
    if expect.callback_number is not None:
        numbers = [c["number"] for c in stored.callbacks]
        if expect.callback_number not in numbers:
            verdict.failures.append(
                f"callback number: expected {expect.callback_number!r}, stored: "
                f"{', '.join(map(repr, numbers)) or 'no callback request'}"
            )
    if expect.voicemail_from is not None:
        callers = [v["caller"] for v in stored.voicemails]
        if expect.voicemail_from not in callers:
            verdict.failures.append(
                f"voicemail from: expected {expect.voicemail_from!r}, stored: "
                f"{', '.join(map(repr, callers)) or 'no message'}"
            )
    if expect.ends is not None:
        problem = _check_end(run, expect.ends, flow)
        if problem:
            verdict.failures.append(problem)
    return verdict


def describe_end(run: CallRun, flow: str) -> str:
    report = run.report
    where = _short(flow, report.end_node)
    if run.fallback:
        return f"{report.end_target or 'no target'} at {where}, then the dialplan's operator fallback"
    if run.hung_up_by == "caller":
        return f"the caller hung up at {where}" + (f" ({report.end_target})" if report.outcome != "abandoned" else "")
    return f"{report.end_target or 'no target'} at {where}"


def _check_end(run: CallRun, ends: Ends, flow: str) -> str | None:
    report = run.report
    kind, value = next(iter(ends.given().items()))
    target = report.end_target
    ok: bool
    if kind == "transfer":
        ok = target in (f"extension:{value}", f"dial:{value}")
    elif kind in ("queue", "park", "voicemail", "callback"):
        ok = target == f"{kind}:{value}"
    elif kind == "hangup":
        ok = run.hung_up_by != "caller" and report.outcome != "error" and report.end_node == qualify(flow, value)
    else:  # caller_hangup
        ok = run.hung_up_by == "caller" and report.end_node == qualify(flow, value)
    if ok:
        return None
    return f"ends: expected {kind} {value}, but the call ended: {describe_end(run, flow)}"

"""`ivr test-flows [PATH]`: run the flow test cases beside the flows; pass/fail with path diffs, JUnit XML, coverage.

Rules for this file:
- PATH is a flows directory (every `*.test.yaml` in it) or one test file; the flows are those of the test file's
  directory (or `--flows-dir`), loaded and checked exactly as the service loads them.
- Every case is one call on the simulated Asterisk through the real FastAGI server and the production engine
  (`ivr.flowtest.simrun`; `--backend engine`: the engine on a scripted channel, `ivr.flowtest.runner`), in
  virtual time: no Asterisk, no network, no sleeping, so a suite of hundreds of calls takes seconds and gives the
  same answer on every machine.
- Exit status: 0 when every case passes (and coverage is at least `--fail-under`), 1 otherwise, 2 when the test
  files or flows cannot be loaded. Errors in test files are reported at file:line:column.
- Coverage counts every node, menu option and branch of the flows under test (`ivr.flowtest.coverage`) and lists the
  ones no case reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ivr.flow.loader import FlowSet
from ivr.flowtest.channel import World
from ivr.flowtest.comeback import path_words
from ivr.flowtest.coverage import Coverage, coverage_for
from ivr.flowtest.runner import CallRun, CallSetup, run_call
from ivr.flowtest.testspec import Caller, Case, TestFile, find_test_files, json_schema, load_test_file
from ivr.flowtest.verdict import Verdict, check, describe_end
from ivr.tools.flowsource import DEFAULT_FLOWS_DIR, FlowSourceError, load_flow_set
from ivr.yamlsource import ConfigError

__all__ = ["CaseResult", "SuiteResult", "TestLoadError", "run_suite", "write_junit", "configure", "run"]


class TestLoadError(Exception):
    """Test files or flows could not be loaded; the message lists every problem with its location."""

    __test__ = False  # not a pytest class


@dataclass
class CaseResult:
    file: Path
    flow: str
    case: Case
    verdict: Verdict
    run: CallRun | None = None
    seconds: float = 0.0  # wall-clock time to run the case

    __test__ = False

    @property
    def passed(self) -> bool:
        return self.verdict.passed


@dataclass
class SuiteResult:
    results: list[CaseResult] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]


def setup_for(flow: str, case: Case, caller: Caller) -> CallSetup:
    return CallSetup(
        flow=flow,
        start=case.start,
        caller_number=caller.number,
        caller_name=caller.name,
        language=caller.language,
        at=caller.at,
        steps=caller.steps(),
        lookups=case.lookups,
        world=World(agents=dict(case.agents), queues=dict(case.queues), parking=case.parking),  # type: ignore[arg-type]
        params=dict(caller.params),
    )


def load_suite(target: Path, flows_dir: Path | None = None) -> tuple[FlowSet, list[tuple[Path, TestFile]]]:
    """The flow set and the parsed test files; `TestLoadError` lists everything wrong at once."""
    if not target.exists():
        raise TestLoadError(f"{target}: no such file or directory (give a flows directory or a .test.yaml file)")
    files = find_test_files(target)
    if not files:
        raise TestLoadError(f"no test files (*.test.yaml) in {target}")
    directory = flows_dir or (target if target.is_dir() else target.parent)
    try:
        flow_set = load_flow_set(directory)
    except FlowSourceError as exc:
        raise TestLoadError(str(exc)) from None
    specs: list[tuple[Path, TestFile]] = []
    problems: list[str] = []
    for file in files:
        try:
            spec = load_test_file(file)
        except ConfigError as exc:
            problems += [p.format() for p in exc.errors]
            continue
        if spec.flow not in flow_set:
            problems.append(
                f"{file}: flow {spec.flow!r} is not in {directory} (flows: {', '.join(flow_set.names())});"
                f" name the file <flow>.test.yaml or set `flow:`"
            )
            continue
        flow = flow_set[spec.flow]  # type: ignore[index]
        for case in spec.cases:
            start = case.start or ""
            if start and ":" not in start and start.partition(".")[0] not in flow.nodes:
                problems.append(f"{file}: case {case.name!r}: start node {start!r} is not in flow {flow.name}")
        specs.append((file, spec))
    if problems:
        raise TestLoadError("\n".join(problems))
    return flow_set, specs


BACKENDS = ("sim", "engine")


async def _run_all(
    flow_set: FlowSet, specs: list[tuple[Path, TestFile]], only: str | None, backend: str
) -> SuiteResult:
    if backend == "sim":
        from ivr.flowtest.simrun import run_call_on_sim as runner
    else:
        runner = run_call
    names = sorted({spec.flow for _, spec in specs if spec.flow})
    suite = SuiteResult(coverage=coverage_for(flow_set, names))
    for file, spec in specs:
        assert spec.flow is not None
        for case, caller in zip(spec.cases, spec.case_callers(), strict=False):
            if only and only not in case.name:
                continue
            began = time.perf_counter()
            try:
                call = await runner(flow_set, setup_for(spec.flow, case, caller))
            except Exception as exc:  # one broken case must not hide the others' results
                verdict = Verdict([f"the call could not run: {exc!r}"])
                suite.results.append(CaseResult(file, spec.flow, case, verdict, None, time.perf_counter() - began))
                continue
            verdict = check(call, case.expect, spec.flow)
            suite.results.append(CaseResult(file, spec.flow, case, verdict, call, time.perf_counter() - began))
            suite.coverage.add_call(flow_set, call.report, call.trace)
    return suite


def run_suite(
    target: Path, flows_dir: Path | None = None, only: str | None = None, backend: str = "sim"
) -> SuiteResult:
    """Load and run every case under `target` (`backend` "sim": the simulated Asterisk over FastAGI; "engine":
    the engine on a scripted channel, faster). Raises TestLoadError when something cannot be loaded."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
    flow_set, specs = load_suite(target, flows_dir)
    return asyncio.run(_run_all(flow_set, specs, only, backend))


# --- output -----------------------------------------------------------------------------------------------


def _path_words(result: CaseResult) -> str:
    if result.run is None:
        return ""
    return path_words(result.run.sessions, result.run.comebacks, result.flow)


def print_results(suite: SuiteResult, out: TextIO, *, verbose: bool = False) -> None:
    current: Path | None = None
    for result in suite.results:
        if result.file != current:
            current = result.file
            print(f"{result.file}  (flow {result.flow})", file=out)
        mark = "PASS" if result.passed else "FAIL"
        print(f"  {mark}  {result.case.name}", file=out)
        if not result.passed or verbose:
            print(f"        path: {_path_words(result)}", file=out)
            if result.run is not None:
                print(
                    f"        end:  {describe_end(result.run, result.flow)} (outcome {result.run.report.outcome})",
                    file=out,
                )
        for failure in result.verdict.failures:
            print(f"        ✗ {failure}", file=out)
        for line in result.verdict.diff:
            print(f"          {line}", file=out)
    coverage = suite.coverage
    parts = []
    for category, words in (("node", "nodes"), ("option", "options"), ("branch", "branches")):
        items = [i for i in coverage.items if i.category == category]
        hit = sum(1 for i in items if i in coverage.covered)
        parts.append(f"{words} {hit}/{len(items)}")
    print(f"\ncoverage {coverage.ratio():.0%}: " + ", ".join(parts), file=out)
    missing = coverage.missing
    if missing:
        print("not reached by any case:", file=out)
        for item in missing:
            print(f"  - {item.describe()}", file=out)
    passed = len(suite.results) - len(suite.failed)
    print(f"\n{passed} passed, {len(suite.failed)} failed", file=out)


def write_junit(suite: SuiteResult, path: Path) -> None:
    """JUnit XML: one <testsuite> per test file, one <testcase> per case (GitLab/Jenkins/GitHub read it)."""
    root = ET.Element(
        "testsuites", name="ivr flow tests", tests=str(len(suite.results)), failures=str(len(suite.failed))
    )
    by_file: dict[Path, list[CaseResult]] = {}
    for result in suite.results:
        by_file.setdefault(result.file, []).append(result)
    for file, results in by_file.items():
        element = ET.SubElement(
            root,
            "testsuite",
            name=f"flows.{results[0].flow}",
            file=str(file),
            tests=str(len(results)),
            failures=str(sum(1 for r in results if not r.passed)),
            errors="0",
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for result in results:
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"flows.{result.flow}",
                name=result.case.name,
                file=str(file),
                time=f"{result.seconds:.3f}",
            )
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=result.verdict.failures[0], type="FlowTestFailure")
                body = list(result.verdict.failures) + list(result.verdict.diff)
                if result.run is not None:
                    body.append("trace:")
                    body += [event.format(result.run.started_at) for event in result.run.trace]
                failure.text = "\n".join(body)
            if result.run is not None:
                ET.SubElement(case, "system-out").text = f"path: {_path_words(result)}"
    missing = suite.coverage.missing
    coverage_text = f"coverage {suite.coverage.ratio():.1%}" + "".join(
        f"\nnot reached: {i.describe()}" for i in missing
    )
    ET.SubElement(root, "system-out").text = coverage_text
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


# --- CLI --------------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=DEFAULT_FLOWS_DIR,
        metavar="PATH",
        help="flows directory or one .test.yaml file (default: config/flows)",
    )
    parser.add_argument(
        "--flows-dir", type=Path, default=None, help="where the flows are (default: the test files' directory)"
    )
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here (for CI)")
    parser.add_argument("-k", dest="only", metavar="TEXT", help="only cases whose name contains TEXT")
    parser.add_argument(
        "--fail-under",
        type=float,
        default=None,
        metavar="PCT",
        help="fail when coverage (nodes, options and branches) is below PCT percent",
    )
    parser.add_argument("--details", action="store_true", help="show path and end of passing cases too")
    parser.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of test files (docs/flowtest.schema.json) and exit"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sim",
        help="sim: every call on the simulated Asterisk through the real FastAGI server (default); "
        "engine: the engine on a scripted channel (no sockets, faster)",
    )


def quiet_service_logs(verbose: bool) -> None:
    """The simulated calls start and stop a FastAGI server each; their INFO lines would drown the results."""
    if not verbose:
        for name in ("ivr.agi", "ivr.flow.routing", "ivr.sim"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
        return 0
    quiet_service_logs(getattr(args, "verbose", False))
    try:
        suite = run_suite(args.path, args.flows_dir, args.only, args.backend)
    except TestLoadError as exc:
        print(f"test-flows: {exc}", file=sys.stderr)
        return 2
    print_results(suite, sys.stdout, verbose=args.details)
    if args.junit:
        write_junit(suite, args.junit)
        print(f"JUnit XML written to {args.junit}")
    if not suite.results:
        print("test-flows: no case ran (check -k)", file=sys.stderr)
        return 1
    if suite.failed:
        return 1
    if args.fail_under is not None and suite.coverage.ratio() * 100 < args.fail_under:
        print(
            f"test-flows: coverage {suite.coverage.ratio():.1%} is below --fail-under {args.fail_under:g}%",
            file=sys.stderr,
        )
        return 1
    return 0

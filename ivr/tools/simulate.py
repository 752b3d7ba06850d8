"""`ivr simulate FLOW`: be the caller. Interactive in a terminal, or scripted with `--digits`; readable trace or JSON.

Rules for this file:
- The call runs on the simulated Asterisk through the real FastAGI server and the production engine
  (`ivr.flowtest.simrun`; `--backend engine`: a scripted channel, `ivr.flowtest.runner`), in virtual time:
  time-outs, ringing and queue waits take no real time (nor does the time you take to answer), and business hours
  follow `--at`.
- Interactive mode asks only when the IVR waits for the caller (after its prompts): type digits (`12#`), `w` to
  let the time-out pass, `h` to hang up, `q` to quit. Any `--digits` script is used up first. End of input
  (Ctrl-D, or a pipe that ends) hangs up, so piping answers in works like a script.
- The trace shows, in order: the node the call is in, each prompt's text in the caller's language, digits, and why
  the call moved on (the engine's own exit reason and detail). A parked caller nobody retrieves comes back in a
  new FastAGI session (or goes to the dialplan's operator fallback): a `╞══ ←` line marks it, and the summary's
  path shows each session, joined by the comeback.
- Exit status: 0 when the call ran (whatever its outcome), 1 when the flow ended with an engine error, 2 when the
  flow, the script or a fixture cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ivr.flow.report import TraceEvent
from ivr.flowtest.caller import SYNTAX_HELP, ScriptSyntaxError, Step, parse_digits
from ivr.flowtest.channel import AGENT_BEHAVIOURS, QUEUE_BEHAVIOURS, World
from ivr.flowtest.comeback import path_words
from ivr.flowtest.runner import CallRun, CallSetup, call_start, run_call
from ivr.tools.flowtest import quiet_service_logs

__all__ = ["configure", "run", "TracePrinter", "parse_assignments", "simulate"]

_SYMBOL = {
    "prompt": "♪",
    "digit": "#",
    "timeout": "…",
    "no_input": "!",
    "invalid": "!",
    "choice": "✓",
    "exit": "→",
    "hangup": "✆",
    "error": "✗",
    "end": "■",
}
_QUIET = {"call", "variable"}  # shown with --verbose only


class TracePrinter:
    """Prints engine trace events as a readable, aligned log (time since answer, node, what happened)."""

    def __init__(self, out: TextIO, start: datetime, flow: str, verbose: bool = False) -> None:
        self.out, self.start, self.flow, self.verbose = out, start, flow, verbose
        self._digits: list[TraceEvent] = []  # plain digits of one entry, printed as one line

    def where(self, event: TraceEvent) -> str:
        return event.node if event.flow == self.flow else f"{event.flow}:{event.node}"

    def stamp(self, event: TraceEvent) -> str:
        return f"{(event.at - self.start).total_seconds():7.1f}s"

    def flush(self) -> None:
        if self._digits:
            keys = "".join(str(e.data.get("digit", e.text)) for e in self._digits)
            word = "digit" if len(keys) == 1 else "digits"
            print(f"{self.stamp(self._digits[0])}  │ # {word:<9} {keys}", file=self.out)
            self._digits = []

    def __call__(self, event: TraceEvent) -> None:
        if event.kind in _QUIET and not self.verbose:
            return
        if event.kind == "digit" and set(event.data) == {"digit"}:
            self._digits.append(event)  # a keypress answering a wait: gather the whole entry
            return
        self.flush()
        stamp = self.stamp(event)
        if event.kind == "comeback":
            session = "a new IVR session" if event.node else "the IVR is done"
            print(f"{stamp}  ╞══ {event.text}  ({session})", file=self.out)
            return
        if event.kind == "enter":
            print(f"{stamp}  ┌ {self.where(event)}  ({event.text})", file=self.out)
            return
        symbol = _SYMBOL.get(event.kind, "·")
        text = event.text
        if event.kind == "prompt":
            text = f"“{text}”" if not text.startswith("(") else text
        elif event.kind == "exit":
            text = f"leaves: {text}"
        print(f"{stamp}  │ {symbol} {event.kind:<9} {text}", file=self.out)
        self.out.flush()


def _resolve(future: asyncio.Future[str], value: str) -> None:
    if not future.done():
        future.set_result(value)


def parse_assignments(values: Sequence[str], allowed: Sequence[str], what: str) -> dict[str, str | list[str]]:
    """`1001=busy` pairs -> dict, checking the behaviour words."""
    result: dict[str, str | list[str]] = {}
    for value in values:
        name, sep, behaviour = value.partition("=")
        if not sep or not name or behaviour not in allowed:
            raise ValueError(f"--{what} {value!r}: write NAME=BEHAVIOUR with BEHAVIOUR one of {', '.join(allowed)}")
        result[name] = behaviour
    return result


def parse_answer(line: str) -> list[Step] | None:
    """One line typed at the prompt -> steps; None for "quit". Empty line = wait."""
    text = line.strip()
    if text.lower() in ("q", "quit", "exit"):
        return None
    if not text:
        return [Step("wait")]
    return parse_digits(text)


class Keyboard:
    """Asks the person at the terminal (or reads a pipe) when the IVR waits for the caller."""

    def __init__(self, stdin: TextIO, out: TextIO, printer: TracePrinter | None = None) -> None:
        self.stdin, self.out, self.printer = stdin, out, printer
        self.quit = False
        self._interrupted = False
        self._waiting: asyncio.Future[str] | None = None

    def interrupt(self) -> None:
        """Ctrl-C: the caller quits (hangs up) at once, so the call still ends cleanly with its report."""
        self._interrupted = True
        if self._waiting is not None and not self._waiting.done():
            print("(interrupted: hanging up)", file=self.out)
            self._waiting.set_result("q\n")

    async def _readline(self, loop: asyncio.AbstractEventLoop) -> str:
        # A daemon thread, not the default executor: after Ctrl-C the process must not wait for an Enter.
        future: asyncio.Future[str] = loop.create_future()
        self._waiting = future
        if self._interrupted:
            future.set_result("q\n")

        def read() -> None:
            line = self.stdin.readline()
            loop.call_soon_threadsafe(_resolve, future, line)

        if not future.done():
            threading.Thread(target=read, name="simulate-stdin", daemon=True).start()
        return await future

    async def __call__(self) -> list[Step]:
        loop = asyncio.get_running_loop()
        if self.printer:
            self.printer.flush()
        while True:
            print("          ? your turn: digits, w = wait, h = hang up, q = quit > ", end="", file=self.out)
            self.out.flush()
            line = await self._readline(loop)
            if not line:  # end of input
                print("(end of input: hanging up)", file=self.out)
                return [Step("hangup")]
            if not self.stdin.isatty():
                print(line.rstrip("\n"), file=self.out)  # echo piped answers so the log reads like a session
            try:
                steps = parse_answer(line)
            except ScriptSyntaxError as exc:
                print(f"          {exc}", file=self.out)
                continue
            if steps is None:
                self.quit = True
                return [Step("hangup")]
            return steps


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="flow name (in --flows-dir) or path to a flow .yaml file")
    parser.add_argument(
        "--digits", metavar="SCRIPT", help=SYNTAX_HELP + ". Without it you are asked at every digit wait (interactive)."
    )
    parser.add_argument("--caller", default="+37060000001", metavar="NUMBER", help="caller ID number")
    parser.add_argument("--caller-name", default="", metavar="NAME")
    parser.add_argument("--lang", metavar="LANG", help="channel language when the call arrives")
    parser.add_argument(
        "--at",
        metavar="DATETIME",
        help="when the call happens, e.g. 2026-12-24T19:30 (the flow's "
        "local time unless an offset is given); default: a Monday 10:00",
    )
    parser.add_argument(
        "--lookup-fixture", type=Path, metavar="FILE", help="JSON answers for lookups: {url | flow:node | node: answer}"
    )
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="EXT=BEHAVIOUR",
        help=f"how an extension behaves: {', '.join(AGENT_BEHAVIOURS)} (repeatable; EXT "
        "'operator' is the dialplan's operator fallback after a park without comeback)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="QUEUE=BEHAVIOUR",
        help=f"how a queue behaves: {', '.join(QUEUE_BEHAVIOURS)} (repeatable)",
    )
    parser.add_argument(
        "--park",
        choices=("retrieved", "timeout"),
        default="timeout",
        help="whether a parked call is picked up (timeout: after the park's time-out the caller comes "
        "back at its comeback node, as the dialplan does)",
    )
    parser.add_argument("--start", metavar="NODE", help="start at this node (as a park comeback does)")
    parser.add_argument("--json", action="store_true", help="print the call as JSON (report, trace, prompts heard)")
    parser.add_argument("--flows-dir", type=Path, default=None, help="directory of flows (default: config/flows)")
    parser.add_argument("--trace-all", action="store_true", help="also show variables and the call line")
    parser.add_argument(
        "--save-case",
        type=Path,
        metavar="FILE.test.yaml",
        help="append this call to a flow test file as a case (what you did -> what happened)",
    )
    parser.add_argument("--case-name", metavar="NAME", help="name of the saved case (default: from the digits)")
    parser.add_argument(
        "--backend",
        choices=("sim", "engine"),
        default="sim",
        help="sim: the call runs on the simulated Asterisk through the real FastAGI server "
        "(default); engine: the engine on a scripted channel (no sockets)",
    )


def _setup(args: argparse.Namespace, flow_name: str) -> CallSetup:
    steps = parse_digits(args.digits) if args.digits else []
    at = datetime.fromisoformat(args.at) if args.at else None
    lookups: dict[str, Any] = {}
    if args.lookup_fixture:
        from ivr.flow.lookup import FixtureLookupClient

        lookups = FixtureLookupClient.from_file(args.lookup_fixture).answers
    world = World(
        agents=parse_assignments(args.agent, AGENT_BEHAVIOURS, "agent"),
        queues=parse_assignments(args.queue, QUEUE_BEHAVIOURS, "queue"),
        parking=args.park,
    )
    return CallSetup(
        flow=flow_name,
        start=args.start,
        caller_number=args.caller,
        caller_name=args.caller_name,
        language=args.lang,
        at=at,
        steps=steps,
        lookups=lookups,
        world=world,
    )


def to_json(call: CallRun) -> dict[str, Any]:
    return {
        "report": call.report.to_dict(),
        "trace": [
            {
                "t": round((e.at - call.started_at).total_seconds(), 3),
                "kind": e.kind,
                "flow": e.flow,
                "node": e.node,
                "text": e.text,
                "data": e.data,
            }
            for e in call.trace
        ],
        "heard": call.heard,
        "sessions": [report.to_dict() for report in call.sessions],
        "comebacks": [
            {
                "t": round((c.at - call.started_at).total_seconds(), 3),
                "from": c.parked_at,
                "target": c.target,
                "why": c.why,
            }
            for c in call.comebacks
        ],
        "hung_up_by": call.hung_up_by,
        "backend": call.backend,
        "script_left": [s.describe() for s in call.steps_left],
    }


def simulate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from ivr.tools.flowsource import FlowSourceError, resolve

    try:
        flow, flow_set = resolve(args.flow, args.flows_dir)
        setup = _setup(args, flow.name)
        if (
            setup.start
            and ":" not in setup.start
            and setup.start not in flow.nodes
            and setup.start.partition(".")[0] not in flow.nodes
        ):
            raise ValueError(f"--start {setup.start!r}: flow {flow.name} has no such node")
    except (FlowSourceError, ScriptSyntaxError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    interactive = not args.json and args.digits is None
    started = call_start(flow, setup.at)
    printer = None if args.json else TracePrinter(out, started, flow.name, args.trace_all)
    keyboard = Keyboard(stdin, out, printer) if interactive else None
    if printer:
        local = started.astimezone(__import__("zoneinfo").ZoneInfo(flow.timezone))
        print(
            f"Calling flow {flow.name} as {setup.caller_number} on {local:%a %Y-%m-%d %H:%M} ({flow.timezone}), "
            f"language {setup.language or flow.language}; virtual time, no Asterisk.",
            file=out,
        )
        if interactive:
            print(
                "You are asked when the IVR waits for you: type digits (e.g. 1 or 123#), w to wait, h to hang up, "
                "q to quit.",
                file=out,
            )
    if args.backend == "sim":
        from ivr.flowtest.simrun import run_call_on_sim as runner
    else:
        runner = run_call
    quiet_service_logs(getattr(args, "verbose", False))

    async def call_with_keyboard() -> CallRun:
        if keyboard is not None:
            # no signals here (not the main thread)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, keyboard.interrupt)
        return await runner(flow_set, setup, on_trace=printer, ask=keyboard)

    call = asyncio.run(call_with_keyboard())
    if printer:
        printer.flush()
    report = call.report
    if args.json:
        print(json.dumps(to_json(call), indent=2, ensure_ascii=False), file=out)
    else:
        end = report.end_target or "-"
        who = " (caller hung up)" if call.hung_up_by == "caller" else ""
        sessions = f" over {len(call.sessions)} IVR sessions" if len(call.sessions) > 1 else ""
        print(
            f"\nOutcome: {report.outcome} -> {end} at {report.end_node}{who}, {report.seconds:.1f} s "
            f"in the IVR{sessions}.",
            file=out,
        )
        if call.fallback:
            print("Then the dialplan's operator fallback (ivr-enter,fallback) dialled the operator.", file=out)
        print("Path: " + path_words(call.sessions, call.comebacks, flow.name), file=out)
        if call.steps_left and not (keyboard and keyboard.quit):
            print("Script not used: " + ", ".join(s.describe() for s in call.steps_left), file=out)
    if args.save_case:
        from ivr.flowtest.caller import format_steps
        from ivr.flowtest.casewriter import CaseWriteError, append_case, case_from_call

        name = args.case_name or f"{format_steps(call.steps_used) or 'silent caller'} -> {report.outcome}"
        case = case_from_call(name, flow, setup, call)
        try:
            append_case(args.save_case, flow.name, case)
        except CaseWriteError as exc:
            print(f"simulate: {exc}", file=sys.stderr)
            return 2
        print(f"Saved as case {case['name']!r} in {args.save_case}.", file=sys.stderr if args.json else out)
    return 1 if report.outcome == "error" else 0


def run(args: argparse.Namespace) -> int:
    try:
        return simulate(args, sys.stdout, sys.stdin)
    except KeyboardInterrupt:
        print("\nsimulate: interrupted", file=sys.stderr)
        return 130

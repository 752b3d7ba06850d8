"""Load the flow files of a directory into one `FlowSet`, with every problem located at file:line:column.

Rules for this file:
- One flow per file; every `*.yaml`/`*.yml` in the directory is a flow except flow test cases (`*.test.yaml`).
- Problems are collected across all files and reported together; a set with any error is never returned.
- A schedule's `holiday_calendar` (.ics, relative to the flow file) is parsed here only to report a missing or
  broken file at load time (located), and it counts in the version hash and the watched files. Its meaning
  (all-day and timed closures, RRULE) belongs to `ivr.flow.hours`, which reads it when a call asks.
- A `FlowSet` (`ivr.flow.flowset`, re-exported here) is immutable once built: calls in progress keep the object
  they started with while a reload builds a new one (see `ivr.flow.repository`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError

from ivr.flow.flowset import FlowSet as FlowSet
from ivr.flow.flowset import FlowSource as FlowSource
from ivr.flow.model import Flow
from ivr.flow.validate import check_flow_set
from ivr.yamlsource import (
    ConfigError,
    PathKey,
    PositionMap,
    Problem,
    parse_yaml,
    problems_from_validation,
)

FLOW_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")
# Recurring calendar events are expanded over this many years around the load time.
CALENDAR_YEARS_BACK = 1
CALENDAR_YEARS_AHEAD = 5


def flow_files(directory: Path) -> list[Path]:
    """The flow files of a directory, sorted by name (test-case files excluded)."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and p.name.endswith(FLOW_SUFFIXES)
        and not p.name.endswith(TEST_SUFFIXES)
        and not p.name.startswith(".")
    )


def display_name(path: Path) -> str:
    """A path as shown in messages: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_flows(
    path: str | Path, *, prompts_dir: str | Path | None = None, check: bool = True, now: datetime | None = None
) -> FlowSet:
    """Load a flows directory (or one flow file) and, with `check`, run the graph checks of `ivr.flow.validate`.

    Raises `ConfigError` with every error found; warnings ride on `FlowSet.warnings` (and on the error)."""
    path = Path(path)
    now = now or datetime.now(UTC)
    if path.is_dir():
        files = flow_files(path)
        directory: Path | None = path
        if not files:
            raise ConfigError(
                [
                    Problem(
                        display_name(path),
                        0,
                        0,
                        "no flow files in this directory",
                        "add a flow such as main.yaml (see docs/flows.md)",
                        code="io",
                    )
                ]
            )
    elif path.is_file():
        files, directory = [path], path.parent
    else:
        raise ConfigError(
            [
                Problem(
                    display_name(path),
                    0,
                    0,
                    "no such file or directory",
                    "give a flows directory or a flow file",
                    code="io",
                )
            ]
        )

    problems: list[Problem] = []
    flows: dict[str, Flow] = {}
    sources: dict[str, FlowSource] = {}
    digest = hashlib.sha256()
    read: list[Path] = []
    for file in files:
        loaded = _load_one(file, now, problems, digest, read)
        if loaded is None:
            continue
        flow, source = loaded
        if flow.name in flows:
            first = sources[flow.name].display
            problems.append(
                source.problem(
                    ("name",),
                    f"duplicate flow name {flow.name!r}",
                    f"{first} already defines it; flow names must be unique",
                    code="duplicate-flow",
                    at_key=False,
                )
            )
            continue
        if file.stem != flow.name:
            problems.append(
                source.problem(
                    ("name",),
                    f"flow {flow.name!r} is in a file named {file.name!r}",
                    f"name the file {flow.name}.yaml so it is easy to find",
                    at_key=False,
                    severity="warning",
                    code="file-name",
                )
            )
        flows[flow.name] = flow
        sources[flow.name] = source

    flow_set = FlowSet(
        flows=MappingProxyType(flows),
        sources=MappingProxyType(sources),
        version=digest.hexdigest()[:12],
        loaded_at=now,
        directory=directory,
        warnings=(),
        files=tuple(read),
    )
    if check and not any(p.severity == "error" for p in problems):
        problems.extend(check_flow_set(flow_set, prompts_dir=Path(prompts_dir) if prompts_dir else None))
    problems.sort(key=lambda p: (p.file, p.line, p.column))
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    return FlowSet(
        flows=flow_set.flows,
        sources=flow_set.sources,
        version=flow_set.version,
        loaded_at=now,
        directory=directory,
        warnings=tuple(problems),
        files=flow_set.files,
    )


def _load_one(
    file: Path, now: datetime, problems: list[Problem], digest: hashlib._Hash, read: list[Path]
) -> tuple[Flow, FlowSource] | None:
    display = display_name(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        problems.append(Problem(display, 0, 0, f"cannot read the file: {exc}", "check its permissions", code="io"))
        return None
    read.append(file)
    digest.update(file.name.encode() + b"\0" + raw + b"\0")
    try:
        doc = parse_yaml(raw.decode("utf-8"), display)
    except UnicodeDecodeError:
        problems.append(Problem(display, 0, 0, "the file is not UTF-8 text", "save it as UTF-8", code="io"))
        return None
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    if not isinstance(doc.data, dict):
        problems.append(
            Problem(
                display,
                1,
                1,
                "a flow file must be a mapping with name, start and nodes",
                "start from a sample in config/flows/",
                code="schema",
            )
        )
        return None
    try:
        flow = Flow.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, Flow, doc.positions, data=doc.data))
        return None
    calendars: list[Path] = []
    for name, schedule in flow.schedules.items():
        if schedule.holiday_calendar is None:
            continue
        ics = file.parent / schedule.holiday_calendar
        calendars.append(ics)
        _read_calendar(ics, doc.positions, ("schedules", name, "holiday_calendar"), now, problems, digest, read)
    return flow, FlowSource(file, display, doc.positions, tuple(calendars))


def _read_calendar(
    ics: Path,
    positions: PositionMap,
    where: PathKey,
    now: datetime,
    problems: list[Problem],
    digest: hashlib._Hash,
    read: list[Path],
) -> set[date] | None:
    try:
        raw = ics.read_bytes()
    except OSError:
        problems.append(
            positions.problem(
                where,
                f"holiday calendar {display_name(ics)} not found",
                "the path is relative to the flow file",
                at_key=False,
                code="calendar",
            )
        )
        return None
    read.append(ics)
    digest.update(ics.name.encode() + b"\0" + raw + b"\0")
    try:
        dates, bad = parse_calendar(raw, now)
    except ValueError as exc:
        problems.append(
            positions.problem(
                where,
                f"holiday calendar {display_name(ics)} cannot be read: {exc}",
                "export the calendar again as iCalendar (.ics)",
                at_key=False,
                code="calendar",
            )
        )
        return None
    for line, message in bad:
        problems.append(
            Problem(
                display_name(ics),
                line,
                1,
                message,
                "each VEVENT needs a DTSTART date (all-day events: DTSTART;VALUE=DATE:20261224)",
                code="calendar",
            )
        )
    return dates


def parse_calendar(raw: bytes, now: datetime) -> tuple[set[date], list[tuple[int, str]]]:
    """Closed days from iCalendar data: each VEVENT's days (DTSTART up to DTEND exclusive), RRULEs expanded over
    the window around `now`. Returns (dates, [(line, problem)]); raises ValueError when it is not iCalendar."""
    import icalendar
    from dateutil.rrule import rrulestr

    try:
        calendar = icalendar.Calendar.from_ical(raw)
    except Exception as exc:  # icalendar raises plain ValueError and others for malformed input
        raise ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    event_lines = [
        i + 1
        for i, text in enumerate(raw.decode("utf-8", "replace").splitlines())
        if text.strip().upper() == "BEGIN:VEVENT"
    ]
    window_start = date(now.year - CALENDAR_YEARS_BACK, 1, 1)
    window_end = date(now.year + CALENDAR_YEARS_AHEAD, 12, 31)
    dates: set[date] = set()
    bad: list[tuple[int, str]] = []
    for index, event in enumerate(calendar.walk("VEVENT")):
        line = event_lines[index] if index < len(event_lines) else 0
        start_prop = event.get("DTSTART")
        if start_prop is None:
            bad.append((line, "calendar event without DTSTART"))
            continue
        start = _as_date(start_prop.dt)
        end_prop = event.get("DTEND")
        end = _as_date(end_prop.dt) if end_prop is not None else start + timedelta(days=1)
        length = max((end - start).days, 1)
        starts = [start]
        rule = event.get("RRULE")
        if rule is not None:
            try:
                recurrence = rrulestr(rule.to_ical().decode(), dtstart=datetime.combine(start, datetime.min.time()))
            except (ValueError, TypeError) as exc:
                bad.append((line, f"calendar event with an unreadable RRULE: {exc}"))
                continue
            starts = [
                d.date()
                for d in recurrence.between(
                    datetime.combine(window_start, datetime.min.time()),
                    datetime.combine(window_end, datetime.min.time()),
                    inc=True,
                )
            ]
        for first in starts:
            for offset in range(length):
                dates.add(first + timedelta(days=offset))
    return dates, bad


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value

"""Business hours: is a `Schedule` open at a given instant?

Rules for this file:
- Pure functions over (schedule, instant). The instant is converted to the schedule's zone and compared as local
  wall-clock time, so a DST change needs no special case: 08:00-18:00 means 08:00-18:00 on the wall clock on
  both sides of the change. A naive instant is taken as UTC.
- Weekly ranges end at most at 24:00. A range whose end is before its start (22:00-06:00) runs past midnight
  into the next day. Day ranges may wrap (fri-mon).
- Precedence: the manual override wins; then holidays (closed); then the weekly pattern.
- Holidays come from dates and from an iCalendar file: all-day events close whole days, timed events close their
  interval (an early close on Christmas Eve), RRULE/EXDATE are honoured. The only I/O here is reading that file,
  cached by (path, mtime); the mtime is checked at most every 30 s, so a changed file is picked up without a
  reload and a busy route costs no stat per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from icalendar.cal import Component

    from ivr.flow import compiled, model

    # The engine passes compiled schedules, the admin tools validated ones: the same fields.
    Schedule = compiled.Schedule | model.Schedule

__all__ = [
    "HoursError",
    "HoursStatus",
    "HolidayCalendar",
    "WeeklyHours",
    "parse_weekly",
    "load_calendar",
    "CalendarCache",
    "schedule_status",
    "is_open",
    "is_holiday",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60


class HoursError(ValueError):
    """A schedule or holiday calendar cannot be understood."""


# --- weekly pattern ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyHours:
    """Open minutes per weekday (0 = Monday): sorted (start, end) pairs in minutes since local midnight."""

    days: tuple[tuple[tuple[int, int], ...], ...]

    def is_open(self, weekday: int, minute: int) -> bool:
        return any(start <= minute < end for start, end in self.days[weekday])


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _day_span(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    try:
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
    except ValueError:
        raise HoursError(f"{spec!r} is not a day; use mon..sun or a range like mon-fri") from None
    # fri-mon wraps over the weekend.
    return [(a + i) % 7 for i in range(((b - a) % 7) + 1)]


def parse_weekly(weekly: Mapping[str, str | Sequence[str]]) -> WeeklyHours:
    days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for spec, ranges in weekly.items():
        for text in [ranges] if isinstance(ranges, str) else ranges:
            try:
                start_s, end_s = text.split("-")
                start, end = _minutes(start_s), _minutes(end_s)
            except ValueError:
                raise HoursError(f"{text!r} is not a time range; write it like 08:00-18:00") from None
            if start == end:
                raise HoursError(f"{text!r} is an empty range; for all day write 00:00-24:00")
            for day in _day_span(spec):
                if start < end:
                    days[day].append((start, end))
                else:  # past midnight: the tail belongs to the next day
                    days[day].append((start, _MINUTES_PER_DAY))
                    days[(day + 1) % 7].append((0, end))
    return WeeklyHours(tuple(tuple(sorted(d)) for d in days))


# --- holidays ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    start: datetime  # naive local time (all-day events: midnight)
    length: timedelta
    all_day: bool
    rrule: str | None = None
    exdates: frozenset[datetime] = frozenset()


@dataclass
class HolidayCalendar:
    """Closed periods read from an iCalendar file."""

    events: list[_Event] = field(default_factory=list)

    @classmethod
    def from_ics(cls, data: bytes | str, zone: ZoneInfo | None = None) -> HolidayCalendar:
        from icalendar import Calendar

        try:
            calendar = Calendar.from_ical(data)
        except ValueError as exc:
            raise HoursError(f"not an iCalendar file: {exc}") from None
        events: list[_Event] = []
        for vevent in calendar.walk("VEVENT"):
            events.append(_event_from_ical(vevent, zone))
        return cls(events)

    def _occurrences(self, event: _Event, window_start: datetime, window_end: datetime) -> Iterable[datetime]:
        """Starts of the occurrences of `event` that may overlap [window_start, window_end)."""
        if event.rrule is None:
            yield event.start
            return
        from dateutil.rrule import rrulestr

        rule = rrulestr(event.rrule, dtstart=event.start)
        for start in rule.between(window_start - event.length, window_end, inc=True):
            if start not in event.exdates:
                yield start

    def closed_at(self, local: datetime) -> bool:
        """Is the naive local instant inside a closed period?"""
        for event in self.events:
            for start in self._occurrences(event, local, local + timedelta(seconds=1)):
                if start <= local < start + event.length:
                    return True
        return False


def _naive_local(value: date | datetime, zone: ZoneInfo | None) -> tuple[datetime, bool]:
    if isinstance(value, datetime):
        if value.tzinfo is not None and zone is not None:
            value = value.astimezone(zone)
        return value.replace(tzinfo=None), False
    return datetime.combine(value, datetime.min.time()), True


def _event_from_ical(vevent: Component, zone: ZoneInfo | None) -> _Event:
    dtstart = vevent.get("DTSTART")
    if dtstart is None:
        raise HoursError(f"calendar event {vevent.get('SUMMARY', '?')!s} has no DTSTART")
    start, all_day = _naive_local(dtstart.dt, zone)
    if vevent.get("DTEND") is not None:
        end, _ = _naive_local(vevent.get("DTEND").dt, zone)
        length = end - start
    elif vevent.get("DURATION") is not None:
        length = vevent.get("DURATION").dt
    else:  # RFC 5545: an all-day event without end lasts one day; a timed one is instantaneous
        length = timedelta(days=1) if all_day else timedelta(0)
    rrule = vevent.get("RRULE")
    exdates: set[datetime] = set()
    raw_ex = vevent.get("EXDATE")
    for item in raw_ex if isinstance(raw_ex, list) else ([raw_ex] if raw_ex is not None else []):
        for ex in item.dts:
            exdates.add(_naive_local(ex.dt, zone)[0])
    return _Event(
        start=start,
        length=max(length, timedelta(0)),
        all_day=all_day,
        rrule=rrule.to_ical().decode() if rrule is not None else None,
        exdates=frozenset(exdates),
    )


CALENDAR_CHECK_SECONDS = 30.0  # a changed calendar file is picked up within this time


@dataclass
class _CachedCalendar:
    mtime_ns: int
    checked_at: float
    calendar: HolidayCalendar


class CalendarCache:
    """Parsed calendars by (path, zone). The file's mtime is looked at (one stat) at most every `check_every`
    seconds of `monotonic` time and the file is parsed again only when the mtime changed: a route on every call
    costs neither a stat nor a parse on the event loop."""

    def __init__(
        self,
        check_every: float = CALENDAR_CHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        max_entries: int = 64,
    ) -> None:
        self.check_every = check_every
        self.monotonic = monotonic
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], _CachedCalendar] = {}

    def get(self, path: Path, zone: ZoneInfo | None = None) -> HolidayCalendar:
        key = (str(path), str(zone))
        now = self.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < self.check_every:
            return entry.calendar
        try:
            mtime_ns = path.stat().st_mtime_ns
        except OSError as exc:
            raise HoursError(f"holiday calendar {path} cannot be read: {exc.strerror}; fix holiday_calendar") from None
        if entry is not None and entry.mtime_ns == mtime_ns:
            entry.checked_at = now
            return entry.calendar
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise HoursError(f"holiday calendar {path} cannot be read: {exc.strerror}; fix holiday_calendar") from None
        calendar = HolidayCalendar.from_ics(data, zone)
        if entry is None and len(self._entries) >= self.max_entries:
            self._entries.clear()  # many calendars or zones: start over rather than grow without bound
        self._entries[key] = _CachedCalendar(mtime_ns, now, calendar)
        return calendar

    def clear(self) -> None:
        self._entries.clear()


CALENDARS = CalendarCache()


def load_calendar(path: Path, zone: ZoneInfo | None = None, *, cache: CalendarCache | None = None) -> HolidayCalendar:
    """Read an iCalendar file through the (shared) cache; see `CalendarCache`."""
    return (cache or CALENDARS).get(path, zone)


# --- the questions a route asks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoursStatus:
    open: bool
    holiday: bool
    reason: str  # override | holiday | weekly | closed (no weekly range covers the time)
    local_time: datetime


def _zone(schedule: Schedule, default_timezone: str) -> ZoneInfo:
    name = schedule.timezone or default_timezone
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise HoursError(f"unknown time zone {name!r}: {exc}") from None


def _holiday(schedule: Schedule, local: datetime, zone: ZoneInfo, base_dir: Path | None) -> bool:
    if local.date() in schedule.holidays:
        return True
    if schedule.holiday_calendar:
        path = Path(schedule.holiday_calendar)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return load_calendar(path, zone).closed_at(local.replace(tzinfo=None))
    return False


def schedule_status(
    schedule: Schedule, at: datetime, *, default_timezone: str = "UTC", base_dir: Path | None = None
) -> HoursStatus:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    zone = _zone(schedule, default_timezone)
    local = at.astimezone(zone)
    holiday = _holiday(schedule, local, zone, base_dir)
    if schedule.override is not None:
        return HoursStatus(schedule.override == "open", holiday, "override", local)
    if holiday:
        return HoursStatus(False, True, "holiday", local)
    weekly = parse_weekly(schedule.weekly)
    if weekly.is_open(local.weekday(), local.hour * 60 + local.minute):
        return HoursStatus(True, False, "weekly", local)
    return HoursStatus(False, False, "closed", local)


def is_open(schedule: Schedule, at: datetime, *, default_timezone: str = "UTC", base_dir: Path | None = None) -> bool:
    return schedule_status(schedule, at, default_timezone=default_timezone, base_dir=base_dir).open


def is_holiday(
    schedule: Schedule, at: datetime, *, default_timezone: str = "UTC", base_dir: Path | None = None
) -> bool:
    return schedule_status(schedule, at, default_timezone=default_timezone, base_dir=base_dir).holiday

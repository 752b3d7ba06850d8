"""Calling hours: may a contact be called now, and if not, from when? Pure functions over the flows' `Schedule`
(ivr.flow.hours: weekly ranges, holidays, iCalendar file, override).

Rules for this file:
- The schedule is read in the contact's time zone when the contact has one, else in the schedule's own zone:
  "09:00-20:00" means the contact's wall clock.
- The next opening is looked for among the starts of the weekly ranges and every quarter of an hour inside
  them, over the next `HORIZON_DAYS` days (a timed holiday may end inside a range); none found (a schedule closed
  by its override, a long holiday) -> look again in an hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.flow.hours import is_open, parse_weekly
from ivr.flow.model import Schedule

HORIZON_DAYS = 14
STEP_MINUTES = 15
RETRY_CLOSED = timedelta(hours=1)


def in_zone(schedule: Schedule, contact_zone: str) -> Schedule:
    """The schedule read in the contact's zone ("" keeps the schedule's own)."""
    return schedule.model_copy(update={"timezone": contact_zone}) if contact_zone else schedule


def check_calendar(schedule: Schedule, base_dir: Path | None) -> None:
    """Raise HoursError when the schedule's holiday calendar cannot be read (a campaign is refused up front)."""
    if schedule.holiday_calendar:
        is_open(schedule, datetime.now(UTC), base_dir=base_dir)


def next_call_time(schedule: Schedule, at: datetime, contact_zone: str = "", base_dir: Path | None = None) -> datetime:
    """`at` if the contact may be called then, else the next moment the hours open (or `at` + 1 h to look again)."""
    sched = in_zone(schedule, contact_zone)
    if is_open(sched, at, base_dir=base_dir):
        return at
    if sched.override == "closed":
        return at + RETRY_CLOSED
    zone = ZoneInfo(sched.timezone or "UTC")
    local = at.astimezone(zone)
    weekly = parse_weekly(sched.weekly)
    for day in range(HORIZON_DAYS + 1):
        date = (local + timedelta(days=day)).date()
        for start, end in weekly.days[date.weekday()]:
            for minute in range(start, end, STEP_MINUTES):
                candidate = datetime(date.year, date.month, date.day, tzinfo=zone) + timedelta(minutes=minute)
                candidate = candidate.astimezone(UTC)
                if candidate > at and is_open(sched, candidate, base_dir=base_dir):
                    return candidate
    return at + RETRY_CLOSED

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ivr.flow.hours import HoursError, is_holiday, is_open, parse_weekly, schedule_status
from ivr.flow.model import Schedule

UTC = UTC


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def sched(**kw):
    kw.setdefault("timezone", "Europe/Vilnius")
    return Schedule(**kw)


def test_weekly_is_local_wall_clock_in_winter_and_summer():
    s = sched(weekly={"mon-fri": "08:00-18:00"})
    # Winter (EET, UTC+2): 05:59 UTC is 07:59 local -> closed; 06:00 UTC is 08:00 -> open.
    assert not is_open(s, utc(2026, 3, 23, 5, 59))
    assert is_open(s, utc(2026, 3, 23, 6, 0))
    # Summer (EEST, UTC+3): the same 05:59 UTC is already 08:59 local.
    assert is_open(s, utc(2026, 3, 30, 5, 59))
    assert not is_open(s, utc(2026, 3, 30, 15, 0))  # 18:00 local: end is exclusive
    assert not is_open(s, utc(2026, 3, 28, 9, 0))  # Saturday


def test_spring_forward_day():
    # 2026-03-29 (Sunday) 03:00 EET jumps to 04:00 EEST at 01:00 UTC.
    s = sched(weekly={"sun": "02:00-05:00"})
    assert is_open(s, utc(2026, 3, 29, 0, 30))  # 02:30 EET
    assert is_open(s, utc(2026, 3, 29, 1, 30))  # 04:30 EEST
    assert not is_open(s, utc(2026, 3, 29, 2, 0))  # 05:00 EEST
    # The skipped hour is never open.
    gap = sched(weekly={"sun": "03:00-04:00"})
    assert not any(is_open(gap, utc(2026, 3, 29, h, m)) for h in range(0, 3) for m in (0, 30, 59))


def test_fall_back_day_repeated_hour_is_open_twice():
    # 2026-10-25 (Sunday) 04:00 EEST falls back to 03:00 EET at 01:00 UTC.
    s = sched(weekly={"sun": "03:00-04:00"})
    assert is_open(s, utc(2026, 10, 25, 0, 30))  # 03:30 EEST
    assert is_open(s, utc(2026, 10, 25, 1, 30))  # 03:30 EET (second time)
    assert not is_open(s, utc(2026, 10, 25, 2, 0))  # 04:00 EET


def test_24_00_and_ranges_past_midnight_and_wrapping_days():
    s = sched(timezone="UTC", weekly={"sat": "00:00-24:00", "fri": ["09:00-12:00", "22:00-06:00"]})
    assert is_open(s, utc(2026, 3, 28, 23, 59))  # Saturday, 24:00 end
    assert is_open(s, utc(2026, 3, 27, 23, 0))  # Friday 23:00
    assert not is_open(s, utc(2026, 3, 27, 21, 59))
    assert is_open(s, utc(2026, 3, 27, 10, 0))
    w = parse_weekly({"fri-mon": "10:00-11:00"})
    assert [bool(d) for d in w.days] == [True, False, False, False, True, True, True]


def test_empty_range_is_rejected():
    with pytest.raises(HoursError, match="empty range"):
        parse_weekly({"mon": "08:00-08:00"})


def test_holiday_dates_close_the_day_and_override_wins():
    s = sched(weekly={"mon-sun": "00:00-24:00"}, holidays=[date(2026, 2, 16)])
    at = utc(2026, 2, 16, 10, 0)
    status = schedule_status(s, at)
    assert (status.open, status.holiday, status.reason) == (False, True, "holiday")
    # The holiday is the LOCAL date: 22:30 UTC on the 15th is already the 16th in Vilnius.
    assert is_holiday(s, utc(2026, 2, 15, 22, 30))
    assert schedule_status(
        sched(weekly={"mon-sun": "00:00-24:00"}, holidays=[date(2026, 2, 16)], override="open"), at
    ).open
    closed = sched(weekly={"mon-sun": "00:00-24:00"}, override="closed")
    st = schedule_status(closed, at)
    assert (st.open, st.reason) == (False, "override")


def test_naive_instant_is_utc():
    s = sched(timezone="UTC", weekly={"mon": "10:00-11:00"})
    assert is_open(s, datetime(2026, 3, 23, 10, 30))


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:xmas@test
SUMMARY:Christmas
DTSTART;VALUE=DATE:20261224
DTEND;VALUE=DATE:20261227
END:VEVENT
BEGIN:VEVENT
UID:newyear@test
SUMMARY:New Year
DTSTART;VALUE=DATE:20270101
RRULE:FREQ=YEARLY
EXDATE;VALUE=DATE:20290101
END:VEVENT
BEGIN:VEVENT
UID:nye@test
SUMMARY:Early close
DTSTART;TZID=Europe/Vilnius:20261231T140000
DTEND;TZID=Europe/Vilnius:20270101T000000
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def ics_dir(tmp_path: Path) -> Path:
    (tmp_path / "holidays.ics").write_text(ICS.replace("\n", "\r\n"))
    return tmp_path


def test_icalendar_all_day_recurring_and_timed_closures(ics_dir: Path):
    s = sched(weekly={"mon-sun": "08:00-20:00"}, holiday_calendar="holidays.ics")

    def status(*a):
        return schedule_status(s, utc(*a), base_dir=ics_dir)

    assert status(2026, 12, 23, 10, 0).open
    assert status(2026, 12, 24, 10, 0).holiday and not status(2026, 12, 24, 10, 0).open
    assert status(2026, 12, 26, 10, 0).holiday
    assert status(2026, 12, 27, 10, 0).open  # DTEND is exclusive
    assert status(2030, 1, 1, 10, 0).holiday  # RRULE yearly
    assert status(2029, 1, 1, 10, 0).open  # EXDATE
    assert status(2026, 12, 31, 11, 59).open  # 13:59 local
    assert status(2026, 12, 31, 12, 0).reason == "holiday"  # 14:00 local: early close


def test_calendar_file_change_is_picked_up(ics_dir: Path, monkeypatch):
    import os

    from ivr.flow import hours

    now = [1000.0]
    monkeypatch.setattr(hours, "CALENDARS", hours.CalendarCache(check_every=30.0, monotonic=lambda: now[0]))
    s = sched(weekly={"mon-sun": "08:00-20:00"}, holiday_calendar="holidays.ics")
    assert is_holiday(s, utc(2026, 12, 24, 10), base_dir=ics_dir)
    path = ics_dir / "holidays.ics"
    path.write_text(ICS.replace("20261224", "20261225"))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    now[0] += 29.0  # within the check interval: the cached calendar, no stat
    assert is_holiday(s, utc(2026, 12, 24, 10), base_dir=ics_dir)
    now[0] += 2.0
    assert not is_holiday(s, utc(2026, 12, 24, 10), base_dir=ics_dir)


def test_calendar_is_stat_at_most_once_per_interval(ics_dir: Path, monkeypatch):
    from ivr.flow import hours

    now = [0.0]
    cache = hours.CalendarCache(check_every=30.0, monotonic=lambda: now[0])
    calls = {"stat": 0, "read": 0}
    real_stat, real_read = Path.stat, Path.read_bytes

    def stat(self, *a, **kw):
        calls["stat"] += 1
        return real_stat(self, *a, **kw)

    def read_bytes(self):
        calls["read"] += 1
        return real_read(self)

    monkeypatch.setattr(Path, "stat", stat)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    path = ics_dir / "holidays.ics"
    first = cache.get(path)
    for _ in range(100):  # a busy route: one call after another within the interval
        assert cache.get(path) is first
    assert calls == {"stat": 1, "read": 1}
    now[0] = 31.0  # the interval passed, the file did not change: one stat, no parse
    assert cache.get(path) is first and calls == {"stat": 2, "read": 1}
    path.unlink()
    assert cache.get(path) is first  # checked 0 s ago
    now[0] = 62.0
    with pytest.raises(HoursError, match="cannot be read"):
        cache.get(path)


def test_missing_calendar_is_a_typed_error(tmp_path: Path):
    s = sched(weekly={"mon": "08:00-18:00"}, holiday_calendar="nope.ics")
    with pytest.raises(HoursError, match="holiday_calendar"):
        is_open(s, utc(2026, 3, 23, 10), base_dir=tmp_path)

"""The pure parts of campaigns, without sockets: pacing and the abandon guard, the retry policy, calling hours in the
contact's zone, CSV parsing of contact and do-not-call lists, the verdict read from a flow report."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from ivr.campaigns.contacts import CSVTooLarge, parse_contacts, parse_dnc
from ivr.campaigns.dialer import contact_verdict
from ivr.campaigns.hours import next_call_time
from ivr.campaigns.model import AbandonGuard, CampaignSettings, RetryPolicy
from ivr.campaigns.pacing import guarded_ratio, pace
from ivr.flow.model import Schedule

PATTERN = re.compile(r"^\+?[1-9][0-9]{6,14}$")
GUARD = AbandonGuard(limit=0.03, backoff_from=0.02, pause_at=0.027, min_answered=20)

# --- pacing and the abandon guard --------------------------------------------------------------------------------


def test_progressive_pacing_is_ratio_times_available_agents():
    assert pace(1.5, 4, answered=100, abandoned=0, guard=GUARD).slots == 6
    assert pace(1.5, 3, answered=100, abandoned=0, guard=GUARD).slots == 4  # floor(4.5)
    assert pace(2.0, 0, answered=100, abandoned=0, guard=GUARD).slots == 0  # nobody to take the calls
    assert pace(2.0, 0, answered=100, abandoned=0, guard=GUARD).reason == "no_agents"


def test_without_evidence_the_dialer_goes_one_to_one():
    assert guarded_ratio(3.0, answered=19, abandoned=0, guard=GUARD) == (1.0, "no_evidence")
    assert guarded_ratio(3.0, answered=20, abandoned=0, guard=GUARD) == (3.0, "configured")


def test_the_guard_backs_off_linearly_to_one_to_one_then_pauses_before_the_limit():
    ratios = [guarded_ratio(3.0, answered=1000, abandoned=n, guard=GUARD) for n in (10, 20, 22, 25, 26, 27, 30)]
    assert ratios[0] == (3.0, "configured") and ratios[1] == (3.0, "configured")  # 1 %, 2 %
    values = [r for r, _ in ratios[2:5]]
    assert all(reason == "backing_off" for _, reason in ratios[2:5])
    assert values == sorted(values, reverse=True) and 1.0 < values[-1] < values[0] < 3.0  # 2.2 %, 2.5 %, 2.6 %
    assert ratios[5] == (0.0, "paused") and ratios[6] == (0.0, "paused")  # 2.7 %: paused, before the 3 % limit
    assert pace(3.0, 10, answered=1000, abandoned=27, guard=GUARD).slots == 0
    # at 1:1 configured there is nothing to back off from until the pause
    assert guarded_ratio(1.0, answered=1000, abandoned=25, guard=GUARD) == (1.0, "backing_off")


def test_guard_settings_must_be_ordered():
    with pytest.raises(ValidationError, match="backoff_from < pause_at <= limit"):
        AbandonGuard(limit=0.03, backoff_from=0.03, pause_at=0.02)


# --- retries ---------------------------------------------------------------------------------------------------


def test_retry_delay_per_result():
    policy = RetryPolicy(busy=600, no_answer=1800, failed=3600, abandoned=86400)
    assert [policy.delay(r) for r in ("busy", "no_answer", "failed", "abandoned")] == [600, 1800, 3600, 86400]
    assert policy.delay("something else") == 3600  # unknown results wait like failures
    with pytest.raises(ValidationError):
        RetryPolicy(busy=5)  # a minute at least: no hammering a busy line


def test_campaign_settings_need_hours_and_refuse_a_calendar_path():
    with pytest.raises(ValidationError, match="schedule"):
        CampaignSettings.model_validate({})
    weekly = {"mon-fri": "09:00-20:00"}
    with pytest.raises(ValidationError, match="schedule.timezone is required"):  # never UTC by default
        CampaignSettings.model_validate({"schedule": {"weekly": weekly}})
    zone = "Europe/Vilnius"
    with pytest.raises(ValidationError, match="flows directory"):
        CampaignSettings.model_validate(
            {"schedule": {"timezone": zone, "weekly": weekly, "holiday_calendar": "../../etc/passwd.ics"}}
        )
    ok = CampaignSettings.model_validate(
        {"schedule": {"timezone": zone, "weekly": weekly, "holiday_calendar": "holidays-lt.ics"}}
    )
    assert ok.ratio == 1.5 and ok.max_attempts == 3


# --- calling hours ---------------------------------------------------------------------------------------------

HOURS = Schedule(timezone="Europe/Vilnius", weekly={"mon-fri": "09:00-20:00", "sat": "10:00-14:00"})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_hours_are_read_in_the_contacts_zone():
    monday_10_vilnius = utc(2026, 3, 23, 8, 0)
    assert next_call_time(HOURS, monday_10_vilnius) == monday_10_vilnius  # open: now
    assert next_call_time(HOURS, monday_10_vilnius, "America/New_York") > monday_10_vilnius  # 04:00 there
    assert next_call_time(HOURS, monday_10_vilnius) == monday_10_vilnius
    assert next_call_time(HOURS, monday_10_vilnius, "America/New_York") == utc(2026, 3, 23, 13, 0)  # 09:00 EDT


def test_next_opening_skips_nights_weekends_and_holidays():
    friday_evening = utc(2026, 3, 27, 18, 30)  # 20:30 in Vilnius
    assert next_call_time(HOURS, friday_evening) == utc(2026, 3, 28, 8, 0)  # Saturday 10:00 (UTC+2)
    saturday_late = utc(2026, 3, 28, 12, 30)  # 14:30 Saturday; Sunday closed; DST starts Sunday 29 March
    assert next_call_time(HOURS, saturday_late) == utc(2026, 3, 30, 6, 0)  # Monday 09:00 (UTC+3 now)
    easter = HOURS.model_copy(update={"holidays": [date(2026, 4, 6)]})  # Easter Monday closed
    assert next_call_time(easter, utc(2026, 4, 5, 12, 0)) == utc(2026, 4, 7, 6, 0)
    closed = HOURS.model_copy(update={"override": "closed"})
    assert next_call_time(closed, friday_evening) == friday_evening + timedelta(hours=1)  # look again later


# --- CSV -------------------------------------------------------------------------------------------------------


def test_contacts_csv_with_formatting_semicolons_bom_and_variables():
    data = (
        "\ufeffNumber;Name;Language;Timezone;offer\r\n"
        "+370 600 00001;Ona Onaitė;lt;Europe/Vilnius;gold\r\n"
        "\r\n"
        "(+370) 600-00002;Jonas;;;silver\r\n"
    ).encode()
    parsed = parse_contacts(data, number_pattern=PATTERN, max_rows=10)
    assert parsed.problems == []
    first, second = parsed.rows
    assert (first.line, first.number, first.name, first.language, first.timezone) == (
        2,
        "+37060000001",
        "Ona Onaitė",
        "lt",
        "Europe/Vilnius",
    )
    assert first.variables == {"offer": "gold"} and (second.line, second.number) == (4, "+37060000002")


def test_the_delimiter_is_the_one_the_header_uses_most_outside_quotes():
    tab = parse_contacts(b"number\tname\n+37060000001\tOna, Jr.\n", number_pattern=PATTERN, max_rows=10)
    assert tab.problems == [] and tab.rows[0].name == "Ona, Jr."
    quoted = b'number,"plan;tier;x"\n+37060000001,gold\n'  # semicolons inside quotes do not count
    assert parse_contacts(quoted, number_pattern=PATTERN, max_rows=10).problems[0].column == "plan;tier;x"
    # a 1 MB header of quoted cells (csv.Sniffer took 1.5 s on 80 KB, quadratic): one bounded problem
    runaway = ('a,"' + "x" * 10 + '"') * (1_000_000 // 14)
    [problem] = parse_contacts(runaway.encode(), number_pattern=PATTERN, max_rows=10).problems
    assert problem.line == 1 and problem.message.startswith("71429 columns; at most 24")


def test_every_bad_row_is_reported_with_its_line_and_what_to_do():
    data = (
        b"number,name,language,timezone,offer\n"
        b"+37060000001,Ona,lt,,gold\n"
        b"1900123,Premium,,,gold\n"  # not a number this service may dial
        b"+37060000001,Twice,,,gold\n"  # duplicate of line 2
        b"+37060000003,Bad,english,,gold\n"
        b"+37060000004,Zone,,Mars/Olympus,gold\n"
        b"+37060000005,Cells,,\n"
        b'+37060000006,Comma,,,"a,b"\n'  # Asterisk would split the variable
        b",Empty,,,gold\n"
    )
    parsed = parse_contacts(data, number_pattern=re.compile(r"^\+370[0-9]{8}$"), max_rows=100)
    found = [(p.line, p.column) for p in parsed.problems]
    assert found == [
        (3, "number"),
        (4, "number"),
        (5, "language"),
        (6, "timezone"),
        (7, ""),
        (8, "offer"),
        (9, "number"),
    ]
    messages = {p.line: p.message for p in parsed.problems}
    assert "also on line 2" in messages[4] and "IANA" in messages[6] and "4 cells for 5 columns" in messages[7]
    assert "may call" in messages[3] and "empty" in messages[9]
    assert [r.line for r in parsed.rows] == [2]


def test_header_problems_and_limits():
    bad = parse_contacts(b"phone,name\n+37060000001,Ona\n", number_pattern=PATTERN, max_rows=10)
    assert [p.message for p in bad.problems][0].startswith("no `number` column")
    assert "variable name" in parse_contacts(b"number,1st\n", number_pattern=PATTERN, max_rows=10).problems[0].message
    ivr_var = parse_contacts(b"number,ivr_status\n", number_pattern=PATTERN, max_rows=10)
    assert ivr_var.problems and ivr_var.problems[0].column == "ivr_status"  # the service's own variables
    assert parse_contacts(b"", number_pattern=PATTERN, max_rows=10).problems[0].message.startswith("the file is empty")
    latin1 = parse_contacts("number,name\n+37060000001,Müller\n".encode("latin-1"), number_pattern=PATTERN, max_rows=9)
    assert latin1.problems[0].line == 2 and "UTF-8" in latin1.problems[0].message
    with pytest.raises(CSVTooLarge, match="more than 2 rows"):
        parse_contacts(b"number\n+37060000001\n+37060000002\n+37060000003\n", number_pattern=PATTERN, max_rows=2)


def test_dnc_csv():
    rows, problems = parse_dnc(b"number,reason\n+370 600 00001,asked\n00370600,\nabc,\n", max_rows=10)
    assert [(r.line, r.number, r.reason) for r in rows] == [(2, "+37060000001", "asked"), (3, "00370600", "")]
    assert [(p.line, p.column) for p in problems] == [(4, "number")]
    assert parse_dnc(b"number,offer\n1\n", max_rows=10)[1][0].column == "offer"


# --- what a flow report says -----------------------------------------------------------------------------------


def test_contact_verdict_from_the_flow_report():
    transfer = SimpleNamespace(kind="transfer")
    menu = SimpleNamespace(kind="menu")
    assert contact_verdict(SimpleNamespace(outcome="transferred", visits=[menu, transfer])) == "connected"
    assert contact_verdict(SimpleNamespace(outcome="contained", visits=[menu, transfer])) == "abandoned"
    assert contact_verdict(SimpleNamespace(outcome="abandoned", visits=[menu, transfer])) == "abandoned"
    assert contact_verdict(SimpleNamespace(outcome="abandoned", visits=[menu])) == "declined"

"""What a campaign is set up with (`CampaignSettings`), validated by pydantic: the API's request body embeds it
and the storage keeps it as JSON, so a stored campaign is read back through the same rules.

Rules for this file:
- Every field has a default a call-center admin would pick, except the calling hours: they are a legal matter, so
  a campaign names them, with their time zone (never UTC by default).
- A holiday calendar is a plain file name in the flows directory (never a path from the network).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.flow.model import Schedule

_CALENDAR_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,80}\.ics$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RetryPolicy(_Strict):
    """Seconds to wait before the next attempt, by the last attempt's result."""

    busy: float = Field(900.0, ge=60, le=7 * 86400, description="After a busy line (or congestion).")
    no_answer: float = Field(3600.0, ge=60, le=7 * 86400, description="After ringing out unanswered.")
    failed: float = Field(7200.0, ge=60, le=7 * 86400, description="After a failed or unavailable line.")
    abandoned: float = Field(
        86400.0, ge=60, le=7 * 86400, description="After the contact answered and no agent took the call."
    )
    error: float = Field(300.0, ge=10, le=86400, description="After an unknown outcome (Asterisk unreachable).")

    def delay(self, result: str) -> float:
        return float(getattr(self, result, self.failed))


class AbandonGuard(_Strict):
    """The abandon-rate guard: abandoned / answered attempts over the last `window` seconds (docs/campaigns.md)."""

    limit: float = Field(0.03, gt=0, le=0.5, description="The legal limit the guard keeps under (3 %).")
    backoff_from: float = Field(0.02, ge=0, le=0.5, description="From this rate on the ratio falls toward 1:1.")
    pause_at: float = Field(0.027, gt=0, le=0.5, description="At or over this rate dialling pauses.")
    min_answered: int = Field(
        20, ge=1, le=10_000, description="Fewer answered calls in the window: dial 1:1 (no evidence yet)."
    )
    window: float = Field(3600.0, ge=60, le=7 * 86400, description="Seconds of history the rate is computed over.")

    @model_validator(mode="after")
    def _ordered(self) -> AbandonGuard:
        if not self.backoff_from < self.pause_at <= self.limit:
            raise ValueError("the guard needs backoff_from < pause_at <= limit (for example 0.02 < 0.027 <= 0.03)")
        return self


class CampaignSettings(_Strict):
    """The dialling policy of one campaign."""

    schedule: Schedule = Field(
        description="Calling hours (weekly ranges, holidays; `timezone` required) in the contact's time zone, else "
        "in the schedule's."
    )
    ratio: float = Field(
        1.5, ge=1.0, le=5.0, description="At most ratio x available agents of the queue ring at once (progressive)."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per contact.")
    ring_timeout: float = Field(30.0, ge=5, le=120, description="Seconds a contact's phone rings.")
    flow_time: float = Field(
        60.0,
        ge=10,
        le=600,
        description="Seconds an answered contact keeps counting as a call in progress (against the pace) while "
        "the campaign flow runs, until its report comes: the greeting before the queue, plus a margin.",
    )
    caller_id: str | None = Field(
        None, pattern=r"^\+?[0-9]{3,20}$", description="The number contacts see (default: the trunk's)."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    abandon: AbandonGuard = Field(default_factory=AbandonGuard)

    @field_validator("schedule")
    @classmethod
    def _zone_named(cls, schedule: Schedule) -> Schedule:
        if schedule.timezone is None:
            raise ValueError(
                "schedule.timezone is required: calling hours are a legal matter, name their zone (for example "
                "Europe/Vilnius); contacts with a timezone in the CSV are called by their own"
            )
        return schedule

    @field_validator("schedule")
    @classmethod
    def _calendar_in_flows_dir(cls, schedule: Schedule) -> Schedule:
        name = schedule.holiday_calendar
        if name is not None and (not _CALENDAR_NAME.fullmatch(name) or ".." in name):
            raise ValueError(
                f"holiday_calendar {name[:60]!r}: name an .ics file in the flows directory (like holidays-lt.ics)"
            )
        return schedule

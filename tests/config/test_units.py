"""ivr.units: the Duration shared by the flow language and the settings."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

import ivr.flow.model
import ivr.settings
from ivr.units import Duration, parse_duration


@pytest.mark.parametrize(
    ("written", "seconds"),
    [(5, 5.0), (2.5, 2.5), ("5", 5.0), ("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), (" 1.5 s ", 1.5)],
)
def test_durations_become_float_seconds(written: object, seconds: float) -> None:
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", [-1, True, "5x", "ms", "", None, [5]])
def test_bad_durations_say_how_to_write_one(written: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(written)


def test_one_duration_type_for_flows_and_settings() -> None:
    # the flow model re-exports it (older imports keep working); the settings take it from ivr.units, a layer below
    assert ivr.flow.model.Duration is Duration
    assert ivr.settings.Duration is Duration

    class Timer(BaseModel):
        wait: Duration

    assert Timer(wait="250ms").wait == 0.25
    with pytest.raises(ValidationError, match="write it like 5s, 500ms, 2m or 1h"):
        Timer(wait="soon")

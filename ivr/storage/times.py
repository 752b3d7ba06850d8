"""Times in and out of the database, shared by every SQL module: aware UTC datetimes in, aware UTC datetimes back
(SQLite returns ISO text, PostgreSQL timestamptz)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, never as local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def opt(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def read(value: Any) -> Any:
    """A stored time (ISO text or datetime, or NULL) as an aware UTC datetime (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value)

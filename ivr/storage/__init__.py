"""Durable data: voicemail messages, callback requests (+ their attempts and leases), the recordings index,
post-call survey answers, and outbound campaigns (contacts, attempts, the do-not-call list).

Rules for this package:
- One small interface (`Storage`, in `models`), written once over a transaction interface (`sql`), with two
  backends: SQLite in a worker thread (`sqlite`: the default, embedded) and PostgreSQL through an asyncpg pool
  (`postgres`: several instances on one database). "memory:" is SQLite on an in-memory database, so tests
  exercise the real SQL.
- One schema and one list of versioned migrations for both (`migrations`).
- `testing` starts throwaway PostgreSQL clusters for tests and benchmarks; the service never imports it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ivr.storage.migrations import MIGRATIONS, SCHEMA_VERSION
from ivr.storage.models import (
    CALLBACK_RESULTS,
    CALLBACK_STATES,
    CALLBACK_VERDICTS,
    CAMPAIGN_RESULTS,
    CAMPAIGN_STATES,
    CAMPAIGN_VERDICTS,
    CONTACT_STATES,
    RECORDING_STATES,
    CallbackAttempt,
    CallbackRequest,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignStats,
    Conflict,
    DncEntry,
    NotFound,
    Recording,
    Storage,
    StorageError,
    StorageUnavailable,
    SurveyAnswer,
    Voicemail,
    utcnow,
)
from ivr.storage.sql import SQLStorage
from ivr.storage.sqlite import SQLiteStorage

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def open_storage(url: str = "sqlite:///var/ivr.db", *, password: str | None = None, **options: Any) -> SQLStorage:
    """Open the storage named by `url`:

    - `sqlite:///relative/path.db` (relative to the working directory; `ivr.settings` already makes it absolute
      against the project root), `sqlite:////absolute/path.db`, or `memory:` for a throw-away database: ready
      to use on return;
    - `postgresql://user@host:5432/dbname[?sslmode=require]`: returns a `PostgresStorage`; `await .open()`
      connects and migrates. `password` comes from the environment or a file, never from the URL; `options` are
      the pool settings (min_size, max_size, connect_timeout, command_timeout, backoff_min, backoff_max)."""
    if url in ("memory:", "memory://", "sqlite:///:memory:"):
        return SQLiteStorage(":memory:")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise StorageError("sqlite URL without a path; write it like sqlite:////var/lib/ivr/ivr.db")
        return SQLiteStorage(path)
    if url.startswith("sqlite://"):
        raise StorageError(
            f"{url!r}: write sqlite URLs with three slashes before a relative path "
            "(sqlite:///var/ivr.db) or four before an absolute one (sqlite:////var/lib/ivr/ivr.db)"
        )
    if is_postgres_url(url):
        parts = urlsplit(url)
        if parts.password is not None:
            raise StorageError(
                "the storage URL must not contain a password; put it in IVR_STORAGE_PASSWORD or storage.password_file"
            )
        if not parts.hostname or not parts.path.strip("/"):
            raise StorageError(f"{url!r}: write PostgreSQL URLs like postgresql://ivr@db.example.com:5432/ivr")
        from ivr.storage.postgres import PostgresStorage  # asyncpg is only needed when PostgreSQL is used

        return PostgresStorage(url, password=password, **options)
    raise StorageError(
        f"unsupported storage URL {url!r}; use sqlite:///path/to/ivr.db, postgresql://user@host:5432/ivr or memory:"
    )


__all__ = [
    "CALLBACK_RESULTS",
    "CALLBACK_STATES",
    "CALLBACK_VERDICTS",
    "CAMPAIGN_RESULTS",
    "CAMPAIGN_STATES",
    "CAMPAIGN_VERDICTS",
    "CONTACT_STATES",
    "MIGRATIONS",
    "RECORDING_STATES",
    "SCHEMA_VERSION",
    "CallbackAttempt",
    "CallbackRequest",
    "Campaign",
    "CampaignAttempt",
    "CampaignContact",
    "CampaignStats",
    "Conflict",
    "DncEntry",
    "NotFound",
    "Recording",
    "SQLStorage",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "SurveyAnswer",
    "Voicemail",
    "is_postgres_url",
    "open_storage",
    "utcnow",
]

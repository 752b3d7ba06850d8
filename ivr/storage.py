"""Durable data: voicemail messages, callback requests (+ their attempts) and the recordings index.

Rules for this file:
- One small interface (`Storage`), one implementation over SQLite. "memory:" is the same implementation on an
  in-memory database, so tests exercise the real SQL.
- The event loop never blocks on the database: every call runs in one dedicated worker thread (sqlite3 objects
  stay in the thread that made them; one writer means no "database is locked" between our own calls).
- The SQL is portable on purpose (no SQLite-only syntax beyond `?` placeholders and the pragmas in `_open`), so a
  PostgreSQL implementation is a new class with the same schema, not a redesign. Times are stored as ISO-8601 UTC
  text; a PostgreSQL port would use `timestamptz`.
- The schema is versioned in `schema_version`; `MIGRATIONS[i]` takes the database from version i to i+1 and is
  applied once, in a transaction, when the file is opened.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

T = TypeVar("T")

# Callback request states. `dialing` is held only while an attempt rings; a crash (or a failed write) leaves it
# behind and `requeue_stale_callbacks()` puts such rows back to `pending` (at start-up, and once they are older
# than any ring time). `answered`: the customer answered and the callback flow runs; the flow's report decides
# between `completed` (connected to the queue) and another attempt (`resolve_answered_callback`).
CALLBACK_STATES = ("pending", "dialing", "answered", "completed", "failed", "cancelled")
# Attempt results (also the `result` label of ivr_callbacks, so the set is fixed). `no_agent`: answered, but the
# flow did not connect the customer to the queue (hung up in the flow, error, ...).
CALLBACK_RESULTS = ("answered", "busy", "no_answer", "no_agent", "failed", "error")
RECORDING_STATES = ("recording", "paused", "finished")


class StorageError(Exception):
    """The database could not be opened or a write failed; the message says which file and why."""


class NotFound(StorageError):
    """No row with that id."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive datetimes are taken as UTC, never as local time
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@overload
def _dt(value: str) -> datetime: ...
@overload
def _dt(value: str | None) -> datetime | None: ...
def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _inserted_id(cur: sqlite3.Cursor) -> int:
    rowid = cur.lastrowid
    if rowid is None:  # only after an INSERT that inserted nothing, which these never do
        raise RuntimeError("the INSERT returned no row id")
    return rowid


# --- models --------------------------------------------------------------------------------------------------


@dataclass
class Voicemail:
    mailbox: str
    caller: str
    path: str
    seconds: float
    flow: str = ""
    call_id: str = ""
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass
class CallbackRequest:
    """A caller asked to be called back. `flow` is the flow the answered callback runs (it offers the queue)."""

    number: str
    queue: str
    flow: str = "callback"
    caller_name: str = ""
    source_call_id: str = ""
    language: str = ""
    requested_at: datetime = field(default_factory=utcnow)
    not_before: datetime | None = None  # first attempt not before this time (default: requested_at)
    max_attempts: int = 3
    attempts: int = 0
    state: str = "pending"
    last_result: str | None = None
    next_attempt_at: datetime | None = None
    id: int | None = None


@dataclass
class CallbackAttempt:
    callback_id: int
    result: str
    at: datetime
    call_id: str = ""
    id: int | None = None


@dataclass
class Recording:
    call_id: str
    path: str
    caller: str = ""
    agent: str = ""
    flow: str = ""
    queue: str = ""
    channel: str = ""
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    seconds: float | None = None
    state: str = "recording"
    id: int | None = None


@runtime_checkable
class Storage(Protocol):
    async def add_voicemail(self, vm: Voicemail) -> int: ...
    async def list_voicemails(self, mailbox: str | None = None, limit: int = 100) -> list[Voicemail]: ...

    async def add_callback(self, req: CallbackRequest) -> int: ...
    async def get_callback(self, callback_id: int) -> CallbackRequest: ...
    async def list_callbacks(
        self, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[CallbackRequest]: ...
    async def due_callbacks(self, now: datetime, limit: int, queue: str | None = None) -> list[CallbackRequest]: ...
    async def due_callback_queues(self, now: datetime) -> list[str]: ...
    async def mark_callback_dialing(self, callback_id: int, at: datetime) -> bool: ...
    async def record_callback_attempt(
        self, callback_id: int, result: str, at: datetime, *, retry_at: datetime | None = None, call_id: str = ""
    ) -> CallbackRequest: ...
    async def callback_attempts(self, callback_id: int) -> list[CallbackAttempt]: ...
    async def resolve_answered_callback(
        self, callback_id: int, connected: bool, at: datetime, *, retry_at: datetime | None = None
    ) -> CallbackRequest | None: ...
    async def cancel_callback(self, callback_id: int) -> bool: ...
    async def requeue_stale_callbacks(
        self, claimed_before: datetime | None = None, keep: Iterable[int] = ()
    ) -> int: ...
    async def close_stale_answered_callbacks(self, answered_before: datetime) -> int: ...

    async def add_recording(self, rec: Recording) -> int: ...
    async def set_recording_state(self, recording_id: int, state: str) -> None: ...
    async def finish_recording(self, recording_id: int, end: datetime, seconds: float) -> None: ...
    async def get_recording(self, recording_id: int) -> Recording: ...
    async def list_recordings(
        self,
        *,
        call_id: str | None = None,
        caller: str | None = None,
        agent: str | None = None,
        flow: str | None = None,
        queue: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Recording]: ...

    async def close(self) -> None: ...


# --- schema --------------------------------------------------------------------------------------------------

MIGRATIONS: list[tuple[str, ...]] = [
    (  # 0 -> 1
        """CREATE TABLE voicemail (
            id INTEGER PRIMARY KEY, mailbox VARCHAR(80) NOT NULL, caller VARCHAR(80) NOT NULL,
            path VARCHAR(500) NOT NULL, seconds REAL NOT NULL, flow VARCHAR(80) NOT NULL,
            call_id VARCHAR(80) NOT NULL, created_at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX voicemail_mailbox ON voicemail (mailbox, created_at)",
        """CREATE TABLE callback (
            id INTEGER PRIMARY KEY, number VARCHAR(40) NOT NULL, queue VARCHAR(80) NOT NULL,
            flow VARCHAR(80) NOT NULL, caller_name VARCHAR(80) NOT NULL, source_call_id VARCHAR(80) NOT NULL,
            language VARCHAR(16) NOT NULL, requested_at VARCHAR(40) NOT NULL, next_attempt_at VARCHAR(40) NOT NULL,
            max_attempts INTEGER NOT NULL, attempts INTEGER NOT NULL, state VARCHAR(16) NOT NULL,
            last_result VARCHAR(16))""",
        "CREATE INDEX callback_due ON callback (state, next_attempt_at)",
        """CREATE TABLE callback_attempt (
            id INTEGER PRIMARY KEY, callback_id INTEGER NOT NULL REFERENCES callback (id),
            result VARCHAR(16) NOT NULL, at VARCHAR(40) NOT NULL, call_id VARCHAR(80) NOT NULL)""",
        "CREATE INDEX callback_attempt_cb ON callback_attempt (callback_id)",
        """CREATE TABLE recording (
            id INTEGER PRIMARY KEY, call_id VARCHAR(80) NOT NULL, path VARCHAR(500) NOT NULL,
            caller VARCHAR(80) NOT NULL, agent VARCHAR(80) NOT NULL, flow VARCHAR(80) NOT NULL,
            queue VARCHAR(80) NOT NULL, channel VARCHAR(200) NOT NULL, started_at VARCHAR(40) NOT NULL,
            ended_at VARCHAR(40), seconds REAL, state VARCHAR(16) NOT NULL)""",
        "CREATE INDEX recording_call ON recording (call_id)",
        "CREATE INDEX recording_started ON recording (started_at)",
    ),
    (  # 1 -> 2: the requested earliest time, and when the current attempt claimed the row
        "ALTER TABLE callback ADD COLUMN not_before VARCHAR(40)",
        "ALTER TABLE callback ADD COLUMN claimed_at VARCHAR(40)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else int(row[0])
    if row is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        conn.commit()
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than this ivr ({SCHEMA_VERSION}); "
            "upgrade ivr or point it at another database"
        )
    for target in range(version, SCHEMA_VERSION):
        try:
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (target + 1,))
            conn.commit()
        except sqlite3.Error:
            conn.rollback()
            raise


# --- SQLite implementation -----------------------------------------------------------------------------------


class SQLiteStorage:
    """`Storage` over one SQLite file (WAL) or an in-memory database, driven from one worker thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-storage")
        self._conn: sqlite3.Connection | None = None
        try:
            self._executor.submit(self._open).result()
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            raise StorageError(f"cannot open database {path!r}: {exc}; check the path and its permissions") from exc

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        _migrate(conn)
        self._conn = conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StorageError("the storage is closed")
        conn = self._conn

        def job() -> T:
            try:
                result = fn(conn)
                conn.commit()
                return result
            except BaseException:
                conn.rollback()
                raise

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, job)
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path!r}: {exc}") from exc

    async def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    # --- voicemail ---

    async def add_voicemail(self, vm: Voicemail) -> int:
        def op(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO voicemail (mailbox, caller, path, seconds, flow, call_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (vm.mailbox, vm.caller, vm.path, float(vm.seconds), vm.flow, vm.call_id, _ts(vm.created_at)),
            )
            return _inserted_id(cur)

        return await self._run(op)

    async def list_voicemails(self, mailbox: str | None = None, limit: int = 100) -> list[Voicemail]:
        sql, args = "SELECT * FROM voicemail", []
        if mailbox is not None:
            sql, args = sql + " WHERE mailbox = ?", [mailbox]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, (*args, int(limit))).fetchall())
        return [
            Voicemail(
                mailbox=r["mailbox"],
                caller=r["caller"],
                path=r["path"],
                seconds=r["seconds"],
                flow=r["flow"],
                call_id=r["call_id"],
                created_at=_dt(r["created_at"]),
                id=r["id"],
            )
            for r in rows
        ]

    # --- callbacks ---

    @staticmethod
    def _callback(row: sqlite3.Row) -> CallbackRequest:
        return CallbackRequest(
            number=row["number"],
            queue=row["queue"],
            flow=row["flow"],
            caller_name=row["caller_name"],
            source_call_id=row["source_call_id"],
            language=row["language"],
            requested_at=_dt(row["requested_at"]),
            not_before=_dt(row["not_before"]),
            max_attempts=row["max_attempts"],
            attempts=row["attempts"],
            state=row["state"],
            last_result=row["last_result"],
            next_attempt_at=_dt(row["next_attempt_at"]),
            id=row["id"],
        )

    async def add_callback(self, req: CallbackRequest) -> int:
        if req.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        first = req.not_before or req.next_attempt_at or req.requested_at

        def op(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO callback (number, queue, flow, caller_name, source_call_id, language, requested_at, "
                "next_attempt_at, max_attempts, attempts, state, last_result, not_before) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'pending', NULL, ?)",
                (
                    req.number,
                    req.queue,
                    req.flow,
                    req.caller_name,
                    req.source_call_id,
                    req.language,
                    _ts(req.requested_at),
                    _ts(first),
                    int(req.max_attempts),
                    _ts(req.not_before),
                ),
            )
            return _inserted_id(cur)

        return await self._run(op)

    async def get_callback(self, callback_id: int) -> CallbackRequest:
        row = await self._run(lambda c: c.execute("SELECT * FROM callback WHERE id = ?", (callback_id,)).fetchone())
        if row is None:
            raise NotFound(f"no callback request {callback_id}")
        return self._callback(row)

    async def list_callbacks(
        self, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[CallbackRequest]:
        where, args = _where(("state", state), ("queue", queue))
        sql = f"SELECT * FROM callback{where} ORDER BY id DESC LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, (*args, int(limit))).fetchall())
        return [self._callback(r) for r in rows]

    async def due_callbacks(self, now: datetime, limit: int, queue: str | None = None) -> list[CallbackRequest]:
        sql = "SELECT * FROM callback WHERE state = 'pending' AND next_attempt_at <= ?"
        args: list[Any] = [_ts(now)]
        if queue is not None:
            sql += " AND queue = ?"
            args.append(queue)
        sql += " ORDER BY next_attempt_at, id LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, (*args, int(limit))).fetchall())
        return [self._callback(r) for r in rows]

    async def due_callback_queues(self, now: datetime) -> list[str]:
        """Queues with at least one due request (lets a scheduler fill each queue's free slots fairly)."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT DISTINCT queue FROM callback WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY queue",
                (_ts(now),),
            ).fetchall()
        )
        return [r["queue"] for r in rows]

    async def mark_callback_dialing(self, callback_id: int, at: datetime) -> bool:
        """Claim a pending request for one attempt; False if someone else claimed or cancelled it first."""

        def op(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE callback SET state = 'dialing', claimed_at = ? WHERE id = ? AND state = 'pending'",
                (_ts(at), callback_id),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def record_callback_attempt(
        self, callback_id: int, result: str, at: datetime, *, retry_at: datetime | None = None, call_id: str = ""
    ) -> CallbackRequest:
        """Store one attempt. `answered` makes the request `answered` (its flow runs; see
        `resolve_answered_callback`); otherwise it is retried at `retry_at` while attempts remain, else it fails.
        The caller (scheduler) owns the backoff policy."""
        if result not in CALLBACK_RESULTS:
            raise ValueError(f"unknown callback result {result!r}; use one of {', '.join(CALLBACK_RESULTS)}")

        def op(c: sqlite3.Connection) -> sqlite3.Row:
            row = c.execute("SELECT * FROM callback WHERE id = ?", (callback_id,)).fetchone()
            if row is None:
                raise NotFound(f"no callback request {callback_id}")
            attempts = row["attempts"] + 1
            if row["state"] == "cancelled":
                state, next_at = "cancelled", row["next_attempt_at"]
            elif result == "answered":
                state, next_at = "answered", row["next_attempt_at"]
            elif retry_at is not None and attempts < row["max_attempts"]:
                state, next_at = "pending", _ts(retry_at)
            else:
                state, next_at = "failed", row["next_attempt_at"]
            c.execute(
                "INSERT INTO callback_attempt (callback_id, result, at, call_id) VALUES (?, ?, ?, ?)",
                (callback_id, result, _ts(at), call_id),
            )
            c.execute(
                "UPDATE callback SET attempts = ?, state = ?, last_result = ?, next_attempt_at = ?, "
                "claimed_at = ? WHERE id = ?",
                (attempts, state, result, next_at, _ts(at) if state == "answered" else None, callback_id),
            )
            return c.execute("SELECT * FROM callback WHERE id = ?", (callback_id,)).fetchone()

        return self._callback(await self._run(op))

    async def resolve_answered_callback(
        self, callback_id: int, connected: bool, at: datetime, *, retry_at: datetime | None = None
    ) -> CallbackRequest | None:
        """The callback flow of an `answered` request ended. Connected: `completed`. Not connected: the
        answered attempt's result becomes `no_agent` and the request is retried at `retry_at` (None: it fails).
        None if the request is not `answered` (a repeated report, or it was cancelled meanwhile)."""

        def op(c: sqlite3.Connection) -> sqlite3.Row | None:
            row = c.execute("SELECT * FROM callback WHERE id = ? AND state = 'answered'", (callback_id,)).fetchone()
            if row is None:
                return None
            if connected:
                c.execute("UPDATE callback SET state = 'completed', claimed_at = NULL WHERE id = ?", (callback_id,))
            else:
                last = c.execute(
                    "SELECT MAX(id) FROM callback_attempt WHERE callback_id = ? AND result = 'answered'", (callback_id,)
                ).fetchone()[0]
                if last is not None:
                    c.execute("UPDATE callback_attempt SET result = 'no_agent' WHERE id = ?", (last,))
                state, next_at = (
                    ("pending", _ts(retry_at)) if retry_at is not None else ("failed", row["next_attempt_at"])
                )
                c.execute(
                    "UPDATE callback SET state = ?, last_result = 'no_agent', next_attempt_at = ?, "
                    "claimed_at = NULL WHERE id = ?",
                    (state, next_at, callback_id),
                )
            return c.execute("SELECT * FROM callback WHERE id = ?", (callback_id,)).fetchone()

        row = await self._run(op)
        return None if row is None else self._callback(row)

    async def callback_attempts(self, callback_id: int) -> list[CallbackAttempt]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM callback_attempt WHERE callback_id = ? ORDER BY id", (callback_id,)
            ).fetchall()
        )
        return [
            CallbackAttempt(
                callback_id=r["callback_id"], result=r["result"], at=_dt(r["at"]), call_id=r["call_id"], id=r["id"]
            )
            for r in rows
        ]

    async def cancel_callback(self, callback_id: int) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            if c.execute("SELECT id FROM callback WHERE id = ?", (callback_id,)).fetchone() is None:
                raise NotFound(f"no callback request {callback_id}")
            cur = c.execute(
                "UPDATE callback SET state = 'cancelled' WHERE id = ? AND state IN ('pending', 'dialing', 'answered')",
                (callback_id,),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def requeue_stale_callbacks(self, claimed_before: datetime | None = None, keep: Iterable[int] = ()) -> int:
        """Put `dialing` rows back to `pending`: all of them (start-up), or those claimed before `claimed_before`
        except the ids in `keep` (attempts still running in this process)."""
        keep_ids = sorted(int(k) for k in keep)

        def op(c: sqlite3.Connection) -> int:
            sql = "UPDATE callback SET state = 'pending', claimed_at = NULL WHERE state = 'dialing'"
            args: list[str | int | None] = []
            if claimed_before is not None:
                sql += " AND (claimed_at IS NULL OR claimed_at < ?)"
                args.append(_ts(claimed_before))
            if keep_ids:
                sql += f" AND id NOT IN ({', '.join('?' for _ in keep_ids)})"
                args += keep_ids
            return c.execute(sql, args).rowcount

        return await self._run(op)

    async def close_stale_answered_callbacks(self, answered_before: datetime) -> int:
        """`answered` rows whose flow never reported (process restart, an AGI failure) become `completed`: the
        customer was reached, so they are not called again."""
        return await self._run(
            lambda c: (
                c.execute(
                    "UPDATE callback SET state = 'completed', claimed_at = NULL WHERE state = 'answered' "
                    "AND (claimed_at IS NULL OR claimed_at < ?)",
                    (_ts(answered_before),),
                ).rowcount
            )
        )

    # --- recordings ---

    @staticmethod
    def _recording(row: sqlite3.Row) -> Recording:
        return Recording(
            call_id=row["call_id"],
            path=row["path"],
            caller=row["caller"],
            agent=row["agent"],
            flow=row["flow"],
            queue=row["queue"],
            channel=row["channel"],
            started_at=_dt(row["started_at"]),
            ended_at=_dt(row["ended_at"]),
            seconds=row["seconds"],
            state=row["state"],
            id=row["id"],
        )

    async def add_recording(self, rec: Recording) -> int:
        def op(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO recording (call_id, path, caller, agent, flow, queue, channel, started_at, ended_at, "
                "seconds, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.call_id,
                    rec.path,
                    rec.caller,
                    rec.agent,
                    rec.flow,
                    rec.queue,
                    rec.channel,
                    _ts(rec.started_at),
                    _ts(rec.ended_at),
                    rec.seconds,
                    rec.state,
                ),
            )
            return _inserted_id(cur)

        return await self._run(op)

    async def set_recording_state(self, recording_id: int, state: str) -> None:
        if state not in RECORDING_STATES:
            raise ValueError(f"unknown recording state {state!r}")

        def op(c: sqlite3.Connection) -> None:
            if c.execute("UPDATE recording SET state = ? WHERE id = ?", (state, recording_id)).rowcount != 1:
                raise NotFound(f"no recording {recording_id}")

        await self._run(op)

    async def finish_recording(self, recording_id: int, end: datetime, seconds: float) -> None:
        def op(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE recording SET ended_at = ?, seconds = ?, state = 'finished' WHERE id = ?",
                (_ts(end), float(seconds), recording_id),
            )
            if cur.rowcount != 1:
                raise NotFound(f"no recording {recording_id}")

        await self._run(op)

    async def get_recording(self, recording_id: int) -> Recording:
        row = await self._run(lambda c: c.execute("SELECT * FROM recording WHERE id = ?", (recording_id,)).fetchone())
        if row is None:
            raise NotFound(f"no recording {recording_id}")
        return self._recording(row)

    async def list_recordings(
        self,
        *,
        call_id: str | None = None,
        caller: str | None = None,
        agent: str | None = None,
        flow: str | None = None,
        queue: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Recording]:
        where, args = _where(
            ("call_id", call_id),
            ("caller", caller),
            ("agent", agent),
            ("flow", flow),
            ("queue", queue),
            ("state", state),
        )
        if since is not None:
            where += (" AND" if where else " WHERE") + " started_at >= ?"
            args.append(_ts(since))
        if until is not None:
            where += (" AND" if where else " WHERE") + " started_at < ?"
            args.append(_ts(until))
        sql = f"SELECT * FROM recording{where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        rows = await self._run(lambda c: c.execute(sql, (*args, int(limit), int(offset))).fetchall())
        return [self._recording(r) for r in rows]


def _where(*pairs: tuple[str, Any]) -> tuple[str, list[Any]]:
    # Column names are literals from this file; only values are parameters.
    parts = [(col, val) for col, val in pairs if val is not None]
    if not parts:
        return "", []
    return " WHERE " + " AND ".join(f"{col} = ?" for col, _ in parts), [val for _, val in parts]


def open_storage(url: str = "sqlite:///var/ivr.db") -> SQLiteStorage:
    """Open the storage named by `url`, as in SQLAlchemy: `sqlite:///relative/path.db` (relative to the working
    directory; `ivr.settings` already makes it absolute against the project root), `sqlite:////absolute/path.db`,
    or `memory:` for a throw-away database."""
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
    raise StorageError(f"unsupported storage URL {url!r}; use sqlite:///path/to/ivr.db or memory:")


__all__ = [
    "CALLBACK_RESULTS",
    "CALLBACK_STATES",
    "CallbackAttempt",
    "CallbackRequest",
    "NotFound",
    "RECORDING_STATES",
    "Recording",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "Voicemail",
    "open_storage",
    "utcnow",
]

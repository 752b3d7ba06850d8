"""The embedded backend: one SQLite file (WAL) or an in-memory database, driven from one worker thread.

Rules for this file:
- The event loop never blocks on the database: every statement runs in one dedicated worker thread (sqlite3
  objects stay in the thread that made them).
- One transaction at a time (an asyncio lock): a single writer, so our own calls never meet "database is locked".
  Transactions start with BEGIN IMMEDIATE, which also serialises writers of other processes on the same file; that
  is what makes callback leasing safe on SQLite (the same semantics as PostgreSQL's row locks, one writer at a time).
- Times are ISO-8601 UTC text (`datetime` parameters are written that way here), which sorts like time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ivr.storage.migrations import MIGRATIONS, SCHEMA_VERSION, newer_schema_message, render
from ivr.storage.models import StorageError
from ivr.storage.sql import Row, SQLStorage, aware

T = TypeVar("T")


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware(value).isoformat(timespec="microseconds")
    return value


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION, one migration per transaction (BEGIN IMMEDIATE: one process at a time)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StorageError(newer_schema_message(version))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for target in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
            if current == target:  # another process may have applied it meanwhile
                for statement in render(MIGRATIONS[target], "sqlite"):
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (target + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class _SQLiteTx:
    def __init__(self, db: SQLiteDatabase, single: bool) -> None:
        self.db = db
        self.begun = single  # one statement: autocommit (isolation_level=None), no BEGIN/COMMIT
        self.locked = True  # BEGIN IMMEDIATE waits for the single writer lock (busy_timeout)

    def _run(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        conn = self.db.conn()

        def step() -> T:
            if not self.begun:
                conn.execute("BEGIN IMMEDIATE")
                self.begun = True
            return job(conn)

        return asyncio.get_running_loop().run_in_executor(self.db.executor, step)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        params = tuple(_param(a) for a in args)
        return await self.db.guard(self._run(lambda c: c.execute(sql, params).fetchall()))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        params = tuple(_param(a) for a in args)
        # fetchall: the statement runs to its end (an INSERT/UPDATE ... RETURNING is complete before COMMIT)
        rows = await self.db.guard(self._run(lambda c: c.execute(sql, params).fetchall()))
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        params = tuple(_param(a) for a in args)
        return await self.db.guard(self._run(lambda c: c.execute(sql, params).rowcount))


class SQLiteDatabase:
    dialect = "sqlite"
    for_update = ""
    skip_locked = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-storage")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        try:
            self.executor.submit(self._open).result()
        except (sqlite3.Error, OSError) as exc:
            self.executor.shutdown(wait=False)
            raise StorageError(f"cannot open database {path!r}: {exc}; check the path and its permissions") from exc
        except StorageError:
            self.executor.shutdown(wait=False)
            raise

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        if self.path != ":memory:":
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("the storage is closed")
        return self._conn

    async def guard(self, fut: asyncio.Future[T]) -> T:
        try:
            return await fut
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path!r}: {exc}") from exc

    @asynccontextmanager
    async def transaction(
        self, lock: str | None = None, *, single: bool = False, wait: bool = True
    ) -> AsyncIterator[_SQLiteTx]:
        # `lock` needs nothing more here: BEGIN IMMEDIATE already makes this the only writer.
        conn = self.conn()
        async with self._lock:
            tx = _SQLiteTx(self, single)
            try:
                yield tx
            except BaseException:
                if tx.begun and not single:
                    # Not awaited: a cancelled caller must still roll back. The single worker runs jobs in order,
                    # so the rollback runs before the next transaction's first statement.
                    self.executor.submit(_rollback, conn)
                raise
            if tx.begun and not single:
                await self.guard(asyncio.get_running_loop().run_in_executor(self.executor, _commit, conn))

    async def open(self) -> None:
        return None  # opened (and migrated) by the constructor

    async def close(self) -> None:
        if self._conn is None:
            return
        async with self._lock:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self.executor, conn.close)
        self.executor.shutdown(wait=True)


def _set_wal(conn: sqlite3.Connection, wait: float = 5.0) -> None:
    """PRAGMA journal_mode=WAL, retried: SQLite answers "database is locked" at once, without the busy handler,
    while another process opening the same new file holds its lock (measured: 1-3 in 60 four-way races of
    tests/storage/test_sqlite.py's migrate-once test)."""
    deadline = time.monotonic() + wait
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)  # the storage's own worker thread, never the event loop
        pause = min(pause * 2, 0.1)


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        _rollback(conn)  # a failed COMMIT leaves the transaction open; the next one must start clean
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SQLiteStorage(SQLStorage):
    """`Storage` over one SQLite file (WAL) or an in-memory database (":memory:")."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(SQLiteDatabase(path))

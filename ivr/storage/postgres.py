"""The shared backend: PostgreSQL through an asyncpg connection pool (several service instances, one database).

Rules for this file:
- Async all the way (asyncpg): the event loop never waits on the network. Why asyncpg and not psycopg 3: measured
  on the hot calls, docs/decisions.md (D3).
- The password never comes from the URL (settings refuse one there): it is passed separately, from
  IVR_STORAGE_PASSWORD or `storage.password_file`. Error messages show the URL without it.
- Migrations run in one transaction under a transaction-level advisory lock, so instances starting together apply
  them once. `transaction(lock=name)` takes another advisory lock (per callback queue: limits hold across
  instances).
- Losing the database is not fatal: a failed connection raises `StorageUnavailable` (API 503, flows take their
  failure branch) and opens a backoff window (0.5 s doubling to 30 s) during which calls fail at once instead of
  piling up on connect time-outs; the first call after the window tries again. Broken pooled connections are
  dropped so the pool reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ivr.storage.migrations import MIGRATIONS, SCHEMA_VERSION, newer_schema_message, render
from ivr.storage.models import StorageError, StorageUnavailable
from ivr.storage.sql import Row, SQLStorage

log = logging.getLogger("ivr.storage")

LOCK_NAMESPACE = 0x1F0  # first key of our two-key advisory locks (second: 0 = migrations, else hashtext(name))

# Errors that mean "the database is not there" rather than "the database refused this statement".
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now (starting/stopping)
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # wrong user/password
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,  # connection closed under us
)


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders -> `$1, $2, ...` (our SQL has no `?` inside literals)."""
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def redact(url: str) -> str:
    """The URL without any password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _count(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.locked = True  # False: transaction(lock=..., wait=False) found the lock taken

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self.conn.fetch(numbered(sql), *args))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self.conn.fetchrow(numbered(sql), *args)
        return row

    async def execute(self, sql: str, *args: Any) -> int:
        return _count(await self.conn.execute(numbered(sql), *args))


class PostgresDatabase:
    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.url = url
        self.where = redact(url)
        self._password = password
        self.min_size, self.max_size = min_size, max_size
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self._pool: Any = None
        self._closed = False
        self._opening: asyncio.Lock | None = None
        self._delay = 0.0
        self._down_until = 0.0
        self._last_error = ""

    # --- life cycle ---

    async def open(self) -> None:
        """Connect and migrate. Raises StorageUnavailable (cannot reach or log in) or StorageError. The service
        calls it at start; otherwise (classic AGI, tools) the first call opens the pool."""
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                password=self._password,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                max_inactive_connection_lifetime=60.0,
            )
        except _UNREACHABLE as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL at {self.where}: {_describe(exc)}") from exc
        except asyncpg.PostgresError as exc:
            raise StorageError(f"PostgreSQL at {self.where}: {_describe(exc)}") from exc
        try:
            async with self._pool.acquire(timeout=self.connect_timeout) as conn:
                await migrate(conn)
        except StorageError:
            await self._drop_pool()
            raise
        except _UNREACHABLE as exc:
            await self._drop_pool()
            raise StorageUnavailable(f"lost PostgreSQL at {self.where} while migrating: {_describe(exc)}") from exc
        except asyncpg.PostgresError as exc:
            await self._drop_pool()
            raise StorageError(f"cannot migrate the database at {self.where}: {_describe(exc)}") from exc

    async def close(self) -> None:
        self._closed = True
        await self._drop_pool()

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 5.0)
        except _UNREACHABLE:  # TimeoutError is among them
            pool.terminate()

    # --- transactions ---

    @asynccontextmanager
    async def transaction(
        self, lock: str | None = None, *, single: bool = False, wait: bool = True
    ) -> AsyncIterator[_PgTx]:
        if self._pool is None and not self._closed:
            self._gate()  # within a backoff window: fail at once
            try:
                await self.open()
            except StorageUnavailable as exc:
                raise await self._failed(exc) from exc
        pool = self._gate()
        loop = asyncio.get_running_loop()
        try:
            conn = await pool.acquire(timeout=self.connect_timeout)
        except _UNREACHABLE as exc:
            raise await self._failed(exc) from exc
        try:
            try:
                if single and lock is None:
                    yield _PgTx(conn)  # one statement: atomic in autocommit
                else:
                    async with conn.transaction():
                        tx = _PgTx(conn)
                        if lock is not None and wait:
                            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_NAMESPACE, lock)
                        elif lock is not None:
                            tx.locked = await conn.fetchval(
                                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", LOCK_NAMESPACE, lock
                            )
                        yield tx
            except _UNREACHABLE as exc:
                raise await self._failed(exc) from exc
            except asyncpg.PostgresError as exc:
                raise StorageError(f"PostgreSQL at {self.where}: {_describe(exc)}") from exc
        finally:
            with contextlib.suppress(*_UNREACHABLE):  # a broken connection is dropped by the pool
                await pool.release(conn)
        if self._delay and loop.time() >= self._down_until:
            log.warning("storage: PostgreSQL at %s is reachable again", self.where)
            self._delay = 0.0

    def _gate(self) -> Any:
        if self._closed:
            raise StorageError("the storage is closed")
        wait = self._down_until - asyncio.get_running_loop().time()
        if wait > 0:
            raise StorageUnavailable(
                f"PostgreSQL at {self.where} is unreachable ({self._last_error}); next attempt in {wait:.1f} s"
            )
        return self._pool

    async def _failed(self, exc: BaseException) -> StorageUnavailable:
        """Open (or widen) the backoff window and drop pooled connections that may be broken."""
        first = self._delay == 0.0
        self._delay = self.backoff_min if first else min(self._delay * 2, self.backoff_max)
        self._down_until = asyncio.get_running_loop().time() + self._delay
        self._last_error = _describe(exc)
        if self._pool is not None:
            await self._pool.expire_connections()
        if first:
            log.error("storage: lost PostgreSQL at %s (%s); retrying with backoff", self.where, self._last_error)
        return StorageUnavailable(f"PostgreSQL at {self.where} is unreachable: {self._last_error}")


async def migrate(conn: Any) -> None:
    """All pending migrations in one transaction, under the advisory lock: a second instance starting at the same
    moment waits, then finds the schema current."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", LOCK_NAMESPACE)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT version FROM schema_version")
        if version is None:
            await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0
        if version > SCHEMA_VERSION:
            raise StorageError(newer_schema_message(version))
        for target in range(version, SCHEMA_VERSION):
            for statement in render(MIGRATIONS[target], "postgresql"):
                await conn.execute(statement)
        if version != SCHEMA_VERSION:
            await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)
            log.info("storage: schema migrated from version %d to %d", version, SCHEMA_VERSION)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class PostgresStorage(SQLStorage):
    """`Storage` on PostgreSQL. `await open()` connects and migrates (the service does it at start)."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        super().__init__(PostgresDatabase(url, **options))

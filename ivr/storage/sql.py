"""The `Storage` methods, written once over a small transaction interface that each backend provides.

Rules for this file:
- Every method is one transaction (`Database.transaction()`): a multi-row change is all or nothing. A method of
  one statement says so (`single=True`): the statement is atomic by itself, and skipping BEGIN/COMMIT saves two
  round trips (measured: bench/storage_bench.py).
- SQL is written once with `?` placeholders; the PostgreSQL backend numbers them. Dialect differences are two
  attributes of the backend: `for_update` (row locks; empty on SQLite, whose writers are serialised anyway) and
  the `lock` name a transaction may take (a transaction-level advisory lock on PostgreSQL, the single writer lock
  on SQLite).
- Times go in as aware UTC datetimes; the backend stores them (ISO text on SQLite, timestamptz on PostgreSQL) and
  `_dt` reads either back as an aware UTC datetime.
- Column names in dynamic WHERE clauses are literals from this file; only values are parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from ivr.storage.campaigns import CampaignSQL
from ivr.storage.leases import DUE, claim_due, placeholders, renew
from ivr.storage.models import (
    CALLBACK_RESULTS,
    CALLBACK_VERDICTS,
    RECORDING_STATES,
    CallbackAttempt,
    CallbackRequest,
    NotFound,
    Recording,
    SurveyAnswer,
    Voicemail,
)
from ivr.storage.times import aware
from ivr.storage.times import opt as _opt
from ivr.storage.times import read as _dt

log = logging.getLogger("ivr.storage")

Row = Mapping[str, Any]


class Tx(Protocol):
    """One open transaction. `locked` is False when `transaction(lock=..., wait=False)` found the lock taken."""

    locked: bool

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...
    async def execute(self, sql: str, *args: Any) -> int: ...  # rows affected


class Database(Protocol):
    dialect: str
    for_update: str  # " FOR UPDATE" where rows can be locked, else ""
    skip_locked: str  # " FOR UPDATE SKIP LOCKED" where supported, else ""

    def transaction(
        self, lock: str | None = None, *, single: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[Tx]:
        """One transaction; `single=True` promises one statement (run in autocommit: no BEGIN/COMMIT trips);
        `lock` names a lock held until the end (`wait=False`: do not queue behind its holder, see `tx.locked`)."""
        ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...


def _where(*pairs: tuple[str, Any]) -> tuple[str, list[Any]]:
    parts = [(col, val) for col, val in pairs if val is not None]
    if not parts:
        return "", []
    return " WHERE " + " AND ".join(f"{col} = ?" for col, _ in parts), [val for _, val in parts]


def _voicemail(r: Row) -> Voicemail:
    return Voicemail(
        mailbox=r["mailbox"],
        caller=r["caller"],
        path=r["path"],
        seconds=r["seconds"],
        flow=r["flow"],
        call_id=r["call_id"],
        created_at=_dt(r["created_at"]),
        id=r["id"],
    )


def _callback(r: Row) -> CallbackRequest:
    return CallbackRequest(
        number=r["number"],
        queue=r["queue"],
        flow=r["flow"],
        caller_name=r["caller_name"],
        source_call_id=r["source_call_id"],
        language=r["language"],
        requested_at=_dt(r["requested_at"]),
        not_before=_dt(r["not_before"]),
        max_attempts=r["max_attempts"],
        attempts=r["attempts"],
        state=r["state"],
        last_result=r["last_result"],
        next_attempt_at=_dt(r["next_attempt_at"]),
        id=r["id"],
    )


def _recording(r: Row) -> Recording:
    return Recording(
        call_id=r["call_id"],
        path=r["path"],
        caller=r["caller"],
        agent=r["agent"],
        flow=r["flow"],
        queue=r["queue"],
        channel=r["channel"],
        started_at=_dt(r["started_at"]),
        ended_at=_dt(r["ended_at"]),
        seconds=r["seconds"],
        state=r["state"],
        id=r["id"],
    )


class SQLStorage(CampaignSQL):
    """`Storage` over a `Database` backend. Subclasses pick the backend (SQLite, PostgreSQL). Campaign methods
    come from `CampaignSQL` (ivr.storage.campaigns)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # --- voicemail ---

    async def add_voicemail(self, vm: Voicemail) -> int:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone(
                "INSERT INTO voicemail (mailbox, caller, path, seconds, flow, call_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                vm.mailbox,
                vm.caller,
                vm.path,
                float(vm.seconds),
                vm.flow,
                vm.call_id,
                aware(vm.created_at),
            )
        assert row is not None
        return int(row["id"])

    async def list_voicemails(self, mailbox: str | None = None, limit: int = 100) -> list[Voicemail]:
        where, args = _where(("mailbox", mailbox))
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(
                f"SELECT * FROM voicemail{where} ORDER BY created_at DESC, id DESC LIMIT ?", *args, int(limit)
            )
        return [_voicemail(r) for r in rows]

    # --- callbacks ---

    async def add_callback(self, req: CallbackRequest) -> int:
        if req.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        first = req.not_before or req.next_attempt_at or req.requested_at
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone(
                "INSERT INTO callback (number, queue, flow, caller_name, source_call_id, language, requested_at, "
                "next_attempt_at, max_attempts, attempts, state, last_result, not_before) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'pending', NULL, ?) RETURNING id",
                req.number,
                req.queue,
                req.flow,
                req.caller_name,
                req.source_call_id,
                req.language,
                aware(req.requested_at),
                aware(first),
                int(req.max_attempts),
                _opt(req.not_before),
            )
        assert row is not None
        return int(row["id"])

    async def get_callback(self, callback_id: int) -> CallbackRequest:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone("SELECT * FROM callback WHERE id = ?", int(callback_id))
        if row is None:
            raise NotFound(f"no callback request {callback_id}")
        return _callback(row)

    async def list_callbacks(
        self, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[CallbackRequest]:
        where, args = _where(("state", state), ("queue", queue))
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(f"SELECT * FROM callback{where} ORDER BY id DESC LIMIT ?", *args, int(limit))
        return [_callback(r) for r in rows]

    async def due_callbacks(self, now: datetime, limit: int, queue: str | None = None) -> list[CallbackRequest]:
        """Pending requests due at `now` (a read: `lease_due_callbacks` is what claims them)."""
        sql = "SELECT * FROM callback WHERE state = 'pending' AND next_attempt_at <= ?"
        args: list[Any] = [aware(now)]
        if queue is not None:
            sql += " AND queue = ?"
            args.append(queue)
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql + " ORDER BY next_attempt_at, id LIMIT ?", *args, int(limit))
        return [_callback(r) for r in rows]

    async def due_callback_queues(self, now: datetime) -> list[str]:
        """Queues with at least one due request or an expired lease (so each queue's free slots fill fairly)."""
        t = aware(now)
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(f"SELECT DISTINCT queue FROM callback WHERE {DUE} ORDER BY queue", t, t)
        return [r["queue"] for r in rows]

    async def mark_callback_dialing(self, callback_id: int, at: datetime) -> bool:
        """Claim one pending request without a lease (single-process use); False if it is not pending."""
        async with self.db.transaction(single=True) as tx:
            n = await tx.execute(
                "UPDATE callback SET state = 'dialing', claimed_at = ? WHERE id = ? AND state = 'pending'",
                aware(at),
                int(callback_id),
            )
        return n == 1

    async def lease_due_callbacks(
        self, now: datetime, *, queue: str, limit: int, owner: str, lease_until: datetime
    ) -> list[CallbackRequest]:
        """Claim up to `limit` minus the queue's live leases (every instance's) of the queue's due requests, in
        one transaction under the queue's lock: pending ones whose time has come, and `dialing` ones whose lease
        expired (their instance died). Each gets state `dialing`, `owner` and `lease_until`. When another
        instance holds the queue's lock (it is leasing the same queue now), returns [] at once instead of
        queueing behind it."""
        t = aware(now)
        async with self.db.transaction(lock=f"callback-queue:{queue}", wait=False) as tx:
            if not tx.locked:
                return []  # another instance is leasing this queue right now: it fills the free slots
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM callback WHERE queue = ? AND state = 'dialing' AND lease_until >= ?",
                queue,
                t,
            )
            free = int(limit) - (int(row["n"]) if row is not None else 0)
            if free <= 0:
                return []
            rows = await claim_due(
                tx,
                self.db,
                table="callback",
                scope=("queue = ?", [queue]),
                now=now,
                free=free,
                owner=owner,
                lease_until=lease_until,
                also_set=(", claimed_at = ?, flow_verdict = NULL", [t]),
                taken_over="callbacks: %d request(s)",
            )
        out = [_callback(r) for r in rows]
        for req in out:
            req.state = "dialing"
        return out

    async def renew_callback_leases(self, owner: str, callback_ids: Iterable[int], lease_until: datetime) -> int:
        """Extend the leases `owner` still holds on these requests; returns how many it still holds."""
        return await renew(self.db, "callback", owner, callback_ids, lease_until)

    async def defer_callback_verdict(self, callback_id: int, verdict: str) -> bool:
        """A callback flow reported before its attempt's result was stored (possibly by another instance): keep
        the verdict on the `dialing` row for `record_callback_attempt` to apply. False if the row is not dialing."""
        if verdict not in CALLBACK_VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; use one of {', '.join(CALLBACK_VERDICTS)}")
        async with self.db.transaction(single=True) as tx:
            n = await tx.execute(
                "UPDATE callback SET flow_verdict = ? WHERE id = ? AND state = 'dialing'", verdict, int(callback_id)
            )
        return n == 1

    async def record_callback_attempt(
        self,
        callback_id: int,
        result: str,
        at: datetime,
        *,
        retry_at: datetime | None = None,
        call_id: str = "",
        owner: str | None = None,
    ) -> CallbackRequest:
        """Store one attempt and release the lease. `answered` makes the request `answered` (its flow runs; see
        `resolve_answered_callback`), or applies the flow's verdict if it came first (`defer_callback_verdict`);
        otherwise it is retried at `retry_at` while attempts remain, else it fails. The scheduler owns the backoff
        policy. With `owner`, a request whose lease another instance took over meanwhile only gets the attempt
        row: its state belongs to the new holder."""
        if result not in CALLBACK_RESULTS:
            raise ValueError(f"unknown callback result {result!r}; use one of {', '.join(CALLBACK_RESULTS)}")
        cb = int(callback_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM callback WHERE id = ?" + self.db.for_update, cb)
            if row is None:
                raise NotFound(f"no callback request {callback_id}")
            lost = owner is not None and row["state"] == "dialing" and row["lease_owner"] not in (None, owner)
            attempts = row["attempts"] + (0 if lost else 1)
            stored_result, next_at, last = result, row["next_attempt_at"], result
            verdict = row["flow_verdict"]
            if lost:
                state, last = row["state"], row["last_result"]
            elif row["state"] == "cancelled":
                state = "cancelled"
            elif result == "answered" and verdict == "connected":
                state = "completed"
            elif result == "answered" and verdict == "cancelled":
                state = "cancelled"
            elif result == "answered" and verdict == "not_connected":
                stored_result = last = "no_agent"
                state, next_at = ("pending", aware(retry_at)) if retry_at is not None else ("failed", next_at)
            elif result == "answered":
                state = "answered"
            elif retry_at is not None and attempts < row["max_attempts"]:
                state, next_at = "pending", aware(retry_at)
            else:
                state = "failed"
            await tx.execute(
                "INSERT INTO callback_attempt (callback_id, result, at, call_id) VALUES (?, ?, ?, ?)",
                cb,
                stored_result,
                aware(at),
                call_id,
            )
            out: Row | None = row
            if not lost:
                out = await tx.fetchone(
                    "UPDATE callback SET attempts = ?, state = ?, last_result = ?, next_attempt_at = ?, "
                    "claimed_at = ?, lease_owner = NULL, lease_until = NULL, flow_verdict = NULL WHERE id = ? "
                    "RETURNING *",
                    attempts,
                    state,
                    last,
                    _dt(next_at),
                    aware(at) if state == "answered" else None,
                    cb,
                )
        assert out is not None
        return _callback(out)

    async def resolve_answered_callback(
        self, callback_id: int, connected: bool, at: datetime, *, retry_at: datetime | None = None
    ) -> CallbackRequest | None:
        """The callback flow of an `answered` request ended. Connected: `completed`. Not connected: the
        answered attempt's result becomes `no_agent` and the request is retried at `retry_at` (None: it fails).
        None if the request is not `answered` (a repeated report, or it was cancelled meanwhile)."""
        cb = int(callback_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT * FROM callback WHERE id = ? AND state = 'answered'" + self.db.for_update, cb
            )
            if row is None:
                return None
            if connected:
                await tx.execute("UPDATE callback SET state = 'completed', claimed_at = NULL WHERE id = ?", cb)
            else:
                last = await tx.fetchone(
                    "SELECT MAX(id) AS id FROM callback_attempt WHERE callback_id = ? AND result = 'answered'", cb
                )
                if last is not None and last["id"] is not None:
                    await tx.execute("UPDATE callback_attempt SET result = 'no_agent' WHERE id = ?", last["id"])
                state, next_at = (
                    ("pending", aware(retry_at)) if retry_at is not None else ("failed", _dt(row["next_attempt_at"]))
                )
                await tx.execute(
                    "UPDATE callback SET state = ?, last_result = 'no_agent', next_attempt_at = ?, "
                    "claimed_at = NULL WHERE id = ?",
                    state,
                    next_at,
                    cb,
                )
            out = await tx.fetchone("SELECT * FROM callback WHERE id = ?", cb)
        return None if out is None else _callback(out)

    async def callback_attempts(self, callback_id: int) -> list[CallbackAttempt]:
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch("SELECT * FROM callback_attempt WHERE callback_id = ? ORDER BY id", int(callback_id))
        return [
            CallbackAttempt(
                callback_id=r["callback_id"], result=r["result"], at=_dt(r["at"]), call_id=r["call_id"], id=r["id"]
            )
            for r in rows
        ]

    async def cancel_callback(self, callback_id: int) -> bool:
        async with self.db.transaction() as tx:
            if await tx.fetchone("SELECT id FROM callback WHERE id = ?", int(callback_id)) is None:
                raise NotFound(f"no callback request {callback_id}")
            n = await tx.execute(
                "UPDATE callback SET state = 'cancelled' WHERE id = ? AND state IN ('pending', 'dialing', 'answered')",
                int(callback_id),
            )
        return n == 1

    async def requeue_stale_callbacks(self, claimed_before: datetime | None = None, keep: Iterable[int] = ()) -> int:
        """Put `dialing` rows back to `pending`: all of them, or those claimed before `claimed_before` except the
        ids in `keep`. (A running scheduler relies on lease expiry instead; this is for tools and repairs.)"""
        keep_ids = sorted(int(k) for k in keep)
        sql = "UPDATE callback SET state = 'pending', claimed_at = NULL, lease_owner = NULL, lease_until = NULL "
        sql += "WHERE state = 'dialing'"
        args: list[Any] = []
        if claimed_before is not None:
            sql += " AND (claimed_at IS NULL OR claimed_at < ?)"
            args.append(aware(claimed_before))
        if keep_ids:
            sql += f" AND id NOT IN {placeholders(keep_ids)}"
            args += keep_ids
        async with self.db.transaction(single=True) as tx:
            return await tx.execute(sql, *args)

    async def close_stale_answered_callbacks(self, answered_before: datetime) -> int:
        """`answered` rows whose flow never reported (process restart, an AGI failure) become `completed`: the
        customer was reached, so they are not called again."""
        async with self.db.transaction(single=True) as tx:
            return await tx.execute(
                "UPDATE callback SET state = 'completed', claimed_at = NULL WHERE state = 'answered' "
                "AND (claimed_at IS NULL OR claimed_at < ?)",
                aware(answered_before),
            )

    # --- recordings ---

    async def add_recording(self, rec: Recording) -> int:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone(
                "INSERT INTO recording (call_id, path, caller, agent, flow, queue, channel, started_at, ended_at, "
                "seconds, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                rec.call_id,
                rec.path,
                rec.caller,
                rec.agent,
                rec.flow,
                rec.queue,
                rec.channel,
                aware(rec.started_at),
                _opt(rec.ended_at),
                None if rec.seconds is None else float(rec.seconds),
                rec.state,
            )
        assert row is not None
        return int(row["id"])

    async def set_recording_state(self, recording_id: int, state: str) -> None:
        if state not in RECORDING_STATES:
            raise ValueError(f"unknown recording state {state!r}")
        async with self.db.transaction(single=True) as tx:
            if await tx.execute("UPDATE recording SET state = ? WHERE id = ?", state, int(recording_id)) != 1:
                raise NotFound(f"no recording {recording_id}")

    async def finish_recording(self, recording_id: int, end: datetime, seconds: float) -> None:
        async with self.db.transaction(single=True) as tx:
            n = await tx.execute(
                "UPDATE recording SET ended_at = ?, seconds = ?, state = 'finished' WHERE id = ?",
                aware(end),
                float(seconds),
                int(recording_id),
            )
            if n != 1:
                raise NotFound(f"no recording {recording_id}")

    async def get_recording(self, recording_id: int) -> Recording:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone("SELECT * FROM recording WHERE id = ?", int(recording_id))
        if row is None:
            raise NotFound(f"no recording {recording_id}")
        return _recording(row)

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
            args.append(aware(since))
        if until is not None:
            where += (" AND" if where else " WHERE") + " started_at < ?"
            args.append(aware(until))
        sql = f"SELECT * FROM recording{where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql, *args, int(limit), int(offset))
        return [_recording(r) for r in rows]

    # --- survey answers ---

    async def add_survey_answer(self, answer: SurveyAnswer) -> int:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone(
                "INSERT INTO survey_answer (call_id, flow, survey, question, answer, queue, agent, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                answer.call_id,
                answer.flow,
                answer.survey,
                answer.question,
                answer.answer,
                answer.queue,
                answer.agent,
                aware(answer.answered_at),
            )
        assert row is not None
        return int(row["id"])

    async def list_survey_answers(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
        queue: str | None = None,
        question: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[SurveyAnswer]:
        """Answers oldest first (an export reads like a log), `since` <= answered_at < `until`."""
        where, args = _where(("flow", flow), ("queue", queue), ("question", question))
        if since is not None:
            where += (" AND" if where else " WHERE") + " answered_at >= ?"
            args.append(aware(since))
        if until is not None:
            where += (" AND" if where else " WHERE") + " answered_at < ?"
            args.append(aware(until))
        sql = f"SELECT * FROM survey_answer{where} ORDER BY answered_at, id LIMIT ? OFFSET ?"
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql, *args, int(limit), int(offset))
        return [
            SurveyAnswer(
                call_id=r["call_id"],
                flow=r["flow"],
                survey=r["survey"],
                question=r["question"],
                answer=r["answer"],
                queue=r["queue"],
                agent=r["agent"],
                answered_at=_dt(r["answered_at"]),
                id=r["id"],
            )
            for r in rows
        ]

    # --- repeat callers (first-contact resolution) ---

    async def record_contact(
        self, caller_hash: str, call_id: str, flow: str, queue: str, at: datetime, *, lookback: datetime
    ) -> list[tuple[str, str, datetime]]:
        """Store one call of a caller (by keyed hash) and mark the caller's previous call since `lookback` as
        followed by this one. Returns (flow, queue, time) of the call(s) this one repeats (at most one: each
        call is marked by the next)."""
        async with self.db.transaction(lock=f"caller:{caller_hash}") as tx:
            rows = await tx.fetch(
                "UPDATE caller_contact SET next_call_at = ? WHERE caller_hash = ? AND next_call_at IS NULL "
                "AND at >= ? AND at <= ? RETURNING flow, queue, at",
                aware(at),
                caller_hash,
                aware(lookback),
                aware(at),
            )
            await tx.execute(
                "INSERT INTO caller_contact (caller_hash, call_id, flow, queue, at) VALUES (?, ?, ?, ?, ?)",
                caller_hash,
                call_id,
                flow,
                queue,
                aware(at),
            )
        return [(r["flow"], r["queue"], _dt(r["at"])) for r in rows]

    async def purge_contacts(self, before: datetime) -> int:
        """Delete caller contacts older than `before` (the retention period)."""
        async with self.db.transaction(single=True) as tx:
            return await tx.execute("DELETE FROM caller_contact WHERE at < ?", aware(before))

"""The outbound-campaign methods of `Storage` (campaigns, contacts, attempts, the do-not-call list), mixed into
`ivr.storage.sql.SQLStorage`, so they are written once for both backends.

Rules for this file:
- The same rules as ivr/storage/sql.py: one transaction per method, `?` placeholders, times passed in (never SQL
  now(), so the dialer runs on the simulator's virtual clock), column names in SQL are literals of this file.
- Leasing follows the callback scheduler's pattern (`lease_due_callbacks`): under the campaign's lock
  (`wait=False`: an instance already leasing for the campaign fills the slots), count every instance's live
  leases, take due rows with SKIP LOCKED, stamp owner and expiry. So with several instances on one PostgreSQL a
  contact is never dialled twice at once, and a dead instance's contacts are taken over when its leases expire.
- The dialer owns the policy (pacing, backoff, hours); these methods only store what it decided.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ivr.storage.leases import claim_due, placeholders, renew
from ivr.storage.models import (
    CAMPAIGN_RESULTS,
    CAMPAIGN_STATES,
    CAMPAIGN_VERDICTS,
    CONTACT_STATES,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignStats,
    Conflict,
    DncEntry,
    NotFound,
)
from ivr.storage.times import aware, read

if TYPE_CHECKING:
    from datetime import datetime

    from ivr.storage.sql import Database

log = logging.getLogger("ivr.storage")

Row = Mapping[str, Any]
_INSERT_CHUNK = 100  # contacts per INSERT: 8 parameters each, under the PostgreSQL backend's 999 placeholders


def _campaign(r: Row) -> Campaign:
    return Campaign(
        name=r["name"],
        flow=r["flow"],
        queue=r["queue"],
        settings=json.loads(r["settings"]),
        state=r["state"],
        created_at=read(r["created_at"]),
        updated_at=read(r["updated_at"]),
        id=r["id"],
    )


def _contact(r: Row) -> CampaignContact:
    return CampaignContact(
        campaign_id=r["campaign_id"],
        number=r["number"],
        name=r["name"],
        language=r["language"],
        timezone=r["timezone"],
        variables=json.loads(r["variables"]),
        line=r["line"],
        state=r["state"],
        attempts=r["attempts"],
        last_result=r["last_result"],
        next_attempt_at=read(r["next_attempt_at"]),
        answered_at=read(r["answered_at"]),
        verdict=r["verdict"],
        id=r["id"],
    )


class CampaignSQL:
    db: Database

    # --- campaigns ---

    async def add_campaign(self, campaign: Campaign) -> int:
        async with self.db.transaction(lock=f"campaign-name:{campaign.name}") as tx:
            if await tx.fetchone("SELECT id FROM campaign WHERE name = ?", campaign.name) is not None:
                raise Conflict(f"a campaign named {campaign.name!r} exists already; choose another name")
            row = await tx.fetchone(
                "INSERT INTO campaign (name, flow, queue, state, settings, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                campaign.name,
                campaign.flow,
                campaign.queue,
                campaign.state,
                json.dumps(campaign.settings, sort_keys=True),
                aware(campaign.created_at),
                aware(campaign.updated_at),
            )
        assert row is not None
        return int(row["id"])

    async def get_campaign(self, campaign_id: int) -> Campaign:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone("SELECT * FROM campaign WHERE id = ?", int(campaign_id))
        if row is None:
            raise NotFound(f"no campaign {campaign_id}")
        return _campaign(row)

    async def list_campaigns(self, state: str | None = None) -> list[Campaign]:
        sql, args = "SELECT * FROM campaign", []
        if state is not None:
            sql, args = sql + " WHERE state = ?", [state]
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql + " ORDER BY id", *args)
        return [_campaign(r) for r in rows]

    async def set_campaign_state(
        self, campaign_id: int, state: str, at: datetime, *, from_states: Iterable[str]
    ) -> Campaign | None:
        """Move the campaign to `state` if it is in one of `from_states` (None otherwise; NotFound if absent)."""
        if state not in CAMPAIGN_STATES:
            raise ValueError(f"unknown campaign state {state!r}")
        allowed = list(from_states)
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE campaign SET state = ?, updated_at = ? WHERE id = ? "
                f"AND state IN {placeholders(allowed)} RETURNING *",
                state,
                aware(at),
                int(campaign_id),
                *allowed,
            )
            if row is None and await tx.fetchone("SELECT id FROM campaign WHERE id = ?", int(campaign_id)) is None:
                raise NotFound(f"no campaign {campaign_id}")
        return None if row is None else _campaign(row)

    # --- contacts ---

    async def add_campaign_contacts(
        self, campaign_id: int, contacts: list[CampaignContact]
    ) -> tuple[int, list[CampaignContact]]:
        """Add contacts in one transaction; a number the campaign has already is skipped (re-uploading a file
        adds nothing twice). Returns (how many were added, the skipped ones)."""
        cid = int(campaign_id)
        added: set[str] = set()
        async with self.db.transaction(lock=f"campaign:{cid}") as tx:
            if await tx.fetchone("SELECT id FROM campaign WHERE id = ?", cid) is None:
                raise NotFound(f"no campaign {campaign_id}")
            for start in range(0, len(contacts), _INSERT_CHUNK):
                chunk = contacts[start : start + _INSERT_CHUNK]
                values = ", ".join("(?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)" for _ in chunk)
                args: list[Any] = []
                for c in chunk:
                    args += [
                        cid,
                        c.number,
                        c.name,
                        c.language,
                        c.timezone,
                        json.dumps(c.variables, sort_keys=True),
                        int(c.line),
                        aware(c.next_attempt_at),
                    ]
                rows = await tx.fetch(
                    "INSERT INTO campaign_contact (campaign_id, number, name, language, timezone, variables, line, "
                    f"state, attempts, next_attempt_at) VALUES {values} "
                    "ON CONFLICT (campaign_id, number) DO NOTHING RETURNING number",
                    *args,
                )
                added.update(r["number"] for r in rows)
        return len(added), [c for c in contacts if c.number not in added]

    async def get_campaign_contact(self, contact_id: int) -> CampaignContact:
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone("SELECT * FROM campaign_contact WHERE id = ?", int(contact_id))
        if row is None:
            raise NotFound(f"no campaign contact {contact_id}")
        return _contact(row)

    async def list_campaign_contacts(
        self, campaign_id: int, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[CampaignContact]:
        sql = "SELECT * FROM campaign_contact WHERE campaign_id = ?"
        args: list[Any] = [int(campaign_id)]
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql + " ORDER BY id LIMIT ? OFFSET ?", *args, int(limit), int(offset))
        return [_contact(r) for r in rows]

    async def lease_campaign_contacts(
        self,
        campaign_id: int,
        now: datetime,
        *,
        limit: int,
        owner: str,
        lease_until: datetime,
        answered_since: datetime | None = None,
        queue: str | None = None,
    ) -> list[CampaignContact]:
        """Lease up to `limit` minus the calls in progress (every instance's) of its due contacts: pending ones
        whose time has come and dialing ones whose lease expired. In progress: live leases, and with
        `answered_since` the contacts answered since then whose flow has not reported yet (they are on the line,
        heading for the queue's agents); of this campaign, or with `queue` of every campaign on that queue
        (they share its agents; the lock is then the queue's). [] at once when another instance is leasing
        for this campaign (or queue) right now."""
        t, cid = aware(now), int(campaign_id)
        lock = f"campaign:{cid}" if queue is None else f"campaign-queue:{queue}"
        async with self.db.transaction(lock=lock, wait=False) as tx:
            if not tx.locked:
                return []
            busy, args = "state = 'dialing' AND lease_until >= ?", [t]
            if answered_since is not None:
                busy, args = f"({busy}) OR (state = 'answered' AND answered_at >= ?)", [t, aware(answered_since)]
            of: list[Any] = [cid]
            which = "campaign_id = ?"
            if queue is not None:  # any state: a paused campaign's calls still ringing hold agents too
                which, of = "campaign_id IN (SELECT id FROM campaign WHERE queue = ?)", [queue]
            row = await tx.fetchone(
                f"SELECT COUNT(*) AS n FROM campaign_contact WHERE {which} AND ({busy})", *of, *args
            )
            free = int(limit) - (int(row["n"]) if row is not None else 0)
            if free <= 0:
                return []
            rows = await claim_due(
                tx,
                self.db,
                table="campaign_contact",
                scope=("campaign_id = ?", [cid]),
                now=now,
                free=free,
                owner=owner,
                lease_until=lease_until,
                also_set=(", verdict = NULL", []),
                taken_over="campaigns: %d contact(s)",
            )
        out = [_contact(r) for r in rows]
        for contact in out:
            contact.state, contact.verdict = "dialing", None
        return out

    async def renew_campaign_leases(self, owner: str, contact_ids: Iterable[int], lease_until: datetime) -> int:
        return await renew(self.db, "campaign_contact", owner, contact_ids, lease_until)

    async def release_campaign_contact(
        self, contact_id: int, owner: str, *, state: str = "pending", next_attempt_at: datetime | None = None
    ) -> bool:
        """Give a leased contact back without an attempt: `pending` at `next_attempt_at` (outside its calling
        hours), or a final state (`dnc`, `failed` for a number never to be dialled). False if the lease is lost."""
        if state not in CONTACT_STATES:
            raise ValueError(f"unknown contact state {state!r}")
        sql = "UPDATE campaign_contact SET state = ?, lease_owner = NULL, lease_until = NULL"
        args: list[Any] = [state]
        if next_attempt_at is not None:
            sql += ", next_attempt_at = ?"
            args.append(aware(next_attempt_at))
        if state != "pending":
            sql += ", last_result = ?"
            args.append(state)
        async with self.db.transaction(single=True) as tx:
            n = await tx.execute(
                sql + " WHERE id = ? AND state = 'dialing' AND lease_owner = ?", *args, int(contact_id), owner
            )
        return n == 1

    async def record_campaign_attempt(
        self,
        contact_id: int,
        result: str,
        at: datetime,
        *,
        retry_at: datetime | None = None,
        call_id: str = "",
        owner: str | None = None,
    ) -> CampaignContact:
        """Store one attempt and release the lease. `answered`: the contact waits `answered` for its flow's
        report (a verdict that came first stays on the row for the dialer to resolve). Otherwise pending again
        at `retry_at`, or `failed` without it. With `owner`, a contact another instance took over meanwhile
        only gets the attempt row."""
        if result not in CAMPAIGN_RESULTS:
            raise ValueError(f"unknown campaign attempt result {result!r}; use one of {', '.join(CAMPAIGN_RESULTS)}")
        cid = int(contact_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM campaign_contact WHERE id = ?" + self.db.for_update, cid)
            if row is None:
                raise NotFound(f"no campaign contact {contact_id}")
            lost = row["state"] != "dialing" or (owner is not None and row["lease_owner"] not in (None, owner))
            await tx.execute(
                "INSERT INTO campaign_attempt (campaign_id, contact_id, result, at, call_id) VALUES (?, ?, ?, ?, ?)",
                row["campaign_id"],
                cid,
                result,
                aware(at),
                call_id,
            )
            out: Row | None = row
            if not lost:
                if result == "answered":
                    state, next_at, answered_at = "answered", read(row["next_attempt_at"]), aware(at)
                elif retry_at is not None:
                    state, next_at, answered_at = "pending", aware(retry_at), None
                else:
                    state, next_at, answered_at = "failed", read(row["next_attempt_at"]), None
                out = await tx.fetchone(
                    "UPDATE campaign_contact SET attempts = attempts + 1, state = ?, last_result = ?, "
                    "next_attempt_at = ?, answered_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? "
                    "RETURNING *",
                    state,
                    result,
                    next_at,
                    answered_at,
                    cid,
                )
        assert out is not None
        return _contact(out)

    async def defer_campaign_verdict(self, contact_id: int, verdict: str) -> bool:
        """The flow reported before the attempt's result was stored: keep the verdict on the dialing row."""
        if verdict not in CAMPAIGN_VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; use one of {', '.join(CAMPAIGN_VERDICTS)}")
        async with self.db.transaction(single=True) as tx:
            n = await tx.execute(
                "UPDATE campaign_contact SET verdict = ? WHERE id = ? AND state = 'dialing'", verdict, int(contact_id)
            )
        return n == 1

    async def resolve_campaign_contact(
        self, contact_id: int, verdict: str, at: datetime, *, retry_at: datetime | None = None
    ) -> CampaignContact | None:
        """The flow of an `answered` contact ended: its last answered attempt gets the outcome; the contact is
        `connected`, `declined`, or abandoned: pending again at `retry_at`, else `abandoned`. A contact `pending`
        after an `error` attempt (its OriginateResponse was lost) was answered after all: that attempt becomes
        `answered` with the outcome. None otherwise (a repeated report)."""
        if verdict not in CAMPAIGN_VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; use one of {', '.join(CAMPAIGN_VERDICTS)}")
        cid = int(contact_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT * FROM campaign_contact WHERE id = ? AND (state = 'answered' OR (state = 'pending' "
                "AND last_result = 'error'))" + self.db.for_update,
                cid,
            )
            if row is None:
                return None
            lost = row["state"] == "pending"
            last = await tx.fetchone(
                "SELECT MAX(id) AS id FROM campaign_attempt WHERE contact_id = ? AND result = ?",
                cid,
                "error" if lost else "answered",
            )
            if last is not None and last["id"] is not None:
                await tx.execute(
                    "UPDATE campaign_attempt SET result = 'answered', outcome = ? WHERE id = ?", verdict, last["id"]
                )
            state, next_at = verdict, read(row["next_attempt_at"])
            if verdict == "abandoned" and retry_at is not None:
                state, next_at = "pending", aware(retry_at)
            out = await tx.fetchone(
                "UPDATE campaign_contact SET state = ?, last_result = ?, next_attempt_at = ?, verdict = NULL "
                "WHERE id = ? RETURNING *",
                state,
                verdict,
                next_at,
                cid,
            )
        return None if out is None else _contact(out)

    async def campaign_attempts(self, contact_id: int) -> list[CampaignAttempt]:
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch("SELECT * FROM campaign_attempt WHERE contact_id = ? ORDER BY id", int(contact_id))
        return [
            CampaignAttempt(
                campaign_id=r["campaign_id"],
                contact_id=r["contact_id"],
                result=r["result"],
                at=read(r["at"]),
                call_id=r["call_id"],
                outcome=r["outcome"],
                id=r["id"],
            )
            for r in rows
        ]

    async def campaign_done(self, campaign_id: int) -> bool:
        """The campaign has contacts and none is left to dial (pending or dialing): two EXISTS on the index."""
        cid = int(campaign_id)
        async with self.db.transaction(single=True) as tx:
            row = await tx.fetchone(
                "SELECT EXISTS (SELECT 1 FROM campaign_contact WHERE campaign_id = ?) AS has, "
                "EXISTS (SELECT 1 FROM campaign_contact WHERE campaign_id = ? AND state IN ('pending', 'dialing')) "
                "AS open",
                cid,
                cid,
            )
        return row is not None and bool(row["has"]) and not bool(row["open"])

    async def campaign_stats(self, campaign_id: int, since: datetime | None = None) -> CampaignStats:
        """Contacts by state (now), attempts by result and answered attempts by outcome (since `since`)."""
        cid = int(campaign_id)
        window, args = ("", []) if since is None else (" AND at >= ?", [aware(since)])
        async with self.db.transaction() as tx:
            contacts = await tx.fetch(
                "SELECT state, COUNT(*) AS n FROM campaign_contact WHERE campaign_id = ? GROUP BY state", cid
            )
            attempts = await tx.fetch(
                f"SELECT result, COUNT(*) AS n FROM campaign_attempt WHERE campaign_id = ?{window} GROUP BY result",
                cid,
                *args,
            )
            outcomes = await tx.fetch(
                "SELECT outcome, COUNT(*) AS n FROM campaign_attempt WHERE campaign_id = ? AND outcome IS NOT NULL"
                f"{window} GROUP BY outcome",
                cid,
                *args,
            )
        return CampaignStats(
            contacts={r["state"]: int(r["n"]) for r in contacts},
            attempts={r["result"]: int(r["n"]) for r in attempts},
            outcomes={r["outcome"]: int(r["n"]) for r in outcomes},
        )

    # --- do-not-call list ---

    async def add_dnc(self, entries: list[DncEntry]) -> int:
        """Add numbers (one already listed keeps its reason and date); returns how many were new."""
        added = 0
        async with self.db.transaction() as tx:
            for entry in entries:
                added += await tx.execute(
                    "INSERT INTO dnc (number, reason, added_at) VALUES (?, ?, ?) ON CONFLICT (number) DO NOTHING",
                    entry.number,
                    entry.reason,
                    aware(entry.added_at),
                )
        return added

    async def remove_dnc(self, number: str) -> bool:
        async with self.db.transaction(single=True) as tx:
            return await tx.execute("DELETE FROM dnc WHERE number = ?", number) == 1

    async def list_dnc(self, *, number: str | None = None, limit: int = 100, offset: int = 0) -> list[DncEntry]:
        sql, args = "SELECT * FROM dnc", []
        if number is not None:
            sql, args = sql + " WHERE number = ?", [number]
        async with self.db.transaction(single=True) as tx:
            rows = await tx.fetch(sql + " ORDER BY number LIMIT ? OFFSET ?", *args, int(limit), int(offset))
        return [DncEntry(number=r["number"], reason=r["reason"], added_at=read(r["added_at"])) for r in rows]

    async def is_dnc(self, number: str) -> bool:
        async with self.db.transaction(single=True) as tx:
            return await tx.fetchone("SELECT number FROM dnc WHERE number = ?", number) is not None

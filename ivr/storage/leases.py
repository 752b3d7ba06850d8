"""Leasing rows to one dialler at a time: the SQL the callback requests and the campaign contacts share.

Rules for this file:
- A leasable table has `id`, `state` ('pending', 'dialing', ...), `next_attempt_at`, `lease_owner` and
  `lease_until`. A row is due when it is pending and its time has come, or dialing with an expired lease (the
  instance that held it died). Table and column names are literals of the storage's own code, never input.
- The caller counts the calls in progress and holds the lock of what it leases for (a queue, a campaign) in the
  same transaction; `claim_due` takes up to `free` due rows with SKIP LOCKED (where the backend has it), so two
  instances never lease one row, and stamps state 'dialing', owner and expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ivr.storage.times import aware

if TYPE_CHECKING:
    from ivr.storage.sql import Database, Tx

log = logging.getLogger("ivr.storage")

Row = Mapping[str, Any]

# Due: two `?`, both the current time.
DUE = "(state = 'pending' AND next_attempt_at <= ?) OR (state = 'dialing' AND (lease_until IS NULL OR lease_until < ?))"


def placeholders(values: Sequence[Any]) -> str:
    """`(?, ?, ...)`, one per value, for `IN`."""
    return "(" + ", ".join("?" for _ in values) + ")"


async def claim_due(
    tx: Tx,
    db: Database,
    *,
    table: str,
    scope: tuple[str, Sequence[Any]],
    now: datetime,
    free: int,
    owner: str,
    lease_until: datetime,
    also_set: tuple[str, Sequence[Any]] = ("", ()),
    taken_over: str,
) -> list[Row]:
    """Up to `free` due rows of `table` within `scope` (a condition and its arguments), oldest due first, leased
    to `owner` until `lease_until`; `also_set` adds assignments (`", col = ?"` and arguments). Rows a dead
    instance held are logged as `taken_over` ("callbacks: %d request(s)"). The rows as they were before."""
    t = aware(now)
    where, where_args = scope
    rows = await tx.fetch(
        f"SELECT * FROM {table} WHERE {where} AND ({DUE}) ORDER BY next_attempt_at, id LIMIT ?" + db.skip_locked,
        *where_args,
        t,
        t,
        free,
    )
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    assignments, assignment_args = also_set
    await tx.execute(
        f"UPDATE {table} SET state = 'dialing', lease_owner = ?, lease_until = ?{assignments} "
        f"WHERE id IN {placeholders(ids)}",
        owner,
        aware(lease_until),
        *assignment_args,
        *ids,
    )
    taken = [(r["id"], r["lease_owner"]) for r in rows if r["state"] == "dialing"]
    if taken:
        log.warning(taken_over + " whose lease expired are taken over: %s", len(taken), taken[:10])
    return rows


async def renew(db: Database, table: str, owner: str, ids: Iterable[int], lease_until: datetime) -> int:
    """Extend the leases `owner` still holds on these rows; returns how many it still holds."""
    wanted = sorted(int(i) for i in ids)
    if not wanted:
        return 0
    async with db.transaction(single=True) as tx:
        return await tx.execute(
            f"UPDATE {table} SET lease_until = ? WHERE state = 'dialing' AND lease_owner = ? "
            f"AND id IN {placeholders(wanted)}",
            aware(lease_until),
            owner,
            *wanted,
        )

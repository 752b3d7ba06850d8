"""First-contact resolution (proxy): how many calls are followed by another call from the same caller within a
window (24 h, 7 days, ... configurable).

Rules for this file:
- A caller is recognised by HMAC-SHA256 of the normalised caller ID under a secret key (settings: the key comes
  from an environment variable or a file, never from YAML). Without the key the hash cannot be recomputed from a
  number, and no number is ever stored, logged or used as a label. Withheld, anonymous and short (internal)
  numbers are left out: they cannot be told apart.
- Each finished inbound call from a recognised caller is stored (hash, call id, flow, queue of the call, time)
  and counted in ivr_caller_calls_total{flow, queue}. When the same caller calls again, the previous call (the
  only one without a `next_call_at` yet) gets this call's time, and for every window the gap fits in
  ivr_repeat_calls_total{flow, queue, window} counts one repeat, labelled with the *first* call's flow and queue.
- Rows older than the retention period are purged (at most once an hour, on the next call).
- Callback calls (outbound) are not contacts the caller made, and are left out.
- A database failure loses that call's record only: counted (ivr_storage_failures_total{action="repeat_callers"})
  and logged, never raised into the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ivr.metric_batch import BATCH
from ivr.storage import StorageError

log = logging.getLogger(__name__)

WITHHELD = frozenset({"anonymous", "unknown", "restricted", "private", "withheld", "unavailable", "invalid"})
PURGE_EVERY = timedelta(hours=1)
_NUMBER = re.compile(r"^\+?[0-9]+$")
_SEPARATORS = re.compile(r"[\s().\-/]")


def normalise(caller_id: str, min_digits: int = 6) -> str | None:
    """The caller ID as `+digits`/`digits`, or None when it is withheld, anonymous or too short to be a caller."""
    text = _SEPARATORS.sub("", caller_id.strip())
    if not text or text.lower() in WITHHELD or not _NUMBER.match(text):
        return None
    digits = text.lstrip("+")
    if len(digits) < min_digits or set(digits) == {"0"}:
        return None
    return text


def caller_hash(key: bytes, number: str) -> str:
    return hmac.new(key, number.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass
class RepeatCallers:
    """Records finished calls and counts repeats. `on_report` is a FastAGI `on_report` sink."""

    storage: Any
    key: bytes
    windows: Mapping[str, float]  # label -> seconds
    retention: float  # seconds
    queue_label: Callable[[str], str] = lambda queue: queue or "none"
    flow_label: Callable[[str], str] = lambda flow: flow
    min_digits: int = 6
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _last_purge: datetime | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("repeat callers need a non-empty hash key")
        if self.windows and self.retention < max(self.windows.values()):
            raise ValueError("the retention must be at least the longest window")

    def on_report(self, report: Any) -> asyncio.Task[None] | None:
        """Store the finished call in the background; None for calls that are left out."""
        variables = getattr(report, "variables", None) or {}
        if variables.get("param_callback") or variables.get("param_outbound"):
            return None  # a callback we placed, not a contact the caller made
        number = normalise(str(getattr(report, "caller_id", "") or ""), self.min_digits)
        if number is None:
            return None
        end_target = str(getattr(report, "end_target", "") or "")
        queue = end_target.removeprefix("queue:") if end_target.startswith("queue:") else ""
        at = getattr(report, "started_at", None) or self.clock()
        task = asyncio.get_running_loop().create_task(
            self.record(caller_hash(self.key, number), str(report.uniqueid), str(report.flow), queue, at)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def record(self, hashed: str, call_id: str, flow: str, queue: str, at: datetime) -> None:
        try:
            longest = max(self.windows.values(), default=0.0)
            earlier = await self.storage.record_contact(
                hashed, call_id, flow, queue, at, lookback=at - timedelta(seconds=longest)
            )
            BATCH.record("CALLER_CALLS", (self.flow_label(flow), self.queue_label(queue)))
            for first_flow, first_queue, first_at in earlier:
                gap = (at - first_at).total_seconds()
                for label in self.windows_within(gap):
                    BATCH.record("REPEAT_CALLS", (self.flow_label(first_flow), self.queue_label(first_queue), label))
            now = self.clock()
            if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
                self._last_purge = now
                purged = await self.storage.purge_contacts(now - timedelta(seconds=self.retention))
                if purged:
                    log.info("repeat callers: %d contact(s) older than the retention purged", purged)
        except StorageError as exc:
            BATCH.record("STORAGE_FAILURES", ("repeat_callers",))
            log.warning("repeat callers: call %r not recorded: %s", call_id, exc)

    def windows_within(self, gap: float) -> Iterable[str]:
        return [label for label, seconds in self.windows.items() if 0 <= gap <= seconds]

    async def drain(self) -> None:
        """Wait for the records still being written (service shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

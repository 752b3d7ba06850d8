"""Queue KPIs from AMI: callers waiting, longest wait, agents by state, answered/abandoned/timed-out calls, wait and
talk times, service level.

Rules for this file:
- Who waits, since when, and each agent's state live in one model, `ivr.calls.queues.QueueBoard` (the call
  registry's in the service: the API and the console show the same). `QueueStats` reads it for the gauges and
  counts the queue events (`ivr.calls.queues.QUEUE_EVENTS`) into the counters and histograms; it keeps only what
  the board has no use for: the answered-within-threshold tallies, Asterisk's own service level, which queues it
  exports. It does no I/O; the board's clock times the waits.
- In the service the registry's `RegistrySync` feeds both, in one order: it applies each event to the registry
  (and its board), then hands queue events to `QueueStats.apply` (`QueueStatsFeed(sync=...)`), and its QueueStatus
  (after every login, and `resync_queues()` on the feed's poll) to `QueueStats.resync`. A `QueueStats` built
  without a board keeps its own (`QueueBoard`) and applies the events to it first (a transcript replay, or
  `QueueStatsFeed` on a bare AMI client, which then sends QueueSummary + QueueStatus itself).
- Counters and histograms are driven by events only; a resync replaces gauge state (callers, members) and never
  counts a call twice.
- Labels: the queue name only (Asterisk configuration). Callers, channels, uniqueids and member interfaces stay
  inside the model and never become label values. At most `max_queues` queues are tracked (or only the configured
  allow-list), so a misconfigured PBX cannot grow the series without bound.

Facts from the real Asterisk 22 transcripts (ami-15-queue, agi-07-queue-moh-park) this file relies on:
- Answered: QueueCallerJoin -> AgentCalled -> QueueCallerLeave -> AgentConnect (HoldTime) -> AgentComplete (TalkTime).
- Abandon: the caller's own channel gets HangupRequest/SoftHangupRequest, then QueueCallerAbandon (HoldTime), then
  QueueCallerLeave.
- Queue() timeout (QUEUESTATUS=TIMEOUT) ALSO emits QueueCallerAbandon + QueueCallerLeave, but without a hangup of
  the caller's channel first. That absence (`QueueBoard.hung_up`) is how a timeout is told from an abandon here
  (Asterisk's own QueueParams `Abandoned` counts both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr import metrics
from ivr.ami.protocol import Message
from ivr.calls.amiport import AMIEvents
from ivr.calls.queues import HANGUP_EVENTS, QUEUE_EVENTS, Queue, QueueBoard, QueueEvent, agent_states, event_name
from ivr.calls.sync import RegistrySync
from ivr.metric_batch import TimedBatch

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0  # seconds an event's gauge update may wait (a scrape publishes everything first)
SUBSCRIBED_EVENTS = QUEUE_EVENTS | HANGUP_EVENTS  # what a feed on a bare AMI client subscribes to
AMIEvent = QueueEvent  # an AMI event: `ivr.ami.protocol.Message` or a dict of headers


@dataclass(frozen=True)
class ServiceLevelPolicy:
    """Service-level threshold per queue. Precedence: `per_queue[queue]`, then the queue's own `servicelevel` from
    queues.conf (QueueParams `ServiceLevel`, when > 0), then `default_seconds`."""

    default_seconds: float = 20.0
    per_queue: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, seconds in {"default": self.default_seconds, **self.per_queue}.items():
            if seconds <= 0:
                raise ValueError(f"service-level threshold for {name!r} is {seconds}; give a number of seconds > 0")

    def threshold(self, queue: str, asterisk_seconds: float | None = None) -> float:
        if queue in self.per_queue:
            return float(self.per_queue[queue])
        if asterisk_seconds:
            return float(asterisk_seconds)
        return float(self.default_seconds)


@dataclass
class QueueTally:
    """What the KPIs keep of a queue beside the board: Asterisk's threshold and the answered tallies."""

    name: str
    asterisk_sl: float | None = None
    answered: int = 0
    answered_in_sl: int = 0


@dataclass(frozen=True)
class QueueSnapshot:
    queue: str
    callers: int
    longest_wait: float
    agents: dict[str, int]
    answered: int
    answered_within_sl: int
    service_level: float | None
    threshold: float


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


_NO_QUEUE = Queue(name="")


class QueueStats:
    """Counts queue events and publishes the board's queues as gauges. Feed it with `apply(event)` and
    `resync(status_items, summary_items)`."""

    def __init__(
        self,
        policy: ServiceLevelPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        queues: Collection[str] | None = None,
        max_queues: int = 100,
        board: QueueBoard | None = None,
    ) -> None:
        """`board`: the call registry's (`CallRegistry.board`), which its sync feeds; without one the stats keep
        their own, timed by `clock`, and apply every event to it."""
        if max_queues < 1:
            raise ValueError(f"max_queues is {max_queues}; it must be at least 1")
        self.policy = policy or ServiceLevelPolicy()
        self._own_board = board is None
        self.board = QueueBoard(clock) if board is None else board
        self._allowed = frozenset(queues) if queues is not None else None
        self._max_queues = max_queues
        self._queues: dict[str, QueueTally] = {}
        self._refused: set[str] = set()  # names over the cap, logged once each (bounded by the log-once set size)
        self._dirty = _DirtyQueues(self._publish_queue)  # queues an event changed, their gauges published in a batch

    # --- queue bookkeeping --------------------------------------------------------------------------------------
    def _queue(self, name: Any) -> QueueTally | None:
        if not name:
            return None
        name = str(name)
        tally = self._queues.get(name)
        if tally is not None:
            return tally
        if self._allowed is not None and name not in self._allowed:
            return None
        if len(self._queues) >= self._max_queues:
            if name not in self._refused and len(self._refused) < 1000:
                self._refused.add(name)
                log.warning(
                    "queue %r not tracked: already %d queues; raise QueueStats(max_queues=...) or give "
                    "QueueStats(queues=...) the queues to track",
                    name,
                    self._max_queues,
                )
            return None
        tally = self._queues[name] = QueueTally(name)
        metrics.init_queue_series(name)  # counters at 0 from the start, so the first call counts in rate()
        metrics.QUEUE_SL_THRESHOLD.labels(queue=name).set(self.policy.threshold(name))
        metrics.QUEUE_TRACKED.set(len(self._queues))
        return tally

    def forget(self, name: str) -> None:
        """Stop exporting a queue's gauges (it disappeared from Asterisk). Its counters stay: rates need them."""
        if self._queues.pop(name, None) is None:
            return
        for gauge in (
            metrics.QUEUE_CALLERS,
            metrics.QUEUE_LONGEST_WAIT,
            metrics.QUEUE_SERVICE_LEVEL,
            metrics.QUEUE_SL_THRESHOLD,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(name)
        for state in metrics.AGENT_STATES:
            with contextlib.suppress(KeyError):
                metrics.QUEUE_AGENTS.remove(name, state)
        metrics.QUEUE_TRACKED.set(len(self._queues))

    def reset(self) -> None:
        for name in list(self._queues):
            self.forget(name)

    @property
    def queues(self) -> list[str]:
        return sorted(self._queues)

    # --- events -------------------------------------------------------------------------------------------------
    def apply(self, event: AMIEvent) -> None:
        """Count one queue event. With a board of its own, apply it (or a channel hangup) to the board first; a
        shared board already has it (the registry's sync applies it, then calls this)."""
        name = event_name(event)
        if self._own_board and (name in QUEUE_EVENTS or name in HANGUP_EVENTS):
            self.board.apply(event)
        handler = self._HANDLERS.get(name)
        if handler is None:
            return
        tally = self._queue(event.get("Queue"))
        if tally is not None:
            handler(self, tally, event)
            self._touched(tally)

    def _on_abandon(self, tally: QueueTally, event: AMIEvent) -> None:
        hold = float(_int(event.get("HoldTime")))
        result = "abandoned" if self.board.hung_up(tally.name, event.get("Uniqueid")) else "timeout"
        metrics.QUEUE_CALLS.labels(queue=tally.name, result=result).inc()
        metrics.QUEUE_WAIT_SECONDS.labels(queue=tally.name, result=result).observe(hold)
        if result == "abandoned" and hold <= self._threshold(tally):
            metrics.QUEUE_ABANDONED_IN_SL.labels(queue=tally.name).inc()

    def _on_connect(self, tally: QueueTally, event: AMIEvent) -> None:
        hold = float(_int(event.get("HoldTime")))
        metrics.QUEUE_CALLS.labels(queue=tally.name, result="answered").inc()
        metrics.QUEUE_WAIT_SECONDS.labels(queue=tally.name, result="answered").observe(hold)
        tally.answered += 1
        if hold <= self._threshold(tally):
            tally.answered_in_sl += 1
            metrics.QUEUE_ANSWERED_IN_SL.labels(queue=tally.name).inc()

    def _on_complete(self, tally: QueueTally, event: AMIEvent) -> None:
        metrics.QUEUE_TALK_SECONDS.labels(queue=tally.name).observe(float(_int(event.get("TalkTime"))))

    def _on_ring_no_answer(self, tally: QueueTally, event: AMIEvent) -> None:
        metrics.QUEUE_RING_NO_ANSWER.labels(queue=tally.name).inc()

    def _on_changed(self, tally: QueueTally, event: AMIEvent) -> None:
        """Callers or members changed (the board has the change): only the queue's gauges are due."""

    _HANDLERS: dict[str, Callable[[QueueStats, QueueTally, AMIEvent], None]] = {
        "QueueCallerJoin": _on_changed,
        "QueueCallerLeave": _on_changed,
        "QueueCallerAbandon": _on_abandon,
        "AgentConnect": _on_connect,
        "AgentComplete": _on_complete,
        "AgentRingNoAnswer": _on_ring_no_answer,
        "QueueMemberAdded": _on_changed,
        "QueueMemberStatus": _on_changed,
        "QueueMemberPause": _on_changed,
        "QueueMemberPenalty": _on_changed,
        "QueueMemberRinginuse": _on_changed,
        "QueueMemberRemoved": _on_changed,
    }

    # --- resync -------------------------------------------------------------------------------------------------
    def resync(self, status_items: Iterable[AMIEvent], summary_items: Iterable[AMIEvent] = ()) -> None:
        """Take Asterisk's lists: QueueStatus (QueueParams, QueueMember, QueueEntry) and QueueSummary (the queue
        set). A board of its own is replaced with them (a shared one was, by its owner). Queues absent from both
        are forgotten. Counters are untouched."""
        status_items = list(status_items)
        if self._own_board:
            self.board.resync(status_items)
        seen: set[str] = set()
        for event in summary_items:
            if event_name(event) == "QueueSummary" and (tally := self._queue(event.get("Queue"))) is not None:
                seen.add(tally.name)
        for event in status_items:
            kind = event_name(event)
            if kind not in ("QueueParams", "QueueMember", "QueueEntry"):
                continue
            tally = self._queue(event.get("Queue"))
            if tally is None:
                continue
            seen.add(tally.name)
            if kind == "QueueParams":
                sl = _float(event.get("ServiceLevel"))
                tally.asterisk_sl = sl if sl and sl > 0 else None
        for name in list(self._queues):
            if name not in seen:
                self.forget(name)
        self.refresh()

    # --- gauges -------------------------------------------------------------------------------------------------
    def _threshold(self, tally: QueueTally) -> float:
        return self.policy.threshold(tally.name, tally.asterisk_sl)

    def _snapshot(self, tally: QueueTally, now: float) -> QueueSnapshot:
        queue = self.board.queues.get(tally.name, _NO_QUEUE)
        agents = dict.fromkeys(metrics.AGENT_STATES, 0)
        for member in list(queue.members.values()):
            agents[member.state] += 1
        joins = [caller.joined_at for caller in list(queue.callers.values())]
        return QueueSnapshot(
            queue=tally.name,
            callers=len(joins),
            longest_wait=max(0.0, now - min(joins)) if joins else 0.0,
            agents=agents,
            answered=tally.answered,
            answered_within_sl=tally.answered_in_sl,
            service_level=tally.answered_in_sl / tally.answered if tally.answered else None,
            threshold=self._threshold(tally),
        )

    def agent_states(self) -> dict[str, str]:
        """Member interface -> one state over all the tracked queues it is a member of (for `ivr_agents`, which
        counts agents once however many queues they serve): busy anywhere, else available anywhere, else paused,
        else unavailable. Run at scrape time, never per event."""
        board = self.board.queues
        return agent_states(board[name].members for name in list(self._queues) if name in board)

    def snapshot(self) -> dict[str, QueueSnapshot]:
        now = self.board.clock()
        return {name: self._snapshot(tally, now) for name, tally in list(self._queues.items())}

    def _publish(self, tally: QueueTally) -> None:
        snap = self._snapshot(tally, self.board.clock())
        metrics.QUEUE_CALLERS.labels(queue=tally.name).set(snap.callers)
        metrics.QUEUE_LONGEST_WAIT.labels(queue=tally.name).set(snap.longest_wait)
        for state, count in snap.agents.items():
            metrics.QUEUE_AGENTS.labels(queue=tally.name, state=state).set(count)
        metrics.QUEUE_SL_THRESHOLD.labels(queue=tally.name).set(snap.threshold)
        if snap.service_level is not None:
            metrics.QUEUE_SERVICE_LEVEL.labels(queue=tally.name).set(snap.service_level)

    def refresh(self) -> None:
        """Write every queue's state to the gauges (the longest wait ages with time). `QueueStatsFeed` runs this
        before every scrape as a collect hook; a resync runs it too."""
        self._dirty.pending.clear()
        for tally in list(self._queues.values()):
            self._publish(tally)

    def _publish_queue(self, name: str) -> None:
        tally = self._queues.get(name)
        if tally is not None:  # not forgotten meanwhile
            self._publish(tally)

    def _touched(self, tally: QueueTally) -> None:
        """An event changed the queue: its gauges are written in a batch, at most FLUSH_INTERVAL later (and before
        any scrape, by refresh()), as the AGI tally does: a queue event costs a list append, not ~10 gauge writes
        and a walk over the members. Without a running event loop (a plain caller) they are written now."""
        self._dirty.add(tally.name)

    def flush(self) -> None:
        """Publish the queues events changed since the last flush."""
        self._dirty.flush()


class _DirtyQueues(TimedBatch[str]):
    """Names of queues whose gauges are due, published once each per batch."""

    def __init__(self, publish: Callable[[str], None]) -> None:
        super().__init__(FLUSH_INTERVAL)
        self._publish = publish

    def _fold(self, pending: list[str]) -> None:
        for name in dict.fromkeys(pending):
            self._publish(name)


class QueueAMI(AMIEvents, Protocol):
    """What a QueueStatsFeed of its own needs from `ivr.ami.client.AMIClient` (see docs/architecture.md)."""

    async def queue_summary(self, queue: str | None = None, *, timeout: float | None = None) -> list[Message]: ...

    async def queue_status(
        self, queue: str | None = None, member: str | None = None, *, timeout: float | None = None
    ) -> list[Message]: ...


class QueueStatsFeed:
    """Connects a `QueueStats` core to Asterisk: events in, resync on (re)login and every `poll_interval`
    seconds, gauges refreshed before each scrape.

    With `sync` (the call registry's, whose board the stats read) the feed neither subscribes nor sends a list
    action of its own: the sync hands it each queue event after applying it, and its QueueStatus (after each
    login, and the poll's `sync.resync_queues()`) feeds both the registry's queues and these statistics."""

    def __init__(
        self,
        client: QueueAMI,
        stats: QueueStats,
        *,
        poll_interval: float = 30.0,
        action_timeout: float = 10.0,
        sync: RegistrySync | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval is {poll_interval}; give a number of seconds > 0")
        if sync is not None and stats.board is not sync.registry.board:
            raise ValueError("with a sync, give the stats its registry's board: QueueStats(board=registry.board)")
        self.client = client
        self.stats = stats
        self.poll_interval = poll_interval
        self.action_timeout = action_timeout
        self._subscription: object = None
        self._poll_task: asyncio.Task[None] | None = None
        self._resync_lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._closed = False
        self._sync = sync

    async def start(self) -> None:
        if self._sync is not None:
            self._sync.queue_event_listeners.append(self.stats.apply)
            self._sync.queue_listeners.append(self._on_status)
        else:
            # Inline: QueueStats.apply() only updates memory (a hangup is one dict lookup), cheaper than a task.
            self._subscription = self.client.subscribe(
                self.stats.apply, events=SUBSCRIBED_EVENTS, name="queue_stats", inline=True
            )
            self.client.on_connected(self._on_connected)
        metrics.add_collect_hook(self.stats.refresh)
        self._poll_task = asyncio.get_running_loop().create_task(self._poll(), name="queue-stats-poll")
        if self._sync is None and self.client.logged_in:
            await self.resync()

    async def close(self) -> None:
        self._closed = True
        if self._sync is not None:
            with contextlib.suppress(ValueError):
                self._sync.queue_event_listeners.remove(self.stats.apply)
            with contextlib.suppress(ValueError):
                self._sync.queue_listeners.remove(self._on_status)
        metrics.remove_collect_hook(self.stats.refresh)
        self.stats.flush()  # publish what the last events changed; no timer outlives the feed
        tasks = [t for t in (self._poll_task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closer = getattr(self._subscription, "close", None) or getattr(self._subscription, "cancel", None)
        if closer is not None:
            result = closer()
            if asyncio.iscoroutine(result):
                await result

    def _on_connected(self) -> asyncio.Task[None]:
        # Returns the task: a client that awaits its callbacks waits for the resync, one that does not just starts it.
        task = asyncio.get_running_loop().create_task(self._resync_after_login(), name="queue-stats-resync")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _resync_after_login(self) -> None:
        await self.resync()  # a failure is counted and logged; the next login or poll tries again

    async def resync(self) -> bool:
        """Reload the queue state from Asterisk. Returns False (and counts a failed resync) if AMI is unavailable;
        the next (re)login or poll tries again."""
        if self._sync is not None:
            return await self._sync.resync_queues(self.action_timeout)
        async with self._resync_lock:
            try:
                summary = await self.client.queue_summary(timeout=self.action_timeout)
                status = await self.client.queue_status(timeout=self.action_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # AMIError family, or a connection dropping mid-list
                metrics.QUEUE_RESYNCS.labels(result="failed").inc()
                log.warning("queue statistics resync failed: %s (retrying on the next login or poll)", exc)
                return False
            self.stats.resync(status, summary)
            metrics.QUEUE_RESYNCS.labels(result="ok").inc()
            return True

    def _on_status(self, items: list[Message] | None) -> None:
        """A QueueStatus answer the registry applied (None: its resync failed)."""
        if items is None:
            metrics.QUEUE_RESYNCS.labels(result="failed").inc()
            return
        self.stats.resync(items)
        metrics.QUEUE_RESYNCS.labels(result="ok").inc()

    async def _poll(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.poll_interval)
            if getattr(self.client, "logged_in", True):
                await self.resync()

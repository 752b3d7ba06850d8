"""Queue KPIs from AMI: callers waiting, longest wait, agents by state, answered/abandoned/timed-out calls, wait and
talk times, service level.

Rules for this file:
- `QueueStats` is the pure core: it applies AMI events (anything with `.get(header)`, e.g. `ivr.ami.protocol.Message`
  or a dict) to an in-memory model and updates the metrics in `ivr.metrics`. It does no I/O and reads time only
  through the injected monotonic `clock`.
- `QueueStatsFeed` is the async adapter: it subscribes to the AMI client's queue events, and rebuilds the model from
  `QueueStatus` after every (re)login and on a periodic poll (events missed while the link was down, or reordered
  around a list action, are corrected within one poll). In the service that QueueStatus is the call registry's
  (`RegistrySync`, one per login or poll), and the members are the registry's (`book`): one queue model for the
  API, the console and these metrics. Used on its own, the feed sends QueueSummary + QueueStatus itself.
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
  the caller's channel first. That absence is how a timeout is told from an abandon here (Asterisk's own
  QueueParams `Abandoned` counts both).
- Members are `ivr.calls.queues.QueueMember`s, updated and judged by `ivr.calls.queues` (the same code as the call
  registry's, so the API, the console and these gauges agree on an agent's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr import metrics
from ivr.calls.queues import Queue, QueueMember, agent_states, set_in_call, update_member

log = logging.getLogger(__name__)

# Exactly the events QueueStats has a handler for (AgentCalled/AgentDump change no KPI and are not subscribed).
QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentConnect",
        "AgentComplete",
        "AgentRingNoAnswer",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberStatus",
        "QueueMemberPause",
        "QueueMemberPenalty",
        "QueueMemberRinginuse",
    }
)
FLUSH_INTERVAL = 1.0  # seconds an event's gauge update may wait (a scrape publishes everything first)
# A hangup of a waiting caller's own channel: needed to tell an abandon from a Queue() timeout.
HANGUP_EVENTS = frozenset({"HangupRequest", "SoftHangupRequest", "Hangup"})
SUBSCRIBED_EVENTS = QUEUE_EVENTS | HANGUP_EVENTS


class AMIEvent(Protocol):
    def get(self, name: str, default: Any = None) -> Any: ...


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
class QueueModel:
    name: str
    members: dict[str, QueueMember] = field(default_factory=dict)  # interface -> member
    waiting: dict[str, float] = field(default_factory=dict)  # caller uniqueid -> join time (clock)
    hung_up: set[str] = field(default_factory=set)  # waiting callers whose channel got a hangup (subset of waiting)
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


class QueueBook(Protocol):
    """Where the queue members live: `ivr.calls.registry.CallRegistry` (its `queues`)."""

    @property
    def queues(self) -> Mapping[str, Queue]: ...


class QueueStats:
    """The pure event-application core. Feed it with `apply(event)` and `resync(status_items, summary_items)`."""

    def __init__(
        self,
        policy: ServiceLevelPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        queues: Collection[str] | None = None,
        max_queues: int = 100,
        book: QueueBook | None = None,
    ) -> None:
        if max_queues < 1:
            raise ValueError(f"max_queues is {max_queues}; it must be at least 1")
        self.policy = policy or ServiceLevelPolicy()
        self._clock = clock
        self._allowed = frozenset(queues) if queues is not None else None
        self._max_queues = max_queues
        # The call registry whose queues hold the members (the one model, fed by RegistrySync); without one the
        # members are kept here (a QueueStats used on its own).
        self._book = book
        self._queues: dict[str, QueueModel] = {}
        self._refused: set[str] = set()  # names over the cap, logged once each (bounded by the log-once set size)
        self._waiting_in: dict[str, str] = {}  # caller uniqueid -> queue it waits in (a hangup is one lookup)
        self._dirty: set[str] = set()  # queues whose gauges an event changed, published in a batch
        self._flush_handle: asyncio.TimerHandle | None = None

    # --- queue bookkeeping --------------------------------------------------------------------------------------
    def _queue(self, name: Any) -> QueueModel | None:
        if not name:
            return None
        name = str(name)
        model = self._queues.get(name)
        if model is not None:
            return model
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
        model = self._queues[name] = QueueModel(name)
        metrics.init_queue_series(name)  # counters at 0 from the start, so the first call counts in rate()
        metrics.QUEUE_SL_THRESHOLD.labels(queue=name).set(self.policy.threshold(name))
        metrics.QUEUE_TRACKED.set(len(self._queues))
        return model

    def forget(self, name: str) -> None:
        """Stop exporting a queue's gauges (it disappeared from Asterisk). Its counters stay: rates need them."""
        model = self._queues.pop(name, None)
        if model is None:
            return
        self._dirty.discard(name)
        for uniqueid in model.waiting:
            if self._waiting_in.get(uniqueid) == name:
                del self._waiting_in[uniqueid]
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
        name = getattr(event, "name", None) or event.get("Event")  # Message.name is free, a header read is not
        if name in HANGUP_EVENTS:
            self._on_hangup(event)
            return
        handler = self._HANDLERS.get(name or "")
        if handler is None:
            return
        model = self._queue(event.get("Queue"))
        if model is not None:
            handler(self, model, event)
            self._touched(model)

    def _on_hangup(self, event: AMIEvent) -> None:
        # Every channel's hangup comes here (three events per channel); only callers waiting in a queue matter.
        waiting = self._waiting_in
        if not waiting:
            return
        uniqueid = event.get("Uniqueid")
        queue = waiting.get(uniqueid) if uniqueid else None
        model = self._queues.get(queue) if queue else None
        if model is not None and uniqueid in model.waiting:
            model.hung_up.add(uniqueid)

    def _on_join(self, model: QueueModel, event: AMIEvent) -> None:
        uniqueid = event.get("Uniqueid")
        if uniqueid:
            # setdefault: a Join delivered after a resync already listed the caller keeps the resync's (earlier,
            # Wait-based) join time; a caller re-entering after QueueCallerLeave was removed and starts again.
            model.waiting.setdefault(uniqueid, self._clock())
            self._waiting_in[uniqueid] = model.name

    def _on_leave(self, model: QueueModel, event: AMIEvent) -> None:
        uniqueid = event.get("Uniqueid")
        model.waiting.pop(uniqueid, None)
        model.hung_up.discard(uniqueid)
        self._left(uniqueid, model)

    def _on_abandon(self, model: QueueModel, event: AMIEvent) -> None:
        uniqueid = event.get("Uniqueid")
        hold = float(_int(event.get("HoldTime")))
        result = "abandoned" if uniqueid in model.hung_up else "timeout"
        metrics.QUEUE_CALLS.labels(queue=model.name, result=result).inc()
        metrics.QUEUE_WAIT_SECONDS.labels(queue=model.name, result=result).observe(hold)
        if result == "abandoned" and hold <= self._threshold(model):
            metrics.QUEUE_ABANDONED_IN_SL.labels(queue=model.name).inc()

    def _on_connect(self, model: QueueModel, event: AMIEvent) -> None:
        hold = float(_int(event.get("HoldTime")))
        metrics.QUEUE_CALLS.labels(queue=model.name, result="answered").inc()
        metrics.QUEUE_WAIT_SECONDS.labels(queue=model.name, result="answered").observe(hold)
        model.answered += 1
        if hold <= self._threshold(model):
            model.answered_in_sl += 1
            metrics.QUEUE_ANSWERED_IN_SL.labels(queue=model.name).inc()
        if self._book is None:
            set_in_call(model.members, event, True)
        # The caller normally left already (QueueCallerLeave comes first); drop it in case that event was missed.
        uniqueid = event.get("Uniqueid")
        model.waiting.pop(uniqueid, None)
        self._left(uniqueid, model)

    def _left(self, uniqueid: str | None, model: QueueModel) -> None:
        if uniqueid and self._waiting_in.get(uniqueid) == model.name:
            del self._waiting_in[uniqueid]

    def _on_complete(self, model: QueueModel, event: AMIEvent) -> None:
        metrics.QUEUE_TALK_SECONDS.labels(queue=model.name).observe(float(_int(event.get("TalkTime"))))
        if self._book is None:
            set_in_call(model.members, event, False)

    def _on_ring_no_answer(self, model: QueueModel, event: AMIEvent) -> None:
        metrics.QUEUE_RING_NO_ANSWER.labels(queue=model.name).inc()

    def _on_member(self, model: QueueModel, event: AMIEvent) -> None:
        # With a registry the registry applies the event; here it only marks the queue's gauges for publishing.
        if self._book is None:
            update_member(model.members, model.name, event)

    def _on_member_removed(self, model: QueueModel, event: AMIEvent) -> None:
        if self._book is None:
            model.members.pop(event.get("Interface") or event.get("Location") or "", None)

    def _members(self, model: QueueModel) -> Mapping[str, QueueMember]:
        if self._book is None:
            return model.members
        queue = self._book.queues.get(model.name)
        return {} if queue is None else queue.members

    _HANDLERS: dict[str, Callable[[QueueStats, QueueModel, AMIEvent], None]] = {
        "QueueCallerJoin": _on_join,
        "QueueCallerLeave": _on_leave,
        "QueueCallerAbandon": _on_abandon,
        "AgentConnect": _on_connect,
        "AgentComplete": _on_complete,
        "AgentRingNoAnswer": _on_ring_no_answer,
        "QueueMemberAdded": _on_member,
        "QueueMemberStatus": _on_member,
        "QueueMemberPause": _on_member,
        "QueueMemberPenalty": _on_member,
        "QueueMemberRinginuse": _on_member,
        "QueueMemberRemoved": _on_member_removed,
    }

    # --- resync -------------------------------------------------------------------------------------------------
    def resync(self, status_items: Iterable[AMIEvent], summary_items: Iterable[AMIEvent] = ()) -> None:
        """Replace the gauge state with Asterisk's lists: QueueStatus (QueueParams, QueueMember, QueueEntry) and
        QueueSummary (the queue set). Queues absent from both are forgotten. Counters are untouched."""
        now = self._clock()
        seen: dict[str, QueueModel] = {}
        fresh: dict[str, QueueModel] = {}

        def model_for(event: AMIEvent) -> QueueModel | None:
            model = self._queue(event.get("Queue"))
            if model is not None and model.name not in fresh:
                seen[model.name] = model
                fresh[model.name] = QueueModel(
                    model.name,
                    asterisk_sl=model.asterisk_sl,
                    answered=model.answered,
                    answered_in_sl=model.answered_in_sl,
                )
            return None if model is None else fresh[model.name]

        for event in summary_items:
            if event.get("Event") == "QueueSummary":
                model_for(event)
        for event in status_items:
            kind = event.get("Event")
            if kind not in ("QueueParams", "QueueMember", "QueueEntry"):
                continue
            model = model_for(event)
            if model is None:
                continue
            if kind == "QueueParams":
                sl = _float(event.get("ServiceLevel"))
                model.asterisk_sl = sl if sl and sl > 0 else None
            elif kind == "QueueMember":
                self._on_member(model, event)
            elif uniqueid := event.get("Uniqueid"):
                model.waiting[uniqueid] = now - _int(event.get("Wait"))
        for name in list(self._queues):
            if name not in seen:
                self.forget(name)
        for name, model in fresh.items():
            previous = self._queues[name]
            # Keep join times we measured ourselves (sub-second precision) for callers still waiting.
            for uniqueid in model.waiting:
                if uniqueid in previous.waiting:
                    model.waiting[uniqueid] = previous.waiting[uniqueid]
            model.hung_up = previous.hung_up & model.waiting.keys()
            self._queues[name] = model
        self._waiting_in = {uid: m.name for m in self._queues.values() for uid in m.waiting}
        self.refresh()

    # --- gauges -------------------------------------------------------------------------------------------------
    def _threshold(self, model: QueueModel) -> float:
        return self.policy.threshold(model.name, model.asterisk_sl)

    def _snapshot(self, model: QueueModel, now: float) -> QueueSnapshot:
        agents = dict.fromkeys(metrics.AGENT_STATES, 0)
        for member in list(self._members(model).values()):
            agents[member.state] += 1
        joins = list(model.waiting.values())
        return QueueSnapshot(
            queue=model.name,
            callers=len(joins),
            longest_wait=max(0.0, now - min(joins)) if joins else 0.0,
            agents=agents,
            answered=model.answered,
            answered_within_sl=model.answered_in_sl,
            service_level=model.answered_in_sl / model.answered if model.answered else None,
            threshold=self._threshold(model),
        )

    def agent_states(self) -> dict[str, str]:
        """Member interface -> one state over all the queues it is a member of (for `ivr_agents`, which counts
        agents once however many queues they serve): busy anywhere, else available anywhere, else paused, else
        unavailable. Run at scrape time, never per event."""
        return agent_states(self._members(model) for model in list(self._queues.values()))

    def snapshot(self) -> dict[str, QueueSnapshot]:
        now = self._clock()
        return {name: self._snapshot(model, now) for name, model in list(self._queues.items())}

    def _publish(self, model: QueueModel) -> None:
        snap = self._snapshot(model, self._clock())
        metrics.QUEUE_CALLERS.labels(queue=model.name).set(snap.callers)
        metrics.QUEUE_LONGEST_WAIT.labels(queue=model.name).set(snap.longest_wait)
        for state, count in snap.agents.items():
            metrics.QUEUE_AGENTS.labels(queue=model.name, state=state).set(count)
        metrics.QUEUE_SL_THRESHOLD.labels(queue=model.name).set(snap.threshold)
        if snap.service_level is not None:
            metrics.QUEUE_SERVICE_LEVEL.labels(queue=model.name).set(snap.service_level)

    def refresh(self) -> None:
        """Write every queue's state to the gauges (the longest wait ages with time). `QueueStatsFeed` runs this
        before every scrape as a collect hook; a resync runs it too."""
        self._dirty.clear()
        for model in list(self._queues.values()):
            self._publish(model)

    def _touched(self, model: QueueModel) -> None:
        """An event changed the queue: its gauges are written in a batch, at most FLUSH_INTERVAL later (and before
        any scrape, by refresh()), as the AGI tally does: a queue event costs a set insertion, not ~10 gauge
        writes and a walk over the members. Without a running event loop (a plain caller) they are written now."""
        self._dirty.add(model.name)
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_handle = loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Publish the queues events changed since the last flush."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            model = self._queues.get(name)
            if model is not None:
                self._publish(model)


class Subscription(Protocol):
    def close(self) -> Any: ...


class AMIClientLike(Protocol):
    """What QueueStatsFeed needs from `ivr.ami.client.AMIClient` (see docs/architecture.md)."""

    logged_in: bool

    def subscribe(
        self,
        handler: Callable[[Any], Awaitable[None] | None],
        events: set[str] | None = None,
        *,
        name: str = "",
        inline: bool = False,
    ) -> Any: ...

    def on_connected(self, callback: Callable[[], Any]) -> Any: ...

    async def list_action(
        self, name: str, headers: Mapping[str, str] | None = None, *, timeout: float | None = None
    ) -> tuple[Any, list[Any]]: ...


class QueueSync(Protocol):
    """What QueueStatsFeed needs from `ivr.calls.sync.RegistrySync`: its QueueStatus answers, and a queue resync."""

    queue_listeners: list[Callable[[list[Any] | None], None]]

    async def resync_queues(self, timeout: float | None = None) -> bool: ...


class QueueStatsFeed:
    """Connects a `QueueStats` core to a live AMI client: events in, resync on (re)login and every
    `poll_interval` seconds, gauges refreshed before each scrape.

    With `sync` (the call registry's, whose registry is the stats' `book`) the feed sends no list action of its
    own: the registry's QueueStatus after each login, and the poll's (`sync.resync_queues()`), feed both the
    registry's queues and these statistics."""

    def __init__(
        self,
        client: AMIClientLike,
        stats: QueueStats,
        *,
        poll_interval: float = 30.0,
        action_timeout: float = 10.0,
        sync: QueueSync | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval is {poll_interval}; give a number of seconds > 0")
        self.client = client
        self.stats = stats
        self.poll_interval = poll_interval
        self.action_timeout = action_timeout
        self._subscription: Any = None
        self._poll_task: asyncio.Task[None] | None = None
        self._resync_lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._sync = sync

    async def start(self) -> None:
        # Inline: QueueStats.apply() only updates memory (a hangup is one dict lookup), cheaper than a task switch.
        self._subscription = self.client.subscribe(
            self.stats.apply, events=set(SUBSCRIBED_EVENTS), name="queue_stats", inline=True
        )
        if self._sync is not None:
            self._sync.queue_listeners.append(self._on_status)
        else:
            self.client.on_connected(self._on_connected)
        metrics.add_collect_hook(self.stats.refresh)
        self._poll_task = asyncio.get_running_loop().create_task(self._poll(), name="queue-stats-poll")
        if self._sync is None and getattr(self.client, "logged_in", False):
            await self.resync()

    async def close(self) -> None:
        self._closed = True
        if self._sync is not None and self._on_status in self._sync.queue_listeners:
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

    def _on_connected(self) -> asyncio.Task[bool]:
        # Returns the task: a client that awaits its callbacks waits for the resync, one that does not just starts it.
        task = asyncio.get_running_loop().create_task(self.resync(), name="queue-stats-resync")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def resync(self) -> bool:
        """Reload the queue state from Asterisk. Returns False (and counts a failed resync) if AMI is unavailable;
        the next (re)login or poll tries again."""
        if self._sync is not None:
            return await self._sync.resync_queues(self.action_timeout)
        async with self._resync_lock:
            try:
                _, summary = await self.client.list_action("QueueSummary", timeout=self.action_timeout)
                _, status = await self.client.list_action("QueueStatus", timeout=self.action_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # AMIError family, or a connection dropping mid-list
                metrics.QUEUE_RESYNCS.labels(result="failed").inc()
                log.warning("queue statistics resync failed: %s (retrying on the next login or poll)", exc)
                return False
            self.stats.resync(status, summary)
            metrics.QUEUE_RESYNCS.labels(result="ok").inc()
            return True

    def _on_status(self, items: list[Any] | None) -> None:
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

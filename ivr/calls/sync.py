"""Keep a `CallRegistry` in step with Asterisk over an `AMIClient`, and act on the registry's effects.

Rules for this file:
- Events are applied one at a time, in arrival order, under one lock; a resynchronisation (CoreShowChannels,
  ParkedCalls, QueueStatus after every (re)login) holds the same lock, so events that arrive meanwhile wait in
  the subscription queue and are applied after the snapshot, in order.
- The client's on_connected callback only schedules the resync: it must not wait for list answers inside the
  client's own login path.
- Metrics owned here: parking (PARKED_NOW, PARKED_SECONDS, PARK_TIMEOUTS) and recordings (RECORDINGS_*), by lot
  name and the registry's `pbx` (the gauges; counters are not split). Listeners get every effect; a failing
  listener is logged and never stops the event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ivr import metrics
from ivr.ami.filters import EventFilter
from ivr.ami.protocol import Message
from ivr.calls.amiport import RegistryAMI
from ivr.calls.queues import QUEUE_EVENTS
from ivr.calls.registry import REGISTRY_EVENTS, CallRegistry, Effect, RecordingEnded, RecordingStarted, Unparked

log = logging.getLogger(__name__)

Listener = Callable[[Effect], Awaitable[None] | None]
# Gets each QueueStatus answer the registry applied (None: a resync failed), e.g. the queue KPIs
# (`ivr.queue_stats.QueueStatsFeed`): one QueueStatus per login or poll feeds the registry's queues and the metrics.
QueueListener = Callable[[list[Message] | None], None]
# Gets each queue event (`ivr.calls.queues.QUEUE_EVENTS`) right after the registry applied it, in the registry's
# order: the queue KPIs count it against the registry's queue model (a waiting caller's hangup already marked).
QueueEventListener = Callable[[Message], None]
# Events after which the parking and recording gauges are set again (besides effects that change them).
_GAUGE_EVENTS = frozenset({"ParkedCall", "MixMonitorStart", "MixMonitorStop"})
# Of the VarSet events (one per Set() and SET VARIABLE, the most frequent event of a call) the registry reads two
# variables; with AMIClient(event_filter=True) Asterisk sends only those.
# Newexten (one per dialplan priority) matters where a channel waits or is handed on, not for the priorities it
# passes through: those are not sent (the next Newexten carries the channel's new context and extension anyway).
PASSING_APPLICATIONS = ("NoOp", "Set", "Goto", "GotoIf", "ExecIf", "Verbose", "Log", "AppDial2", "Answer")
REGISTRY_FILTERS = (
    EventFilter("VarSet", "Variable", "^IVR_(FLOW|NODE)$"),
    EventFilter("Newexten", "Application", f"^({'|'.join(PASSING_APPLICATIONS)})$", exclude=True),
)


class RegistrySync:
    def __init__(self, ami: RegistryAMI, registry: CallRegistry) -> None:
        self.ami = ami
        self.registry = registry
        self.listeners: list[Listener] = []
        self.queue_listeners: list[QueueListener] = []
        self.queue_event_listeners: list[QueueEventListener] = []
        self._lock = asyncio.Lock()
        self._subscription: object = None
        self._resync_task: asyncio.Task[None] | None = None
        self._lots_seen: set[str] = set()
        self._queued = 0  # events waiting behind a resync (they keep their order)
        self.resyncs = 0  # completed resynchronisations (for /readyz detail and tests)
        self.last_resync_error: str | None = None

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def start(self) -> None:
        """Subscribe to the client and resync after every (re)login (including the first, if already in)."""
        self._subscription = self.ami.subscribe(
            self._on_event, set(REGISTRY_EVENTS), name="calls", filters=REGISTRY_FILTERS, inline=True
        )
        self.ami.on_connected(self._on_connected)
        if self.ami.logged_in:
            self._on_connected()

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._resync_task
        close = getattr(self._subscription, "close", None) or getattr(self._subscription, "cancel", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result

    def _on_connected(self, *_: object) -> None:
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
        self._resync_task = asyncio.get_running_loop().create_task(self.resync())

    async def on_event(self, msg: Message) -> None:
        async with self._lock:
            effects = self.registry.apply(msg)
            if msg.name in QUEUE_EVENTS:
                self._queue_event(msg)
        await self._dispatch(effects, msg.name in _GAUGE_EVENTS)

    def _queue_event(self, msg: Message) -> None:
        for listener in self.queue_event_listeners:
            try:
                listener(msg)
            except Exception:
                log.exception("queue event listener failed on %s", msg.name)

    def _on_event(self, msg: Message) -> Awaitable[None] | None:
        """The inline subscription's handler, called by the AMI reader: `apply()` never suspends, so an event is
        applied at once unless a resync holds the lock (or events queued behind one are still waiting): then it
        waits its turn. What it returns (effects for the listeners, or the wait) runs in the subscription's task,
        in event order."""
        if self._lock.locked() or self._queued:
            self._queued += 1
            return self._apply_in_turn(msg)
        effects = self.registry.apply(msg)
        name = msg.name
        if name in QUEUE_EVENTS:
            self._queue_event(msg)
        gauges = name in _GAUGE_EVENTS
        if effects or gauges:
            return self._notify(effects, gauges)
        return None

    def _notify(self, effects: list[Effect], gauges: bool) -> Awaitable[None] | None:
        """Metrics and listeners now; what a listener returns to await (a coroutine) comes back, in order."""
        self._update_metrics(effects, gauges)
        pending: list[tuple[Effect, Awaitable[Any]]] = []
        for effect in effects:
            for listener in (*self.listeners, *self.registry.listeners):
                try:
                    result = listener(effect)
                except Exception:
                    log.exception("call registry listener failed on %r", effect)
                    continue
                if result is not None and inspect.isawaitable(result):
                    pending.append((effect, result))
        return self._await_all(pending) if pending else None

    async def _await_all(self, pending: list[tuple[Effect, Awaitable[Any]]]) -> None:
        for effect, result in pending:
            try:
                await result
            except Exception:
                log.exception("call registry listener failed on %r", effect)

    async def _apply_in_turn(self, msg: Message) -> None:
        try:
            await self.on_event(msg)
        finally:
            self._queued -= 1

    async def resync(self) -> None:
        # The lock is held from before the first list action until the snapshot is applied: an event applied in
        # between (a Hangup after CoreShowChannels answered) would be undone by the older snapshot. Events wait
        # in the subscription queue (the client delivers list answers independently) and are applied after.
        async with self._lock:
            try:
                channels = await self.ami.core_show_channels()
                parked = await self.ami.parked_calls()
                queues = await self.ami.queue_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client reconnects and calls us again; keep serving what we know
                self.last_resync_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "call registry resync failed (%s); it runs again after the next AMI login", self.last_resync_error
                )
                self._queues_resynced(None)
                return
            effects = self.registry.resync_channels(channels)
            effects += self.registry.resync_parked(parked)
            self.registry.resync_queues(queues)
            self._queues_resynced(queues)
        self.resyncs += 1
        self.last_resync_error = None
        await self._dispatch(effects, True)

    async def resync_queues(self, timeout: float | None = None) -> bool:
        """Reload only the queues (QueueStatus), under the event lock like `resync`: the periodic correction of the
        queue KPIs. False if AMI could not answer."""
        async with self._lock:
            try:
                queues = await self.ami.queue_status(timeout=timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("queue resync failed: %s", exc)
                self._queues_resynced(None)
                return False
            self.registry.resync_queues(queues)
            self._queues_resynced(queues)
        return True

    def _queues_resynced(self, items: list[Message] | None) -> None:
        for listener in self.queue_listeners:
            try:
                listener(items)
            except Exception:
                log.exception("queue resync listener failed")

    async def _dispatch(self, effects: list[Effect], gauges: bool = False) -> None:
        self._update_metrics(effects, gauges)
        for effect in effects:
            for listener in [*self.listeners, *self.registry.listeners]:
                try:
                    result = listener(effect)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("call registry listener failed on %r", effect)

    def _update_metrics(self, effects: list[Effect], gauges: bool) -> None:
        # Only parking and recording change these metrics: most events (and most effects: a channel gone, a call
        # ended) touch none of them.
        for effect in effects:
            if isinstance(effect, Unparked):
                gauges = True
                metrics.PARKED_SECONDS.labels(lot=effect.lot).observe(effect.seconds)
                if effect.reason == "timeout":
                    metrics.PARK_TIMEOUTS.labels(lot=effect.lot).inc()
            elif isinstance(effect, RecordingEnded):
                gauges = True
                metrics.RECORDINGS_FINISHED.inc()
                metrics.RECORDING_SECONDS.inc(effect.seconds)
            elif isinstance(effect, RecordingStarted):
                gauges = True
        if not gauges:
            return
        counts = self.registry.parked_counts()
        # Lots come from Asterisk's configuration (a handful); a lot that empties is set to 0, not dropped.
        self._lots_seen.update(counts)
        for lot in self._lots_seen:
            metrics.PARKED_NOW.labels(lot=lot, pbx=self.registry.pbx).set(counts.get(lot, 0))
        metrics.RECORDINGS_ACTIVE.labels(pbx=self.registry.pbx).set(self.registry.recordings_running())

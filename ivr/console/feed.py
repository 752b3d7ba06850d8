"""The supervisor console's live feed: a snapshot, then batched deltas, pushed to every connected console.

Rules for this file:
- Fed by the call registry's `watchers` hook (one call per applied event, `None` after a resync): the hook only
  notes which calls an event touched and wakes the flusher, so per-event work stays a few dict look-ups, and
  nothing at all while no console is connected.
- The flusher batches: at most one delta per `interval` (what changed meanwhile goes out together). A delta holds
  the call rows that differ from what the consoles already have, the ids of calls that ended, and the queues,
  parking lots or due callbacks when they changed. Each delta is encoded once and shared by all consoles.
- A console first gets a snapshot of the same state the deltas are diffed against, so snapshot + deltas is exact.
  A console that falls `max_backlog` deltas behind is dropped (its stream ends); it reconnects and gets a fresh
  snapshot, which is also what happens after a service restart.
- Several Asterisk servers: a registry that has `parts` (each with a `name` and its own `registry`, as the
  fleet of the multi-server set-up) is watched per server, and call ids are `<server>:<Linkedid>` as the API
  names them; queues and parking lots come from the combined registry's own `queues` and `parked_in()`.
- Every `reconcile_every` seconds all rows are rebuilt and diffed, so a change no event named (`expect_agent_leg`
  on a channel that exists already) shows within that time. The sweep goes `sweep_slice` calls per flush, so it
  never holds the event loop for long; only a resync (and the first console) rebuild everything at once.
- Due callbacks live in the database, not in AMI: they are re-read every `callbacks_every` seconds while a console
  is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ivr.calls.model import Call
from ivr.calls.registry import CallRegistry, EventLike
from ivr.console.views import Json, call_row, callbacks_view, lots_view, queues_view

log = logging.getLogger(__name__)

# Headers that name a call directly, and headers that name a channel whose call we look up.
_CALL_HEADERS = ("Linkedid", "ParkeeLinkedid", "DestLinkedid")
_CHANNEL_HEADERS = ("Uniqueid", "ParkeeUniqueid", "DestUniqueid")
_BRIDGE_EVENTS = frozenset({"BridgeEnter", "BridgeLeave"})


def sse(event: str, data: Any, seq: int) -> bytes:
    """One Server-Sent Events message (JSON has no raw newlines, so one data line)."""
    return f"event: {event}\nid: {seq}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Subscriber:
    """One connected console: the encoded messages waiting to be written; None ends the stream."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.dropped = False

    async def get(self) -> bytes | None:
        return await self.queue.get()


class Part:
    """One server's registry and the prefix of its call ids in the API ("" with a single server)."""

    def __init__(self, prefix: str, registry: CallRegistry) -> None:
        self.prefix = prefix
        self.registry = registry

    def watch(self, feed: ConsoleFeed) -> Callable[[EventLike | None], None]:
        def watcher(msg: EventLike | None) -> None:
            feed._watch(self, msg)

        return watcher


def parts_of(registry: Any) -> list[Part]:
    servers = getattr(registry, "parts", None)
    if servers:  # several Asterisk servers: ids are qualified as `<pbx>:<Linkedid>` (the API's call ids)
        return [Part(f"{server.name}:", server.registry) for server in servers]
    return [Part("", registry)]


class ConsoleFeed:
    def __init__(
        self,
        registry: Any,
        storage: Any = None,
        lots: Iterable[str] = (),
        *,
        clock: Any = time.time,
        interval: float = 0.2,
        reconcile_every: float = 30.0,
        sweep_slice: int = 250,
        callbacks_every: float = 5.0,
        callbacks_limit: int = 50,
        max_backlog: int = 200,
    ) -> None:
        self.registry = registry  # a CallRegistry, or one over several servers (`parts`)
        self.parts = parts_of(registry)
        self._watchers = [(part, part.watch(self)) for part in self.parts]
        self.storage = storage
        self.lots = tuple(lots)
        self.clock = clock
        self.interval = interval
        self.reconcile_every = reconcile_every
        self.sweep_slice = sweep_slice
        self.callbacks_every = callbacks_every
        self.callbacks_limit = callbacks_limit
        self.max_backlog = max_backlog
        self.instance = uuid.uuid4().hex[:12]  # a new value tells a console the service restarted
        self.seq = 0
        self.subscribers: list[Subscriber] = []
        # What every connected console has (the base the deltas are diffed against).
        self._calls: dict[str, Json] = {}
        self._call_uids: dict[str, set[str]] = {}
        self._uid_call: dict[str, str] = {}  # <prefix><uniqueid> -> the Linkedid it was shown under
        self._queues: list[Json] = []
        self._lots: list[Json] = []
        self._callbacks: list[Json] = []
        self._fresh_callbacks: list[Json] | None = None  # read from the database, not yet compared
        # Changes noted since the last flush.
        self._dirty: set[tuple[Part, str]] = set()  # (server, Linkedid)
        self._all = True
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._callbacks_due_at = 0.0
        self._reconcile_at = time.monotonic() + reconcile_every
        self._sweep: list[tuple[Part, str]] = []  # calls still to re-check in the running reconcile

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        for part, watcher in self._watchers:
            if watcher not in part.registry.watchers:
                part.registry.watchers.append(watcher)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="console-feed")

    async def close(self) -> None:
        """End every console's stream and stop (the service is going away)."""
        for part, watcher in self._watchers:
            with contextlib.suppress(ValueError):
                part.registry.watchers.remove(watcher)
        for sub in list(self.subscribers):
            self._drop(sub)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def subscribe(self) -> Subscriber:
        """A new console: its queue starts with the snapshot."""
        if not self.subscribers:
            self._all = True
            await self._refresh_callbacks()
        self._flush()  # what is pending goes to the consoles already connected, so the snapshot is the same base
        sub = Subscriber()
        sub.queue.put_nowait(sse("snapshot", self.snapshot(), self.seq))
        self.subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(sub)
        if not self.subscribers:  # nobody watches: forget the base, note nothing until the next console
            self._calls, self._call_uids, self._uid_call = {}, {}, {}
            self._dirty.clear()
            self._sweep.clear()
            self._all = True

    def snapshot(self) -> Json:
        return {
            "instance": self.instance,
            "server_time": self.clock(),
            "calls": list(self._calls.values()),
            "queues": self._queues,
            "lots": self._lots,
            "callbacks": self._callbacks,
        }

    # --- noting changes (the registry hook) ---------------------------------------------------------------------

    def _watch(self, part: Part, msg: EventLike | None) -> None:
        if not self.subscribers:
            return
        if msg is None or msg.name == "Shutdown":
            self._all = True
        elif not self._all:
            dirty = self._dirty
            for header in _CALL_HEADERS:
                value = msg.get(header)
                if value:
                    dirty.add((part, value))
            channels = part.registry.channels
            for header in _CHANNEL_HEADERS:
                uid = msg.get(header)
                if uid:
                    ch = channels.get(uid)
                    if ch is not None:
                        dirty.add((part, ch.linkedid))
                    shown = self._uid_call.get(part.prefix + uid)  # the call it was shown in (a Linkedid can change)
                    if shown is not None:
                        dirty.add((part, shown))
            if msg.name in _BRIDGE_EVENTS:  # a bridge filling or emptying changes its other calls' state too
                bridge = part.registry.bridges.get(msg.get("BridgeUniqueid") or "")
                if bridge is not None:
                    for uid in bridge.channels:
                        ch = channels.get(uid)
                        if ch is not None:
                            dirty.add((part, ch.linkedid))
        self._wake.set()

    # --- flushing ----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that races with the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.reconcile_every, self.callbacks_every)):
                    await self._wake.wait()
            self._wake.clear()
            if not self.subscribers:
                continue
            now = time.monotonic()
            if now >= self._reconcile_at and not self._sweep:
                self._start_sweep()
            if now >= self._callbacks_due_at:
                await self._refresh_callbacks()
            try:
                self._flush()
            except Exception:  # a bug here must not stop the feed; the next reconcile rebuilds everything
                log.exception("console feed flush failed")
                self._all = True
            await asyncio.sleep(self.interval)  # batching: what changes meanwhile goes into the next delta

    async def _refresh_callbacks(self) -> None:
        self._callbacks_due_at = time.monotonic() + self.callbacks_every
        if self.storage is None:
            return
        try:
            rows = await self.storage.due_callbacks(datetime.now(UTC), self.callbacks_limit)
        except Exception as exc:  # the database may be away for a while; keep showing what we had
            log.warning("console feed: cannot read due callbacks (%s: %s)", type(exc).__name__, exc)
            return
        self._fresh_callbacks = callbacks_view(rows)

    def _update(self, part: Part, raw_id: str, call: Call | None, upserts: list[Json], gone: list[str]) -> None:
        """Bring the row of call `raw_id` (its Linkedid on `part`'s server) up to date; note what changed."""
        call_id = part.prefix + raw_id
        if call is None or not call.channels:
            if self._calls.pop(call_id, None) is not None:
                gone.append(call_id)
            for key in self._call_uids.pop(call_id, ()):
                if self._uid_call.get(key) == raw_id:
                    del self._uid_call[key]
            return
        keys = {part.prefix + ch.uniqueid for ch in call.channels}
        for key in self._call_uids.get(call_id, set()) - keys:
            if self._uid_call.get(key) == raw_id:
                del self._uid_call[key]
        self._call_uids[call_id] = keys
        for key in keys:
            self._uid_call[key] = raw_id
        row = call_row(part.registry, call)
        row["id"] = call_id
        if self._calls.get(call_id) != row:
            self._calls[call_id] = row
            upserts.append(row)

    def _start_sweep(self) -> None:
        self._reconcile_at = time.monotonic() + self.reconcile_every
        pending: set[tuple[Part, str]] = set()
        for part in self.parts:
            pending.update((part, ch.linkedid) for ch in part.registry.channels.values())
        for call_id in self._calls:  # and what the consoles show, in case it is gone
            part = next(p for p in self.parts if call_id.startswith(p.prefix))
            pending.add((part, call_id[len(part.prefix) :]))
        self._sweep = list(pending)

    def _flush(self) -> None:
        upserts: list[Json] = []
        gone: list[str] = []
        if self._all:
            self._all = False
            self._dirty.clear()
            self._sweep.clear()
            self._reconcile_at = time.monotonic() + self.reconcile_every
            live: set[str] = set()
            for part in self.parts:
                for call in part.registry.calls():
                    live.add(part.prefix + call.id)
                    self._update(part, call.id, call, upserts, gone)
            for call_id in [c for c in self._calls if c not in live]:
                part = next(p for p in self.parts if call_id.startswith(p.prefix))
                self._update(part, call_id[len(part.prefix) :], None, upserts, gone)
        else:
            dirty, self._dirty = self._dirty, set()
            if self._sweep:
                dirty.update(self._sweep[-self.sweep_slice :])
                del self._sweep[-self.sweep_slice :]
                if self._sweep:
                    self._wake.set()  # the next slice after the next pause
            for part, raw_id in dirty:
                self._update(part, raw_id, part.registry.call(raw_id), upserts, gone)
        delta: Json = {}
        if upserts:
            delta["calls"] = upserts
        if gone:
            delta["gone"] = gone
        queues = queues_view(self.registry.queues)
        if queues != self._queues:
            self._queues = delta["queues"] = queues
        lots = lots_view(self.registry, self.lots)
        if lots != self._lots:
            self._lots = delta["lots"] = lots
        callbacks, self._fresh_callbacks = self._fresh_callbacks, None
        if callbacks is not None and callbacks != self._callbacks:
            self._callbacks = delta["callbacks"] = callbacks
        if not delta:
            return
        self.seq += 1
        delta["server_time"] = self.clock()
        message = sse("delta", delta, self.seq)
        for sub in list(self.subscribers):
            if sub.queue.qsize() >= self.max_backlog:
                self._drop(sub)  # too slow: it reconnects and starts from a snapshot
            else:
                sub.queue.put_nowait(message)

    def _drop(self, sub: Subscriber) -> None:
        sub.dropped = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
        self.unsubscribe(sub)

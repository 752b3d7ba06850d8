"""AMIClient: a resilient asyncio AMI client (connect, login, actions, lists, events, keepalive, reconnect).

Rules for this file:
- The reader (`_Connection.data_received`) never runs user code: it parses, resolves futures and appends events to
  subscriber queues. Subscribers run in their own tasks with bounded queues and an explicit, counted overflow
  policy; `on_connected` callbacks run in their own tasks. A subscriber that raises is logged and nothing else
  is affected.
- An action is written once. Nothing is queued while disconnected (`AMINotConnected`) and nothing is replayed after
  a reconnect: every pending action fails with `AMIConnectionLost` (an Originate must never ring a phone twice).
- Every action has an ActionID unique to this client instance (random prefix + counter) and a timeout.
- Reconnect uses exponential backoff with jitter; a refused login (`AMIAuthError`) waits `login_failure_backoff`
  instead (Asterisk itself delays ~1 s and closes on a failed login, ami-10), is counted and shown in `health()`.
- Half-open connections are found by a Ping every `ping_interval` seconds that must be answered within
  `ping_timeout`, plus TCP keepalive on the socket.
- Metric labels are bounded: event names via `metrics.bounded_event()`, action names via `actions.action_label()`,
  subscriber names come from code, never from the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from ivr import metrics
from ivr.ami import actions as act
from ivr.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectionLost,
    AMIError,
    AMINotConnected,
    AMIProtocolError,
    AMITimeout,
)
from ivr.ami.filters import EventFilter, merge
from ivr.ami.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AMIParser,
    Banner,
    Headers,
    Message,
    Role,
    encode_action,
    is_list_complete,
    is_list_start,
    login_headers,
    md5_key,
    md5_login_headers,
)
from ivr.ami.typed import AMIActions
from ivr.netutil import set_tcp_keepalive

log = logging.getLogger("ivr.ami")

EventHandler = Callable[[Message], Awaitable[None] | None]
ConnectedCallback = Callable[[], Awaitable[None] | None]
Overflow = Literal["drop_oldest", "drop_newest"]
State = Literal["new", "connecting", "up", "auth_failed", "down", "closed"]

# A subscriber whose handler never suspends still yields to the loop after a _SLICE of time (checked every
# _CHECK_EVERY events, so a slow handler holds the loop for at most ~16 of its calls). A time slice, not a fixed
# count: one 256 KiB read brings ~1000 events, and a subscriber that handles fewer per turn than the reader parses
# falls behind for good under a flood although the CPU would suffice (measured: ~150,000 of 200,000 events queued
# with a 256-event turn, ~1,000 with a 5 ms slice), so memory and cold caches cost, and it may drop events it
# could have handled.
_SLICE = 0.005
_CHECK_EVERY = 16


# -- subscriptions -------------------------------------------------------------------------------------------


class Subscription:
    """A subscriber's bounded queue and the task that feeds its handler. Cancel with `close()`."""

    def __init__(
        self,
        handler: EventHandler,
        events: frozenset[str] | None,
        maxsize: int,
        overflow: Overflow,
        name: str,
        filters: tuple[EventFilter, ...] = (),
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', not {overflow!r}")
        self.handler = handler
        self.events = events
        self.maxsize = maxsize
        self.overflow: Overflow = overflow
        self.name = name
        self.filters = filters  # what of `events` the handler needs (with AMIClient(event_filter=True))
        self.dropped = 0
        self.delivered = 0
        self.failures = 0
        self._queue: deque[Message] = deque()
        self._wakeup = asyncio.Event()
        self._sleeping = False
        self._is_async = inspect.iscoroutinefunction(handler)
        self._dropped_metric = metrics.AMI_EVENTS_DROPPED.labels(subscriber=name)
        self._task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._run(), name=f"ami-subscriber-{name}"
        )
        self._on_close: Callable[[Subscription], None] | None = None

    @property
    def pending(self) -> int:
        """Events queued and not yet handled."""
        return len(self._queue)

    def offer(self, msg: Message) -> None:
        """Queue an event (called by the reader; never blocks, never runs the handler)."""
        queue = self._queue
        if len(queue) >= self.maxsize:
            self.dropped += 1
            self._dropped_metric.inc()
            if self.overflow == "drop_newest":
                return
            queue.popleft()
        queue.append(msg)
        if self._sleeping:
            self._sleeping = False
            self._wakeup.set()

    async def _run(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        handler = self.handler
        is_async = self._is_async
        async_handler = cast(Callable[[Message], Awaitable[None]], handler)  # called only when is_async
        monotonic = time.monotonic
        while True:
            if not queue:
                self._wakeup.clear()
                self._sleeping = True
                await self._wakeup.wait()
                continue
            # Handle events for one time slice, then let the loop breathe even if the handler never suspends.
            deadline = monotonic() + _SLICE
            while queue:
                batch = min(len(queue), _CHECK_EVERY)
                for _ in range(batch):
                    msg = popleft()
                    try:
                        if is_async:
                            await async_handler(msg)
                        else:
                            result = handler(msg)
                            if result is not None and inspect.isawaitable(result):
                                await result
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        self.failures += 1
                        log.exception(
                            "AMI subscriber %r raised on event %s; it keeps receiving events", self.name, msg.name
                        )
                self.delivered += batch
                if monotonic() >= deadline:
                    break
            if queue:
                await asyncio.sleep(0)

    async def drain(self) -> None:
        """Wait until every queued event was handled (for tests and orderly shutdown)."""
        while (self._queue or not self._sleeping) and self._task is not None and not self._task.done():
            await asyncio.sleep(0)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None


class InlineSubscription:
    """A subscriber called by the reader itself, in arrival order, for handlers that only update memory.

    A task per subscriber costs a wake-up and a task switch per read (~15-20 us here), several times the work of a
    handler such as `CallRegistry.apply` (a few dictionary updates). An inline handler must be a plain function
    that never blocks; what it raises is logged and counted, and the next event comes anyway. Nothing queues, so
    nothing is dropped. If it returns an awaitable (follow-up work: listeners, I/O), that runs in the
    subscription's own task, one after the other in the order the events came.
    """

    dropped = 0

    def __init__(
        self,
        handler: Callable[[Message], object],
        events: frozenset[str],
        name: str,
        filters: tuple[EventFilter, ...] = (),
    ) -> None:
        self.handler = handler
        self.events: frozenset[str] | None = events
        self.name = name
        self.filters = filters
        self.delivered = 0
        self.failures = 0
        self._on_close: Callable[[InlineSubscription], None] | None = None
        self._followups: deque[Awaitable[Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def call(self, msg: Message) -> None:
        # AMIClient._dispatch does the same inline (a frame less per event).
        self.delivered += 1
        try:
            result = self.handler(msg)
        except Exception:
            self.failed(msg)
            return
        if result is not None:
            self.follow(result)

    def failed(self, msg: Message) -> None:
        self.failures += 1
        log.exception("AMI subscriber %r raised on event %s; it keeps receiving events", self.name, msg.name)

    def follow(self, result: object) -> None:
        """What the handler returned: an awaitable runs in the subscription's task, after those before it."""
        if inspect.isawaitable(result):
            self._followups.append(result)
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ami-subscriber-{self.name}")

    async def _run(self) -> None:
        followups = self._followups
        try:
            while followups:
                try:
                    await followups.popleft()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    log.exception("AMI subscriber %r failed in the work after an event", self.name)
        finally:
            self._task = None

    @property
    def pending(self) -> int:
        return len(self._followups)

    async def drain(self) -> None:
        """Wait until the follow-up work of every event so far is done (events themselves are handled at once)."""
        while self._followups or self._task is not None:
            await asyncio.sleep(0)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        while self._followups:
            pending = self._followups.popleft()
            close = getattr(pending, "close", None)  # a coroutine that will never run: close it quietly
            if close is not None:
                close()
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None


# -- connection ------------------------------------------------------------------------------------------------


class _Pending:
    __slots__ = ("name", "future", "response", "items")

    def __init__(self, name: str, future: asyncio.Future[tuple[Message, list[Message]]]) -> None:
        self.name = name
        self.future = future
        self.response: Message | None = None  # set when a list was announced (EventList: start)
        self.items: list[Message] = []


class _Connection(asyncio.Protocol):
    """One TCP connection: feeds the parser and hands results to the client. No user code runs here."""

    def __init__(self, client: AMIClient, max_message_size: int) -> None:
        loop = asyncio.get_running_loop()
        self.client = client
        self.parser = AMIParser(Role.CLIENT, max_message_size=max_message_size)
        self.transport: asyncio.Transport | None = None
        self.banner: asyncio.Future[Banner] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.reason: str | None = None
        self._pause = client.read_pause
        self._resume_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            items = self.parser.feed(data)
        except AMIProtocolError as exc:
            self.abort(f"protocol error: {exc}")
            return
        if items and type(items[0]) is Banner:
            if not self.banner.done():
                self.banner.set_result(items[0])
            items = items[1:]
        if items:
            self.client._dispatch(self, items)  # type: ignore[arg-type]
        if self._pause > 0 and self._resume_handle is None and self.transport is not None:
            # Let events gather in the socket buffer for a moment: a read, its loop turn and its dispatch cost
            # more than parsing an event, and under load events come a few at a time (see AMIClient.read_pause).
            self.transport.pause_reading()
            self._resume_handle = asyncio.get_running_loop().call_later(self._pause, self.resume)

    def resume(self) -> None:
        """Read again now (the pause is over, or an action waits for its answer)."""
        handle, self._resume_handle = self._resume_handle, None
        if handle is None:
            return
        handle.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.reason = self.reason or "Asterisk closed the connection"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.reason or (f"connection lost: {exc}" if exc else "Asterisk closed the connection")
        if not self.banner.done():
            self.banner.set_exception(AMIConnectionLost(f"{reason} before the AMI banner"))
        if not self.closed.done():
            self.closed.set_result(reason)
        self.client._connection_lost(self, reason)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise AMIConnectionLost("the AMI connection is closing; the action was not sent")
        self.transport.write(data)

    def abort(self, reason: str) -> None:
        self.reason = self.reason or reason
        if self.transport is not None:
            self.transport.abort()


@dataclass(frozen=True)
class AMIHealth:
    state: State
    logged_in: bool
    last_error: str | None
    login_failures: int
    reconnects: int
    connected_since: float | None  # time.time() of the last successful login
    version: str | None  # AMI version from the banner

    @property
    def healthy(self) -> bool:
        return self.logged_in


class AMIClient(AMIActions):
    """Asyncio AMI client. `await start()` then `await wait_logged_in()`; `await close()` at the end."""

    def __init__(
        self,
        host: str,
        port: int = 5038,
        username: str = "",
        secret: str = "",
        *,
        auth: Literal["plain", "md5"] = "plain",
        events: bool | str = True,
        connect_timeout: float = 5.0,
        login_timeout: float = 10.0,
        action_timeout: float = 10.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        login_failure_backoff: float = 60.0,
        tcp_keepalive: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        rng: random.Random | None = None,
        event_filter: bool = False,
        read_pause: float = 0.0,
        pbx: str = "default",
    ) -> None:
        """`pbx`: the server's name (`ami.servers[].name`), the label of its `ivr_ami_up` series."""
        if auth not in ("plain", "md5"):
            raise ValueError("auth must be 'plain' or 'md5'")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.auth = auth
        self.events = events
        self.connect_timeout = connect_timeout
        self.login_timeout = login_timeout
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.login_failure_backoff = login_failure_backoff
        self.tcp_keepalive = tcp_keepalive
        self.max_message_size = max_message_size
        self._rng = rng or random.Random()
        # Ask Asterisk (Filter action after each login) for only the events the subscribers want (filters.py)
        self.event_filter = event_filter
        # After each read, wait this long (s) before reading again, so that events arriving meanwhile are read,
        # parsed and dispatched together (0 = read as soon as data arrives). Actions do not wait for it.
        self.read_pause = read_pause
        self._filters_sent: set[EventFilter] = set()  # on the current connection
        self._filters_failed = False
        self.pbx = pbx
        self._up = metrics.AMI_UP.labels(pbx=pbx)
        self._id_prefix = f"ivr-{secrets.token_hex(4)}-"
        self._ids = itertools.count(1)

        self._state: State = "new"
        self._conn: _Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._closing = False
        self.logged_in = False
        self._changed = asyncio.Event()  # replaced by a fresh one at each state change (a broadcast)
        self._auth_error: AMIAuthError | None = None
        self._last_error: str | None = None
        self._login_failures = 0
        self._reconnects = 0
        self._connected_since: float | None = None
        self._version: str | None = None

        self._pending: dict[str, _Pending] = {}
        self._listing: dict[str, _Pending] = {}  # pending actions whose list items are arriving
        self._subs_by_event: dict[str, list[Subscription]] = {}
        self._subs_all: list[Subscription] = []
        self._connected_callbacks: list[ConnectedCallback] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._event_counters: dict[str, Any] = {}
        # Events counted in a plain dict by the reader and folded into ivr_ami_events_total at most 1 s later and
        # before every scrape (as ivr/agi/tally.py does for AGI commands): a labelled Counter.inc() takes a lock.
        self._event_counts: dict[str, int] = {}
        self._fold_handle: asyncio.TimerHandle | None = None
        self._inline_by_event: dict[str, list[InlineSubscription]] = {}
        self._action_timers: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (returns at once; see `wait_logged_in`)."""
        if self._closing:
            raise AMINotConnected("this AMIClient was closed; create a new one")
        if self._runner is None:
            metrics.add_collect_hook(self.fold_event_counts)
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="ami-connection")

    async def __aenter__(self) -> AMIClient:
        """`async with AMIClient(...) as ami:` starts, waits for the first login (connect + login timeouts), and
        closes on exit."""
        await self.start()
        try:
            await self.wait_logged_in(self.connect_timeout * 2 + self.login_timeout)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_logged_in(self, timeout: float | None = None) -> None:
        """Wait for a logged-in connection. Raises the last `AMIAuthError` at once if the login was refused,
        `AMITimeout` if not logged in within `timeout` seconds."""
        if self._runner is None and not self._closing:
            raise AMINotConnected("call start() before wait_logged_in()")
        try:
            async with asyncio.timeout(timeout):
                while not self.logged_in:
                    if self._closing:
                        raise AMINotConnected("the AMI client is closed")
                    if self._auth_error is not None:
                        raise self._auth_error
                    await self._changed.wait()
        except TimeoutError:
            raise AMITimeout(
                f"not logged in to AMI at {self.host}:{self.port} within {timeout}s"
                f" (last error: {self._last_error or 'none'})"
            ) from None

    async def close(self) -> None:
        """Log off (briefly), close the socket, cancel reconnects, pending actions, subscribers and callbacks."""
        if self._closing:
            return
        conn = self._conn
        if conn is not None and self.logged_in:
            # best effort: Asterisk forgets the session when the socket closes anyway
            with contextlib.suppress(AMIError):
                await self._request("Logoff", None, timeout=min(1.0, self.action_timeout), check=False)
        self._closing = True
        self._set_state("closed")
        with contextlib.suppress(KeyError):
            metrics.remove_collect_hook(self.fold_event_counts)
        self.fold_event_counts()
        tasks = [t for t in (self._runner, self._keepalive) if t is not None] + list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._runner = self._keepalive = None
        # The runner may have opened a new connection after Asterisk closed the old one on Logoff.
        for open_conn in {c for c in (conn, self._conn) if c is not None}:
            open_conn.abort("client closed")
        self._conn = None
        self._fail_pending("the AMI client was closed")
        for sub in list(self._subs_all) + [s for subs in self._subs_by_event.values() for s in subs]:
            sub.close()
        for inline in [s for subs in self._inline_by_event.values() for s in subs]:
            inline.close()
        self.logged_in = False
        self._up.set(0)

    def health(self) -> AMIHealth:
        return AMIHealth(
            state=self._state,
            logged_in=self.logged_in,
            last_error=self._last_error,
            login_failures=self._login_failures,
            reconnects=self._reconnects,
            connected_since=self._connected_since,
            version=self._version,
        )

    @property
    def state(self) -> State:
        return self._state

    # -- subscribers and callbacks ----------------------------------------------------------------------

    def subscribe(
        self,
        handler: EventHandler,
        events: Iterable[str] | None = None,
        *,
        maxsize: int = 10000,
        overflow: Overflow = "drop_oldest",
        name: str = "",
        filters: Iterable[EventFilter] = (),
        inline: bool = False,
    ) -> Subscription | InlineSubscription:
        """Deliver events named in `events` (exact AMI names; None = every event) to `handler` in its own task.

        When `maxsize` events are waiting, `overflow` decides: drop the oldest queued one or the new one; drops are
        counted in `ivr_ami_events_dropped{subscriber=name}`. Must be called from a running event loop.
        `filters` narrows some of `events` to a header value (e.g. VarSet of two variables): with
        `AMIClient(event_filter=True)` Asterisk then sends only those (the handler may still see others, e.g.
        when Asterisk refused the filters). `inline=True`: a plain, non-blocking function called by the reader
        itself (see `InlineSubscription`); `maxsize` and `overflow` do not apply.
        """
        sub_name = name or getattr(handler, "__qualname__", "subscriber")
        names = frozenset(events) if events is not None else None
        narrowed = tuple(filters)
        if any(names is None or f.name not in names for f in narrowed):
            raise ValueError("a subscription's filters must name events it subscribes to")
        if inline:
            if names is None or inspect.iscoroutinefunction(handler):
                raise ValueError("an inline subscriber is a plain function and names the events it wants")
            inline_sub = InlineSubscription(handler, names, sub_name, narrowed)
            for event in names:
                self._inline_by_event.setdefault(event, []).append(inline_sub)
            inline_sub._on_close = self._unsubscribe_inline
            self._filters_changed()
            return inline_sub
        sub = Subscription(handler, names, maxsize, overflow, sub_name, narrowed)
        if names is None:
            self._subs_all.append(sub)
        else:
            for event in names:
                self._subs_by_event.setdefault(event, []).append(sub)
        sub._on_close = self._unsubscribe
        self._filters_changed()
        return sub

    def _filters_changed(self) -> None:
        if self.logged_in and self.event_filter and self._conn is not None:
            self._spawn(self._install_filters(self._conn))  # the new names were filtered out until now

    def _unsubscribe_inline(self, sub: InlineSubscription) -> None:
        for event in sub.events or ():
            subs = self._inline_by_event.get(event)
            if subs and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._inline_by_event[event]

    def fold_event_counts(self) -> None:
        """Add the events counted since the last fold to `ivr_ami_events_total` (runs before every scrape)."""
        if self._fold_handle is not None:
            self._fold_handle.cancel()
            self._fold_handle = None
        counts, self._event_counts = self._event_counts, {}
        for name, n in counts.items():
            label = metrics.bounded_event(name)
            counter = self._event_counters.get(label)
            if counter is None:
                counter = self._event_counters[label] = metrics.AMI_EVENTS.labels(event=label)
            counter.inc(n)

    def wanted_filters(self) -> list[EventFilter]:
        """The include filters the subscribers need (empty = no filtering: a subscriber wants every event)."""
        if self._subs_all:
            return []
        wanted: list[EventFilter] = [EventFilter("OriginateResponse")]  # OriginateTracker (typed.py) waits for it
        excludes: set[EventFilter] | None = None
        subscribers: dict[str, list[Any]] = {}
        for table in (self._subs_by_event, self._inline_by_event):
            for name, subs in table.items():
                subscribers.setdefault(name, []).extend(subs)
        for name, subs in subscribers.items():
            agreed: set[EventFilter] | None = None
            for sub in subs:
                mine = [f for f in sub.filters if f.name == name]
                wanted += [f for f in mine if not f.exclude] or [EventFilter(name)]
                own = {f for f in mine if f.exclude}
                agreed = own if agreed is None else agreed & own
            # an exclude filter applies to the whole session: only when every subscriber of the event asked for it
            excludes = (excludes or set()) | (agreed or set())
        return merge(wanted, excludes or ())

    async def _install_filters(self, conn: _Connection) -> None:
        """Send the missing Filter actions; if Asterisk refuses one (an older Asterisk, no `system` write), add an
        include-everything filter so that no event a subscriber needs stays filtered out, and stop filtering."""
        if self._filters_failed or conn is not self._conn:
            return
        if self._subs_all:  # a subscriber wants every event
            if self._filters_sent:
                await self._include_everything()
            return
        wanted = self.wanted_filters()
        stale = [f for f in self._filters_sent if f.exclude and f not in wanted]
        if stale:  # Asterisk cannot remove a filter: it stays until the next login
            log.warning(
                "a new AMI subscriber wants events an installed exclude filter keeps out (%s) until the next login",
                ", ".join(f.conf_line() for f in stale),
            )
        missing = [f for f in wanted if f not in self._filters_sent]
        for f in missing:
            try:
                response, _ = await self._request("Filter", f.action_headers(), check=False, login=True)
            except (AMIConnectionLost, AMINotConnected, AMITimeout):
                return  # the next login starts over
            if (response.name or "").lower() != "success":
                self._filters_failed = True
                log.warning(
                    "Asterisk refused the AMI event filter %s (%s); events arrive unfiltered. Filters need "
                    "Asterisk 22, 21.6, 20.11 or newer and the AMI user's write class `system`",
                    f.conf_line(),
                    response.get("Message") or "no reason given",
                )
                if self._filters_sent:
                    await self._include_everything()
                return
            self._filters_sent.add(f)

    async def _include_everything(self) -> None:
        # A legacy filter whose regular expression matches any event: the union of include filters is everything.
        with contextlib.suppress(AMIError):
            await self._request("Filter", [("Operation", "Add"), ("Filter", ".")], check=False, login=True)
        self._filters_failed = True

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs_all:
            self._subs_all.remove(sub)
        for event in sub.events or ():
            subs = self._subs_by_event.get(event)
            if subs and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs_by_event[event]

    def on_connected(self, callback: ConnectedCallback) -> None:
        """Run `callback()` (no arguments) in its own task after every (re)login, e.g. to resynchronise state with
        CoreShowChannels, QueueStatus and ParkedCalls (events during the outage are lost)."""
        self._connected_callbacks.append(callback)

    # -- actions -------------------------------------------------------------------------------------------

    async def action(
        self, name: str, headers: Headers | None = None, *, timeout: float | None = None, check: bool = True
    ) -> Message:
        """Send one action and return its response (for a list action, after the list completed).
        Raises AMIActionError (Response: Error, unless check=False), AMITimeout, AMIConnectionLost,
        AMINotConnected."""
        response, _ = await self._request(name, headers, timeout=timeout, check=check)
        return response

    async def list_action(
        self, name: str, headers: Headers | None = None, *, timeout: float | None = None, check: bool = True
    ) -> tuple[Message, list[Message]]:
        """Send a list action (`EventList: start` ... `Complete`) and return the response and the item events
        (the Complete event excluded). `Response: Error` ends the list at once."""
        return await self._request(name, headers, timeout=timeout, check=check)

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    async def _request(
        self,
        name: str,
        headers: Headers | None,
        *,
        timeout: float | None = None,
        check: bool = True,
        action_id: str | None = None,
        login: bool = False,
    ) -> tuple[Message, list[Message]]:
        conn = self._conn
        if conn is None or not (self.logged_in or login):
            raise AMINotConnected(
                f"AMI is not logged in (state {self._state}); {name} was not sent. Retry once "
                "connected; actions are never queued or replayed"
            )
        aid = action_id or self._next_id()
        data = encode_action(name, headers, action_id=aid)
        conn.resume()  # the answer is read without waiting for the end of a read pause
        future: asyncio.Future[tuple[Message, list[Message]]] = asyncio.get_running_loop().create_future()
        self._pending[aid] = _Pending(name, future)
        wait = self.action_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            conn.write(data)
            async with asyncio.timeout(wait):
                response, items = await future
        except TimeoutError:
            raise AMITimeout(
                f"no answer to AMI action {name} (ActionID {aid}) within {wait}s; it may still have "
                "run in Asterisk, check before retrying"
            ) from None
        finally:
            self._pending.pop(aid, None)
            self._listing.pop(aid, None)
            self._action_timer(name).observe(time.monotonic() - started)
        if check and (response.name or "").lower() == "error":
            raise AMIActionError(name, response)
        return response, items

    def _action_timer(self, name: str) -> Any:
        label = act.action_label(name)
        timer = self._action_timers.get(label)
        if timer is None:
            timer = self._action_timers[label] = metrics.AMI_ACTION_SECONDS.labels(action=label)
        return timer

    # -- connection management ----------------------------------------------------------------------------

    def _set_state(self, state: State, error: str | None = None) -> None:
        self._state = state
        if error is not None:
            self._last_error = error
        self._changed.set()
        self._changed = asyncio.Event()

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max, self.backoff_min * (2.0 ** max(attempt - 1, 0)))
        return base / 2 + self._rng.uniform(0, base / 2)  # "equal jitter": never 0, never in lockstep

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            self._set_state("connecting")
            try:
                conn = await self._connect_and_login()
            except AMIAuthError as exc:
                self._login_failures += 1
                metrics.AMI_LOGIN_FAILURES.inc()
                self._auth_error = exc
                self._set_state("auth_failed", str(exc))
                log.error("%s; next attempt in about %.0fs", exc, self.login_failure_backoff)
                delay = self.login_failure_backoff * self._rng.uniform(0.9, 1.1)
            except (OSError, AMIError) as exc:
                attempt += 1
                delay = self._backoff(attempt)
                self._set_state("down", f"{type(exc).__name__}: {exc}")
                log.warning("AMI connect to %s:%s failed (%s); retrying in %.1fs", self.host, self.port, exc, delay)
            except Exception as exc:  # a bug must not end reconnecting for the life of the service
                attempt += 1
                delay = self._backoff(attempt)
                self._set_state("down", f"{type(exc).__name__}: {exc}")
                log.exception(
                    "AMI connect to %s:%s failed unexpectedly; retrying in %.1fs", self.host, self.port, delay
                )
            else:
                up_since = time.monotonic()
                reason = await asyncio.shield(conn.closed)
                self._set_state("down", reason)
                # Only a session that lived a while resets the backoff: an Asterisk that accepts the login and
                # drops us at once (crash loop, restart) must not be hammered.
                attempt = 1 if time.monotonic() - up_since >= self.backoff_max else attempt + 1
                delay = self._backoff(attempt)
                log.warning(
                    "AMI connection to %s:%s lost (%s); reconnecting in %.1fs", self.host, self.port, reason, delay
                )
            if self._closing:
                return
            await asyncio.sleep(delay)
            self._reconnects += 1
            metrics.AMI_RECONNECTS.inc()

    async def _connect_and_login(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(self, self.max_message_size)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: conn, self.host, self.port)
        except TimeoutError:
            raise AMITimeout(
                f"TCP connect to {self.host}:{self.port} timed out after {self.connect_timeout}s"
            ) from None
        self._conn = conn
        try:
            if self.tcp_keepalive:
                self._set_tcp_keepalive(conn)
            try:
                # Not shielded: this is the banner's only reader. On a time-out the future is cancelled with the
                # wait, so the connection_lost() that follows the abort finds it done and sets no exception that
                # nobody would read ("Future exception was never retrieved" at ERROR; asyncio.shield drops its
                # retrieval callback once the outer wait is cancelled).
                async with asyncio.timeout(self.connect_timeout):
                    banner = await conn.banner
            except TimeoutError:
                raise AMITimeout(
                    f"no AMI banner from {self.host}:{self.port} within {self.connect_timeout}s; is it "
                    "an Asterisk manager port?"
                ) from None
            self._version = banner.version
            await self._login()
            self._filters_sent, self._filters_failed = set(), False  # filters belong to the session
            if self.event_filter:
                await self._install_filters(conn)
        except BaseException:
            conn.banner.cancel()  # nobody waits for it any more (a no-op once it is done)
            conn.abort("login did not complete")
            self._conn = None
            raise
        self.logged_in = True
        self._auth_error = None
        self._connected_since = time.time()
        self._up.set(1)
        self._set_state("up")
        log.info("AMI logged in to %s:%s as %s (AMI %s)", self.host, self.port, self.username, self._version)
        if self.ping_interval > 0:
            self._keepalive = loop.create_task(self._keepalive_loop(conn), name="ami-keepalive")
        for callback in self._connected_callbacks:
            self._spawn(self._run_callback(callback))
        return conn

    async def _login(self) -> None:
        if self.auth == "md5":
            challenge, _ = await self._request(
                "Challenge", [("AuthType", "MD5")], timeout=self.login_timeout, check=False, login=True
            )
            value = challenge.get("Challenge")
            if (challenge.name or "").lower() != "success" or not value:
                raise AMIAuthError(
                    f"Asterisk refused the MD5 challenge for AMI user {self.username!r}: "
                    f"{challenge.get('Message') or 'no challenge'}; use auth='plain' or allow md5"
                )
            headers = md5_login_headers(self.username, md5_key(value, self._secret), events=self.events)
        else:
            headers = login_headers(self.username, self._secret, events=self.events)
        response, _ = await self._request("Login", headers, timeout=self.login_timeout, check=False, login=True)
        if (response.name or "").lower() != "success":
            raise AMIAuthError(
                f"Asterisk refused the AMI login of user {self.username!r} at {self.host}:{self.port} "
                f"({response.get('Message') or 'no reason given'}); check the username, the secret "
                "and the permit/deny lines in manager.conf"
            )

    def _set_tcp_keepalive(self, conn: _Connection) -> None:
        # not fatal if refused: the Ping keepalive still finds dead peers
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        set_tcp_keepalive(sock, idle=self.ping_interval or 30, interval=self.ping_timeout, count=3)

    async def _keepalive_loop(self, conn: _Connection) -> None:
        while self._conn is conn and not conn.closed.done():
            await asyncio.sleep(self.ping_interval)
            if self._conn is not conn:
                return
            try:
                await self._request("Ping", None, timeout=self.ping_timeout, check=False)
            except AMITimeout:
                log.warning(
                    "AMI keepalive: no Pong within %ss; the connection is dead (half-open), reconnecting",
                    self.ping_timeout,
                )
                conn.abort(f"keepalive: no answer to Ping within {self.ping_timeout}s")
                return
            except (AMIConnectionLost, AMINotConnected):
                return

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_callback(self, callback: ConnectedCallback) -> None:
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("AMI on_connected callback %r failed", getattr(callback, "__qualname__", callback))

    def _connection_lost(self, conn: _Connection, reason: str) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        was_up = self.logged_in
        self.logged_in = False
        self._up.set(0)
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        self._fail_pending(reason)
        if was_up and not self._closing:
            self._set_state("down", reason)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        self._listing = {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(
                    AMIConnectionLost(
                        f"AMI connection lost before the answer to {p.name} ({reason}); the action may or may not "
                        "have run and is not retried"
                    )
                )
        if self._originates is not None:
            self._originates.connection_lost(reason)

    # -- the reader's dispatch (no user code) ------------------------------------------------------------

    def _dispatch(self, conn: _Connection, items: list[Message]) -> None:
        if conn is not self._conn:
            return
        pending = self._pending
        listing = self._listing
        by_event = self._subs_by_event
        by_event_inline = self._inline_by_event
        catch_all = self._subs_all
        counts = self._event_counts
        for msg in items:
            # `_kind`/`_name` come from the first header (package-internal): Asterisk always puts Event/Response first.
            if msg._kind == "Event":
                name = msg._name or ""  # always set with _kind
            elif msg.is_event:
                name = msg.name or ""
            else:
                self._on_response(msg)
                continue
            counts[name] = counts.get(name, 0) + 1
            if listing:
                aid = msg.action_id
                if aid is not None:
                    p = listing.get(aid)
                    if p is not None:  # an item of a list we asked for: it answers us, it is not news
                        if is_list_complete(msg):
                            del listing[aid]
                            pending.pop(aid, None)
                            if not p.future.done():
                                p.future.set_result((p.response, p.items))  # type: ignore[arg-type]
                        else:
                            p.items.append(msg)
                        continue
            subs = by_event.get(name)
            if subs:
                for sub in subs:
                    queue = sub._queue  # Subscription.offer() inlined for the common case (room in the queue)
                    if len(queue) < sub.maxsize:
                        queue.append(msg)
                        if sub._sleeping:
                            sub._sleeping = False
                            sub._wakeup.set()
                    else:
                        sub.offer(msg)
            for sub in catch_all:
                sub.offer(msg)
            inline = by_event_inline.get(name)
            if inline:
                for isub in inline:  # InlineSubscription.call() inlined: the registry's path of every event
                    isub.delivered += 1
                    try:
                        result = isub.handler(msg)
                    except Exception:
                        isub.failed(msg)
                        continue
                    if result is not None:
                        isub.follow(result)
        if counts and self._fold_handle is None:
            self._fold_handle = asyncio.get_running_loop().call_later(1.0, self.fold_event_counts)

    def _on_response(self, msg: Message) -> None:
        aid = msg.action_id
        p = self._pending.get(aid) if aid is not None else None
        if p is None:
            log.debug("AMI response without a pending action (ActionID %r, late after a timeout?) dropped", aid)
            return
        if p.response is None and is_list_start(msg) and (msg.name or "").lower() != "error":
            p.response = msg
            self._listing[aid] = p  # type: ignore[index]
            return
        self._pending.pop(aid, None)  # type: ignore[arg-type]
        self._listing.pop(aid, None)  # type: ignore[arg-type]
        if not p.future.done():
            p.future.set_result((msg, p.items))

"""QueueStatsFeed over a fake AMI client that follows the AMIClient contract of docs/architecture.md
(subscribe(handler, events=...), on_connected(cb), list_action(name) -> (response, items), the typed list actions
of `ivr.ami.typed.AMIActions` over it). The list items are the real QueueStatus (ActionID ami-13) and QueueSummary
(ami-15) answers from ami-15-queue."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import generate_latest

from ivr import metrics
from ivr.ami.errors import AMIConnectionLost
from ivr.ami.typed import AMIActions
from ivr.queue_stats import SUBSCRIBED_EVENTS, QueueStats, QueueStatsFeed
from tests.observability.conftest import Deltas, FakeClock, sample
from tests.observability.transcript import ami_messages

MESSAGES = ami_messages("ami-15-queue")
STATUS_ITEMS = [m for m in MESSAGES if m.get("ActionID") == "ami-13" and "Event" in m]
SUMMARY_ITEMS = [m for m in MESSAGES if m.get("ActionID") == "ami-15" and "Event" in m]
CALLER_2_END = [
    m
    for m in MESSAGES
    if m.get("Uniqueid") == "1795909485.129"
    and m.get("Event") in ("HangupRequest", "QueueCallerAbandon", "QueueCallerLeave")
]


class FakeSubscription:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeAMIClient(AMIActions):
    def __init__(self) -> None:
        self.logged_in = True
        self.handlers: list[tuple[Callable[[Any], Awaitable[None] | None], set[str] | None, FakeSubscription]] = []
        self.connected_callbacks: list[Callable[[], Any]] = []
        self.fail_next = 0
        self.list_calls: list[str] = []
        self.resynced = asyncio.Event()

    def subscribe(  # type: ignore[override]
        self,
        handler: Callable[[Any], Awaitable[None] | None],
        events: set[str] | None = None,
        *,
        maxsize: int = 10000,
        overflow: str = "drop_oldest",
        name: str = "",
        inline: bool = False,
    ) -> FakeSubscription:
        sub = FakeSubscription()
        self.handlers.append((handler, events, sub))
        return sub

    def on_connected(self, callback: Callable[[], Any]) -> None:
        self.connected_callbacks.append(callback)

    async def list_action(  # type: ignore[override]
        self, name: str, headers: Any = None, *, timeout: float | None = None, check: bool = True
    ) -> tuple[dict[str, str], list[dict[str, str]]]:
        self.list_calls.append(name)
        if self.fail_next:
            self.fail_next -= 1
            raise AMIConnectionLost("connection closed while QueueSummary was pending")
        items = {"QueueStatus": STATUS_ITEMS, "QueueSummary": SUMMARY_ITEMS}[name]
        if name == "QueueStatus":
            self.resynced.set()
        return {"Response": "Success"}, list(items)

    async def emit(self, event: dict[str, str]) -> None:
        for handler, events, sub in self.handlers:
            if not sub.closed and (events is None or event["Event"] in events):
                result = handler(event)  # inline subscribers are plain functions
                if inspect.isawaitable(result):
                    await result

    async def relogin(self) -> None:
        for callback in self.connected_callbacks:
            result = callback()
            if inspect.isawaitable(result):
                await result


@pytest.fixture
async def feed(stats: QueueStats):
    client = FakeAMIClient()
    feed = QueueStatsFeed(client, stats, poll_interval=3600)
    yield feed
    await feed.close()


async def test_start_subscribes_and_resyncs(feed: QueueStatsFeed, clock: FakeClock, deltas: Deltas) -> None:
    client: FakeAMIClient = feed.client  # type: ignore[assignment]
    await feed.start()
    assert client.list_calls == ["QueueSummary", "QueueStatus"]
    assert client.handlers[0][1] == set(SUBSCRIBED_EVENTS)
    assert deltas.delta("ivr_queue_resyncs_total", result="ok") == 1
    assert sample("ivr_queue_callers", queue="testq") == 1
    assert sample("ivr_queue_agents", queue="testq", state="paused") == 1
    # The scrape hook ages the longest wait: Wait: 1 at resync, 4 s later the scrape says 5.
    clock.now += 4
    text = generate_latest(metrics.REGISTRY).decode()
    assert 'ivr_queue_longest_wait_seconds{queue="testq"} 5.0' in text


async def test_events_through_the_subscription(feed: QueueStatsFeed, deltas: Deltas) -> None:
    client: FakeAMIClient = feed.client  # type: ignore[assignment]
    await feed.start()
    assert [m["Event"] for m in CALLER_2_END] == ["HangupRequest", "QueueCallerAbandon", "QueueCallerLeave"]
    for event in CALLER_2_END:
        await client.emit(event)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
    assert sample("ivr_queue_callers", queue="testq") == 0


async def test_failed_resync_is_counted_and_relogin_retries(feed: QueueStatsFeed, deltas: Deltas) -> None:
    client: FakeAMIClient = feed.client  # type: ignore[assignment]
    client.fail_next = 1
    await feed.start()
    assert deltas.delta("ivr_queue_resyncs_total", result="failed") == 1
    assert sample("ivr_queue_callers", queue="testq") == 0
    await client.relogin()  # the client calls on_connected after every (re)login
    assert deltas.delta("ivr_queue_resyncs_total", result="ok") == 1
    assert sample("ivr_queue_callers", queue="testq") == 1


async def test_relogin_callback_also_works_when_not_awaited(feed: QueueStatsFeed, deltas: Deltas) -> None:
    client: FakeAMIClient = feed.client  # type: ignore[assignment]
    client.logged_in = False
    await feed.start()
    assert client.list_calls == []
    task = client.connected_callbacks[0]()  # a client that fires and forgets still gets the resync done
    await client.resynced.wait()
    await task
    assert deltas.delta("ivr_queue_resyncs_total", result="ok") == 1


async def test_periodic_poll(stats: QueueStats, deltas: Deltas) -> None:
    client = FakeAMIClient()
    client.logged_in = False  # no resync at start: the first one must come from the poll
    feed = QueueStatsFeed(client, stats, poll_interval=0.01)
    await feed.start()
    client.logged_in = True
    try:
        await asyncio.wait_for(client.resynced.wait(), timeout=10)
    finally:
        await feed.close()
    assert client.list_calls[:2] == ["QueueSummary", "QueueStatus"]
    assert client.handlers[0][2].closed
    assert stats.refresh not in metrics._HOOKS._hooks


def test_feed_rejects_bad_poll_interval(stats: QueueStats) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        QueueStatsFeed(FakeAMIClient.__new__(FakeAMIClient), stats, poll_interval=0)

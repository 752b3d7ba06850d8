"""One queue model: the call registry's queues (API, console) and the queue KPIs (`ivr_queue_agents`, `ivr_agents`)
read the same members, decided by `ivr.calls.queues.agent_state`, and one QueueStatus feeds both (real Asterisk 22
transcript ami-15-queue)."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.ami.protocol import Message
from ivr.calls.registry import CallRegistry
from ivr.calls.sync import RegistrySync
from ivr.console.views import queue_view
from ivr.queue_stats import QueueStats, QueueStatsFeed

from .transcripts import events_until, list_items, load

ITEMS = load("ami-15-queue.jsonl")
MEMBER = "Local/answer3s@agents"  # StateInterface Custom:agent1: its Status stays 0 while it talks


def test_registry_and_kpis_agree_on_an_agent_talking_with_a_custom_state_interface() -> None:
    registry = CallRegistry()
    stats = QueueStats(book=registry)
    states = []
    for event in events_until(ITEMS, "pause the member"):
        registry.apply(event)
        stats.apply(event)
        if event.name in ("AgentConnect", "AgentComplete"):
            member = registry.queues["testq"].members[MEMBER]
            agents = stats.snapshot()["testq"].agents
            console = queue_view(registry.queues["testq"])["agents"][0]["state"]
            states.append((event.name, member.state, console, stats.agent_states()[MEMBER], agents["busy"]))
    stats.reset()
    assert states == [
        ("AgentConnect", "busy", "busy", "busy", 1),
        ("AgentComplete", "available", "available", "available", 0),
    ]


class FakeAMI:
    """Answers list actions with the transcript's QueueStatus (ami-13) and empty channel/parking lists."""

    def __init__(self) -> None:
        self.logged_in = True
        self.sent: list[str] = []
        self.connected: list[Any] = []

    def subscribe(self, handler: Any, events: Any = None, **_: Any) -> None:
        return None

    def on_connected(self, callback: Any) -> None:
        self.connected.append(callback)

    async def list_action(
        self, name: str, headers: Any = None, *, timeout: float | None = None
    ) -> tuple[Any, list[Message]]:
        self.sent.append(name)
        return None, list_items(ITEMS, "ami-13") if name == "QueueStatus" else []


async def test_one_queue_status_per_login_and_poll_feeds_the_registry_and_the_kpis() -> None:
    ami = FakeAMI()
    registry = CallRegistry()
    sync = RegistrySync(ami, registry)
    stats = QueueStats(book=registry)
    feed = QueueStatsFeed(ami, stats, poll_interval=3600, sync=sync)
    await feed.start()
    sync.start()  # logged in already: resyncs now, as after every login
    try:
        await asyncio.wait_for(_until(lambda: sync.resyncs == 1), 5)
        assert ami.sent == ["CoreShowChannels", "ParkedCalls", "QueueStatus"]  # no QueueStatus/QueueSummary of its own
        assert stats.queues == ["testq"] and stats.snapshot()["testq"].callers == 1
        assert registry.queues["testq"].members[MEMBER].paused
        assert stats.snapshot()["testq"].agents["paused"] == 1
        assert await feed.resync()  # the poll: one QueueStatus, through the registry's sync
        assert ami.sent[3:] == ["QueueStatus"]
    finally:
        await feed.close()
        await sync.stop()
        stats.reset()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)

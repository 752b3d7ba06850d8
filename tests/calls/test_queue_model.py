"""One queue model: the call registry's queues (API, console) and the queue KPIs (`ivr_queue_agents`, `ivr_agents`,
`ivr_queue_callers`, `ivr_queue_longest_wait_seconds`) read the same members and waiting callers (the registry's
`QueueBoard`), agents decided by `ivr.calls.queues.agent_state`, and one sync feeds both: its events and its
QueueStatus (real Asterisk 22 transcript ami-15-queue)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr import metrics
from ivr.calls.queues import QUEUE_EVENTS, QueueBoard
from ivr.calls.registry import REGISTRY_EVENTS, CallRegistry
from ivr.calls.sync import RegistrySync
from ivr.console.views import queue_view
from ivr.queue_stats import QueueStats, QueueStatsFeed
from tests.observability.conftest import Deltas

from .fakes import FakeAMI, msg
from .transcripts import events_until, list_items, load

ITEMS = load("ami-15-queue.jsonl")
MEMBER = "Local/answer3s@agents"  # StateInterface Custom:agent1: its Status stays 0 while it talks


def test_registry_and_kpis_agree_on_an_agent_talking_with_a_custom_state_interface() -> None:
    registry = CallRegistry()
    stats = QueueStats(board=registry.board)
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


def test_registry_and_kpis_share_the_waiting_callers_and_tell_an_abandon_by_the_registry_hangup() -> None:
    """The caller who hung up while waiting (ami-15: HangupRequest, QueueCallerAbandon, QueueCallerLeave): the KPIs
    count an abandon from the hangup the registry applied; waiting count and longest wait are the registry's."""
    clock = [1000.0]
    registry = CallRegistry(clock=lambda: clock[0])
    stats = QueueStats(board=registry.board)
    deltas = Deltas()
    try:
        seen = []
        for event in events_until(ITEMS, None):
            if event.name not in REGISTRY_EVENTS or event.action_id:  # list items come through list actions
                continue
            registry.apply(event)
            if event.name in QUEUE_EVENTS:
                stats.apply(event)
            if event.name == "QueueCallerAbandon":
                clock[0] += 3
                waiting = registry.queues["testq"].callers
                snap = stats.snapshot()["testq"]
                seen.append((len(waiting), snap.callers, snap.longest_wait, [c.hung_up for c in waiting.values()]))
        assert seen == [(1, 1, 3.0, [True])]
        assert registry.queues["testq"].callers == {}
        assert stats.snapshot()["testq"].callers == 0
        assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
        assert deltas.delta("ivr_queue_calls_total", queue="testq", result="answered") == 1
        assert deltas.delta("ivr_queue_calls_total", queue="testq", result="timeout") == 0
    finally:
        stats.reset()


async def test_one_sync_feeds_the_registry_and_the_kpis_events_and_queue_status() -> None:
    ami = FakeAMI()
    ami.lists["QueueStatus"] = list_items(ITEMS, "ami-13")
    registry = CallRegistry()
    sync = RegistrySync(ami, registry)
    stats = QueueStats(board=registry.board)
    feed = QueueStatsFeed(ami, stats, poll_interval=3600, sync=sync)
    deltas = Deltas()
    await feed.start()
    sync.start()  # logged in already: resyncs now, as after every login
    try:
        await asyncio.wait_for(_until(lambda: sync.resyncs == 1), 5)
        # no QueueStatus/QueueSummary of its own, and no subscription of its own: the registry's only
        assert [name for name, _ in ami.sent] == ["CoreShowChannels", "ParkedCalls", "QueueStatus"]
        assert len(ami.handlers) == 1
        assert stats.queues == ["testq"] and stats.snapshot()["testq"].callers == 1
        assert registry.queues["testq"].members[MEMBER].paused
        assert stats.snapshot()["testq"].agents["paused"] == 1
        # The listed caller hangs up: the sync applies the events, then the KPIs count them.
        caller = next(iter(registry.queues["testq"].callers))
        for event in ("HangupRequest", "QueueCallerAbandon", "QueueCallerLeave"):
            await ami.emit(msg(("Event", event), ("Queue", "testq"), ("Uniqueid", caller), ("HoldTime", "4")))
        assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
        assert stats.snapshot()["testq"].callers == 0 and registry.queues["testq"].callers == {}
        assert await feed.resync()  # the poll: one QueueStatus, through the registry's sync
        assert [name for name, _ in ami.sent[3:]] == ["QueueStatus"]
    finally:
        await feed.close()
        await sync.stop()
        stats.reset()


def test_a_feed_with_a_sync_needs_the_registry_board() -> None:
    ami = FakeAMI()
    sync = RegistrySync(ami, CallRegistry())
    with pytest.raises(ValueError, match="board"):
        QueueStatsFeed(ami, QueueStats(), sync=sync)


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_the_registry_subscribes_to_every_event_it_has_a_handler_for() -> None:
    handled = {attr[4:] for attr in dir(CallRegistry) if attr.startswith("_on_")}
    assert handled <= REGISTRY_EVENTS
    assert QUEUE_EVENTS <= REGISTRY_EVENTS
    assert REGISTRY_EVENTS <= metrics.KNOWN_EVENTS  # ivr_ami_events_total names each, none is "other"


def test_a_resync_keeps_a_waiting_caller_s_join_time_and_hangup_mark() -> None:
    """QueueStatus lists the caller (Wait 5 s) before its QueueCallerJoin arrives: the join keeps the listed wait; a
    hangup mark made before the next resync survives it, and a caller whose channel ended still counts as hung up
    for the QueueCallerAbandon that follows."""
    clock = [100.0]
    board = QueueBoard(clock=lambda: clock[0])
    entry = msg(("Event", "QueueEntry"), ("Queue", "q"), ("Uniqueid", "u1"), ("Channel", "PJSIP/a-1"), ("Wait", "5"))
    board.resync([msg(("Event", "QueueParams"), ("Queue", "q"), ("Strategy", "ringall")), entry])
    board.apply(msg(("Event", "QueueCallerJoin"), ("Queue", "q"), ("Uniqueid", "u1"), ("Channel", "PJSIP/a-1")))
    assert board.queues["q"].callers["u1"].joined_at == 95.0
    assert not board.hung_up("q", "u1")
    board.apply(msg(("Event", "HangupRequest"), ("Uniqueid", "u1")))
    clock[0] = 130.0
    board.resync([entry])
    assert board.queues["q"].callers["u1"].joined_at == 95.0 and board.hung_up("q", "u1")
    board.channel_gone("u1")
    assert board.queues["q"].callers == {} and board.hung_up("q", "u1")
    assert not board.hung_up("q", "u2")  # never seen waiting: a Queue() timeout, not an abandon

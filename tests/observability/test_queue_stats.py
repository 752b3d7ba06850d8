"""QueueStats core, driven by the real Asterisk 22 events of ami-15-queue and agi-07-queue-moh-park."""

from __future__ import annotations

import pytest

from ivr.queue_stats import QueueStats, ServiceLevelPolicy
from tests.observability.conftest import Deltas, FakeClock, sample
from tests.observability.transcript import ami_messages, quoted

# --- quoted from ami-15-queue.txt (checked verbatim by quoted()) ------------------------------------------------
JOIN_CALLER_2 = quoted(
    "ami-15-queue",
    """
    Event: QueueCallerJoin
    ...
    Uniqueid: 1795909485.129
    Linkedid: 1795909485.128
    Queue: testq
    Position: 1
    Count: 1
""",
)
HANGUP_REQUEST_CALLER_2 = quoted(
    "ami-15-queue",
    """
    Event: HangupRequest
    Privilege: call,all
    Channel: Local/testq@queue-entry-0000003e;2
    ...
    Uniqueid: 1795909485.129
    Linkedid: 1795909485.128
    Cause: 0
""",
)
ABANDON_CALLER_2 = quoted(
    "ami-15-queue",
    """
    Event: QueueCallerAbandon
    ...
    Uniqueid: 1795909485.129
    Linkedid: 1795909485.128
    Queue: testq
    Position: 1
    OriginalPosition: 1
    HoldTime: 3
""",
)
LEAVE_CALLER_2 = quoted(
    "ami-15-queue",
    """
    Event: QueueCallerLeave
    ...
    Uniqueid: 1795909485.129
    Linkedid: 1795909485.128
    Queue: testq
    Position: 1
    Count: 0
""",
)
PAUSED_AWAY = quoted(
    "ami-15-queue",
    """
    Event: QueueMemberPause
    Privilege: agent,all
    Queue: testq
    MemberName: Agent One
    Interface: Local/answer3s@agents
    ...
    InCall: 0
    Status: 0
    Paused: 1
    PausedReason: away
""",
)
AGENT_CONNECT = quoted(
    "ami-15-queue",
    """
    Event: AgentConnect
    ...
    Queue: testq
    Interface: Local/answer3s@agents
    MemberName: Agent One
    HoldTime: 0
    RingTime: 0
""",
)
AGENT_COMPLETE = quoted(
    "ami-15-queue",
    """
    Event: AgentComplete
    ...
    Queue: testq
    Interface: Local/answer3s@agents
    MemberName: Agent One
    HoldTime: 0
    TalkTime: 4
    Reason: agent
""",
)
UNPAUSED = quoted(
    "ami-15-queue",
    """
    Event: QueueMemberPause
    Privilege: agent,all
    Queue: testq
    MemberName: Agent One
    Interface: Local/answer3s@agents
    ...
    CallsTaken: 0
    ...
    Status: 0
    Paused: 0
""",
)
# QueueStatus answer while caller 2 waits (ActionID ami-13)
STATUS_PARAMS = quoted(
    "ami-15-queue",
    """
    Event: QueueParams
    Queue: testq
    Max: 0
    Strategy: ringall
    Calls: 1
    Holdtime: 0
    TalkTime: 4
    Completed: 1
    Abandoned: 1
    ServiceLevel: 0
""",
)
STATUS_MEMBER = quoted(
    "ami-15-queue",
    """
    Event: QueueMember
    Queue: testq
    Name: Agent One
    Location: Local/answer3s@agents
    ...
    InCall: 0
    Status: 0
    Paused: 1
    PausedReason: away
    Wrapuptime: 0
    ActionID: ami-13
""",
)
STATUS_ENTRY = quoted(
    "ami-15-queue",
    """
    Event: QueueEntry
    Queue: testq
    Position: 1
    Channel: Local/testq@queue-entry-0000003e;2
    Uniqueid: 1795909485.129
    ...
    Wait: 1
    Priority: 0
    ActionID: ami-13
""",
)
SUMMARY = quoted(
    "ami-15-queue",
    """
    Event: QueueSummary
    Queue: testq
    LoggedIn: 1
    Available: 0
    Callers: 0
    HoldTime: 0
    TalkTime: 4
    LongestHoldTime: 0
    ActionID: ami-15
""",
)


def agents(state: str, queue: str = "testq") -> float:
    return sample("ivr_queue_agents", queue=queue, state=state)


def test_abandon_is_a_waiting_caller_whose_channel_hung_up(stats: QueueStats, clock: FakeClock, deltas: Deltas) -> None:
    stats.apply(JOIN_CALLER_2)
    clock.now += 3.5
    stats.refresh()  # what the scrape hook does (QueueStatsFeed installs it)
    assert sample("ivr_queue_callers", queue="testq") == 1
    assert sample("ivr_queue_longest_wait_seconds", queue="testq") == 3.5
    for event in (HANGUP_REQUEST_CALLER_2, ABANDON_CALLER_2, LEAVE_CALLER_2):
        stats.apply(event)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="timeout") == 0
    assert deltas.delta("ivr_queue_wait_seconds_sum", queue="testq", result="abandoned") == 3
    assert deltas.delta("ivr_queue_abandoned_within_sl_total", queue="testq") == 1  # 3 s <= 20 s
    assert sample("ivr_queue_callers", queue="testq") == 0
    assert sample("ivr_queue_longest_wait_seconds", queue="testq") == 0


def test_a_tracked_queue_has_its_counters_at_zero(stats: QueueStats) -> None:
    stats.apply({**JOIN_CALLER_2, "Queue": "fresh-queue"})
    for result in ("answered", "abandoned", "timeout"):
        assert metrics_has_series("ivr_queue_calls_total", queue="fresh-queue", result=result)
        assert metrics_has_series("ivr_queue_wait_seconds_count", queue="fresh-queue", result=result)
    assert metrics_has_series("ivr_queue_answered_within_sl_total", queue="fresh-queue")


def test_abandon_without_a_hangup_first_is_a_queue_timeout(stats: QueueStats, deltas: Deltas) -> None:
    # Same events minus the HangupRequest: what Queue(testq,,,,4) produced in agi-07 (see test_replay_agi_07).
    for event in (JOIN_CALLER_2, ABANDON_CALLER_2, LEAVE_CALLER_2):
        stats.apply(event)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="timeout") == 1
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 0
    assert deltas.delta("ivr_queue_abandoned_within_sl_total", queue="testq") == 0


def test_answered_call_counts_service_level_and_talk_time(stats: QueueStats, deltas: Deltas) -> None:
    stats.apply(UNPAUSED)
    assert agents("available") == 1
    stats.apply(AGENT_CONNECT)
    # Custom:agent1 stays at Status 0 while talking; AgentConnect marks the member busy.
    assert (agents("available"), agents("busy")) == (0, 1)
    stats.apply(AGENT_COMPLETE)
    assert (agents("available"), agents("busy")) == (1, 0)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="answered") == 1
    assert deltas.delta("ivr_queue_answered_within_sl_total", queue="testq") == 1
    assert deltas.delta("ivr_queue_wait_seconds_count", queue="testq", result="answered") == 1
    assert deltas.delta("ivr_queue_talk_seconds_sum", queue="testq") == 4
    assert deltas.delta("ivr_queue_talk_seconds_bucket", queue="testq", le="5.0") == 1
    assert deltas.delta("ivr_queue_talk_seconds_bucket", queue="testq", le="1.0") == 0
    assert sample("ivr_queue_service_level_ratio", queue="testq") == 1.0


def test_service_level_threshold_per_queue(clock: FakeClock, deltas: Deltas) -> None:
    # Transcripts only hold HoldTime 0 answers; a slow answer is built from the real event with HoldTime changed.
    stats = QueueStats(ServiceLevelPolicy(default_seconds=20, per_queue={"testq": 10}), clock=clock)
    try:
        stats.apply(AGENT_CONNECT)
        stats.apply({**AGENT_CONNECT, "HoldTime": "11"})
        stats.apply({**AGENT_CONNECT, "HoldTime": "10"})  # at the threshold counts as within
        assert deltas.delta("ivr_queue_calls_total", queue="testq", result="answered") == 3
        assert deltas.delta("ivr_queue_answered_within_sl_total", queue="testq") == 2
        assert sample("ivr_queue_service_level_ratio", queue="testq") == pytest.approx(2 / 3)
        assert sample("ivr_queue_service_level_threshold_seconds", queue="testq") == 10
    finally:
        stats.reset()


def test_asterisk_servicelevel_is_used_when_not_configured_here() -> None:
    policy = ServiceLevelPolicy(default_seconds=20, per_queue={"sales": 15})
    assert policy.threshold("sales", 30) == 15
    assert policy.threshold("support", 30) == 30
    assert policy.threshold("support", None) == 20
    with pytest.raises(ValueError, match="seconds > 0"):
        ServiceLevelPolicy(per_queue={"sales": 0})


def test_agents_by_state_from_member_status() -> None:
    from functools import partial

    from ivr.calls.queues import QueueMember

    Member = partial(QueueMember, "testq", "PJSIP/1001")

    assert Member(status=1).state == "available"
    assert Member(status=0).state == "available"  # unknown: Asterisk still rings it
    assert Member(status=2).state == "busy"
    assert Member(status=6).state == "busy"
    assert Member(status=5).state == "unavailable"
    assert Member(status=4).state == "unavailable"
    assert Member(status=1, paused=True).state == "paused"
    assert Member(status=0, in_call=True).state == "busy"


def test_agents_are_counted_once_across_their_queues() -> None:
    """Issue 14: 6 agents with 15 queue memberships were shown as 15. Each interface gets one state."""
    stats = QueueStats(queues={"sales", "support", "billing"})

    def member(queue: str, interface: str, status: int = 1, paused: str = "0") -> None:
        stats.apply(
            {
                "Event": "QueueMemberAdded",
                "Queue": queue,
                "Interface": interface,
                "Status": str(status),
                "Paused": paused,
            }
        )

    for n in range(1, 7):  # 6 agents; 1-3 in all three queues, 4-6 in two: 15 memberships
        for queue in ("sales", "support", "billing") if n <= 3 else ("sales", "support"):
            member(queue, f"PJSIP/100{n}")
    member("billing", "PJSIP/1001", status=2)  # busy in one queue: busy
    member("sales", "PJSIP/1002", paused="1")  # paused in one queue, available in others: available
    for queue in ("sales", "support"):
        member(queue, "PJSIP/1006", paused="1")  # paused everywhere: paused
    member("sales", "PJSIP/1005", status=5)
    member("support", "PJSIP/1005", status=5)  # unavailable everywhere
    assert sum(sum(snap.agents.values()) for snap in stats.snapshot().values()) == 15  # memberships
    states = stats.agent_states()
    assert len(states) == 6
    assert states == {
        "PJSIP/1001": "busy",
        "PJSIP/1002": "available",
        "PJSIP/1003": "available",
        "PJSIP/1004": "available",
        "PJSIP/1005": "unavailable",
        "PJSIP/1006": "paused",
    }


def test_resync_from_queue_status_and_summary(stats: QueueStats, clock: FakeClock, deltas: Deltas) -> None:
    stats.apply({"Event": "QueueCallerJoin", "Queue": "gone", "Uniqueid": "1.1"})
    assert "gone" in stats.queues
    stats.resync([STATUS_PARAMS, STATUS_MEMBER, STATUS_ENTRY], [SUMMARY])
    assert stats.queues == ["testq"]  # a queue Asterisk no longer lists is forgotten
    assert sample("ivr_queue_callers", queue="gone") == 0
    assert metrics_has_series("ivr_queue_callers", queue="gone") is False
    assert sample("ivr_queue_callers", queue="testq") == 1
    assert sample("ivr_queue_longest_wait_seconds", queue="testq") == 1  # Wait: 1
    clock.now += 2
    stats.refresh()
    assert sample("ivr_queue_longest_wait_seconds", queue="testq") == 3  # ages between scrapes
    assert agents("paused") == 1
    # A resync never counts calls.
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="answered") == 0
    # The caller found by the resync abandons later: counted once, by the event.
    for event in (HANGUP_REQUEST_CALLER_2, ABANDON_CALLER_2, LEAVE_CALLER_2):
        stats.apply(event)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
    assert sample("ivr_queue_callers", queue="testq") == 0


def test_join_racing_with_a_resync_keeps_the_listed_wait(stats: QueueStats, clock: FakeClock) -> None:
    stats.resync([STATUS_PARAMS, STATUS_MEMBER, STATUS_ENTRY], [SUMMARY])  # caller 2 listed with Wait: 1
    stats.apply(JOIN_CALLER_2)  # its QueueCallerJoin arrives late (events and list answers are not ordered)
    assert stats.snapshot()["testq"].longest_wait == 1
    assert stats.snapshot()["testq"].callers == 1


def test_resync_with_empty_lists_forgets_every_queue(stats: QueueStats) -> None:
    stats.apply(PAUSED_AWAY)
    stats.resync([], [])
    assert stats.queues == []
    assert not metrics_has_series("ivr_queue_agents", queue="testq", state="paused")


def test_queue_label_is_capped(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    stats = QueueStats(clock=clock, max_queues=1)
    try:
        stats.apply({**JOIN_CALLER_2, "Queue": "q-one"})
        stats.apply({**JOIN_CALLER_2, "Queue": "q-two"})
        assert stats.queues == ["q-one"]
        assert not metrics_has_series("ivr_queue_callers", queue="q-two")
        assert "not tracked" in caplog.text
    finally:
        stats.reset()
    allow = QueueStats(clock=clock, queues={"sales"})
    try:
        allow.apply(JOIN_CALLER_2)
        assert allow.queues == []
    finally:
        allow.reset()


def metrics_has_series(name: str, **labels: str) -> bool:
    from ivr import metrics

    return metrics.REGISTRY.get_sample_value(name, labels) is not None


def replay(stats: QueueStats, clock: FakeClock, name: str, until_note: str | None = None) -> None:
    for message in ami_messages(name):
        clock.now = 1000.0 + float(message["_t"])
        if message.get("Event") == "#note" and until_note and message["Text"].startswith(until_note):
            return
        if "Event" in message and "ActionID" not in message:  # list items belong to resync, not to events
            stats.apply(message)


def test_replay_ami_15_in_the_middle(stats: QueueStats, clock: FakeClock) -> None:
    replay(stats, clock, "ami-15-queue", until_note="caller 2 hangs up")
    snap = stats.snapshot()["testq"]
    assert snap.callers == 1
    # caller 2 joined at +5.52 s; the note comes at +8.525 s, just before the HoldTime: 3 abandon
    assert snap.longest_wait == pytest.approx(3.0, abs=0.05)
    assert snap.agents == {"available": 0, "busy": 0, "paused": 1, "unavailable": 0}
    assert snap.answered == 1 and snap.service_level == 1.0


def test_replay_ami_15_whole(stats: QueueStats, clock: FakeClock, deltas: Deltas) -> None:
    replay(stats, clock, "ami-15-queue")
    d = deltas.delta
    assert d("ivr_queue_calls_total", queue="testq", result="answered") == 1
    assert d("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
    assert d("ivr_queue_calls_total", queue="testq", result="timeout") == 0
    assert d("ivr_queue_talk_seconds_sum", queue="testq") == 4
    assert d("ivr_queue_wait_seconds_sum", queue="testq", result="abandoned") == 3
    snap = stats.snapshot()["testq"]
    assert snap.callers == 0
    assert snap.agents == {"available": 0, "busy": 0, "paused": 0, "unavailable": 0}  # QueueMemberRemoved


def test_replay_agi_07(stats: QueueStats, clock: FakeClock, deltas: Deltas) -> None:
    """agi-07: two answered calls in agiq (talk 2 s and 3 s), then Queue(testq,,,,4) timing out (QUEUESTATUS=TIMEOUT
    on the AGI side; AMI shows QueueCallerAbandon with HoldTime 4 and no hangup)."""
    replay(stats, clock, "agi-07-queue-moh-park.ami")
    d = deltas.delta
    assert d("ivr_queue_calls_total", queue="agiq", result="answered") == 2
    assert d("ivr_queue_talk_seconds_sum", queue="agiq") == 5
    assert d("ivr_queue_talk_seconds_count", queue="agiq") == 2
    assert d("ivr_queue_calls_total", queue="testq", result="timeout") == 1
    assert d("ivr_queue_calls_total", queue="testq", result="abandoned") == 0
    assert d("ivr_queue_wait_seconds_sum", queue="testq", result="timeout") == 4
    # The static member was learnt from QueueMemberStatus alone; it ends free (Status 1, InCall 0).
    assert stats.snapshot()["agiq"].agents["available"] == 1


def test_subscribed_events_are_exactly_the_handled_ones() -> None:
    """One list of queue events (ivr.calls.queues): the KPIs count exactly those, the call registry subscribes to
    them and to the waiting callers' hangups, and a feed of its own subscribes to the same."""
    from ivr.calls.queues import HANGUP_EVENTS, QUEUE_EVENTS
    from ivr.calls.registry import REGISTRY_EVENTS
    from ivr.queue_stats import SUBSCRIBED_EVENTS

    assert set(QueueStats._HANDLERS) == QUEUE_EVENTS
    assert {"HangupRequest", "SoftHangupRequest", "Hangup"} == HANGUP_EVENTS
    assert QUEUE_EVENTS | HANGUP_EVENTS <= REGISTRY_EVENTS
    assert SUBSCRIBED_EVENTS == QUEUE_EVENTS | HANGUP_EVENTS


def test_replay_exact_bytes_through_the_ami_parser(stats: QueueStats, deltas: Deltas) -> None:
    """The same ami-15 replay from the exact bytes (the .jsonl), parsed by ivr.ami.protocol into Message objects."""
    import json

    from ivr.ami.protocol import AMIParser, Message
    from tests.observability.transcript import ASTERISK_DIR

    parser = AMIParser()
    for line in (ASTERISK_DIR / "ami-15-queue.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["dir"] != "asterisk->app":
            continue
        for msg in parser.feed(record["data"].encode("utf-8")):
            if isinstance(msg, Message) and msg.is_event and msg.get("ActionID") is None:
                stats.apply(msg)
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="answered") == 1
    assert deltas.delta("ivr_queue_calls_total", queue="testq", result="abandoned") == 1
    assert deltas.delta("ivr_queue_talk_seconds_sum", queue="testq") == 4

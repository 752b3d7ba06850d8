"""The live call registry, fed with what a real Asterisk 22.10.1 sent (tests/data/asterisk)."""

from __future__ import annotations

from ivr.ami.protocol import AMIParser, Message
from ivr.calls.registry import CallEnded, CallRegistry, ChannelGone, RecordingEnded, RecordingStarted, Unparked

from .transcripts import TRANSCRIPTS, events_until, list_items, load


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(reg: CallRegistry, events: list[Message]) -> list:
    effects = []
    for ev in events:
        effects.extend(reg.apply(ev))
    return effects


def test_park_then_timeout_ami13_call_a():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    feed(reg, events_until(items, "Park action on Local/p1"))
    # "Uniqueid: 1795909439.108" / "Linkedid: 1795909439.108": one call with both Local halves.
    call = reg.call("1795909439.108")
    assert call is not None
    assert sorted(ch.name for ch in call.channels) == ["Local/p1@phones-00000035;1", "Local/p1@phones-00000035;2"]
    assert call.state == "up"
    assert call.origin.caller_num == "301" and call.origin.caller_name == "Parkee A"

    feed(reg, events_until(items, "ParkedCalls / Parkinglots", start="Park action on Local/p1"))
    call = reg.call("1795909439.108")
    assert call.state == "parked"
    [parked] = reg.parked_in("default")
    # "ParkingSpace: 701", "ParkingTimeout: 5", "ParkerDialString: Local/p1@phones"
    assert (parked.space, parked.timeout, parked.parker, parked.linkedid) == (
        "701",
        5,
        "Local/p1@phones",
        "1795909439.108",
    )
    assert reg.parked_counts() == {"default": 1}

    effects = feed(reg, events_until(items, "call B", start="waiting for the 5 s parking timeout"))
    assert Unparked("default", "701", "1795909439.108", "timeout", 5.0) in effects
    assert CallEnded("1795909439.108") in effects
    assert reg.call("1795909439.108") is None and reg.parked == {}


def test_redirect_park_and_retrieval_refiles_retriever_ami13_call_b():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    feed(reg, events_until(items, "retriever: Originate", start="call B"))
    assert [p.linkedid for p in reg.parked_in()] == ["1795909447.111"]  # parked by Redirect to 700
    effects = feed(reg, events_until(items, "retriever hangs up", start="retriever: Originate"))
    assert [e for e in effects if isinstance(e, Unparked)] == [
        Unparked("default", "701", "1795909447.111", "retrieved", 3.0)
    ]  # "ParkingDuration: 3"... as sent
    # "Channel: Local/701@parkedcalls-00000037;2" / "Linkedid: 1795909447.111": the retriever's ;2 joins the
    # parkee's call; the ;1 half keeps "Linkedid: 1795909450.113".
    call = reg.call("1795909447.111")
    names = sorted(ch.name for ch in call.channels)
    assert "Local/701@parkedcalls-00000037;2" in names and "Local/p2@phones-00000036;1" in names
    assert call.state == "talking"
    assert reg.call("1795909450.113") is not None

    feed(reg, events_until(items, "call C", start="retriever hangs up"))
    # Asterisk sends "Event: NewCallerid" for Local/701@parkedcalls-00000037;1 after its Hangup: no resurrection.
    assert reg.channel_by_name("Local/701@parkedcalls-00000037;1") is None
    # The lot's holding bridge lives on (Asterisk never destroys it), empty.
    assert reg.calls() == [] and all(not b.channels for b in reg.bridges.values())


def test_hangup_while_parked_is_giveup_ami13_call_c():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    effects = feed(reg, events_until(items, "call D", start="call C"))
    assert Unparked("default", "701", "1795909455.115", "giveup", 1.0) in effects
    assert reg.parked == {}


def test_park_of_bridged_channel_ami13_call_d():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    feed(reg, events_until(items, "Park action on the bridged bob side", start="call D"))
    call = reg.call("1795909458.118")
    assert call.state == "talking" and len(call.talking_bridge().channels) == 2
    feed(reg, events_until(items, "cleanup", start="Park action on the bridged bob side"))
    # bob timed out of the lot and was hung up, alice (TimeoutChannel) was hung up: nothing left.
    assert reg.calls() == [] and reg.parked == {}


def test_parkedcalls_list_resync():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    reg.apply(
        Message(
            [
                ("Event", "ParkedCall"),
                ("ParkeeChannel", "Local/gone-1;1"),
                ("ParkeeUniqueid", "9.9"),
                ("ParkeeLinkedid", "9.9"),
                ("Parkinglot", "default"),
                ("ParkingSpace", "702"),
            ]
        )
    )
    effects = reg.resync_parked(list_items(items, "ami-4"))  # ParkedCalls answer while call A is parked
    assert [(p.space, p.linkedid, p.caller_num) for p in reg.parked_in()] == [("701", "1795909439.108", "301")]
    assert [e.space for e in effects if isinstance(e, Unparked)] == ["702"]  # the stale one is gone


def test_coreshowchannels_resync_builds_calls_and_drops_stale_ami12():
    items = load("ami-12-status-getvar-command.jsonl")
    reg = CallRegistry(clock=Clock())
    stale = Message(
        [
            ("Event", "Newchannel"),
            ("Channel", "PJSIP/old-00000001"),
            ("ChannelState", "6"),
            ("Uniqueid", "1.1"),
            ("Linkedid", "1.1"),
        ]
    )
    reg.apply(stale)
    snapshot = list_items(items, "ami-4")
    assert len(snapshot) == 6 and {m.name for m in snapshot} == {"CoreShowChannel"}
    effects = reg.resync_channels(snapshot)
    assert ChannelGone("1.1", "1.1", "PJSIP/old-00000001", "") in effects and CallEnded("1.1") in effects
    # "BridgeId: 8ad7398a-93bc-4baa-9a18-b60e6c7bdf35" on alice ;1 (and bob ;1): a talking 2-party call.
    alice = reg.call("1795909436.104")
    assert alice.state == "talking"
    assert alice.origin.application == "Dial" and alice.origin.app_data == "Local/bob@phones,,tT"
    assert alice.origin.created_at == 999.0  # "Duration: 00:00:01"
    assert len(reg.calls()) == 2
    # Re-applying the same snapshot changes nothing.
    assert reg.resync_channels(snapshot) == []


def test_mixmonitor_start_mute_stop_and_stop_by_hangup_ami14():
    items = load("ami-14-mixmonitor.jsonl")
    reg = CallRegistry(clock=Clock())
    clock = reg.clock
    effects = feed(reg, events_until(items, "mute both directions"))
    assert [type(e) for e in effects] == [RecordingStarted]
    [call] = reg.calls()
    assert call.recording is not None and call.recording.recording.muted is False
    feed(reg, events_until(items, "StopMixMonitor by MixMonitorID", start="mute both directions"))
    assert call.recording is not None
    clock.now += 6
    effects = feed(reg, events_until(items, "error cases", start="StopMixMonitor by MixMonitorID"))
    assert [type(e) for e in effects] == [RecordingEnded]
    assert (effects[0].reason, effects[0].seconds) == ("stopped", 6.0)
    assert reg.recordings_running() == 0
    # "Event: MixMonitorMute ... State: 1" without a running MixMonitor: Asterisk still says Success; ignored.
    feed(reg, events_until(items, "second recording", start="error cases"))
    assert reg.calls()[0].recording is None
    effects = feed(reg, events_until(items, "files produced", start="second recording"))
    # A hangup ends MixMonitor without MixMonitorStop: the registry reports it.
    assert [e.reason for e in effects if isinstance(e, RecordingEnded)] == ["hangup"]
    assert reg.calls() == []


def test_queue_members_callers_and_agent_ami15():
    items = load("ami-15-queue.jsonl")
    reg = CallRegistry(clock=Clock())
    # QueueMemberAdded arrives after the next action was sent (events are asynchronous).
    feed(reg, events_until(items, "QueuePause: unpause"))
    member = reg.queues["testq"].members["Local/answer3s@agents"]
    # "Paused: 1" / "PausedReason: initial pause" / "MemberName: Agent One" / "StateInterface: Custom:agent1"
    assert (member.paused, member.paused_reason, member.name, member.state_interface) == (
        True,
        "initial pause",
        "Agent One",
        "Custom:agent1",
    )
    feed(reg, events_until(items, "caller 1 enters", start="QueuePause: unpause"))
    assert member.paused is False and member.paused_reason == ""

    events = events_until(items, "pause the member", start="caller 1 enters")
    join = next(i for i, e in enumerate(events) if e.name == "QueueCallerJoin")
    feed(reg, events[: join + 1])
    call = reg.call("1795909480.124")
    assert call.state == "queued" and call.queue == "testq"
    assert [c.position for c in reg.queues["testq"].callers.values()] == [1]
    # MusicOnHoldStart while waiting: still "queued", not "held".
    feed(reg, events[join + 1 : join + 2])
    assert reg.call("1795909480.124").state == "queued"
    connect = max(i for i, e in enumerate(events) if e.name == "BridgeEnter")
    feed(reg, events[join + 2 : connect + 1])
    call = reg.call("1795909480.124")
    assert call.queue is None and call.agent == "Agent One" and call.state == "talking"
    feed(reg, events[connect + 1 :])
    assert reg.call("1795909480.124") is None

    # QueueStatus while caller 2 waits ("ActionID: ami-13"): replaces members and callers.
    fresh = CallRegistry(clock=Clock())
    feed(fresh, events_until(items, "caller 2 hangs up", start="pause the member"))
    fresh.resync_queues(list_items(items, "ami-13"))
    queue = fresh.queues["testq"]
    assert queue.strategy == "ringall"
    assert (queue.members["Local/answer3s@agents"].paused_reason, queue.members["Local/answer3s@agents"].name) == (
        "away",
        "Agent One",
    )
    [waiting] = queue.callers.values()
    assert (waiting.channel, waiting.caller_num, waiting.linkedid) == (
        "Local/testq@queue-entry-0000003e;2",
        "5554002",
        "1795909485.128",
    )
    assert fresh.call("1795909485.128").state == "queued"

    feed(fresh, events_until(items, "EOF", start="caller 2 hangs up"))
    assert fresh.queues["testq"].members == {} and fresh.queues["testq"].callers == {}


def test_a_call_the_flow_dialled_names_its_agent_ami_agi06():
    """agi-06.ami: the AGI channel runs Dial(Local/answer2s@agents); DialEnd ANSWER names the dialled peer, so the
    call shows its agent while the caller talks to it, as a queue call does (AgentConnect). Unanswered dials
    (NOANSWER, BUSY) name nobody."""
    items = load("agi-06-exec-dial.ami.jsonl")
    events = [m for m in items if isinstance(m, Message) and m.is_event]
    caller = "1795909322.39"  # Local/agi-06@agi-scen-00000012;2, the channel in the flow
    first_bridge = next(i for i, e in enumerate(events) if e.name == "BridgeEnter" and e.get("Uniqueid") == caller)
    reg = CallRegistry(clock=Clock())
    feed(reg, events[: first_bridge + 1])
    call = reg.call("1795909322.38")
    assert call.state == "talking" and call.agent == "Local/answer2s@agents"
    agent_leg = reg.channel_by_name("Local/answer2s@agents-00000013;1")
    assert agent_leg is not None and agent_leg.agent_leg and agent_leg.agent == "Local/answer2s@agents"
    assert reg.channels[caller].agent == "Local/answer2s@agents" and not reg.channels[caller].agent_leg
    assert call.to_json()["agent"] == "Local/answer2s@agents"

    second_answer = [i for i, e in enumerate(events) if e.name == "DialEnd" and e.get("DialStatus") == "ANSWER"][-1]
    feed(reg, events[first_bridge + 1 : second_answer])  # NOANSWER, BUSY, no such extension: nobody new
    assert reg.channel_by_name("Local/noanswer@agents-00000014;1") is None
    feed(reg, events[second_answer : second_answer + 1])
    assert reg.call("1795909322.38").agent == "Local/talk@agents"
    feed(reg, events[second_answer + 1 :])
    assert reg.calls() == []


def test_the_customer_an_agent_leg_dials_is_not_named_agent():
    """Click-to-call: the agent's own leg dials the customer; that DialEnd must not rename the agent."""
    reg = CallRegistry(clock=Clock())
    reg.expect_agent_leg("1.10", "1001")

    def block(prefix: str, name: str, uid: str) -> list[tuple[str, str]]:
        return [(prefix + "Channel", name), (prefix + "ChannelState", "6"), (prefix + "Uniqueid", uid)] + [
            (prefix + "Linkedid", "1.10")
        ]

    for name, uid in (("PJSIP/1001-0000000a", "1.10"), ("PJSIP/trunk-0000000b", "1.11")):
        reg.apply(Message([("Event", "Newchannel"), *block("", name, uid)]))
    reg.apply(
        Message(
            [
                ("Event", "DialEnd"),
                *block("", "PJSIP/1001-0000000a", "1.10"),
                *block("Dest", "PJSIP/trunk-0000000b", "1.11"),
                ("DialStatus", "ANSWER"),
            ]
        )
    )
    assert reg.channels["1.10"].agent == "1001" and reg.channels["1.11"].agent is None
    assert reg.call("1.10").agent == "1001"


def test_transfers_leave_no_stale_bridges_ami16():
    items = load("ami-16-transfers.jsonl")
    reg = CallRegistry(clock=Clock())
    feed(reg, events_until(items, "BlindTransfer Channel="))
    [call] = reg.calls()
    assert call.state == "talking"
    feed(reg, events_until(items, "cleanup call 1", start="BlindTransfer Channel="))
    # alice (the transferer) is hung up; bob runs phones,carol outside any bridge.
    bob = reg.channel_by_name("Local/bob@phones-00000040;1")
    assert bob is not None and bob.bridge_id is None and bob.context == "phones"
    assert reg.channel_by_name("Local/alice@phones-0000003f;1") is None
    feed(reg, events_until(items, "EOF", start="cleanup call 1"))
    assert reg.calls() == [] and all(not b.channels for b in reg.bridges.values())


def test_flow_and_node_from_varset_and_agi_side():
    reg = CallRegistry(clock=Clock())
    base = [
        ("Channel", "PJSIP/trunk-00000001"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "+37060000001"),
        ("Uniqueid", "5.1"),
        ("Linkedid", "5.1"),
    ]
    reg.apply(Message([("Event", "Newchannel"), *base]))
    reg.apply(Message([("Event", "VarSet"), *base, ("Variable", "IVR_FLOW"), ("Value", "main")]))
    reg.apply(Message([("Event", "VarSet"), *base, ("Variable", "IVR_NODE"), ("Value", "menu")]))
    call = reg.call("5.1")
    assert (call.state, call.flow, call.to_json()["node"]) == ("ivr", "main", "menu")
    reg.note_flow("5.1", "sales", "ask")
    assert reg.call("5.1").flow == "sales"


def test_shutdown_clears_everything():
    items = load("ami-13-parking.jsonl")
    reg = CallRegistry(clock=Clock())
    feed(reg, events_until(items, "ParkedCalls / Parkinglots"))
    effects = reg.apply(Message([("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "False")]))
    assert CallEnded("1795909439.108") in effects
    assert reg.calls() == [] and reg.parked == {}


def test_resync_sees_a_held_party_and_hangups_name_their_context():
    # ami-12's CoreShowChannel for alice ;1, as it reads once a Redirect put it in [ivr-hold] (MusicOnHold(default))
    # and its partner bob ;1 in [ivr-hold-wait] (Wait(3600)): no bridge, the application and location changed.
    snapshot = list_items(load("ami-12-status-getvar-command.jsonl"), "ami-4")
    moved = {
        "Local/alice@phones-00000033;1": ("ivr-hold", "MusicOnHold", "default"),
        "Local/bob@phones-00000034;1": ("ivr-hold-wait", "Wait", "3600"),
    }
    items = []
    for item in snapshot:
        if item.get("Channel") in moved:
            context, app, data = moved[item["Channel"]]
            changed = {
                "Context": context,
                "Exten": "s",
                "Priority": "1",
                "Application": app,
                "ApplicationData": data,
                "BridgeId": "",
            }
            item = Message([(k, changed.get(k, v)) for k, v in item.items()])
        items.append(item)
    reg = CallRegistry(clock=Clock())
    reg.resync_channels(items)
    call = reg.call("1795909436.104")
    assert call.state == "held" and call.talking_bridge() is None
    by_name = {ch.name: ch for ch in call.channels}
    assert by_name["Local/alice@phones-00000033;1"].moh_class == "default"
    assert by_name["Local/bob@phones-00000034;1"].moh_class is None
    alice = by_name["Local/alice@phones-00000033;1"]
    effects = reg.apply(
        Message(
            [
                ("Event", "Hangup"),
                ("Channel", alice.name),
                ("Uniqueid", alice.uniqueid),
                ("Linkedid", alice.linkedid),
                ("Cause", "16"),
            ]
        )
    )
    assert ChannelGone(alice.uniqueid, alice.linkedid, alice.name, "16", "ivr-hold") in effects


def test_one_match_block_read_gives_the_same_picture_as_header_reads():
    """The registry reads a channel event's standard block in one match (`Message.leading`) when the event has its
    text; an event built from header pairs is read header by header. Both give the same channels and effects over
    every recorded scenario."""
    import dataclasses

    checked = 0
    names = sorted(
        p.name
        for p in TRANSCRIPTS.glob("*.jsonl")
        if p.name.endswith(".ami.jsonl") or (p.name.startswith("ami-") and not p.name.endswith(".agi.jsonl"))
    )
    assert len(names) > 10

    def flow_call() -> list[Message]:
        # A flow's own variables (the recordings set none): Newchannel, VarSet IVR_FLOW / IVR_NODE, Newexten, Hangup.
        block = (
            "Channel: Local/100@ivr-00000001;2\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"
            "CallerIDNum: 5551234\r\nCallerIDName: Caller\r\nConnectedLineNum: <unknown>\r\n"
            "ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: ivr\r\nExten: 100\r\n"
            "Priority: 4\r\nUniqueid: 1795909233.19\r\nLinkedid: 1795909233.18\r\n"
        )
        tails = [
            ("Newchannel", "call", "Exten: 100\r\n"),
            ("VarSet", "dialplan", "Variable: IVR_FLOW\r\nValue: main\r\n"),
            ("VarSet", "dialplan", "Variable: ivr_node\r\nValue: menu\r\n"),
            ("Newexten", "dialplan", "Extension: 100\r\nApplication: AGI\r\nAppData: agi://ivr/main\r\n"),
            ("Hangup", "call", "Cause: 16\r\nCause-txt: Normal Clearing\r\n"),
        ]
        text = "".join(f"Event: {e}\r\nPrivilege: {p},all\r\n{block}{t}\r\n" for e, p, t in tails)
        parsed = AMIParser().feed(b"Asterisk Call Manager/11.0.0\r\n" + text.encode())
        return [m for m in parsed if isinstance(m, Message)]

    for name in [*names, "flow"]:
        if name == "flow":
            events, copies = flow_call(), [Message(m.items()) for m in flow_call()]
            assert [m.name for m in events] == ["Newchannel", "VarSet", "VarSet", "Newexten", "Hangup"]
        else:
            events = [m for m in load(name) if isinstance(m, Message) and m.is_event]
            copies = [Message(m.items()) for m in load(name) if isinstance(m, Message) and m.is_event]
        fast, slow = CallRegistry(clock=Clock()), CallRegistry(clock=Clock())
        for ev, split in zip(events, copies, strict=True):
            assert split._raw is None
            checked += ev.name in ("Newchannel", "Newstate", "Newexten", "DialEnd") and ev._raw is not None
            assert fast.apply(ev) == slow.apply(split), (name, split)
            assert {u: dataclasses.asdict(c) for u, c in fast.channels.items()} == {
                u: dataclasses.asdict(c) for u, c in slow.channels.items()
            }, (name, split)
            if name == "flow" and split.name == "Newexten":
                ch = fast.channels["1795909233.19"]
                assert (ch.flow, ch.node, ch.application, ch.app_data) == ("main", "menu", "AGI", "agi://ivr/main")
    assert checked > 100

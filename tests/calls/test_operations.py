"""Call operations against a scripted AMI client, with registry states replayed from real Asterisk transcripts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.ami.errors import AMIEncodingError, AMINotConnected
from ivr.calls.errors import AsteriskUnavailable, InvalidRequest, InvalidState, NotFound, UnknownCall, from_ami
from ivr.calls.operations import CallOperations, Originated, TransferTarget
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.storage import open_storage

from .fakes import FakeAMI, error, msg
from .transcripts import events_until, load

T0 = datetime(2026, 11, 28, 23, 44, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def env():
    ami = FakeAMI()
    registry = CallRegistry(clock=lambda: 1000.0)
    storage = open_storage("memory:")
    clock = Clock()
    ops = CallOperations(
        ami, registry, storage, CallControlSettings(recordings_dir="/var/spool/asterisk/monitor"), clock=clock
    )
    yield ami, registry, storage, ops, clock
    await storage.close()


def replay(registry: CallRegistry, name: str, until: str, start: str | None = None) -> None:
    for ev in events_until(load(name), until, start=start):
        registry.apply(ev)


def bridged_call(registry: CallRegistry) -> str:
    # ami-16 call 1: Local/alice@phones-0000003f;1 bridged with Local/bob@phones-00000040;1.
    replay(registry, "ami-16-transfers.jsonl", "BlindTransfer Channel=")
    [call] = registry.calls()
    assert call.state == "talking"
    return call.id


async def test_click_to_call_rings_agent_then_customer(env):
    ami, registry, _, ops, _ = env
    result = await ops.click_to_call("1001", "+37060000001")
    h = ami.headers()
    assert ami.names() == ["Originate"]
    assert (h["Channel"], h["Context"], h["Exten"], h["Priority"], h["Async"]) == (
        "PJSIP/1001",
        "from-internal",
        "+37060000001",
        "1",
        "true",
    )
    assert h["ChannelId"] == result.call_id and result.call_id.startswith("ivr-")
    assert h["Variable"] == "IVR_AGENT=1001"
    # The agent leg is known as such once Asterisk reports it.
    registry.apply(
        msg(
            ("Event", "Newchannel"),
            ("Channel", "PJSIP/1001-00000001"),
            ("ChannelState", "0"),
            ("Uniqueid", result.call_id),
            ("Linkedid", result.call_id),
        )
    )
    leg = registry.channels[result.call_id]
    assert leg.agent_leg and leg.agent == "1001"


@pytest.mark.parametrize("agent,number", [("10 01", "123"), ("1001", "123&PJSIP/999"), ("1001", "12,3"), ("1001", "")])
async def test_click_to_call_refuses_injection(env, agent, number):
    ami, _, _, ops, _ = env
    with pytest.raises(InvalidRequest):
        await ops.click_to_call(agent, number)
    assert ami.sent == []


async def test_asterisk_unreachable_is_503(env):
    ami, _, _, ops, _ = env
    ami.replies["Originate"] = AMINotConnected("not logged in")
    with pytest.raises(AsteriskUnavailable) as info:
        await ops.originate_flow("+37060000001", "callback")
    assert info.value.status == 503


async def test_originate_flow_goes_to_flow_context(env):
    ami, _, _, ops, _ = env
    out = await ops.originate_flow("+37060000001", "callback", variables={"CALLBACK_ID": "7"})
    h = ami.headers()
    assert (h["Channel"], h["Context"], h["Exten"]) == ("Local/+37060000001@ivr-dial-out", "ivr-outbound", "callback")
    assert [v for k, v in ami.sent[-1][1] if k == "Variable"] == ["IVR_FLOW=callback", "CALLBACK_ID=7"]
    assert out.action_id is not None


async def test_blind_transfer_of_bridged_call(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    ami.replies["BlindTransfer"] = msg(("Response", "Success"), ("Message", "Transfer succeeded"))
    out = await ops.transfer(call_id, TransferTarget("extension", "carol"))
    h = ami.headers()
    assert ami.names() == ["BlindTransfer"]
    # The caller (origin, alice ;1) goes to the target; its partner bob ;1 is the transferer.
    assert (h["Channel"], h["Context"], h["Exten"]) == ("Local/bob@phones-00000040;1", "from-internal", "carol")
    assert out["mode"] == "blind"
    await ops.transfer(call_id, TransferTarget("queue", "sales"), channel="Local/alice@phones-0000003f;1")
    assert (ami.headers()["Channel"], ami.headers()["Context"]) == ("Local/alice@phones-0000003f;1", "ivr-queue")


async def test_transfer_refused_by_asterisk_is_409(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    ami.replies["BlindTransfer"] = error("Transfer invalid")  # exact text, ami-16
    with pytest.raises(InvalidState, match="Transfer invalid"):
        await ops.transfer(call_id, TransferTarget("flow", "main"))


async def test_attended_transfer_needs_numeric_target(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    with pytest.raises(InvalidRequest, match="numeric"):
        await ops.transfer(call_id, TransferTarget("extension", "carol"), mode="attended")
    await ops.transfer(call_id, TransferTarget("extension", "300"), mode="attended")
    assert ami.names() == ["Atxfer"]
    assert ami.headers() == {"Channel": "Local/bob@phones-00000040;1", "Exten": "300", "Context": "from-internal"}


async def test_unbridged_call_is_redirected_and_unknown_call_is_404(env):
    ami, registry, _, ops, _ = env
    replay(registry, "ami-13-parking.jsonl", "Park action on Local/p1")
    await ops.transfer("1795909439.108", TransferTarget("flow", "main"))
    assert ami.names() == ["Redirect"]
    assert ami.headers() == {
        "Channel": "Local/p1@phones-00000035;1",
        "Context": "ivr-outbound",
        "Exten": "main",
        "Priority": "1",
    }
    with pytest.raises(UnknownCall) as info:
        await ops.transfer("nope", TransferTarget("flow", "main"))
    assert info.value.status == 404
    with pytest.raises(InvalidRequest):
        await ops.transfer("1795909439.108", TransferTarget("flow", "../etc"))


async def test_park_and_retrieve(env):
    ami, registry, _, ops, _ = env
    replay(registry, "ami-13-parking.jsonl", "Park action on Local/p1")
    with pytest.raises(InvalidState, match="not parked"):
        await ops.retrieve("1795909439.108", "1002")
    with pytest.raises(InvalidRequest, match="unknown parking lot"):
        await ops.park("1795909439.108", lot="vip")
    await ops.park("1795909439.108", timeout=5)
    assert ami.headers() == {"Channel": "Local/p1@phones-00000035;1", "Timeout": "5000", "Parkinglot": "default"}
    replay(registry, "ami-13-parking.jsonl", "ParkedCalls / Parkinglots", start="Park action on Local/p1")
    with pytest.raises(InvalidState, match="parked"):
        await ops.park("1795909439.108")
    with pytest.raises(InvalidState, match="retrieve it first"):
        await ops.transfer("1795909439.108", TransferTarget("extension", "200"))
    leg = await ops.retrieve("1795909439.108", "1002")
    h = ami.headers()
    assert (h["Channel"], h["Application"], h["Data"], h["ChannelId"]) == (
        "PJSIP/1002",
        "ParkedCall",
        "default,701",
        leg.call_id,
    )
    assert h["CallerID"] == '"Parkee A" <301>'


async def test_park_of_bridged_call_returns_to_partner(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    await ops.park(call_id, timeout=4)
    assert ami.headers() == {
        "Channel": "Local/alice@phones-0000003f;1",
        "TimeoutChannel": "Local/bob@phones-00000040;1",
        "Timeout": "4000",
        "Parkinglot": "default",
    }


async def test_hold_and_resume(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    with pytest.raises(InvalidState, match="only calls put on hold"):
        await ops.resume(call_id)
    await ops.hold(call_id)
    assert ami.names() == ["Setvar", "Setvar", "Redirect"]
    assert dict(ami.sent[0][1]) == {
        "Channel": "Local/alice@phones-0000003f;1",
        "Variable": "IVR_MOH_CLASS",
        "Value": "default",
    }
    # Who waits for whom is kept in Asterisk too (a restarted service rebuilds the hold from it).
    assert dict(ami.sent[1][1]) == {
        "Channel": "Local/alice@phones-0000003f;1",
        "Variable": "IVR_HELD_PARTNER",
        "Value": "Local/bob@phones-00000040;1",
    }
    assert ami.headers() == {
        "Channel": "Local/alice@phones-0000003f;1",
        "Context": "ivr-hold",
        "Exten": "s",
        "Priority": "1",
        "ExtraChannel": "Local/bob@phones-00000040;1",
        "ExtraContext": "ivr-hold-wait",
        "ExtraExten": "s",
        "ExtraPriority": "1",
    }
    await ops.resume(call_id)
    assert ami.names()[3:] == ["Bridge", "Setvar"]
    assert ami.headers(3) == {
        "Channel1": "Local/alice@phones-0000003f;1",
        "Channel2": "Local/bob@phones-00000040;1",
        "Tone": "no",
    }
    assert ami.headers() == {"Channel": "Local/alice@phones-0000003f;1", "Variable": "IVR_HELD_PARTNER", "Value": ""}
    with pytest.raises(InvalidState, match="only calls put on hold"):
        await ops.resume(call_id)  # the note is gone with the resume


async def test_recording_lifecycle_with_index_row(env):
    ami, registry, storage, ops, clock = env
    replay(registry, "ami-14-mixmonitor.jsonl", "mute both directions")  # a MixMonitor not started by us runs
    [call] = registry.calls()
    with pytest.raises(InvalidState, match="already being recorded"):
        await ops.record_start(call.id)
    for ch in registry.channels.values():  # pretend that recording ended
        ch.recording = None
    ami.replies["MixMonitor"] = msg(("Response", "Success"), ("MixMonitorID", "0x7f8050009830"))
    started = await ops.record_start(call.id)
    h = ami.headers()
    assert h["Channel"] == "Local/s@idle-leg-0000003b;1"
    assert h["File"] == started["path"] and h["Options"] == "i(IVR_MIXMONITOR_ID)"
    assert started["path"].startswith("/var/spool/asterisk/monitor/20261128-234400-1795909469.122-5553100")
    assert started["path"].endswith(".wav")
    [row] = await storage.list_recordings(call_id=call.id)
    assert (row.state, row.caller, row.channel) == ("recording", "5553100", "Local/s@idle-leg-0000003b;1")

    await ops.record_pause(call.id)
    assert ami.headers() == {"Channel": "Local/s@idle-leg-0000003b;1", "Direction": "both", "State": "1"}
    assert (await storage.get_recording(row.id)).state == "paused"
    with pytest.raises(InvalidState, match="already paused"):
        await ops.record_pause(call.id)
    await ops.record_resume(call.id)
    assert ami.headers()["State"] == "0"
    clock.now = T0 + timedelta(seconds=6)
    stopped = await ops.record_stop(call.id)
    assert ami.headers() == {"Channel": "Local/s@idle-leg-0000003b;1", "MixMonitorID": "0x7f8050009830"}
    assert stopped["seconds"] == 6.0
    done = await storage.get_recording(row.id)
    assert (done.state, done.seconds, done.ended_at) == ("finished", 6.0, T0 + timedelta(seconds=6))
    with pytest.raises(InvalidState, match="not being recorded"):
        await ops.record_stop(call.id)


async def test_recording_finished_by_hangup(env):
    ami, registry, storage, ops, clock = env
    replay(registry, "ami-14-mixmonitor.jsonl", "second recording", start="call:")
    # MixMonitorStop already arrived for the first recording, so the call is not being recorded now.
    [call] = registry.calls()
    started = await ops.record_start(call.id)
    clock.now = T0 + timedelta(seconds=1.5)
    for ev in events_until(load("ami-14-mixmonitor.jsonl"), "files produced", start="second recording"):
        for effect in registry.apply(ev):
            await ops.on_effect(effect)
    rec = await storage.get_recording(started["recording_id"])
    assert (rec.state, rec.seconds) == ("finished", 1.5)


async def test_hangup_skips_local_second_halves(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    out = await ops.hangup(call_id)
    assert ami.names() == ["Hangup", "Hangup"]
    assert [dict(p)["Channel"] for _, p in ami.sent] == out["hung_up"]
    assert all(name.endswith(";1") for name in out["hung_up"])
    assert {dict(p)["Cause"] for _, p in ami.sent} == {"16"}


async def test_hangup_of_vanished_channel_is_404(env):
    ami, registry, _, ops, _ = env
    replay(registry, "ami-13-parking.jsonl", "Park action on Local/p1")
    ami.replies["Hangup"] = error("No such channel")
    with pytest.raises(UnknownCall):
        await ops.hangup("1795909439.108")


@pytest.mark.parametrize("mode,options", [("listen", "qE"), ("whisper", "qwE"), ("barge", "qBE")])
async def test_spy_originates_chanspy_on_agent(env, mode, options):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    leg = await ops.spy(call_id, "2000", mode)
    h = ami.headers()
    assert (h["Channel"], h["Application"], h["Data"]) == (
        "PJSIP/2000",
        "ChanSpy",
        f"Local/bob@phones-00000040;1,{options}",
    )
    assert h["ChannelId"] == leg.call_id


async def test_queue_member_operations_and_errors(env):
    ami, _, _, ops, _ = env
    await ops.queue_login(
        "testq",
        "Local/answer3s@agents",
        member_name="Agent One",
        paused=True,
        reason="initial pause",
        state_interface="Custom:agent1",
    )
    assert ami.names() == ["QueueAdd"]
    assert ami.headers() == {
        "Queue": "testq",
        "Interface": "Local/answer3s@agents",
        "Paused": "true",
        "Reason": "initial pause",
        "MemberName": "Agent One",
        "StateInterface": "Custom:agent1",
    }
    ami.replies["QueueAdd"] = error("Unable to add interface: Already there")
    with pytest.raises(InvalidState):
        await ops.queue_login("testq", "Local/answer3s@agents")
    ami.replies["QueueRemove"] = error("Unable to remove interface: Not there")
    with pytest.raises(NotFound):
        await ops.queue_logout("testq", "Local/answer3s@agents")
    await ops.queue_pause("Local/answer3s@agents", queue="testq", reason="coffee break")
    assert ami.headers() == {
        "Queue": "testq",
        "Interface": "Local/answer3s@agents",
        "Paused": "true",
        "Reason": "coffee break",
    }
    await ops.queue_unpause("Local/answer3s@agents")
    assert ami.headers() == {"Interface": "Local/answer3s@agents", "Paused": "false"}
    with pytest.raises(InvalidRequest):
        await ops.queue_pause("Local/x@y\r\nAction: Hangup")
    with pytest.raises(InvalidRequest):
        await ops.queue_pause("PJSIP/1001", reason="bad\nreason")


async def test_originate_results_correlate_in_both_orders(env):
    # CallOperations.wait_originate uses the AMI connection's OriginateTracker (ivr/ami/typed.py), which is
    # subscribed before the first Originate is sent.
    ami, _, _, ops, _ = env
    originated = await ops.originate_flow("+37060000001", "main")
    # The event can overtake the waiter ...
    await ami.emit(
        msg(
            ("Event", "OriginateResponse"),
            ("ActionID", originated.action_id),
            ("Response", "Failure"),
            ("Channel", "Local/busy@agents"),
            ("Reason", "5"),
            ("Uniqueid", "<unknown>"),
        )
    )
    result = await ops.wait_originate(originated, timeout=1)
    assert (result.success, result.reason_text) == (False, "busy")
    # ... or come after it.
    import asyncio

    waiting = asyncio.create_task(ops.wait_originate(Originated("y", "a2"), timeout=5))
    await asyncio.sleep(0)
    await ami.emit(
        msg(
            ("Event", "OriginateResponse"),
            ("ActionID", "a2"),
            ("Response", "Success"),
            ("Channel", "Local/s@dtmf-sender-0000002c;1"),
            ("Reason", "4"),
            ("Uniqueid", "orig-11-chan1"),
        )
    )
    result = await waiting
    assert (result.success, result.reason_text, result.uniqueid) == (True, "answered", "orig-11-chan1")
    assert await ops.wait_originate(Originated("z", "never"), timeout=0.01) is None


async def test_wait_originate_is_unknown_when_the_connection_drops(env):
    import asyncio

    ami, _, _, ops, _ = env
    originated = await ops.click_to_call("1001", "+37060000001")
    waiting = asyncio.create_task(ops.wait_originate(originated, timeout=30))
    await asyncio.sleep(0)
    ami.originates().connection_lost("test drop")  # what AMIClient does for every waiter when its connection drops
    assert await waiting is None


async def test_transfer_of_a_call_in_the_ivr_marks_it_transferred_first(env):
    ami, registry, _, ops, _ = env
    replay(registry, "ami-13-parking.jsonl", "Park action on Local/p1")
    call = registry.call("1795909439.108")
    registry.note_flow(call.origin.uniqueid, "main", "menu")  # the FastAGI side: it runs a flow
    assert call.state == "ivr"
    await ops.transfer(call.id, TransferTarget("queue", "support"))
    assert ami.names() == ["Setvar", "Redirect"]
    assert dict(ami.sent[0][1]) == {
        "Channel": "Local/p1@phones-00000035;1",
        "Variable": "IVR_TRANSFERRED",
        "Value": "queue:support",
    }
    assert ami.headers()["Context"] == "ivr-queue"


async def test_held_note_goes_when_the_call_ends(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    await ops.hold(call_id)
    assert call_id in ops._held
    for ch in list(registry.call(call_id).channels):
        for effect in registry.apply(
            msg(
                ("Event", "Hangup"),
                ("Channel", ch.name),
                ("Uniqueid", ch.uniqueid),
                ("Linkedid", ch.linkedid),
                ("Cause", "16"),
            )
        ):
            await ops.on_effect(effect)
    assert call_id not in ops._held


async def test_hold_without_a_partner_is_409_not_an_assert(env, monkeypatch):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    monkeypatch.setattr(ops, "parties", lambda call: (call.origin, None))  # the partner left meanwhile
    with pytest.raises(InvalidState, match="nobody to hold it for"):
        await ops.hold(call_id)
    assert ami.sent == []


@pytest.mark.parametrize(
    "variables",
    [
        {"IVR_TRANSFERRED": "queue:x"},  # the service's own names
        {"ivr_lang": "en"},
        {"order": "1,SHELL(touch /tmp/x)=1"},  # Asterisk would set a second (function) variable
        {"order": 'a"b'},
        {"order": "a\\b"},
        {"order": "a\rb"},
        {"CDR(userfield)": "x"},
    ],
)
async def test_originate_flow_refuses_unsafe_variables(env, variables):
    ami, _, _, ops, _ = env
    with pytest.raises(InvalidRequest):
        await ops.originate_flow("+37060000001", "survey", variables=variables)
    assert ami.sent == []


async def test_outbound_numbers_must_match_the_number_pattern(env):
    ami, _, _, ops, _ = env
    ops.settings.number_pattern = r"^(\+370|8)[0-9]{8}$"
    for call in (ops.originate_flow("+19005550100", "survey"), ops.click_to_call("1001", "+19005550100")):
        with pytest.raises(InvalidRequest, match="number_pattern"):
            await call
    assert ami.sent == []
    await ops.originate_flow("+37060000001", "survey")
    await ops.click_to_call("1001", "860000001")
    assert ami.names() == ["Originate", "Originate"]


async def test_retrieve_caller_id_from_event_text_is_sanitised(env):
    ami, registry, _, ops, _ = env
    replay(registry, "ami-13-parking.jsonl", "ParkedCalls / Parkinglots")
    call = registry.call("1795909439.108")
    call.parked[0].caller_name = 'Evil" <1900> \\x'
    await ops.retrieve(call.id, "1002")
    assert ami.headers()["CallerID"] == '"Evil 1900 x" <301>'


def test_encoding_errors_are_the_request_s_fault():
    err = from_ami(AMIEncodingError("value holds a comma"), "originate")
    assert (err.status, err.code) == (422, "invalid_request")


# --- holds rebuilt from Asterisk (a restarted service has no note) ----------------------------------------------

ALICE, BOB = "Local/alice@phones-0000003f;1", "Local/bob@phones-00000040;1"


def move(registry: CallRegistry, name: str, context: str, application: str, data: str = ""):
    """A Newexten as Asterisk sends it when a Redirect lands the channel in `context`,s,1."""
    ch = registry.channel_by_name(name)
    return registry.apply(
        msg(
            ("Event", "Newexten"),
            ("Channel", name),
            ("ChannelState", "6"),
            ("Context", context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Uniqueid", ch.uniqueid),
            ("Linkedid", ch.linkedid),
            ("Application", application),
            ("AppData", data),
        )
    )


def held_by_an_earlier_run(registry: CallRegistry) -> str:
    """ami-16's bridged call as a previous run of the service left it on hold: alice in ivr-hold, bob waiting."""
    call_id = bridged_call(registry)
    for name in (ALICE, BOB):
        ch = registry.channel_by_name(name)
        registry.apply(
            msg(
                ("Event", "BridgeLeave"),
                ("Channel", name),
                ("Uniqueid", ch.uniqueid),
                ("Linkedid", ch.linkedid),
                ("BridgeUniqueid", ch.bridge_id or ""),
            )
        )
    move(registry, ALICE, "ivr-hold", "MusicOnHold", "default")
    ch = registry.channel_by_name(ALICE)
    registry.apply(
        msg(
            ("Event", "MusicOnHoldStart"),
            ("Channel", ALICE),
            ("Context", "ivr-hold"),
            ("Uniqueid", ch.uniqueid),
            ("Linkedid", ch.linkedid),
            ("Class", "default"),
        )
    )
    move(registry, BOB, "ivr-hold-wait", "Wait", "3600")
    assert registry.call(call_id).state == "held"
    return call_id


def getvar_answers(ami, values: dict[tuple[str, str], str]) -> None:
    def reply(pairs):
        h = dict(pairs)
        return msg(
            ("Response", "Success"),
            ("Variable", h["Variable"]),
            ("Value", values.get((h["Channel"], h["Variable"]), "")),
        )

    ami.replies["Getvar"] = reply


async def test_resume_rebuilds_the_hold_from_asterisk(env):
    ami, registry, _, ops, _ = env
    call_id = held_by_an_earlier_run(registry)
    getvar_answers(ami, {(ALICE, "IVR_HELD_PARTNER"): BOB})
    assert await ops.resume(call_id) == {"resumed": ALICE, "partner": BOB}
    assert ami.names() == ["Getvar", "Bridge", "Setvar"]
    assert ami.headers(0) == {"Channel": ALICE, "Variable": "IVR_HELD_PARTNER"}
    assert ami.headers(1) == {"Channel1": ALICE, "Channel2": BOB, "Tone": "no"}


async def test_resume_refuses_a_hold_it_cannot_prove(env):
    ami, registry, _, ops, _ = env
    call_id = held_by_an_earlier_run(registry)
    getvar_answers(ami, {})  # MusicOnHold, but not put there by this API: no partner named
    with pytest.raises(InvalidState, match="only calls put on hold"):
        await ops.resume(call_id)
    getvar_answers(ami, {(ALICE, "IVR_HELD_PARTNER"): "PJSIP/gone-00000009"})
    with pytest.raises(InvalidState, match="no longer waiting"):
        await ops.resume(call_id)
    move(registry, BOB, "phones", "Dial", "PJSIP/bob")  # the partner went elsewhere meanwhile
    getvar_answers(ami, {(ALICE, "IVR_HELD_PARTNER"): BOB})
    with pytest.raises(InvalidState, match="no longer waiting"):
        await ops.resume(call_id)
    assert "Bridge" not in ami.names()


async def test_transfer_of_a_held_call_after_a_restart_releases_the_partner(env):
    ami, registry, _, ops, _ = env
    call_id = held_by_an_earlier_run(registry)
    getvar_answers(ami, {(ALICE, "IVR_HELD_PARTNER"): BOB})
    with pytest.raises(InvalidRequest, match="only the held channel"):
        await ops.transfer(call_id, TransferTarget("queue", "support"), channel=BOB)
    result = await ops.transfer(call_id, TransferTarget("queue", "support"))
    assert result == {"mode": "redirect", "channel": ALICE, "context": "ivr-queue", "exten": "support", "released": BOB}
    assert [n for n in ami.names() if n != "Getvar"] == ["Redirect", "Hangup", "Setvar"]
    assert ami.headers(-2) == {"Channel": BOB, "Cause": "16"}


async def test_a_partner_already_gone_is_not_an_error(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    await ops.hold(call_id)
    move(registry, ALICE, "ivr-hold", "MusicOnHold", "default")
    move(registry, BOB, "ivr-hold-wait", "Wait", "3600")
    ami.replies["Hangup"] = error("No such channel")
    result = await ops.transfer(call_id, TransferTarget("extension", "1002"))
    assert "released" not in result and result["channel"] == ALICE
    assert call_id not in ops._held


async def hang_up(registry: CallRegistry, ops: CallOperations, name: str) -> None:
    ch = registry.channel_by_name(name)
    for effect in registry.apply(
        msg(
            ("Event", "Hangup"),
            ("Channel", name),
            ("Uniqueid", ch.uniqueid),
            ("Linkedid", ch.linkedid),
            ("Cause", "16"),
        )
    ):
        await ops.on_effect(effect)


async def test_only_the_held_partys_hangup_releases_the_partner(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    await ops.hold(call_id)
    move(registry, ALICE, "ivr-hold", "MusicOnHold", "default")
    move(registry, BOB, "ivr-hold-wait", "Wait", "3600")
    sent = len(ami.sent)
    others = [ch.name for ch in registry.call(call_id).channels if ch.name not in (ALICE, BOB)]
    assert others and all(n.endswith(";2") for n in others)
    for name in others:  # the Local ;2 halves: not the held party
        await hang_up(registry, ops, name)
    assert len(ami.sent) == sent and call_id in ops._held
    await hang_up(registry, ops, ALICE)
    assert ami.names()[sent:] == ["Hangup"] and ami.headers() == {"Channel": BOB, "Cause": "16"}
    assert call_id not in ops._held


async def test_held_partys_hangup_without_a_note_releases_the_waiting_partner(env):
    ami, registry, _, ops, _ = env
    held_by_an_earlier_run(registry)
    await hang_up(registry, ops, BOB)  # the waiting partner hangs up itself: nothing to do
    assert ami.sent == []
    registry2 = CallRegistry(clock=lambda: 1000.0)
    ops2 = CallOperations(ami, registry2, ops.storage, CallControlSettings())
    held_by_an_earlier_run(registry2)
    await hang_up(registry2, ops2, ALICE)
    assert ami.names() == ["Hangup"] and ami.headers() == {"Channel": BOB, "Cause": "16"}


async def test_transfer_of_a_held_call_whose_partner_hung_up_redirects_the_caller(env):
    ami, registry, _, ops, _ = env
    call_id = bridged_call(registry)
    await ops.hold(call_id)
    move(registry, ALICE, "ivr-hold", "MusicOnHold", "default")
    bob = registry.channel_by_name(BOB)
    await hang_up(registry, ops, BOB)
    await hang_up(registry, ops, BOB[:-1] + "2")
    assert call_id in ops._held
    result = await ops.transfer(call_id, TransferTarget("queue", "support"))
    assert result == {"mode": "redirect", "channel": ALICE, "context": "ivr-queue", "exten": "support"}
    assert ami.names()[-1] == "Redirect" and "Hangup" not in ami.names() and bob.uniqueid not in registry.channels
    assert call_id not in ops._held
    with pytest.raises(InvalidState, match="only calls put on hold"):
        await ops.resume(call_id)


async def test_a_partner_talking_again_is_never_released(env):
    ami, registry, _, ops, _ = env
    held_by_an_earlier_run(registry)
    carol = registry.channel_by_name(ALICE[:-1] + "2")  # anyone else in a bridge with bob
    for ch in (registry.channel_by_name(BOB), carol):
        registry.apply(
            msg(
                ("Event", "BridgeEnter"),
                ("Channel", ch.name),
                ("Uniqueid", ch.uniqueid),
                ("Linkedid", ch.linkedid),
                ("BridgeUniqueid", "b-again"),
                ("BridgeType", "basic"),
                ("BridgeTechnology", "simple_bridge"),
            )
        )
    await hang_up(registry, ops, ALICE)
    assert ami.sent == []

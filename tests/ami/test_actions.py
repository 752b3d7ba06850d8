"""Typed action helpers: argument checks and the headers they build (request bytes vs transcripts are checked in
test_client.py)."""

from __future__ import annotations

import pytest

from ivr.ami import actions
from ivr.ami.errors import AMIEncodingError
from ivr.ami.protocol import Message


def test_originate_needs_a_target_and_a_full_dialplan_location() -> None:
    with pytest.raises(ValueError, match="either exten"):
        actions.originate("Local/s@x")
    with pytest.raises(ValueError, match="either exten"):
        actions.originate("Local/s@x", exten="s", context="c", priority=1, application="Wait")
    # Asterisk itself says "Originate with 'Exten' requires 'Context' and 'Priority'" (ami-17).
    with pytest.raises(ValueError, match="requires context and priority"):
        actions.originate("Local/s@x", exten="s")


def test_originate_is_always_async_and_repeats_variables() -> None:
    pairs = actions.originate("Local/s@x", application="Wait", data="1", variables={"A": "1", "B": "two words"})
    assert pairs == [
        ("Channel", "Local/s@x"),
        ("Application", "Wait"),
        ("Data", "1"),
        ("Variable", "A=1"),
        ("Variable", "B=two words"),
        ("Async", "true"),
    ]
    with pytest.raises(AMIEncodingError, match="variable name 'A=B' is not allowed"):
        actions.originate("Local/s@x", application="Wait", variables={"A=B": "1"})
    with pytest.raises(AMIEncodingError, match="is not allowed"):
        actions.originate("Local/s@x", application="Wait", variables={"SHELL(rm)": "1"})


@pytest.mark.parametrize(
    "value",
    [
        "x,SHELL(touch /tmp/p)=1",  # Asterisk splits the header on commas: a second (function) assignment
        'x",B=2',  # quotes are stripped by the split, the comma inside them still counts
        "x\\,B=2",  # a backslash escapes the next character in the split
        "x\rAction: Hangup",  # control characters
        "tab\there",
    ],
)
def test_originate_refuses_variable_values_asterisk_would_split(value: str) -> None:
    with pytest.raises(AMIEncodingError, match="value of variable IVR_X"):
        actions.originate("Local/s@x", application="Wait", variables={"IVR_X": value})
    # The safe ones pass unchanged (spaces, +, :, / are fine).
    assert ("Variable", "IVR_X=queue:sales +370 a/b") in actions.originate(
        "Local/s@x", application="Wait", variables={"IVR_X": "queue:sales +370 a/b"}
    )


def test_redirect_without_and_with_extra_channel() -> None:
    assert actions.redirect("A", "ctx", "s") == [
        ("Channel", "A"),
        ("Context", "ctx"),
        ("Exten", "s"),
        ("Priority", "1"),
    ]
    assert actions.redirect("A", "ctx", "s", extra_channel="B", extra_exten="t") == [
        ("Channel", "A"),
        ("ExtraChannel", "B"),
        ("Context", "ctx"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("ExtraContext", "ctx"),
        ("ExtraExten", "t"),
        ("ExtraPriority", "1"),
    ]


def test_small_helpers() -> None:
    assert actions.mixmonitor_mute("C", False, "read") == [("Channel", "C"), ("Direction", "read"), ("State", "0")]
    with pytest.raises(ValueError, match="direction"):
        actions.mixmonitor_mute("C", True, "sideways")  # Asterisk would answer an error too (ami-14)
    assert actions.queue_pause("Local/a@agents", True) == [("Interface", "Local/a@agents"), ("Paused", "true")]
    assert actions.park("C", parking_space="701", parkinglot="default") == [
        ("Channel", "C"),
        ("Parkinglot", "default"),
        ("ParkingSpace", "701"),
    ]
    assert actions.getvar("GLOBALTEST") == [("Variable", "GLOBALTEST")]
    assert actions.parked_calls() == [] and actions.parked_calls("default") == [("ParkingLot", "default")]
    assert actions.hangup("C", 16) == [("Channel", "C"), ("Cause", "16")]


@pytest.mark.parametrize(
    "name,label",
    [
        ("Originate", "originate"),
        ("coreShowChannels", "coreshowchannels"),
        ("SomethingNew", "other"),
        ("../../etc", "other"),
    ],
)
def test_action_label_is_bounded(name: str, label: str) -> None:
    assert actions.action_label(name) == label


def test_originate_result_from_recorded_events() -> None:
    ok = actions.OriginateResult.from_event(
        Message(
            [
                ("Event", "OriginateResponse"),
                ("Privilege", "call,all"),
                ("ActionID", "ami-2"),
                ("Response", "Success"),
                ("Channel", "Local/s@dtmf-sender-0000002c;1"),
                ("Context", "ivr-test"),
                ("Exten", "s"),
                ("Reason", "4"),
                ("Uniqueid", "orig-11-chan1"),
                ("CallerIDNum", "5551000"),
                ("CallerIDName", "DTMF Test"),
            ]
        )
    )
    assert ok.success and ok.reason_text == "answered" and ok.uniqueid == "orig-11-chan1"
    failed = actions.OriginateResult.from_event(
        Message([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "0"), ("Uniqueid", "<unknown>")])
    )
    assert not failed.success and failed.reason_text == "failed" and failed.uniqueid is None
    odd = actions.OriginateResult.from_event(Message([("Event", "OriginateResponse"), ("Reason", "x")]))
    assert odd.reason == -1 and odd.reason_text == "other"

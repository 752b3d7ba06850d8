"""Values that reach AMI headers, dial strings and file names; settings mapping."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from ivr.calls import validate
from ivr.calls.callbacks import CallbackPolicy
from ivr.calls.errors import InvalidRequest
from ivr.calls.settings import CallControlSettings

WHEN = datetime(2026, 11, 29, 1, 2, 3, tzinfo=timezone.utc)


def test_recording_name_only_safe_characters():
    name = validate.recording_name("${date}-${call}-${caller}-${agent}", call="1795909439.108",
                                   caller="../../etc/passwd", agent="Ann Smith/ext", when=WHEN)
    assert name == "20261129-010203-1795909439.108-____etc_passwd-Ann_Smith_ext"
    assert "/" not in name and ".." not in name
    assert validate.recording_name("${caller}", call="c1", caller="", when=WHEN) == "unknown"
    assert validate.recording_name(".", call="c1", caller="x", when=WHEN) == "call-c1"
    with pytest.raises(InvalidRequest, match=r"\$\{nope\} is unknown"):
        validate.recording_name("${nope}", call="c", caller="x")


@pytest.mark.parametrize("value", ["PJSIP/1001", "Local/answer3s@agents", "Custom:agent1", "SIP/trunk-1"])
def test_interfaces_accepted(value):
    assert validate.interface(value) == value


@pytest.mark.parametrize("value", ["", "1001", "PJSIP/1001&PJSIP/1002", "PJSIP/10,01", "PJSIP/1\r\nAction: X",
                                   "PJSIP/${X}"])
def test_interfaces_refused(value):
    with pytest.raises(InvalidRequest):
        validate.interface(value)


def test_channels_numbers_extensions():
    assert validate.channel("Local/p1@phones-00000035;1")
    for bad in ("Local/p1@phones,x", "PJSIP/1 2", "x"):
        with pytest.raises(InvalidRequest):
            validate.channel(bad)
    assert validate.number("+37060000001") and validate.number("*97#")
    for bad in ("++1", "1-2", "12a"):
        with pytest.raises(InvalidRequest):
            validate.number(bad)
    with pytest.raises(InvalidRequest):
        validate.extension("1001&PJSIP/2")
    with pytest.raises(InvalidRequest):
        validate.reason("a\x07b")


def test_settings_from_service_settings(tmp_path):
    service = SimpleNamespace(dial_template="SIP/{extension}", recordings_dir=tmp_path / "rec",
                              callbacks=SimpleNamespace(interval=30.0, retry_after=600.0))
    cc = CallControlSettings.from_settings(service)
    assert cc.agent_dial == "SIP/{extension}" and cc.recordings_dir == str(tmp_path / "rec")
    assert cc.recordings_path() == tmp_path / "rec"
    policy = CallbackPolicy.from_settings(service.callbacks)
    assert (policy.poll_interval, policy.backoff) == (30.0, (600.0,))
    assert policy.retry_delay(1) == 600.0 and policy.retry_delay(5) == 600.0
    assert CallbackPolicy(backoff=(1.0, 2.0)).retry_delay(1) == 1.0
    assert CallbackPolicy(backoff=(1.0, 2.0)).retry_delay(3) == 2.0

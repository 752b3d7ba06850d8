"""Values that reach AMI headers, dial strings and file names; settings mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr.calls import validate
from ivr.calls.callbacks import CallbackPolicy
from ivr.calls.errors import InvalidRequest
from ivr.calls.settings import CallControlSettings
from ivr.settings import load_settings
from ivr.yamlsource import ConfigError

WHEN = datetime(2026, 11, 29, 1, 2, 3, tzinfo=UTC)


def test_recording_name_only_safe_characters():
    name = validate.recording_name(
        "${date}-${call}-${caller}-${agent}",
        call="1795909439.108",
        caller="../../etc/passwd",
        agent="Ann Smith/ext",
        when=WHEN,
    )
    assert name == "20261129-010203-1795909439.108-____etc_passwd-Ann_Smith_ext"
    assert "/" not in name and ".." not in name
    assert validate.recording_name("${caller}", call="c1", caller="", when=WHEN) == "unknown"
    assert validate.recording_name(".", call="c1", caller="x", when=WHEN) == "call-c1"
    with pytest.raises(InvalidRequest, match=r"\$\{nope\} is unknown"):
        validate.recording_name("${nope}", call="c", caller="x")


@pytest.mark.parametrize("value", ["PJSIP/1001", "Local/answer3s@agents", "Custom:agent1", "SIP/trunk-1"])
def test_interfaces_accepted(value):
    assert validate.interface(value) == value


@pytest.mark.parametrize(
    "value", ["", "1001", "PJSIP/1001&PJSIP/1002", "PJSIP/10,01", "PJSIP/1\r\nAction: X", "PJSIP/${X}"]
)
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


CALLS_YAML = """\
dial_template: SIP/{extension}
recordings_dir: rec
queues:
  overrides: {support: 30s}
callbacks:
  flow: cb_flow
  interval: 30s
  max_attempts: 4
  retry_after: 10m
  number_pattern: '^(\\+370|8)[0-9]{8}$'
calls:
  outbound_context: crm-out
  customer_dial: Local/{number}@trunk-out
  flow_context: ivr-outbound2
  extension_context: phones
  queue_context: queues
  hold_context: hold1
  hold_wait_context: hold2
  moh_class: jazz
  parking_lots: {default: parkedcalls, vip: vipparking}
  park_timeout: 2m
  spy_options: {listen: q}
  recording_template: ${call}-${agent}
  recording_format: gsm
  asterisk_recordings_dir: /var/spool/asterisk/monitor
  download_dir: mnt/monitor
  originate_timeout: 20s
"""


def test_settings_from_service_settings(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ivr.yaml").write_text(CALLS_YAML)
    service = load_settings(tmp_path / "config" / "ivr.yaml", env={})
    cc = CallControlSettings.from_settings(service)
    assert cc.agent_dial == "SIP/{extension}"
    assert (cc.outbound_context, cc.customer_dial, cc.flow_context, cc.extension_context, cc.queue_context) == (
        "crm-out",
        "Local/{number}@trunk-out",
        "ivr-outbound2",
        "phones",
        "queues",
    )
    assert (cc.hold_context, cc.hold_wait_context, cc.moh_class) == ("hold1", "hold2", "jazz")
    assert cc.parking_lots == {"default": "parkedcalls", "vip": "vipparking"} and cc.park_timeout == 120.0
    assert cc.spy_options == {"listen": "q", "whisper": "qwE", "barge": "qBE"}
    assert (cc.recording_template, cc.recording_format, cc.originate_timeout) == ("${call}-${agent}", "gsm", 20.0)
    # Asterisk writes to its own path; this host serves the same files from its mount.
    assert cc.recordings_dir == "/var/spool/asterisk/monitor"
    assert cc.recordings_path() == tmp_path / "mnt" / "monitor"
    assert (cc.number_pattern, cc.callback_flow, cc.callback_max_attempts) == (r"^(\+370|8)[0-9]{8}$", "cb_flow", 4)
    assert cc.known_queues == {"support"}
    policy = CallbackPolicy.from_settings(service.callbacks)
    assert (policy.poll_interval, policy.backoff, policy.max_attempts, policy.flow) == (30.0, (600.0,), 4, "cb_flow")
    assert policy.number_pattern == cc.number_pattern
    assert policy.retry_delay(1) == 600.0 and policy.retry_delay(5) == 600.0
    assert CallbackPolicy(backoff=(1.0, 2.0)).retry_delay(1) == 1.0
    assert CallbackPolicy(backoff=(1.0, 2.0)).retry_delay(3) == 2.0


def test_recordings_default_to_one_directory_for_both_sides(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ivr.yaml").write_text("recordings_dir: rec\n")
    cc = CallControlSettings.from_settings(load_settings(tmp_path / "config" / "ivr.yaml", env={}))
    assert cc.recordings_dir == str(tmp_path / "rec") and cc.recordings_path() == tmp_path / "rec"


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("callbacks:\n  number_pattern: '^(+370'\n", "is not a regular expression"),
        ("calls:\n  customer_dial: Local/{num}@x\n", "has no {number}"),
        ("calls:\n  queue_context: 'a,b'\n", "is not a dialplan context"),
        ("calls:\n  recording_template: '${who}'\n", "unknown variable"),
        ("calls:\n  spy_options: {listen: 'q(x)'}\n", "ChanSpy option letters"),
        ("calls:\n  parking_lot: {}\n", "did you mean 'parking_lots'"),
    ],
)
def test_bad_call_settings_are_located_errors(tmp_path, yaml_text, message):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ivr.yaml").write_text("log_level: info\n" + yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "config" / "ivr.yaml", env={})
    text = str(info.value)
    assert message in text and "ivr.yaml:3:" in text  # file:line of the offending key


def test_number_pattern_language_and_variables():
    lt = r"^(\+370|8)[0-9]{8}$"
    assert validate.number("+37060000001", pattern=lt) and validate.number("860000001", pattern=lt)
    for bad in ("+19005550100", "+370600000011", "90099", "0037060000001"):
        with pytest.raises(InvalidRequest, match="callbacks.number_pattern"):
            validate.number(bad, pattern=lt)
    with pytest.raises(InvalidRequest, match="callbacks.number_pattern"):
        validate.number("1002", pattern=validate.DEFAULT_NUMBER_PATTERN)  # short codes are not E.164
    for good in ("en", "lt", "fil", "en_GB", "pt_br"):
        assert validate.language(good) == good
    for bad in ("", "EN", "en-GB", "en,X=1", "english", "en_GBR"):
        with pytest.raises(InvalidRequest, match="language"):
            validate.language(bad)
    assert validate.variable_name("CUSTOMER_ID") == "CUSTOMER_ID"
    for bad in ("IVR_TRANSFERRED", "ivr_lang", "SHELL(x)", "A=B", "1X", "A-B"):
        with pytest.raises(InvalidRequest):
            validate.variable_name(bad)
    assert validate.variable_value("order 123: ok") == "order 123: ok"
    for bad in ("a,b", "a\\b", 'a"b', "a\nb", "x" * 257):
        with pytest.raises(InvalidRequest, match="commas"):
            validate.variable_value(bad)


def test_caller_id_from_event_text_cannot_break_out():
    assert validate.caller_id('Evil" <900> "x', "+37060000001") == '"Evil 900 x" <+37060000001>'
    assert validate.caller_id("A\\B\r\nC", "370<6>") == '"ABC" <3706>'
    assert validate.caller_id("", "+37060000001") == '"+37060000001" <+37060000001>'


@pytest.mark.parametrize("value", ["1001", "*97#", "+37060000001", "agent_1", "sales-2"])
def test_extensions_follow_the_one_telephony_rule(value):
    from ivr import telephony

    assert telephony.is_extension(value) and validate.extension(value) == value


@pytest.mark.parametrize("value", ["10.01", "_X.", "1001\n", "1001&PJSIP/2", "1001@x", "a" * 41, ""])
def test_extensions_the_flow_side_refuses_are_refused_here_too(value):
    from ivr import telephony

    assert not telephony.is_extension(value)
    with pytest.raises(InvalidRequest, match="letters, digits"):
        validate.extension(value)


def test_names_and_number_patterns_come_from_telephony():
    from ivr import telephony

    assert validate.DEFAULT_NUMBER_PATTERN == telephony.DEFAULT_CALLBACK_NUMBER_PATTERN
    for good in ("support", "vip-lot_2"):
        assert telephony.is_queue_name(good) and validate.name(good) == good
    for bad in ("a.b", "sales\n", "q,1", ""):
        assert not telephony.is_queue_name(bad)
        with pytest.raises(InvalidRequest):
            validate.name(bad)
    # Unicode digits are not digits to a dial plan.
    with pytest.raises(InvalidRequest):
        validate.number("+３７０60000001", pattern=r"^\+?\d{7,15}$")
    with pytest.raises(ValueError, match="not a regular expression"):
        validate.compile_number_pattern("^(+370")

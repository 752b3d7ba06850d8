"""AMI sans-IO core against the real Asterisk 22 recordings (exact lines quoted from tests/data/asterisk)."""

from __future__ import annotations

import pytest

from ivr.ami.errors import AMIEncodingError, AMIMessageTooLarge, AMIProtocolError
from ivr.ami.protocol import (
    AMIParser,
    Banner,
    Message,
    Role,
    command_output,
    encode_action,
    encode_message,
    header_pairs,
    is_list_complete,
    is_list_start,
    login_headers,
    md5_key,
    md5_login_headers,
)

from .transcripts import FROM_ASTERISK, TO_ASTERISK, all_names, stream_bytes, stream_chunks

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def parse_all(data: bytes, role: Role = Role.CLIENT) -> list[Message | Banner]:
    return AMIParser(role).feed(data)


def parse_split(data: bytes, pieces: list[int], role: Role = Role.CLIENT) -> list[Message | Banner]:
    parser = AMIParser(role)
    out: list[Message | Banner] = []
    start = 0
    for cut in pieces + [len(data)]:
        out.extend(parser.feed(data[start:cut]))
        start = cut
    assert parser.buffered == 0
    return out


# -- framing on the real byte streams ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", all_names())
def test_real_chunks_parse_like_one_read(name: str) -> None:
    """Replay Asterisk's real socket reads; the result equals parsing the whole stream at once."""
    whole = parse_all(stream_bytes(name, stream="ami" if "ami-10" not in name else "observer"))
    parser = AMIParser()
    replayed: list[Message | Banner] = []
    for chunk in stream_chunks(name, stream="ami" if "ami-10" not in name else "observer"):
        replayed.extend(parser.feed(chunk))
    assert replayed == whole
    assert whole[0] == Banner("Asterisk Call Manager/11.0.0")
    assert whole[0].version == "11.0.0"
    messages = whole[1:]
    assert all(isinstance(m, Message) and m.name for m in messages)
    assert parser.buffered == 0


@pytest.mark.parametrize("name", all_names())
def test_message_count_matches_empty_lines(name: str) -> None:
    stream = "observer" if "ami-10" in name else "ami"
    data = stream_bytes(name, stream=stream)
    # Every message ends with CRLF CRLF; Park's extra "\n" before it does not add a message.
    assert len(parse_all(data)) - 1 == data.count(b"\r\n\r\n")


def test_split_at_every_byte_position() -> None:
    data = stream_bytes("ami-10-login-ping-events-logoff", stream="clientC")
    expected = parse_all(data)
    assert len(expected) == 1 + data.count(b"\r\n\r\n") == 19
    for cut in range(1, len(data)):
        assert parse_split(data, [cut]) == expected, cut


def test_byte_at_a_time() -> None:
    data = stream_bytes("ami-13-parking")[:20000]
    expected = parse_all(data)
    parser = AMIParser()
    got: list[Message | Banner] = []
    for i in range(len(data)):
        got.extend(parser.feed(data[i : i + 1]))
    assert got == expected


def test_scan_position_is_remembered() -> None:
    """A peer trickling bytes must not make the parser search the same bytes again (O(n), not O(n^2))."""
    parser = AMIParser()
    parser.feed(BANNER)
    searched: list[int] = []

    class CountingBuffer(bytearray):
        def rfind(self, sub, start=0, *args):  # type: ignore[override]
            searched.append(len(self) - start)
            return super().rfind(sub, start, *args)

    parser._buf = CountingBuffer(parser._buf)
    for _ in range(5000):
        parser.feed(b"X")
    assert max(searched) <= 4  # only the new byte plus 3 bytes of overlap


# -- exact transcript lines ------------------------------------------------------------------------------------


def test_login_response_and_fully_booted_from_ami10() -> None:
    data = (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Success\r\nActionID: clientC-1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 288\r\nLastReload: 288\r\n"
        b"Status: Fully Booted\r\n\r\n"
    )
    banner, resp, event = parse_all(data)
    assert banner == Banner("Asterisk Call Manager/11.0.0")
    assert isinstance(resp, Message) and isinstance(event, Message)
    assert resp.is_response and not resp.is_event
    assert resp.name == "Success" and resp.action_id == "clientC-1"
    assert resp["Message"] == "Authentication accepted"
    assert event.is_event and not event.is_response and event.name == "FullyBooted"
    assert event.action_id is None
    assert event.items() == [
        ("Event", "FullyBooted"),
        ("Privilege", "system,all"),
        ("Uptime", "288"),
        ("LastReload", "288"),
        ("Status", "Fully Booted"),
    ]


def test_banner_is_delivered_once() -> None:
    parser = AMIParser()
    assert parser.feed(b"Asterisk Call Man") == []
    assert parser.feed(b"ager/11.0.0\r\nResponse: Success\r\n") == [Banner("Asterisk Call Manager/11.0.0")]
    assert parser.feed(b"Ping: Pong\r\n\r\n") == [Message([("Response", "Success"), ("Ping", "Pong")])]
    assert parser.banner == Banner("Asterisk Call Manager/11.0.0")


def test_header_first_instead_of_banner_is_a_protocol_error() -> None:
    with pytest.raises(AMIProtocolError, match="banner"):
        AMIParser().feed(b"Response: Success\r\n\r\n")


def test_endless_banner_is_a_protocol_error() -> None:
    with pytest.raises(AMIProtocolError, match="banner"):
        AMIParser().feed(b"x" * 5000)


def test_park_response_keeps_bare_lf_and_next_event_is_intact() -> None:
    data = stream_bytes("ami-13-parking")
    assert b"Message: Park successful\n\r\n\r\nEvent: ParkedCall\r\n" in data
    messages = [m for m in parse_all(data) if isinstance(m, Message)]
    park = next(m for m in messages if m.action_id == "ami-3")
    assert park.name == "Success"
    assert park["Message"] == "Park successful\n"
    following = messages[messages.index(park) + 1]
    assert following.name == "ParkedCall"
    assert following["Privilege"] == "call,all"
    assert following["ParkeeChannel"] == "Local/p1@phones-00000035;1"


def test_raw_cr_inside_value_is_kept() -> None:
    """agi-05.ami: `Command: NOOP\\r\\r\\n` in AGIExecStart -> the value is `NOOP\\r`."""
    data = stream_bytes("agi-05-bad-commands.ami")
    assert b"Command: NOOP\r\r\n" in data
    starts = [m for m in parse_all(data) if isinstance(m, Message) and m.name == "AGIExecStart"]
    assert "NOOP\r" in [m["Command"] for m in starts]


def test_command_output_keeps_every_line_in_order() -> None:
    messages = [m for m in parse_all(stream_bytes("ami-12-status-getvar-command")) if isinstance(m, Message)]
    dialplan = next(m for m in messages if m.action_id == "ami-22")
    assert dialplan["Message"] == "Command output follows"
    out = command_output(dialplan)
    assert out[0] == "[ Context 'parkedcallstimeout' created by 'pbx_config' ]"
    assert out[1].startswith("  's' =>            1. NoOp(park timeout comeback")
    assert out[-2] == ""  # "Output: \r\n" is an empty line of CLI output
    assert out[-1] == "-= 2 extensions (4 priorities) in 1 context. =-"
    assert len(out) == 7
    channels = next(m for m in messages if m.action_id == "ami-19")
    first = command_output(channels)[0]
    assert first.startswith("Channel ") and first.endswith("Application(Data)             ")  # trailing spaces kept
    unknown = next(m for m in messages if m.action_id == "ami-21")
    assert unknown.name == "Error"
    assert command_output(unknown) == [
        "No such command 'no such cli command' (type 'core show help no such' for other possible commands)"
    ]


def test_list_markers_on_core_show_channels() -> None:
    messages = [m for m in parse_all(stream_bytes("ami-12-status-getvar-command")) if isinstance(m, Message)]
    start = next(m for m in messages if m.is_response and is_list_start(m))
    items = [m for m in messages if m.is_event and m.action_id == start.action_id]
    assert not is_list_complete(items[0])
    assert is_list_complete(items[-1])
    assert items[-1]["ListItems"] == str(len(items) - 1)


def test_old_follows_output_becomes_output_headers() -> None:
    # Asterisk < 14 format of Command output (raw LF lines ended by --END COMMAND--).
    data = (
        BANNER + b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
        b"Channel: x\nsecond line\n--END COMMAND--\r\n\r\n"
    )
    msg = parse_all(data)[1]
    assert isinstance(msg, Message)
    assert msg.name == "Follows" and msg.action_id == "c1"
    assert command_output(msg) == ["Channel: x", "second line"]


# -- UTF-8 -------------------------------------------------------------------------------------------------------


def test_utf8_split_between_reads_is_decoded_whole() -> None:
    data = BANNER + "Event: Newchannel\r\nCallerIDName: Jūratė Žemaitė\r\n\r\n".encode()
    expected = parse_all(data)
    assert expected[1]["CallerIDName"] == "Jūratė Žemaitė"  # type: ignore[index]
    for cut in range(len(BANNER), len(data)):
        assert parse_split(data, [cut]) == expected


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    msg = parse_all(BANNER + b"Event: X\r\nName: a\xffb\xc3\r\n\r\n")[1]
    assert msg["Name"] == "a\ufffdb\ufffd"  # type: ignore[index]


# -- limits ------------------------------------------------------------------------------------------------------


def test_incomplete_message_over_limit() -> None:
    parser = AMIParser(max_message_size=1000)
    parser.feed(BANNER)
    parser.feed(b"Event: X\r\n" + b"A: b\r\n" * 150)
    with pytest.raises(AMIMessageTooLarge) as err:
        parser.feed(b"A: b\r\n" * 20)
    assert err.value.limit == 1000


def test_complete_message_over_limit() -> None:
    with pytest.raises(AMIMessageTooLarge):
        AMIParser(max_message_size=100).feed(BANNER + b"Event: X\r\n" + b"A: b\r\n" * 50 + b"\r\n")


def test_many_small_messages_in_one_read_are_not_a_large_message() -> None:
    data = BANNER + b"Event: X\r\nA: b\r\n\r\n" * 1000
    assert len(AMIParser(max_message_size=100).feed(data)) == 1001


# -- server role (what Asterisk does with client bytes) -------------------------------------------------------


def test_server_role_parses_real_client_bytes_incl_bare_lf_and_lower_case() -> None:
    data = stream_bytes("ami-10-login-ping-events-logoff", TO_ASTERISK, "clientC")
    assert b"Action: Ping\nActionID: lf-1\n\n" in data
    assert b"action: ping\r\nactionid: lower-1\r\n\r\n" in data
    actions = parse_all(data, Role.SERVER)
    assert all(isinstance(a, Message) and a.is_action for a in actions)
    ids = [a.action_id for a in actions if isinstance(a, Message)]
    assert ids == [
        "clientC-1",
        "clientC-2",
        None,
        "clientC-3",
        "clientC-4",
        "clientC-5",
        "clientC-6",
        "clientC-7",
        "lower-1",
        "lf-1",
        "batch-1",
        "batch-2",
        "split-1",
        "clientC-8",
    ]
    lower = actions[8]
    assert isinstance(lower, Message)
    assert lower.name == "ping" and lower.get("ACTION") == "ping"


def test_server_role_every_split_and_byte_at_a_time() -> None:
    data = stream_bytes("ami-10-login-ping-events-logoff", TO_ASTERISK, "clientC")
    expected = parse_all(data, Role.SERVER)
    for cut in range(1, len(data)):
        assert parse_split(data, [cut], Role.SERVER) == expected
    assert parse_split(data, list(range(1, len(data))), Role.SERVER) == expected


def test_server_role_ignores_colonless_lines_and_stray_blank_lines() -> None:
    got = parse_all(b"\r\n\r\nAction: Ping\r\nnot a header\r\nActionID: 1\r\n\r\n", Role.SERVER)
    assert got == [Message([("Action", "Ping"), ("ActionID", "1")])]


def test_server_role_keeps_extra_cr() -> None:
    got = parse_all(b"Action: AGI\r\nCommand: NOOP\r\r\n\r\n", Role.SERVER)
    assert got[0]["Command"] == "NOOP\r"  # type: ignore[index]


def test_server_role_size_limit() -> None:
    with pytest.raises(AMIMessageTooLarge):
        AMIParser(Role.SERVER, max_message_size=64).feed(b"Action: Ping\n" + b"X: y\n" * 20)


# -- Message -----------------------------------------------------------------------------------------------------


def test_message_headers_are_case_insensitive_multi_valued_and_ordered() -> None:
    msg = Message([("Event", "Status"), ("ChanVariable", "A=1"), ("ActionID", "x"), ("chanvariable", "B=2")])
    assert msg.get("chanVARIABLE") == "A=1"
    assert msg.getall("ChanVariable") == ["A=1", "B=2"]
    assert "ACTIONID" in msg and "Missing" not in msg and 3 not in msg  # type: ignore[operator]
    assert msg.get("Missing") is None and msg.get("Missing", "d") == "d"
    with pytest.raises(KeyError):
        msg["Missing"]
    assert msg.action_id == "x" and msg.name == "Status" and msg.is_event
    assert msg.to_dict() == {"Event": "Status", "ChanVariable": "A=1", "ActionID": "x"}
    assert len(msg) == 4 and list(msg) == msg.items()


def test_message_name_when_not_first() -> None:
    msg = Message([("ActionID", "1"), ("Response", "Success")])
    assert msg.name == "Success" and msg.is_response and not msg.is_event


# -- encoding ----------------------------------------------------------------------------------------------------


def test_encode_login_matches_the_recorded_client_bytes() -> None:
    recorded = stream_bytes("ami-10-login-ping-events-logoff", TO_ASTERISK, "clientE")
    assert (
        recorded == b"Action: Login\r\nActionID: clientE-1\r\nUsername: ivr\r\nSecret: ivrsecret\r\nEvents: off\r\n\r\n"
    )
    assert encode_action("Login", login_headers("ivr", "ivrsecret", events=False), action_id="clientE-1") == recorded


def test_md5_login_matches_the_recorded_challenge() -> None:
    assert md5_key("125847296", "ivrsecret") == "bb40de9f42aa47f3dd204b0f459e5ec8"
    recorded = stream_bytes("ami-10-login-ping-events-logoff", TO_ASTERISK, "clientD")
    login = encode_action(
        "Login", md5_login_headers("ivr", md5_key("125847296", "ivrsecret"), events=False), action_id="clientD-2"
    )
    assert login in recorded


def test_encode_values_types_and_repeats() -> None:
    data = encode_action(
        "Originate",
        {"Channel": "Local/s@x", "Priority": 1, "Async": True, "Account": None, "Variable": ["A=1", "B=2"]},
        action_id="o1",
    )
    assert data == (
        b"Action: Originate\r\nActionID: o1\r\nChannel: Local/s@x\r\nPriority: 1\r\nAsync: true\r\n"
        b"Variable: A=1\r\nVariable: B=2\r\n\r\n"
    )
    assert header_pairs([("A", 1), ("B", False)]) == [("A", "1"), ("B", "false")]


@pytest.mark.parametrize("value", ["x\r\nAction: Hangup", "x\n", "x\ry"])
def test_encode_refuses_injection(value: str) -> None:
    with pytest.raises(AMIEncodingError, match="CR or LF"):
        encode_action("Setvar", {"Variable": "X", "Value": value})


@pytest.mark.parametrize("name", ["", "A:B", "A\r\nB", " A"])
def test_encode_refuses_bad_header_names(name: str) -> None:
    with pytest.raises(AMIEncodingError):
        encode_message([(name, "v")])


def test_encode_refuses_actionid_in_headers_and_bad_action_name() -> None:
    with pytest.raises(AMIEncodingError):
        encode_action("Ping", {"ActionID": "x"})
    with pytest.raises(AMIEncodingError):
        encode_action("Ping\r\nAction: Hangup")


def test_raw_values_reproduce_the_park_response_bytes() -> None:
    data = encode_message(
        [("Response", "Success"), ("ActionID", "ami-3"), ("Message", "Park successful\n")], raw_values=True
    )
    assert data == b"Response: Success\r\nActionID: ami-3\r\nMessage: Park successful\n\r\n\r\n"
    assert data in stream_bytes("ami-13-parking", FROM_ASTERISK)


def test_encode_then_parse_round_trip_utf8() -> None:
    pairs = [("Event", "UserEvent"), ("Name", "Žemaitė ąčę"), ("Output", ""), ("Output", "  indented  ")]
    assert parse_all(BANNER + encode_message(pairs))[1] == Message(pairs)


@pytest.mark.parametrize("name", all_names())
def test_parse_then_encode_reproduces_asterisk_bytes_exactly(name: str) -> None:
    """Nothing is lost or altered: re-encoding every parsed message gives back Asterisk's exact bytes."""
    stream = "observer" if "ami-10" in name else "ami"
    data = stream_bytes(name, stream=stream)
    banner, *messages = parse_all(data)
    rebuilt = BANNER + b"".join(encode_message(m.items(), raw_values=True) for m in messages)  # type: ignore[union-attr]
    assert rebuilt == data


def _lazy_and_full(data: bytes) -> list[tuple[Message, Message]]:
    lazy = [m for m in parse_all(data)[1:] if isinstance(m, Message)]
    full = [m for m in parse_all(data)[1:] if isinstance(m, Message)]
    for m in full:
        m.items()  # forces the split of every header
    return list(zip(lazy, full, strict=False))


@pytest.mark.parametrize("name", all_names())
def test_quick_header_lookup_agrees_with_full_split(name: str) -> None:
    data = stream_bytes(name, stream="observer" if "ami-10" in name else "ami")
    checked = 0
    for lazy, full in _lazy_and_full(data):
        names = {k for k, _ in full.items()} | {"ActionID", "NoSuchHeader", "Even", "Value"}
        if lazy._raw is None:
            continue  # not a lazily split message (e.g. a banner-less odd block); nothing quick to check
        for header in sorted(names):
            for variant in (header, header.lower(), header.upper()):
                # A fresh unsplit copy each time: the quick lookup must not depend on earlier lookups.
                fresh = Message._lazy(lazy._raw, lazy._kind, lazy._name)  # type: ignore[arg-type]
                assert fresh.get(variant) == full.get(variant), (variant, full)
        checked += 1
        assert lazy == full
    assert checked > 10


@pytest.mark.parametrize(
    "block,header,expected",
    [
        (b"Event: X\r\nfoo: first\r\nFoo: second\r\n\r\n", "Foo", "first"),  # first value wins across cases
        (b"Event: X\r\nFoo:nospace\r\nFoo: spaced\r\n\r\n", "Foo", "nospace"),
        (b"Event: X\r\nFoo:a: b\r\n\r\n", "Foo", None),  # key is "Foo:a", like Asterisk's split
        (b"Event: X\r\nFoo:a: b\r\n\r\n", "Foo:a", "b"),
        (b"Event: X\r\nBar: Foo: x\r\n\r\n", "Foo", None),  # inside a value is not a header
        (b"Event: X\r\nMessage: Park successful\n\r\n\r\n", "Message", "Park successful\n"),
        (b"Event: X\r\nName: J\xc5\xabrat\xc4\x97\r\nNAME: other\r\n\r\n", "name", "J\u016brat\u0117"),
        (b"Event: X\r\nEmpty: \r\nLast: end\r\n\r\n", "Empty", ""),
        (b"Event: X\r\nEmpty: \r\nLast: end\r\n\r\n", "Last", "end"),
    ],
)
def test_quick_header_lookup_edge_cases(block: bytes, header: str, expected: str | None) -> None:
    lazy = parse_all(BANNER + block)[1]
    full = parse_all(BANNER + block)[1]
    assert isinstance(lazy, Message) and isinstance(full, Message)
    full.items()
    assert full.get(header) == expected
    assert lazy.get(header) == expected
    assert (header in lazy) == (expected is not None)


# Lines that stress the quick lookup: case variants, no space after the colon, a colon inside the key, raw CR,
# bare LF, empty values, non-ASCII text (case folding may change lengths there), and a header line at the very end.
_ODD_LINES = [
    "Uniqueid: 1795908860.1",
    "uniqueid: lower first",
    "UNIQUEID:nospace",
    "Uniqueid:a: b",
    "Uniqueid:",
    "Uniqueid: ",
    "Channel: PJSIP/100-00000001",
    "channel: second",
    "Value: x\r",
    "Message: Park successful\n",
    "CallerIDName: J\u016brat\u0117",
    "CallerIDName: \u0130stanbul",
    "Bar: Uniqueid: inside a value",
    "Event: LaterEvent",
    "event: later lower",
    "Response: LaterResponse",
    "noheader",
    "\u212aelvin: sign",
    "Name: \u0130\u0130",
    "Uniqueid: a b",  # two characters that grow when folded, then a value with a space
]
_ODD_NAMES = [
    "Uniqueid",
    "uniqueid",
    "UNIQUEID",
    "Channel",
    "Value",
    "Message",
    "CallerIDName",
    "callername",
    "Bar",
    "Event",
    "event",
    "EVENT",
    "Response",
    "response",
    "ActionID",
    "noheader",
    "Kelvin",
    "kelvin",
    "Uniqueid:a",
    "",
    "Missing",
    "\u0130stanbul",
]


def test_quick_header_lookup_agrees_with_full_split_on_generated_blocks() -> None:
    import random

    rng = random.Random(3)
    for _ in range(1500):
        first = rng.choice(["Event: Newexten", "Response: Success", "Event: X"])
        lines = [first] + rng.sample(_ODD_LINES, rng.randint(0, 6))
        block = "\r\n".join(lines)
        kind, _, value = first.partition(": ")
        full = Message._lazy(block, kind, value)
        full.items()  # split every header
        for name in _ODD_NAMES:
            quick = Message._lazy(block, kind, value)
            assert quick.get(name) == full.get(name), (name, block)
            assert quick.get(name, "default") == full.get(name, "default"), (name, block)
            quick = Message._lazy(block, kind, value)
            if full.get(name) is None:
                with pytest.raises(KeyError):
                    quick[name]
            else:
                assert quick[name] == full.get(name)


# Message.leading(): the standard channel block in one match, or None; equal to get() of each name when it answers.
_BLOCK = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)


def _leading_checked(lazy: Message, full: Message, names: tuple[str, ...]) -> bool:
    fresh = Message._lazy(lazy._raw, lazy._kind, lazy._name)  # type: ignore[arg-type]
    got = fresh.leading(names)
    if got is not None:
        assert got == tuple(full.get(n) for n in names), (names, full)
    return got is not None


@pytest.mark.parametrize("name", all_names())
def test_leading_block_agrees_with_get_on_recordings(name: str) -> None:
    data = stream_bytes(name, stream="observer" if "ami-10" in name else "ami")
    channel_events = answered = 0
    for lazy, full in _lazy_and_full(data):
        if lazy._raw is None:
            continue
        for names in (_BLOCK, _BLOCK[:3], ("Uniqueid",), ("Channel", "Uniqueid")):
            _leading_checked(lazy, full, names)
        if lazy._kind == "Event" and full.get("Channel") is not None and full.get("Linkedid") is not None:
            first = [k for k, _ in full.items()][1:3]
            if first in (["Privilege", "Channel"], ["Channel", "ChannelState"]):  # a block right after Event
                channel_events += 1
                answered += _leading_checked(lazy, full, _BLOCK)
    # Every event of a real Asterisk 22 that starts with the channel block is read in one match.
    assert answered == channel_events
    if name.startswith("ami-13"):
        assert channel_events > 50


def test_leading_on_generated_blocks() -> None:
    import random

    rng = random.Random(5)
    base = [f"{n}: v{i}" for i, n in enumerate(_BLOCK)]
    odd = [
        "uniqueid: lower",
        "Channel:nospace",
        "Context: x\r",
        "Exten: bare\nLF",
        "CallerIDName: J\u016brat\u0117",
        "Extra: after",
        "Uniqueid: again",
        "SystemName: pbx1",
        "Privilege: call,all",
        "AccountCode: ",
    ]
    answered = 0
    for _ in range(1500):
        lines = ["Event: Newchannel"]
        if rng.random() < 0.8:
            lines.append("Privilege: call,all")
        if rng.random() < 0.2:
            lines.append("SystemName: pbx1")
        block = list(base)
        for _ in range(rng.choice([0, 0, 1, 2])):
            block.insert(rng.randrange(len(block) + 1), rng.choice(odd))
        if rng.random() < 0.1:
            block = block[:-1]  # no Linkedid
        text = "\r\n".join(lines + block + (["Tail: end"] if rng.random() < 0.5 else []))
        full = Message._lazy(text, "Event", "Newchannel")
        full.items()
        answered += _leading_checked(Message._lazy(text, "Event", "Newchannel"), full, _BLOCK)
    assert 300 < answered < 1500  # both the one-match answer and the fall-back to get() were exercised


def test_leading_answers_events_only_and_refuses_odd_names() -> None:
    response = parse_all(BANNER + b"Response: Success\r\nChannel: x\r\n\r\n")[1]
    assert isinstance(response, Message) and response.leading(("Channel",)) is None
    built = Message([("Event", "Newchannel"), ("Channel", "x")])  # no text: get() answers
    assert built.leading(("Channel",)) is None
    event = parse_all(BANNER + b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: x\r\nUniqueid: 1\r\n\r\n")[1]
    assert isinstance(event, Message) and event.leading(("Channel", "Uniqueid")) == ("x", "1")
    for names in [(), ("Channel", "channel"), ("Privilege",), ("Event",), ("A:B",), ("A B",)]:
        with pytest.raises(ValueError):
            event.leading(names)

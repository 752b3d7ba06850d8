"""Sans-IO core tests. Every wire line below is quoted from the real Asterisk 22.10.1 transcripts in
tests/data/asterisk/ (file and stream named in each test)."""

from __future__ import annotations

import pytest

from ivr.agi.errors import AGIEncodingError, AGIProtocolError
from ivr.agi.protocol import (
    _TRANSITIONS,
    EOF,
    MAX_COMMAND_BYTES,
    AGIConnection,
    AGIEnvironment,
    AGIReply,
    HangupNotice,
    Quoted,
    ReceiveBuffer,
    State,
    encode_command,
    parse_reply_line,
)

from .fake_asterisk import ENV_AGI01


def ready_connection(env: bytes = ENV_AGI01) -> AGIConnection:
    conn = AGIConnection()
    conn.receive_data(env)
    assert isinstance(conn.next_event(), AGIEnvironment)
    return conn


def feed(conn: AGIConnection, data: bytes) -> list:
    conn.receive_data(data)
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


# --- environment (agi-01) ------------------------------------------------------------------------------


def test_env_agi01_fields_query_args_and_empty_values():
    conn = AGIConnection()
    conn.receive_data(ENV_AGI01)
    env = conn.next_event()
    assert isinstance(env, AGIEnvironment)
    assert conn.state is State.READY
    assert env.script_path == "agi-01"
    assert env.query == {"lang": "en", "mode": "test"}
    assert env.args == ["first arg", "second"]
    assert env.channel == "Local/agi-01@agi-scen-00000009;2"
    assert env.uniqueid == "1795909233.19"
    assert env.callerid == "5551234" and env.calleridname == "IVR Caller"
    assert env.dnid == "unknown" and env.rdnis == "unknown"
    assert env.accountcode == ""  # "agi_accountcode: \n"
    assert env.raw["enhanced"] == "0.0"
    assert env.request == "agi://127.0.0.1:4573/agi-01?lang=en&mode=test"
    assert env.network


def test_env_arrives_in_segments_and_byte_at_a_time():
    # agi-01: "The env block arrived in 2 TCP segments (no meaning; parse by lines)."
    conn = AGIConnection()
    events = []
    for i in range(len(ENV_AGI01)):
        conn.receive_data(ENV_AGI01[i : i + 1])
        while (event := conn.next_event()) is not None:
            events.append(event)
    assert len(events) == 1 and events[0].args == ["first arg", "second"]


def test_env_latin1_caller_name_and_empty_args_kept():
    env_bytes = (
        b"agi_network: yes\nagi_network_script: main\nagi_calleridname: J\xf6rg M\xfcller\n"
        b"agi_arg_1: \nagi_arg_2: x\nagi_arg_3: \n\n"
    )
    env = ready_connection(env_bytes).env
    assert env.calleridname == "Jörg Müller"
    assert env.args == ["", "x", ""]
    utf8 = ready_connection("agi_network_script: main\nagi_calleridname: Jörg\n\n".encode()).env
    assert utf8.calleridname == "Jörg"


def test_env_query_with_blank_value_and_slashes():
    env = ready_connection(b"agi_network_script: /sales/main/?lang=&x=1\n\n").env
    assert env.script_path == "sales/main"
    assert env.query == {"lang": "", "x": "1"}


def test_env_without_colon_is_a_protocol_error():
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\ngarbage line\n\n")
    with pytest.raises(AGIProtocolError):
        conn.next_event()
    assert conn.state is State.ERROR


def test_oversized_header_refused():
    conn = AGIConnection(header_limit=1024)
    conn.receive_data(b"agi_x: " + b"y" * 100 + b"\n")
    conn.receive_data(b"".join(b"agi_k%d: %s\n" % (i, b"v" * 90) for i in range(20)))
    with pytest.raises(AGIProtocolError, match="environment block over 1024"):
        while conn.next_event() is not None:
            pass


def test_eof_inside_header():
    conn = AGIConnection()
    conn.receive_data(ENV_AGI01[:100])
    conn.receive_data(b"")
    assert conn.next_event() == EOF()
    assert conn.state is State.CLOSED


# --- command encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "words, wire",
    [
        # agi-01
        (("SET", "VARIABLE", "MYVAR", "hello world"), b'SET VARIABLE MYVAR "hello world"\n'),
        (("SET", "VARIABLE", "MYVAR2", 'say "hi" there'), b'SET VARIABLE MYVAR2 "say \\"hi\\" there"\n'),
        (("SET", "VARIABLE", "EMPTYVAR", ""), b'SET VARIABLE EMPTYVAR ""\n'),
        (("GET", "VARIABLE", "CALLERID(num)"), b"GET VARIABLE CALLERID(num)\n"),
        (("GET", "FULL", "VARIABLE", "${MYVAR}"), b"GET FULL VARIABLE ${MYVAR}\n"),
        (("VERBOSE", "hello from the FastAGI server", "1"), b'VERBOSE "hello from the FastAGI server" 1\n'),
        (("CHANNEL", "STATUS"), b"CHANNEL STATUS\n"),
        # agi-02 / agi-03: escape digits always quoted, empty ones as ""
        (("STREAM", "FILE", "demo-congrats", Quoted("0123456789*#")), b'STREAM FILE demo-congrats "0123456789*#"\n'),
        (("STREAM", "FILE", "beep", Quoted("")), b'STREAM FILE beep ""\n'),
        (("GET", "DATA", "beep", "10000", "5"), b"GET DATA beep 10000 5\n"),
        # agi-04
        (
            (
                "RECORD",
                "FILE",
                "/var/spool/asterisk/recordings/agi04-dtmf",
                "wav",
                Quoted("#"),
                "20000",
                "0",
                "BEEP",
                "s=3",
            ),
            b'RECORD FILE /var/spool/asterisk/recordings/agi04-dtmf wav "#" 20000 0 BEEP s=3\n',
        ),
        # backslashes are escaped, tabs are quoted
        (("SET", "VARIABLE", "P", "a\\b\tc"), b'SET VARIABLE P "a\\\\b\tc"\n'),
    ],
)
def test_encode_matches_transcript(words, wire):
    assert encode_command(*words) == wire


@pytest.mark.parametrize("bad", ["x\r", "x\ny", "nul\0", "\r\nHANGUP"])
def test_encode_refuses_control_characters(bad):
    # agi-05: "NOOP\r\n" -> 510 and "GET VARIABLE CALLERID(num)\r\n" looks up "CALLERID(num)\r": a CR corrupts.
    with pytest.raises(AGIEncodingError, match="CR, LF or NUL"):
        encode_command("SET", "VARIABLE", "X", bad)


def test_encode_lines_end_with_lf_only_and_limits():
    assert encode_command("NOOP") == b"NOOP\n"
    with pytest.raises(AGIEncodingError):
        encode_command()
    with pytest.raises(AGIEncodingError, match="2047"):
        encode_command("VERBOSE", "x" * MAX_COMMAND_BYTES)
    with pytest.raises(AGIEncodingError, match="at most 128"):
        encode_command(*(["x"] * 129))
    assert encode_command("VERBOSE", "Jörg") == "VERBOSE Jörg\n".encode()


# --- reply lines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, code, result, data, endpos",
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=1 (hello world)", 200, "1", "hello world", None),
        ("200 result=1 ()", 200, "1", "", None),
        ("200 result=53 endpos=10720", 200, "53", None, 10720),
        ("200 result=12", 200, "12", None, None),
        ("200 result=78 (timeout)", 200, "78", "timeout", None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=35 (dtmf) endpos=18560", 200, "35", "dtmf", 18560),
        ("200 result=0 (timeout) endpos=24000", 200, "0", "timeout", 24000),
        ("200 result=-1 (hangup) endpos=20160", 200, "-1", "hangup", 20160),
        ("200 result=-1 (writefile)", 200, "-1", "writefile", None),
        ("200 result=-2", 200, "-2", None, None),
        ("200 result=0 endpos=-1", 200, "0", None, -1),
        ("200 result=25168 (timeout) endpos=30653", 200, "25168", "timeout", 30653),
        ('200 result=1 (say "hi" there||IVR Caller|21)', 200, "1", 'say "hi" there||IVR Caller|21', None),
        ("200 result=1 (Local/agi-01@agi-scen-00000009;1)", 200, "1", "Local/agi-01@agi-scen-00000009;1", None),
        ("510 Invalid or unknown command", 510, "", None, None),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "", None, None),
    ],
)
def test_reply_forms(line, code, result, data, endpos):
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.data, reply.endpos) == (code, result, data, endpos)
    assert reply.lines == [line]


def test_reply_data_containing_parenthesis_and_kv_text():
    # A variable's value may itself look like "x) endpos=1": the data ends at the LAST ")" followed only by k=v.
    assert parse_reply_line("200 result=1 (x) endpos=1)").data == "x) endpos=1"
    assert parse_reply_line("200 result=1 ((a)(b))").data == "(a)(b)"


def test_reply_result_int_and_message():
    assert parse_reply_line("200 result= (timeout)").result_int is None
    assert parse_reply_line("200 result=-2").result_int == -2
    assert parse_reply_line("510 Invalid or unknown command").message == "Invalid or unknown command"


@pytest.mark.parametrize("bad", ["HELLO", "20", "2000 result=1", "abc result=1", "200 result=1 (unterminated"])
def test_reply_garbage_is_a_protocol_error(bad):
    with pytest.raises(AGIProtocolError):
        parse_reply_line(bad)


def test_100_trying_is_swallowed():
    conn = ready_connection()
    conn.send_command("EXEC", "Wait", "1")
    assert feed(conn, b"100 result=0 Trying...\n") == []
    assert conn.state is State.WAITING_REPLY
    [reply] = feed(conn, b"200 result=0\n")
    assert reply.result == "0" and conn.state is State.READY


# --- 520 usage blocks (agi-05, agi-01) ------------------------------------------------------------------

USAGE_STREAM_FILE = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Send the given file, allowing playback to be interrupted by the given digits, if any. Returns"
    b" <literal>0</literal>"
    b" if playback completes without a digit being pressed, or the ASCII numerical value of the digit if one was"
    b" pressed,"
    b" or <literal>-1</literal> on error or if the channel was disconnected. If musiconhold is playing before calling"
    b" stream file it will be automatically stopped and will not be restarted after completion.\n"
    b"It sets the following channel variables upon completion:\n"
    b"<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
    b"    <value>SUCCESS</value>\n"
    b"    <value>FAILED</value>\n"
    b"520 End of proper usage.\n"
)


def test_usage_block_multiline_split_like_asterisk():
    conn = ready_connection()
    conn.send_command("STREAM", "FILE")
    # "The first line arrives ~40 ms before the rest."
    first, rest = USAGE_STREAM_FILE.split(b"\n", 1)
    assert feed(conn, first + b"\n") == []
    [reply] = feed(conn, rest)
    assert reply.code == 520
    assert reply.lines[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert reply.lines[-1] == "520 End of proper usage."
    assert reply.usage.splitlines()[1] == "It sets the following channel variables upon completion:"
    assert "    <value>FAILED</value>" in reply.usage
    assert conn.state is State.READY


def test_usage_block_then_next_reply_in_sync():
    # agi-01: SET VARIABLE MYVAR3 'single quoted' -> 520 block, then GET VARIABLE MYVAR3 -> 200 result=0
    conn = ready_connection()
    conn.send_command("SET", "VARIABLE", "MYVAR3", "'single", "quoted'")
    [usage] = feed(
        conn,
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Sets a variable to the current channel.\n520 End of proper usage.\n",
    )
    assert usage.usage == "Sets a variable to the current channel."
    conn.send_command("GET", "VARIABLE", "MYVAR3")
    [reply] = feed(conn, b"200 result=0\n")
    assert reply.result == "0"


def test_eof_inside_usage_block_ends_instead_of_looping():
    # pyst2 loops forever here (bench/baseline_defects.py); we report EOF once and stop.
    conn = ready_connection()
    conn.send_command("STREAM", "FILE")
    assert feed(conn, b"520-Invalid command syntax.  Proper usage follows:\nSend the given file\n") == []
    conn.receive_data(b"")
    assert conn.next_event() == EOF(in_usage_block=True)
    assert conn.state is State.CLOSED
    assert conn.next_event() is None


# --- HANGUP orderings (agi-03) --------------------------------------------------------------------------


def test_hangup_during_command_reply_then_notice_then_dead_mode():
    # agi-03 [agi1]: ">>> STREAM FILE demo-congrats "#"" / "<<< 200 result=-1 endpos=12160" / "<<< HANGUP"
    conn = ready_connection()
    assert conn.send_command("STREAM", "FILE", "demo-congrats", Quoted("#")) == b'STREAM FILE demo-congrats "#"\n'
    [reply] = feed(conn, b"200 result=-1 endpos=12160\n")
    assert (reply.result, reply.endpos) == ("-1", 12160)
    assert feed(conn, b"HANGUP\n") == [HangupNotice()]
    assert conn.state is State.DEAD and conn.hung_up
    conn.send_command("STREAM", "FILE", "beep", Quoted(""))
    assert conn.state is State.DEAD_WAITING_REPLY
    [dead] = feed(conn, b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert dead.code == 511 and conn.state is State.DEAD
    conn.send_command("GET", "VARIABLE", "CALLERID(num)")
    [var] = feed(conn, b"200 result=1 (5551234)\n")
    assert var.data == "5551234"


def test_hangup_and_reply_in_one_chunk_do_not_shift_replies():
    conn = ready_connection()
    conn.send_command("GET", "DATA", "beep", "10000", "5")
    # agi-03 [agi2]: "200 result=-1" then "HANGUP" (here delivered in one read)
    events = feed(conn, b"200 result=-1\nHANGUP\n")
    assert [type(e) for e in events] == [AGIReply, HangupNotice]
    conn.send_command("WAIT", "FOR", "DIGIT", "1000")
    [reply] = feed(conn, b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert reply.code == 511


def test_hangup_while_idle_then_command():
    # agi-03 [agi3]: "HANGUP" ~1 ms after the caller hangs up, no command in flight; then NOOP -> 200 result=0.
    conn = ready_connection()
    assert feed(conn, b"HANGUP\n") == [HangupNotice()]
    conn.send_command("NOOP")
    [reply] = feed(conn, b"200 result=0\n")
    assert reply.result == "0" and conn.state is State.DEAD


def test_hangup_arrives_before_the_reply_of_a_command_in_flight():
    conn = ready_connection()
    conn.send_command("NOOP")
    events = feed(conn, b"HANGUP\n200 result=0\n")
    assert [type(e) for e in events] == [HangupNotice, AGIReply]
    assert conn.state is State.DEAD


def test_own_hangup_then_notice_then_second_notice_at_end():
    # agi-03 [agi4]: ">>> HANGUP" / "<<< 200 result=1" / "<<< HANGUP"; README: a second HANGUP at session end.
    conn = ready_connection()
    conn.send_command("HANGUP")
    [reply] = feed(conn, b"200 result=1\n")
    assert reply.result == "1"
    assert feed(conn, b"HANGUP\nHANGUP\n") == [HangupNotice(), HangupNotice()]
    assert conn.state is State.DEAD


def test_unsolicited_reply_is_a_protocol_error():
    conn = ready_connection()
    conn.receive_data(b"200 result=0\n")
    with pytest.raises(AGIProtocolError, match="unsolicited"):
        conn.next_event()
    assert conn.state is State.ERROR


def test_one_command_at_a_time():
    conn = ready_connection()
    conn.send_command("NOOP")
    with pytest.raises(AGIProtocolError, match="one command at a time"):
        conn.send_command("NOOP")


def test_out_of_band_hangup_for_classic_agi():
    conn = ready_connection()
    conn.send_command("STREAM", "FILE", "beep", Quoted(""))
    conn.notify_hangup()
    assert conn.state is State.DEAD_WAITING_REPLY and conn.hung_up
    [reply] = feed(conn, b"200 result=-1 endpos=100\n")
    assert conn.state is State.DEAD


def test_transition_table_is_total_for_eof():
    for state, row in _TRANSITIONS.items():
        if state is not State.ERROR:
            assert _Input_EOF(row) is State.CLOSED


def _Input_EOF(row):
    from ivr.agi.protocol import _Input

    return row[_Input.EOF]


# --- receive buffer ------------------------------------------------------------------------------------


def test_receive_buffer_remembers_search_position_and_limits_lines():
    buf = ReceiveBuffer(line_limit=100)
    for _ in range(50):
        buf.feed(b"x")
        assert buf.maybe_extract_line() is None
    assert buf._searched == 50  # next search starts here, not at 0: O(n) for byte-at-a-time peers
    buf.feed(b"\nrest")
    assert buf.maybe_extract_line() == b"x" * 50
    assert buf.maybe_extract_line() is None
    buf.feed(b"y" * 200)
    with pytest.raises(AGIProtocolError, match="longer than 100"):
        buf.maybe_extract_line()


def test_line_limit_in_connection():
    conn = AGIConnection(line_limit=64)
    conn.receive_data(b"agi_network: " + b"z" * 100)
    with pytest.raises(AGIProtocolError):
        conn.next_event()
    assert conn.state is State.ERROR


@pytest.mark.parametrize(
    "line",
    [
        "200 result=0",
        "200 result=-1",
        "200 result=57",
        "200 result=",
        "200 result=1 (hello world)",
        "200 result=0 endpos=3404",
    ],
)
def test_connection_fast_path_equals_full_parser(line):
    conn = ready_connection()
    conn.send_command("NOOP")
    [reply] = feed(conn, line.encode() + b"\n")
    assert reply == parse_reply_line(line)
    assert conn.state is State.READY


# Every distinct 200 reply line in the agi-01..agi-08 transcripts (tests/data/asterisk/agi-*.jsonl,
# asterisk->app), plus shapes that must fall through to the general parser.
TRANSCRIPT_200_LINES = [
    '200 result= (timeout)',
    '200 result=-1',
    '200 result=-1 (hangup) endpos=20160',
    '200 result=-1 (writefile)',
    '200 result=-1 endpos=0',
    '200 result=-1 endpos=12160',
    '200 result=-2',
    '200 result=0',
    '200 result=0 (timeout) endpos=24000',
    '200 result=0 endpos=-1',
    '200 result=0 endpos=3404',
    '200 result=0 endpos=45235',
    '200 result=1',
    '200 result=1 ()',
    '200 result=1 (/var/spool/asterisk/recordings/agi08-mixmon.wav)',
    '200 result=1 (0x7f802800b260)',
    '200 result=1 (2)',
    '200 result=1 (5551234)',
    '200 result=1 (ANSWER)',
    '200 result=1 (CHANUNAVAIL)',
    '200 result=1 (Local/agi-01@agi-scen-00000009;1)',
    '200 result=1 (hello world)',
    '200 result=1 (say "hi" there)',
    '200 result=1 (say "hi" there||IVR Caller|21)',
    '200 result=1 (set by Originate)',
    '200 result=12',
    '200 result=25168 (timeout) endpos=30653',
    '200 result=35 (dtmf) endpos=18560',
    '200 result=35 endpos=13120',
    '200 result=42 endpos=1320',
    '200 result=78 (timeout)',
]
FALLTHROUGH_LINES = [
    '200 result=1 (a) b=c)',
    '200 result=1 (a) b=c',
    '200 result=0 ',
    '200 result=0  endpos=5',
    '200 result=1  (two blanks)',
    '200 result=0\tendpos=5',
    '200 result=0 endpos=x',
    '200 result=1 (a) (b) k=v w=',
    '100 result=0 Trying...',
    '510 Invalid or unknown command',
]


@pytest.mark.parametrize("line", TRANSCRIPT_200_LINES + FALLTHROUGH_LINES)
def test_reply_fast_paths_equal_the_general_parser(line):
    from ivr.agi.protocol import _parse_reply_general

    assert parse_reply_line(line) == _parse_reply_general(line)


@pytest.mark.parametrize("line", ['200 result=1 (abc', '200 result=1 (x) junk', '200 result=1 (x)endpos=5'])
def test_unterminated_or_junk_data_is_refused_by_both_paths(line):
    with pytest.raises(AGIProtocolError):
        parse_reply_line(line)


def test_env_and_what_follows_it_in_one_read():
    # The whole block is taken at once; a HANGUP (caller gone at once, agi-03) and a partial line read with it
    # stay buffered, in order, for after the environment.
    conn = AGIConnection()
    conn.receive_data(ENV_AGI01 + b"HANGUP\n200 res")
    assert isinstance(conn.next_event(), AGIEnvironment)
    assert isinstance(conn.next_event(), HangupNotice) and conn.state is State.DEAD
    assert conn.next_event() is None
    conn.send_command("NOOP")
    assert feed(conn, b"ult=0\n")[0].result == "0"


def test_long_line_inside_a_single_read_header_is_refused():
    conn = AGIConnection(line_limit=64)
    conn.receive_data(b"agi_network: yes\nagi_calleridname: " + b"z" * 100 + b"\n\n")
    with pytest.raises(AGIProtocolError, match="longer than 64"):
        conn.next_event()
    assert conn.state is State.ERROR


def test_eof_after_complete_lines_of_an_unfinished_header():
    conn = AGIConnection()
    conn.receive_data(ENV_AGI01[:-1] + b"agi_x")  # every line but the empty one, then a partial line
    conn.receive_data(b"")
    event = conn.next_event()
    assert isinstance(event, EOF) and conn.state is State.CLOSED

"""AGISession over a real loopback socket, replaying exact conversations from the Asterisk 22 transcripts
(agi-01 .. agi-05) with the scripted fake Asterisk."""

from __future__ import annotations

import asyncio

import pytest

from ivr import metrics
from ivr.agi import Router
from ivr.agi.errors import (
    AGIAppError,
    AGIConnectionLost,
    AGIDeadChannelError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGISessionClosed,
    AGITimeoutError,
    AGIUsageError,
)
from ivr.agi.session import command_label
from ivr.agi.tally import TALLY

from .conftest import Outcome, capture, running_server
from .fake_asterisk import ENV_AGI01, FakeAsterisk, env_for

DEAD_511 = b"511 Command Not Permitted on a dead channel or intercept routine\n"


async def call(body, script_path: str = "agi-01", env: bytes = ENV_AGI01, **server_kwargs):
    """Start a server whose only route runs `body`, connect a fake Asterisk; returns (server ctx, fake, outcome)."""
    outcome = Outcome()
    router = Router()
    router.add(script_path, capture(body, outcome))
    ctx = running_server(router, **server_kwargs)
    server = await ctx.__aenter__()
    fake = await FakeAsterisk.connect(server.port, env)
    return ctx, fake, outcome


def counter(command: str, result: str) -> float:
    TALLY.flush()  # commands are folded into the metrics in batches
    return (
        metrics.REGISTRY.get_sample_value("ivr_agi_command_results_total", {"command": command, "result": result})
        or 0.0
    )


async def test_agi01_basic_commands_and_quoting():
    async def body(s):
        assert s.env.query == {"lang": "en", "mode": "test"}
        got = [await s.channel_status()]
        await s.answer()
        got.append(await s.channel_status())
        got.append(await s.get_variable("PRESET"))
        got.append(await s.get_variable("NOSUCHVAR"))
        await s.set_variable("MYVAR2", 'say "hi" there')
        got.append(await s.get_variable("MYVAR2"))
        with pytest.raises(AGIUsageError) as usage:
            await s.command("SET", "VARIABLE", "MYVAR3", "'single", "quoted'")
        got.append(usage.value.usage)
        await s.set_variable("EMPTYVAR", "")
        got.append(await s.get_variable("EMPTYVAR"))
        got.append(await s.get_full_variable("${NOSUCHVAR}"))
        got.append(await s.get_full_variable("${CHANNEL}", "Local/agi-01@agi-scen-00000009;1"))
        await s.verbose("hello from the FastAGI server")
        return got

    ctx, fake, outcome = await call(body)
    try:
        await fake.run_script(
            [
                (b"CHANNEL STATUS\n", b"200 result=4\n"),
                (b"ANSWER\n", b"200 result=0\n"),
                (b"CHANNEL STATUS\n", b"200 result=6\n"),
                (b"GET VARIABLE PRESET\n", b"200 result=1 (value set in dialplan)\n"),
                (b"GET VARIABLE NOSUCHVAR\n", b"200 result=0\n"),
                (b'SET VARIABLE MYVAR2 "say \\"hi\\" there"\n', b"200 result=1\n"),
                (b"GET VARIABLE MYVAR2\n", b'200 result=1 (say "hi" there)\n'),
                (b"SET VARIABLE MYVAR3 'single quoted'\n", b"520-Invalid command syntax.  Proper usage follows:\n"),
            ]
        )
        await asyncio.sleep(0.04)  # "+0.549 Sets a variable..." arrives ~40 ms after the first 520 line
        await fake.send(b"Sets a variable to the current channel.\n520 End of proper usage.\n")
        await fake.run_script(
            [
                (b'SET VARIABLE EMPTYVAR ""\n', b"200 result=1\n"),
                (b"GET VARIABLE EMPTYVAR\n", b"200 result=1 ()\n"),
                (b"GET FULL VARIABLE ${NOSUCHVAR}\n", b"200 result=1 ()\n"),
                (
                    b"GET FULL VARIABLE ${CHANNEL} Local/agi-01@agi-scen-00000009;1\n",
                    b"200 result=1 (Local/agi-01@agi-scen-00000009;1)\n",
                ),
                (b'VERBOSE "hello from the FastAGI server" 1\n', b"200 result=1\n"),
            ]
        )
        assert await fake.closed_by_server()
        assert await outcome.wait() == [
            4,
            6,
            "value set in dialplan",
            None,
            'say "hi" there',
            "Sets a variable to the current channel.",
            "",
            "",
            "Local/agi-01@agi-scen-00000009;1",
        ]
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi02_dtmf_replies():
    async def body(s):
        return [
            await s.stream_file("demo-congrats", "0123456789*#"),
            await s.stream_file("beep", "", offset=2000),
            await s.wait_for_digit(5000),
            await s.wait_for_digit(1500),
            await s.get_data("beep", 5000, 4),
            await s.get_data("beep", 2000, 5),
            await s.get_data("beep", 2000, 5),
            await s.say_digits("123456", "#"),
            await s.say_number(42),
        ]

    ctx, fake, outcome = await call(body)
    try:
        await fake.run_script(
            [
                (b'STREAM FILE demo-congrats "0123456789*#"\n', b"200 result=53 endpos=10720\n"),
                (b'STREAM FILE beep "" 2000\n', b"200 result=0 endpos=3404\n"),
                (b"WAIT FOR DIGIT 5000\n", b"200 result=57\n"),
                (b"WAIT FOR DIGIT 1500\n", b"200 result=0\n"),
                (b"GET DATA beep 5000 4\n", b"200 result=12\n"),
                (b"GET DATA beep 2000 5\n", b"200 result=78 (timeout)\n"),
                (b"GET DATA beep 2000 5\n", b"200 result= (timeout)\n"),
                (b'SAY DIGITS 123456 "#"\n', b"200 result=35\n"),
                (b'SAY NUMBER 42 ""\n', b"200 result=0\n"),
            ]
        )
        assert await outcome.wait() == [
            ("5", 10720),
            (None, 3404),
            "9",
            None,
            ("12", False),
            ("78", True),
            ("", True),
            "#",
            None,
        ]
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi03_hangup_during_stream_file_then_dead_mode():
    before = counter("STREAM FILE", "failure")

    async def body(s):
        await s.answer()
        with pytest.raises(AGIHangupError):
            await s.stream_file("demo-congrats", "#")
        assert s.hung_up
        with pytest.raises(AGIHangupError, match="not sent"):
            await s.stream_file("beep")
        with pytest.raises(AGIHangupError):
            await s.channel_status()
        value = await s.get_variable("CALLERID(num)")
        await s.set_variable("AFTERHANGUP", "yes")
        await s.noop()
        await s.verbose("still here")
        return value

    ctx, fake, outcome = await call(body, "agi-03a", env_for("agi-03a"))
    try:
        await fake.run_script(
            [
                (b"ANSWER\n", b"200 result=0\n"),
                (b'STREAM FILE demo-congrats "#"\n', b"200 result=-1 endpos=12160\n"),
            ]
        )
        await asyncio.sleep(0.04)  # "+2.050 HANGUP" came 42 ms after the -1 reply
        await fake.send(b"HANGUP\n")
        await fake.run_script(
            [
                (b"GET VARIABLE CALLERID(num)\n", b"200 result=1 (5551234)\n"),
                (b'SET VARIABLE AFTERHANGUP "yes"\n', b"200 result=1\n"),
                (b"NOOP\n", b"200 result=0\n"),
                (b'VERBOSE "still here" 1\n', b"200 result=1\n"),
            ]
        )
        assert await fake.closed_by_server()  # Asterisk never closes; we must
        assert await outcome.wait() == "5551234"
        assert counter("STREAM FILE", "failure") == before + 1
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi03b_hangup_during_get_data_and_511_from_asterisk():
    async def body(s):
        with pytest.raises(AGIHangupError):
            await s.get_data("beep", 10000, 5)
        # A 511 from Asterisk (when the notice is not seen yet) is the typed dead-channel error:
        with pytest.raises(AGIDeadChannelError):
            await s.command("WAIT", "FOR", "DIGIT", "1000")
        return "done"

    ctx, fake, outcome = await call(body, "agi-03b", env_for("agi-03b"))
    try:
        await fake.expect(b"GET DATA beep 10000 5\n", b"200 result=-1\n", b"HANGUP\n")
        await fake.expect(b"WAIT FOR DIGIT 1000\n", DEAD_511)
        assert await fake.closed_by_server()
        assert await outcome.wait() == "done"
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi03c_hangup_while_idle_is_a_notice():
    go = asyncio.Event()

    async def body(s):
        await s.answer()
        await asyncio.wait_for(go.wait(), 5)  # the handler is busy elsewhere (e.g. a CRM lookup)
        await s.noop()  # the buffered HANGUP is consumed before NOOP's reply
        assert s.hung_up
        with pytest.raises(AGIHangupError, match="not sent"):
            await s.answer()
        return await s.get_variable("AGISTATUS")

    ctx, fake, outcome = await call(body, "agi-03c", env_for("agi-03c"))
    try:
        await fake.expect(b"ANSWER\n", b"200 result=0\n")
        await fake.send(b"HANGUP\n")
        await asyncio.sleep(0.01)
        go.set()
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        await fake.expect(b"GET VARIABLE AGISTATUS\n", b"200 result=0\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() is None
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi03d_hangup_by_the_agi():
    async def body(s):
        await s.hangup()
        assert s.hung_up
        await s.hangup()  # no-op in dead mode
        with pytest.raises(AGIHangupError):
            await s.channel_status()
        return await s.get_variable("CALLERID(num)")

    ctx, fake, outcome = await call(body, "agi-03d", env_for("agi-03d"))
    try:
        await fake.expect(b"HANGUP\n", b"200 result=1\n")
        await fake.send(b"HANGUP\n")
        await fake.expect(b"GET VARIABLE CALLERID(num)\n", b"200 result=1 (5551234)\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() == "5551234"
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi04_record_file_replies():
    async def body(s):
        got = [
            await s.record_file("/var/spool/asterisk/recordings/agi04-dtmf", "wav", "#", 20000, beep=True, silence_s=3)
        ]
        got.append(await s.record_file("/var/spool/asterisk/recordings/agi04-silence", "wav", "#", 30000, silence_s=2))
        got.append(await s.record_file("/var/spool/asterisk/recordings/agi04-timeout", "wav", "#", 3000))
        with pytest.raises(AGIAppError, match="writefile"):
            await s.record_file("/nonexistent-dir/x", "wav", "#", 1000)
        got.append(
            await s.record_file("/var/spool/asterisk/recordings/agi04-hangup", "wav", "#", 20000, offset=0, beep=True)
        )
        got.append(s.hung_up)
        return [(r.result, r.data, r.endpos) if hasattr(r, "result") else r for r in got]

    ctx, fake, outcome = await call(body, "agi-04a", env_for("agi-04a"))
    try:
        await fake.run_script(
            [
                (
                    b'RECORD FILE /var/spool/asterisk/recordings/agi04-dtmf wav "#" 20000 0 BEEP s=3\n',
                    b"200 result=35 (dtmf) endpos=18560\n",
                ),
                (
                    b'RECORD FILE /var/spool/asterisk/recordings/agi04-silence wav "#" 30000 0 s=2\n',
                    b"200 result=25168 (timeout) endpos=30653\n",
                ),
                (
                    b'RECORD FILE /var/spool/asterisk/recordings/agi04-timeout wav "#" 3000\n',
                    b"200 result=0 (timeout) endpos=24000\n",
                ),
                (b'RECORD FILE /nonexistent-dir/x wav "#" 1000\n', b"200 result=-1 (writefile)\n"),
                (
                    b'RECORD FILE /var/spool/asterisk/recordings/agi04-hangup wav "#" 20000 0 BEEP\n',
                    b"200 result=-1 (hangup) endpos=20160\nHANGUP\n",
                ),
            ]
        )
        assert await fake.closed_by_server()
        result = await outcome.wait()
        assert result[:4] == [
            ("35", "dtmf", 18560),
            ("25168", "timeout", 30653),
            ("0", "timeout", 24000),
            ("-1", "hangup", 20160),
        ]
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi05_bad_commands():
    async def body(s):
        got = []
        with pytest.raises(AGIInvalidCommandError):
            await s.command("FOO", "BAR")
        with pytest.raises(AGIUsageError) as usage:
            await s.command("EXEC")
        got.append(usage.value.usage.splitlines()[0])
        with pytest.raises(AGIAppError):  # missing file, no HANGUP follows
            await s.stream_file("this-file-does-not-exist", "#")
        assert not s.hung_up
        got.append(await s.exec("NoSuchApplication", "foo"))
        got.append(await s.get_variable("CALLERID(num)"))
        return got

    ctx, fake, outcome = await call(body, "agi-05", env_for("agi-05"))
    try:
        await fake.expect(b"FOO BAR\n", b"510 Invalid or unknown command\n")
        await fake.expect(
            b"EXEC\n",
            b"520-Invalid command syntax.  Proper usage follows:\n"
            b"Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n"
            b"Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on"
            b" failure to find <replaceable>application</replaceable>.\n"
            b"<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is explicitly"
            b" enabled by setting the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>.\n"
            b"520 End of proper usage.\n",
        )
        await fake.expect(b'STREAM FILE this-file-does-not-exist "#"\n', b"200 result=-1 endpos=0\n")
        await fake.expect(b'EXEC NoSuchApplication "foo"\n', b"200 result=-2\n")
        await fake.expect(b"GET VARIABLE CALLERID(num)\n", b"200 result=1 (5551234)\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() == [
            "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.",
            -2,
            "5551234",
        ]
    finally:
        await ctx.__aexit__(None, None, None)


async def test_exec_escapes_application_arguments():
    async def body(s):
        return await s.exec("Dial", "PJSIP/100&PJSIP/101", "30", 'tT,"x"')

    ctx, fake, outcome = await call(body, "agi-06", env_for("agi-06"))
    try:
        await fake.expect(b'EXEC Dial "PJSIP/100&PJSIP/101,30,tT\\\\,\\\\\\"x\\\\\\""\n', b"200 result=0\n")
        assert await outcome.wait() == 0
    finally:
        await ctx.__aexit__(None, None, None)


async def test_eof_inside_usage_block_raises_connection_lost():
    async def body(s):
        with pytest.raises(AGIConnectionLost, match="520"):
            await s.command("STREAM", "FILE")
        with pytest.raises(AGISessionClosed):
            await s.noop()
        return "ok"

    ctx, fake, outcome = await call(body, "agi-05", env_for("agi-05"))
    try:
        await fake.expect(b"STREAM FILE\n", b"520-Invalid command syntax.  Proper usage follows:\n")
        await fake.aclose()
        assert await outcome.wait() == "ok"
    finally:
        await ctx.__aexit__(None, None, None)


async def test_command_timeout_closes_the_desynchronised_session():
    before = counter("GET VARIABLE", "timeout")

    async def body(s):
        with pytest.raises(AGITimeoutError):
            await s.get_variable("X")
        assert s.broken and s.closed
        with pytest.raises(AGISessionClosed, match="timeout"):
            await s.noop()
        return "ok"

    ctx, fake, outcome = await call(body, command_timeout=0.2)
    try:
        assert await fake.read_command() == b"GET VARIABLE X\n"  # ... and never answer (stalled peer)
        assert await fake.closed_by_server()
        assert await outcome.wait() == "ok"
        assert counter("GET VARIABLE", "timeout") == before + 1
    finally:
        await ctx.__aexit__(None, None, None)


def test_command_labels_are_bounded():
    assert command_label(("STREAM", "FILE", "x")) == "STREAM FILE"
    assert command_label(("exec", "Dial", "PJSIP/1")) == "EXEC"
    assert command_label(("GET", "FULL", "VARIABLE", "${X}")) == "GET FULL VARIABLE"
    assert command_label(("GET", "VARIABLE", "X")) == "GET VARIABLE"
    assert command_label(("HELLO", "WORLD")) == "other"
    assert command_label(("caller-controlled-text",)) == "other"


async def test_crlf_in_a_value_is_refused_before_sending():
    # agi-05: "GET VARIABLE CALLERID(num)\r\n" -> "200 result=0" (the \r became part of the name); a value with
    # CR/LF from a caller or CRM must never reach the wire.
    from ivr.agi.errors import AGIEncodingError

    async def body(s):
        with pytest.raises(AGIEncodingError):
            await s.set_variable("CRM_NAME", "Bob\r\nEXEC Dial PJSIP/evil")
        with pytest.raises(AGIEncodingError):
            await s.get_variable("CALLERID(num)\r")
        return await s.get_variable("CALLERID(num)")

    ctx, fake, outcome = await call(body)
    try:
        await fake.expect(b"GET VARIABLE CALLERID(num)\n", b"200 result=1 (5551234)\n")
        assert await fake.closed_by_server()
        assert fake.received == [b"GET VARIABLE CALLERID(num)\n"]
        assert await outcome.wait() == "5551234"
    finally:
        await ctx.__aexit__(None, None, None)


async def test_concurrent_commands_are_serialised_in_order():
    async def body(s):
        slow = asyncio.create_task(s.get_variable("A"))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(s.get_variable("CANCELLED"))
        second = asyncio.create_task(s.get_variable("B"))
        await asyncio.sleep(0)
        cancelled.cancel()  # a waiter cancelled before its turn never reaches the wire
        return await asyncio.gather(slow, second)

    ctx, fake, outcome = await call(body)
    try:
        assert await fake.read_command() == b"GET VARIABLE A\n"
        await asyncio.sleep(0.05)  # B is queued meanwhile; nothing else may be written
        await fake.send(b"200 result=1 (a)\n")
        await fake.expect(b"GET VARIABLE B\n", b"200 result=1 (b)\n")
        assert await fake.closed_by_server()
        assert fake.received == [b"GET VARIABLE A\n", b"GET VARIABLE B\n"]
        assert await outcome.wait() == ["a", "b"]
    finally:
        await ctx.__aexit__(None, None, None)


async def test_agi06_exec_dial_minus_one_with_and_without_caller_hangup():
    # agi-06: agent hangs up -> "200 result=-1" and no HANGUP (caller still up); caller hangs up while bridged ->
    # "200 result=-1", ~40 ms later "HANGUP". exec() returns -1 both times; hung_up tells them apart. The quoted
    # argument form is what agi-06 shows working: EXEC Dial "Local/noanswer@agents,3".
    async def body(s):
        first = (await s.exec("Dial", "Local/answer2s@agents", "10"), s.hung_up)
        status = await s.get_variable("DIALSTATUS")
        second = (await s.exec("Dial", "Local/talk@agents", "10"), s.hung_up)
        return first, status, second, await s.get_variable("DIALSTATUS")

    ctx, fake, outcome = await call(body, "agi-06", env_for("agi-06"))
    try:
        await fake.expect(b'EXEC Dial "Local/answer2s@agents,10"\n', b"200 result=-1\n")
        await fake.expect(b"GET VARIABLE DIALSTATUS\n", b"200 result=1 (ANSWER)\n")
        await fake.expect(b'EXEC Dial "Local/talk@agents,10"\n', b"200 result=-1\n")
        await asyncio.sleep(0.04)
        await fake.send(b"HANGUP\n")
        await fake.expect(b"GET VARIABLE DIALSTATUS\n", b"200 result=1 (ANSWER)\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() == ((-1, False), "ANSWER", (-1, True), "ANSWER")
    finally:
        await ctx.__aexit__(None, None, None)

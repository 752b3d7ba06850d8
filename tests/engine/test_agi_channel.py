"""AGIChannel over a real AGISession, against a scripted Asterisk on loopback. Replies are exact lines from
the Asterisk 22 transcripts in tests/data/asterisk (file named next to each)."""

import asyncio

import pytest

from ivr.agi.session import AGISession
from ivr.flow.agi_channel import AGIChannel
from ivr.flow.channel import CallerHangup, ChannelError

# agi-06-exec-dial.txt environment block (with a query string added as in agi-01)
ENV = (
    b"agi_network: yes\nagi_network_script: main?node=back\nagi_request: agi://127.0.0.1:4573/main?node=back\n"
    b"agi_channel: Local/agi-06@agi-scen-00000012;2\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795909322.39\nagi_version: 22.10.1\nagi_callerid: 5551234\nagi_calleridname: IVR Caller\n"
    b"agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: unknown\n"
    b"agi_rdnis: unknown\nagi_context: agi-scen\nagi_extension: agi-06\nagi_priority: 2\nagi_enhanced: 0.0\n"
    b"agi_accountcode: \nagi_threadid: 140188047713984\n\n"
)


# ivr.dialplan: IVR_STATUS says what the caller was handed to while the application runs
PARKED = ('SET VARIABLE IVR_STATUS "PARKED"\n', ["200 result=1\n"])
BACK = ('SET VARIABLE IVR_STATUS "RUNNING"\n', ["200 result=1\n"])  # the agent hung up, the caller is still there


async def scripted(script, body):
    """Run `body(channel)` in a FastAGI-style handler while this side plays Asterisk: for each
    (expected command, reply lines) it checks the command and sends the replies."""
    outcome = {}

    async def handle(reader, writer):
        session = await AGISession.start(reader, writer, hangup_grace=0.05)
        try:
            outcome["value"] = await body(AGIChannel(session))
        except Exception as exc:  # handed to the test
            outcome["error"] = exc
        finally:
            await session.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV)
    try:
        for expected, replies in script:
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line.decode() == expected
            for reply in replies:
                writer.write(reply.encode())
            await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # nothing else was sent; the session closed
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


async def test_call_info_from_environment():
    async def body(ch):
        return ch.info

    info = await scripted([], body)
    assert (info.uniqueid, info.caller_id, info.caller_name, info.channel) == (
        "1795909322.39",
        "5551234",
        "IVR Caller",
        "Local/agi-06@agi-scen-00000012;2",
    )
    assert info.params == {"node": "back"}


async def test_play_stops_at_escape_digit():  # agi-02
    async def body(ch):
        return await ch.play(["/p/en/menu", "/p/en/more"], "0123456789*#")

    assert await scripted([('STREAM FILE /p/en/menu "0123456789*#"\n', ["200 result=53 endpos=10720\n"])], body) == "5"


async def test_missing_prompt_is_skipped():  # agi-05 missing file, then agi-02 beep
    async def body(ch):
        return await ch.play(["nope", "beep"], "#")

    assert (
        await scripted(
            [
                ('STREAM FILE nope "#"\n', ["200 result=-1 endpos=0\n"]),
                ('STREAM FILE beep "#"\n', ["200 result=0 endpos=3404\n"]),
            ],
            body,
        )
        is None
    )


async def test_hangup_during_prompt_is_caller_hangup():  # agi-03
    async def body(ch):
        return await ch.play(["demo-congrats"], "#")

    with pytest.raises(CallerHangup):
        await scripted([('STREAM FILE demo-congrats "#"\n', ["200 result=-1 endpos=12160\n", "HANGUP\n"])], body)


async def test_wait_for_digit_hit_and_timeout():  # agi-02
    async def body(ch):
        return await ch.wait_for_digit(5.0), await ch.wait_for_digit(1.5)

    assert await scripted(
        [("WAIT FOR DIGIT 5000\n", ["200 result=57\n"]), ("WAIT FOR DIGIT 1500\n", ["200 result=0\n"])], body
    ) == ("9", None)


async def test_dial_no_answer_reads_dialstatus():  # agi-06: only DIALSTATUS is read when nobody answered
    async def body(ch):
        return await ch.dial("Local/noanswer@agents", 3)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Dial "Local/noanswer@agents,3"\n', ["200 result=0\n"]),
            ("GET VARIABLE DIALSTATUS\n", ["200 result=1 (NOANSWER)\n"]),
        ],
        body,
    )
    assert (result.status, result.talk_seconds, result.caller_hung_up, result.answered) == (
        "NOANSWER",
        0.0,
        False,
        False,
    )


async def test_dial_answered_agent_hangs_up_caller_stays():  # agi-06 first scenario
    async def body(ch):
        return await ch.dial("Local/answer2s@agents", 10)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Dial "Local/answer2s@agents,10"\n', ["200 result=-1\n"]),
            ("GET VARIABLE DIALSTATUS\n", ["200 result=1 (ANSWER)\n"]),
            ("GET VARIABLE ANSWEREDTIME\n", ["200 result=1 (3)\n"]),
            BACK,
        ],
        body,
    )
    assert (result.status, result.talk_seconds, result.caller_hung_up, result.answered) == ("ANSWER", 3.0, False, True)


async def test_dial_answered_then_caller_hangs_up():  # agi-06 last scenario
    async def body(ch):
        result = await ch.dial("Local/talk@agents", 10)
        try:
            await ch.play(["beep"])
        except CallerHangup:
            return result, "hangup"
        return result, "alive"

    result, after = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Dial "Local/talk@agents,10"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE DIALSTATUS\n", ["200 result=1 (ANSWER)\n"]),
            ("GET VARIABLE ANSWEREDTIME\n", ["200 result=1 (3)\n"]),
        ],
        body,
    )
    assert (result.status, result.talk_seconds, result.caller_hung_up, after) == ("ANSWER", 3.0, True, "hangup")


async def test_dial_caller_hangs_up_while_agent_rings_is_not_answered():
    # The reply forms of agi-06's caller hangup ("200 result=-1", "HANGUP"); Dial sets DIALSTATUS=CANCEL when the
    # caller leaves before an answer (the dead-mode GET VARIABLE is allowed, agi-06 / agi-07c).
    async def body(ch):
        return await ch.dial("Local/noanswer@agents", 10)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Dial "Local/noanswer@agents,10"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE DIALSTATUS\n", ["200 result=1 (CANCEL)\n"]),
        ],
        body,
    )
    assert (result.status, result.caller_hung_up, result.answered) == ("CANCEL", True, False)


async def test_dial_without_dialstatus_after_hangup_is_not_answered():
    async def body(ch):
        return await ch.dial("Local/noanswer@agents", 10)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Dial "Local/noanswer@agents,10"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE DIALSTATUS\n", ["200 result=0\n"]),
        ],
        body,
    )
    assert (result.status, result.caller_hung_up, result.answered) == ("CANCEL", True, False)


async def test_dial_without_dialstatus_on_a_live_channel_is_an_error():
    async def body(ch):
        return await ch.dial("Local/noanswer@agents", 10)

    with pytest.raises(ChannelError, match="set no DIALSTATUS"):
        await scripted(
            [
                ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
                ('EXEC Dial "Local/noanswer@agents,10"\n', ["200 result=0\n"]),
                ("GET VARIABLE DIALSTATUS\n", ["200 result=0\n"]),
            ],
            body,
        )


async def test_untrusted_dial_text_is_refused_before_sending():
    async def body(ch):
        return await ch.dial("PJSIP/1001,,m(evil)", 10)

    with pytest.raises(ChannelError, match="misread"):
        await scripted([], body)


async def test_queue_timeout_and_continue():  # agi-07 agi1
    async def body(ch):
        return await ch.queue("testq", 4), await ch.queue("agiq", 30, "c")

    timeout, answered = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "testq,,,,4"\n', ["200 result=0\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=1 (TIMEOUT)\n"]),
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,c,,,30"\n', ["200 result=0\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=1 (CONTINUE)\n"]),
            BACK,
        ],
        body,
    )
    assert (timeout.status, timeout.answered, timeout.caller_hung_up) == ("TIMEOUT", False, False)
    assert (answered.status, answered.answered, answered.caller_hung_up) == ("CONTINUE", True, False)


async def test_queue_without_c_agent_hung_up_is_answered():
    # agi-07 agi2: "200 result=-1", QUEUESTATUS unset, channel still up; agi-07.ami: ABANDONED never set on this
    # call and "Variable: ANSWEREDTIME_MS / Value: 2507" after AgentComplete.
    async def body(ch):
        return await ch.queue("agiq", 30)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME_MS\n", ["200 result=1 (2507)\n"]),
            BACK,
        ],
        body,
    )
    assert (result.status, result.talk_seconds, result.caller_hung_up, result.answered) == (
        "ANSWERED",
        2.507,
        False,
        True,
    )


async def test_queue_caller_hangs_up_while_waiting_is_abandoned():
    # The reported bug: this used to count as an answered transfer. Queue returns -1 and HANGUP follows (the
    # agi-06 hangup forms); app_queue marks every abandon with ABANDONED=TRUE (agi-07.ami "Variable: ABANDONED /
    # Value: TRUE" before QueueCallerAbandon), readable in dead mode.
    async def body(ch):
        return await ch.queue("agiq", 30)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=1 (TRUE)\n"]),
        ],
        body,
    )
    assert (result.status, result.caller_hung_up, result.answered) == ("ABANDONED", True, False)


async def test_queue_caller_hangs_up_after_the_agent_answered_is_answered():
    async def body(ch):
        return await ch.queue("agiq", 30)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME_MS\n", ["200 result=1 (2502)\n"]),
        ],
        body,
    )
    assert (result.status, result.talk_seconds, result.caller_hung_up, result.answered) == (
        "ANSWERED",
        2.502,
        True,
        True,
    )


async def test_queue_answer_evidence_from_answeredtime_or_memberinterface():
    # A PBX that sets only ANSWEREDTIME (whole seconds), or MEMBERINTERFACE (queues.conf setinterfacevar=yes).
    async def body(ch):
        return await ch.queue("agiq", 30), await ch.queue("agiq", 30)

    by_time, by_member = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME_MS\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME\n", ["200 result=1 (2)\n"]),
            BACK,
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME_MS\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME\n", ["200 result=0\n"]),
            ("GET VARIABLE MEMBERINTERFACE\n", ["200 result=1 (Local/answer2s@agents)\n"]),
        ],
        body,
    )
    assert (by_time.status, by_time.talk_seconds, by_time.caller_hung_up) == ("ANSWERED", 2.0, False)
    assert (by_member.status, by_member.caller_hung_up) == ("ANSWERED", True)


async def test_queue_hangup_without_any_evidence_is_not_counted_answered():
    # Nothing says an agent answered (ANSWEREDTIME of an abandon is 0, agi-07.ami "Value: 0"): abandoned.
    async def body(ch):
        return await ch.queue("agiq", 30)

    result = await scripted(
        [
            ('SET VARIABLE IVR_STATUS "AGENT"\n', ["200 result=1\n"]),
            ('EXEC Queue "agiq,,,,30"\n', ["200 result=-1\n", "HANGUP\n"]),
            ("GET VARIABLE QUEUESTATUS\n", ["200 result=0\n"]),
            ("GET VARIABLE ABANDONED\n", ["200 result=0\n"]),
            ("GET VARIABLE ANSWEREDTIME_MS\n", ["200 result=1 (0)\n"]),
        ],
        body,
    )
    assert (result.status, result.caller_hung_up) == ("ABANDONED", True)


async def test_park_timeout_is_not_a_hangup():  # agi-07 agi3: "EXEC Park default,t(6)" -> 0, then HANGUP
    async def body(ch):
        return await ch.park("default", 6)

    result = await scripted([PARKED, ('EXEC Park "default,st(6)"\n', ["200 result=0\n", "HANGUP\n"])], body)
    assert result.status == "timeout"


async def test_park_comeback_context_is_parks_c_option():
    # res_parking: c(context,extension,priority); the commas are escaped for Park()'s own argument splitter
    # (AST_STANDARD_APP_ARGS drops the backslashes; the goto then splits "ivr-park-comeback,s,1" on commas).
    async def body(ch):
        return await ch.park("default", 45, "ivr-park-comeback")

    result = await scripted(
        [PARKED, ('EXEC Park "default,st(45)c(ivr-park-comeback\\\\,s\\\\,1)"\n', ["200 result=0\n", "HANGUP\n"])], body
    )
    assert result.status == "timeout"


async def test_park_comeback_must_be_a_context_name():
    async def body(ch):
        return await ch.park("default", 45, "ctx,s,1)x(")

    with pytest.raises(ChannelError, match="not a dialplan context"):
        await scripted([], body)


async def test_set_variable_values_fit_the_command_line():
    long = "ą" * 3000  # 2 bytes each in UTF-8

    async def body(ch):
        await ch.set_variable("CRM_NOTE", "a\x00b\tc")
        await ch.set_variable("CRM_LONG", long)

    await scripted(
        [
            ('SET VARIABLE CRM_NOTE "a b c"\n', ["200 result=1\n"]),
            (f'SET VARIABLE CRM_LONG "{"ą" * ((1900 - 8) // 2)}"\n', ["200 result=1\n"]),
        ],
        body,
    )


async def test_record_file_silence_and_hangup():  # agi-04
    async def body(ch):
        a = await ch.record_file("/r/vm1", "wav", "#", 30, 2, True)
        b = await ch.record_file("/r/vm2", "wav", "#", 20, 0, True)
        return a, b

    a, b = await scripted(
        [
            ('RECORD FILE /r/vm1 wav "#" 30000 0 BEEP s=2\n', ["200 result=25168 (timeout) endpos=30653\n"]),
            ('RECORD FILE /r/vm2 wav "#" 20000 0 BEEP\n', ["200 result=-1 (hangup) endpos=20160\n", "HANGUP\n"]),
        ],
        body,
    )
    assert (a.reason, round(a.seconds, 2)) == ("silence", 3.83)
    assert (b.reason, b.seconds) == ("hangup", 2.52)


async def test_mixmonitor_start_pause_resume():  # agi-08
    async def body(ch):
        await ch.start_recording("/var/spool/asterisk/recordings/agi08-mixmon.wav")
        await ch.stop_recording()
        await ch.start_recording("/var/spool/asterisk/recordings/agi08-mixmon.wav", append=True)

    await scripted(
        [
            (
                'EXEC MixMonitor "/var/spool/asterisk/recordings/agi08-mixmon.wav,i(IVR_MIXMONITOR_ID)"\n',
                ["200 result=0\n"],
            ),
            ("GET VARIABLE IVR_MIXMONITOR_ID\n", ["200 result=1 (0x7f802800b260)\n"]),
            ('EXEC StopMixMonitor "0x7f802800b260"\n', ["200 result=0\n"]),
            (
                'EXEC MixMonitor "/var/spool/asterisk/recordings/agi08-mixmon.wav,ai(IVR_MIXMONITOR_ID)"\n',
                ["200 result=0\n"],
            ),
            ("GET VARIABLE IVR_MIXMONITOR_ID\n", ["200 result=1 (0x7f802800b261)\n"]),
        ],
        body,
    )


async def test_language_and_caller_name_are_quoted():
    async def body(ch):
        await ch.set_language("lt")
        await ch.set_variable("CALLERID(name)", 'Sales: "Bob"\r\nEXEC x')

    await scripted(
        [
            ('SET VARIABLE CHANNEL(language) "lt"\n', ["200 result=1\n"]),
            ('SET VARIABLE CALLERID(name) "Sales: \\"Bob\\"  EXEC x"\n', ["200 result=1\n"]),
        ],
        body,
    )

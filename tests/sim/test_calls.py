"""Calls through the public test API: caller scripts, virtual time, where calls end, recordings, hangup rules."""

from __future__ import annotations

import wave
from datetime import UTC, datetime
from pathlib import Path

from ivr.sim import (
    CallSpec,
    Hangup,
    NextPrompt,
    OnCommand,
    Press,
    RealClock,
    Route,
    SimConfig,
    SimulatedAsterisk,
    Sleep,
    SoundCatalog,
    Speak,
    VirtualClock,
    WhenIdle,
)

from .agi_peer import Peer, ScriptedAGIServer


async def run(handler, spec: CallSpec, config: SimConfig | None = None, clock=None):  # type: ignore[no-untyped-def]
    clock = clock or VirtualClock()
    async with ScriptedAGIServer(handler) as srv:
        sim = SimulatedAsterisk(config or SimConfig(), clock=clock)
        await sim.start(("127.0.0.1", srv.port), ami=False)
        try:
            call = await sim.place_call(spec)
            rec = await call.finished(timeout=10)
        finally:
            await sim.stop()
    assert not srv.errors, srv.errors
    return rec, clock, srv


async def test_sixty_second_call_runs_on_virtual_time() -> None:
    replies = []

    async def handler(p: Peer) -> None:
        replies.append(await p.cmd("ANSWER"))
        replies.append(await p.cmd("WAIT FOR DIGIT 60000"))

    start = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # a Sunday night, for business-hours tests
    clock = VirtualClock(start=start)
    rec, clock, _ = await run(handler, CallSpec(flow="main"), clock=clock)
    assert replies == [["200 result=0\n"], ["200 result=0\n"]]
    assert 60.5 <= rec.duration < 61.0  # ANSWER's 0.5 s + the 60 s wait, in virtual seconds
    assert clock.datetime() >= start
    assert rec.ended.by == "service" and rec.ended.during == "dialplan"
    assert rec.agi_status == "SUCCESS"


async def test_get_data_with_digits_pressed_during_the_prompt() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("GET DATA vm-intro 3000 4"))

    script = [NextPrompt(1.0), Press("12#")]
    rec, _, _ = await run(handler, CallSpec(flow="menu", script=script))
    assert got == [["200 result=12\n"]]
    assert [e["Digit"] for e in rec.events_named("DTMFEnd")] == ["1", "2", "#"]


async def test_caller_hangs_up_during_record_file(tmp_path: Path) -> None:
    lines = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        lines.append(await p.cmd(f'RECORD FILE {tmp_path}/vm wav "#" 20000 0 BEEP'))
        lines.append([await p.line()])
        lines.append(await p.cmd("CHANNEL STATUS"))
        lines.append(await p.cmd("GET VARIABLE CALLERID(num)"))

    script = [OnCommand("RECORD FILE"), Sleep(0.5), Speak(2.0), Sleep(2.5), Hangup()]
    rec, _, _ = await run(handler, CallSpec(flow="voicemail", caller_id="+37060000001", script=script))
    # 3.0 s into the command: recording started 0.4705 s in (beep), 126 frames written
    assert lines == [
        ["200 result=-1 (hangup) endpos=20160\n"],
        ["HANGUP\n"],
        ["511 Command Not Permitted on a dead channel or intercept routine\n"],
        ["200 result=1 (+37060000001)\n"],
    ]
    with wave.open(str(tmp_path / "vm.wav")) as w:
        assert (w.getnframes(), w.getframerate(), w.getsampwidth(), w.getnchannels()) == (20160, 8000, 2, 1)
    assert rec.ended.by == "caller" and rec.ended.during == "RECORD FILE"
    assert rec.ended.destination == f"recording:{tmp_path}/vm.wav"
    assert rec.recordings[0].seconds == 2.52
    assert rec.agi_status == "HANGUP"


async def test_record_file_stops_on_silence_after_speech(tmp_path: Path) -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd(f'RECORD FILE {tmp_path}/msg wav "#" 30000 s=2'))

    script = [OnCommand("RECORD FILE"), Speak(3.0)]
    await run(handler, CallSpec(flow="vm", script=script))
    # 3 s of speech + 2 s of silence = 5 s; 1 s of silence is trimmed; result = ms left of the timeout
    assert got == [["200 result=25000 (timeout) endpos=32000\n"]]
    assert (tmp_path / "msg.wav").stat().st_size == 44 + 32000 * 2


async def test_hangup_while_idle_sends_hangup_at_once_and_dead_mode_follows() -> None:
    got = []

    async def handler(p: Peer) -> None:
        got.append(await p.cmd("ANSWER"))
        got.append([await p.line()])
        got.append(await p.cmd("STREAM FILE beep \"\""))
        got.append(await p.cmd("NOOP"))

    rec, _, _ = await run(handler, CallSpec(flow="x", script=[OnCommand("ANSWER"), WhenIdle(), Hangup()]))
    assert got == [
        ["200 result=0\n"],
        ["HANGUP\n"],
        ["511 Command Not Permitted on a dead channel or intercept routine\n"],
        ["200 result=0\n"],
    ]
    assert rec.ended.by == "caller" and rec.ended.during == "idle"
    assert rec.agi_status == "HANGUP"


async def test_service_hangup_is_followed_by_hangup_line() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("HANGUP"))
        got.append([await p.line()])

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert got == [["200 result=1\n"], ["HANGUP\n"]]
    assert rec.ended.by == "service" and rec.ended.during == "HANGUP"
    # HANGUP 40 ms after the reply, and once more when the session ends (README: "also sends HANGUP when the
    # FastAGI session ends")
    assert rec.text().splitlines()[-3:] == [
        "+0.500 <<< 200 result=1\\n",
        "+0.540 <<< HANGUP\\n",
        "+0.540 <<< HANGUP\\n",
    ]
    assert [e["Cause"] for e in rec.events_named("Hangup")] == ["16"]


async def test_dial_agent_variables_and_destination() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Dial PJSIP/1001,20"))
        for var in ("DIALSTATUS", "ANSWEREDTIME", "DIALEDTIME"):
            got.append(await p.cmd("GET VARIABLE " + var))

    from ivr.sim import AgentSpec

    cfg = SimConfig()
    cfg.agents["1001"] = AgentSpec("1001", answer_after=4.0, talk=30.0)
    rec, _, _ = await run(handler, CallSpec(flow="x"), config=cfg)
    # app_dial's ANSWEREDTIME is the calling channel's up time (ANSWER at +0, hangup at +34.5), not the 30 s talk:
    # agi-06.ami "Variable: ANSWEREDTIME_MS / Value: 9027" for a Dial answered 3 s before the end
    assert got == [["200 result=-1\n"], ["200 result=1 (ANSWER)\n"], ["200 result=1 (34)\n"], ["200 result=1 (34)\n"]]
    assert (rec.variables["ANSWEREDTIME_MS"], rec.variables["RINGTIME"]) == ("34500", "0")
    assert rec.dials == [("PJSIP/1001", "ANSWER")]
    assert "agent:PJSIP/1001" in rec.destinations
    names = [e.name for e in rec.events]
    assert names.index("DialBegin") < names.index("DialEnd") < names.index("BridgeEnter") < names.index("BridgeLeave")


async def test_dial_busy_noanswer_unavailable() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        for target in ("Local/busy@agents,10", "Local/noanswer@agents,3", "PJSIP/9999,5"):
            got.append(await p.cmd("EXEC Dial " + target))
            got.append(await p.cmd("GET VARIABLE DIALSTATUS"))

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert got == [
        ["200 result=0\n"],
        ["200 result=1 (BUSY)\n"],
        ["200 result=0\n"],
        ["200 result=1 (NOANSWER)\n"],
        ["200 result=0\n"],
        ["200 result=1 (CHANUNAVAIL)\n"],
    ]


async def test_queue_caller_abandons() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Queue testq"))
        got.append([await p.line()])

    rec, _, _ = await run(handler, CallSpec(flow="x", script=[OnCommand("EXEC Queue"), Sleep(42), Hangup()]))
    assert got == [["200 result=-1\n"], ["HANGUP\n"]]
    abandon = rec.events_named("QueueCallerAbandon")[0]
    assert abandon["Queue"] == "testq" and abandon["HoldTime"] == "42"
    assert rec.ended.destination == "queue:testq" and rec.ended.by == "caller"


async def test_queue_member_answers_with_continue() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Queue agiq,c"))
        got.append(await p.cmd("GET VARIABLE QUEUESTATUS"))

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert got == [["200 result=0\n"], ["200 result=1 (CONTINUE)\n"]]
    assert [e.name for e in rec.events if e.name.startswith(("Queue", "Agent", "Dial", "BridgeEnter"))] == [
        "QueueCallerJoin",
        "AgentCalled",
        "DialBegin",
        "DialEnd",
        "QueueCallerLeave",
        "AgentConnect",
        "BridgeEnter",
        "BridgeEnter",
        "AgentComplete",
    ]  # the order of ami-15


async def test_park_timeout_comeback_and_retrieval() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Park default,t(30)"))
        got.append([await p.line()])

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert got == [["200 result=0\n"], ["HANGUP\n"]]
    assert rec.ended.by == "timeout" and rec.ended.destination == "parked:701"
    assert [e.name for e in rec.events if "Park" in e.name] == ["ParkedCall", "ParkedCallTimeOut"]
    comeback = [e for e in rec.events_named("Newexten") if e["Context"] == "parkedcallstimeout"]
    # the async-goto quirk: s,1 names the application that was running, then s,2 Hangup
    assert [(e["Priority"], e["Application"], e["AppData"]) for e in comeback] == [
        ("1", "Park", "default,t(30)"),
        ("2", "Hangup", ""),
    ]


async def test_mixmonitor_writes_wav_of_the_call_length(tmp_path: Path) -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd(f"EXEC MixMonitor {tmp_path}/call.wav,i(MMID)")
        await p.cmd('STREAM FILE vm-intro ""')
        await p.cmd("EXEC StopMixMonitor")  # EXEC does not expand ${MMID}

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    with wave.open(str(tmp_path / "call.wav")) as w:
        assert w.getnframes() == 45120  # 5.654 s of vm-intro in whole 20 ms frames
    assert rec.recordings[0].kind == "mixmonitor"
    assert [e.name for e in rec.events if e.name.startswith("MixMonitor")] == ["MixMonitorStart", "MixMonitorStop"]


async def test_mixmonitor_creates_its_directory_as_asterisk_does(tmp_path: Path) -> None:
    # app_mixmonitor makes the file's directory itself (unlike RECORD FILE); it starts (returns 0) even where it
    # cannot, and then nothing is written. The simulator creates directories only inside its mapped tree.
    replies: list[list[str]] = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        replies.append(await p.cmd("EXEC MixMonitor /var/spool/asterisk/monitor/2026/12/07/call.wav"))
        replies.append(await p.cmd(f"EXEC MixMonitor {tmp_path}/unmapped/missing/other.wav"))
        await p.cmd('STREAM FILE vm-intro ""')

    config = SimConfig(path_map={"/var/spool/asterisk/monitor": str(tmp_path / "spool")})
    rec, _, _ = await run(handler, CallSpec(flow="x"), config)
    assert replies == [["200 result=0\n"], ["200 result=0\n"]]
    with wave.open(str(tmp_path / "spool" / "2026" / "12" / "07" / "call.wav")) as w:
        assert w.getnframes() > 0
    assert not (tmp_path / "unmapped").exists()
    assert [r.kind for r in rec.recordings] == ["mixmonitor"]
    assert [e.name for e in rec.events if e.name.startswith("MixMonitor")] == ["MixMonitorStart", "MixMonitorStart"]


async def test_project_prompts_from_wav_and_text(tmp_path: Path) -> None:
    (tmp_path / "lt").mkdir()
    with wave.open(str(tmp_path / "lt" / "welcome.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 12000)
    sounds = SoundCatalog(prompts_dir=tmp_path, texts={"menu": "x" * 28}, strict=True)
    got = []

    async def handler(p: Peer) -> None:
        got.append(await p.cmd('STREAM FILE welcome ""'))
        got.append(await p.cmd('STREAM FILE menu ""'))
        got.append(await p.cmd('STREAM FILE nothing ""'))
        got.append(await p.cmd('STREAM FILE /srv/ivr/recordings/prompts/menu ""'))  # the service's prefix

    rec, _, _ = await run(handler, CallSpec(flow="x", language="lt"), config=SimConfig(sounds=sounds))
    assert got == [
        ["200 result=0 endpos=12000\n"],
        ["200 result=0 endpos=16000\n"],
        ["200 result=-1 endpos=0\n"],
        ["200 result=0 endpos=16000\n"],
    ]
    assert rec.agi_status == "FAILURE"


async def test_routes_and_env_block_of_a_did_call() -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("NOOP")

    cfg = SimConfig(routes={"+3705200000": Route(flow="main", query={"lang": "lt"}, args=("a b",))})
    rec, _, srv = await run(handler, CallSpec(did="+3705200000", caller_id="+37060000001"), config=cfg)
    env = srv.peers[0].env
    assert env["agi_network_script"] == "main?lang=lt"
    assert env["agi_channel"].startswith("PJSIP/trunk-")
    assert (env["agi_dnid"], env["agi_extension"], env["agi_callerid"], env["agi_arg_1"]) == (
        "+3705200000",
        "+3705200000",
        "+37060000001",
        "a b",
    )
    assert rec.env_lines()[0] == "agi_network: yes"


async def test_real_clock_short_call() -> None:
    got = []

    async def handler(p: Peer) -> None:
        got.append(await p.cmd('STREAM FILE beep ""'))

    rec, _, _ = await run(handler, CallSpec(flow="x", sends_media=True), clock=RealClock())
    assert got == [["200 result=0 endpos=3404\n"]]
    assert rec.duration >= 0.42


async def test_abandon_while_a_member_rings_gives_two_dialend_cancel() -> None:
    from ivr.sim import AgentSpec, QueueSpec

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Queue support")

    cfg = SimConfig()
    cfg.agents["slow"] = AgentSpec("slow", answer_after=8.0, talk=10.0)
    cfg.queues["support"] = QueueSpec("support", members=["Local/slow@agents"])
    rec, _, _ = await run(handler, CallSpec(flow="x", script=[OnCommand("EXEC Queue"), Sleep(3), Hangup()]), config=cfg)
    assert [e["DialStatus"] for e in rec.events_named("DialEnd")] == ["CANCEL", "CANCEL"]
    assert rec.events_named("QueueCallerAbandon")[0]["HoldTime"] == "3"


async def test_queue_rings_in_rounds_and_times_out() -> None:
    from ivr.sim import QueueSpec

    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Queue slowq,,,,12"))
        got.append(await p.cmd("GET VARIABLE QUEUESTATUS"))

    cfg = SimConfig()
    cfg.queues["slowq"] = QueueSpec("slowq", members=["Local/noanswer@agents"], member_timeout=5, retry=2)
    rec, _, _ = await run(handler, CallSpec(flow="x"), config=cfg)
    assert got == [["200 result=0\n"], ["200 result=1 (TIMEOUT)\n"]]
    names = [e.name for e in rec.events if e.name in ("AgentCalled", "AgentRingNoAnswer")]
    assert names == ["AgentCalled", "AgentRingNoAnswer", "AgentCalled", "AgentRingNoAnswer"]  # 0-5 s, 7-12 s
    assert [e["DialStatus"] for e in rec.events_named("DialEnd")] == ["NOANSWER", "NOANSWER"]


async def test_virtual_and_real_time_give_the_same_call() -> None:
    """The virtual clock's promise: the same script gives the same replies as in real time, only faster."""

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("GET DATA beep 800 3")
        await p.cmd("WAIT FOR DIGIT 300")
        await p.cmd("SAY DIGITS 12 \"\"")

    script = [NextPrompt(0.2), Press("4")]
    replies = []
    for clock in (VirtualClock(), RealClock()):
        rec, _, _ = await run(handler, CallSpec(flow="x", sends_media=True, script=script), clock=clock)
        replies.append(rec.replies())
    assert replies[0] == replies[1] == ["200 result=0", "200 result=4 (timeout)", "200 result=0", "200 result=0"]


async def test_music_on_hold_events() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("SET MUSIC ON nosuchclass"))
        got.append(await p.cmd('STREAM FILE beep ""'))  # stops the music
        got.append(await p.cmd("EXEC MusicOnHold default,3"))

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert got == [["200 result=0\n"], ["200 result=0 endpos=3404\n"], ["200 result=0\n"]]
    moh = [(e.name, e.get("Class")) for e in rec.events if e.name.startswith("MusicOnHold")]
    assert moh == [
        ("MusicOnHoldStart", "default"),
        ("MusicOnHoldStop", None),  # unknown class -> default
        ("MusicOnHoldStart", "default"),
        ("MusicOnHoldStop", None),
    ]


async def test_overlong_command_line_drops_the_session_like_asterisk() -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        p.writer.write(b"NOOP " + b"x" * 70000)  # no newline: more than the 64 KiB line buffer
        await p.writer.drain()
        assert await p.line() == ""  # Asterisk's side closed the socket

    rec, _, _ = await run(handler, CallSpec(flow="x"))
    assert rec.commands() == ["ANSWER"]
    assert rec.ended.during == "dialplan"

"""AMI server behaviour: login rules, originate outcomes, call control of IVR calls, queues, parking, ChanSpy.

Expected strings are the recorded ones (ami-10 .. ami-17).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.sim import AgentSpec, CallSpec, OnCommand, Route, SimConfig, SimulatedAsterisk, Sleep, VirtualClock
from ivr.sim.clock import RealClock

from .agi_peer import Peer, ScriptedAGIServer
from .ami_peer import AMIPeer


async def _sim(handler, config: SimConfig | None = None, clock=None):  # type: ignore[no-untyped-def]
    srv = ScriptedAGIServer(handler)
    await srv.__aenter__()
    sim = SimulatedAsterisk(config or SimConfig(ami_auth_failure_delay=0.01), clock=clock or VirtualClock())
    await sim.start(("127.0.0.1", srv.port))
    return sim, srv


async def _idle(p: Peer) -> None:
    await p.cmd("ANSWER")
    await p.line()  # wait for HANGUP


async def test_login_rules_and_errors() -> None:
    sim, srv = await _sim(_idle)
    try:
        a = await AMIPeer.connect(sim.ami_port, login=False)
        r = await a.action("Ping")
        assert (r["Response"], r["Message"]) == ("Error", "Permission denied")
        r = await a.action("Login", [("Username", "ivr"), ("Secret", "bad")])
        assert (r["Response"], r["Message"]) == ("Error", "Authentication failed")
        assert await a.reader.read() == b""  # Asterisk closes after a failed login
        b = await AMIPeer.connect(sim.ami_port)
        assert b.banner is not None and b.banner.text == "Asterisk Call Manager/11.0.0"
        assert (await b.event("FullyBooted"))["Status"] == "Fully Booted"
        r = await b.action("NoSuchAction")
        assert r["Message"] == (
            "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands."
        )
        assert (await b.action("Hangup"))["Message"] == "No channel specified"
        assert (await b.action("Hangup", [("Channel", "Local/nothing-here-00000000;1")]))[
            "Message"
        ] == "No such channel"
        assert (await b.action("Getvar", [("Channel", "Local/x-00000000;1")]))["Message"] == "No variable specified"
        assert (await b.action("Originate", [("Context", "idle-leg"), ("Exten", "s"), ("Priority", "1")]))[
            "Message"
        ] == "Channel not specified"
        assert (await b.action("Originate", [("Channel", "Local/s@idle-leg"), ("Exten", "s")]))[
            "Message"
        ] == "Originate with 'Exten' requires 'Context' and 'Priority'"
        assert (await b.action("QueueAdd", [("Queue", "testq")]))["Message"] == "'Interface' not specified."
        assert (await b.action("Park"))["Message"] == "Channel not specified"
        r = await b.action("Setvar", [("Variable", "GLOBALTEST"), ("Value", "global value")])
        assert r["Message"] == "Variable Set"
        r = await b.action("Getvar", [("Variable", "GLOBALTEST")])
        assert (r["Variable"], r["Value"]) == ("GLOBALTEST", "global value")
        r = await b.action("Command", [("Command", "no such cli command")])
        assert r["Output"] == (
            "No such command 'no such cli command' (type 'core show help no such' for other possible commands)"
        )
        r = await b.action("CoreSettings")
        assert (r["AMIversion"], r["AsteriskVersion"], r["SoundsSearchCustomDir"]) == ("11.0.0", "22.10.1", "No")
        r = await b.action("CoreStatus")
        assert r["CoreCurrentCalls"] == "0" and len(r["CoreStartupTime"]) == 8
        r = await b.action("Command", [("Command", "core show version")])
        assert r["Output"].startswith("Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux")
        r = await b.action("Logoff")
        assert (r["Response"], r["Message"]) == ("Goodbye", "Thanks for all the fish.")
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_originate_outcomes() -> None:
    sim, srv = await _sim(_idle)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        for chan, reason in (
            ("Local/answer2s@agents", "4"),
            ("Local/busy@agents", "5"),
            ("Local/noanswer@agents", "3"),
            ("Local/nosuchexten@agents", "0"),
        ):
            r = await c.action(
                "Originate",
                [
                    ("Channel", chan),
                    ("Application", "Playback"),
                    ("Data", "beep"),
                    ("Async", "true"),
                    ("Timeout", "3000"),
                ],
            )
            assert r["Message"] == "Originate successfully queued"
            ev = await c.event("OriginateResponse", ActionID=r["ActionID"])
            assert ev["Reason"] == reason
            assert ev["Response"] == ("Success" if reason == "4" else "Failure")
        r = await c.action("Originate", [("Channel", "Local/busy@agents"), ("Application", "Wait"), ("Data", "1")])
        assert (r["Response"], r["Message"]) == ("Error", "Originate failed")
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_originate_into_a_flow_runs_fastagi() -> None:
    envs = []

    async def handler(p: Peer) -> None:
        envs.append(p.env)
        await p.cmd("ANSWER")

    cfg = SimConfig(routes={"callback": Route(flow="callback", context="ivr-callback")})
    cfg.agents["+37060000009"] = AgentSpec("+37060000009", answer_after=2.0, talk=None)
    sim, srv = await _sim(handler, cfg)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        r = await c.action(
            "Originate",
            [
                ("Channel", "PJSIP/+37060000009@trunk"),
                ("Context", "ivr-callback"),
                ("Exten", "callback"),
                ("Priority", "1"),
                ("Async", "true"),
                ("CallerID", '"Shop" <+3705200000>'),
            ],
        )
        ev = await c.event("OriginateResponse", ActionID=r["ActionID"])
        assert ev["Reason"] == "4"
        await c.event("Hangup", Channel=ev["Channel"])
        assert envs and envs[0]["agi_network_script"] == "callback"
        assert envs[0]["agi_channel"] == ev["Channel"]
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_redirect_ivr_call_to_parking_then_retrieve() -> None:
    lines = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        lines.append(await p.cmd('STREAM FILE demo-congrats ""'))
        lines.append([await p.line()])

    sim, srv = await _sim(handler, clock=RealClock())
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="main", sends_media=True))
        await c.event("AGIExecStart", Command='STREAM FILE demo-congrats ""')
        r = await c.action(
            "Redirect", [("Channel", call.name), ("Context", "parkedcalls"), ("Exten", "700"), ("Priority", "1")]
        )
        assert r["Message"] == "Redirect successful"
        parked = await c.event("ParkedCall")
        assert parked["ParkeeChannel"] == call.name and parked["ParkingSpace"] == "701"
        _, items = await c.list_action("ParkedCalls", "ParkedCallsComplete")
        assert [m["ParkingSpace"] for m in items] == ["701"]
        r = await c.action(
            "Originate",
            [("Channel", "Local/701@parkedcalls"), ("Application", "Wait"), ("Data", "0.2"), ("Async", "true")],
        )
        await c.event("UnParkedCall")
        rec = await call.finished(timeout=5)
        assert lines[0][0].startswith("200 result=-1 endpos=") and lines[1] == ["HANGUP\n"]
        assert rec.destinations[-1] == "parked:701"
        assert rec.ended.by == "service" and rec.ended.during == "parked"
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_blind_transfer_of_a_bridged_caller_and_chanspy() -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Dial PJSIP/1001")

    cfg = SimConfig(ami_auth_failure_delay=0.01)
    cfg.agents["1001"] = AgentSpec("1001", answer_after=0.0, talk=None)
    cfg.agents["1002"] = AgentSpec("1002", answer_after=0.0, talk=0.3)
    sim, srv = await _sim(handler, cfg, clock=RealClock())
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="main", sends_media=True))
        await c.event("BridgeEnter", Channel=call.name)
        r = await c.action(
            "Originate",
            [
                ("Channel", "PJSIP/supervisor"),
                ("Application", "ChanSpy"),
                ("Data", call.name + ",qw"),
                ("Async", "true"),
            ],
        )
        spy = await c.event("ChanSpyStart")
        assert spy["SpyeeChannel"] == call.name
        r = await c.action("BlindTransfer", [("Channel", call.name), ("Context", "agents"), ("Exten", "1002")])
        assert r["Message"] == "Transfer succeeded"
        rec = await call.finished(timeout=5)
        assert rec.dials == [("PJSIP/1001", "ANSWER"), ("Local/1002@agents", "ANSWER")]
        assert rec.destinations[-1] == "agent:Local/1002@agents"
        assert rec.variables["BLINDTRANSFER"].startswith("PJSIP/1001-")  # the partner, as Asterisk sets it (ami-16)
        assert rec.spied == ["whisper"]
        assert (await c.event("ChanSpyStop"))["SpyeeChannel"] == call.name
        r = await c.action(
            "BlindTransfer", [("Channel", "Local/nosuch-00000000;1"), ("Context", "phones"), ("Exten", "carol")]
        )
        assert r["Response"] == "Error"
        r = await c.action(
            "Atxfer", [("Channel", "Local/nosuch-00000000;1"), ("Exten", "carol"), ("Context", "phones")]
        )
        assert r["Message"] == "Channel specified does not exist"
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_queue_actions_with_recorded_strings() -> None:
    sim, srv = await _sim(_idle)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        add = [
            ("Queue", "testq"),
            ("Interface", "Local/answer2s@agents"),
            ("Paused", "true"),
            ("Reason", "initial pause"),
            ("MemberName", "Agent One"),
        ]
        assert (await c.action("QueueAdd", add))["Message"] == "Added interface to queue"
        ev = await c.event("QueueMemberAdded")
        assert (ev["MemberName"], ev["Paused"], ev["PausedReason"]) == ("Agent One", "1", "initial pause")
        assert (await c.action("QueueAdd", add))["Message"] == "Unable to add interface: Already there"
        r = await c.action(
            "QueuePause", [("Queue", "testq"), ("Interface", "Local/answer2s@agents"), ("Paused", "false")]
        )
        assert r["Message"] == "Interface unpaused successfully"
        _, items = await c.list_action("QueueSummary", "QueueSummaryComplete", [("Queue", "testq")])
        assert (items[0]["LoggedIn"], items[0]["Available"]) == ("1", "1")
        _, items = await c.list_action("QueueStatus", "QueueStatusComplete", [("Queue", "testq")])
        assert [m["Event"] for m in items] == ["QueueParams", "QueueMember"]
        r = await c.action("QueueRemove", [("Queue", "testq"), ("Interface", "Local/answer2s@agents")])
        assert r["Message"] == "Removed interface from queue"
        r = await c.action("QueueRemove", [("Queue", "testq"), ("Interface", "Local/answer2s@agents")])
        assert r["Message"] == "Unable to remove interface: Not there"
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_member_logging_in_serves_a_waiting_caller() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Queue testq,c"))
        got.append(await p.cmd("GET VARIABLE QUEUESTATUS"))

    sim, srv = await _sim(handler, clock=RealClock())
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="main", sends_media=True))
        await c.event("QueueCallerJoin")
        sim.config.agents["quick"] = AgentSpec("quick", answer_after=0.0, talk=0.1)
        await c.action("QueueAdd", [("Queue", "testq"), ("Interface", "Local/quick@agents")])
        rec = await call.finished(timeout=5)
        assert got == [["200 result=0\n"], ["200 result=1 (CONTINUE)\n"]]
        assert "queue:testq:Local/quick@agents" in rec.destinations
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_hangup_regex_status_and_mixmonitor(tmp_path: Path) -> None:
    sim, srv = await _sim(_idle, clock=RealClock())
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="main", sends_media=True, script=[OnCommand("ANSWER"), Sleep(30)]))
        await c.event("AGIExecEnd", Command="ANSWER")
        r = await c.action(
            "MixMonitor", [("Channel", call.name), ("File", str(tmp_path / "m.wav")), ("Options", "i(MMID)")]
        )
        assert r["MixMonitorID"].startswith("0x")
        r = await c.action("Getvar", [("Channel", call.name), ("Variable", "MMID")])
        assert r["Value"] == (await c.action("Getvar", [("Channel", call.name), ("Variable", "MMID")]))["Value"]
        _, items = await c.list_action("Status", "StatusComplete", [("Channel", call.name)])
        assert items[0]["Privilege"] == "Call" and list(items[0].items())[-1][0] == "ActionID"
        r = await c.action("StopMixMonitor", [("Channel", call.name)])
        assert r["Response"] == "Success"
        r = await c.action("StopMixMonitor", [("Channel", call.name)])
        assert r["Message"] == "Could not stop monitoring channel"
        _, hung = await c.list_action("Hangup", "ChannelsHungupListComplete", [("Channel", "/^PJSIP\\/trunk-/")])
        assert [m["Channel"] for m in hung] == [call.name]
        rec = await call.finished(timeout=5)
        assert rec.ended.by == "ami"
        assert (tmp_path / "m.wav").exists()
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_events_off_and_mask() -> None:
    sim, srv = await _sim(_idle)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        r = await c.action("Events", [("EventMask", "off")])
        assert r["Events"] == "Off"
        o = await AMIPeer.connect(sim.ami_port)
        await o.action("UserEvent", [("UserEvent", "WhileOff")])
        r = await c.action("Events", [("EventMask", "user")])
        assert r["Events"] == "On"
        await o.action("UserEvent", [("UserEvent", "WhileOn")])
        ev = await c.event("UserEvent")
        assert ev["UserEvent"] == "WhileOn"
        await asyncio.sleep(0)
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_core_stop_now_hangs_up_calls_and_says_shutdown() -> None:
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("WAIT FOR DIGIT 30000"))
        got.append([await p.line()])
        got.append(await p.cmd("GET VARIABLE CALLERID(num)"))

    cfg = SimConfig(ami_auth_failure_delay=0.01, shutdown_grace=2.0)
    sim, srv = await _sim(handler, cfg, clock=RealClock())
    try:
        c = await AMIPeer.connect(sim.ami_port)
        quiet = await AMIPeer.connect(sim.ami_port, login=False)
        await quiet.action("Login", [("Username", "ivr"), ("Secret", "ivrsecret"), ("Events", "off")])
        call = await sim.place_call(CallSpec(flow="main", sends_media=True))
        await c.event("AGIExecStart", Command="WAIT FOR DIGIT 30000")
        r = await c.action("Command", [("Command", "core stop now")])
        assert r["Response"] == "Success"
        ev = await c.event("Shutdown")
        assert (ev["Shutdown"], ev["Restart"]) == ("Cleanly", "False")
        assert await c.reader.read() == b""  # then Asterisk closes the socket, no Goodbye
        assert await quiet.reader.read() == b""  # events off: no bytes, just EOF
        rec = await call.finished(timeout=5)
        assert got == [["200 result=-1\n"], ["HANGUP\n"], ["200 result=1 (5551234)\n"]]
        assert rec.ended.by == "shutdown"
    finally:
        await sim.stop()
        await srv.__aexit__()

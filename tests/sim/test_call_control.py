"""Call control the service's API relies on: hold (Dual Redirect into ivr-hold / ivr-hold-wait), resume (AMI Bridge),
ParkedCall on an originated leg, and the other modelled ivr contexts (ivr-queue).

Bridge's strings are main/features.c action_bridge's (no recording has an AMI Bridge); the retrieval's event order
is ami-13's / agi-07.ami's.
"""

from __future__ import annotations

from ivr.sim import AgentSpec, CallSpec, QueueSpec, SimConfig, SimulatedAsterisk
from ivr.sim.clock import RealClock
from ivr.sim.dialplan import lookup
from ivr.sim.sounds import SoundCatalog

from .agi_peer import Peer, ScriptedAGIServer
from .ami_peer import AMIPeer


async def _dial_talk(p: Peer) -> None:
    await p.cmd("ANSWER")
    await p.cmd("EXEC Dial Local/talk@agents")


async def _start(handler, config: SimConfig | None = None):  # type: ignore[no-untyped-def]
    srv = ScriptedAGIServer(handler)
    await srv.__aenter__()
    sim = SimulatedAsterisk(config or SimConfig(ami_auth_failure_delay=0.01), clock=RealClock())
    await sim.start(("127.0.0.1", srv.port))
    return sim, srv


def test_the_modelled_contexts_follow_extensions_ivr_conf() -> None:
    assert [p.app for p in lookup("ivr-hold", "s") or ()] == ["MusicOnHold"]
    assert [p.app for p in lookup("ivr-hold-wait", "s") or ()] == ["Wait", "Hangup"]
    assert [p.app for p in lookup("ivr-queue", "sales-1") or ()] == ["NoOp", "Queue", "Hangup"]
    assert lookup("ivr-queue", "x") is None  # _[-A-Za-z0-9_]. needs two characters
    dial = (lookup("ivr-dial-out", "+37060000001") or ())[0]
    assert (dial.app, dial.data(None, "+37060000001")) == ("Dial", "PJSIP/37060000001@trunk,40")  # type: ignore[arg-type]
    assert lookup("ivr-hold", "1") is None and lookup("from-internal", "s") is None


async def test_bridge_action_errors() -> None:
    sim, srv = await _start(_dial_talk)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        r = await c.action("Bridge", [("Channel1", "PJSIP/x")])
        assert (r["Response"], r["Message"]) == ("Error", "Missing channel parameter in request")
        r = await c.action("Bridge", [("Channel1", "PJSIP/nobody"), ("Channel2", "PJSIP/x")])
        assert r["Message"] == "Channel1 does not exist: PJSIP/nobody"
        call = await sim.place_call(CallSpec(flow="agent"))
        enter = await c.event("BridgeEnter", Channel=call.name)
        r = await c.action("Bridge", [("Channel1", call.name), ("Channel2", "PJSIP/nobody")])
        assert r["Message"] == "Channel2 does not exist: PJSIP/nobody"
        agent = sim.pbx.channels[next(n for n in sim.pbx.channels if n.startswith("Local/talk@agents"))]
        # a channel in a Dial bridge: the simulator only takes channels out of MusicOnHold/Wait (documented)
        r = await c.action("Bridge", [("Channel1", call.name), ("Channel2", agent.name)])
        assert r["Message"] == f"Unable to add Channel1 to bridge: {call.name}"
        assert enter["BridgeNumChannels"] == "2"
        call.hangup()
        await call.finished(timeout=5)
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_hold_by_dual_redirect_then_resume_by_bridge() -> None:
    sim, srv = await _start(_dial_talk)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="agent"))
        await c.event("BridgeEnter", Channel=call.name)
        agent = next(ch for n, ch in sim.pbx.channels.items() if n.startswith("Local/talk@agents") and n.endswith(";1"))
        r = await c.action("Setvar", [("Channel", call.name), ("Variable", "IVR_MOH_CLASS"), ("Value", "nosuch")])
        assert r["Response"] == "Success"
        r = await c.action(
            "Redirect",
            [
                ("Channel", call.name),
                ("Context", "ivr-hold"),
                ("Exten", "s"),
                ("Priority", "1"),
                ("ExtraChannel", agent.name),
                ("ExtraContext", "ivr-hold-wait"),
                ("ExtraExten", "s"),
                ("ExtraPriority", "1"),
            ],
        )
        assert r["Message"] == "Dual Redirect successful"
        moh = await c.event("MusicOnHoldStart", Channel=call.name)
        assert moh["Class"] == "default"  # an unknown class plays default (agi-07)
        assert not agent.hungup and agent.context == "ivr-hold-wait" and agent.moh_class is None
        r = await c.action("Bridge", [("Channel1", call.name), ("Channel2", agent.name), ("Tone", "no")])
        assert (r["Response"], r["Message"]) == ("Success", "Channels have been bridged")
        created = await c.event("BridgeCreate")
        await c.event("MusicOnHoldStop", Channel=call.name)
        first = await c.event("BridgeEnter", BridgeUniqueid=created["BridgeUniqueid"])
        second = await c.event("BridgeEnter", BridgeUniqueid=created["BridgeUniqueid"])
        assert [(first["Channel"], first["BridgeNumChannels"]), (second["Channel"], second["BridgeNumChannels"])] == [
            (call.name, "1"),
            (agent.name, "2"),
        ]
        assert call.channel is not None and call.channel.bridge_peer is agent
        r = await c.action("Hangup", [("Channel", agent.name), ("Cause", "16")])  # the agent hangs up
        leave = await c.event("BridgeLeave", BridgeUniqueid=created["BridgeUniqueid"])
        assert (leave["Channel"], leave["BridgeNumChannels"]) == (agent.name, "1")
        leave = await c.event("BridgeLeave", BridgeUniqueid=created["BridgeUniqueid"])
        assert (leave["Channel"], leave["BridgeNumChannels"]) == (call.name, "0")
        await c.event("BridgeDestroy", BridgeUniqueid=created["BridgeUniqueid"])
        rec = await call.finished(timeout=5)  # ivr-hold has no s,2: the caller hangs up after it
        assert rec.destinations[-1] == "hold"
        assert rec.ended.during == "dialplan ivr-hold,s"
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_parked_call_app_on_an_originated_leg_and_on_an_empty_space() -> None:
    async def park(p: Peer) -> None:
        await p.cmd("ANSWER")
        assert await p.cmd("EXEC Park default,s") == ["200 result=-1\n"]
        assert await p.cmd("CHANNEL STATUS") == ["200 result=6\n"]  # agi-07: still up after Park's -1

    config = SimConfig(ami_auth_failure_delay=0.01)
    config.agents["1002"] = AgentSpec("1002", answer_after=0.0, talk=None)
    config.sounds = SoundCatalog(extra_samples={"pbx-invalidpark": 800})  # 0.1 s: a real-time test
    sim, srv = await _start(park, config)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        r = await c.action(
            "Originate",
            [("Channel", "PJSIP/1002"), ("Application", "ParkedCall"), ("Data", "default,701"), ("Async", "true")],
        )
        assert r["Response"] == "Success"
        answered = await c.event("OriginateResponse")
        assert answered["Response"] == "Success"
        hung = await c.event("Hangup", Channel=answered["Channel"])  # empty space: pbx-invalidpark, hangup
        assert hung["Cause"] == "16"
        call = await sim.place_call(CallSpec(flow="parking"))
        await c.event("ParkedCall", ParkeeChannel=call.name)
        await c.action(
            "Originate",
            [
                ("Channel", "PJSIP/1002"),
                ("Application", "ParkedCall"),
                ("Data", "default,701"),
                ("Async", "true"),
                ("ChannelId", "leg-1"),
            ],
        )
        unparked = await c.event("UnParkedCall")
        assert (unparked["ParkeeChannel"], unparked["RetrieverUniqueid"]) == (call.name, "leg-1")
        enter = await c.event("BridgeEnter", Uniqueid="leg-1")
        assert enter["Linkedid"] == call.uniqueid and enter["BridgeNumChannels"] == "2"
        await c.action("Hangup", [("Channel", enter["Channel"]), ("Cause", "16")])
        rec = await call.finished(timeout=5)
        assert srv.errors == []
        assert [e["Uniqueid"] for e in rec.events_named("BridgeLeave")] == ["leg-1", call.uniqueid]
        assert rec.destinations[-1] == "parked:701"
    finally:
        await sim.stop()
        await srv.__aexit__()


async def test_redirect_into_ivr_queue_runs_queue() -> None:
    async def idle(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Wait 30")

    config = SimConfig(ami_auth_failure_delay=0.01)
    config.agents["quick"] = AgentSpec("quick", answer_after=0.0, talk=0.2)
    config.queues["fastq"] = QueueSpec("fastq", members=["Local/quick@agents"])
    sim, srv = await _start(idle, config)
    try:
        c = await AMIPeer.connect(sim.ami_port)
        call = await sim.place_call(CallSpec(flow="idle"))
        await c.event("AGIExecStart", Command="EXEC Wait 30")
        r = await c.action(
            "Redirect", [("Channel", call.name), ("Context", "ivr-queue"), ("Exten", "fastq"), ("Priority", "1")]
        )
        assert r["Message"] == "Redirect successful"
        joined = await c.event("QueueCallerJoin", Channel=call.name)
        assert joined["Queue"] == "fastq"
        await c.event("AgentConnect", Channel=call.name)
        rec = await call.finished(timeout=10)  # the member talks 0.2 s, then Hangup() at priority 3
        assert "queue:fastq:Local/quick@agents" in rec.destinations
        assert rec.variables.get("QUEUESTATUS") is None  # -1 after a member hangup without option c
    finally:
        await sim.stop()
        await srv.__aexit__()

"""A parked caller nobody retrieved comes back: dialplans/extensions_ivr.conf's [ivr-park-comeback] on the simulator.

The flow parks with `EXEC Park "default,st(6)c(ivr-park-comeback\\,s\\,1)"` after setting IVR_COMEBACK=<flow>:<node>.
On the time-out the first AGI gets `200 result=0` then `HANGUP` (agi-07c); after it ends the same channel runs
ivr-park-comeback: s,1 NoOp (announced by the Newexten naming Park, none of its own), s,2 GotoIf (empty
IVR_COMEBACK -> ivr-enter,fallback,1), s,3-5 Set, s,6 AGI(agi://${IVR_SERVER}/<flow>?node=<node>): a second
FastAGI session on the same channel, then the report (ivr.dialplan): s,7-8 GotoIf (OK/PARKED, AGENT with a
connected call -> ivr-enter,done,1), s,9 Goto(ivr-enter,fallback,1) for anything else.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import pytest

from ivr.sim import CallSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim.call import CallRecord

from .agi_peer import Peer, ScriptedAGIServer

FLOW_PARK = r'EXEC Park "default,st(6)c(ivr-park-comeback\\,s\\,1)"'  # what the flow engine sends
PARK_APPDATA = r"default,st(6)c(ivr-park-comeback\,s\,1)"


def parks(
    comeback: str | None, then: Callable[[Peer], Awaitable[None]] | None = None, got: list[list[str]] | None = None
) -> Callable[[Peer], Awaitable[None]]:
    """First session: answer, set IVR_COMEBACK (unless None), park until the time-out; comeback session: `then`."""

    async def handler(p: Peer) -> None:
        if "?node=" in p.env["agi_network_script"]:
            if then is not None:
                await then(p)
            return
        await p.cmd("ANSWER")
        if comeback is not None:
            await p.cmd(f'SET VARIABLE IVR_COMEBACK "{comeback}"')
        reply = await p.cmd(FLOW_PARK)
        notice = await p.line()
        if got is not None:
            got.extend([reply, [notice]])

    return handler


async def run(
    handler: Callable[[Peer], Awaitable[None]], config: SimConfig | None = None
) -> tuple[CallRecord, ScriptedAGIServer]:
    async with ScriptedAGIServer(handler) as srv:
        sim = SimulatedAsterisk(config or SimConfig(), clock=VirtualClock())
        await sim.start(("127.0.0.1", srv.port), ami=False)
        try:
            call = await sim.place_call(CallSpec(flow="main", caller_id="+37060000001"))
            rec = await call.finished(timeout=10)
        finally:
            await sim.stop()
    assert not srv.errors, srv.errors
    return rec, srv


def newexten(rec: CallRecord, context: str) -> list[tuple[str, str, str, str]]:
    return [
        (e["Exten"], e["Priority"], e["Application"], e["AppData"])
        for e in rec.events_named("Newexten")
        if e["Context"] == context
    ]


def agistatus(rec: CallRecord) -> list[str]:
    return [e["Value"] for e in rec.events_named("VarSet") if e["Variable"] == "AGISTATUS"]


async def test_comeback_runs_a_second_fastagi_session_at_the_node() -> None:
    got: list[list[str]] = []
    seen: list[list[str]] = []

    async def back_in_the_flow(p: Peer) -> None:
        seen.append(await p.cmd("CHANNEL STATUS"))  # the channel is up again: not dead mode
        seen.append(await p.cmd('STREAM FILE beep ""'))
        seen.append(await p.cmd('SET VARIABLE IVR_STATUS "OK"'))

    rec, srv = await run(parks("main:general_voicemail", back_in_the_flow, got))
    assert got == [["200 result=0\n"], ["HANGUP\n"]]  # agi-07c: the first session sees a hangup
    assert seen == [["200 result=6\n"], ["200 result=0 endpos=3404\n"], ["200 result=1\n"]]

    first, second = srv.peers[0].env, srv.peers[1].env
    port = srv.port
    assert second["agi_network_script"] == "main?node=general_voicemail"
    assert second["agi_request"] == f"agi://127.0.0.1:{port}/main?node=general_voicemail"
    for same in ("agi_channel", "agi_uniqueid", "agi_callerid", "agi_dnid", "agi_language", "agi_type"):
        assert second[same] == first[same], same
    assert (second["agi_context"], second["agi_extension"], second["agi_priority"]) == ("ivr-park-comeback", "s", "6")
    assert second["agi_threadid"] != first["agi_threadid"]

    assert newexten(rec, "ivr-park-comeback") == [
        ("s", "1", "Park", PARK_APPDATA),  # at the time-out (async-goto quirk)
        ("s", "2", "GotoIf", "0?ivr-enter,fallback,1"),  # s,1's NoOp ran without a Newexten
        ("s", "3", "Set", "IVR_FLOW=main"),
        ("s", "4", "Set", "IVR_STATUS="),
        ("s", "5", "Set", "IVR_TRANSFERRED="),
        ("s", "6", "AGI", f"agi://127.0.0.1:{port}/main?node=general_voicemail"),
        ("s", "7", "GotoIf", "1?ivr-enter,done,1"),  # IVR_STATUS=OK: the flow reported
    ]
    assert newexten(rec, "ivr-enter") == [
        ("done", "1", "NoOp", "ivr: done, IVR_STATUS=OK IVR_OUTCOME="),
        ("done", "2", "Hangup", ""),
    ]
    assert agistatus(rec) == ["HANGUP", "SUCCESS"]
    # the first AGISTATUS is set before the dialplan goes on (agi-07c: VarSet, then the next Newexten)
    names = [(e.name, e.get("Priority")) for e in rec.events if e.get("Context") == "ivr-park-comeback"]
    assert names.index(("VarSet", "1")) < names.index(("Newexten", "2"))
    assert {e["Uniqueid"] for e in rec.events if e.get("Channel") == rec.channel} == {rec.uniqueid}

    assert [(r.context, r.exten, r.priority, r.script, r.status) for r in rec.agi_runs] == [
        ("ivr-inbound", "s", 2, "main", "HANGUP"),
        ("ivr-park-comeback", "s", 6, "main?node=general_voicemail", "SUCCESS"),
    ]
    assert rec.session_commands(0)[-1] == FLOW_PARK
    assert rec.session_commands(1) == ["CHANNEL STATUS", 'STREAM FILE beep ""', 'SET VARIABLE IVR_STATUS "OK"']
    assert rec.session_lines(1)[0].text.startswith("agi_network: yes\n")
    assert not [line for line in rec.replies() if line.startswith("agi_")]
    assert rec.agi_status == "SUCCESS" and rec.variables["IVR_FLOW"] == "main"
    assert rec.destinations == ["ivr", "parked:701", "ivr"]
    assert (rec.ended.by, rec.ended.during) == ("service", "dialplan ivr-enter,done")


async def test_comeback_text_is_filtered_before_it_reaches_the_agi_url() -> None:
    rec, srv = await run(parks("ma in;x/..:gen/../eral?a=b&c"))
    assert srv.peers[1].env["agi_network_script"] == "mainx?node=generalabc"
    assert ("s", "3", "Set", "IVR_FLOW=mainx") in newexten(rec, "ivr-park-comeback")


async def test_without_ivr_comeback_the_caller_goes_to_the_operator_fallback() -> None:
    config = SimConfig(globals={"IVR_OPERATOR": "PJSIP/noanswer"})
    rec, srv = await run(parks(None), config)
    assert len(srv.peers) == 1 and len(rec.agi_runs) == 1  # no second FastAGI session
    assert newexten(rec, "ivr-park-comeback") == [
        ("s", "1", "Park", PARK_APPDATA),
        ("s", "2", "GotoIf", "1?ivr-enter,fallback,1"),
    ]
    assert newexten(rec, "ivr-enter") == [
        ("fallback", "1", "NoOp", "ivr unavailable: AGISTATUS=HANGUP IVR_STATUS="),
        ("fallback", "2", "Answer", ""),
        ("fallback", "3", "Playback", "pls-hold-while-try"),
        ("fallback", "4", "Dial", "PJSIP/noanswer,60"),
        ("fallback", "5", "Playback", "sorry-youre-having-problems"),
        ("fallback", "6", "Hangup", ""),
    ]
    assert rec.dials == [("PJSIP/noanswer", "NOANSWER")]
    assert (rec.ended.by, rec.ended.during) == ("service", "dialplan ivr-enter,fallback")


async def test_fallback_reaches_the_operator_who_answers() -> None:
    rec, _ = await run(parks(""))  # set but empty: the same as unset
    assert rec.dials == [("Local/answer2s@agents", "ANSWER")]  # SimConfig's default IVR_OPERATOR
    assert rec.destinations[-1] == "agent:Local/answer2s@agents"
    # Dial returns -1 after the bridged call: the dialplan ends there (no sorry-youre-having-problems)
    assert [p for _, p, _, _ in newexten(rec, "ivr-enter")] == ["1", "2", "3", "4"]


@pytest.mark.parametrize("status", ["NOROUTE", "ERROR"])
async def test_comeback_flow_without_route_or_failing_goes_to_the_fallback(status: str) -> None:
    async def refuses(p: Peer) -> None:
        await p.cmd(f'SET VARIABLE IVR_STATUS "{status}"')

    rec, _ = await run(parks("gone:node", refuses))
    goto_ifs = [(prio, data) for _, prio, app, data in newexten(rec, "ivr-park-comeback") if app == "GotoIf"]
    assert [(prio, data[0]) for prio, data in goto_ifs[1:]] == [("7", "0"), ("8", "0")]  # no positive report
    assert ("s", "9", "Goto", "ivr-enter,fallback,1") in newexten(rec, "ivr-park-comeback")
    assert newexten(rec, "ivr-enter")[0] == (
        "fallback",
        "1",
        "NoOp",
        f"ivr unavailable: AGISTATUS=SUCCESS IVR_STATUS={status}",
    )


async def test_service_down_at_comeback_is_agistatus_failure_then_fallback() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = SimConfig(globals={"IVR_OPERATOR": "PJSIP/busy", "IVR_SERVER": f"127.0.0.1:{dead}"})
    # the inbound AGI still goes to the scripted server (sim.start); only ${IVR_SERVER} of the dialplan is down
    rec, srv = await run(parks("main:general_voicemail"), config)
    assert len(srv.peers) == 1
    assert [(r.script, r.status) for r in rec.agi_runs] == [
        ("main", "HANGUP"),
        ("main?node=general_voicemail", "FAILURE"),
    ]
    assert ("s", "9", "Goto", "ivr-enter,fallback,1") in newexten(rec, "ivr-park-comeback")
    assert rec.dials == [("PJSIP/busy", "BUSY")]

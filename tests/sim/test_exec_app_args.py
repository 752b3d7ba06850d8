"""EXEC'd applications read their data as Asterisk does: Park's c() comeback, escaped commas, quotes, parentheses.

The wire lines are the ones the flow engine sends (ivr/agi/session.py escapes commas, quotes and backslashes for
the application's splitter; res_agi's parse_args removes one level of backslashes first).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.sim import CallSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim.appargs import UnmodelledGoto

from .agi_peer import Peer, ScriptedAGIServer

FLOW_PARK = r'EXEC Park "default,st(6)c(ivr-park-comeback\\,s\\,1)"'  # as on the wire: two backslashes


async def run(handler, spec: CallSpec | None = None):  # type: ignore[no-untyped-def]
    async with ScriptedAGIServer(handler) as srv:
        sim = SimulatedAsterisk(SimConfig(), clock=VirtualClock())
        await sim.start(("127.0.0.1", srv.port), ami=False)
        try:
            call = await sim.place_call(spec or CallSpec(flow="x"))
            rec = await call.finished(timeout=10)
        finally:
            await sim.stop()
    assert not srv.errors, srv.errors
    return rec


def park_then_hangup_notice(got: list[list[str]], line: str):  # type: ignore[no-untyped-def]
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd(line))
        got.append([await p.line()])

    return handler


async def test_park_c_option_sends_the_timed_out_call_to_the_named_location() -> None:
    got: list[list[str]] = []
    rec = await run(park_then_hangup_notice(got, FLOW_PARK))
    assert got == [["200 result=0\n"], ["HANGUP\n"]]  # agi-07: result=0 at the time-out, then HANGUP
    # no IVR_COMEBACK on the channel: ivr-park-comeback sends the caller to ivr-enter,fallback (the operator)
    assert rec.ended.during == "dialplan ivr-enter,fallback"
    assert rec.dials == [("Local/answer2s@agents", "ANSWER")]
    (timeout,) = rec.events_named("ParkedCallTimeOut")
    assert (timeout["ParkeeContext"], timeout["ParkeeExten"], timeout["ParkeePriority"]) == (
        "ivr-park-comeback",
        "s",
        "1",
    )
    assert timeout["ParkingDuration"] == "6"  # st(6): silent, own 6 s timeout
    comeback = [e for e in rec.events_named("Newexten") if e["Context"] == "ivr-park-comeback"]
    # the async-goto quirk of agi-07c: s,1 names Park (AppData as res_agi passed it, one backslash left)
    # then s,1's NoOp runs without a Newexten of its own (agi-07c) and s,2's GotoIf takes the empty IVR_COMEBACK
    assert [(e["Exten"], e["Priority"], e["Application"], e["AppData"]) for e in comeback] == [
        ("s", "1", "Park", r"default,st(6)c(ivr-park-comeback\,s\,1)"),
        ("s", "2", "GotoIf", "1?ivr-enter,fallback,1"),
    ]
    assert not [e for e in rec.events if e.get("Context") == "parkedcallstimeout"]
    # recorded order: ParkedCallTimeOut ... Newexten (new location) ... AGIExecEnd of the Park
    names = [e.name for e in rec.events]
    timed_out = names.index("ParkedCallTimeOut")
    moved = names.index("Newexten", timed_out)
    park_end = next(i for i, e in enumerate(rec.events) if e.name == "AGIExecEnd" and e["Command"] == FLOW_PARK)
    assert timed_out < moved < park_end and rec.events[moved]["Context"] == "ivr-park-comeback"


async def test_park_without_c_still_comes_back_to_the_lot_context() -> None:
    got: list[list[str]] = []
    rec = await run(park_then_hangup_notice(got, "EXEC Park default,st(6)"))
    assert got == [["200 result=0\n"], ["HANGUP\n"]]
    comeback = [
        (e["Exten"], e["Priority"], e["Application"])
        for e in rec.events_named("Newexten")
        if e["Context"] == "parkedcallstimeout"
    ]
    assert comeback == [("s", "1", "Park"), ("s", "2", "Hangup")]


async def test_park_c_with_exten_and_priority_keeps_the_current_context() -> None:
    got: list[list[str]] = []
    rec = await run(park_then_hangup_notice(got, r'EXEC Park "default,st(6)c(back\\,3)"'))
    (timeout,) = rec.events_named("ParkedCallTimeOut")
    assert (timeout["ParkeeExten"], timeout["ParkeePriority"]) == ("back", "3")
    (parked,) = rec.events_named("ParkedCall")
    assert timeout["ParkeeContext"] == parked["ParkeeContext"] != "parkedcallstimeout"
    assert got[0] == ["200 result=0\n"]


async def test_park_options_inside_parentheses_are_not_read_as_letters() -> None:
    # before: "s" in the option text outside parentheses decided silence; c(s,1) must not make Park silent
    # nor t(...) inside c() change the timeout
    got: list[list[str]] = []
    rec = await run(park_then_hangup_notice(got, r'EXEC Park "default,t(8)c(x\\,s\\,1)"'))
    (timeout,) = rec.events_named("ParkedCallTimeOut")
    assert timeout["ParkingDuration"] == "8" and timeout["ParkeeContext"] == "x"


async def test_mixmonitor_file_name_with_escaped_comma_and_quotes(tmp_path: Path) -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd(rf'EXEC MixMonitor "{tmp_path}/a\\,b.wav,i(MMID)"')  # escaped comma
        await p.cmd(rf'EXEC MixMonitor "\"{tmp_path}/c,d.wav\",i(MMID2)"')  # a quoted argument
        await p.cmd('STREAM FILE beep ""')
        await p.cmd("EXEC StopMixMonitor")

    rec = await run(handler)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a,b.wav", "c,d.wav"]
    assert rec.variables["MMID"] and rec.variables["MMID2"]


async def test_dial_target_in_quotes_and_queue_options_with_parentheses() -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd(r'EXEC Dial "\"PJSIP/busy\",5"')
        await p.cmd('GET VARIABLE DIALSTATUS')

    rec = await run(handler)
    assert rec.dials == [("PJSIP/busy", "BUSY")]


async def test_park_c_with_a_label_fails_the_call_with_a_clear_error() -> None:
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd('EXEC Park "default,c(ctx\\\\,s\\\\,mylabel)"')

    with pytest.raises(UnmodelledGoto, match="labels are not modelled"):
        await run(handler)

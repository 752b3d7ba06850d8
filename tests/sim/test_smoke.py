from __future__ import annotations

from ivr.sim import CallSpec, NextPrompt, Press, SimConfig, SimulatedAsterisk, VirtualClock

from .agi_peer import Peer, ScriptedAGIServer


async def test_virtual_call_answers_and_reads_digit() -> None:
    got: list[list[str]] = []

    async def handler(p: Peer) -> None:
        got.append(await p.cmd("ANSWER"))
        got.append(await p.cmd('STREAM FILE demo-congrats "0123456789*#"'))
        got.append(await p.cmd("WAIT FOR DIGIT 1500"))

    async with ScriptedAGIServer(handler) as srv:
        clock = VirtualClock()
        sim = SimulatedAsterisk(SimConfig(), clock=clock)
        await sim.start(("127.0.0.1", srv.port), ami=False)
        call = await sim.place_call(CallSpec(flow="main", script=[NextPrompt(1.201), Press("5")]))
        rec = await call.finished(timeout=5)
        await sim.stop()
    assert not srv.errors
    assert got == [["200 result=0\n"], ["200 result=53 endpos=10720\n"], ["200 result=0\n"]]
    assert rec.agi_status == "SUCCESS"

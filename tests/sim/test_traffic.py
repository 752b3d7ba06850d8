"""The demo's traffic generator on the virtual clock, against a small scripted IVR; and the testing helpers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ivr.sim import SimConfig, VirtualClock
from ivr.sim.testing import prompt_texts, simulated_asterisk
from ivr.sim.traffic import TrafficGenerator, TrafficPlan

from .agi_peer import Peer, ScriptedAGIServer


def ivr_handler(tmp: Path):  # type: ignore[no-untyped-def]
    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        reply = (await p.cmd("GET DATA vm-intro 3000 1"))[0]
        if reply.startswith("200 result=-1"):
            return
        choice = reply.split("=", 1)[1].split(" ")[0].strip()
        if choice == "2":
            await p.cmd("EXEC Queue agiq,c")
        elif choice == "3":
            await p.cmd('RECORD FILE {}/vm-{} wav "#" 30000 BEEP s=2'.format(tmp, p.env["agi_uniqueid"]))
        else:
            await p.cmd('STREAM FILE beep ""')

    return handler


async def test_traffic_mix_reaches_queue_voicemail_and_hangups(tmp_path: Path) -> None:
    async with (
        ScriptedAGIServer(ivr_handler(tmp_path)) as srv,
        simulated_asterisk(srv.port, SimConfig(), clock=VirtualClock(), ami=False) as sim,
    ):
        gen = TrafficGenerator(sim, rate=0.5, plan=TrafficPlan(flows=("main",)), seed=7)
        await gen.run(calls=40)
        await gen.drain()
    s = gen.summary
    assert (s.placed, s.finished, s.failed) == (40, 40, 0)
    assert s.destinations["queue"] > 0 and s.destinations["recording"] > 0 and s.ended_by["caller"] > 0
    assert sum(s.behaviours.values()) == 40
    assert list(tmp_path.glob("vm-*.wav"))
    assert "calls placed=40 active=0 done=40" in s.line(gen.active)


def test_preamble_and_menu_prompt_shape_every_script() -> None:
    from ivr.sim.script import NextPrompt, Press

    class FakeSim:
        pass

    gen = TrafficGenerator(
        FakeSim(),
        rate=1,
        seed=3,  # type: ignore[arg-type]
        plan=TrafficPlan(preamble=(NextPrompt(1.0), Press("1")), menu_prompt=2),
    )
    for _ in range(30):
        behaviour, spec = gen.caller()
        steps = list(spec.script)
        assert steps[:2] == [NextPrompt(1.0), Press("1")]
        if behaviour != "time_out":
            assert steps[2] == NextPrompt()  # the welcome prompt passes, the menu is the next one


def test_prompt_texts_from_flow_objects() -> None:
    variant = SimpleNamespace(file="en/welcome", text="Welcome to the shop")
    flow = SimpleNamespace(prompts={"welcome": {"en": variant, "lt": SimpleNamespace(file="lt/welcome", text="")}})
    assert prompt_texts([flow]) == {"en/welcome": "Welcome to the shop"}

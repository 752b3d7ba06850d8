"""The shipped dialplan as the simulator runs it, and the contract it keeps with the service (ivr.dialplan).

- The simulator's model *is* dialplans/extensions_ivr.conf (ivr.sim.extensions_conf parses it): every priority of
  the file is one the model runs, and every expression in it expands.
- After every AGI() ([ivr-enter], [ivr-park-comeback], [ivr-outbound]) the file decides exactly as
  `ivr.dialplan.ended_with_report` says, for every IVR_STATUS value and answer evidence.
- A server-side close, as res_agi does it: a socket-watching command (STREAM FILE ...) stops at once without a
  reply and AGI() ends with AGISTATUS=SUCCESS, keeping the variables set so far; an EXEC'd Dial runs to its end.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ivr import dialplan
from ivr.sim import AgentSpec, CallSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim import extensions_conf as conf
from ivr.sim.call import CallRecord
from ivr.sim.dialplan import lookup

from .agi_peer import Peer, ScriptedAGIServer

RUNS = {"noop", "set", "goto", "gotoif", "agi", "answer", "playback", "dial", "queue", "hangup", "musiconhold", "wait"}


def test_the_model_is_the_shipped_file() -> None:
    contexts = conf.load()
    assert {dialplan.ENTER_CONTEXT, dialplan.PARK_COMEBACK_CONTEXT, dialplan.OUTBOUND_CONTEXT} <= set(contexts)
    assert {dialplan.OUTBOUND_FALLBACK_CONTEXT, dialplan.QUEUE_CONTEXT, dialplan.HOLD_CONTEXT} <= set(contexts)
    variables = {"IVR_COMEBACK": "main:node", "IVR_FLOW": "main", "EXTEN": "sales"}
    for name, extens in contexts.items():
        for ext in extens:
            for prio in ext.priorities:
                assert prio.app.lower() in RUNS, f"[{name}] {ext.pattern},{prio.number}: {prio.app} is not modelled"
                conf.expand(prio.data, variables.get)  # raises DialplanError on anything it cannot expand
            if not ext.pattern.startswith("_"):
                model = lookup(name, ext.pattern)
                assert model is not None and [p.app for p in model] == [p.app for p in ext.priorities]


def test_patterns_and_expressions() -> None:
    assert lookup("ivr-inbound", "37052000001") is not None and lookup("ivr-inbound", "+37060000001") is not None
    assert lookup("ivr-queue", "x") is None  # _[-A-Za-z0-9_]. needs two characters
    get = {"A": "x1-y_2;z", "C": "main:node:3", "E": ""}.get
    assert conf.expand("${FILTER(-A-Za-z0-9_,${A})}", get) == "x1-y_2z"
    assert conf.expand("${CUT(C,:,2)}|${CUT(C,:,5)}", get) == "node|"
    assert conf.expand('${IF($["${E}" = ""]?default:${E})}', get) == "default"
    assert conf.expand('$["${A}" = "OK" | "${E}" = ""]', get) == "1"
    assert conf.expand('$["${E}" != "" & "${E}" != "0"]', get) == "0"
    assert conf.expand("${C:5}/${C:0:4}", get) == "node:3/main"
    with pytest.raises(conf.DialplanError):
        conf.expand("${SHELL(rm)}", get)
    with pytest.raises(conf.DialplanError):
        conf.parse("[x]\nexten => s,1(label),NoOp()\n")


def _after_agi(context: str, exten: str, variables: dict[str, str]) -> str:
    """Walk the file's priorities after the AGI() of context,exten: where does the caller go?"""
    contexts = conf.load()
    ext = conf.find(contexts, context, exten)
    assert ext is not None
    n = next(p.number for p in ext.priorities if p.app == "AGI") + 1
    for _ in range(20):
        prio = ext.priorities[n - 1]
        data = conf.expand(prio.data, variables.get)
        if prio.app == "GotoIf":
            target = conf.goto_if(data, context, exten)
        elif prio.app == "Goto":
            target = conf.goto_target(data, context, exten)
        else:
            raise AssertionError(f"{context},{exten},{n}: {prio.app} before a decision")
        if target is None:
            n += 1
            continue
        return f"{target[0]},{target[1]}"
    raise AssertionError("no decision")


@pytest.mark.parametrize(
    ("context", "exten", "fallback"),
    [
        ("ivr-enter", "s", "ivr-enter,fallback"),
        ("ivr-park-comeback", "s", "ivr-enter,fallback"),
        ("ivr-outbound", "callback", "ivr-outbound-fallback,s"),
    ],
)
def test_the_dialplan_decides_as_the_contract_says(context: str, exten: str, fallback: str) -> None:
    statuses = ["", dialplan.RUNNING, dialplan.AGENT, dialplan.PARKED, dialplan.OK, dialplan.ERROR, dialplan.NOROUTE]
    for status, answered in itertools.product([*statuses, "SOMETHING_NEW"], ["", "0", "2502"]):
        variables = {dialplan.STATUS: status, dialplan.ANSWERED_EVIDENCE: answered, "AGISTATUS": "SUCCESS"}
        where = _after_agi(context, exten, variables)
        expected = "ivr-enter,done" if dialplan.ended_with_report(status, answered) else fallback
        assert where == expected, (status, answered)


async def _call(
    handler: Callable[[Peer], Awaitable[None]] | None,
    config: SimConfig | None = None,
    server: ScriptedAGIServer | None = None,
) -> tuple[CallRecord, ScriptedAGIServer]:
    """One call placed at [ivr-inbound] with a DID, against `server` (or a new one running `handler`)."""
    async with contextlib.AsyncExitStack() as stack:
        srv = server or await stack.enter_async_context(ScriptedAGIServer(handler or _silent))
        sim = SimulatedAsterisk(config or SimConfig(), clock=VirtualClock())
        await sim.start(("127.0.0.1", srv.port), ami=False)
        try:
            call = await sim.place_call(CallSpec(did="37052000000", context="ivr-inbound"))
            rec = await call.finished(timeout=10)
        finally:
            await sim.stop()
    assert not srv.errors, srv.errors
    return rec, srv


async def _silent(p: Peer) -> None:
    return None


def _contexts(rec: CallRecord) -> list[str]:
    return [f"{e['Context']},{e['Exten']},{e['Priority']}" for e in rec.events_named("Newexten")]


async def test_a_close_during_a_prompt_stops_it_and_the_caller_reaches_the_operator() -> None:
    async def dies_in_a_prompt(p: Peer) -> None:
        await p.cmd("ANSWER")
        p.writer.write(b'STREAM FILE demo-congrats ""\n')  # a 30 s prompt; the service dies while it plays
        await p.writer.drain()

    config = SimConfig(globals={dialplan.OPERATOR: "Local/answer2s@agents"})
    rec, _ = await _call(dies_in_a_prompt, config)
    assert rec.agi_status == "SUCCESS" and rec.variables[dialplan.STATUS] == ""
    assert rec.replies() == ["200 result=0"]  # no reply to the stopped STREAM FILE (res_agi: "a new command")
    stop = next(e for e in rec.events_named("AGIExecEnd") if "STREAM FILE" in e["Command"])
    fallback = next(e for e in rec.events_named("Newexten") if e["Exten"] == "fallback")
    assert fallback.time - stop.time < 1.0  # nobody waited for the 30 s prompt
    assert _contexts(rec)[:2] == ["ivr-inbound,37052000000,1", "ivr-inbound,37052000000,2"]
    assert "ivr-enter,s,5" in _contexts(rec)  # AGI(agi://${IVR_SERVER}/main?lang=&did=37052000000)
    assert rec.agi_runs[0].script == "main?lang=&did=37052000000"
    assert rec.dials == [("Local/answer2s@agents", "ANSWER")]


async def test_a_close_during_an_execd_dial_lets_the_conversation_finish() -> None:
    async def dies_while_bridged(p: Peer) -> None:
        await p.cmd(f'SET VARIABLE {dialplan.STATUS} "{dialplan.AGENT}"')
        p.writer.write(b'EXEC Dial "Local/talk10@agents,20"\n')
        await p.writer.drain()

    config = SimConfig(globals={dialplan.OPERATOR: "Local/answer2s@agents"})
    config.agents["talk10"] = AgentSpec("talk10", answer_after=1.0, talk=10.0)
    rec, _ = await _call(dies_while_bridged, config)
    assert rec.dials[0] == ("Local/talk10@agents", "ANSWER") and len(rec.dials) == 1  # no operator afterwards
    assert rec.agi_status == "SUCCESS" and int(rec.variables["ANSWEREDTIME_MS"]) >= 10000
    assert "ivr-enter,done,1" in _contexts(rec)
    assert rec.ended.by == "service"


def _hagi_dialplan(tmp_path: Path) -> Path:
    """The shipped file with the edit its header documents for several instances."""
    text = conf.SHIPPED.read_text()
    variant = tmp_path / "extensions_ivr.conf"
    variant.write_text(text.replace("AGI(agi://${IVR_SERVER}/", "AGI(hagi://ivr.example/"))
    return variant


async def test_hagi_tries_the_srv_targets_in_order(tmp_path: Path) -> None:
    async def reports(p: Peer) -> None:
        await p.cmd(f'SET VARIABLE {dialplan.STATUS} "{dialplan.OK}"')

    with socket.socket() as s:  # a loopback port nobody listens on: an instance that died
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = SimConfig(dialplan_file=_hagi_dialplan(tmp_path))
    async with ScriptedAGIServer(reports) as srv:
        config.srv["ivr.example"] = [f"127.0.0.1:{dead}", f"127.0.0.1:{srv.port}"]
        rec, _ = await _call(None, config, srv)
    run = rec.agi_runs[0]
    assert run.status == "SUCCESS" and run.env["request"] == "hagi://ivr.example/main?lang=&did=37052000000"
    assert any(f"127.0.0.1:{dead} failed" in text for _, text in rec.log)
    assert "ivr-enter,done,1" in _contexts(rec) and rec.dials == []


async def test_hagi_without_a_live_target_is_agistatus_failure(tmp_path: Path) -> None:
    config = SimConfig(dialplan_file=_hagi_dialplan(tmp_path), globals={dialplan.OPERATOR: "Local/answer2s@agents"})
    rec, _ = await _call(None, config)  # no SRV records for ivr.example
    assert rec.agi_runs[0].status == "FAILURE"
    assert rec.dials == [("Local/answer2s@agents", "ANSWER")]  # the operator fallback

"""The simulated Asterisk sends, per call, the AMI events a real Asterisk 22 sends (issue 12).

Each recorded call (an AMI Originate of `Local/<scenario>@agi-scen` whose ;2 half runs a FastAGI session) is
replayed on the simulator: the same Originate request bytes, the `Set()` priorities the recording shows before the
AGI, the same AGI commands. The per-call count of every event name the service's AMI user receives (the `read`
classes of dialplans/manager_ivr.conf) must equal the recorded count. Everything is read from the recordings in
tests/data/asterisk and from the shipped manager_ivr.conf, nothing is retyped.

Left out on both sides: FullyBooted (it answers the login) and the Newexten of the recording's test-only
`[caller]` context, where the ;1 half waited (`NoOp`, `Wait(600)`): that context belongs to the recording set-up,
not to Asterisk.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.ami.protocol import AMIParser, Message, Role
from ivr.sim import Route, SimConfig, SimulatedAsterisk, VirtualClock
from tests.asterisk_data import ASTERISK_DATA

from .agi_peer import Peer, ScriptedAGIServer
from .ami_peer import AMIPeer
from .transcripts import agi_streams, load_records

MANAGER_CONF = Path(__file__).resolve().parents[2] / "dialplans" / "manager_ivr.conf"


def read_classes() -> frozenset[str]:
    """The `read =` classes of the service's AMI user in dialplans/manager_ivr.conf."""
    m = re.search(r"^read\s*=\s*(.+)$", MANAGER_CONF.read_text(), re.M)
    assert m, "manager_ivr.conf has no read = line"
    return frozenset(c.strip().lower() for c in m.group(1).split(","))


def received(msg: Message, classes: frozenset[str]) -> bool:
    privilege = {c.strip().lower() for c in (msg.get("Privilege") or "").split(",")}
    if msg.name == "FullyBooted":  # the answer to the login, not part of a call
        return False
    return bool(privilege & classes) and not (msg.name == "Newexten" and msg.get("Context") == "caller")


@dataclass
class RecordedCall:
    scenario: str
    index: int  # which Originate of the scenario (0-based) = which AGI stream
    originate: bytes  # the Originate request as sent
    exten: str
    presets: dict[str, str]  # Set() priorities before the AGI on ;2
    commands: list[bytes]  # the AGI commands, as sent
    counts: Counter[str]


def recorded_calls(scenario: str, classes: frozenset[str]) -> list[RecordedCall]:
    """Every `AMI Originate Local/...@agi-scen` of the scenario's .ami companion with the events up to the next
    Originate (or Logoff), and the commands of its AGI stream."""
    records = load_records(scenario + ".ami")
    streams = agi_streams(scenario)
    parser = AMIParser(Role.CLIENT)
    calls: list[RecordedCall] = []
    current: RecordedCall | None = None
    for r in records:
        if r["dir"] == "note":
            m = re.match(r"AMI Originate Local/([\w-]+)@agi-scen", r["data"])
            if m or r["data"].startswith("AMI Originate"):
                current = None
            if m:
                index = len(calls)
                commands = [item[1].encode("latin-1") for item in streams[index].plan if item[0] == "send"]
                current = RecordedCall(scenario, index, b"", m.group(1), {}, commands, Counter())
                calls.append(current)
            continue
        if r["dir"] == "app->asterisk":
            if current is not None and r["data"].startswith("Action: Originate") and not current.originate:
                current.originate = r["data"].encode("latin-1")
            elif r["data"].startswith("Action: Logoff"):
                current = None
            continue
        for msg in parser.feed(r["data"].encode("latin-1")):  # every read: the parser needs the banner first
            if current is None:
                continue
            if isinstance(msg, Message) and msg.is_event and received(msg, classes):
                current.counts[msg.name or ""] += 1
                if msg.name == "Newexten" and msg.get("Application") == "Set" and msg["Channel"].endswith(";2"):
                    name, _, value = msg["AppData"].partition("=")
                    current.presets[name] = value
    return calls


CLASSES = read_classes()
# Calls whose flow the simulator's Originate models (a FastAGI session on ;2; no Dial/Queue/Park inside it).
# Calls driven only from the AGI side (in agi-03a-c the caller hangs up by an AMI action mid-command).
CASES = [
    (c.scenario, c.index)
    for scenario in ("agi-01-env-and-basic-commands", "agi-03-hangup", "agi-10-agistatus")
    for c in recorded_calls(scenario, CLASSES)
    if not any(cmd.upper().startswith(b"EXEC") for cmd in c.commands)
    and c.exten not in ("agi-03a", "agi-03b", "agi-03c")
]


def test_the_replayed_set_is_not_empty() -> None:
    assert len(CASES) >= 7, CASES


async def simulated_counts(call: RecordedCall) -> Counter[str]:
    config = SimConfig(routes={call.exten: Route(flow=call.exten, context="agi-scen", preset=call.presets)})
    sim = SimulatedAsterisk(config, clock=VirtualClock())
    done = asyncio.Event()

    async def run(peer: Peer) -> None:
        try:
            for command in call.commands:
                await peer.cmd(command.decode("latin-1"), raw=True)
        finally:
            done.set()

    counts: Counter[str] = Counter()
    async with ScriptedAGIServer(run) as srv:
        await sim.start(("127.0.0.1", srv.port))
        ami = await AMIPeer.connect(sim.ami_port)
        try:
            ami.queue.clear()  # FullyBooted and the login's security events come before the call
            ami.writer.write(re.sub(rb"ActionID: [^\r]*", b"ActionID: count-1", call.originate))
            await asyncio.wait_for(done.wait(), 10)
            # The call is over once both halves reported NOT_INUSE and the dialplan set AGISTATUS (after an AGI
            # HANGUP the model ends the channel at once, so that VarSet comes after the hangups, not before).
            not_in_use, agistatus = 0, False
            while not_in_use < 2 or not agistatus:
                msg = await ami.next(lambda m: m.is_event)
                if received(msg, CLASSES):
                    counts[msg.name or ""] += 1
                not_in_use += msg.name == "DeviceStateChange" and msg.get("State") == "NOT_INUSE"
                agistatus = agistatus or (msg.name == "VarSet" and msg.get("Variable") == "AGISTATUS")
        finally:
            ami.writer.close()
            await ami.writer.wait_closed()
            await sim.stop()
    assert not srv.errors, srv.errors
    assert not sim.errors, sim.errors
    return counts


@pytest.mark.parametrize(("scenario", "index"), CASES)
async def test_per_call_event_counts_match_the_recording(scenario: str, index: int) -> None:
    call = recorded_calls(scenario, CLASSES)[index]
    got = await simulated_counts(call)
    assert got == call.counts, (
        f"{scenario} call {index} ({call.exten}): simulated {sum(got.values())} events, recorded "
        f"{sum(call.counts.values())}; differences: "
        f"{ {k: (got[k], call.counts[k]) for k in set(got) | set(call.counts) if got[k] != call.counts[k]} }"
    )


def test_measurements_md_total_is_the_sum_of_its_rows() -> None:
    """The per-call table of measurements.md (the bench's reference) is read by bench/call_cpu.py: keep it
    parseable and self-consistent."""
    from bench.call_cpu import reference_counts

    rows, total = reference_counts(ASTERISK_DATA / "measurements.md")
    assert sum(rows.values()) == total == 39
    assert rows["VarSet"] == 12 and rows["Newexten"] == 9 and rows["DeviceStateChange"] == 4
    json.dumps(rows)  # plain data

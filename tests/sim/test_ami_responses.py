"""AMI responses replayed from ami-14 and ami-17: every response message equals the recorded one line by line.

The recorded actions are sent in order (channel names of the recording replaced by the simulator's channels of
the same origin); for each action the simulator's `Response` message (matched by ActionID) is compared with the
recorded one after normalising pointers and times.  Events are not compared here (see NOT_COVERED).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from ivr.ami.protocol import AMIParser, Message, Role
from ivr.sim import AgentSpec, RealClock, SimConfig, SimulatedAsterisk

from .transcripts import load_records

RESPONSES_COVERED = ["ami-14-mixmonitor", "ami-15-queue", "ami-17-errors-and-hangup"]
# Dialplan of the recording, as agents that answer at once and stay: [idle-leg] s, [queue-entry] testq
AGENTS = {"s": 0.0, "testq": 0.0, "answer3s": 0.0}


def _messages(data: str) -> list[Message]:
    parser = AMIParser(Role.CLIENT)
    return [m for m in parser.feed(data.encode("latin-1")) if isinstance(m, Message)]


def _norm(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for k, v in pairs:
        v = re.sub(r"0x[0-9a-f]{6,}", "<PTR>", v)
        v = re.sub(r"^\d{10}\.\d{6}$", "<TS>", v)
        out.append((k, v))
    return out


@pytest.mark.parametrize("name", RESPONSES_COVERED)
async def test_responses_match_recording(name: str, tmp_path: Path) -> None:
    recs = [r for r in load_records(name) if r.get("stream", "ami") in ("ami", "note") or "stream" not in r]
    recorded_out = "".join(r["data"] for r in recs if r["dir"] == "asterisk->app")
    banner, _, rest = recorded_out.partition("\r\n")
    recorded = {
        m.get("ActionID"): m for m in _messages(banner + "\r\n" + rest) if m.get("Response") and m.get("Event") is None
    }
    recorded_chans = [m["Channel"] for m in _messages(banner + "\r\n" + rest) if m.get("Event") == "Newchannel"]

    config = SimConfig(
        ami_auth_failure_delay=0.01,
        path_map={"/var/spool/asterisk/recordings": str(tmp_path), "/var/spool/asterisk/monitor": str(tmp_path)},
    )
    for exten, answer in AGENTS.items():
        config.agents[exten] = AgentSpec(exten, answer_after=answer, talk=None)
    sim = SimulatedAsterisk(config, clock=RealClock())
    await sim.start(("127.0.0.1", 9))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
    parser = AMIParser(Role.CLIENT)
    ours: list[Message] = []
    our_chans: list[str] = []
    mismatches: list[str] = []

    async def until(pred) -> Message:  # type: ignore[no-untyped-def]
        while True:
            for i, m in enumerate(ours):
                if pred(m):
                    return ours.pop(i)
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, "AMI closed"
            for m in parser.feed(data):
                if isinstance(m, Message):
                    if m.get("Event") == "Newchannel":
                        our_chans.append(m["Channel"])
                    ours.append(m)

    pointers: dict[str, str] = {}  # recorded MixMonitorID -> ours

    def mapped(text: str) -> str:
        for i, rec_name in enumerate(recorded_chans):
            if rec_name in text and i < len(our_chans):
                text = text.replace(rec_name, our_chans[i])
        for rec_ptr, our_ptr in pointers.items():
            text = text.replace(rec_ptr, our_ptr)
        return text

    try:
        for r in recs:
            if r["dir"] != "app->asterisk":
                continue
            for block in re.split(r"(?<=\r\n\r\n)", r["data"]):
                if not block.strip():
                    continue
                aid = re.search(r"ActionID: ([^\r\n]*)", block)
                needed = [n for n in recorded_chans if n in block]
                for n in needed:  # wait for our channel of the same origin to exist
                    while recorded_chans.index(n) >= len(our_chans):
                        await _read_more(reader, parser, ours, our_chans)
                writer.write(mapped(block).encode("latin-1"))
                await writer.drain()
                if aid is None:
                    continue
                sent_id = aid.group(1)
                want = recorded[sent_id]
                got = await until(
                    lambda m, a=sent_id: (
                        m.get("Response") is not None and m.get("Event") is None and m.get("ActionID") == a
                    )
                )
                if want.get("MixMonitorID") and got.get("MixMonitorID"):
                    pointers[want["MixMonitorID"]] = got["MixMonitorID"]
                w = _norm([(k, mapped(v)) for k, v in want.items()])
                g = _norm(list(got.items()))
                if w != g:
                    mismatches.append(f"{aid.group(1)}: got {g!r}, recorded {w!r}")
    finally:
        writer.close()
        await sim.stop()
    assert len(recorded) > 10
    assert not mismatches, "\n".join(mismatches)


async def _read_more(
    reader: asyncio.StreamReader, parser: AMIParser, ours: list[Message], our_chans: list[str]
) -> None:
    data = await asyncio.wait_for(reader.read(65536), 5)
    assert data, "AMI closed"
    for m in parser.feed(data):
        if isinstance(m, Message):
            if m.get("Event") == "Newchannel":
                our_chans.append(m["Channel"])
            ours.append(m)

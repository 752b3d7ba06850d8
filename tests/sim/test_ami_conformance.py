"""AMI conformance: replay ami-10 (login, ping, events, framing, MD5, logoff) against the simulated AMI server.

All connections of the recording are replayed in the recorded order; every line the simulator sends is compared
with the recorded line after `normalise_ami()` (times, session pointers, ports, the MD5 challenge).
"""

from __future__ import annotations

import asyncio
import hashlib
import re

from ivr.sim import SimConfig, SimulatedAsterisk, VirtualClock
from tests.streams import open_connection

from .transcripts import load_records


def normalise_ami(line: str) -> str:
    line = re.sub(r"(EventTV|SessionTV): 20\d\d-[0-9T:.\-]+\+0000", r"\1: <TV>", line)
    line = re.sub(r"SessionID: 0x[0-9a-f]+", "SessionID: <PTR>", line)
    line = re.sub(r"(IPV4/TCP/127\.0\.0\.1)/\d+", r"\1/<PORT>", line)
    line = re.sub(r"Timestamp: \d+\.\d{6}", "Timestamp: <TS>", line)
    line = re.sub(r"(Uptime|LastReload): \d+", r"\1: <N>", line)
    line = re.sub(r"Challenge: \d+", "Challenge: <N>", line)
    return line


async def test_ami_10_login_ping_events_logoff() -> None:
    recs = load_records("ami-10-login-ping-events-logoff")
    config = SimConfig(ami_auth_failure_delay=0.01)
    sim = SimulatedAsterisk(config, clock=VirtualClock())
    await sim.start(("127.0.0.1", 9), ami=True)
    conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    challenge: dict[str, str] = {}
    mismatches: list[str] = []
    compared = 0
    try:
        for r in recs:
            stream = r.get("stream", "")
            if r["dir"] == "note":
                if r["data"].startswith("TCP connected"):
                    conns[stream] = await open_connection("127.0.0.1", sim.ami_port)
                elif r["data"].startswith("client closed"):
                    conns[stream][1].close()
                elif r["data"].startswith("EOF: Asterisk closed"):
                    rest = await asyncio.wait_for(conns[stream][0].read(), 5)
                    if rest:
                        mismatches.append(f"{stream}: expected EOF, got {rest!r}")
                continue
            reader, writer = conns[stream]
            if r["dir"] == "app->asterisk":
                data = r["data"]
                if "Key: " in data and stream in challenge:
                    key = hashlib.md5((challenge[stream] + "ivrsecret").encode()).hexdigest()
                    data = re.sub(r"Key: [0-9a-f]+", "Key: " + key, data)
                writer.write(data.encode("latin-1"))
                await writer.drain()
                continue
            for want in r["data"].splitlines(keepends=True):
                got = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1")
                m = re.match(r"Challenge: (\d+)", got)
                if m:
                    challenge[stream] = m.group(1)
                compared += 1
                if normalise_ami(got) != normalise_ami(want):
                    mismatches.append(f"{stream}: got {got!r}, recorded {want!r}")
    finally:
        await sim.stop()
    assert compared == 263  # every line Asterisk sent in the recording
    assert not mismatches, "\n".join(mismatches[:20])

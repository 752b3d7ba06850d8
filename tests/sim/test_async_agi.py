"""Async AGI (agi-09): AGI(agi:async) driven over AMI `Action: AGI`, replayed from the recording.

Compared: every action's response message, the AsyncAGIStart Env (normalised), every AsyncAGIExec
(Result, CommandId) in order, and one AsyncAGIEnd per call.  Actions the recorder sent while a command was
running (PlayDTMF, the caller's Hangup) are sent at the recorded offset on the virtual clock.
"""

from __future__ import annotations

import asyncio
import re

from ivr.ami.protocol import AMIParser, Message, Role
from ivr.sim import Route, SimConfig, SimulatedAsterisk, VirtualClock

from .transcripts import load_records, normalise


def _msgs(data: str) -> list[Message]:
    return [m for m in AMIParser(Role.CLIENT).feed(data.encode("latin-1")) if isinstance(m, Message)]


def _norm_env(env: str) -> str:
    env = re.sub(r"agi_uniqueid%3A%20[0-9.]+", "agi_uniqueid%3A%20<UID>", env)
    env = re.sub(r"agi_threadid%3A%20\d+", "agi_threadid%3A%20<TID>", env)
    return re.sub(r"-[0-9a-f]{8}%3B", "-<SEQ>%3B", env)


async def test_agi_09_async_agi_over_ami() -> None:
    recs = load_records("agi-09-asyncagi")
    recorded_out = "".join(r["data"] for r in recs if r["dir"] == "asterisk->app")
    rec_msgs = _msgs(recorded_out)
    responses = {m["ActionID"]: m for m in rec_msgs if m.get("Response") and m.get("Event") is None}
    rec_execs = [(m["Result"], m.get("CommandId")) for m in rec_msgs if m.get("Event") == "AsyncAGIExec"]
    rec_envs = [_norm_env(m["Env"]) for m in rec_msgs if m.get("Event") == "AsyncAGIStart"]
    rec_chans = [m["Channel"] for m in rec_msgs if m.get("Event") == "Newchannel"]
    exec_time = {}
    for r in recs:
        if r["dir"] == "asterisk->app":
            for cid in re.findall(r"Event: AsyncAGIExec\r\n(?:[^\r]*\r\n)*?CommandId: ([^\r]*)\r\n", r["data"]):
                exec_time.setdefault(cid, r["t"])
    actions = [(r["t"], r["data"]) for r in recs if r["dir"] == "app->asterisk"]

    sim = SimulatedAsterisk(
        SimConfig(routes={"async": Route(flow="agi:async", context="agi-scen")}), clock=VirtualClock()
    )
    await sim.start(("127.0.0.1", 9))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
    parser = AMIParser(Role.CLIENT)
    ours: list[Message] = []
    seen: list[Message] = []
    our_chans: list[str] = []
    mismatches: list[str] = []

    async def pump() -> None:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "AMI closed early"
        for m in parser.feed(data):
            if isinstance(m, Message):
                if m.get("Event") == "Newchannel":
                    our_chans.append(m["Channel"])
                ours.append(m)
                seen.append(m)

    async def until(pred) -> Message:  # type: ignore[no-untyped-def]
        while True:
            for i, m in enumerate(ours):
                if pred(m):
                    return ours.pop(i)
            await pump()

    async def mapped(text: str) -> str:
        for name in sorted(set(re.findall(r"Local/async@agi-scen-[0-9a-f]{8};[12]", text))):
            idx = rec_chans.index(name)
            while idx >= len(our_chans):
                await pump()
            text = text.replace(name, our_chans[idx])
        return text

    started: set[str] = set()
    scheduled: set[int] = set()
    try:
        for i, (t, data) in enumerate(actions):
            aid = re.search(r"ActionID: ([^\r]*)", data).group(1)
            # the recorder waited for the results of earlier commands before sending this action
            for cid, when in exec_time.items():
                if when < t:
                    while not any(m.get("Event") == "AsyncAGIExec" and m.get("CommandId") == cid for m in seen):
                        await pump()
            if i not in scheduled:
                if "Action: AGI" in data:
                    target = re.search(r"Channel: (\S+);2", data)
                    if target and target.group(0) not in started and target.group(0) in rec_chans:
                        ours_name = await mapped(target.group(0)[len("Channel: ") :])
                        await until(lambda m, n=ours_name: m.get("Event") == "AsyncAGIStart" and m["Channel"] == n)
                        started.add(target.group(0))
                payload = (await mapped(data)).encode("latin-1")
                writer.write(payload)
                cid = re.search(r"CommandID: ([^\r]*)", data)
                if cid and cid.group(1) in exec_time:  # actions the recorder sent while this one ran
                    for j in range(i + 1, len(actions)):
                        t2, d2 = actions[j]
                        if t2 >= exec_time[cid.group(1)]:
                            break
                        if "Action: AGI" not in d2:
                            scheduled.add(j)
                            later = (await mapped(d2)).encode("latin-1")
                            sim.clock.call_later(t2 - t, lambda b=later: writer.write(b))
            got = await until(lambda m, a=aid: m.get("Event") is None and m.get("ActionID") == a)
            if aid == "ami-27":
                break
            want = [(k, v) for k, v in responses[aid].items()]
            want = [(k, normalise(v)) for k, v in want]
            have = [(k, normalise(v)) for k, v in got.items()]
            if have != want:
                mismatches.append(f"{aid}: got {have!r}, recorded {want!r}")
    finally:
        writer.close()
        await sim.stop()
    execs = [(m["Result"], m.get("CommandId")) for m in seen if m.get("Event") == "AsyncAGIExec"]
    envs = [_norm_env(m["Env"]) for m in seen if m.get("Event") == "AsyncAGIStart"]
    assert not mismatches, "\n".join(mismatches)
    assert execs == rec_execs
    assert envs == rec_envs and len(envs) == 3
    assert sum(1 for m in seen if m.get("Event") == "AsyncAGIEnd") == 3

"""Conformance: the simulator sends the same bytes as the real Asterisk 22 for every recorded scenario it covers.

Each AGI stream of the recordings is replayed: a scripted FastAGI server sends the recorded commands, the caller
does what the recorder did (DTMF, hangups, parked-call retrieval) at the recorded offsets on the virtual clock,
and every line the simulator sends is compared with the recorded line after `normalise()` (ids, pointers,
thread ids, ports, channel sequence numbers).  Scenarios not covered are listed explicitly below and the list is
checked against the README index, so nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from ivr.sim import CallSpec, Route, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim.simulator import Call

from .agi_peer import Peer, ScriptedAGIServer
from .transcripts import ROOT, Stream, agi_streams, env_dict, index_names, load_records, normalise

AGI_COVERED = [
    "agi-01-env-and-basic-commands",
    "agi-02-dtmf",
    "agi-03-hangup",
    "agi-04-record-file",
    "agi-05-bad-commands",
    "agi-06-exec-dial",
    "agi-07-queue-moh-park",
    "agi-08-mixmonitor-playback",
    "agi-10-agistatus",
]
AMI_COVERED = [
    "ami-10-login-ping-events-logoff",  # replayed in test_ami_conformance.py
    "agi-09-asyncagi",  # responses, AsyncAGIStart Env, every AsyncAGIExec: test_async_agi.py
]
NOT_COVERED = {
    "ami-11-originate-event-stream": "its AGI session (.agi) is replayed byte-exact below; the AMI event stream "
    "(LocalBridge, NewCallerid, DeviceStateChange ...) is emitted only in part",
    "ami-12-status-getvar-command": "Status/CoreShowChannels are simulated, "
    "but not byte-exact (CoreStatus, CoreSettings)",
    "ami-13-parking": "parking events are simulated, not byte-exact (Parkinglots, ParkedCallSwap)",
    "ami-14-mixmonitor": "responses replayed byte-exact in test_ami_responses.py; events not byte-exact",
    "ami-15-queue": "responses replayed byte-exact in test_ami_responses.py; events not byte-exact",
    "ami-16-transfers": "transfers are simulated, not byte-exact (bridge events)",
    "ami-17-errors-and-hangup": "responses replayed byte-exact in test_ami_responses.py; events not byte-exact",
    "ami-18-shutdown": "`core stop now` is simulated (sim.shutdown(), Command action; tested in "
    "test_ami_actions.py) but not replayed byte for byte",
}

# Caller behaviour that the recordings give in the header, not in notes.
CALLER = {
    # caller,talk: Wait(1) after the answer, then vm-intro's voiced part (its trailing silence included in 4.95407)
    "agi-04a": {"speech": (0.5 + 1.0, 4.95407)},
    "agi-08": {"sends_media": True},
}


def test_every_indexed_scenario_is_covered_or_listed() -> None:
    names = index_names()
    assert len(names) == 19
    assert sorted(AGI_COVERED + AMI_COVERED + list(NOT_COVERED)) == sorted(names)
    from .test_ami_responses import RESPONSES_COVERED

    assert all("test_ami_responses.py" in NOT_COVERED[n] for n in RESPONSES_COVERED)


def _streams() -> list[tuple[str, int]]:
    out = []
    for name in AGI_COVERED:
        for i, _ in enumerate(agi_streams(name)):
            out.append((name, i))
    return out


def _spec(env: dict[str, str], behaviour: dict) -> tuple[CallSpec, Route]:
    script, _, query = env["agi_network_script"].partition("?")
    args = []
    i = 1
    while f"agi_arg_{i}" in env:
        args.append(env[f"agi_arg_{i}"])
        i += 1
    preset = {"PRESET": "value set in dialplan"} if env["agi_priority"] == "3" else {}
    tech = env["agi_type"]
    route = Route(
        flow=script, context=env["agi_context"], query=dict(parse_qsl(query)), args=tuple(args), preset=preset
    )
    spec = CallSpec(
        did=env["agi_extension"],
        caller_id=env["agi_callerid"],
        caller_name="" if env["agi_calleridname"] == "unknown" else env["agi_calleridname"],
        language=env["agi_language"],
        technology=tech,
        trunk=env["agi_channel"].split("/", 1)[1].rsplit("-", 1)[0] if tech == "PJSIP" else None,
        variables={"ORIGVAR": "set by Originate"} if preset else {},
        sends_media=behaviour.get("sends_media", False),
    )
    return spec, route


@pytest.mark.parametrize("name,index", _streams(), ids=lambda v: str(v))
async def test_agi_stream_matches_recording(name: str, index: int, tmp_path: Path) -> None:
    stream = agi_streams(name)[index]
    env = env_dict(stream.env)
    exten = env["agi_extension"]
    behaviour = CALLER.get(exten, {})
    spec, route = _spec(env, behaviour)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    config = SimConfig(routes={exten: route}, path_map={"/var/spool/asterisk/recordings": str(recordings)})
    clock = VirtualClock()
    sim = SimulatedAsterisk(config, clock=clock)
    mismatches: list[str] = []
    holder: dict[str, Call] = {}

    async def replay(peer: Peer) -> None:
        await replay_stream(peer, stream, sim, holder["call"], behaviour, mismatches)

    async with ScriptedAGIServer(replay) as srv:
        await sim.start(("127.0.0.1", srv.port), ami=False)
        holder["call"] = await sim.place_call(spec)
        rec = await holder["call"].finished(timeout=20)
        await sim.stop()
    assert not srv.errors, srv.errors
    assert not mismatches, "\n".join(mismatches)
    # the AMI companion: every command's AGIExecEnd (Command, ResultCode, Result) as recorded
    want = _recorded_exec_ends(name, env["agi_channel"])
    got = [(normalise(e["Command"]), e["ResultCode"], e["Result"]) for e in rec.events_named("AGIExecEnd")]
    assert want and got == want
    checked = _check_files(name, stream, recordings)
    if exten in ("agi-04a", "agi-04b", "agi-08"):
        assert checked, f"the recorded files of {exten} were not compared"


async def replay_stream(
    peer: Peer, stream: Stream, sim: SimulatedAsterisk, call: Call, behaviour: dict, mismatches: list[str]
) -> None:
    """Send the recorded commands, act as the recorded caller, compare every line Asterisk sends."""
    clock = sim.clock
    recorded_base = env_dict(stream.env)["agi_channel"].rsplit(";", 1)[0]
    actual_base = peer.env["agi_channel"].rsplit(";", 1)[0]
    got_env = [normalise(line) for line in peer.env_lines]
    want_env = [normalise(line) for line in stream.env[:-1]]
    if got_env != want_env:
        mismatches.append(f"env: {got_env!r} != {want_env!r}")
    plan = stream.plan
    if "speech" in behaviour:
        start, seconds = behaviour["speech"]
        clock.call_later(start, lambda: _speak(call, seconds))
    for i, item in enumerate(plan):
        kind = item[0]
        if kind == "send":
            for follow in plan[i + 1 :]:
                if follow[0] in ("send", "recv"):
                    break
                _schedule(sim, call, follow)
            line = item[1].replace(recorded_base, actual_base)
            peer.writer.write(line.encode("latin-1"))
            await peer.writer.drain()
        elif kind == "recv":
            got = await asyncio.wait_for(peer.line(), 10)
            if normalise(got) != normalise(item[1]):
                mismatches.append(f"line {i}: got {got!r}, recorded {item[1]!r}")
        elif kind == "hangup_idle":
            call.hangup()


async def test_ami_11_originated_call_runs_the_agi_on_its_first_half() -> None:
    """ami-11's AGI session: Originate Local/s@dtmf-sender into ivr-test,s; the ;2 half sends DTMF 123# after
    1 s and hangs up 5 s later (its dialplan, here an AgentSpec with a script)."""
    from ivr.sim import AgentSpec, Hangup, Press, Sleep

    from .ami_peer import AMIPeer

    stream = agi_streams("ami-11-originate-event-stream.agi")[0]
    config = SimConfig(routes={"s": Route(flow="demo", context="ivr-test")})
    config.agents["s"] = AgentSpec(
        "s",
        answer_after=0.0,
        talk=None,
        script=(Sleep(1.0), Press("123#", gap=0.1, duration=0.1), Sleep(5.0), Hangup()),
    )
    sim = SimulatedAsterisk(config, clock=VirtualClock())
    mismatches: list[str] = []

    async def replay(peer: Peer) -> None:
        call = sim.call_for_channel(peer.env["agi_channel"])
        assert call is not None
        await replay_stream(peer, stream, sim, call, {}, mismatches)

    async with ScriptedAGIServer(replay) as srv:
        await sim.start(("127.0.0.1", srv.port))
        ami = await AMIPeer.connect(sim.ami_port)
        r = await ami.action(
            "Originate",
            [
                ("Channel", "Local/s@dtmf-sender"),
                ("Context", "ivr-test"),
                ("Exten", "s"),
                ("Priority", "1"),
                ("CallerID", '"DTMF Test" <5551000>'),
                ("Timeout", "30000"),
                ("Variable", "VAR1=one"),
                ("Variable", "VAR2=two words"),
                ("ChannelId", "orig-11-chan1"),
                ("OtherChannelId", "orig-11-chan2"),
                ("Account", "acct42"),
                ("Async", "true"),
            ],
        )
        assert r["Message"] == "Originate successfully queued"
        ev = await ami.event("OriginateResponse")
        assert (ev["Response"], ev["Reason"], ev["Uniqueid"]) == ("Success", "4", "orig-11-chan1")
        for _ in range(200):
            if srv.peers and srv.peers[0].writer.is_closing():
                break
            await asyncio.sleep(0.01)
        await sim.stop()
    assert not srv.errors, srv.errors
    assert srv.peers, "the originated call never reached the FastAGI server"
    assert not mismatches, "\n".join(mismatches)


def _recorded_exec_ends(name: str, channel: str) -> list[tuple[str, str, str]]:
    """(Command, ResultCode, Result) of the AGIExecEnd events of `channel` in the scenario's .ami companion."""
    from ivr.ami.protocol import AMIParser, Message, Role

    data = "".join(r["data"] for r in load_records(name + ".ami") if r["dir"] == "asterisk->app")
    out = []
    for m in AMIParser(Role.CLIENT).feed(data.encode("latin-1")):
        if isinstance(m, Message) and m.get("Event") == "AGIExecEnd" and m.get("Channel") == channel:
            out.append((normalise(m["Command"]), m["ResultCode"], m["Result"]))
    return out


def _speak(call: Call, seconds: float) -> None:
    from ivr.sim.channel import MediaEvent

    ch = call.channel
    assert ch is not None
    now = call.sim.clock.now()
    ch.voice.append((now, now + seconds))
    ch.post(MediaEvent("voice", time=now))


def _schedule(sim: SimulatedAsterisk, call: Call, item: tuple) -> None:
    clock = sim.clock
    if item[0] == "dtmf":
        clock.call_later(item[2], lambda d=item[1]: call.press(d))
    elif item[0] == "hangup":
        clock.call_later(item[1], call.hangup)
    elif item[0] == "retrieve":
        clock.call_later(item[1], lambda: sim.retrieve_parked(701, talk=item[2]))


FILES = {  # from the '### files produced' notes
    "agi04-dtmf.wav": 37164,
    "agi04-silence.wav": 61350,
    "agi04-timeout.wav": 48044,
    "agi04-notimeout.wav": 20844,
    "agi04-hangup.wav": 40364,
    "agi08-mixmon.wav": 90284,
}


def _check_files(name: str, stream: object, recordings: Path) -> int:
    """The WAV files the scenario produced have the recorded sizes; returns how many were compared."""
    text = (ROOT / (name + ".txt")).read_text()
    checked = 0
    for fname, size in FILES.items():
        if fname in text and any(fname in line for line in _sent_lines(stream)):
            path = recordings / fname
            assert path.exists(), fname
            assert path.stat().st_size == size, (fname, path.stat().st_size, size)
            checked += 1
    return checked


def _sent_lines(stream: object) -> list[str]:
    return [it[1].replace(" wav ", ".wav ") for it in stream.plan if it[0] == "send"]

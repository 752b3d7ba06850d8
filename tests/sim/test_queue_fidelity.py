"""Queue() as Asterisk 22's app_queue: channel variables and the order of its AMI events.

agi-07's Queue sessions (agi1: `Queue agiq,c`, `Queue testq,,,,4`, `Queue emptyq`; agi2: `Queue agiq`) are
replayed as in test_conformance.py and the simulator's queue-related AMI events are compared, in order, with the
recorded `.ami` companion.  ami-15's caller who abandons and the cases no recording shows (a caller who hangs up
while talking, setinterfacevar) use the public test API; their expected lines are quoted from the transcripts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ivr.ami.protocol import AMIParser, Message, Role
from ivr.sim import AgentSpec, CallSpec, Hangup, OnCommand, QueueSpec, SimConfig, SimulatedAsterisk, Sleep, VirtualClock
from ivr.sim.events import Event
from ivr.sim.simulator import Call

from .agi_peer import Peer, ScriptedAGIServer
from .test_conformance import _spec, replay_stream
from .transcripts import agi_streams, env_dict, load_records, normalise

SCENARIO = "agi-07-queue-moh-park"
QUEUE_VARS = {
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
    "ABANDONED",
    "QUEUESTATUS",
    "QUEUEPOSITION",
    "MEMBERINTERFACE",
}
MS_DURATIONS = {"ANSWEREDTIME_MS", "DIALEDTIME_MS", "RINGTIME_MS", "PROGRESSTIME_MS"}
KEPT = {
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "QueueMemberStatus",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "BridgeLeave",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
}
FIELDS = (
    "Queue",
    "Position",
    "Count",
    "OriginalPosition",
    "HoldTime",
    "TalkTime",
    "RingTime",
    "Reason",
    "CallsTaken",
    "DialStatus",
    "BridgeNumChannels",
    "Class",
)


def project(
    pairs: Message | Event, agi_channel: str, kept: set[str] = KEPT, variables: set[str] = QUEUE_VARS
) -> tuple[str, ...] | None:
    """The comparable part of one event: its name, the channel (normalised) and the queue-relevant fields.
    Millisecond durations are compared to the nearest 100 ms: the recorded run spent a few ms on each step
    (ANSWEREDTIME_MS 2502 for the member's 2.5 s), the simulator spends exactly the modelled time."""
    name = pairs.get("Event") or ""
    channel = pairs.get("Channel") or ""
    if name.startswith("Dial") and channel != agi_channel:
        return None  # the Originate that created the recorded call dials too
    if name == "VarSet":
        var = pairs.get("Variable") or ""
        if channel != agi_channel or var not in variables:
            return None
        value = pairs.get("Value") or ""
        if var in MS_DURATIONS and value:
            value = f"~{round(int(value), -2)}"
        return ("VarSet", var, normalise(value))
    if name not in kept:
        return None
    return (name, normalise(channel)) + tuple(f"{f}={pairs.get(f)}" for f in FIELDS if pairs.get(f) is not None)


def recorded(
    stream_index: int, kept: set[str] = KEPT, scenario: str = SCENARIO, variables: set[str] = QUEUE_VARS
) -> list[tuple[str, ...]]:
    """The projected events of the recorded .ami companion while the scenario's stream `stream_index` ran."""
    stream = agi_streams(scenario)[stream_index]
    agi_channel = env_dict(stream.env)["agi_channel"]
    parser = AMIParser(Role.CLIENT)
    out = []
    for r in load_records(scenario + ".ami"):
        if r["dir"] != "asterisk->app":
            continue
        for m in parser.feed(r["data"].encode("latin-1")):
            if isinstance(m, Message) and stream.start <= r["t"] <= stream.end:
                p = project(m, agi_channel, kept, variables)
                if p is not None:
                    out.append(p)
    return out


# The whole-second figures (TalkTime, HoldTime, QUEUEWAIT) are differences of time(NULL), so they depend on where
# the second boundaries fall.  In agi-07 they fell ~0.05 s into each scenario second: agi1's channel (created at
# +0.009) has uniqueid 1795909334.x, agi2's (created at +13.083) 1795909348.x, so the boundary is at most 0.083 s
# into the second; and TalkTime 2 for the call bridged from +0.513 to +3.015 puts it after +0.015.
SECOND_BOUNDARY = 0.05


def recorded_clock(stream_index: int) -> VirtualClock:
    """A virtual clock showing, when the call is placed, the recorded epoch time of the call's creation."""
    stream = agi_streams(SCENARIO)[stream_index]
    epoch = int(env_dict(stream.env)["agi_uniqueid"].split(".")[0])
    phase = (stream.start - SECOND_BOUNDARY) % 1.0
    return VirtualClock(start=datetime.fromtimestamp(epoch + phase, tz=UTC))


async def simulated(
    stream_index: int, kept: set[str] = KEPT, scenario: str = SCENARIO, variables: set[str] = QUEUE_VARS
) -> tuple[list[tuple[str, ...]], dict[str, str]]:
    """Replay the scenario's stream `stream_index`; the projected events of the simulator and the call's
    variables."""
    stream = agi_streams(scenario)[stream_index]
    env = env_dict(stream.env)
    spec, route = _spec(env, {})
    clock = recorded_clock(stream_index) if scenario == SCENARIO else VirtualClock()
    sim = SimulatedAsterisk(SimConfig(routes={env["agi_extension"]: route}), clock=clock)
    events: list[Event] = []
    sim.pbx.bus.subscribe(events.append)
    mismatches: list[str] = []
    holder: dict[str, Call] = {}

    async def replay(peer: Peer) -> None:
        await replay_stream(peer, stream, sim, holder["call"], {}, mismatches)

    async with ScriptedAGIServer(replay) as srv:
        await sim.start(("127.0.0.1", srv.port), ami=False)
        holder["call"] = await sim.place_call(spec)
        rec = await holder["call"].finished(timeout=20)
        await sim.stop()
    assert not srv.errors and not mismatches, (srv.errors, mismatches)
    if scenario == SCENARIO:
        assert rec.uniqueid.split(".")[0] == env["agi_uniqueid"].split(".")[0]
    out = [p for p in (project(e, rec.channel, kept, variables) for e in events) if p is not None]
    return out, rec.variables


async def test_queue_with_c_timeout_and_joinempty_events_and_variables_as_recorded() -> None:
    """agi-07 agi1.  Quoted from agi-07-queue-moh-park.ami.txt:
    `Queue agiq,c` starts with "Variable: ANSWEREDTIME / Value: " ... "Variable: QUEUEWAIT_MS / Value: ", the
    member answers: "Event: QueueCallerLeave" then "Variable: QUEUEPOSITION / Value: 1", "Variable: QUEUEWAIT /
    Value: 0", "Variable: QUEUEWAIT_MS / Value: 0", "Event: AgentConnect"; it hangs up: "Event: AgentComplete"
    ... "Variable: ANSWEREDTIME / Value: 2", "Variable: ANSWEREDTIME_MS / Value: 2502", "Variable: DIALEDTIME /
    Value: 3", "Variable: DIALEDTIME_MS / Value: 3009", "Variable: QUEUESTATUS / Value: CONTINUE".
    `Queue testq,,,,4` times out: "Variable: ABANDONED / Value: TRUE", "Event: QueueCallerAbandon" ("HoldTime:
    4"), "Variable: QUEUEWAIT / Value: 4", "Variable: QUEUEWAIT_MS / Value: 4000", "Variable: DIALEDTIME /
    Value: 7", "Variable: DIALEDTIME_MS / Value: 7016", "Variable: ANSWEREDTIME / Value: 0", "Variable:
    ANSWEREDTIME_MS / Value: 0", "Event: MusicOnHoldStop", "Event: QueueCallerLeave", "Variable: QUEUEPOSITION /
    Value: 1", "Variable: QUEUESTATUS / Value: TIMEOUT".
    `Queue emptyq` clears the same six variables, then "Variable: ABANDONED / Value: " (the TRUE left by testq)
    and "Variable: QUEUESTATUS / Value: JOINEMPTY"."""
    want = recorded(0)
    got, variables = await simulated(0)
    assert ("VarSet", "ANSWEREDTIME_MS", "~2500") in want  # the recording says what the test claims
    assert ("VarSet", "ABANDONED", "") in want
    assert got == want
    assert variables["QUEUESTATUS"] == "JOINEMPTY" and "ABANDONED" not in variables
    assert variables["QUEUEPOSITION"] == "1"


async def test_queue_without_c_events_and_variables_as_recorded() -> None:
    """agi-07 agi2 (`Queue agiq`, the member hangs up): "200 result=-1", then the .ami has "Variable:
    ANSWEREDTIME / Value: 2", "Variable: ANSWEREDTIME_MS / Value: 2507" and DIALEDTIME/DIALEDTIME_MS but no
    QUEUESTATUS (the AGI's "GET VARIABLE QUEUESTATUS" gets "200 result=0")."""
    # QueueMemberStatus left out: it follows the member's device state, which app_queue processes on another
    # thread, and lands elsewhere in agi2 (between QUEUEPOSITION and QUEUEWAIT) than in agi1 (after the first
    # BridgeEnter, compared above); its CallsTaken also counts agi1's call, made on the same recorded Asterisk.
    kept = KEPT - {"QueueMemberStatus"}
    want = recorded(1, kept)
    got, variables = await simulated(1, kept)
    assert not any(p[:2] == ("VarSet", "QUEUESTATUS") for p in want)
    assert got == want
    assert variables["ANSWEREDTIME"] == "2" and variables["ANSWEREDTIME_MS"] == "2500"
    assert "QUEUESTATUS" not in variables


async def run(handler, spec: CallSpec, config: SimConfig | None = None):  # type: ignore[no-untyped-def]
    """One call against a scripted FastAGI server; its record and every event of the bus (QueueMemberStatus has
    no channel, so a call's own record does not hold it)."""
    events: list[Event] = []
    async with ScriptedAGIServer(handler) as srv:
        sim = SimulatedAsterisk(config or SimConfig(), clock=VirtualClock())
        sim.pbx.bus.subscribe(events.append)
        await sim.start(("127.0.0.1", srv.port), ami=False)
        try:
            rec = await (await sim.place_call(spec)).finished(timeout=10)
        finally:
            await sim.stop()
    assert not srv.errors, srv.errors
    return rec, events


def _names(events: list[Event], agi_channel: str) -> list[str]:
    out = []
    for e in events:
        p = project(e, agi_channel)
        if p is not None:
            out.append(p[1] if p[0] == "VarSet" else p[0])
    return out


async def test_caller_abandons_while_waiting_as_in_ami_15() -> None:
    """ami-15 caller 2 hangs up after 3 s in testq (the member is paused).  Quoted in order: "Event:
    MusicOnHoldStop", "Variable: QUEUEWAIT / Value: 3", "Variable: QUEUEWAIT_MS / Value: 3000", "Variable:
    DIALEDTIME / Value: 3", "Variable: DIALEDTIME_MS / Value: 3506", "Variable: ANSWEREDTIME / Value: 0",
    "Variable: ANSWEREDTIME_MS / Value: 0", "Variable: ABANDONED / Value: TRUE", "Event: QueueCallerAbandon"
    ("HoldTime: 3"), "Event: QueueCallerLeave", "Variable: QUEUEPOSITION / Value: 1"; no QUEUESTATUS."""

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Queue testq,,,,60")

    rec, events = await run(handler, CallSpec(flow="x", script=[OnCommand("EXEC Queue"), Sleep(3), Hangup()]))
    names = _names(events, rec.channel)
    assert names[names.index("QueueCallerJoin") - 6 :] == [
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "DIALEDTIME",
        "DIALEDTIME_MS",
        "QUEUEWAIT",
        "QUEUEWAIT_MS",
        "QueueCallerJoin",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "QUEUEWAIT",
        "QUEUEWAIT_MS",
        "DIALEDTIME",
        "DIALEDTIME_MS",
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "ABANDONED",
        "QueueCallerAbandon",
        "QueueCallerLeave",
        "QUEUEPOSITION",
    ]
    v = rec.variables
    # ANSWER took 0.5 s: DIALEDTIME counts from the channel's creation, QUEUEWAIT from Queue()
    assert (v["QUEUEWAIT"], v["QUEUEWAIT_MS"], v["DIALEDTIME"], v["DIALEDTIME_MS"]) == ("3", "3000", "3", "3500")
    assert (v["ANSWEREDTIME"], v["ANSWEREDTIME_MS"], v["ABANDONED"]) == ("0", "0", "TRUE")
    assert "QUEUESTATUS" not in v
    abandon = rec.events_named("QueueCallerAbandon")[0]
    assert (abandon["Position"], abandon["OriginalPosition"], abandon["HoldTime"]) == ("1", "1", "3")


async def test_caller_hangs_up_while_talking_sets_answered_and_dialed_times() -> None:
    """Not recorded; inferred from app_queue (the bridge returns the same way whoever hangs up):
    ANSWEREDTIME/ANSWEREDTIME_MS and DIALEDTIME/DIALEDTIME_MS are set as in agi-07 ("Variable: ANSWEREDTIME_MS /
    Value: 2502"), once the caller has left the bridge and before the member's leg leaves (as app_dial does in
    agi-06.ami when the caller hangs up), AgentComplete says "Reason: caller", no QUEUESTATUS, and Queue()
    answers -1 followed by HANGUP."""
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        got.append(await p.cmd("EXEC Queue support,c"))
        got.append([await p.line()])
        got.append(await p.cmd("GET VARIABLE ANSWEREDTIME_MS"))  # dead mode still reads variables

    cfg = SimConfig()
    cfg.agents["a1"] = AgentSpec("a1", answer_after=3.0, talk=20.0)
    cfg.queues["support"] = QueueSpec("support", members=["Local/a1@agents"])
    rec, events = await run(
        handler, CallSpec(flow="x", script=[OnCommand("EXEC Queue"), Sleep(10.25), Hangup()]), config=cfg
    )
    assert got == [["200 result=-1\n"], ["HANGUP\n"], ["200 result=1 (7250)\n"]]
    v = rec.variables
    assert (v["ANSWEREDTIME"], v["ANSWEREDTIME_MS"]) == ("7", "7250")
    assert (v["DIALEDTIME"], v["DIALEDTIME_MS"]) == ("10", "10750")  # + ANSWER's 0.5 s
    assert (v["QUEUEWAIT"], v["QUEUEWAIT_MS"]) == ("3", "3000")
    assert "QUEUESTATUS" not in v and "ABANDONED" not in v
    names = _names(events, rec.channel)
    assert names[names.index("AgentComplete") :] == [
        "AgentComplete",
        "QueueMemberStatus",
        "BridgeLeave",
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "DIALEDTIME",
        "DIALEDTIME_MS",
        "BridgeLeave",
    ]
    leaves = [e for e in events if e.name == "BridgeLeave"]
    assert [(e["Channel"] == rec.channel, e["BridgeNumChannels"]) for e in leaves] == [(True, "1"), (False, "0")]
    connect, complete = rec.events_named("AgentConnect")[0], rec.events_named("AgentComplete")[0]
    assert (connect["HoldTime"], connect["RingTime"]) == ("3", "3")
    assert (complete["HoldTime"], complete["TalkTime"], complete["Reason"]) == ("3", "7", "caller")


async def test_answered_order_is_leave_then_connect_as_in_ami_15() -> None:
    """ami-15 caller 1: "Event: QueueCallerLeave", "Variable: QUEUEPOSITION / Value: 1", "Variable: QUEUEWAIT /
    Value: 0", "Variable: QUEUEWAIT_MS / Value: 0", "Event: AgentConnect", "Event: BridgeEnter" (the member's
    leg, "BridgeNumChannels: 1"), "Event: BridgeEnter" (the caller, "BridgeNumChannels: 2"); at the end
    "Event: AgentComplete" ("Reason: agent") before "Event: BridgeLeave"."""

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Queue agiq")

    rec, events = await run(handler, CallSpec(flow="x"))
    names = [n for n in _names(events, rec.channel) if n != "QueueMemberStatus"]
    i = names.index("DialEnd")
    assert names[i:] == [
        "DialEnd",
        "MusicOnHoldStop",
        "QueueCallerLeave",
        "QUEUEPOSITION",
        "QUEUEWAIT",
        "QUEUEWAIT_MS",
        "AgentConnect",
        "BridgeEnter",
        "BridgeEnter",
        "AgentComplete",
        "BridgeLeave",
        "BridgeLeave",
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "DIALEDTIME",
        "DIALEDTIME_MS",
    ]
    enters = rec.events_named("BridgeEnter")
    assert [(e["BridgeNumChannels"], e["Channel"] == rec.channel) for e in enters] == [("1", False), ("2", True)]
    assert rec.events_named("AgentComplete")[0]["Reason"] == "agent"


async def test_a_second_queue_clears_the_first_ones_results() -> None:
    """agi-07.ami `Queue emptyq` after `Queue testq,,,,4`: the six variables are set to "" ("Variable:
    ANSWEREDTIME / Value: ") and the leftover ABANDONED is deleted ("Variable: ABANDONED / Value: "); GET
    VARIABLE then answers as for a variable set to "" (`200 result=1 ()`) and as for an unset one."""
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Queue testq,,,,2")
        got.append(await p.cmd("GET VARIABLE ABANDONED"))
        await p.cmd("EXEC Queue emptyq")
        for var in ("ABANDONED", "ANSWEREDTIME", "QUEUEWAIT_MS", "QUEUESTATUS"):
            got.append(await p.cmd("GET VARIABLE " + var))

    rec, events = await run(handler, CallSpec(flow="x"))
    assert got == [
        ["200 result=1 (TRUE)\n"],
        ["200 result=0\n"],
        ["200 result=1 ()\n"],
        ["200 result=1 ()\n"],
        ["200 result=1 (JOINEMPTY)\n"],
    ]
    abandoned = [e["Value"] for e in rec.events_named("VarSet") if e["Variable"] == "ABANDONED"]
    assert abandoned == ["TRUE", ""]  # the first Queue() had nothing to delete: no VarSet


async def test_setinterfacevar_sets_the_member_variables() -> None:
    """agi-07 (setinterfacevar off, Asterisk's default): "GET VARIABLE MEMBERINTERFACE" -> "200 result=0".
    With `setinterfacevar=yes` (inferred from app_queue, not recorded) MEMBERINTERFACE, MEMBERNAME ... are set
    on the caller before AgentConnect."""
    got = []

    async def handler(p: Peer) -> None:
        await p.cmd("ANSWER")
        await p.cmd("EXEC Queue agiq,c")
        got.append(await p.cmd("GET VARIABLE MEMBERINTERFACE"))
        await p.cmd("EXEC Queue sales,c")
        got.append(await p.cmd("GET VARIABLE MEMBERINTERFACE"))
        got.append(await p.cmd("GET VARIABLE MEMBERNAME"))

    cfg = SimConfig()
    cfg.queues["sales"] = QueueSpec("sales", members=["Local/answer2s@agents"], setinterfacevar=True)
    rec, events = await run(handler, CallSpec(flow="x"), config=cfg)
    assert got == [
        ["200 result=0\n"],
        ["200 result=1 (Local/answer2s@agents)\n"],
        ["200 result=1 (Local/answer2s@agents)\n"],
    ]
    names = _names(events, rec.channel)
    assert names.index("MEMBERINTERFACE") < len(names) - 1 - names[::-1].index("AgentConnect")


def test_recorded_projection_is_not_empty() -> None:
    """Guards the comparisons above against a projection that silently drops everything."""
    names = [p[0] if p[0] != "VarSet" else p[1] for p in recorded(0)]
    assert names.count("QueueCallerJoin") == 2 and names.count("QueueCallerAbandon") == 1
    assert names.count("QUEUESTATUS") == 3  # CONTINUE, TIMEOUT, JOINEMPTY


def test_whole_seconds_are_differences_of_time_null() -> None:
    """ami-15 caller 1: bridged from +0.511 to +4.014 (3.503 s) yet "TalkTime: 4": four second boundaries fell
    between the two (uniqueids 1795909480.x until +0.511, 1795909485.x at +5.020).  The same 3.503 s give 3
    when only three boundaries fall inside.  QueueStatus' Wait and QueueSummary's LongestHoldTime use the same
    arithmetic."""
    from ivr.sim.queue_app import whole_seconds

    assert whole_seconds(1795909480.9, 1795909484.403) == 4  # ami-15's case: the call started late in a second
    assert whole_seconds(1795909480.1, 1795909483.603) == 3  # the same 3.503 s started early in a second
    assert whole_seconds(1795909480.9, 1795909481.2) == 1  # 0.3 s that straddle a second

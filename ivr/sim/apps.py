"""Dialplan applications that AGI `EXEC` can run: Dial, Queue, Park, MusicOnHold, Playback, Wait, MixMonitor ...

Rules for this file:
- Each app returns Asterisk's application result (0, -1 ...) and sets the channel variables Asterisk sets
  (DIALSTATUS, DIALEDTIME, ANSWEREDTIME, DIALEDPEERNAME, QUEUESTATUS, PARKEDLOT, PLAYBACKSTATUS,
  MIXMONITOR_FILENAME ...).  An unknown app -> None (the command answers -2).
- Dial/Queue whose bridged call ended return -1 *without* hanging up the AGI channel (agi-06, agi-07).
- Queue() lives in queue_app.py (app_queue's variables and events are a job of their own).
- Agents are `AgentSpec`s: they answer after N s and talk M s, are busy, never answer or are unavailable.
- All waiting goes through the channel (its clock); apps never sleep directly.
- Arguments are cut as AST_STANDARD_APP_ARGS cuts them (`appargs.separate_args`: commas inside parentheses or
  quotes, and escaped ones, do not split; quotes and backslashes go), each app with the number of arguments it
  declares; options are read like ast_app_parse_options (`appargs.parse_options`).
- Park's `c([[context,]exten,]priority)` names where a timed-out call goes instead of the lot's comebackcontext.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ivr.sim import media
from ivr.sim.appargs import parse_goto, parse_options, separate_args
from ivr.sim.bridging import ring_agent, talk_with
from ivr.sim.parking import park_channel
from ivr.sim.queue_app import queue, set_duration

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession
    from ivr.sim.channel import SimChannel

App = Callable[["AGISession", str], Awaitable[int]]


def _args(data: str, count: int) -> list[str]:
    """The application's `count` declared arguments; those not given are ""."""
    args = separate_args(data, max_args=count)
    return args + [""] * (count - len(args))


# -- Dial ---------------------------------------------------------------------------------------------------------

DIAL_CLEARED = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


async def dial(s: AGISession, data: str) -> int:
    """Dial(target[&target2][,timeout[,options]]) to an agent; transfers re-dial the new target.

    Variables as agi-06.ami records them: the eleven of DIAL_CLEARED set to "" first; "RINGTIME / Value: 0",
    "RINGTIME_MS" when the agent rings; on the answer DIALSTATUS, DIALEDPEERNAME, DIALEDPEERNUMBER
    ("answer2s@agents"); when the bridge ends ANSWEREDTIME(_MS), DIALEDTIME(_MS) and DIALSTATUS again.
    ANSWEREDTIME is app_dial's *up time of the calling channel*, not the talk time: "ANSWEREDTIME_MS / Value:
    9027" for a call answered by the agent 3 s before it ended, on a channel answered 9 s earlier; DIALEDTIME
    counts from the channel's creation ("DIALEDTIME_MS / Value: 9028")."""
    args = _args(data, 4)  # peers, timeout, options, URL
    if not args[0]:
        return -1
    target = args[0].split("&")[0]
    timeout = float(args[1]) if args[1].strip().isdigit() else None
    ch = s.channel
    clock = ch.pbx.clock
    for var in DIAL_CLEARED:
        ch.set_var(var, "")
    start = clock.now()

    def ringing() -> None:
        ring_ms = max(0, int(round((clock.now() - start) * 1000)))
        ch.set_var("RINGTIME", str(ring_ms // 1000))
        ch.set_var("RINGTIME_MS", str(ring_ms))

    def answered(leg: SimChannel) -> None:
        # features.c pre_bridge_setup answers a caller that is not up yet (ast_raw_answer, unless
        # BRIDGE_NOANSWER): ANSWEREDTIME then counts from here (inferred; the recordings answer first)
        if ch.state != 6:
            ch.set_state(6)
        ch.set_var("DIALSTATUS", "ANSWER")
        ch.set_var("DIALEDPEERNAME", leg.name)
        ch.set_var("DIALEDPEERNUMBER", target.split("/", 1)[-1])

    done: list[bool] = []

    def bridge_ended() -> None:  # once: when the caller left the bridge, or after the call
        if done:
            return
        done.append(True)
        end = clock.now()
        set_duration(ch, "ANSWEREDTIME", end - (ch.answered_at if ch.answered_at is not None else end))
        set_duration(ch, "DIALEDTIME", end - ch.created)
        ch.set_var("DIALSTATUS", "ANSWER")

    ch.transfer_to = None
    ring = await ring_agent(ch, target, timeout, on_ringing=ringing, on_answer=answered)
    s.sim.note_dial(s, target, ring.status)
    if ring.status != "ANSWER":
        ch.set_var("DIALSTATUS", ring.status)
        return -1 if ring.status == "CANCEL" else 0
    await talk_with(s, ring, target, on_caller_gone=bridge_ended)
    bridge_ended()
    return -1


# -- Park ---------------------------------------------------------------------------------------------------------


async def park(s: AGISession, data: str) -> int:
    """Park([lot[,options]]): blocks; timeout -> 0 (then the AGI sees HANGUP, comeback); retrieved -> -1 at its end.

    Options as res_parking reads them: t(<seconds>) the timeout, s silent (no space announcement), c(<where>) the
    comeback location ([[context,]exten,]priority from where the channel is now) instead of the lot's
    comebackcontext,s,1 (a label or bad priority there raises UnmodelledGoto: the simulator cannot follow it)."""
    _lot, options_text, _ = _args(data, 3)  # lot_name (one lot is modelled), options, other
    options = parse_options(options_text)
    ch = s.channel
    lot = ch.pbx.config.parking
    t = (options.get("t") or "").strip()
    timeout = float(t) if t.isdigit() else lot.parkingtime
    comeback = parse_goto(options["c"] or "", ch.context, ch.exten, ch.priority) if "c" in options else None
    ch.set_var("PARKEDLOT", lot.name)
    announce = "s" not in options
    outcome, space = await park_channel(
        ch,
        timeout=timeout,
        parker=ch.name,
        announce=announce,
        comeback=comeback,
        on_space=lambda sp: s.sim.note_destination(s, f"parked:{sp}"),
    )
    if outcome == "timeout":
        # park_channel moved the channel; its Newexten names the app still running (Park), before AGIExecEnd (agi-07c)
        ch.newexten(ch.app, ch.appdata, priority=ch.priority)
        s.comeback(ch.context, ch.exten, ch.priority)
        return 0
    if outcome == "retrieved":
        await s.sim.wait_retrieval_end(ch, space)
        return -1
    return -1


# -- simple apps --------------------------------------------------------------------------------------------------


async def music_on_hold(s: AGISession, data: str) -> int:
    args = _args(data, 2)  # class, duration
    duration = float(args[1]) if args[1].strip().replace(".", "", 1).isdigit() else None
    ch = s.channel
    ch.stop_moh()
    ch.start_moh(args[0] or "default")
    ev = await ch.pause(duration) if duration else await ch.next_event_kind("hangup")
    ch.stop_moh()
    return -1 if ev is not None else 0


async def wait(s: AGISession, data: str) -> int:
    try:
        seconds = float(data) if data else 0.0
    except ValueError:
        seconds = 0.0
    return -1 if await s.channel.pause(seconds) is not None else 0


async def playback(s: AGISession, data: str) -> int:
    names = _args(data, 2)[0].split("&") if data else []  # filenames, options
    status = "SUCCESS"
    for name in names:
        res = await media.play(s.channel, name, "")
        if res.kind == "hangup":
            s.channel.set_var("PLAYBACKSTATUS", "FAILED")
            return -1
        if res.kind == "missing":
            status = "FAILED"
    s.channel.set_var("PLAYBACKSTATUS", status)
    return 0


async def answer_app(s: AGISession, data: str) -> int:
    s.channel.set_state(6)
    return 0


async def noop(s: AGISession, data: str) -> int:
    return 0


async def set_app(s: AGISession, data: str) -> int:
    name, _, value = data.partition("=")
    if name:
        s.channel.set_var(name.strip(), value)
    return 0


async def mixmonitor(s: AGISession, data: str) -> int:
    """MixMonitor(file[,options]): i(VAR) stores the id; the WAV is written when it stops or the call ends."""
    filename, options, _ = _args(data, 3)  # file, options, post-process command
    if not filename:
        return -1
    rec = s.sim.start_mixmonitor(s.channel, filename)
    if rec is None:
        return -1
    var = parse_options(options).get("i")
    if var:
        s.channel.set_var(var, rec.id)
    return 0


async def stop_mixmonitor(s: AGISession, data: str) -> int:
    s.sim.stop_mixmonitor(s.channel, _args(data, 1)[0].strip() or None)
    return 0


APPS: dict[str, App] = {
    "dial": dial,
    "queue": queue,
    "park": park,
    "musiconhold": music_on_hold,
    "wait": wait,
    "playback": playback,
    "answer": answer_app,
    "noop": noop,
    "set": set_app,
    "mixmonitor": mixmonitor,
    "stopmixmonitor": stop_mixmonitor,
}


async def run_app(s: AGISession, name: str, data: str) -> int | None:
    app = APPS.get(name.lower())
    if app is None:
        extra = s.sim.extra_apps.get(name.lower())
        if extra is None:
            return None
        app = extra
    ch = s.channel
    ch.notify_command(name)
    previous = (ch.app, ch.appdata)
    ch.app, ch.appdata = name, data  # what CoreShowChannels/Status show while it runs
    try:
        return await app(s, data)
    finally:
        ch.app, ch.appdata = previous

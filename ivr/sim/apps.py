"""Dialplan applications that AGI `EXEC` can run: Dial, Queue, Park, MusicOnHold, Playback, Wait, MixMonitor ...

Rules for this file:
- Each app returns Asterisk's application result (0, -1 ...) and sets the channel variables Asterisk sets
  (DIALSTATUS, DIALEDTIME, ANSWEREDTIME, DIALEDPEERNAME, QUEUESTATUS, PARKEDLOT, PLAYBACKSTATUS,
  MIXMONITOR_FILENAME ...).  An unknown app -> None (the command answers -2).
- Dial/Queue whose bridged call ended return -1 *without* hanging up the AGI channel (agi-06, agi-07).
- Agents are `AgentSpec`s: they answer after N s and talk M s, are busy, never answer or are unavailable.
- All waiting goes through the channel (its clock); apps never sleep directly.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Awaitable, Callable

from ivr.sim import media

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession
    from ivr.sim.channel import SimChannel
    from ivr.sim.pbx import QueueMember

App = Callable[["AGISession", str], Awaitable[int]]


def _args(data: str) -> list[str]:
    return data.split(",") if data else []


def _round_secs(seconds: float) -> str:
    return str(int(math.floor(seconds + 0.5)))


# -- Dial ---------------------------------------------------------------------------------------------------------

async def dial(s: "AGISession", data: str) -> int:
    args = _args(data)
    if not args or not args[0]:
        return -1
    targets = args[0].split("&")
    timeout = float(args[1]) if len(args) > 1 and args[1].strip().isdigit() else None
    ch = s.channel
    pbx = ch.pbx
    clock = pbx.clock
    start = clock.now()
    agent, exten, context = pbx.resolve_agent(targets[0])
    if agent is None or agent.unavailable:
        ch.set_var("DIALSTATUS", "CHANUNAVAIL")
        s.sim.note_dial(s, targets[0], "CHANUNAVAIL")
        return 0
    one, two = pbx.local_pair(exten, context, linkedid=ch.linkedid, caller_num=ch.caller_num,
                              caller_name=ch.caller_name, language=ch.language)
    dest = one
    dest.connected_num, dest.connected_name = ch.caller_num, ch.caller_name
    ch.emit("DialBegin", "call,all", dest.block("Dest") + [("DialString", targets[0].split("/", 1)[-1])])
    status = await _ring(ch, agent.answer_after, agent.busy, timeout)
    if status != "ANSWER":
        ch.emit("DialEnd", "call,all", dest.block("Dest") + [("DialStatus", status)])
        for leg in (two, one):
            leg.hangup(17 if status == "BUSY" and leg is two else 0)
        ch.set_var("DIALSTATUS", status)
        s.sim.note_dial(s, targets[0], status)
        if status == "CANCEL":
            return -1
        return 0
    answered = clock.now()
    dest.set_state(6)
    ch.emit("DialEnd", "call,all", dest.block("Dest") + [("DialStatus", "ANSWER")])
    ch.set_var("DIALSTATUS", "ANSWER")
    ch.set_var("DIALEDPEERNAME", dest.name)
    s.sim.note_dial(s, targets[0], "ANSWER")
    s.sim.note_destination(s, "agent:" + targets[0])
    ev = await ch.pause(agent.talk) if agent.talk is not None else await ch.next_event_kind("hangup")
    end = clock.now()
    ch.set_var("ANSWEREDTIME", _round_secs(end - answered))
    ch.set_var("DIALEDTIME", _round_secs(end - start))
    for leg in (one, two):
        leg.hangup(16)
    del ev
    return -1


async def _ring(ch: "SimChannel", answer_after: float | None, busy: bool, timeout: float | None) -> str:
    if busy:
        return "BUSY"
    clock = ch.pbx.clock
    start = clock.now()
    waits = [t for t in (answer_after, timeout) if t is not None]
    deadline = start + min(waits) if waits else None
    while True:
        ev = await ch.next_event(deadline)
        if ev is None:
            if answer_after is not None and (timeout is None or answer_after < timeout):
                return "ANSWER"
            return "NOANSWER"
        if ev.kind == "hangup":
            return "CANCEL"


# -- Queue --------------------------------------------------------------------------------------------------------

async def queue(s: "AGISession", data: str) -> int:
    """Queue(name[,options[,URL[,announce[,timeout]]]]) with ringall; QUEUESTATUS as recorded in agi-07."""
    args = _args(data) + [""] * 5
    name, options, timeout_s = args[0], args[1], args[4]
    ch = s.channel
    pbx = ch.pbx
    clock = pbx.clock
    q = pbx.queue(name)
    if q is None:
        ch.set_var("QUEUESTATUS", "JOINEMPTY")
        return 0
    available = [m for m in q.members.values() if not m.paused]
    if not available and not q.spec.joinempty:
        ch.set_var("QUEUESTATUS", "JOINEMPTY")
        return 0
    timeout = float(timeout_s) if timeout_s.strip().isdigit() else None
    start = clock.now()
    deadline = start + timeout if timeout else None
    q.callers.append(ch)
    position = len(q.callers)
    ch.emit("QueueCallerJoin", "agent,all", [("Queue", name), ("Position", str(position)),
                                             ("Count", str(len(q.callers)))])
    s.sim.note_destination(s, "queue:" + name)
    try:
        while True:
            member, answer_at = _pick_member(s, q)
            next_try = answer_at if answer_at is not None else clock.now() + q.spec.retry
            dl = min([t for t in (deadline, next_try) if t is not None])
            ev = await ch.next_event(dl)
            if ev is not None and ev.kind == "hangup":
                q.abandoned += 1
                ch.emit("QueueCallerAbandon", "agent,all", [
                    ("Queue", name), ("Position", str(_pos(q, ch))), ("OriginalPosition", str(position)),
                    ("HoldTime", str(int(clock.now() - start)))])
                return -1
            if ev is not None:
                continue
            now = clock.now()
            if deadline is not None and now >= deadline and (answer_at is None or answer_at > now):
                ch.set_var("QUEUESTATUS", "TIMEOUT")
                return 0
            if member is not None and answer_at is not None and now >= answer_at:
                return await _bridge_member(s, q, member, options, start)
    finally:
        if ch in q.callers:
            q.callers.remove(ch)
            ch.emit("QueueCallerLeave", "agent,all", [("Queue", name), ("Position", str(position)),
                                                      ("Count", str(len(q.callers)))])


def _pos(q: object, ch: "SimChannel") -> int:
    callers = getattr(q, "callers")
    return callers.index(ch) + 1 if ch in callers else 1


def _pick_member(s: "AGISession", q: object) -> tuple["QueueMember | None", float | None]:
    """ringall: the member who answers first wins; None when nobody will answer in this round."""
    pbx = s.channel.pbx
    best: tuple["QueueMember | None", float | None] = (None, None)
    now = pbx.clock.now()
    for m in getattr(q, "members").values():
        if not pbx.member_available(m):
            continue
        agent, _, _ = pbx.resolve_agent(m.interface)
        if agent is None or agent.busy or agent.answer_after is None:
            continue
        if agent.answer_after > getattr(q, "spec").member_timeout:
            continue
        at = now + agent.answer_after
        if best[1] is None or at < best[1]:
            best = (m, at)
    return best


async def _bridge_member(s: "AGISession", q: object, m: "QueueMember", options: str, start: float) -> int:
    ch = s.channel
    pbx = ch.pbx
    clock = pbx.clock
    name = getattr(q, "spec").name
    agent, _, _ = pbx.resolve_agent(m.interface)
    m.in_call = True
    answered = clock.now()
    holdtime = int(answered - start)
    ch.emit("AgentConnect", "agent,all", [("Queue", name), ("MemberName", m.display_name()),
                                           ("Interface", m.interface), ("HoldTime", str(holdtime))])
    s.sim.note_destination(s, "queue:%s:%s" % (name, m.interface))
    if ch in getattr(q, "callers"):
        getattr(q, "callers").remove(ch)
        ch.emit("QueueCallerLeave", "agent,all", [("Queue", name), ("Position", "1"),
                                                  ("Count", str(len(getattr(q, "callers"))))])
    talk = agent.talk if agent is not None else None
    ev = await ch.pause(talk) if talk is not None else await ch.next_event_kind("hangup")
    talked = clock.now() - answered
    m.in_call = False
    m.calls_taken += 1
    m.last_call = int(clock.now())
    q.completed += 1  # type: ignore[attr-defined]
    ch.emit("AgentComplete", "agent,all", [("Queue", name), ("MemberName", m.display_name()),
                                            ("Interface", m.interface), ("HoldTime", str(holdtime)),
                                            ("TalkTime", str(int(talked))),
                                            ("Reason", "caller" if ev is not None else "agent")])
    if ev is not None:        # the caller hung up while bridged
        return -1
    if "c" in options:
        ch.set_var("QUEUESTATUS", "CONTINUE")
        ch.set_var("ANSWEREDTIME", str(int(talked)))
        return 0
    return -1


# -- Park ---------------------------------------------------------------------------------------------------------

async def park(s: "AGISession", data: str) -> int:
    """Park([lot[,options]]): blocks; timeout -> 0 (then the AGI sees HANGUP, comeback); retrieved -> -1 at its end."""
    from ivr.sim.pbx import ParkedCall
    args = _args(data) + ["", ""]
    options = args[1]
    ch = s.channel
    pbx = ch.pbx
    lot = pbx.config.parking
    clock = pbx.clock
    m = re.search(r"t\((\d+)\)", options)
    timeout = float(m.group(1)) if m else lot.parkingtime
    space = pbx.free_space()
    if space is None:
        return -1
    deadline = clock.now() + timeout          # the announcement counts against the timeout (agi-07c: 6.0 s)
    ch.set_var("PARKEDLOT", lot.name)
    if "s" not in re.sub(r"\(.*?\)", "", options):
        if await ch.pause(lot.announce_seconds) is not None:
            return -1
    parked = ParkedCall(ch, space, parker=ch.name, timeout=timeout, parked_at=clock.now())
    pbx.parked[space] = parked
    ch.set_var("PARKINGSLOT", str(space))
    s.sim.note_destination(s, "parked:%d" % space)
    ch.emit("ParkedCall", "call,all", _park_fields(parked, lot.name))
    try:
        while True:
            ev = await ch.next_event(deadline)
            if ev is None:
                ch.emit("ParkedCallTimeOut", "call,all", _park_fields(parked, lot.name))
                ch.unset_var("PARKINGSLOT")
                s.comeback(lot.comebackcontext)
                return 0
            if ev.kind == "hangup":
                ch.emit("ParkedCallGiveUp", "call,all", _park_fields(parked, lot.name))
                return -1
            if parked.retrieved_by is not None:
                ch.unset_var("PARKINGSLOT")
                talk = s.sim.retrieval_talk.pop(space, None)
                if talk is None:
                    await ch.next_event_kind("hangup", also_wake=True)
                else:
                    await ch.pause(talk)
                return -1
    finally:
        parked.done = True
        pbx.parked.pop(space, None)


def _park_fields(p: object, lot: str) -> list[tuple[str, str]]:
    ch = getattr(p, "channel")
    return [(k.replace("Channel", "ParkeeChannel", 1) if k == "Channel" else "Parkee" + k, v)
            for k, v in ch.block()] + [
        ("ParkerDialString", getattr(p, "parker")), ("Parkinglot", lot),
        ("ParkingSpace", str(getattr(p, "space"))), ("ParkingTimeout", str(int(getattr(p, "timeout")))),
        ("ParkingDuration", "0")]


# -- simple apps --------------------------------------------------------------------------------------------------

async def music_on_hold(s: "AGISession", data: str) -> int:
    args = _args(data) + ["", ""]
    duration = float(args[1]) if args[1].strip().replace(".", "", 1).isdigit() else None
    ch = s.channel
    ch.emit("MusicOnHoldStart", "call,all", [("Class", args[0] or "default")])
    ev = await ch.pause(duration) if duration else await ch.next_event_kind("hangup")
    ch.emit("MusicOnHoldStop", "call,all")
    return -1 if ev is not None else 0


async def wait(s: "AGISession", data: str) -> int:
    try:
        seconds = float(data) if data else 0.0
    except ValueError:
        seconds = 0.0
    return -1 if await s.channel.pause(seconds) is not None else 0


async def playback(s: "AGISession", data: str) -> int:
    names = _args(data)[0].split("&") if data else []
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


async def answer_app(s: "AGISession", data: str) -> int:
    s.channel.set_state(6)
    return 0


async def noop(s: "AGISession", data: str) -> int:
    return 0


async def set_app(s: "AGISession", data: str) -> int:
    name, _, value = data.partition("=")
    if name:
        s.channel.set_var(name.strip(), value)
    return 0


async def mixmonitor(s: "AGISession", data: str) -> int:
    """MixMonitor(file[,options]): i(VAR) stores the id; the WAV is written when it stops or the call ends."""
    args = _args(data) + [""]
    filename, options = args[0], args[1]
    if not filename:
        return -1
    rec = s.sim.start_mixmonitor(s.channel, filename)
    if rec is None:
        return -1
    m = re.search(r"i\(([^)]*)\)", options)
    if m and m.group(1):
        s.channel.set_var(m.group(1), rec.id)
    return 0


async def stop_mixmonitor(s: "AGISession", data: str) -> int:
    s.sim.stop_mixmonitor(s.channel, data.strip() or None)
    return 0


APPS: dict[str, App] = {
    "dial": dial, "queue": queue, "park": park, "musiconhold": music_on_hold, "wait": wait,
    "playback": playback, "answer": answer_app, "noop": noop, "set": set_app, "mixmonitor": mixmonitor,
    "stopmixmonitor": stop_mixmonitor,
}


async def run_app(s: "AGISession", name: str, data: str) -> int | None:
    app = APPS.get(name.lower())
    if app is None:
        extra = s.sim.extra_apps.get(name.lower())
        if extra is None:
            return None
        app = extra
    s.channel.notify_command(name)
    return await app(s, data)

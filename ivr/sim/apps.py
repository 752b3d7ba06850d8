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
from ivr.sim.bridging import Ringing, ring_agent, talk
from ivr.sim.parking import park_channel
from ivr.sim.pbx import member_pairs

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession
    from ivr.sim.channel import SimChannel
    from ivr.sim.pbx import PBX, QueueMember, QueueState

App = Callable[["AGISession", str], Awaitable[int]]


def _args(data: str) -> list[str]:
    return data.split(",") if data else []


def _round_secs(seconds: float) -> str:
    return str(int(math.floor(seconds + 0.5)))


# -- Dial ---------------------------------------------------------------------------------------------------------

async def dial(s: "AGISession", data: str) -> int:
    """Dial(target[&target2][,timeout[,options]]) to an agent; transfers re-dial the new target."""
    args = _args(data)
    if not args or not args[0]:
        return -1
    target = args[0].split("&")[0]
    timeout = float(args[1]) if len(args) > 1 and args[1].strip().isdigit() else None
    ch = s.channel
    clock = ch.pbx.clock
    start = clock.now()
    ch.transfer_to = None
    ring = await ring_agent(ch, target, timeout)
    s.sim.note_dial(s, target, ring.status)
    if ring.status != "ANSWER":
        ch.set_var("DIALSTATUS", ring.status)
        return -1 if ring.status == "CANCEL" else 0
    answered = clock.now()
    ch.set_var("DIALSTATUS", "ANSWER")
    assert ring.leg is not None
    ch.set_var("DIALEDPEERNAME", ring.leg.name)
    outcome = await _talk_with(s, ring, target)
    end = clock.now()
    ch.set_var("ANSWEREDTIME", _round_secs(end - answered))
    ch.set_var("DIALEDTIME", _round_secs(end - start))
    del outcome
    return -1


async def _talk_with(s: "AGISession", ring: Ringing, target: str) -> str:
    """Talk to the answered agent; follow transfers to new targets.  Returns the last talk() outcome."""
    ch = s.channel
    while True:
        s.sim.note_destination(s, "agent:" + target)
        agent, _, _ = ch.pbx.resolve_agent(target)
        assert ring.leg is not None
        outcome = await talk(ch, ring.leg, ring.other, agent.talk if agent else None)
        if outcome != "transfer" or ch.transfer_to is None:
            return outcome
        target, ch.transfer_to = ch.transfer_to, None
        ring = await ring_agent(ch, target, None)
        s.sim.note_dial(s, target, ring.status)
        if ring.status != "ANSWER":
            return "caller" if ring.status == "CANCEL" else "agent"


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
    if not any(not m.paused for m in q.members.values()) and not q.spec.joinempty:
        ch.set_var("QUEUESTATUS", "JOINEMPTY")
        return 0
    timeout = float(timeout_s) if timeout_s.strip().isdigit() else None
    start = clock.now()
    deadline = start + timeout if timeout else None
    q.callers.append(ch)
    ch.queue_joined = start
    position = len(q.callers)
    ch.emit("QueueCallerJoin", "agent,all", [("Queue", name), ("Position", str(position)),
                                             ("Count", str(len(q.callers)))])
    ch.start_moh("default")
    s.sim.note_destination(s, "queue:" + name)
    ch.transfer_to = None
    try:
        next_ring = clock.now()
        while True:
            now = clock.now()
            ringing = _ring_members(ch, q) if now >= next_ring else []
            answers = [(at, i) for i, (_, _, at) in enumerate(ringing) if at is not None]
            winner = min(answers)[1] if answers else None
            if ringing:
                round_end = ringing[winner][2] if winner is not None else now + q.spec.member_timeout
            else:
                round_end = max(next_ring, now + q.spec.retry) if now >= next_ring else next_ring
            dl = min(t for t in (deadline, round_end) if t is not None)
            while True:
                ev = await ch.next_event(dl)
                if ev is None or ev.kind == "hangup" or ch.transfer_to is not None:
                    break
                if ev.kind == "wake" and not ringing:    # a member logged in or was unpaused: ring now
                    break
            now = clock.now()
            answered = (ev is None and winner is not None and now >= ringing[winner][2]
                        and not ringing[winner][0].paused)
            abandon = ev is not None and ev.kind == "hangup"
            for i, (m, legs, _) in enumerate(ringing):
                if answered and i == winner:
                    continue
                if not abandon and not answered and ch.transfer_to is None and now >= round_end:
                    ch.emit("AgentRingNoAnswer", "agent,all", legs[0].block("Dest") + [
                        ("Queue", name), ("Interface", m.interface), ("MemberName", m.display_name()),
                        ("RingTime", str(int(q.spec.member_timeout)))])
                status = "CANCEL" if abandon or answered or ch.transfer_to is not None else "NOANSWER"
                # an abandoning caller produces two DialEnd CANCEL events (README, Asterisk 22.10.1)
                for _ in range(2 if abandon else 1):
                    ch.emit("DialEnd", "call,all", legs[0].block("Dest") + [("DialStatus", status)])
                for leg in reversed(legs):
                    leg.hangup(0)
            if abandon:
                q.abandoned += 1
                ch.emit("QueueCallerAbandon", "agent,all", [
                    ("Queue", name), ("Position", str(_pos(q, ch))), ("OriginalPosition", str(position)),
                    ("HoldTime", str(int(now - start)))])
                return -1
            if ch.transfer_to is not None:          # redirected/transferred out of the queue
                target, ch.transfer_to = ch.transfer_to, None
                ring = await ring_agent(ch, target, None)
                if ring.status == "ANSWER":
                    await _talk_with(s, ring, target)
                return -1
            if answered and winner is not None:
                member, legs, _ = ringing[winner]
                return await _bridge_member(s, q, member, legs, options, start)
            if deadline is not None and now >= deadline:
                ch.set_var("QUEUESTATUS", "TIMEOUT")
                return 0
            next_ring = now + q.spec.retry if ringing else now
    finally:
        ch.stop_moh()
        if ch in q.callers:
            q.callers.remove(ch)
            ch.emit("QueueCallerLeave", "agent,all", [("Queue", name), ("Position", str(position)),
                                                      ("Count", str(len(q.callers)))])


def _pos(q: "QueueState", ch: "SimChannel") -> int:
    return q.callers.index(ch) + 1 if ch in q.callers else 1


def _ring_members(ch: "SimChannel", q: "QueueState") -> list[tuple["QueueMember", tuple["SimChannel", "SimChannel"],
                                                                      float | None]]:
    """ringall: call every available member (AgentCalled + DialBegin); each with the time it would answer
    within `member_timeout`, or None."""
    pbx = ch.pbx
    now = pbx.clock.now()
    out = []
    for m in q.members.values():
        if not pbx.member_available(m):
            continue
        agent, exten, context = pbx.resolve_agent(m.interface)
        if agent is not None and agent.busy:
            continue
        legs = pbx.local_pair(exten, context, linkedid=ch.linkedid, caller_num=ch.caller_num,
                              caller_name=ch.caller_name)
        ch.emit("AgentCalled", "agent,all", legs[0].block("Dest") + [
            ("Queue", q.spec.name), ("Interface", m.interface), ("MemberName", m.display_name())])
        ch.emit("DialBegin", "call,all", legs[0].block("Dest") + [("DialString", m.interface.split("/", 1)[-1])])
        answers = agent is not None and agent.answer_after is not None and agent.answer_after <= q.spec.member_timeout
        out.append((m, legs, now + agent.answer_after if answers and agent is not None else None))
    return out


async def _bridge_member(s: "AGISession", q: "QueueState", m: "QueueMember",
                         legs: tuple["SimChannel", "SimChannel"], options: str, start: float) -> int:
    ch = s.channel
    clock = ch.pbx.clock
    name = q.spec.name
    agent, _, _ = ch.pbx.resolve_agent(m.interface)
    one, two = legs
    one.set_state(6)
    ch.emit("DialEnd", "call,all", one.block("Dest") + [("DialStatus", "ANSWER")])
    ch.stop_moh()
    m.in_call = True
    ch.pbx.bus.emit("QueueMemberStatus", "agent,all", member_pairs(name, m))
    answered = clock.now()
    holdtime = str(int(answered - start))
    if ch in q.callers:
        q.callers.remove(ch)
        ch.emit("QueueCallerLeave", "agent,all", [("Queue", name), ("Position", "1"),
                                                  ("Count", str(len(q.callers)))])
    ch.emit("AgentConnect", "agent,all", one.block("Dest") + [
        ("Queue", name), ("Interface", m.interface), ("MemberName", m.display_name()),
        ("HoldTime", holdtime), ("RingTime", "0")])
    s.sim.note_destination(s, "queue:%s:%s" % (name, m.interface))
    outcome = await talk(ch, one, two, agent.talk if agent is not None else None)
    if outcome == "transfer" and ch.transfer_to is not None:
        target, ch.transfer_to = ch.transfer_to, None
        ring = await ring_agent(ch, target, None)
        if ring.status == "ANSWER":
            outcome = await _talk_with(s, ring, target)
    talked = clock.now() - answered
    m.in_call = False
    ch.pbx.bus.emit("QueueMemberStatus", "agent,all", member_pairs(name, m))
    m.calls_taken += 1
    m.last_call = int(clock.now())
    q.completed += 1
    q.holdtime_total += answered - start
    q.talktime_total += talked
    ch.emit("AgentComplete", "agent,all", one.block("Dest") + [
        ("Queue", name), ("Interface", m.interface), ("MemberName", m.display_name()), ("HoldTime", holdtime),
        ("TalkTime", str(int(talked))), ("Reason", "caller" if outcome == "caller" else "agent")])
    if outcome == "caller":
        return -1
    if "c" in options:
        ch.set_var("QUEUESTATUS", "CONTINUE")
        ch.set_var("ANSWEREDTIME", str(int(talked)))
        return 0
    return -1


# -- Park ---------------------------------------------------------------------------------------------------------

async def park(s: "AGISession", data: str) -> int:
    """Park([lot[,options]]): blocks; timeout -> 0 (then the AGI sees HANGUP, comeback); retrieved -> -1 at its end."""
    args = _args(data) + ["", ""]
    options = args[1]
    ch = s.channel
    lot = ch.pbx.config.parking
    m = re.search(r"t\((\d+)\)", options)
    timeout = float(m.group(1)) if m else lot.parkingtime
    ch.set_var("PARKEDLOT", lot.name)
    announce = "s" not in re.sub(r"\(.*?\)", "", options)
    outcome, space = await park_channel(ch, timeout=timeout, parker=ch.name, announce=announce,
                                        on_space=lambda sp: s.sim.note_destination(s, "parked:%d" % sp))
    if outcome == "timeout":
        s.comeback(lot.comebackcontext)
        return 0
    if outcome == "retrieved":
        await s.sim.wait_retrieval_end(ch, space)
        return -1
    return -1


# -- simple apps --------------------------------------------------------------------------------------------------

async def music_on_hold(s: "AGISession", data: str) -> int:
    args = _args(data) + ["", ""]
    duration = float(args[1]) if args[1].strip().replace(".", "", 1).isdigit() else None
    ch = s.channel
    ch.stop_moh()
    ch.start_moh(args[0] or "default")
    ev = await ch.pause(duration) if duration else await ch.next_event_kind("hangup")
    ch.stop_moh()
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
    ch = s.channel
    ch.notify_command(name)
    previous = (ch.app, ch.appdata)
    ch.app, ch.appdata = name, data          # what CoreShowChannels/Status show while it runs
    try:
        return await app(s, data)
    finally:
        ch.app, ch.appdata = previous

"""The Queue() application (strategy ringall): app_queue's channel variables and AMI events, as recorded.

Rules for this file:
- Every Queue() first sets ANSWEREDTIME, ANSWEREDTIME_MS, DIALEDTIME, DIALEDTIME_MS, QUEUEWAIT, QUEUEWAIT_MS to ""
  (VarSet with an empty value) and deletes a leftover ABANDONED, even when the caller cannot join (agi-07.ami).
- Whole seconds that app_queue takes from time(NULL) (QUEUEWAIT, HoldTime, TalkTime) are differences of whole
  epoch seconds; QUEUEWAIT_MS is that times 1000 (agi-07.ami "QUEUEWAIT_MS / Value: 4000").  Millisecond
  durations (ANSWEREDTIME_MS, DIALEDTIME_MS) are exact and their second forms are ms // 1000 ("2502" -> "2").
- DIALEDTIME counts from the creation of the caller's channel, not from Queue() (agi-07.ami: DIALEDTIME_MS 3009
  and 7016 for Queue() calls that started at +0.511 and +3.018 on a channel created at +0.009).
- The order of events and variables of each ending is the recorded one, quoted at each function; what no
  recording shows follows Asterisk 22's app_queue and says so ("inferred").
- Queue() returns Asterisk's result: 0 (timeout, join failure, `c` after the member hung up), -1 otherwise; the
  AGI channel is not hung up by it (agi-07 agi2: "200 result=-1", CHANNEL STATUS 6 afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.sim.appargs import parse_options, separate_args
from ivr.sim.bridging import ring_agent, talk, talk_with
from ivr.sim.pbx import member_pairs

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession
    from ivr.sim.channel import SimChannel
    from ivr.sim.pbx import QueueMember, QueueState

CLEARED_AT_START = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")

RingRound = list[tuple["QueueMember", tuple["SimChannel", "SimChannel"], "float | None"]]


def whole_seconds(start: float, end: float) -> int:
    """`time(NULL) - start` as app_queue computes waits: whole epoch seconds, not the rounded duration."""
    return int(end) - int(start)


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))


def set_duration(ch: SimChannel, name: str, seconds: float) -> None:
    """NAME in whole seconds (ms // 1000) and NAME_MS in milliseconds, as app_queue and app_dial set them."""
    ms = _ms(seconds)
    ch.set_var(name, str(ms // 1000))
    ch.set_var(name + "_MS", str(ms))


@dataclass
class Entry:
    """The caller's queue entry (app_queue's `qe`)."""

    ch: SimChannel
    q: QueueState
    start: float
    position: int  # where the caller joined (OriginalPosition)

    @property
    def name(self) -> str:
        return self.q.spec.name

    def wait(self, now: float) -> int:
        return whole_seconds(self.start, now)

    def set_wait(self, now: float) -> None:
        wait = self.wait(now)
        self.ch.set_var("QUEUEWAIT", str(wait))
        self.ch.set_var("QUEUEWAIT_MS", str(wait * 1000))

    def set_unanswered_times(self, now: float) -> None:
        """agi-07.ami (timeout) and ami-15 (abandon): QUEUEWAIT, QUEUEWAIT_MS, DIALEDTIME, DIALEDTIME_MS,
        ANSWEREDTIME "0", ANSWEREDTIME_MS "0"."""
        self.set_wait(now)
        set_duration(self.ch, "DIALEDTIME", now - self.ch.created)
        self.ch.set_var("ANSWEREDTIME", "0")
        self.ch.set_var("ANSWEREDTIME_MS", "0")

    def abandon_event(self, now: float) -> None:
        self.q.abandoned += 1
        self.ch.emit(
            "QueueCallerAbandon",
            "agent,all",
            [
                ("Queue", self.name),
                ("Position", str(self.current_position())),
                ("OriginalPosition", str(self.position)),
                ("HoldTime", str(self.wait(now))),
            ],
        )

    def current_position(self) -> int:
        callers = self.q.callers
        return callers.index(self.ch) + 1 if self.ch in callers else 1

    def leave(self) -> None:
        """leave_queue(): QueueCallerLeave (Position when leaving, Count left behind), then QUEUEPOSITION."""
        ch, callers = self.ch, self.q.callers
        if ch not in callers:
            return
        pos = callers.index(ch) + 1
        callers.remove(ch)
        ch.emit(
            "QueueCallerLeave",
            "agent,all",
            [("Queue", self.name), ("Position", str(pos)), ("Count", str(len(callers)))],
        )
        ch.set_var("QUEUEPOSITION", str(pos))


async def queue(s: AGISession, data: str) -> int:
    """Queue(name[,options[,URL[,announce[,timeout]]]]) with ringall; QUEUESTATUS as recorded in agi-07."""
    # queuename, options, URL, announceoverride, timeout, AGI, gosub, rule, position (app_queue's AST_APP_ARGs)
    args = separate_args(data, max_args=9) + [""] * 9
    name, options, timeout_s = args[0], args[1], args[4]
    ch = s.channel
    pbx = ch.pbx
    clock = pbx.clock
    for var in CLEARED_AT_START:
        ch.set_var(var, "")
    ch.delete_var("ABANDONED")
    q = pbx.queue(name)
    if q is None or (not any(not m.paused for m in q.members.values()) and not q.spec.joinempty):
        ch.set_var("QUEUESTATUS", "JOINEMPTY")
        return 0
    timeout = float(timeout_s) if timeout_s.strip().isdigit() else None
    start = clock.now()
    deadline = start + timeout if timeout else None
    q.callers.append(ch)
    ch.queue_joined = start
    entry = Entry(ch, q, start, len(q.callers))
    ch.emit(
        "QueueCallerJoin",
        "agent,all",
        [("Queue", name), ("Position", str(entry.position)), ("Count", str(len(q.callers)))],
    )
    ch.start_moh("default")
    s.sim.note_destination(s, "queue:" + name)
    ch.transfer_to = None
    try:
        next_ring = clock.now()
        while True:
            now = clock.now()
            round_start = now
            ringing = _ring_members(ch, q) if now >= next_ring else []
            answers = [(at, i) for i, (_, _, at) in enumerate(ringing) if at is not None]
            win_at, winner = min(answers) if answers else (None, None)
            if ringing:
                round_end = win_at if win_at is not None else now + q.spec.member_timeout
            else:
                round_end = max(next_ring, now + q.spec.retry) if now >= next_ring else next_ring
            dl = min(t for t in (deadline, round_end) if t is not None)
            while True:
                ev = await ch.next_event(dl)
                if ev is None or ev.kind == "hangup" or ch.transfer_to is not None:
                    break
                if ev.kind == "wake" and not ringing:  # a member logged in or was unpaused: ring now
                    break
            now = clock.now()
            answered = (
                ev is None
                and winner is not None
                and win_at is not None
                and now >= win_at
                and not ringing[winner][0].paused
            )
            abandon = ev is not None and ev.kind == "hangup"
            _end_round(ch, q, ringing, winner if answered else None, abandon, now >= round_end)
            if abandon:
                _abandoned(entry, now)
                return -1
            if ch.transfer_to is not None:  # redirected/transferred out of the queue
                target, ch.transfer_to = ch.transfer_to, None
                ch.stop_moh()
                entry.leave()
                ring = await ring_agent(ch, target, None)
                if ring.status == "ANSWER":
                    await talk_with(s, ring, target)
                return -1
            if answered and winner is not None:
                member, legs, _ = ringing[winner]
                return await _connect(s, entry, member, legs, options, now - round_start)
            if deadline is not None and now >= deadline:
                _timed_out(entry, now)
                return 0
            next_ring = now + q.spec.retry if ringing else now
    finally:
        ch.stop_moh()
        entry.leave()  # only if still queued: a simulator error or a cancelled call


def _end_round(
    ch: SimChannel, q: QueueState, ringing: RingRound, winner: int | None, abandon: bool, round_over: bool
) -> None:
    """Hang up the members that rang and did not win: AgentRingNoAnswer when their ring time ran out, DialEnd
    NOANSWER or CANCEL; an abandoning caller produces two DialEnd CANCEL (README, Asterisk 22.10.1)."""
    for i, (m, legs, _) in enumerate(ringing):
        if i == winner:
            continue
        moved = ch.transfer_to is not None
        if not abandon and winner is None and not moved and round_over:
            ch.emit(
                "AgentRingNoAnswer",
                "agent,all",
                legs[0].block("Dest")
                + [
                    ("Queue", q.spec.name),
                    ("Interface", m.interface),
                    ("MemberName", m.display_name()),
                    ("RingTime", str(int(q.spec.member_timeout))),
                ],
            )
        status = "CANCEL" if abandon or winner is not None or moved else "NOANSWER"
        for _ in range(2 if abandon else 1):
            ch.emit("DialEnd", "call,all", legs[0].block("Dest") + [("DialStatus", status)])
        for leg in reversed(legs):
            leg.hangup(0)


def _abandoned(entry: Entry, now: float) -> None:
    """The caller hung up while waiting.  ami-15 (caller 2): MusicOnHoldStop, QUEUEWAIT 3, QUEUEWAIT_MS 3000,
    DIALEDTIME 3, DIALEDTIME_MS 3506, ANSWEREDTIME 0, ANSWEREDTIME_MS 0, ABANDONED TRUE, QueueCallerAbandon,
    QueueCallerLeave, QUEUEPOSITION 1; no QUEUESTATUS."""
    entry.ch.stop_moh()
    entry.set_unanswered_times(now)
    entry.ch.set_var("ABANDONED", "TRUE")
    entry.abandon_event(now)
    entry.leave()


def _timed_out(entry: Entry, now: float) -> None:
    """The Queue() timeout ran out.  agi-07.ami (`Queue testq,,,,4`): ABANDONED TRUE, QueueCallerAbandon
    (HoldTime 4), QUEUEWAIT 4, QUEUEWAIT_MS 4000, DIALEDTIME 7, DIALEDTIME_MS 7016, ANSWEREDTIME 0,
    ANSWEREDTIME_MS 0, MusicOnHoldStop, QueueCallerLeave, QUEUEPOSITION 1, QUEUESTATUS TIMEOUT."""
    entry.ch.set_var("ABANDONED", "TRUE")
    entry.abandon_event(now)
    entry.set_unanswered_times(now)
    entry.ch.stop_moh()
    entry.leave()
    entry.ch.set_var("QUEUESTATUS", "TIMEOUT")


def _ring_members(ch: SimChannel, q: QueueState) -> RingRound:
    """ringall: call every available member (AgentCalled + DialBegin); each with the time it would answer
    within `member_timeout`, or None."""
    pbx = ch.pbx
    now = pbx.clock.now()
    out: RingRound = []
    for m in q.members.values():
        if not pbx.member_available(m):
            continue
        agent, exten, context = pbx.resolve_agent(m.interface)
        if agent is not None and agent.busy:
            continue
        legs = pbx.local_pair(
            exten, context, linkedid=ch.linkedid, caller_num=ch.caller_num, caller_name=ch.caller_name
        )
        ch.emit(
            "AgentCalled",
            "agent,all",
            legs[0].block("Dest")
            + [("Queue", q.spec.name), ("Interface", m.interface), ("MemberName", m.display_name())],
        )
        ch.emit("DialBegin", "call,all", legs[0].block("Dest") + [("DialString", m.interface.split("/", 1)[-1])])
        after = agent.answer_after if agent is not None else None
        out.append((m, legs, now + after if after is not None and after <= q.spec.member_timeout else None))
    return out


async def _connect(
    s: AGISession,
    entry: Entry,
    m: QueueMember,
    legs: tuple[SimChannel, SimChannel],
    options: str,
    ring_seconds: float,
) -> int:
    """A member answered.  agi-07.ami / ami-15: DialEnd ANSWER, MusicOnHoldStop, QueueCallerLeave,
    QUEUEPOSITION 1, QUEUEWAIT 0, QUEUEWAIT_MS 0, AgentConnect, BridgeEnter (member), QueueMemberStatus InCall 1,
    BridgeEnter (caller) ... AgentComplete, QueueMemberStatus InCall 0, BridgeLeave x2, ANSWEREDTIME 2,
    ANSWEREDTIME_MS 2502, DIALEDTIME 3, DIALEDTIME_MS 3009, QUEUESTATUS CONTINUE (option c only)."""
    ch, q = entry.ch, entry.q
    clock = ch.pbx.clock
    name = q.spec.name
    agent, _, _ = ch.pbx.resolve_agent(m.interface)
    one, two = legs
    one.set_state(6)
    ch.emit("DialEnd", "call,all", one.block("Dest") + [("DialStatus", "ANSWER")])
    ch.stop_moh()
    answered = clock.now()
    holdtime = str(entry.wait(answered))
    entry.leave()
    entry.set_wait(answered)
    if q.spec.setinterfacevar:
        # inferred (no recording uses setinterfacevar=yes): app_queue sets these on the caller and the member's
        # channel before AgentConnect
        for c in (ch, one):
            _set_interface_vars(c, m)
    ch.emit(
        "AgentConnect",
        "agent,all",
        one.block("Dest")
        + [
            ("Queue", name),
            ("Interface", m.interface),
            ("MemberName", m.display_name()),
            ("HoldTime", holdtime),
            ("RingTime", str(_ms(ring_seconds) // 1000)),
        ],
    )
    s.sim.note_destination(s, f"queue:{name}:{m.interface}")

    def member_busy() -> None:
        m.in_call = True
        ch.pbx.bus.emit("QueueMemberStatus", "agent,all", member_pairs(name, m))

    def complete(outcome: str) -> None:
        now = clock.now()
        m.in_call = False
        m.calls_taken += 1
        m.last_call = int(now)
        q.completed += 1
        q.holdtime_total += answered - entry.start
        q.talktime_total += now - answered
        # app_queue's agent_complete_reason: caller / agent / transfer ("transfer" is inferred: not recorded)
        ch.emit(
            "AgentComplete",
            "agent,all",
            one.block("Dest")
            + [
                ("Queue", name),
                ("Interface", m.interface),
                ("MemberName", m.display_name()),
                ("HoldTime", holdtime),
                ("TalkTime", str(whole_seconds(answered, now))),
                ("Reason", outcome),
            ],
        )
        ch.pbx.bus.emit("QueueMemberStatus", "agent,all", member_pairs(name, m))

    done: list[bool] = []

    def bridge_ended() -> None:
        # Set whoever ended the call: recorded for a member hangup (agi-07a/b, ami-15: after both BridgeLeave
        # events).  Inferred for a caller hangup and transfers: app_queue sets them once the bridge returns,
        # whatever ended it -- for a caller hangup before the member's leg leaves, as app_dial does (agi-06.ami).
        if done:
            return
        done.append(True)
        end = clock.now()
        set_duration(ch, "ANSWEREDTIME", end - answered)
        set_duration(ch, "DIALEDTIME", end - ch.created)

    outcome = await talk(
        ch,
        one,
        two,
        agent.talk if agent is not None else None,
        on_enter=member_busy,
        on_end=complete,
        on_caller_gone=bridge_ended,
    )
    if outcome == "transfer" and ch.transfer_to is not None:
        target, ch.transfer_to = ch.transfer_to, None
        ring = await ring_agent(ch, target, None)
        if ring.status == "ANSWER":
            outcome = await talk_with(s, ring, target, on_caller_gone=bridge_ended)
    bridge_ended()
    if outcome == "caller":
        return -1
    if "c" in parse_options(options):  # ast_app_parse_options: "c" is a letter, not text in b(...)
        ch.set_var("QUEUESTATUS", "CONTINUE")
        return 0
    return -1


def _set_interface_vars(ch: SimChannel, m: QueueMember) -> None:
    """setinterfacevar=yes: MEMBERINTERFACE, MEMBERNAME, MEMBERCALLS, MEMBERLASTCALL, MEMBERPENALTY,
    MEMBERDYNAMIC, MEMBERREALTIME, in app_queue's order."""
    for var, value in (
        ("MEMBERINTERFACE", m.interface),
        ("MEMBERNAME", m.display_name()),
        ("MEMBERCALLS", str(m.calls_taken)),
        ("MEMBERLASTCALL", str(m.last_call)),
        ("MEMBERPENALTY", str(m.penalty)),
        ("MEMBERDYNAMIC", "1" if m.dynamic else "0"),
        ("MEMBERREALTIME", "0"),
    ):
        ch.set_var(var, value)

"""The one queue model: queues, their members and their waiting callers, and the one place an agent's state is
decided.

Rules for this file:
- `QueueBoard` holds the queues of one Asterisk server and applies the AMI queue events (`QUEUE_EVENTS`, the
  waiting callers' hangups `HANGUP_EVENTS`) and QueueStatus answers to them. No I/O, no metrics, time only through
  the injected clock. In the service the call registry owns the board and feeds it (`ivr.calls.sync`, one
  subscription and one QueueStatus per login or poll); the API, the console and the queue KPIs (`ivr.queue_stats`)
  all read it, so they never disagree on who waits, since when, and in which state an agent is.
- `QUEUE_EVENTS` is the one list of queue events: the registry subscribes to it and the queue KPIs count exactly
  these (their handler table is checked against it).
- A member event costs a few header reads and attribute writes (the inline AMI path, docs/decisions.md D4);
  `agent_states` walks every member and runs at scrape time only.

QueueMember* `Status` is the device state (0 unknown, 1 not in use, 2 in use, 3 busy, 4 invalid, 5 unavailable,
6 ringing, 7 ring+in use, 8 on hold); a member with a Custom: state interface stays at 0 while it talks, so
AgentConnect/AgentComplete also mark the member in a call (`set_in_call`).

A waiting caller who hangs up gets HangupRequest/SoftHangupRequest on its own channel, then QueueCallerAbandon; a
Queue() timeout sends QueueCallerAbandon with no hangup first (ami-15-queue, agi-07-queue-moh-park): the board
marks waiting callers whose channel hung up (`QueueCaller.hung_up`), which is how an abandon is told from a timeout.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

BUSY_STATUSES = frozenset({2, 3, 6, 7, 8})  # in use, busy, ringing, ringing+in use, on hold
UNAVAILABLE_STATUSES = frozenset({4, 5})  # invalid, unavailable
# An agent in several queues gets one state: busy anywhere, else available anywhere, else paused, else unavailable.
_RANK = {"busy": 0, "available": 1, "paused": 2, "unavailable": 3}

# The queue events: what QueueBoard applies, what the call registry subscribes to for its queues, and exactly what
# the queue KPIs count (AgentCalled/AgentDump change nothing here and are not subscribed).
QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentConnect",
        "AgentComplete",
        "AgentRingNoAnswer",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberStatus",
        "QueueMemberPause",
        "QueueMemberPenalty",
        "QueueMemberRinginuse",
    }
)
# A hangup of a waiting caller's own channel: tells an abandon from a Queue() timeout.
HANGUP_EVENTS = frozenset({"HangupRequest", "SoftHangupRequest", "Hangup"})
# Callers whose channel ended while they waited, remembered for their QueueCallerAbandon (bounded).
_GONE_MEMORY = 1024


class MemberEvent(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


@dataclass
class QueueMember:
    queue: str
    interface: str
    name: str = ""
    state_interface: str = ""
    membership: str = ""
    penalty: int = 0
    calls_taken: int = 0
    in_call: bool = False
    status: int = 0
    paused: bool = False
    paused_reason: str = ""

    @property
    def state(self) -> str:
        """paused, unavailable, busy or available: decided by `ivr.calls.queues.agent_state` for everyone."""
        return agent_state(self.status, self.paused, self.in_call)

    def to_json(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "name": self.name,
            "state_interface": self.state_interface,
            "membership": self.membership,
            "penalty": self.penalty,
            "calls_taken": self.calls_taken,
            "in_call": self.in_call,
            "status": self.status,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
        }


@dataclass
class QueueCaller:
    uniqueid: str
    channel: str
    linkedid: str
    caller_num: str = ""
    caller_name: str = ""
    position: int = 0
    joined_at: float = 0.0  # by the board's clock (the registry's: epoch seconds)
    hung_up: bool = False  # its channel got a hangup while waiting: its QueueCallerAbandon is an abandon

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.linkedid,
            "channel": self.channel,
            "uniqueid": self.uniqueid,
            "caller": {"number": self.caller_num, "name": self.caller_name},
            "position": self.position,
            "joined_at": self.joined_at,
        }


@dataclass
class Queue:
    name: str
    strategy: str = ""
    members: dict[str, QueueMember] = field(default_factory=dict)  # by interface
    callers: dict[str, QueueCaller] = field(default_factory=dict)  # by uniqueid

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "members": [m.to_json() for m in sorted(self.members.values(), key=lambda m: m.interface)],
            "callers": [c.to_json() for c in sorted(self.callers.values(), key=lambda c: c.position)],
        }


def agent_state(status: int, paused: bool, in_call: bool) -> str:
    """paused, unavailable, busy or available (the words of `ivr.metrics.AGENT_STATES`)."""
    if paused:
        return "paused"
    if status in UNAVAILABLE_STATUSES:
        return "unavailable"
    if in_call or status in BUSY_STATUSES:
        return "busy"
    return "available"  # not in use, or unknown (Asterisk still rings members in state unknown)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return default


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


def _cid(value: str | None) -> str:
    # Asterisk writes "<unknown>" for an unset caller ID.
    return "" if value in (None, "<unknown>") else value


def update_member(members: dict[str, QueueMember], queue: str, msg: MemberEvent) -> QueueMember | None:
    """Apply a QueueMember* event or a QueueStatus `QueueMember` item (it names the interface `Location` and the
    member `Name`) to a queue's members; headers absent from the event keep their value."""
    interface = msg.get("Interface") or msg.get("Location")
    if not interface:
        return None
    member = members.get(interface)
    if member is None:
        member = members[interface] = QueueMember(queue=queue, interface=interface)
    member.name = msg.get("MemberName") or msg.get("Name") or member.name
    member.state_interface = msg.get("StateInterface") or member.state_interface
    member.membership = msg.get("Membership") or member.membership
    member.penalty = _int(msg.get("Penalty"), member.penalty)
    member.calls_taken = _int(msg.get("CallsTaken"), member.calls_taken)
    member.status = _int(msg.get("Status"), member.status)
    in_call = msg.get("InCall")
    if in_call is not None:
        member.in_call = _flag(in_call)
    paused = msg.get("Paused")
    if paused is not None:
        member.paused = _flag(paused)
        member.paused_reason = msg.get("PausedReason") or ""
    return member


def set_in_call(members: Mapping[str, QueueMember], msg: MemberEvent, in_call: bool) -> None:
    """AgentConnect (True) / AgentComplete (False): the member named by `Interface` talks or is free again."""
    member = members.get(msg.get("Interface") or "")
    if member is not None:
        member.in_call = in_call


def agent_states(queues: Iterable[Mapping[str, QueueMember]]) -> dict[str, str]:
    """Member interface -> one state over all the queues (members by interface) it is in, for `ivr_agents`,
    which counts agents once however many queues they serve."""
    states: dict[str, str] = {}
    for members in queues:
        for interface, member in list(members.items()):
            state = member.state
            if interface not in states or _RANK[state] < _RANK[states[interface]]:
                states[interface] = state
    return states


class QueueEvent(MemberEvent, Protocol):
    """An AMI event: `ivr.ami.protocol.Message` (its `name`), or a plain dict of headers (`Event`)."""


def event_name(msg: QueueEvent) -> str:
    """The event's name: `Message.name`, or the `Event` header of a dict."""
    return getattr(msg, "name", None) or msg.get("Event") or ""  # Message.name is free, a header read is not


class QueueBoard:
    """The queues of one Asterisk server: members and waiting callers, from queue events and QueueStatus."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.queues: dict[str, Queue] = {}
        self._waiting_in: dict[str, str] = {}  # caller uniqueid -> its queue (a hangup is one lookup)
        self._gone: OrderedDict[str, None] = OrderedDict()  # callers whose channel ended while waiting

    def queue(self, name: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = Queue(name=name)
        return queue

    # --- events --------------------------------------------------------------------------------------------------

    def apply(self, msg: QueueEvent) -> None:
        """Apply one queue event (QUEUE_EVENTS) or a channel hangup (HANGUP_EVENTS) read from its own headers; the
        call registry calls the methods below instead, with what it knows of the channel."""
        name = event_name(msg)
        if name in HANGUP_EVENTS:
            self.hangup(msg.get("Uniqueid") or "")
        elif name == "QueueCallerJoin":
            self.join(
                msg.get("Queue") or "",
                msg.get("Uniqueid") or "",
                channel=msg.get("Channel") or "",
                linkedid=msg.get("Linkedid") or "",
                caller_num=_cid(msg.get("CallerIDNum")),
                caller_name=_cid(msg.get("CallerIDName")),
                position=_int(msg.get("Position")),
            )
        elif name == "QueueCallerLeave":
            self.leave(msg.get("Queue") or "", msg.get("Uniqueid") or "")
        elif name == "AgentConnect":
            self.agent_connected(msg)
        elif name == "AgentComplete":
            self.agent_completed(msg)
        elif name == "QueueMemberRemoved":
            self.member_removed(msg)
        elif name.startswith("QueueMember"):
            self.member(msg)

    def join(
        self,
        queue: str,
        uniqueid: str,
        *,
        channel: str,
        linkedid: str,
        caller_num: str = "",
        caller_name: str = "",
        position: int = 0,
    ) -> QueueCaller | None:
        """QueueCallerJoin. A caller a resync listed already keeps its (earlier, Wait-based) join time."""
        if not queue or not uniqueid:
            return None
        callers = self.queue(queue).callers
        previous = callers.get(uniqueid)
        caller = callers[uniqueid] = QueueCaller(
            uniqueid=uniqueid,
            channel=channel,
            linkedid=linkedid or uniqueid,
            caller_num=caller_num,
            caller_name=caller_name,
            position=position,
            joined_at=previous.joined_at if previous is not None else self.clock(),
            hung_up=previous.hung_up if previous is not None else False,
        )
        self._waiting_in[uniqueid] = queue
        return caller

    def leave(self, queue: str, uniqueid: str) -> None:
        """QueueCallerLeave (answered, abandoned or timed out: the caller waits no more)."""
        found = self.queues.get(queue)
        if found is not None:
            found.callers.pop(uniqueid, None)
        if self._waiting_in.get(uniqueid) == queue:
            del self._waiting_in[uniqueid]

    def hangup(self, uniqueid: str) -> None:
        """A hangup of some channel: if it is a waiting caller's, its QueueCallerAbandon will be an abandon."""
        queue = self._waiting_in.get(uniqueid) if uniqueid else None
        if queue is not None:
            caller = self.queues[queue].callers.get(uniqueid) if queue in self.queues else None
            if caller is not None:
                caller.hung_up = True

    def channel_gone(self, uniqueid: str) -> None:
        """The channel no longer exists (the registry removed it): it waits nowhere, and it did hang up."""
        queue = self._waiting_in.pop(uniqueid, None)
        if queue is None:
            return
        found = self.queues.get(queue)
        if found is not None:
            found.callers.pop(uniqueid, None)
        self._gone[uniqueid] = None
        while len(self._gone) > _GONE_MEMORY:
            self._gone.popitem(last=False)

    def hung_up(self, queue: str, uniqueid: str | None) -> bool:
        """Whether the caller `uniqueid` of `queue` hung up while waiting (asked on its QueueCallerAbandon)."""
        if not uniqueid:
            return False
        found = self.queues.get(queue)
        caller = found.callers.get(uniqueid) if found is not None else None
        if caller is not None:
            return caller.hung_up
        return uniqueid in self._gone

    def agent_connected(self, msg: MemberEvent) -> None:
        """AgentConnect: the member talks; the caller waits no more (QueueCallerLeave came first, unless missed)."""
        queue = self.queues.get(msg.get("Queue") or "")
        if queue is None:
            return
        set_in_call(queue.members, msg, True)
        uniqueid = msg.get("Uniqueid") or ""
        if uniqueid in queue.callers:
            self.leave(queue.name, uniqueid)

    def agent_completed(self, msg: MemberEvent) -> None:
        queue = self.queues.get(msg.get("Queue") or "")
        if queue is not None:
            set_in_call(queue.members, msg, False)

    def member(self, msg: MemberEvent) -> QueueMember | None:
        """QueueMemberAdded/Status/Pause/Penalty/Ringinuse, or a QueueStatus `QueueMember` item."""
        queue = self.queue(msg.get("Queue") or "")
        return update_member(queue.members, queue.name, msg)

    def member_removed(self, msg: MemberEvent) -> None:
        queue = self.queues.get(msg.get("Queue") or "")
        if queue is not None:
            queue.members.pop(msg.get("Interface") or msg.get("Location") or "", None)

    # --- resynchronisation ---------------------------------------------------------------------------------------

    def resync(self, items: Iterable[QueueEvent]) -> None:
        """Replace queues, members and waiting callers with a QueueStatus answer (QueueParams, QueueMember,
        QueueEntry). Callers still waiting keep the join time measured here and their hangup mark."""
        old, self.queues = self.queues, {}
        now = self.clock()
        for item in items:
            name = event_name(item)
            qname = item.get("Queue") or ""
            if not qname:
                continue
            if name == "QueueParams":
                self.queue(qname).strategy = item.get("Strategy") or ""
            elif name == "QueueMember":
                self.member(item)
            elif name == "QueueEntry" and (uid := item.get("Uniqueid")):
                previous = old[qname].callers.get(uid) if qname in old else None
                self.queue(qname).callers[uid] = QueueCaller(
                    uniqueid=uid,
                    channel=item.get("Channel") or "",
                    linkedid=item.get("Linkedid") or uid,
                    caller_num=_cid(item.get("CallerIDNum")),
                    caller_name=_cid(item.get("CallerIDName")),
                    position=_int(item.get("Position")),
                    joined_at=previous.joined_at if previous is not None else now - _int(item.get("Wait")),
                    hung_up=previous.hung_up if previous is not None else False,
                )
        self._waiting_in = {uid: q.name for q in self.queues.values() for uid in q.callers}

    def clear(self) -> None:
        self.queues.clear()
        self._waiting_in.clear()

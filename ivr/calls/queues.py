"""Queue members and their state: the one place an agent's state is decided and a member is updated from AMI.

Rules for this file:
- Pure functions over `ivr.calls.model.QueueMember` (no I/O, no metrics): the call registry (API, console) and the
  queue KPIs (`ivr.queue_stats`, `ivr_queue_agents`, `ivr_agents`) both update members with `update_member` and
  read their state through `agent_state`, so the API, the console and the metrics never disagree.
- A member event costs a few header reads and attribute writes (the inline AMI path, docs/decisions.md D4);
  `agent_states` walks every member and runs at scrape time only.

QueueMember* `Status` is the device state (0 unknown, 1 not in use, 2 in use, 3 busy, 4 invalid, 5 unavailable,
6 ringing, 7 ring+in use, 8 on hold); a member with a Custom: state interface stays at 0 while it talks, so
AgentConnect/AgentComplete also mark the member in a call (`set_in_call`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

BUSY_STATUSES = frozenset({2, 3, 6, 7, 8})  # in use, busy, ringing, ringing+in use, on hold
UNAVAILABLE_STATUSES = frozenset({4, 5})  # invalid, unavailable
# An agent in several queues gets one state: busy anywhere, else available anywhere, else paused, else unavailable.
_RANK = {"busy": 0, "available": 1, "paused": 2, "unavailable": 3}


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
    joined_at: float = 0.0

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


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return default


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


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

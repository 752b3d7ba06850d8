"""What the live call registry knows: channels, bridges, parked calls, queues, and the calls they form.

Rules for this file:
- Plain dataclasses, no behaviour beyond derived read-only views; the registry mutates them, the API reads them.
- A call is the set of channels sharing a Linkedid; its id is that Linkedid (the Uniqueid of the oldest channel),
  prefixed with `<pbx>:` by `ivr.calls.fleet` when the service serves several Asterisk servers.
  Channel names are data shown to users, never metric labels.
- `to_json()` methods give the API's representation; times are epoch seconds (floats) from the registry's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Call states, from most to least specific (the first that applies wins, see `Call.state`).
CALL_STATES = ("parked", "queued", "held", "talking", "ivr", "ringing", "up", "ended")


@dataclass
class Recording:
    """A MixMonitor running on a channel (as seen in AMI)."""

    mixmonitor_id: str = ""
    muted: bool = False
    started_at: float = 0.0


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    state_desc: str = "Down"
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    language: str = ""
    account: str = ""
    context: str = ""
    exten: str = ""
    priority: str = ""
    application: str = ""
    app_data: str = ""
    created_at: float = 0.0
    bridge_id: str | None = None
    moh_class: str | None = None  # music on hold playing (hold or parked)
    queue: str | None = None  # waiting in this queue
    flow: str | None = None  # IVR flow/node, from VarSet IVR_FLOW/IVR_NODE or the AGI side
    node: str | None = None
    recording: Recording | None = None
    agent: str | None = None  # queue member (MemberName), dialled peer (Dial) or click-to-call agent
    agent_leg: bool = False  # this channel is the agent (AgentConnect dest, answered Dial peer, click-to-call leg)

    @property
    def is_up(self) -> bool:
        return self.state == 6

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "state": self.state_desc,
            "caller": {"number": self.caller_num, "name": self.caller_name},
            "connected": {"number": self.connected_num, "name": self.connected_name},
            "context": self.context,
            "exten": self.exten,
            "application": self.application,
            "bridge": self.bridge_id,
            "on_hold": self.moh_class is not None,
            "queue": self.queue,
            "flow": self.flow,
            "node": self.node,
            "agent": self.agent,
            "agent_leg": self.agent_leg,
            "created_at": self.created_at,
            "recording": None
            if self.recording is None
            else {
                "mixmonitor_id": self.recording.mixmonitor_id,
                "muted": self.recording.muted,
                "started_at": self.recording.started_at,
            },
        }


@dataclass
class Bridge:
    id: str
    type: str = ""
    technology: str = ""
    channels: set[str] = field(default_factory=set)  # uniqueids

    @property
    def is_parking(self) -> bool:
        return self.type == "parking"


@dataclass
class ParkedCall:
    lot: str
    space: str
    uniqueid: str
    channel: str
    linkedid: str
    caller_num: str = ""
    caller_name: str = ""
    timeout: int = 0  # seconds, as configured for this park
    parked_at: float = 0.0
    parker: str = ""  # ParkerDialString

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "space": self.space,
            "call_id": self.linkedid,
            "channel": self.channel,
            "uniqueid": self.uniqueid,
            "caller": {"number": self.caller_num, "name": self.caller_name},
            "timeout": self.timeout,
            "parked_at": self.parked_at,
            "parker": self.parker,
        }


@dataclass
class Call:
    """A view over the channels that share one Linkedid (built by the registry on demand)."""

    id: str
    channels: list[Channel]
    parked: list[ParkedCall]
    bridges: dict[str, Bridge]
    pbx: str = "default"  # the Asterisk server holding the call (ami.servers[].name)

    @property
    def origin(self) -> Channel:
        for ch in self.channels:
            if ch.uniqueid == ch.linkedid:  # the call's first channel (its Uniqueid became the Linkedid)
                return ch
        return min(self.channels, key=lambda c: (c.created_at, c.uniqueid))

    @property
    def state(self) -> str:
        if not self.channels:
            return "ended"
        if self.parked:
            return "parked"
        if any(ch.queue for ch in self.channels):
            return "queued"  # queue callers hear music on hold too; queued is the better answer
        if any(ch.moh_class is not None for ch in self.channels):
            return "held"
        if self.talking_bridge() is not None:
            return "talking"
        if any(ch.flow for ch in self.channels):
            return "ivr"
        if not any(ch.is_up for ch in self.channels):
            return "ringing"
        return "up"

    def talking_bridge(self) -> Bridge | None:
        """A non-parking bridge of this call with two or more channels in it."""
        for ch in self.channels:
            bridge = self.bridges.get(ch.bridge_id or "")
            if bridge is not None and not bridge.is_parking and len(bridge.channels) >= 2:
                return bridge
        return None

    @property
    def flow(self) -> str | None:
        return next((ch.flow for ch in self.channels if ch.flow), None)

    @property
    def queue(self) -> str | None:
        return next((ch.queue for ch in self.channels if ch.queue), None)

    @property
    def agent(self) -> str | None:
        return next((ch.agent for ch in self.channels if ch.agent), None)

    @property
    def recording(self) -> Channel | None:
        """The channel carrying this call's MixMonitor, if one runs."""
        return next((ch for ch in self.channels if ch.recording is not None), None)

    def to_json(self) -> dict[str, Any]:
        channels = self.channels
        if not channels:
            return self._to_json_scanning()
        # GET /calls builds this for every live call: one pass over the channels gathers what `origin`, `state`,
        # `flow`, `queue`, `agent` and `recording` find with a scan each (the same first-match answers), and the
        # sort is skipped for a call of one channel.
        ordered = sorted(channels, key=_by_age) if len(channels) > 1 else channels
        origin = flow = node = queue = agent = None
        held = up = recording = False
        for ch in channels:
            if origin is None and ch.uniqueid == ch.linkedid:  # the call's first channel
                origin = ch
            if flow is None and ch.flow:
                flow = ch.flow
            if node is None and ch.node:
                node = ch.node
            if queue is None and ch.queue:
                queue = ch.queue
            if agent is None and ch.agent:
                agent = ch.agent
            held = held or ch.moh_class is not None
            up = up or ch.state == 6
            recording = recording or ch.recording is not None
        if origin is None:
            origin = ordered[0]
        if self.parked:
            state = "parked"
        elif queue:
            state = "queued"  # queue callers hear music on hold too; queued is the better answer
        elif held:
            state = "held"
        elif self.talking_bridge() is not None:
            state = "talking"
        elif flow:
            state = "ivr"
        else:
            state = "up" if up else "ringing"
        return {
            "id": self.id,
            "pbx": self.pbx,
            "state": state,
            "caller": {"number": origin.caller_num, "name": origin.caller_name},
            "started_at": ordered[0].created_at,
            "flow": flow,
            "node": node,
            "queue": queue,
            "agent": agent,
            "recording": recording,
            "parked": [{**p.to_json(), "call_id": self.id} for p in self.parked],
            "channels": [ch.to_json() for ch in ordered],
        }

    def _to_json_scanning(self) -> dict[str, Any]:
        """to_json() one property at a time (a call without channels: `origin` raises as it always did)."""
        origin = self.origin
        return {
            "id": self.id,
            "pbx": self.pbx,
            "state": self.state,
            "caller": {"number": origin.caller_num, "name": origin.caller_name},
            "started_at": min(ch.created_at for ch in self.channels),
            "flow": self.flow,
            "node": next((ch.node for ch in self.channels if ch.node), None),
            "queue": self.queue,
            "agent": self.agent,
            "recording": self.recording is not None,
            "parked": [{**p.to_json(), "call_id": self.id} for p in self.parked],
            "channels": [ch.to_json() for ch in sorted(self.channels, key=_by_age)],
        }


def _by_age(channel: Channel) -> tuple[float, str]:
    return (channel.created_at, channel.uniqueid)

"""The live call registry: AMI events in, a current picture of channels, calls, bridges, parking and queues out.

Rules for this file:
- Pure event application: no asyncio, no AMI client, no metrics. `apply(msg)` takes one AMI event (anything with
  `.name` and `.get(header)`, i.e. `ivr.ami.protocol.Message`) and returns the `Effect`s worth acting on
  (a channel hung up, a recording ended, a call left parking). `ivr.calls.sync` feeds it and acts on the effects.
- A `Message` with its text has its standard channel block read in one match (`Message.leading(_BLOCK)`); anything
  else is read header by header, with the same result (tests/calls/test_registry.py applies both).
- Resynchronisation replaces state from list answers (`resync_channels`, `resync_parked`, `resync_queues`) so
  nothing stale survives a reconnect; events keep being applied in order before and after.
- Asterisk sends a few events for a channel after its `Hangup` (e.g. `NewCallerid` in ami-13): recently hung-up
  uniqueids are remembered (bounded) so such stragglers never resurrect a channel.
- The Linkedid of a channel can change (a retriever's ;2 takes the parkee's Linkedid in ami-13); every event
  carrying one re-files the channel under its current call.
- Queues (members, waiting callers) are the registry's `board` (`ivr.calls.queues.QueueBoard`, the one queue model
  the API, the console and the queue KPIs read); the registry hands it the queue events with what it knows of the
  channel.
- `REGISTRY_EVENTS` is the one list of the events it subscribes to (`ivr.calls.sync`): every `_on_<Event>`
  handler's event, the channel events it follows, and the queue events of `ivr.calls.queues`.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ivr import dialplan
from ivr.ami.protocol import Message
from ivr.calls.model import Bridge, Call, Channel, ParkedCall, Recording
from ivr.calls.queues import HANGUP_EVENTS, QUEUE_EVENTS, Queue, QueueBoard

_GONE_MEMORY = 4096
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;[12])?$")


class EventLike(Protocol):
    @property
    def name(self) -> str | None: ...
    def get(self, name: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class FlowNoted:
    """What `note_flow` tells the watchers, shaped like an event (no AMI event carries it)."""

    uniqueid: str
    name: str = "FlowNoted"

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.uniqueid if name == "Uniqueid" else default


# --- effects -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelGone:
    uniqueid: str
    linkedid: str
    channel: str
    cause: str = ""
    context: str = ""  # the dialplan context it was in last (ivr-hold: a held party hung up)


@dataclass(frozen=True)
class CallEnded:
    call_id: str


@dataclass(frozen=True)
class RecordingStarted:
    uniqueid: str
    linkedid: str


@dataclass(frozen=True)
class RecordingEnded:
    uniqueid: str
    linkedid: str
    mixmonitor_id: str
    reason: str  # "stopped" (MixMonitorStop) or "hangup" (Asterisk sends no MixMonitorStop then)
    seconds: float = 0.0  # by the registry's clock, from MixMonitorStart


@dataclass(frozen=True)
class Unparked:
    lot: str
    space: str
    linkedid: str
    reason: str  # "retrieved", "timeout", "giveup", "swap", "gone"
    seconds: float


Effect = ChannelGone | CallEnded | RecordingStarted | RecordingEnded | Unparked

# Events whose first block is the standard channel block (Channel, ChannelState, ..., Uniqueid, Linkedid).
_CHANNEL_EVENTS = frozenset(
    {
        "Newchannel",
        "Newstate",
        "Newexten",
        "NewCallerid",
        "NewConnectedLine",
        "NewAccountCode",
        "VarSet",
        "BridgeEnter",
        "BridgeLeave",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "MixMonitorStart",
        "MixMonitorStop",
        "MixMonitorMute",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "DialBegin",
        "DialEnd",
        "Hold",
        "Unhold",
        "DTMFBegin",
        "DTMFEnd",
        "ChanSpyStart",
        "ChanSpyStop",
        "AgentCalled",
        "AgentConnect",
        "AgentComplete",
        "AgentRingNoAnswer",
        "HangupRequest",
        "SoftHangupRequest",
    }
)
# What else than Channel and Linkedid an event can change on a channel that is already known (a new channel reads
# its whole block). Asterisk reports each change with its own event (Newstate, NewCallerid, Newexten ...), so the
# other channel events need not be read field by field: each header lookup is a search of the event text.
# The standard channel block, as Asterisk writes it right after the Event and Privilege lines of every channel
# event: a Message reads it in one match (`Message.leading`) instead of a search per header.
_BLOCK = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
_CHANNEL, _STATE_DESC, _UNIQUEID, _LINKEDID = 0, 2, 12, 13
# Events whose own headers follow the block (as Asterisk 22 writes them): read in the same match.
_NEWEXTEN_BLOCK = (*_BLOCK, "Extension", "Application", "AppData")
_VARSET_BLOCK = (*_BLOCK, "Variable", "Value")
_APPLICATION, _APP_DATA, _VARIABLE, _VALUE = 15, 16, 14, 15
_BLOCK_OF = {"Newexten": _NEWEXTEN_BLOCK, "VarSet": _VARSET_BLOCK}
# (header, Channel attribute, the header's place in _BLOCK)
Field = tuple[str, str, int]
_STATE: tuple[Field, ...] = (("ChannelState", "state", 1),)
_CALLER: tuple[Field, ...] = (("CallerIDNum", "caller_num", 3), ("CallerIDName", "caller_name", 4))
_CONNECTED: tuple[Field, ...] = (("ConnectedLineNum", "connected_num", 5), ("ConnectedLineName", "connected_name", 6))
_LOCATION: tuple[Field, ...] = (("Context", "context", 9), ("Exten", "exten", 10), ("Priority", "priority", 11))
_ACCOUNT: tuple[Field, ...] = (("Language", "language", 7), ("AccountCode", "account", 8))
_CID_FIELDS = {"caller_num", "caller_name", "connected_num", "connected_name"}
_ALL_FIELDS = _STATE + _CALLER + _CONNECTED + _ACCOUNT + _LOCATION
_CHANGES: dict[str, tuple[Field, ...]] = {
    "Newchannel": _ALL_FIELDS,
    "Newstate": _STATE + _CALLER + _CONNECTED,
    "Newexten": _LOCATION,
    "NewCallerid": _CALLER,
    "NewConnectedLine": _CONNECTED,
    "NewAccountCode": _ACCOUNT,
}
# Events about a channel that change neither its name nor its call: for a known channel only their own headers
# are read (the handler finds the Uniqueid read by apply() through _uid()).
_SELF_EVENTS = frozenset({"VarSet", "Hangup", "HangupRequest", "SoftHangupRequest", "Newexten"})
# Per channel or self event, looked up once per event: (the fields it changes on a known channel, the headers read in
# one match when it reads several (Channel and Linkedid at least, or its own after the block; None: only the
# Uniqueid, by get()), whether it is a channel event, whether a self event).
_PLANS: dict[str, tuple[tuple[Field, ...], tuple[str, ...] | None, bool, bool]] = {
    name: (
        _CHANGES.get(name, ()),
        _BLOCK_OF.get(name, _BLOCK) if _CHANGES.get(name) or name not in _SELF_EVENTS or name in _BLOCK_OF else None,
        name in _CHANNEL_EVENTS,
        name in _SELF_EVENTS,
    )
    for name in _CHANNEL_EVENTS | _SELF_EVENTS
}
_UNPARK_EVENTS = {
    "UnParkedCall": "retrieved",
    "ParkedCallTimeOut": "timeout",
    "ParkedCallGiveUp": "giveup",
    "ParkedCallSwap": "swap",
}
# Channel events the registry does not subscribe to: they change nothing it shows, and are frequent (DTMF) or
# followed by one that does (DialBegin by DialEnd, AgentCalled by AgentConnect).
_UNFOLLOWED = frozenset(
    {"DialBegin", "Hold", "Unhold", "DTMFBegin", "DTMFEnd", "ChanSpyStart", "ChanSpyStop", "AgentCalled"}
)
# The events the registry subscribes to (`ivr.calls.sync`; list items arrive through list actions): the channel
# events it follows, the other events it has a handler for, and the queue model's (`ivr.calls.queues`).
REGISTRY_EVENTS = frozenset(
    (_CHANNEL_EVENTS - _UNFOLLOWED)
    | {"BridgeCreate", "BridgeDestroy", "ParkedCall", "Shutdown", *_UNPARK_EVENTS}
    | QUEUE_EVENTS
    | HANGUP_EVENTS
)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _cid(value: str | None) -> str:
    # Asterisk writes "<unknown>" for an unset caller ID.
    return "" if value in (None, "<unknown>") else value


def _interface(channel: str) -> str:
    # A channel name is <interface>-<8 hex digits>, plus ;1/;2 for a Local channel half.
    match = _CHANNEL_SUFFIX.search(channel)
    return channel[: match.start()] if match else channel


def _duration(value: str | None) -> float:
    # CoreShowChannel Duration: "HH:MM:SS".
    try:
        h, m, s = (int(x) for x in (value or "").split(":"))
        return float(h * 3600 + m * 60 + s)
    except ValueError:
        return 0.0


class CallRegistry:
    def __init__(self, clock: Callable[[], float] = time.time, *, pbx: str = "default") -> None:
        self.clock = clock
        self.pbx = pbx  # the Asterisk server (ami.servers[].name) these calls live on; shown with each call
        self.channels: dict[str, Channel] = {}  # by uniqueid
        self.bridges: dict[str, Bridge] = {}
        self.parked: dict[str, ParkedCall] = {}  # by parkee uniqueid
        self.board = QueueBoard(clock)  # queues, members, waiting callers: the one queue model
        self._by_call: dict[str, set[str]] = {}  # linkedid -> uniqueids
        self._gone: OrderedDict[str, None] = OrderedDict()
        self._by_name: dict[str, str] = {}  # channel name -> uniqueid
        self._expected: OrderedDict[str, str] = OrderedDict()  # uniqueid -> agent, for legs we originate
        # Who wants the effects (called by ivr.calls.sync, never by apply()): e.g. CallOperations closes the
        # index row of a recording whose channel hung up. Objects register themselves when they are built.
        self.listeners: list[Callable[[Effect], Any]] = []
        # Who wants to know that the picture changed (the supervisor console's feed): called after each applied
        # event with that event, and with None after a resync (anything may have changed). Must be quick.
        self.watchers: list[Callable[[EventLike | None], None]] = []
        self._recording: set[str] = set()  # uniqueids with a MixMonitor running (recordings_running() in O(1))
        # the event apply() is handling, its Uniqueid, and its block when read in one match
        self._current: tuple[EventLike | None, str, tuple[str, ...] | None] = (None, "", None)
        # `_on_<EventName>` handlers by event name, looked up once instead of by getattr per event
        self._handlers: dict[str, Callable[[EventLike, list[Effect]], None]] = {
            attr[4:]: getattr(self, attr) for attr in dir(self) if attr.startswith("_on_")
        }

    # --- queries -------------------------------------------------------------------------------------------

    @property
    def queues(self) -> dict[str, Queue]:
        """The queues by name (the board's: members and waiting callers)."""
        return self.board.queues

    def calls(self) -> list[Call]:
        # One pass over the calls (GET /calls with thousands of them): channels gathered once for the sort key
        # and the view, parked calls looked up by uniqueid instead of scanned per call.
        channels = self.channels
        rows = []
        for cid, uids in self._by_call.items():
            chans = [channels[u] for u in uids if u in channels]
            rows.append((min((c.created_at for c in chans), default=0.0), cid, uids, chans))
        rows.sort(key=lambda row: (row[0], row[1]))
        parked = {p.uniqueid: p for p in self.parked.values()}
        return [
            Call(id=cid, channels=chans, parked=[parked[u] for u in uids if u in parked] if parked else [],
                 bridges=self.bridges, pbx=self.pbx)
            for _, cid, uids, chans in rows
        ]  # fmt: skip

    def call(self, call_id: str) -> Call | None:
        if call_id in self._by_call:
            return self._call(call_id)
        return None

    def call_of_channel(self, uniqueid: str) -> Call | None:
        ch = self.channels.get(uniqueid)
        return None if ch is None else self._call(ch.linkedid)

    def channel_by_name(self, name: str) -> Channel | None:
        uid = self._by_name.get(name)
        return None if uid is None else self.channels.get(uid)

    def parked_in(self, lot: str | None = None) -> list[ParkedCall]:
        return sorted((p for p in self.parked.values() if lot is None or p.lot == lot), key=lambda p: (p.lot, p.space))

    def recordings_running(self) -> int:
        return len(self._recording)

    def parked_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.parked.values():
            counts[p.lot] = counts.get(p.lot, 0) + 1
        return counts

    def _call_sort_key(self, call_id: str) -> tuple[float, str]:
        return (min((self.channels[u].created_at for u in self._by_call[call_id]), default=0.0), call_id)

    def _call(self, call_id: str) -> Call:
        uids = self._by_call.get(call_id, set())
        channels = [self.channels[u] for u in uids if u in self.channels]
        parked = [p for p in self.parked.values() if p.uniqueid in uids]
        return Call(id=call_id, channels=channels, parked=parked, bridges=self.bridges, pbx=self.pbx)

    # --- side channel from the AGI session -----------------------------------------------------------------

    def note_flow(self, uniqueid: str, flow: str | None, node: str | None = None) -> None:
        """The FastAGI side knows which flow and node a channel is in (AMI VarSet needs the `dialplan` class)."""
        ch = self.channels.get(uniqueid)
        if ch is not None:
            ch.flow, ch.node = flow, node
            for watch in self.watchers:
                watch(FlowNoted(uniqueid))

    def expect_agent_leg(self, uniqueid: str, agent: str) -> None:
        """A channel we are about to originate (ChannelId=uniqueid) is the leg of agent `agent`."""
        ch = self.channels.get(uniqueid)
        if ch is not None:
            ch.agent, ch.agent_leg = agent, True
            return
        self._expected[uniqueid] = agent
        while len(self._expected) > _GONE_MEMORY:
            self._expected.popitem(last=False)

    # --- event application ---------------------------------------------------------------------------------

    def apply(self, msg: EventLike) -> list[Effect]:
        # The dispatch path of every AMI event: a few dict lookups and only the header reads the event needs.
        name = msg.name or ""
        effects: list[Effect] = []
        plan = _PLANS.get(name)
        if plan is not None:
            fields, names, channel_event, self_event = plan
            block = None
            if names is not None and type(msg) is Message:
                block = msg.leading(names)
                if block is None and names is not _BLOCK:
                    block = msg.leading(_BLOCK)
            uid = msg.get("Uniqueid") if block is None else block[_UNIQUEID]
            self._current = (msg, uid or "", block)  # handlers of these events reuse them (_uid, _after_block)
            if uid and channel_event:
                known = self_event and uid in self.channels  # Channel, Linkedid: unchanged, not read
                if known and not fields and uid not in self._gone:
                    pass  # nothing to read or change (what _touch would conclude)
                elif self._touch(msg, True, "", fields, uid, known, block) is None:
                    return effects
        handler = self._handlers.get(name)
        if handler is not None:
            handler(msg, effects)
        for watch in self.watchers:
            watch(msg)
        return effects

    def _resynced(self) -> None:
        for watch in self.watchers:
            watch(None)

    def _touch(
        self,
        msg: EventLike,
        create: bool,
        prefix: str = "",
        fields: tuple[Field, ...] | None = None,
        uid: str | None = None,
        known: bool = False,
        block: tuple[str, ...] | None = None,
    ) -> Channel | None:
        """Update (or create) the channel described by the standard block with the given header prefix. A known
        channel reads only `fields` (None: every field) besides Channel and Linkedid; a new one reads them all.
        `block`: the event's unprefixed block as `Message.leading(_BLOCK)` read it (None: read header by header)."""
        uid = uid or msg.get(prefix + "Uniqueid") or ""
        if not uid or uid == "<unknown>" or uid in self._gone:
            return None
        ch = self.channels.get(uid)
        if known and ch is not None:
            return self._update(ch, msg, prefix, fields, block)
        if block is not None:
            linkedid = block[_LINKEDID] or (ch.linkedid if ch else uid)
            name = block[_CHANNEL] or (ch.name if ch else "")
        else:
            linkedid = msg.get(prefix + "Linkedid") or (ch.linkedid if ch else uid)
            name = msg.get(prefix + "Channel") or (ch.name if ch else "")
        if ch is None:
            if not create:
                return None
            fields = None
            ch = Channel(name=name, uniqueid=uid, linkedid=linkedid, created_at=self.clock())
            agent = self._expected.pop(uid, None)
            if agent is not None:
                ch.agent, ch.agent_leg = agent, True
            self.channels[uid] = ch
            self._by_call.setdefault(linkedid, set()).add(uid)
            self._by_name[name] = uid
        if linkedid != ch.linkedid:
            self._refile(ch, linkedid)
        if name and name != ch.name:
            self._by_name.pop(ch.name, None)
            ch.name = name
            self._by_name[name] = uid
        return self._update(ch, msg, prefix, fields, block)

    def _update(
        self,
        ch: Channel,
        msg: EventLike,
        prefix: str,
        fields: tuple[Field, ...] | None,
        block: tuple[str, ...] | None = None,
    ) -> Channel:
        get = msg.get
        for header, attr, at in _ALL_FIELDS if fields is None else fields:
            value = get(prefix + header) if block is None else block[at]
            if value is None:
                continue
            if attr == "state":
                ch.state = _int(value, ch.state)
                desc = get(prefix + "ChannelStateDesc") if block is None else block[_STATE_DESC]
                ch.state_desc = desc or ch.state_desc
            elif attr in _CID_FIELDS:
                setattr(ch, attr, _cid(value))
            else:
                setattr(ch, attr, value)
        return ch

    def _refile(self, ch: Channel, linkedid: str) -> None:
        old = self._by_call.get(ch.linkedid)
        if old is not None:
            old.discard(ch.uniqueid)
            if not old:
                del self._by_call[ch.linkedid]
        ch.linkedid = linkedid
        self._by_call.setdefault(linkedid, set()).add(ch.uniqueid)
        for p in self.parked.values():
            if p.uniqueid == ch.uniqueid:
                p.linkedid = linkedid

    def _remove_channel(self, uid: str, effects: list[Effect], cause: str = "") -> None:
        ch = self.channels.pop(uid, None)
        self._gone[uid] = None
        while len(self._gone) > _GONE_MEMORY:
            self._gone.popitem(last=False)
        if ch is None:
            return
        if self._by_name.get(ch.name) == uid:
            del self._by_name[ch.name]
        self._recording.discard(uid)
        if ch.recording is not None:
            effects.append(
                RecordingEnded(
                    uid,
                    ch.linkedid,
                    ch.recording.mixmonitor_id,
                    "hangup",
                    max(0.0, self.clock() - ch.recording.started_at),
                )
            )
        if ch.bridge_id and ch.bridge_id in self.bridges:
            self.bridges[ch.bridge_id].channels.discard(uid)
        parked = self.parked.pop(uid, None)
        if parked is not None:
            effects.append(
                Unparked(parked.lot, parked.space, parked.linkedid, "gone", max(0.0, self.clock() - parked.parked_at))
            )
        self.board.channel_gone(uid)
        effects.append(ChannelGone(uid, ch.linkedid, ch.name, cause, ch.context))
        members = self._by_call.get(ch.linkedid)
        if members is not None:
            members.discard(uid)
            if not members:
                del self._by_call[ch.linkedid]
                effects.append(CallEnded(ch.linkedid))

    # Handlers: `_on_<EventName>(msg, effects)`. The standard channel block was already applied.

    def _uid(self, msg: EventLike) -> str:
        current, uid, _ = self._current
        return uid if current is msg else msg.get("Uniqueid") or ""

    def _after_block(self, msg: EventLike, header: str, at: int) -> str | None:
        """`msg.get(header)` for a header of `_BLOCK_OF[msg.name]` at place `at`: from the match when it read it."""
        current, _, block = self._current
        if current is msg and block is not None and len(block) > at:
            return block[at]
        return msg.get(header)

    def _on_Hangup(self, msg: EventLike, effects: list[Effect]) -> None:
        self._remove_channel(self._uid(msg), effects, msg.get("Cause-txt") or msg.get("Cause") or "")

    def _on_HangupRequest(self, msg: EventLike, effects: list[Effect]) -> None:
        # A waiting caller hanging up: its QueueCallerAbandon that follows is an abandon, not a Queue() timeout.
        self.board.hangup(self._uid(msg))

    _on_SoftHangupRequest = _on_HangupRequest

    def _on_Newexten(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(self._uid(msg))
        if ch is not None:
            ch.application = self._after_block(msg, "Application", _APPLICATION) or ""
            ch.app_data = self._after_block(msg, "AppData", _APP_DATA) or ""

    def _on_VarSet(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(self._uid(msg))
        variable = (self._after_block(msg, "Variable", _VARIABLE) or "").upper()
        if ch is None:
            return
        if variable == dialplan.FLOW:
            ch.flow = self._after_block(msg, "Value", _VALUE) or None
        elif variable == dialplan.NODE:
            ch.node = self._after_block(msg, "Value", _VALUE) or None

    def _on_BridgeCreate(self, msg: EventLike, effects: list[Effect]) -> None:
        self._bridge(msg)

    def _on_BridgeDestroy(self, msg: EventLike, effects: list[Effect]) -> None:
        bridge = self.bridges.pop(msg.get("BridgeUniqueid") or "", None)
        if bridge is not None:
            for uid in bridge.channels:
                ch = self.channels.get(uid)
                if ch is not None and ch.bridge_id == bridge.id:
                    ch.bridge_id = None

    def _bridge(self, msg: EventLike) -> Bridge:
        bid = msg.get("BridgeUniqueid") or ""
        bridge = self.bridges.get(bid)
        if bridge is None:
            bridge = self.bridges[bid] = Bridge(id=bid)
        bridge.type = msg.get("BridgeType") or bridge.type
        bridge.technology = msg.get("BridgeTechnology") or bridge.technology
        return bridge

    def _on_BridgeEnter(self, msg: EventLike, effects: list[Effect]) -> None:
        bridge = self._bridge(msg)
        uid = msg.get("Uniqueid") or ""
        ch = self.channels.get(uid)
        if ch is None:
            return
        if ch.bridge_id and ch.bridge_id != bridge.id and ch.bridge_id in self.bridges:
            self.bridges[ch.bridge_id].channels.discard(uid)
        ch.bridge_id = bridge.id
        bridge.channels.add(uid)

    def _on_BridgeLeave(self, msg: EventLike, effects: list[Effect]) -> None:
        bridge = self.bridges.get(msg.get("BridgeUniqueid") or "")
        uid = msg.get("Uniqueid") or ""
        if bridge is not None:
            bridge.channels.discard(uid)
        ch = self.channels.get(uid)
        if ch is not None and ch.bridge_id == (bridge.id if bridge else msg.get("BridgeUniqueid")):
            ch.bridge_id = None

    def _on_MusicOnHoldStart(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        if ch is not None:
            ch.moh_class = msg.get("Class") or "default"

    def _on_MusicOnHoldStop(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        if ch is not None:
            ch.moh_class = None

    def _on_MixMonitorStart(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        if ch is not None:
            ch.recording = Recording(mixmonitor_id=msg.get("MixMonitorID") or "", started_at=self.clock())
            self._recording.add(ch.uniqueid)
            effects.append(RecordingStarted(ch.uniqueid, ch.linkedid))

    def _on_MixMonitorMute(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        # Asterisk answers (and emits this event) even without a running MixMonitor (ami-14): ignore that case.
        if ch is not None and ch.recording is not None:
            ch.recording.muted = msg.get("State") == "1"

    def _on_MixMonitorStop(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        if ch is not None and ch.recording is not None:
            effects.append(
                RecordingEnded(
                    ch.uniqueid,
                    ch.linkedid,
                    ch.recording.mixmonitor_id,
                    "stopped",
                    max(0.0, self.clock() - ch.recording.started_at),
                )
            )
            ch.recording = None
            self._recording.discard(ch.uniqueid)

    # --- parking ---

    def _parked_from(self, msg: EventLike) -> ParkedCall | None:
        uid = msg.get("ParkeeUniqueid") or ""
        if not uid or uid in self._gone:
            return None
        ch = self._touch(msg, create=True, prefix="Parkee")
        if ch is None:
            return None
        duration = float(_int(msg.get("ParkingDuration")))
        existing = self.parked.get(uid)
        parked = ParkedCall(
            lot=msg.get("Parkinglot") or "default",
            space=msg.get("ParkingSpace") or "",
            uniqueid=uid,
            channel=ch.name,
            linkedid=ch.linkedid,
            caller_num=ch.caller_num,
            caller_name=ch.caller_name,
            timeout=_int(msg.get("ParkingTimeout")),
            parked_at=existing.parked_at if existing else self.clock() - duration,
            parker=msg.get("ParkerDialString") or "",
        )
        self.parked[uid] = parked
        return parked

    def _on_ParkedCall(self, msg: EventLike, effects: list[Effect]) -> None:
        self._parked_from(msg)

    def _unpark(self, msg: EventLike, effects: list[Effect]) -> None:
        uid = msg.get("ParkeeUniqueid") or ""
        self._touch(msg, create=False, prefix="Parkee")
        parked = self.parked.pop(uid, None)
        if parked is not None:
            effects.append(
                Unparked(
                    parked.lot,
                    parked.space,
                    parked.linkedid,
                    _UNPARK_EVENTS[msg.name or ""],
                    float(_int(msg.get("ParkingDuration"))),
                )
            )

    _on_UnParkedCall = _unpark
    _on_ParkedCallTimeOut = _unpark
    _on_ParkedCallGiveUp = _unpark
    _on_ParkedCallSwap = _unpark

    # --- queues ---

    def _on_QueueCallerJoin(self, msg: EventLike, effects: list[Effect]) -> None:
        ch = self.channels.get(msg.get("Uniqueid") or "")
        if ch is None:
            return
        caller = self.board.join(
            msg.get("Queue") or "",
            ch.uniqueid,
            channel=ch.name,
            linkedid=ch.linkedid,
            caller_num=ch.caller_num,
            caller_name=ch.caller_name,
            position=_int(msg.get("Position")),
        )
        if caller is not None:
            ch.queue = msg.get("Queue")

    def _on_QueueCallerLeave(self, msg: EventLike, effects: list[Effect]) -> None:
        uid = msg.get("Uniqueid") or ""
        self.board.leave(msg.get("Queue") or "", uid)
        ch = self.channels.get(uid)
        if ch is not None:
            ch.queue = None

    def _on_AgentConnect(self, msg: EventLike, effects: list[Effect]) -> None:
        agent = msg.get("MemberName") or msg.get("Interface") or ""
        for uid in (msg.get("Uniqueid"), msg.get("DestUniqueid")):
            ch = self.channels.get(uid or "")
            if ch is not None and agent:
                ch.agent = agent
                ch.agent_leg = ch.agent_leg or uid == msg.get("DestUniqueid")
        self.board.agent_connected(msg)

    def _on_AgentComplete(self, msg: EventLike, effects: list[Effect]) -> None:
        self.board.agent_completed(msg)

    def _on_DialEnd(self, msg: EventLike, effects: list[Effect]) -> None:
        """A Dial() answered: the dialled peer is the agent the caller now talks to (agi-06.ami: Channel = the
        channel that ran Dial, Dest* = the peer). Named like a queue member's interface (`Local/answer2s@agents`,
        `PJSIP/1001`); a queue's AgentConnect that follows renames it by MemberName. An agent's own leg dialling
        the customer (click-to-call) keeps its agent."""
        if msg.get("DialStatus") != "ANSWER":
            return
        dialler = self.channels.get(msg.get("Uniqueid") or "")
        if dialler is None or dialler.agent_leg:
            return
        peer = self._touch(msg, create=True, prefix="Dest")
        if peer is None:
            return
        agent = _interface(peer.name)
        dialler.agent = agent
        peer.agent, peer.agent_leg = agent, True

    def _on_QueueMemberAdded(self, msg: EventLike, effects: list[Effect]) -> None:
        self.board.member(msg)

    _on_QueueMemberPause = _on_QueueMemberAdded
    _on_QueueMemberStatus = _on_QueueMemberAdded
    _on_QueueMemberPenalty = _on_QueueMemberAdded
    _on_QueueMemberRinginuse = _on_QueueMemberAdded

    def _on_QueueMemberRemoved(self, msg: EventLike, effects: list[Effect]) -> None:
        self.board.member_removed(msg)

    # --- resynchronisation from list answers ---------------------------------------------------------------

    def resync_channels(self, items: Iterable[EventLike]) -> list[Effect]:
        """Replace the channel picture with a CoreShowChannels answer (items `CoreShowChannel`)."""
        effects: list[Effect] = []
        now = self.clock()
        seen: set[str] = set()
        members: dict[str, set[str]] = {}
        for item in items:
            if item.name != "CoreShowChannel":
                continue
            uid = item.get("Uniqueid") or ""
            self._gone.pop(uid, None)  # it exists: a stale "gone" note must not hide it
            ch = self._touch(item, create=True)
            if ch is None:
                continue
            seen.add(uid)
            ch.application = item.get("Application") or ""
            ch.app_data = item.get("ApplicationData") or ""
            if ch.application == "MusicOnHold" and ch.moh_class is None:
                # MusicOnHoldStart came before we (re)connected: a held party is still held after a restart.
                ch.moh_class = ch.app_data or "default"
            ch.created_at = min(ch.created_at, now - _duration(item.get("Duration")))
            bid = item.get("BridgeId") or ""
            ch.bridge_id = bid or None
            if bid:
                members.setdefault(bid, set()).add(uid)
        for uid in [u for u in self.channels if u not in seen]:
            self._remove_channel(uid, effects)
        for bid, uids in members.items():
            bridge = self.bridges.get(bid) or Bridge(id=bid)
            bridge.channels = uids
            self.bridges[bid] = bridge
        for bid in [b for b in self.bridges if b not in members]:
            del self.bridges[bid]
        self._resynced()
        return effects

    def resync_parked(self, items: Iterable[EventLike]) -> list[Effect]:
        """Replace the parked calls with a ParkedCalls answer (items `ParkedCall`)."""
        effects: list[Effect] = []
        before = dict(self.parked)
        self.parked = {}
        for item in items:
            if item.name == "ParkedCall":
                parked = self._parked_from(item)
                if parked is not None and parked.uniqueid in before:
                    parked.parked_at = before[parked.uniqueid].parked_at
        for uid, parked in before.items():
            if uid not in self.parked:
                effects.append(
                    Unparked(
                        parked.lot, parked.space, parked.linkedid, "gone", max(0.0, self.clock() - parked.parked_at)
                    )
                )
        self._resynced()
        return effects

    def resync_queues(self, items: Iterable[EventLike]) -> None:
        """Replace queues, members and waiting callers with a QueueStatus answer."""
        self.board.resync(items)
        for channel in self.channels.values():
            channel.queue = None
        for queue in self.board.queues.values():
            for caller in queue.callers.values():
                ch = self.channels.get(caller.uniqueid)
                if ch is not None:
                    caller.linkedid = ch.linkedid  # the call it belongs to now (QueueEntry names none)
                    ch.queue = queue.name
        self._resynced()

    def clear(self) -> list[Effect]:
        """Forget everything (e.g. Asterisk restarted: `Shutdown`, or a resync could not run)."""
        effects: list[Effect] = []
        for uid in list(self.channels):
            self._remove_channel(uid, effects)
        self.bridges.clear()
        self.parked.clear()
        self.board.clear()
        return effects

    def _on_Shutdown(self, msg: EventLike, effects: list[Effect]) -> None:
        effects.extend(self.clear())


def snapshot(registry: CallRegistry) -> dict[str, Any]:
    """Everything as JSON-able data (debugging and tests)."""
    return {
        "calls": [c.to_json() for c in registry.calls()],
        "parked": [p.to_json() for p in registry.parked_in()],
        "queues": [q.to_json() for q in registry.queues.values()],
    }

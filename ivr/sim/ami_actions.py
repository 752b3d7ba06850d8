"""AMI actions of the simulated Asterisk: responses and error strings as recorded in ami-11 .. ami-17.

Rules for this file:
- One handler per action, `async def (session, msg)`; each writes its response through `session.respond()`
  (Response first, ActionID second) and lets the PBX emit the events (asynchronously, as Asterisk does).
- List actions answer `EventList: start` + "... will follow", item events carrying the ActionID, then a
  `...Complete` event with `EventList: Complete` / `ListItems: n`.
- Header values from the client are only used as lookup keys, dial strings or variable values; nothing from
  the network reaches a file path except through the same checks as the AGI side (MixMonitor).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ivr.ami.protocol import Message
from ivr.sim.ami_bridge import AMIBridge, find_by_prefix
from ivr.sim.ami_originate import Originate
from ivr.sim.appargs import parse_options
from ivr.sim.channel import SimChannel
from ivr.sim.events import STATE_DESC
from ivr.sim.model import OriginateLog
from ivr.sim.pbx import QueueMember, member_pairs
from ivr.sim.queue_app import whole_seconds

if TYPE_CHECKING:
    from ivr.sim.ami_server import AMISession
    from ivr.sim.simulator import SimulatedAsterisk

Handler = Callable[["AMISession", Message], Awaitable[None]]
Pairs = list[tuple[str, str]]
ACTIONS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ACTIONS[name.lower()] = fn
        return fn

    return deco


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "yes", "true", "on", "y")


def _list_start(s: AMISession, msg: Message, text: str) -> None:
    s.respond(msg, "Success", [("EventList", "start"), ("Message", text)])


def _send_event(
    s: AMISession,
    name: str,
    msg: Message,
    pairs: Pairs,
    *,
    privilege: str | None = None,
    action_id_last: bool = False,
) -> None:
    head: Pairs = [("Event", name)]
    if privilege:
        head.append(("Privilege", privilege))
    aid = msg.get("ActionID")
    if aid is not None and not action_id_last:
        head.append(("ActionID", aid))
    tail: Pairs = [("ActionID", aid)] if aid is not None and action_id_last else []
    s.send(head + pairs + tail)


def _complete(s: AMISession, name: str, msg: Message, count: int, extra: Pairs | None = None) -> None:
    _send_event(s, name, msg, [("EventList", "Complete"), ("ListItems", str(count))] + (extra or []))


# -- simple actions -----------------------------------------------------------------------------------------------


@action("Ping")
async def ping(s: AMISession, msg: Message) -> None:
    s.respond(msg, "Success", [("Ping", "Pong"), ("Timestamp", f"{s.sim.clock.now():.6f}")])


@action("UserEvent")
async def user_event(s: AMISession, msg: Message) -> None:
    s.respond(msg, "Success", [("Message", "Event Sent")])
    pairs: Pairs = [("UserEvent", msg.get("UserEvent") or "")]
    aid = msg.get("ActionID")
    if aid is not None:
        pairs.append(("ActionID", aid))
    pairs += [(k, v) for k, v in msg.items() if k.lower() not in ("action", "actionid", "userevent")]
    s.sim.pbx.bus.emit("UserEvent", "user,all", pairs)


@action("Getvar")
async def getvar(s: AMISession, msg: Message) -> None:
    var = msg.get("Variable")
    if not var:
        s.respond(msg, "Error", [("Message", "No variable specified")])
        return
    name = msg.get("Channel")
    if name:
        ch = s.sim.pbx.find_channel(name)
        if ch is None:
            s.respond(msg, "Error", [("Message", "No such channel")])
            return
        value = ch.get_var(var)  # Getvar does not expand ${...} expressions (ami-12: empty Value)
    else:
        value = s.sim.pbx.globals.get(var)
    s.respond(msg, "Success", [("Variable", var), ("Value", value or "")])


@action("Setvar")
async def setvar(s: AMISession, msg: Message) -> None:
    var = msg.get("Variable")
    if not var:
        s.respond(msg, "Error", [("Message", "No variable specified")])
        return
    name = msg.get("Channel")
    value = msg.get("Value") or ""
    if name:
        ch = s.sim.pbx.find_channel(name)
        if ch is None:
            s.respond(msg, "Error", [("Message", "No such channel")])
            return
        s.respond(msg, "Success", [("Message", "Variable Set")])
        ch.set_var(var, value)
    else:
        s.respond(msg, "Success", [("Message", "Variable Set")])
        s.sim.pbx.globals[var] = value


# -- channels -----------------------------------------------------------------------------------------------------


def _duration(ch: SimChannel) -> str:
    secs = int(ch.pbx.clock.now() - ch.created)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


@action("CoreShowChannels")
async def core_show_channels(s: AMISession, msg: Message) -> None:
    _list_start(s, msg, "Channels will follow")
    chans = list(s.sim.pbx.channels.values())
    for ch in chans:
        _send_event(
            s,
            "CoreShowChannel",
            msg,
            ch.block()
            + [
                ("Application", ch.app),
                ("ApplicationData", ch.appdata),
                ("Duration", _duration(ch)),
                ("BridgeId", ch.bridge_id),
            ],
        )
    _complete(s, "CoreShowChannelsComplete", msg, len(chans))


@action("Status")
async def status(s: AMISession, msg: Message) -> None:
    name = msg.get("Channel")
    pbx = s.sim.pbx
    if name:
        ch = pbx.find_channel(name)
        if ch is None:
            s.respond(msg, "Error", [("Message", "No such channel")])
            return
        chans = [ch]
    else:
        chans = list(pbx.channels.values())
    wanted = [v.strip() for v in (msg.get("Variables") or "").split(",") if v.strip()]
    _list_start(s, msg, "Channel status will follow")
    for ch in chans:
        pairs = ch.block() + [
            ("Type", ch.tech),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.connected_num or ch.caller_num),
            ("EffectiveConnectedLineName", ch.connected_name or ch.caller_name),
            ("TimeToHangup", "0"),
            ("BridgeID", ch.bridge_id),
            ("Application", ch.app),
            ("Data", ch.appdata),
            ("Nativeformats", "(slin)"),
            ("Readformat", "slin"),
            ("Readtrans", ""),
            ("Writeformat", "slin"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(int(pbx.clock.now() - ch.created))),
        ]
        pairs += [("Variable", "{}={}".format(v, ch.get_var(v) or "")) for v in wanted]
        _send_event(s, "Status", msg, pairs, privilege="Call", action_id_last=True)
    _complete(s, "StatusComplete", msg, len(chans), [("Items", str(len(chans)))])


@action("Hangup")
async def hangup(s: AMISession, msg: Message) -> None:
    name = msg.get("Channel")
    if not name:
        s.respond(msg, "Error", [("Message", "No channel specified")])
        return
    cause_text = msg.get("Cause")
    cause = int(cause_text) if cause_text and cause_text.strip().isdigit() else 0
    sim = s.sim
    if len(name) > 1 and name.startswith("/") and name.endswith("/"):
        try:
            rx = re.compile(name[1:-1])
        except re.error:
            s.respond(msg, "Error", [("Message", "Invalid regex")])
            return
        _list_start(s, msg, "Channels hung up will follow")
        hit = [ch for ch in list(sim.pbx.channels.values()) if rx.search(ch.name)]
        for gone in hit:
            _send_event(s, "ChannelHungup", msg, [("Channel", gone.name)])
            sim.hangup_channel(gone, cause)
        _complete(s, "ChannelsHungupListComplete", msg, len(hit))
        return
    ch = sim.pbx.find_channel(name)
    if ch is None:
        s.respond(msg, "Error", [("Message", "No such channel")])
        return
    s.respond(msg, "Success", [("Message", "Channel Hungup")])
    sim.hangup_channel(ch, cause)


@action("Redirect")
async def redirect(s: AMISession, msg: Message) -> None:
    name = msg.get("Channel")
    if not name:
        s.respond(msg, "Error", [("Message", "Channel not specified")])
        return
    exten, context = msg.get("Exten") or "", msg.get("Context") or ""
    if not exten:
        s.respond(msg, "Error", [("Message", "Exten not specified")])
        return
    sim = s.sim
    ch = sim.pbx.find_channel(name)
    if ch is None:
        s.respond(msg, "Error", [("Message", f"Channel '{name}' not found")])
        return
    extra_name = msg.get("ExtraChannel")
    extra = sim.pbx.find_channel(extra_name) if extra_name else None
    if extra_name and extra is None:
        s.respond(msg, "Error", [("Message", f"ExtraChannel does not exist: {extra_name}")])
        return
    s.respond(msg, "Success", [("Message", "Dual Redirect successful" if extra else "Redirect successful")])
    sim.redirect_channel(ch, context, exten)
    if extra is not None and extra is not ch:
        sim.redirect_channel(extra, msg.get("ExtraContext") or context, msg.get("ExtraExten") or exten)


def _transfer_request(s: AMISession, msg: Message, *, no_channel: str) -> tuple[Any, str, str] | None:
    """(channel, context, exten) of a BlindTransfer/Atxfer, or None after answering the error Asterisk gives
    (the two actions word a missing channel differently: ami-16)."""
    name = msg.get("Channel")
    if not name:
        s.respond(msg, "Error", [("Message", "No channel specified")])
        return None
    ch = s.sim.pbx.find_channel(name)
    if ch is None:
        s.respond(msg, "Error", [("Message", no_channel)])
        return None
    exten, context = msg.get("Exten") or "", msg.get("Context") or ch.context
    if not exten:
        s.respond(msg, "Error", [("Message", "No extension specified")])
        return None
    return ch, context, exten


@action("BlindTransfer")
async def blind_transfer(s: AMISession, msg: Message) -> None:
    target = _transfer_request(s, msg, no_channel="No such channel")
    if target is None:
        return
    ch, context, exten = target
    peer = ch.bridge_peer
    if peer is not None:  # Asterisk names each side's partner in BLINDTRANSFER (ami-16), before the transfer
        peer.set_var("BLINDTRANSFER", ch.name)
        ch.set_var("BLINDTRANSFER", peer.name)
    if not s.sim.transfer(ch, context, exten):
        s.respond(msg, "Error", [("Message", "Transfer invalid")])
        s.sim.pbx.bus.emit(
            "BlindTransfer",
            "call,all",
            [("Result", "Invalid")]
            + ch.block("Transferer")
            + [("IsExternal", "No"), ("Context", context), ("Extension", exten)],
        )
        return
    s.respond(msg, "Success", [("Message", "Transfer succeeded")])
    s.sim.pbx.bus.emit(
        "BlindTransfer",
        "call,all",
        [("Result", "Success")]
        + ch.block("Transferer")
        + (peer.block("Transferee") if peer else [])
        + [("IsExternal", "No"), ("Context", context), ("Extension", exten)],
    )


@action("Atxfer")
async def atxfer(s: AMISession, msg: Message) -> None:
    target = _transfer_request(s, msg, no_channel="Channel specified does not exist")
    if target is None:
        return
    ch, context, exten = target
    peer = ch.bridge_peer
    if not s.sim.transfer(ch, context, exten):
        s.respond(msg, "Error", [("Message", "Transfer invalid")])
        return
    s.respond(msg, "Success", [("Message", "Atxfer successfully queued")])
    # the simulator completes the consultation at once: the transferee is handed to the new target
    s.sim.pbx.bus.emit(
        "AttendedTransfer",
        "call,all",
        [("Result", "Success")]
        + ch.block("OrigTransferer")
        + (peer.block("Transferee") if peer else [])
        + [("IsExternal", "No"), ("DestType", "Bridge")],
    )


@action("Bridge")
async def bridge(s: AMISession, msg: Message) -> None:
    """Bridge Channel1 and Channel2 (features.c action_bridge; see ami_bridge.py)."""
    channel1, channel2 = msg.get("Channel1"), msg.get("Channel2")
    if not channel1 or not channel2:
        s.respond(msg, "Error", [("Message", "Missing channel parameter in request")])
        return
    found = []
    for n, name in enumerate((channel1, channel2), 1):
        ch = find_by_prefix(s.sim.pbx, name)
        if ch is None:
            s.respond(msg, "Error", [("Message", f"Channel{n} does not exist: {name}")])
            return
        found.append(ch)
    for n, ch in enumerate(found, 1):
        # the simulator can take a channel only out of the apps dialplan.py runs (MusicOnHold, Wait)
        if not ch.bridgeable or ch.pending_bridge is not None or found[0] is found[1]:
            s.respond(msg, "Error", [("Message", f"Unable to add Channel{n} to bridge: {ch.name}")])
            return
    s.respond(msg, "Success", [("Message", "Channels have been bridged")])
    AMIBridge(s.sim.pbx, found[0], found[1]).offer()


# -- parking ------------------------------------------------------------------------------------------------------


@action("Park")
async def park(s: AMISession, msg: Message) -> None:
    name = msg.get("Channel")
    if not name:
        s.respond(msg, "Error", [("Message", "Channel not specified")])
        return
    ch = s.sim.pbx.find_channel(name)
    if ch is None:
        s.respond(msg, "Error", [("Message", f"Channel does not exist: {name}")])
        return
    timeout_text = msg.get("Timeout")
    timeout = int(timeout_text) / 1000 if timeout_text and timeout_text.strip().isdigit() else None
    if not s.sim.park_channel(ch, timeout):
        s.respond(msg, "Error", [("Message", "Park action failed")])
        return
    s.respond(msg, "Success", [("Message", "Park successful\n")])  # the real one has this bare LF


@action("ParkedCalls")
async def parked_calls(s: AMISession, msg: Message) -> None:
    from ivr.sim.parking import park_fields

    _list_start(s, msg, "Parked calls will follow")
    calls = [p for p in s.sim.pbx.parked.values() if not p.done]
    for p in calls:
        _send_event(s, "ParkedCall", msg, park_fields(s.sim.pbx, p))
    _complete(s, "ParkedCallsComplete", msg, len(calls), [("Total", str(len(calls)))])


# -- MixMonitor ---------------------------------------------------------------------------------------------------


@action("MixMonitor")
async def mixmonitor(s: AMISession, msg: Message) -> None:
    ch = s.sim.pbx.find_channel(msg.get("Channel") or "")
    if ch is None:
        s.respond(msg, "Error", [("Message", "No such channel")])
        return
    filename = msg.get("File") or ""
    mm = s.sim.start_mixmonitor(ch, filename) if filename else None
    if mm is None:
        s.respond(msg, "Error", [("Message", "Could not start monitoring channel")])
        return
    options = parse_options(msg.get("Options") or "")  # manager_mixmonitor: ast_app_parse_options
    if options.get("i"):
        ch.set_var(options["i"] or "", mm.id)
    s.respond(msg, "Success", [("MixMonitorID", mm.id)] if "i" in options else [])


@action("MixMonitorMute")
async def mixmonitor_mute(s: AMISession, msg: Message) -> None:
    ch = s.sim.pbx.find_channel(msg.get("Channel") or "")
    if ch is None:
        s.respond(msg, "Error", [("Message", "No such channel")])
        return
    direction = (msg.get("Direction") or "both").lower()
    if direction not in ("read", "write", "both"):
        s.respond(msg, "Error", [("Message", "Invalid direction specified. Must be read, write or both")])
        return
    state = "1" if _true(msg.get("State")) else "0"
    s.respond(msg, "Success", [])
    ch.emit("MixMonitorMute", "call,all", [("Direction", direction), ("State", state)])


@action("StopMixMonitor")
async def stop_mixmonitor(s: AMISession, msg: Message) -> None:
    ch = s.sim.pbx.find_channel(msg.get("Channel") or "")
    if ch is None:
        s.respond(msg, "Error", [("Message", "No such channel")])
        return
    if not s.sim.stop_mixmonitor(ch, msg.get("MixMonitorID") or None, emit=False):
        s.respond(msg, "Error", [("Message", "Could not stop monitoring channel")])
        return
    s.respond(msg, "Success", [])
    ch.emit("MixMonitorStop", "call,all")


# -- queues -------------------------------------------------------------------------------------------------------


@action("QueueAdd")
async def queue_add(s: AMISession, msg: Message) -> None:
    iface = msg.get("Interface")
    qname = msg.get("Queue")
    if not iface:
        s.respond(msg, "Error", [("Message", "'Interface' not specified.")])
        return
    if not qname:
        s.respond(msg, "Error", [("Message", "'Queue' not specified.")])
        return
    q = s.sim.pbx.queue(qname)
    if q is None:
        s.respond(msg, "Error", [("Message", "Unable to add interface to queue: No such queue")])
        return
    if iface in q.members:
        s.respond(msg, "Error", [("Message", "Unable to add interface: Already there")])
        return
    now = int(s.sim.clock.now())
    m = QueueMember(
        iface,
        name=msg.get("MemberName") or "",
        state_interface=msg.get("StateInterface") or "",
        paused=_true(msg.get("Paused")),
        reason=msg.get("Reason") or "",
        penalty=int(msg.get("Penalty") or 0) if (msg.get("Penalty") or "0").isdigit() else 0,
        dynamic=True,
        last_pause=now,
        login_time=now,
    )
    q.members[iface] = m
    s.respond(msg, "Success", [("Message", "Added interface to queue")])
    s.sim.pbx.bus.emit("QueueMemberAdded", "agent,all", member_pairs(qname, m))
    q.wake_callers()


@action("QueueRemove")
async def queue_remove(s: AMISession, msg: Message) -> None:
    iface, qname = msg.get("Interface"), msg.get("Queue")
    if not iface:
        s.respond(msg, "Error", [("Message", "'Interface' not specified.")])
        return
    q = s.sim.pbx.queue(qname or "")
    if q is None:
        s.respond(msg, "Error", [("Message", "Unable to remove interface from queue: No such queue")])
        return
    m = q.members.pop(iface, None)
    if m is None:
        s.respond(msg, "Error", [("Message", "Unable to remove interface: Not there")])
        return
    s.respond(msg, "Success", [("Message", "Removed interface from queue")])
    s.sim.pbx.bus.emit("QueueMemberRemoved", "agent,all", member_pairs(q.spec.name, m))


@action("QueuePause")
async def queue_pause(s: AMISession, msg: Message) -> None:
    iface = msg.get("Interface")
    if not iface:
        s.respond(msg, "Error", [("Message", "Need 'Interface' and 'Paused' parameters.")])
        return
    paused = _true(msg.get("Paused"))
    qname = msg.get("Queue")
    queues = [s.sim.pbx.queue(qname)] if qname else list(s.sim.pbx.queues.values())
    hits = [(q, q.members[iface]) for q in queues if q is not None and iface in q.members]
    if not hits:
        s.respond(msg, "Error", [("Message", "Interface not found")])
        return
    s.respond(msg, "Success", [("Message", "Interface %s successfully" % ("paused" if paused else "unpaused"))])
    for q, m in hits:
        m.paused = paused
        m.reason = (msg.get("Reason") or "") if paused else ""
        m.last_pause = int(s.sim.clock.now())
        s.sim.pbx.bus.emit("QueueMemberPause", "agent,all", member_pairs(q.spec.name, m))
        q.wake_callers()


@action("QueueSummary")
async def queue_summary(s: AMISession, msg: Message) -> None:
    _list_start(s, msg, "Queue summary will follow")
    qname = msg.get("Queue")
    queues = [q for q in s.sim.pbx.queues.values() if not qname or q.spec.name == qname]
    now = s.sim.clock.now()
    for q in queues:
        logged = [m for m in q.members.values()]
        avail = [m for m in logged if s.sim.pbx.member_available(m)]
        longest = max((whole_seconds(c.queue_joined, now) for c in q.callers), default=0)  # time(NULL) based
        pairs: Pairs = [
            ("Queue", q.spec.name),
            ("LoggedIn", str(len(logged))),
            ("Available", str(len(avail))),
            ("Callers", str(len(q.callers))),
            ("HoldTime", str(int(q.avg_hold()))),
            ("TalkTime", str(int(q.avg_talk()))),
            ("LongestHoldTime", str(int(longest))),
        ]
        _send_event(s, "QueueSummary", msg, pairs, action_id_last=True)
    _complete(s, "QueueSummaryComplete", msg, len(queues))


@action("QueueStatus")
async def queue_status(s: AMISession, msg: Message) -> None:
    _list_start(s, msg, "Queue status will follow")
    qname = msg.get("Queue")
    queues = [q for q in s.sim.pbx.queues.values() if not qname or q.spec.name == qname]
    now = s.sim.clock.now()
    items = 0
    for q in queues:
        _send_event(
            s,
            "QueueParams",
            msg,
            [
                ("Queue", q.spec.name),
                ("Max", "0"),
                ("Strategy", q.spec.strategy),
                ("Calls", str(len(q.callers))),
                ("Holdtime", str(int(q.avg_hold()))),
                ("TalkTime", str(int(q.avg_talk()))),
                ("Completed", str(q.completed)),
                ("Abandoned", str(q.abandoned)),
                ("ServiceLevel", "0"),
                ("ServicelevelPerf", "0.0"),
                ("ServicelevelPerf2", "0.0"),
                ("Weight", "0"),
            ],
            action_id_last=True,
        )
        items += 1
        for m in q.members.values():
            _send_event(
                s,
                "QueueMember",
                msg,
                member_pairs(q.spec.name, m, "Name", "Location", ringinuse=False),
                action_id_last=True,
            )
            items += 1
        for pos, c in enumerate(q.callers, 1):
            _send_event(
                s,
                "QueueEntry",
                msg,
                [
                    ("Queue", q.spec.name),
                    ("Position", str(pos)),
                    ("Channel", c.name),
                    ("Uniqueid", c.uniqueid),
                    ("CallerIDNum", c.caller_num or "<unknown>"),
                    ("CallerIDName", c.caller_name or "<unknown>"),
                    ("ConnectedLineNum", c.connected_num or "<unknown>"),
                    ("ConnectedLineName", c.connected_name or "<unknown>"),
                    ("Wait", str(whole_seconds(c.queue_joined, now))),
                    ("Priority", "0"),
                ],
                action_id_last=True,
            )
            items += 1
    _complete(s, "QueueStatusComplete", msg, items)


# -- Command (CLI) ------------------------------------------------------------------------------------------------


@action("Command")
async def command(s: AMISession, msg: Message) -> None:
    cmd = " ".join((msg.get("Command") or "").split())
    sim = s.sim
    if cmd.lower() in ("core stop now", "core stop gracefully", "core stop when convenient"):
        s.respond(msg, "Success", [("Message", "Command output follows")])
        sim.spawn(sim.shutdown())
        return
    out = _cli(sim, cmd)
    if out is None:
        word = cmd.split(" ")[0] if cmd else ""
        s.respond(
            msg,
            "Error",
            [
                ("Message", "Command output follows"),
                (
                    "Output",
                    "No such command '{}' (type 'core show help {}' for other possible commands)".format(
                        cmd, " ".join(cmd.split(" ")[:2]) or word
                    ),
                ),
            ],
        )
        return
    s.respond(msg, "Success", [("Message", "Command output follows")] + [("Output", line) for line in out])


VERSION_LINE = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-28 23:06:43 UTC"


@action("CoreStatus")
async def core_status(s: AMISession, msg: Message) -> None:
    from datetime import datetime

    start = datetime.fromtimestamp(s.sim.pbx.started, tz=UTC)
    date, time_ = start.strftime("%Y-%m-%d"), start.strftime("%H:%M:%S")
    s.respond(
        msg,
        "Success",
        [
            ("CoreStartupDate", date),
            ("CoreStartupTime", time_),
            ("CoreReloadDate", date),
            ("CoreReloadTime", time_),
            ("CoreCurrentCalls", str(len(s.sim.pbx.channels))),
            ("CoreProcessedCalls", str(s.sim.pbx.channels_created)),
        ],
    )


@action("CoreSettings")
async def core_settings(s: AMISession, msg: Message) -> None:
    s.respond(
        msg,
        "Success",
        [
            ("AMIversion", "11.0.0"),
            ("AsteriskVersion", "22.10.1"),
            ("SystemName", ""),
            ("CoreMaxCalls", "0"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "No"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        ],
    )


def _uptime(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'' if hours == 1 else 's'}")
    if minutes:
        parts.append(f"{minutes} minute{'' if minutes == 1 else 's'}")
    parts.append(f"{secs} second{'' if secs == 1 else 's'}")
    return ", ".join(parts)


def _cli(sim: SimulatedAsterisk, cmd: str) -> list[str] | None:
    low = cmd.lower()
    if low == "core show version":
        return [VERSION_LINE]
    if low == "core show uptime":
        up = _uptime(int(sim.clock.now() - sim.pbx.started))
        return ["System uptime: " + up, "Last reload: " + up]
    if low in ("core show channels", "core show channels concise"):
        chans = list(sim.pbx.channels.values())
        if low.endswith("concise"):
            return [
                "!".join(
                    [
                        c.name,
                        c.context,
                        c.exten,
                        str(c.priority),
                        STATE_DESC.get(c.state, ""),
                        c.app,
                        c.appdata,
                        c.caller_num,
                        "",
                        "",
                        "3",
                        str(int(sim.clock.now() - c.created)),
                        c.bridge_peer.name if c.bridge_peer else "(None)",
                        c.uniqueid,
                    ]
                )
                for c in chans
            ]
        lines = [f"{'Channel':<64} {'Location':<32} {'State':<7} Application(Data)"]
        for c in chans:
            lines.append(
                f"{c.name:<64} {f'{c.exten}@{c.context}:{c.priority}':<32} {STATE_DESC.get(c.state, ''):<7} "
                f"{c.app}({c.appdata})"
            )
        lines.append(f"{len(chans)} active channel{'' if len(chans) == 1 else 's'}")
        lines.append(f"{len(sim.live_calls)} active call{'' if len(sim.live_calls) == 1 else 's'}")
        lines.append(f"{sim.finished_calls} call{'' if sim.finished_calls == 1 else 's'} processed")
        return lines
    if low.startswith("queue show"):
        lines = []
        for q in sim.pbx.queues.values():
            lines.append(
                f"{q.spec.name} has {len(q.callers)} calls (max unlimited) in '{q.spec.strategy}' strategy "
                f"({int(q.avg_hold())}s holdtime, {int(q.avg_talk())}s talktime), W:0, "
                f"C:{q.completed}, A:{q.abandoned}, SL:0.0%, SL2:0.0% within 0s"
            )
            lines.append("   Members: " if q.members else "   No Members")
            for m in q.members.values():
                lines.append("      {} ({}){}".format(m.display_name(), m.interface, " (paused)" if m.paused else ""))
            lines.append("   No Callers" if not q.callers else "   Callers: ")
        return lines
    if low == "parking show":
        return [f"Parking lot: {sim.config.parking.name}"] + [
            f"Space: {p.space}  Channel: {p.channel.name}" for p in sim.pbx.parked.values()
        ]
    return None


# -- Originate ----------------------------------------------------------------------------------------------------


def _callerid(text: str) -> tuple[str, str]:
    m = re.match(r'\s*"?([^"<]*?)"?\s*<([^>]*)>', text)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    return text.strip(), ""


@action("Originate")
async def originate(s: AMISession, msg: Message) -> None:
    channel = msg.get("Channel")
    if not channel:
        s.respond(msg, "Error", [("Message", "Channel not specified")])
        return
    exten, context, priority = msg.get("Exten"), msg.get("Context"), msg.get("Priority")
    application = msg.get("Application")
    if not application and not (exten and context and priority):
        s.respond(msg, "Error", [("Message", "Originate with 'Exten' requires 'Context' and 'Priority'")])
        return
    timeout_text = msg.get("Timeout")
    timeout = int(timeout_text) / 1000 if timeout_text and timeout_text.strip().isdigit() else 30.0
    variables: dict[str, str] = {}
    for v in msg.getall("Variable"):
        for part in v.split(","):
            k, sep, val = part.partition("=")
            if sep:
                variables[k.strip()] = val
    num, name = _callerid(msg.get("CallerID") or "")
    s.sim.originates.append(
        OriginateLog(
            s.sim.clock.now(),
            channel,
            context or "",
            exten or "",
            application or "",
            dict(variables),
            msg.get("ActionID"),
        )
    )
    job = Originate(
        s.sim,
        channel,
        context or "",
        exten or "",
        application or "",
        msg.get("Data") or "",
        timeout,
        num,
        name,
        variables,
        msg.get("Account") or "",
        msg.get("ChannelId"),
        msg.get("ActionID"),
    )
    if _true(msg.get("Async")):
        s.respond(msg, "Success", [("Message", "Originate successfully queued")])
        s.sim.spawn(job.run())
        return
    ok = await job.run()
    if ok:
        s.respond(msg, "Success", [("Message", "Originate successfully queued")])
    else:
        s.respond(msg, "Error", [("Message", "Originate failed")])


@action("PlayDTMF")
async def play_dtmf(s: AMISession, msg: Message) -> None:
    ch = s.sim.pbx.find_channel(msg.get("Channel") or "")
    if ch is None:
        s.respond(msg, "Error", [("Message", "Channel not found")])
        return
    digit = (msg.get("Digit") or "")[:1]
    if not digit:
        s.respond(msg, "Error", [("Message", "No digit specified")])
        return
    s.respond(msg, "Success", [("Message", "DTMF successfully queued")])
    call = s.sim.calls_by_linkedid.get(ch.linkedid)
    if call is not None:
        call.press(digit)


@action("AGI")
async def agi(s: AMISession, msg: Message) -> None:
    """Queue a command for a channel running AGI(agi:async) (agi-09)."""
    name, command = msg.get("Channel"), msg.get("Command")
    if not name or not command:
        s.respond(msg, "Error", [("Message", "Both, Channel and Command are *required*")])
        return
    ch = s.sim.pbx.find_channel(name)
    if ch is None:
        s.respond(msg, "Error", [("Message", f"Channel {name} does not exist.")])
        return
    call = s.sim.calls_by_linkedid.get(ch.linkedid)
    session = call.session if call is not None and call.channel is ch else None
    if session is None or not session.queue_command(command, msg.get("CommandID")):
        s.respond(msg, "Error", [("Message", f"Failed to add AGI command to channel {name} queue")])
        return
    s.respond(msg, "Success", [("Message", "Added AGI command to queue")])


@action("ListCommands")
async def list_commands(s: AMISession, msg: Message) -> None:
    s.respond(msg, "Success", [(name, name) for name in sorted(ACTIONS)])

"""The PBX model: channel factory and ids, agents, queue members, the parking lot.

Rules for this file:
- Names and ids as Asterisk makes them: `Local/<exten>@<context>-<8 hex>;1|;2`, `PJSIP/<endpoint>-<8 hex>`,
  Uniqueid `<epoch seconds>.<sequence>`, the Linkedid of a call = the Uniqueid of its first channel.
- State that outlives one call (queue membership and pauses, parked calls, globals) lives here, shared by the
  AGI applications (apps.py) and the AMI server.
- No sockets here; time only through the clock.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.sim.channel import SimChannel
from ivr.sim.clock import Clock
from ivr.sim.events import EventBus
from ivr.sim.model import AgentSpec, QueueSpec, SimConfig


def cause_text(cause: int) -> str:
    return {
        0: "Unknown",
        16: "Normal Clearing",
        17: "User busy",
        19: "No user responding",
        34: "Circuit/channel congestion",
    }.get(cause, "Unknown")


def _stats(prefix: str, names: str) -> str:
    return "".join(f"{prefix}{n}=000.000000;" for n in names.split())


# The RTP statistics chan_pjsip sets as an answered channel hangs up (agi-01's PJSIP call; no media: zeros).
_RTP_QOS = (
    (
        "RTPAUDIOQOS",
        "ssrc=1741489425;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;"
        "rtt=0.000000;rxmes=0.000000;txmes=0.000000",
    ),
    ("RTPAUDIOQOSJITTER", _stats("", "minrxjitter maxrxjitter avgrxjitter stdevrxjitter mintxjitter maxtxjitter")),
    ("RTPAUDIOQOSLOSS", _stats("  ", "minrxlost maxrxlost avgrxlost stdevrxlost mintxlost maxtxlost avgtxlost")),
    ("RTPAUDIOQOSRTT", _stats("     ", "minrtt maxrtt avgrtt stdevrtt")),
    ("RTPAUDIOQOSMES", _stats("   ", "minrxmes maxrxmes avgrxmes stdevrxmes mintxmes maxtxmes avgtxmes stdevtxmes")),
)


@dataclass
class QueueMember:
    interface: str
    name: str = ""
    state_interface: str = ""
    paused: bool = False
    reason: str = ""
    penalty: int = 0
    dynamic: bool = False
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False

    def display_name(self) -> str:
        return self.name or self.interface


def _device_state(m: QueueMember) -> str:
    """AST_DEVICE_*: a Custom: state interface nobody sets is UNKNOWN (0, as in ami-15); else in use / not."""
    if m.state_interface.startswith("Custom:"):
        return "0"
    return "2" if m.in_call else "1"


def member_pairs(
    q_name: str, m: QueueMember, name_key: str = "MemberName", iface_key: str = "Interface", ringinuse: bool = True
) -> list[tuple[str, str]]:
    """The member fields of QueueMemberAdded/Removed/Pause/Status (and, renamed, QueueMember) as in ami-15."""
    pairs = [
        ("Queue", q_name),
        (name_key, m.display_name()),
        (iface_key, m.interface),
        ("StateInterface", m.state_interface or m.interface),
        ("Membership", "dynamic" if m.dynamic else "static"),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"),
        ("Status", _device_state(m)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.reason),
    ]
    if ringinuse:
        pairs.append(("Ringinuse", "1"))
    pairs.append(("Wrapuptime", "0"))
    return pairs


@dataclass
class QueueState:
    spec: QueueSpec
    members: dict[str, QueueMember] = field(default_factory=dict)
    callers: list[SimChannel] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    holdtime_total: float = 0.0
    talktime_total: float = 0.0

    def avg_hold(self) -> float:
        return self.holdtime_total / self.completed if self.completed else 0.0

    def avg_talk(self) -> float:
        return self.talktime_total / self.completed if self.completed else 0.0

    def wake_callers(self) -> None:
        """Membership changed: waiting callers look for a member again."""
        for ch in self.callers:
            ch.wake()


@dataclass
class ParkedCall:
    channel: SimChannel
    space: int
    parker: str
    timeout: float
    parked_at: float
    retrieved_by: SimChannel | None = None
    done: bool = False


class PBX:
    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.bus = EventBus(clock.now)
        self.channels: dict[str, SimChannel] = {}
        self.globals: dict[str, str] = {}
        self._chan_seq = itertools.count(1)
        self._uid_seq = itertools.count(1)
        self.queues: dict[str, QueueState] = {}
        for name, spec in config.queues.items():
            q = QueueState(spec)
            for iface in spec.members:
                q.members[iface] = QueueMember(iface)
            self.queues[name] = q
        self.parked: dict[int, ParkedCall] = {}
        self.mixmonitor_seq = itertools.count(0x7F802800B260, 0x110)
        self.started = clock.now()
        self.rng = random.Random(config.seed)
        self.channels_created = 0
        # Set by the simulator: runs the dialplan of a channel a Redirect took out of a bridge (ch.redirect_to).
        self.on_redirect: Callable[[SimChannel], None] | None = None

    # -- ids ---------------------------------------------------------------------------------------------------
    def new_uniqueid(self) -> str:
        self.channels_created += 1
        return f"{int(self.clock.now())}.{next(self._uid_seq)}"

    def new_channel(
        self, name: str, *, linkedid: str | None = None, uniqueid: str | None = None, **kw: object
    ) -> SimChannel:
        uid = uniqueid or self.new_uniqueid()  # Originate's ChannelId names the channel from its Newchannel on
        ch = SimChannel(self, name, uid, linkedid or uid, **kw)  # type: ignore[arg-type]
        self.channels[name] = ch
        ch.on_hangup(lambda: self._gone(ch))
        return ch

    def _gone(self, ch: SimChannel) -> None:
        self.channels.pop(ch.name, None)
        if ch.tech == "PJSIP" and ch.answered_at is not None:
            # chan_pjsip leaves the RTP statistics on an answered channel as it hangs up (agi-01's PJSIP call)
            for name, value in _RTP_QOS:
                ch.emit("VarSet", "dialplan,all", [("Variable", name), ("Value", value)])
        ch.emit("Hangup", "call,all", [("Cause", str(ch.cause)), ("Cause-txt", cause_text(ch.cause))])
        ch.device_state("NOT_INUSE")

    def local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str | None = None,
        caller_num: str = "",
        caller_name: str = "",
        language: str = "en",
        uniqueid: str | None = None,
    ) -> tuple[SimChannel, SimChannel]:
        base = f"Local/{exten}@{context}-{next(self._chan_seq):08x}"
        one = self.new_channel(
            base + ";1",
            linkedid=linkedid,
            uniqueid=uniqueid,
            state=0,
            context=context,
            exten=exten,
            caller_num=caller_num,
            caller_name=caller_name,
            language=language,
        )
        two = self.new_channel(
            base + ";2",
            linkedid=one.linkedid,
            state=4,
            context=context,
            exten=exten,
            caller_num=caller_num,
            caller_name=caller_name,
            language=language,
        )
        one.peer, two.peer = two, one
        for ch in (one, two):
            ch.emit("Newchannel", "call,all")
        return one, two

    def pjsip_channel(
        self,
        endpoint: str,
        *,
        context: str,
        exten: str,
        caller_num: str,
        caller_name: str,
        language: str,
        accountcode: str = "",
        uniqueid: str | None = None,
    ) -> SimChannel:
        name = f"PJSIP/{endpoint}-{next(self._chan_seq):08x}"
        ch = self.new_channel(
            name,
            state=4,
            context=context,
            exten=exten,
            caller_num=caller_num,
            caller_name=caller_name,
            language=language,
            accountcode=accountcode,
            tech="PJSIP",
            uniqueid=uniqueid,
        )
        ch.emit("Newchannel", "call,all")
        return ch

    def outbound_channel(
        self,
        tech: str,
        endpoint: str,
        *,
        linkedid: str,
        caller_num: str = "",
        caller_name: str = "",
        language: str = "en",
    ) -> SimChannel:
        """A channel Asterisk dials out on (PJSIP/<endpoint>-<seq>), state Down until answered."""
        name = f"{tech}/{endpoint}-{next(self._chan_seq):08x}"
        ch = self.new_channel(
            name,
            linkedid=linkedid,
            state=0,
            context="from-internal",
            exten=endpoint,
            caller_num=caller_num,
            caller_name=caller_name,
            language=language,
            tech=tech,
        )
        ch.emit("Newchannel", "call,all")
        return ch

    def redirected(self, ch: SimChannel) -> None:
        """`ch` left its bridge for `ch.redirect_to`; without a simulator to run it there, it hangs up."""
        if self.on_redirect is not None:
            self.on_redirect(ch)
        else:
            ch.hangup(16)

    def find_channel(self, name: str) -> SimChannel | None:
        return self.channels.get(name)

    # -- agents ------------------------------------------------------------------------------------------------
    def resolve_agent(self, target: str) -> tuple[AgentSpec | None, str, str]:
        """Dial string -> (agent or None, exten, context).  `Local/x@ctx`, `PJSIP/x`, `SIP/x` or a bare `x`."""
        t = target.strip()
        exten, context = t, "agents"
        if "/" in t:
            tech, rest = t.split("/", 1)
            if tech.lower() == "local":
                exten, _, context = rest.partition("@")
                context = context or "default"
            else:
                exten, context = rest, tech
        return self.config.agents.get(exten), exten, context

    # -- queues ------------------------------------------------------------------------------------------------
    def queue(self, name: str) -> QueueState | None:
        return self.queues.get(name)

    def member_available(self, m: QueueMember) -> bool:
        if m.paused or m.in_call:
            return False
        agent, _, _ = self.resolve_agent(m.state_interface or m.interface)
        return agent is None or not agent.unavailable

    # -- parking -----------------------------------------------------------------------------------------------
    def free_space(self) -> int | None:
        lot = self.config.parking
        for space in range(lot.first_space, lot.last_space + 1):
            if space not in self.parked:
                return space
        return None

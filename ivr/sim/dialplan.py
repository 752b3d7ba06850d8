"""The service's own dialplan contexts (dialplans/extensions_ivr.conf), as the simulated PBX runs them.

Rules for this file:
- `IVR_CONTEXTS` mirrors the shipped file priority by priority: ivr-hold (MusicOnHold of ${IVR_MOH_CLASS},
  default when empty), ivr-hold-wait (Wait(3600), Hangup()), ivr-queue (NoOp, Queue(<exten>), Hangup()),
  ivr-dial-out (Dial(PJSIP/<number>@trunk,40), Hangup()), ivr-park-comeback (where the flow's Park sends a
  timed-out caller: back into the flow at ${IVR_COMEBACK} over a second FastAGI, else ivr-enter,fallback) and
  ivr-enter,fallback (NoOp, Answer, Playback, Dial(${IVR_OPERATOR},60), Playback, Hangup).  ivr-outbound,<flow>
  is a FastAGI flow and stays with `SimConfig.routes` (an exten that is a route runs that flow).  AppData is
  computed from the channel the way the .conf's expressions would expand it (FILTER keeps the same characters,
  `$[a = b]` becomes 1 or 0 as in the Newexten events of a real Asterisk).
- Goto/GotoIf jump synchronously (the next Newexten names the application there).  An AGI priority stops the
  walk: run_context returns an `AgiStep` and the call runs that FastAGI session, then resumes at the next
  priority (`resume=True`: its Newexten goes out as usual).
- An application that returns -1 (Dial after a bridged call, a hangup) ends the dialplan, as pbx.c does.
- `run_context()` runs those priorities on a channel that already left its previous application (a Redirect,
  the end of an AGI).  Asterisk's async-goto quirk applies: the Newexten of priority 1 carries the *previous*
  Application/AppData (README: "After an async goto ... the Newexten for priority 1 ... previous").
- A channel waiting in MusicOnHold or Wait can be taken into a bridge by the AMI `Bridge` action
  (`ch.pending_bridge`); after that bridge it goes on at the next priority, as ast_bridge_set_after_go_on does
  (ivr-hold has no s,2: the channel hangs up; ivr-hold-wait runs its Hangup()).
- Outcomes: "hangup" (the channel is gone), "goto" (redirected elsewhere while here: the caller continues
  there), "end" (the dialplan ran out or hung up the channel).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.sim.appargs import separate_args

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel
    from ivr.sim.simulator import SimulatedAsterisk

Data = Callable[["SimChannel", str], str]


def _filter(allowed: str, text: str) -> str:
    return "".join(c for c in text if re.fullmatch(f"[{allowed}]", c))


Jump = Callable[["SimChannel", str], "tuple[str, str, int] | None"]


@dataclass(frozen=True)
class Priority:
    app: str
    data: Data = lambda ch, exten: ""
    jump: Jump | None = None  # Goto/GotoIf: where the dialplan goes on (None: the next priority)


@dataclass(frozen=True)
class AgiStep:
    """run_context reached AGI(agi://${IVR_SERVER}/<script>): the call runs it at context,exten,priority."""

    context: str
    exten: str
    priority: int
    script: str  # agi_network_script: "<flow>?<query>"


@dataclass(frozen=True)
class Extension:
    pattern: str  # a regex for the whole extension (Asterisk's `_X.` -> `[0-9].+`)
    priorities: tuple[Priority, ...]

    def matches(self, exten: str) -> bool:
        return re.fullmatch(self.pattern, exten) is not None


def _moh_class(ch: SimChannel, exten: str) -> str:
    value = ch.get_var("IVR_MOH_CLASS") or ""
    return value if value else "default"


def _cut(value: str, sep: str, field_no: int) -> str:
    """${CUT(var,sep,n)}: the n-th (1-based) piece; "" when there is none."""
    parts = value.split(sep)
    return parts[field_no - 1] if field_no <= len(parts) else ""


def _comeback(ch: SimChannel) -> str:
    return ch.get_var("IVR_COMEBACK") or ""


def _comeback_flow(ch: SimChannel) -> str:
    return _filter(r"\-A-Za-z0-9_", _cut(_comeback(ch), ":", 1))


def _comeback_script(ch: SimChannel, exten: str) -> str:
    # agi://${IVR_SERVER}/${IVR_FLOW}?node=${FILTER(-A-Za-z0-9_,${CUT(IVR_COMEBACK,:,2)})}
    return "{}?node={}".format(ch.get_var("IVR_FLOW") or "", _filter(r"\-A-Za-z0-9_", _cut(_comeback(ch), ":", 2)))


def _agi_url(script: Callable[[SimChannel, str], str]) -> Data:
    return lambda ch, e: "agi://{}/{}".format(ch.get_var("IVR_SERVER") or "", script(ch, e))


def _is(ch: SimChannel, name: str, value: str) -> bool:
    return (ch.get_var(name) or "") == value


def _goto_if(test: Callable[[SimChannel], bool], target: tuple[str, str, int]) -> Priority:
    """GotoIf($["${VAR}" = "X"]?context,exten,priority): AppData shows the evaluated condition (1/0)."""
    where = ",".join(str(part) for part in target)
    return Priority("GotoIf", lambda ch, e: f"{int(test(ch))}?{where}", jump=lambda ch, e: target if test(ch) else None)


FALLBACK = ("ivr-enter", "fallback", 1)

IVR_CONTEXTS: dict[str, tuple[Extension, ...]] = {
    # [ivr-hold] exten => s,1,MusicOnHold(${IF($["${IVR_MOH_CLASS}" = ""]?default:${IVR_MOH_CLASS})})
    "ivr-hold": (Extension("s", (Priority("MusicOnHold", _moh_class),)),),
    # [ivr-hold-wait] exten => s,1,Wait(3600) / same => n,Hangup()
    "ivr-hold-wait": (Extension("s", (Priority("Wait", lambda ch, e: "3600"), Priority("Hangup"))),),
    # [ivr-queue] exten => _[-A-Za-z0-9_].,1,NoOp(ivr: queue ${EXTEN}) / Queue(${FILTER(-A-Za-z0-9_,${EXTEN})})
    "ivr-queue": (
        Extension(
            r"[-A-Za-z0-9_].+",
            (
                Priority("NoOp", lambda ch, e: "ivr: queue " + e),
                Priority("Queue", lambda ch, e: _filter(r"\-A-Za-z0-9_", e)),
                Priority("Hangup"),
            ),
        ),
    ),
    # [ivr-dial-out] exten => _+X.,1,Dial(PJSIP/${EXTEN:1}@trunk,40) / _X.,1,Dial(PJSIP/${EXTEN}@trunk,40)
    "ivr-dial-out": (
        Extension(r"\+[0-9].+", (Priority("Dial", lambda ch, e: f"PJSIP/{e[1:]}@trunk,40"), Priority("Hangup"))),
        Extension(r"[0-9].+", (Priority("Dial", lambda ch, e: f"PJSIP/{e}@trunk,40"), Priority("Hangup"))),
    ),
    # [ivr-park-comeback] exten => s,1,NoOp(ivr: park time-out, back to ${IVR_COMEBACK}) ... AGI(...) ... Hangup()
    "ivr-park-comeback": (
        Extension(
            "s",
            (
                Priority("NoOp", lambda ch, e: "ivr: park time-out, back to " + _comeback(ch)),
                _goto_if(lambda ch: _is(ch, "IVR_COMEBACK", ""), FALLBACK),
                Priority("Set", lambda ch, e: "IVR_FLOW=" + _comeback_flow(ch)),
                Priority("Set", lambda ch, e: "IVR_STATUS="),
                Priority("Set", lambda ch, e: "IVR_TRANSFERRED="),
                Priority("AGI", _agi_url(_comeback_script)),
                _goto_if(lambda ch: _is(ch, "AGISTATUS", "FAILURE"), FALLBACK),
                _goto_if(lambda ch: _is(ch, "IVR_STATUS", "NOROUTE"), FALLBACK),
                _goto_if(lambda ch: _is(ch, "IVR_STATUS", "ERROR"), FALLBACK),
                Priority("Hangup"),
            ),
        ),
        # exten => _[-A-Za-z0-9_].,1,Goto(ivr-park-comeback,s,1)
        Extension(
            r"[-A-Za-z0-9_].+",
            (
                Priority(
                    "Goto", lambda ch, e: "ivr-park-comeback,s,1", jump=lambda ch, e: ("ivr-park-comeback", "s", 1)
                ),
            ),
        ),
    ),
    # [ivr-enter] exten => fallback,1,NoOp(ivr unavailable: ...) / Answer() / Playback(pls-hold-while-try) /
    #   Dial(${IVR_OPERATOR},60) / Playback(sorry-youre-having-problems) / Hangup()
    # (ivr-enter,s is the inbound AGI itself: `SimConfig.routes` / CallSpec.flow model it.)
    "ivr-enter": (
        Extension(
            "fallback",
            (
                Priority(
                    "NoOp",
                    lambda ch, e: "ivr unavailable: AGISTATUS={} IVR_STATUS={}".format(
                        ch.get_var("AGISTATUS") or "", ch.get_var("IVR_STATUS") or ""
                    ),
                ),
                Priority("Answer"),
                Priority("Playback", lambda ch, e: "pls-hold-while-try"),
                Priority("Dial", lambda ch, e: "%s,60" % (ch.get_var("IVR_OPERATOR") or "")),
                Priority("Playback", lambda ch, e: "sorry-youre-having-problems"),
                Priority("Hangup"),
            ),
        ),
    ),
}


def lookup(context: str, exten: str) -> tuple[Priority, ...] | None:
    for ext in IVR_CONTEXTS.get(context, ()):
        if ext.matches(exten):
            return ext.priorities
    return None


@dataclass
class _Scratch:
    """Where a channel that is not a simulated call's notes its destinations and dials (nobody reads them)."""

    destinations: list[str] = field(default_factory=list)
    dials: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AppHost:
    """What the EXEC'd applications (Dial, Queue) need from an AGI session, for a channel in plain dialplan."""

    sim: SimulatedAsterisk
    channel: SimChannel
    call: object


async def _wait_or_bridge(ch: SimChannel, seconds: float | None) -> str:
    """Wait (MusicOnHold: forever; Wait: `seconds`) until a hangup/redirect, the time is up, or an AMI Bridge
    takes the channel: "hangup" | "timeout" | "bridge"."""
    deadline = ch.pbx.clock.now() + seconds if seconds is not None else None
    ch.bridgeable = True
    try:
        while True:
            if ch.pending_bridge is not None:
                return "bridge"
            ev = await ch.next_event(deadline)
            if ev is None:
                return "timeout"
            if ev.kind == "hangup":
                return "hangup"
    finally:
        ch.bridgeable = False


async def run_context(
    sim: SimulatedAsterisk,
    ch: SimChannel,
    context: str,
    exten: str,
    previous_app: tuple[str, str] | None,
    call: object | None = None,
    *,
    start: int = 1,
    resume: bool = False,
) -> str | AgiStep:
    """Run context/exten from priority `start` on `ch` (see the rules above): "hangup", "goto", "end" or an
    `AgiStep` (the call runs that AGI, then calls again with start=<its priority + 1>, resume=True).

    The first priority's Newexten: with `previous_app` it carries that app (async goto); without it none goes
    out (the channel's location was already announced, e.g. by a Park time-out); `resume` announces it as usual."""
    host = AppHost(sim, ch, call if call is not None else _Scratch())
    n, first = start, True
    while True:
        priorities = lookup(context, exten)
        if priorities is None:
            raise KeyError(f"{context},{exten} is not in the modelled dialplan")
        if ch.hungup:
            return "hangup"
        if n > len(priorities):
            return "end"  # no such priority: the PBX hangs the channel up
        prio = priorities[n - 1]
        ch.context, ch.exten = context, exten
        data = prio.data(ch, exten)
        if first and not resume:
            if previous_app is not None:
                ch.newexten(*previous_app, priority=n)
            ch.priority = n
            ch.app, ch.appdata = prio.app, data
        else:
            ch.newexten(prio.app, data, priority=n)
        first = False
        app = prio.app.lower()
        if prio.jump is not None:
            target = prio.jump(ch, exten)
            if target is not None:
                context, exten, n = target
                continue
            n += 1
            continue
        if app == "hangup":
            return "end"
        if app == "agi":
            return AgiStep(context, exten, n, data.split("/", 3)[3] if data.count("/") >= 3 else "")
        if app in ("musiconhold", "wait"):
            ch.stop_moh()
            if app == "musiconhold":
                ch.start_moh((separate_args(data, max_args=2) or [""])[0] or "default")  # class, duration
            outcome = await _wait_or_bridge(ch, None if app == "musiconhold" else float(data or 0))
            ch.stop_moh()
            if outcome == "bridge":
                bridge = ch.pending_bridge
                assert bridge is not None
                outcome = await bridge.join(ch)
            if outcome == "hangup":
                return "hangup" if ch.hungup else "goto"
            n += 1
            continue
        if app in ("queue", "dial", "playback", "answer"):
            from ivr.sim.apps import APPS

            result = await APPS[app](host, data)  # type: ignore[arg-type]
            if ch.hungup:
                return "hangup"
            if result == -1:  # pbx.c: an app's -1 ends the dialplan
                return "end"
            n += 1
            continue
        # NoOp / Set: nothing to wait for
        if app == "set":
            name, _, value = data.partition("=")
            ch.set_var(name, value)
        n += 1

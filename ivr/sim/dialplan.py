"""The service's own dialplan contexts (dialplans/extensions_ivr.conf), as the simulated PBX runs them.

Rules for this file:
- `IVR_CONTEXTS` mirrors the shipped file priority by priority: ivr-hold (MusicOnHold of ${IVR_MOH_CLASS},
  default when empty), ivr-hold-wait (Wait(3600), Hangup()), ivr-queue (NoOp, Queue(<exten>), Hangup()),
  ivr-dial-out (Dial(PJSIP/<number>@trunk,40), Hangup()).  ivr-outbound,<flow> is a FastAGI flow and stays with
  `SimConfig.routes` (an exten that is a route runs that flow).  AppData is computed from the channel the way
  the .conf's expressions would expand it (FILTER keeps the same characters).
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ivr.sim.appargs import separate_args

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel
    from ivr.sim.simulator import SimulatedAsterisk

Data = Callable[["SimChannel", str], str]


def _filter(allowed: str, text: str) -> str:
    return "".join(c for c in text if re.fullmatch("[%s]" % allowed, c))


@dataclass(frozen=True)
class Priority:
    app: str
    data: Data = lambda ch, exten: ""


@dataclass(frozen=True)
class Extension:
    pattern: str                       # a regex for the whole extension (Asterisk's `_X.` -> `[0-9].+`)
    priorities: tuple[Priority, ...]

    def matches(self, exten: str) -> bool:
        return re.fullmatch(self.pattern, exten) is not None


def _moh_class(ch: "SimChannel", exten: str) -> str:
    value = ch.get_var("IVR_MOH_CLASS") or ""
    return value if value else "default"


IVR_CONTEXTS: dict[str, tuple[Extension, ...]] = {
    # [ivr-hold] exten => s,1,MusicOnHold(${IF($["${IVR_MOH_CLASS}" = ""]?default:${IVR_MOH_CLASS})})
    "ivr-hold": (Extension("s", (Priority("MusicOnHold", _moh_class),)),),
    # [ivr-hold-wait] exten => s,1,Wait(3600) / same => n,Hangup()
    "ivr-hold-wait": (Extension("s", (Priority("Wait", lambda ch, e: "3600"), Priority("Hangup"))),),
    # [ivr-queue] exten => _[-A-Za-z0-9_].,1,NoOp(ivr: queue ${EXTEN}) / Queue(${FILTER(-A-Za-z0-9_,${EXTEN})})
    "ivr-queue": (Extension(r"[-A-Za-z0-9_].+", (
        Priority("NoOp", lambda ch, e: "ivr: queue " + e),
        Priority("Queue", lambda ch, e: _filter(r"\-A-Za-z0-9_", e)),
        Priority("Hangup"))),),
    # [ivr-dial-out] exten => _+X.,1,Dial(PJSIP/${EXTEN:1}@trunk,40) / _X.,1,Dial(PJSIP/${EXTEN}@trunk,40)
    "ivr-dial-out": (
        Extension(r"\+[0-9].+", (Priority("Dial", lambda ch, e: "PJSIP/%s@trunk,40" % e[1:]), Priority("Hangup"))),
        Extension(r"[0-9].+", (Priority("Dial", lambda ch, e: "PJSIP/%s@trunk,40" % e), Priority("Hangup"))),
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
    sim: "SimulatedAsterisk"
    channel: "SimChannel"
    call: object


async def _wait_or_bridge(ch: "SimChannel", seconds: float | None) -> str:
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


async def run_context(sim: "SimulatedAsterisk", ch: "SimChannel", context: str, exten: str,
                      previous_app: tuple[str, str] | None, call: object | None = None) -> str:
    """Run context/exten on `ch` (see the rules above); returns "hangup", "goto" or "end".

    `previous_app` is what the channel ran before (for priority 1's Newexten); None when the caller already
    emitted that Newexten."""
    priorities = lookup(context, exten)
    if priorities is None:
        raise KeyError("%s,%s is not in the modelled dialplan" % (context, exten))
    ch.context, ch.exten = context, exten
    host = AppHost(sim, ch, call if call is not None else _Scratch())
    for n, prio in enumerate(priorities, 1):
        if ch.hungup:
            return "hangup"
        data = prio.data(ch, exten)
        if n == 1:
            if previous_app is not None:
                ch.newexten(*previous_app, priority=1)
            ch.priority = 1
            ch.app, ch.appdata = prio.app, data
        else:
            ch.newexten(prio.app, data, priority=n)
        app = prio.app.lower()
        if app == "hangup":
            return "end"
        if app in ("musiconhold", "wait"):
            ch.stop_moh()
            if app == "musiconhold":
                ch.start_moh((separate_args(data, max_args=2) or [""])[0] or "default")   # class, duration
            outcome = await _wait_or_bridge(ch, None if app == "musiconhold" else float(data or 0))
            ch.stop_moh()
            if outcome == "bridge":
                bridge = ch.pending_bridge
                assert bridge is not None
                outcome = await bridge.join(ch)
            if outcome == "hangup":
                return "hangup" if ch.hungup else "goto"
            continue
        if app in ("queue", "dial"):
            from ivr.sim.apps import APPS
            await APPS[app](host, data)  # type: ignore[arg-type]
            if ch.hungup:
                return "hangup"
            continue
        # NoOp / Set: nothing to wait for
        if app == "set":
            name, _, value = data.partition("=")
            ch.set_var(name, value)
    return "end"

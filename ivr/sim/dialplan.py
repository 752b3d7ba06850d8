"""The service's own dialplan (dialplans/extensions_ivr.conf), as the simulated PBX runs it.

Rules for this file:
- The contexts are the shipped file itself, parsed and expanded by `extensions_conf` (the subset it uses): every
  context, extension and priority the file has, with the file's applications and expressions. A change to the
  file changes what the simulator does; something the model cannot run fails loudly (`DialplanError`).
  Routes (`SimConfig.routes`) still win where a test names a flow directly (`CallSpec(flow=...)`, a route for
  an extension); a call placed as `CallSpec(did=..., context="ivr-inbound")` without a route runs the file from
  `ivr-inbound,<did>,1`.
- AppData is the expanded text, as a real Newexten shows it (FILTER, CUT, IF applied; `$[...]` evaluated to 1/0).
- Goto/GotoIf jump synchronously (the next Newexten names the application there).  An AGI priority stops the
  walk: run_context returns an `AgiStep` and the call runs that FastAGI session, then resumes at the next
  priority (`resume=True`: its Newexten goes out as usual).
- An application that returns -1 (Dial/Queue after a bridged call, a hangup) ends the dialplan, as pbx.c does.
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

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr import dialplan
from ivr.sim import extensions_conf
from ivr.sim.appargs import separate_args

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel
    from ivr.sim.simulator import SimulatedAsterisk

Data = Callable[["SimChannel", str], str]
Jump = Callable[["SimChannel", str], "tuple[str, str, int] | None"]


@dataclass(frozen=True)
class Priority:
    app: str
    data: Data = lambda ch, exten: ""
    jump: Jump | None = None  # Goto/GotoIf: where the dialplan goes on (None: the next priority)


@dataclass(frozen=True)
class AgiStep:
    """run_context reached AGI(<url>): the call runs it at context,exten,priority."""

    context: str
    exten: str
    priority: int
    script: str  # agi_network_script: "<flow>?<query>"
    url: str = ""  # the expanded AGI() URL: agi://host:port/<script>


FALLBACK = (dialplan.ENTER_CONTEXT, dialplan.FALLBACK_EXTEN, 1)


def _lookup_in(ch: SimChannel, exten: str) -> extensions_conf.Lookup:
    return lambda name: exten if name == "EXTEN" else ch.get_var(name)


def _priority(context: str, conf: extensions_conf.ConfPriority) -> Priority:
    raw, app = conf.data, conf.app

    def data(ch: SimChannel, exten: str) -> str:
        return extensions_conf.expand(raw, _lookup_in(ch, exten))

    jump: Jump | None = None
    if app.lower() == "goto":
        jump = lambda ch, e: extensions_conf.goto_target(data(ch, e), context, e)  # noqa: E731
    elif app.lower() == "gotoif":
        jump = lambda ch, e: extensions_conf.goto_if(data(ch, e), context, e)  # noqa: E731
    return Priority(app, data, jump)


@functools.cache
def _model(source: Path) -> dict[str, tuple[tuple[extensions_conf.ConfExtension, tuple[Priority, ...]], ...]]:
    contexts = extensions_conf.load(source)
    return {
        name: tuple((ext, tuple(_priority(name, p) for p in ext.priorities)) for ext in extens)
        for name, extens in contexts.items()
    }


def lookup(context: str, exten: str, source: Path | None = None) -> tuple[Priority, ...] | None:
    """The priorities of context,exten in the shipped file, or `source` (SimConfig.dialplan_file): a literal
    extension first, then patterns."""
    entries = _model(source or extensions_conf.SHIPPED).get(context)
    if not entries:
        return None
    chosen = extensions_conf.find({context: tuple(e for e, _ in entries)}, context, exten)
    if chosen is None:
        return None
    return next(prios for ext, prios in entries if ext is chosen)


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
        priorities = lookup(context, exten, sim.config.dialplan_file)
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
            url = separate_args(data)[0] if data else ""
            return AgiStep(context, exten, n, url.split("/", 3)[3] if url.count("/") >= 3 else "", url)
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
        if app == "set":
            name, _, value = data.partition("=")
            ch.set_var(name.lstrip("_"), value)  # __NAME / _NAME: inherited by channels it creates
        elif app != "noop":
            raise extensions_conf.DialplanError(f"{context},{exten},{n}: {prio.app}() is not modelled")
        n += 1

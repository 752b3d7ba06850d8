"""A simulated Asterisk channel: identity, state, variables, and the media inbox its applications read.

Rules for this file:
- The inbox carries what the far end does to this channel: DTMF (delivered at DTMF end), voice on/off, hangup,
  and `wake` pokes from the PBX (parked call retrieved, member answered ...).
- DTMF that arrives while nobody listens is dropped, as Asterisk's AGI loop discards frames between commands.
- Every wait is a clock wait; a waiting channel gives back the clock hold its AGI session took (see clock.py).
- Variables and dialplan functions (CALLERID(num), CHANNEL(language), LEN(), ...) are evaluated here.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.sim.events import c_escape, channel_block

if TYPE_CHECKING:
    from ivr.sim.ami_bridge import AMIBridge
    from ivr.sim.pbx import PBX


@dataclass(frozen=True)
class MediaEvent:
    kind: str  # "dtmf" | "hangup" | "voice" | "wake"
    value: str = ""
    time: float = 0.0


class SimChannel:
    def __init__(
        self,
        pbx: PBX,
        name: str,
        uniqueid: str,
        linkedid: str,
        *,
        state: int,
        context: str,
        exten: str,
        priority: int = 1,
        caller_num: str = "",
        caller_name: str = "",
        language: str = "en",
        accountcode: str = "",
        tech: str = "Local",
    ) -> None:
        self.pbx = pbx
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.state = state
        self.context = context
        self.exten = exten
        self.priority = priority
        self.caller_num = caller_num
        self.caller_name = caller_name
        self.connected_num = ""
        self.connected_name = ""
        self.language = language
        self.accountcode = accountcode
        self.tech = tech
        self.variables: dict[str, str] = {}
        self.created = pbx.clock.now()
        self.answered_at: float | None = self.created if state == 6 else None  # Dial's ANSWEREDTIME counts from here
        self.device_in_use = False  # a DeviceStateChange INUSE went out for this channel (NOT_INUSE follows at hangup)
        self.hungup = False
        self.cause = 0
        self.listening = False
        self.holding_clock = False  # the AGI session holds the clock for this channel
        self.app = ""
        self.appdata = ""
        self.peer: SimChannel | None = None  # the other half of a Local pair
        self.voice_until = 0.0  # the far end speaks until this time
        self.voice: list[tuple[float, float]] = []  # all speech intervals (for recordings)
        self.media_flowing = False  # far end already sends audio (ANSWER returns at once)
        self.moh_class: str | None = None
        self.bridge_peer: SimChannel | None = None  # the channel this one is bridged with (Dial/Queue)
        self.bridge_id = ""
        self.transfer_to: str | None = None  # a dial string set by BlindTransfer/Atxfer
        self.redirect_to: tuple[str, str] | None = None  # (context, exten) of a Redirect out of a bridge
        self.pending_bridge: AMIBridge | None = None  # an AMI Bridge waiting to take this channel
        self.bridgeable = False  # waits in an app an AMI Bridge can take it from
        self.queue_joined = 0.0
        self._inbox: deque[MediaEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._prompt_waiters: list[asyncio.Future[str]] = []
        self._command_waiters: list[tuple[str, asyncio.Future[str]]] = []
        self._hangup_listeners: list[Callable[[], None]] = []
        self._state_waiters: list[asyncio.Future[None]] = []

    # -- identity for events ---------------------------------------------------------------------------------
    def block(self, prefix: str = "") -> list[tuple[str, str]]:
        return channel_block(self, prefix)

    def emit(self, name: str, privilege: str, extra: list[tuple[str, str]] | None = None) -> None:
        self.pbx.bus.emit(name, privilege, self.block() + (extra or []))

    def set_state(self, state: int) -> None:
        if state != self.state:
            self.state = state
            if state == 6 and self.answered_at is None:
                self.answered_at = self.pbx.clock.now()
            self.emit("Newstate", "call,all")
            if state == 6:
                self.device_state("INUSE")
            waiters, self._state_waiters = self._state_waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

    @property
    def device(self) -> str:
        """The device this channel belongs to: `Local/<exten>@<context>`, `PJSIP/<endpoint>` (name minus `-<seq>`)."""
        return self.name.rsplit("-", 1)[0]

    def device_state(self, state: str) -> None:
        """DeviceStateChange as recorded: each half of a Local pair and a PJSIP channel report INUSE when answered
        and NOT_INUSE after their Hangup (agi-01, agi-03, agi-10: two of each per Local pair)."""
        if state == "INUSE":
            if self.device_in_use:
                return
            self.device_in_use = True
        elif not self.device_in_use:
            return
        else:
            self.device_in_use = False
        self.pbx.bus.emit("DeviceStateChange", "call,all", [("Device", self.device), ("State", state)])

    async def wait_up(self, timeout: float) -> bool:
        """Wait (clock time) until the channel is answered; False on hangup or timeout."""
        clock = self.pbx.clock
        deadline = clock.now() + timeout
        while self.state != 6 and not self.hungup and clock.now() < deadline:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._state_waiters.append(fut)

            def expire(f: asyncio.Future[None] = fut) -> None:
                if not f.done():
                    f.set_result(None)

            timer = clock.call_at(deadline, expire)
            try:
                await fut
            finally:
                timer.cancel()
        return self.state == 6 and not self.hungup

    def newexten(self, app: str, data: str, priority: int | None = None) -> None:
        if priority is not None:
            self.priority = priority
        self.app, self.appdata = app, data
        self.emit("Newexten", "dialplan,all", [("Extension", self.exten), ("Application", app), ("AppData", data)])

    # -- variables -------------------------------------------------------------------------------------------
    def set_var(self, name: str, value: str, emit: bool = True) -> None:
        m = re.fullmatch(r"CHANNEL\(language\)", name, re.I)
        if m:
            self.language = value
            return
        self.variables[name] = value
        if emit:
            self.emit("VarSet", "dialplan,all", [("Variable", name), ("Value", c_escape(value))])

    def unset_var(self, name: str) -> None:
        self.variables.pop(name, None)

    def delete_var(self, name: str) -> None:
        """pbx_builtin_setvar_helper(chan, name, NULL): a VarSet with an empty value only when a non-empty value
        was deleted (agi-07.ami: `Queue emptyq` after a TIMEOUT clears ABANDONED with "Value: ", the first
        Queue of the call does not)."""
        old = self.variables.pop(name, None)
        if old:
            self.emit("VarSet", "dialplan,all", [("Variable", name), ("Value", "")])

    def get_var(self, name: str) -> str | None:
        """A variable or a dialplan function; None if unset."""
        if name in self.variables:
            return self.variables[name]
        m = re.fullmatch(r"([A-Z_]+)\((.*)\)", name, re.S)
        if m:
            return self._function(m.group(1), m.group(2))
        builtin = {
            "CHANNEL": self.name,
            "UNIQUEID": self.uniqueid,
            "CONTEXT": self.context,
            "EXTEN": self.exten,
            "PRIORITY": str(self.priority),
            "LANGUAGE": self.language,
            "ACCOUNTCODE": self.accountcode,
            "CALLERID": self.caller_num,
        }
        if name in builtin:
            return builtin[name]
        if name == "EPOCH":
            return str(int(self.pbx.clock.now()))
        return self.pbx.globals.get(name)

    def _function(self, func: str, arg: str) -> str | None:
        func = func.upper()
        if func == "CALLERID":
            key = arg.lower()
            if key in ("num", "number"):
                return self.caller_num
            if key == "name":
                return self.caller_name
            if key == "all":
                return f'"{self.caller_name}" <{self.caller_num}>'
            return None
        if func == "CHANNEL":
            key = arg.lower()
            return {
                "language": self.language,
                "name": self.name,
                "uniqueid": self.uniqueid,
                "linkedid": self.linkedid,
                "state": {4: "Ring", 6: "Up"}.get(self.state, "Down"),
                "accountcode": self.accountcode,
                "channeltype": self.tech,
                "musicclass": self.moh_class or "default",
            }.get(key)
        if func == "LEN":
            return str(len(arg))
        if func == "CONNECTEDLINE":
            return self.connected_num if arg.lower() in ("num", "number") else self.connected_name
        if func == "GLOBAL":
            return self.pbx.globals.get(arg)
        if func == "EXISTS":
            return "1" if arg else "0"
        return None

    def expand(self, text: str) -> str:
        """${...} substitution as GET FULL VARIABLE does it (nested, unset -> empty)."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    if text.startswith("${", j):
                        depth += 1
                        j += 2
                        continue
                    if text[j] == "}":
                        depth -= 1
                    j += 1
                inner = self.expand(text[i + 2 : j - 1])
                out.append(self.get_var(inner) or "")
                i = j
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    # -- media inbox -----------------------------------------------------------------------------------------
    def post(self, ev: MediaEvent) -> None:
        if self.hungup and ev.kind != "hangup":
            return
        if ev.kind in ("dtmf", "voice") and not self.listening:
            return
        self._inbox.append(ev)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def wake(self) -> None:
        self.post(MediaEvent("wake"))

    def drain(self) -> None:
        """Forget pending media events (e.g. the async-goto poke once the AGI has ended)."""
        self._inbox.clear()

    def clear_dtmf(self) -> None:
        self._inbox = deque(e for e in self._inbox if e.kind != "dtmf")

    async def next_event(self, deadline: float | None) -> MediaEvent | None:
        """The next media event, or None once `deadline` (clock time) has passed."""
        while True:
            if self._inbox:
                return self._inbox.popleft()
            clock = self.pbx.clock
            if deadline is not None and clock.now() >= deadline:
                return None
            if self._waiter is not None and not self._waiter.done():
                raise RuntimeError(
                    f"two coroutines wait on the media of {self.name}; one application at a time may read a channel"
                )
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiter = fut

            def fire(fut: asyncio.Future[None] = fut) -> None:
                if not fut.done():
                    fut.set_result(None)

            timer = clock.call_at(deadline, fire) if deadline is not None else None
            released = self.holding_clock
            if released:
                clock.release()
            try:
                await fut
            finally:
                if released:
                    clock.acquire()
                if timer is not None:
                    timer.cancel()
                self._waiter = None

    async def next_event_kind(self, kind: str, also_wake: bool = False) -> MediaEvent:
        """Wait (without deadline) for an event of `kind` (or a `wake` poke); other events are consumed."""
        while True:
            ev = await self.next_event(None)
            if ev is not None and (ev.kind == kind or (also_wake and ev.kind == "wake")):
                return ev

    async def pause(self, seconds: float) -> MediaEvent | None:
        """Wait `seconds` unless hung up; returns the hangup event if that happened."""
        deadline = self.pbx.clock.now() + seconds
        while True:
            ev = await self.next_event(deadline)
            if ev is None or ev.kind == "hangup":
                return ev

    # -- hangup ----------------------------------------------------------------------------------------------
    def on_hangup(self, fn: Callable[[], None]) -> None:
        self._hangup_listeners.append(fn)

    def dialplan_hangup(self, cause: int = 16) -> None:
        """The dialplan ends the channel (Hangup(), or running out of priorities): as recorded (agi-01, agi-10)
        SoftHangupRequest on the channel, HangupRequest on the other half of a Local pair, then the hangups
        (Hangup, the other half's SoftHangupRequest and Hangup)."""
        if self.hungup:
            return
        self.emit("SoftHangupRequest", "call,all", [("Cause", str(cause))])
        if self.peer is not None and not self.peer.hungup:
            self.peer.emit("HangupRequest", "call,all", [("Cause", "0")])
        self.hangup(cause)

    def hangup(self, cause: int = 16) -> None:
        """The channel goes away (far end hung up, or the PBX hung it up)."""
        if self.hungup:
            return
        self.cause = cause
        self.post(MediaEvent("hangup", time=self.pbx.clock.now()))
        self.hungup = True
        for fn in list(self._hangup_listeners):
            fn()
        for f in self._state_waiters:
            if not f.done():
                f.set_result(None)
        if self.peer is not None and not self.peer.hungup:
            # the other half of a Local pair goes too; busy/congestion causes stay on the half that had them
            peer_cause = 0 if cause in (17, 34) else cause
            self.peer.emit("SoftHangupRequest", "call,all", [("Cause", str(peer_cause))])
            self.peer.hangup(peer_cause)

    # -- notifications for caller scripts ---------------------------------------------------------------------
    def notify_prompt(self, name: str) -> None:
        waiters, self._prompt_waiters = self._prompt_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(name)

    def notify_command(self, title: str) -> None:
        keep = []
        for want, f in self._command_waiters:
            if f.done():
                continue
            if title.upper() == want.upper() or title.upper().startswith(want.upper().rstrip() + " "):
                f.set_result(title)
            else:
                keep.append((want, f))
        self._command_waiters = keep

    def wait_prompt(self) -> asyncio.Future[str]:
        f: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._prompt_waiters.append(f)
        return f

    def wait_command(self, name: str) -> asyncio.Future[str]:
        f: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._command_waiters.append((name, f))
        return f

    def start_moh(self, moh_class: str | None) -> None:
        """Music on hold starts (MusicOnHoldStart; an unknown class plays `default`, as recorded in agi-07)."""
        if self.moh_class is None:
            cls = moh_class if moh_class in self.pbx.config.moh_classes else "default"
            self.moh_class = cls
            self.emit("MusicOnHoldStart", "call,all", [("Class", cls)])

    def stop_moh(self) -> None:
        """MusicOnHoldStop, also when the application stops the music because the channel is being hung up
        (ami-15: a queue caller's hangup, ami-13: ParkedCallGiveUp both emit it)."""
        if self.moh_class is not None:
            self.moh_class = None
            self.emit("MusicOnHoldStop", "call,all")

    def speaking_at(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.voice)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<SimChannel {self.name} {self.uniqueid}>"

"""Call control over AMI: originate, transfer, park/retrieve, hold/resume, record, hang up, spy, queue members.

Rules for this file:
- Every operation looks the call up in the live registry first and checks its state: unknown call -> `UnknownCall`
  (404), not valid in this state -> `InvalidState` (409), bad input -> `InvalidRequest` (422); AMI failures go
  through `errors.from_ami` (Asterisk unreachable -> 503).
- Values from requests reach AMI only after `ivr.calls.validate`; channel names come from the registry (Asterisk),
  and file names from `validate.recording_name`, never from a request.
- Which channel an operation acts on: the "customer" is the call's origin (the caller), unless that is an agent
  leg we know of; the "agent" is the customer's partner in the talking bridge (a queue member, the click-to-call
  leg, or simply the other party). A request may name the channel explicitly.
- Numbers dialled out must fully match `settings.number_pattern` (callbacks.number_pattern). Variables a request
  puts on an originated call are checked as names (no IVR_*: those are the service's) and values (nothing Asterisk
  would split into more variables).
- A call still in the IVR that the API transfers gets IVR_TRANSFERRED=<kind>:<target> first (Setvar), so the flow
  engine, which sees only a hangup, records it as transferred.
- Originated legs get their Uniqueid from us (`ChannelId`), so the API can return the new call's id at once
  (ami-11: ChannelId becomes the Uniqueid and the Linkedid of the call).
- A hold lives in Asterisk: the held party runs hold_context with IVR_HELD_PARTNER=<partner channel>, the partner
  waits in hold_wait_context. `_held` only caches what hold() did; resume and transfer rebuild the pair from the
  registry and Getvar when it is missing (after a restart). Nobody is left waiting: a transfer of a held call
  and the held party's hangup both hang up the partner still waiting in hold_wait_context.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal, TypedDict, TypeVar

from ivr import dialplan
from ivr.ami.actions import OriginateResult
from ivr.ami.errors import AMIConnectionLost
from ivr.calls import validate
from ivr.calls.amiport import CallControlAMI
from ivr.calls.errors import InvalidRequest, InvalidState, UnknownCall, from_ami
from ivr.calls.model import Call, Channel
from ivr.calls.registry import CallEnded, CallRegistry, ChannelGone, Effect, RecordingEnded
from ivr.calls.settings import CallControlSettings
from ivr.flow.templates import safe_filename
from ivr.storage import Recording, Storage

log = logging.getLogger(__name__)

_T = TypeVar("_T")
TargetKind = Literal["extension", "queue", "flow"]
SpyMode = Literal["listen", "whisper", "barge"]
_TRANSFERABLE = {"talking", "ivr", "up", "queued", "held"}
_PARKABLE = {"talking", "ivr", "up", "queued"}
HELD_PARTNER_VAR = dialplan.HELD_PARTNER  # on the held channel: the channel waiting for it in hold_wait_context


@dataclass(frozen=True)
class TransferTarget:
    kind: TargetKind
    value: str


@dataclass(frozen=True)
class Originated:
    call_id: str  # Linkedid (= Uniqueid of the first leg) of the new call
    action_id: str | None
    pbx: str | None = None  # the server it was sent to (set by ivr.calls.fleet with several servers)


class FlowCallOptions(TypedDict, total=False):
    """The keyword arguments of `CallOperations.originate_flow` after the number and the flow, for what passes them
    on unchanged (`ivr.calls.fleet`, the callback scheduler's Protocol), as `ivr.ami.actions.OriginateOptions`
    does for Originate: written once here, checked against the method by mypy."""

    caller_id: str | None
    variables: dict[str, str] | None
    timeout: float | None
    call_id: str | None
    service_variables: dict[str, str] | None
    queue: str | None


class ParkOptions(TypedDict, total=False):
    """The keyword arguments of `CallOperations.park` (passed on by `ivr.calls.fleet`)."""

    lot: str
    timeout: float | None
    channel: str | None


class QueueLoginOptions(TypedDict, total=False):
    """The keyword arguments of `CallOperations.queue_login` (passed on by `ivr.calls.fleet`)."""

    member_name: str | None
    penalty: int | None
    paused: bool
    reason: str | None
    state_interface: str | None


@dataclass
class _ActiveRecording:
    recording_id: int
    channel: str
    uniqueid: str
    mixmonitor_id: str
    started_at: datetime
    paused: bool = False


def new_call_id() -> str:
    # Short enough for Asterisk's uniqueid field, unique enough to never collide with its own <epoch>.<seq> ids.
    return "ivr-" + uuid.uuid4().hex[:20]


class CallOperations:
    def __init__(
        self,
        ami: CallControlAMI,
        registry: CallRegistry,
        storage: Storage,
        settings: CallControlSettings | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ami = ami
        self.registry = registry
        self.storage = storage
        self.settings = settings or CallControlSettings()
        self.clock = clock
        self._recordings: dict[str, _ActiveRecording] = {}  # by uniqueid of the recorded channel
        self._held: dict[str, tuple[str, str]] = {}  # call id -> (held channel, waiting partner)
        # "<pbx>:" with several Asterisk servers (ivr.calls.fleet): the recordings index stores the API's call id.
        self.call_id_prefix = ""
        registry.listeners.append(self._effect_listener)

    # --- helpers -----------------------------------------------------------------------------------------------

    async def _act(self, what: str, action: Awaitable[_T]) -> _T:
        """Await one typed AMI action (`self.ami.<action>(...)`), its failure typed by `from_ami`."""
        try:
            return await action
        except Exception as exc:  # typed by from_ami; anything else re-raises unchanged
            raise from_ami(exc, what) from exc

    def call(self, call_id: str) -> Call:
        call = self.registry.call(call_id)
        if call is None or not call.channels:
            raise UnknownCall(f"no live call {call_id!r}; GET /calls lists the calls in progress")
        return call

    def _require(self, call: Call, allowed: set[str], what: str) -> None:
        if call.state not in allowed:
            hint = " (retrieve it first)" if call.state == "parked" else ""
            raise InvalidState(
                f"cannot {what} a call that is {call.state}{hint}; allowed when {', '.join(sorted(allowed))}"
            )

    def _channel_in(self, call: Call, name: str | None) -> Channel | None:
        if name is None:
            return None
        validate.channel(name)
        for ch in call.channels:
            if ch.name == name:
                return ch
        raise InvalidRequest(f"channel {name!r} is not part of call {call.id}")

    def parties(self, call: Call) -> tuple[Channel, Channel | None]:
        """(customer, agent): the caller and its partner in the talking bridge (None when not bridged)."""
        bridge = call.talking_bridge()
        if bridge is None:
            return call.origin, None
        members = sorted(
            (self.registry.channels[u] for u in bridge.channels if u in self.registry.channels),
            key=lambda c: (c.created_at, c.uniqueid),
        )
        agent = next((c for c in members if c.agent_leg), None)
        if agent is None:
            origin = call.origin
            customer = origin if origin in members else members[0]
            agent = next((c for c in members if c is not customer), None)
            return customer, agent
        customer = next((c for c in members if c is not agent), call.origin)
        return customer, agent

    def _target(self, target: TransferTarget) -> tuple[str, str]:
        if target.kind == "extension":
            return self.settings.extension_context, validate.extension(target.value)
        if target.kind == "queue":
            return self.settings.queue_context, validate.name(target.value, "queue")
        if target.kind == "flow":
            return self.settings.flow_context, validate.name(target.value, "flow")
        raise InvalidRequest(f"unknown transfer target kind {target.kind!r}; use extension, queue or flow")

    def _dial(self, template: str, **values: str) -> str:
        return template.format(**values)

    # --- originate ---------------------------------------------------------------------------------------------

    async def click_to_call(
        self, agent: str, number: str, *, caller_id: str | None = None, timeout: float | None = None
    ) -> Originated:
        """Ring the agent's extension; when answered, the agent leg dials the customer number."""
        validate.extension(agent, "agent extension")
        validate.number(number, pattern=self.settings.number_re)
        call_id = new_call_id()
        self.registry.expect_agent_leg(call_id, agent)
        action_id = await self._act(
            "originate",
            self.ami.send_originate(
                self._dial(self.settings.agent_dial, extension=agent),
                context=self.settings.outbound_context,
                exten=number,
                priority=1,
                timeout_ms=int((timeout or self.settings.originate_timeout) * 1000),
                caller_id=caller_id or f'"{number}" <{number}>',
                channel_id=call_id,
                other_channel_id=call_id + "-2",
                variables={dialplan.AGENT_NAME: agent},
            ),
        )
        return Originated(call_id, action_id)

    async def originate_flow(
        self,
        number: str,
        flow: str,
        *,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
        timeout: float | None = None,
        call_id: str | None = None,
        service_variables: dict[str, str] | None = None,
        queue: str | None = None,
    ) -> Originated:
        """Call `number`; when it answers, it runs `flow` (flow_context,<flow>,1 -> FastAGI).

        `variables` come from a request (no IVR_* names); `service_variables` are this service's own IVR_* ones
        (callbacks: IVR_LANG, IVR_CALLBACK_QUEUE, IVR_CALLBACK_ID). Every value is checked either way. `queue`: the
        queue the call is for; with several Asterisk servers its home server takes the call (`ivr.calls.fleet`),
        one server takes every call."""
        validate.number(number, pattern=self.settings.number_re)
        validate.name(flow, "flow")
        for key, value in (variables or {}).items():
            validate.variable_name(key)
            validate.variable_value(value, f"variable {key}")
        for key, value in (service_variables or {}).items():
            if not key.startswith("IVR_"):
                raise ValueError(f"service variable {key!r} must start with IVR_")  # a programming error
            validate.variable_value(value, f"variable {key}")
        call_id = call_id or new_call_id()
        action_id = await self._act(
            "originate",
            self.ami.send_originate(
                self._dial(self.settings.customer_dial, number=number),
                context=self.settings.flow_context,
                exten=flow,
                priority=1,
                timeout_ms=int((timeout or self.settings.originate_timeout) * 1000),
                caller_id=caller_id,
                channel_id=call_id,
                other_channel_id=call_id + "-2",
                variables={dialplan.FLOW: flow, **(variables or {}), **(service_variables or {})},
            ),
        )
        return Originated(call_id, action_id)

    # --- transfer ----------------------------------------------------------------------------------------------

    async def transfer(
        self,
        call_id: str,
        target: TransferTarget,
        *,
        mode: Literal["blind", "attended"] = "blind",
        channel: str | None = None,
    ) -> dict[str, str]:
        call = self.call(call_id)
        self._require(call, _TRANSFERABLE, "transfer")
        context, exten = self._target(target)
        customer, agent = self.parties(call)
        chosen = self._channel_in(call, channel)
        if mode == "attended":
            if agent is None:
                raise InvalidState(
                    "an attended transfer needs a bridged call (an agent talking to the caller); use mode=blind"
                )
            if not exten.isdigit():
                raise InvalidRequest(
                    "attended transfer targets must be numeric: Asterisk sends them as DTMF "
                    "after the atxfer feature code; use mode=blind for this target"
                )
            transferer = chosen or agent
            await self._act("attended transfer", self.ami.atxfer(transferer.name, exten, context))
            return {"mode": "attended", "transferer": transferer.name, "context": context, "exten": exten}
        hold: tuple[Channel, Channel] | None = None
        if call.state == "held" or call.id in self._held:
            try:
                hold = await self._hold_pair(call)
            except InvalidState:  # the partner hung up during the hold: the caller is simply redirected
                self._held.pop(call.id, None)
        if agent is not None and hold is None:
            # Bridged (so no longer in the IVR: a call in a flow is never in a talking bridge): the agent side
            # transfers, the caller goes to the target, the agent leg is released.
            transferer = chosen or agent
            await self._act("blind transfer", self.ami.blind_transfer(transferer.name, context, exten))
            return {"mode": "blind", "transferer": transferer.name, "context": context, "exten": exten}
        if hold is not None:
            return await self._transfer_held(call, hold, chosen, context, exten)
        moved = chosen or customer
        if call.state == "ivr":
            await self._mark_transferred(moved, target)
        await self._act("transfer", self.ami.redirect(moved.name, context, exten, 1))
        return {"mode": "redirect", "channel": moved.name, "context": context, "exten": exten}

    async def _transfer_held(
        self, call: Call, hold: tuple[Channel, Channel], chosen: Channel | None, context: str, exten: str
    ) -> dict[str, str]:
        """The held party goes to the target; the partner waiting for it in hold_wait_context is released (it
        would otherwise sit in Wait(3600) for nobody) and the hold is forgotten."""
        held, partner = hold
        if chosen is not None and chosen is not held:
            raise InvalidRequest(
                f"call {call.id} is on hold: only the held channel {held.name} can be "
                f"transferred (its partner {partner.name} is released); omit channel"
            )
        await self._act("transfer", self.ami.redirect(held.name, context, exten, 1))
        self._held.pop(call.id, None)
        released = await self._release_waiting(partner)
        await self._forget_hold(held)
        result = {"mode": "redirect", "channel": held.name, "context": context, "exten": exten}
        if released:
            result["released"] = partner.name
        return result

    async def _mark_transferred(self, channel: Channel, target: TransferTarget) -> None:
        # The AGI session sees only a hangup when a Redirect takes its channel away; the engine reads this
        # variable in dead mode and records outcome "transferred" (end target "api:<kind>:<target>").
        value = f"{target.kind}:{target.value}"  # both validated by _target (names / extensions only)
        await self._act("transfer", self.ami.setvar(dialplan.TRANSFERRED, value, channel.name))

    # --- park / retrieve ---------------------------------------------------------------------------------------

    async def park(
        self, call_id: str, *, lot: str = "default", timeout: float | None = None, channel: str | None = None
    ) -> dict[str, Any]:
        call = self.call(call_id)
        self._require(call, _PARKABLE, "park")
        validate.name(lot, "parking lot")
        if lot not in self.settings.parking_lots:
            raise InvalidRequest(f"unknown parking lot {lot!r}; configured: {', '.join(self.settings.parking_lots)}")
        customer, agent = self.parties(call)
        parkee = self._channel_in(call, channel) or customer
        seconds = self.settings.park_timeout if timeout is None else timeout
        if not 1 <= seconds <= 3600:
            raise InvalidRequest("park timeout must be between 1 and 3600 seconds")
        await self._act(
            "park",
            self.ami.park(
                parkee.name,
                timeout_ms=int(seconds * 1000),
                parkinglot=lot,
                timeout_channel=agent.name if agent is not None and agent is not parkee else None,
            ),
        )
        return {"channel": parkee.name, "lot": lot, "timeout": seconds}

    async def retrieve(self, call_id: str, agent: str, *, timeout: float | None = None) -> Originated:
        """Ring `agent`; when the agent answers, its leg runs ParkedCall(<lot>,<space>) and picks the call up.

        Agent first: the parked caller keeps hearing music until someone actually answered (dialling the space
        through a Local channel instead would take the call out of the lot while the agent's phone still rings).
        """
        call = self.call(call_id)
        if not call.parked:
            raise InvalidState(f"call {call_id} is {call.state}, not parked")
        validate.extension(agent, "agent extension")
        parked = call.parked[0]
        lot = validate.name(parked.lot, "parking lot")
        space = validate.extension(parked.space, "parking space")
        leg_id = new_call_id()
        self.registry.expect_agent_leg(leg_id, agent)
        caller = parked.caller_num
        action_id = await self._act(
            "retrieve",
            self.ami.send_originate(
                self._dial(self.settings.agent_dial, extension=agent),
                application="ParkedCall",
                data=f"{lot},{space}",
                timeout_ms=int((timeout or self.settings.originate_timeout) * 1000),
                caller_id=validate.caller_id(parked.caller_name, caller) if caller else None,
                channel_id=leg_id,
                other_channel_id=leg_id + "-2",
            ),
        )
        return Originated(leg_id, action_id)

    # --- hold / resume -----------------------------------------------------------------------------------------

    async def hold(self, call_id: str, *, moh_class: str | None = None) -> dict[str, str]:
        call = self.call(call_id)
        self._require(call, {"talking"}, "hold")
        customer, agent = self.parties(call)
        if agent is None:  # "talking" means bridged with a partner; a bridge that just emptied is not
            raise InvalidState(f"call {call_id} has nobody to hold it for (its partner just left); try again")
        klass = validate.name(moh_class or self.settings.moh_class, "music on hold class")
        await self._act("hold", self.ami.setvar(dialplan.MOH_CLASS, klass, customer.name))
        # Asterisk keeps who waits for whom, so a restarted service can still resume (see _hold_pair).
        await self._act("hold", self.ami.setvar(HELD_PARTNER_VAR, validate.channel(agent.name), customer.name))
        await self._act(
            "hold",
            self.ami.redirect(
                customer.name,
                self.settings.hold_context,
                "s",
                1,
                extra_channel=agent.name,
                extra_context=self.settings.hold_wait_context,
                extra_exten="s",
                extra_priority=1,
            ),
        )
        self._held[call.id] = (customer.name, agent.name)
        return {"held": customer.name, "partner": agent.name, "moh_class": klass}

    async def resume(self, call_id: str) -> dict[str, str]:
        call = self.call(call_id)
        pair = await self._hold_pair(call)
        if pair is None:
            raise InvalidState(
                f"call {call_id} is {call.state}; only calls put on hold through this API can be resumed"
            )
        held, partner = pair
        await self._act("resume", self.ami.bridge(held.name, partner.name, "no"))
        self._held.pop(call.id, None)
        await self._forget_hold(held)
        return {"resumed": held.name, "partner": partner.name}

    async def _hold_pair(self, call: Call) -> tuple[Channel, Channel] | None:
        """(held channel, partner waiting for it) of a call put on hold through this API, or None.

        From the note hold() left, else rebuilt from Asterisk: a channel of the call in hold_context, the
        partner its IVR_HELD_PARTNER names (Getvar), which must be waiting in hold_wait_context. Raises
        InvalidState when the partner is gone."""
        by_name = {ch.name: ch for ch in call.channels}
        note = self._held.get(call.id)
        if note is not None:
            held, partner = by_name.get(note[0]), by_name.get(note[1])
            if held is not None and partner is not None:
                return held, partner
            self._held.pop(call.id, None)
            raise InvalidState("the other party hung up while the call was on hold; nothing to resume")
        for held in (ch for ch in call.channels if ch.context == self.settings.hold_context):
            name = await self._getvar(held, HELD_PARTNER_VAR)
            if not name:
                continue  # on hold, but not by this API (no partner recorded)
            partner = by_name.get(name)
            if partner is None or partner.context != self.settings.hold_wait_context:
                raise InvalidState(f"the other party ({name}) is no longer waiting for {held.name}; nothing to resume")
            self._held[call.id] = (held.name, partner.name)
            return held, partner
        return None

    async def _getvar(self, channel: Channel, variable: str) -> str:
        value = await self._act("read the hold", self.ami.getvar(variable, channel.name))
        return (value or "").strip()

    async def _forget_hold(self, held: Channel) -> None:
        # Best effort: the variable only matters while the channel is in hold_context, and hold() sets it anew.
        try:
            await self.ami.setvar(HELD_PARTNER_VAR, "", held.name)
        except Exception as exc:
            log.debug("cannot clear %s on %s: %s", HELD_PARTNER_VAR, held.name, exc)

    async def _release_waiting(self, partner: Channel) -> bool:
        """Hang up `partner` if it still waits in hold_wait_context (it is not bridged to anyone there)."""
        current = self.registry.channels.get(partner.uniqueid)
        if current is None or current.context != self.settings.hold_wait_context:
            return False
        bridge = self.registry.bridges.get(current.bridge_id or "")
        if bridge is not None and bridge.channels - {current.uniqueid}:
            return False  # resumed meanwhile: it talks to someone
        try:
            await self.ami.hangup(current.name, 16)
        except Exception as exc:
            err = from_ami(exc, "release the waiting partner")
            if err.status != 404:  # already gone is what we wanted
                log.warning("cannot hang up %s waiting in %s: %s", current.name, self.settings.hold_wait_context, err)
            return False
        return True

    # --- recording ---------------------------------------------------------------------------------------------

    def _active_recording(self, call: Call) -> _ActiveRecording | None:
        for ch in call.channels:
            rec = self._recordings.get(ch.uniqueid)
            if rec is not None:
                return rec
        return None

    async def record_start(self, call_id: str, *, channel: str | None = None) -> dict[str, Any]:
        call = self.call(call_id)
        if call.state == "ringing":
            raise InvalidState("cannot record a call that is not answered yet")
        if self._active_recording(call) is not None or call.recording is not None:
            raise InvalidState(f"call {call_id} is already being recorded; stop it first")
        customer, agent = self.parties(call)
        target = self._channel_in(call, channel) or customer
        now = self.clock()
        name = validate.recording_name(
            self.settings.recording_template,
            call=call.id,
            caller=customer.caller_num,
            agent=(agent.agent or "") if agent else (call.agent or ""),
            flow=call.flow or "",
            queue=call.queue or "",
            when=now,
        )
        fmt = safe_filename(self.settings.recording_format, max_length=8, default="wav")
        path = str(PurePosixPath(self.settings.recordings_dir) / f"{name}.{fmt}")
        # i(VAR): Asterisk returns the MixMonitorID only when asked to store it in a variable (ami-14), and
        # StopMixMonitor by id then stops exactly this recording.
        mixmonitor_id = (
            await self._act("record", self.ami.mixmonitor(target.name, path, options="i(IVR_MIXMONITOR_ID)")) or ""
        )
        rec_id = await self.storage.add_recording(
            Recording(
                call_id=self.call_id_prefix + call.id,
                path=path,
                caller=customer.caller_num,
                agent=call.agent or "",
                flow=call.flow or "",
                queue=call.queue or "",
                channel=target.name,
                started_at=now,
            )
        )
        self._recordings[target.uniqueid] = _ActiveRecording(rec_id, target.name, target.uniqueid, mixmonitor_id, now)
        return {"recording_id": rec_id, "path": path, "channel": target.name}

    async def _mute(self, call_id: str, mute: bool) -> dict[str, Any]:
        call = self.call(call_id)
        rec = self._active_recording(call)
        if rec is None:
            raise InvalidState(f"call {call_id} is not being recorded by this service")
        if rec.paused == mute:
            raise InvalidState("the recording is already " + ("paused" if mute else "running"))
        await self._act(
            "record pause" if mute else "record resume",
            self.ami.mixmonitor_mute(rec.channel, mute, "both"),
        )
        rec.paused = mute
        await self.storage.set_recording_state(rec.recording_id, "paused" if mute else "recording")
        return {"recording_id": rec.recording_id, "state": "paused" if mute else "recording"}

    async def record_pause(self, call_id: str) -> dict[str, Any]:
        return await self._mute(call_id, True)

    async def record_resume(self, call_id: str) -> dict[str, Any]:
        return await self._mute(call_id, False)

    async def record_stop(self, call_id: str) -> dict[str, Any]:
        call = self.call(call_id)
        rec = self._active_recording(call)
        if rec is None:
            raise InvalidState(f"call {call_id} is not being recorded by this service")
        await self._act("record stop", self.ami.stop_mixmonitor(rec.channel, rec.mixmonitor_id or None))
        seconds = await self._finish(rec.uniqueid)
        return {"recording_id": rec.recording_id, "state": "finished", "seconds": seconds}

    async def _finish(self, uniqueid: str) -> float | None:
        rec = self._recordings.pop(uniqueid, None)
        if rec is None:
            return None
        end = self.clock()
        seconds = max(0.0, (end - rec.started_at).total_seconds())  # muted time is kept as silence (ami-14)
        await self.storage.finish_recording(rec.recording_id, end, seconds)
        return seconds

    def _effect_listener(self, effect: Effect) -> Awaitable[None] | None:
        """The registry listener: most effects (a channel gone outside hold, with no hold note) need nothing, and
        then no coroutine is made (the registry runs in the AMI reader, see ivr/calls/sync.py)."""
        if isinstance(effect, ChannelGone) and effect.linkedid not in self._held:
            if effect.context != self.settings.hold_context:
                return None
        elif isinstance(effect, CallEnded):
            self._held.pop(effect.call_id, None)
            return None
        return self.on_effect(effect)

    async def on_effect(self, effect: Effect) -> None:
        """Registry listener: a hangup ends MixMonitor without MixMonitorStop (close the index row then), a
        held party that hangs up releases the partner waiting for it, and a call that ends while on hold takes
        its hold note with it."""
        if isinstance(effect, RecordingEnded):
            await self._finish(effect.uniqueid)
        elif isinstance(effect, ChannelGone):
            await self._held_party_gone(effect)
        elif isinstance(effect, CallEnded):
            self._held.pop(effect.call_id, None)

    async def _held_party_gone(self, gone: ChannelGone) -> None:
        note = self._held.get(gone.linkedid)
        if note is not None and gone.channel != note[0]:
            return  # someone else of a held call (the partner itself, a spy leg)
        if note is None and gone.context != self.settings.hold_context:
            return
        self._held.pop(gone.linkedid, None)
        call = self.registry.call(gone.linkedid)
        if call is None:
            return
        waiting = [ch for ch in call.channels if ch.context == self.settings.hold_wait_context]
        if note is not None:
            waiting = [ch for ch in waiting if ch.name == note[1]]
        elif any(ch.context == self.settings.hold_context for ch in call.channels):
            return  # another party of this call is still on hold: its partner may be one of them
        for partner in waiting:
            if await self._release_waiting(partner):
                log.info(
                    "call %s: %s hung up while on hold; released %s waiting in %s",
                    call.id,
                    gone.channel,
                    partner.name,
                    self.settings.hold_wait_context,
                )

    # --- hang up, spy ------------------------------------------------------------------------------------------

    async def hangup(self, call_id: str) -> dict[str, Any]:
        call = self.call(call_id)
        hung: list[str] = []
        # Local ;2 halves follow their ;1; hanging up the others is enough and avoids "No such channel".
        for ch in sorted(call.channels, key=lambda c: (c.name.endswith(";2"), c.created_at)):
            if ch.name.endswith(";2") and ch.name[:-1] + "1" in hung:
                continue
            try:
                await self.ami.hangup(ch.name, 16)
                hung.append(ch.name)
            except Exception as exc:
                err = from_ami(exc, "hang up")
                if err.status == 404:
                    continue  # already gone: that is what we wanted
                raise err from exc
        if not hung:
            raise UnknownCall(f"call {call_id} ended before it could be hung up")
        return {"hung_up": hung}

    async def spy(
        self, call_id: str, supervisor: str, mode: SpyMode = "listen", *, channel: str | None = None
    ) -> Originated:
        """Ring the supervisor; when answered, ChanSpy on the agent's channel (or the caller's if not bridged)."""
        call = self.call(call_id)
        if call.state == "ringing":
            raise InvalidState("cannot spy on a call that is not answered yet")
        options = self.settings.spy_options.get(mode)
        if options is None:
            raise InvalidRequest(f"unknown spy mode {mode!r}; use listen, whisper or barge")
        validate.extension(supervisor, "supervisor extension")
        customer, agent = self.parties(call)
        target = self._channel_in(call, channel) or agent or customer
        validate.channel(target.name)
        leg_id = new_call_id()
        action_id = await self._act(
            "spy",
            self.ami.send_originate(
                self._dial(self.settings.agent_dial, extension=supervisor),
                application="ChanSpy",
                data=f"{target.name},{options}",
                timeout_ms=int(self.settings.originate_timeout * 1000),
                caller_id=f'"Spy {mode}" <{supervisor}>',
                channel_id=leg_id,
                other_channel_id=leg_id + "-2",
            ),
        )
        return Originated(leg_id, action_id)

    # --- queue members -----------------------------------------------------------------------------------------

    async def queue_login(
        self,
        queue: str,
        interface: str,
        *,
        member_name: str | None = None,
        penalty: int | None = None,
        paused: bool = False,
        reason: str | None = None,
        state_interface: str | None = None,
    ) -> None:
        validate.name(queue, "queue")
        validate.interface(interface)
        if state_interface is not None:
            validate.interface(state_interface)
        if member_name is not None:
            validate.reason(member_name, "member name")
        if reason is not None:
            validate.reason(reason)
        if penalty is not None and not 0 <= penalty <= 1000:
            raise InvalidRequest("penalty must be between 0 and 1000")
        await self._act(
            "queue login",
            self.ami.queue_add(
                queue,
                interface,
                penalty=penalty,
                paused=paused,
                member_name=member_name,
                state_interface=state_interface,
                reason=reason if paused else None,
            ),
        )

    async def queue_logout(self, queue: str, interface: str) -> None:
        validate.name(queue, "queue")
        validate.interface(interface)
        await self._act("queue logout", self.ami.queue_remove(queue, interface))

    async def queue_pause(self, interface: str, *, queue: str | None = None, reason: str | None = None) -> None:
        validate.interface(interface)
        if queue is not None:
            validate.name(queue, "queue")
        if reason is not None:
            validate.reason(reason)
        await self._act("queue pause", self.ami.queue_pause(interface, True, queue=queue, reason=reason))

    async def queue_unpause(self, interface: str, *, queue: str | None = None) -> None:
        validate.interface(interface)
        if queue is not None:
            validate.name(queue, "queue")
        await self._act("queue unpause", self.ami.queue_pause(interface, False, queue=queue))

    # --- waiting for an originate (callbacks) ------------------------------------------------------------------

    async def wait_originate(self, originated: Originated, timeout: float) -> OriginateResult | None:
        """How the Originate ended (matched by the AMI connection's OriginateTracker), or None when no
        OriginateResponse came within `timeout` s or the connection dropped meanwhile (the outcome is unknown)."""
        if originated.action_id is None:
            raise InvalidState("this originate has no ActionID to match its result by")
        try:
            return await self.ami.originate_result(originated.action_id, timeout)
        except AMIConnectionLost:
            return None

"""Several Asterisk servers behind one registry and one set of call operations.

Rules for this file:
- Each server keeps its own `CallRegistry`, `RegistrySync` and `CallOperations` (one AMI connection each): a
  registry never mixes two servers' Uniqueids, and every action is sent over the connection of the server that
  holds the call. This module only routes and renames; it applies no AMI event itself.
- Call ids: with several servers a call's id is `<pbx>:<Linkedid>` (`qualify`/`split`), so ids stay unique even when
  two servers hand out the same `<epoch>.<seq>` Uniqueid. An unqualified id is still accepted when exactly one
  server holds it. With one server the service does not use this module: ids stay the bare Linkedid.
- New calls (originate, callbacks, spying is per call) go to the home server of their queue (`ami.servers[].queues`)
  if it is logged in, else to the first logged-in server in the configured order.
- Queue member actions go to the queue's home server, else to every logged-in server that knows the queue, else to
  the first logged-in one; they succeed when one server accepted them.
- The FastAGI side does not know which server a session comes from: its flow/node note goes to the server(s) that
  have a channel with that Uniqueid. `systemname` in each Asterisk's asterisk.conf makes Uniqueids unique across
  servers (docs/deployment.md), so the note lands on one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Unpack

from ivr.ami.actions import OriginateResult
from ivr.calls.amiport import CallControlAMI
from ivr.calls.errors import AsteriskUnavailable, CallControlError, UnknownCall
from ivr.calls.model import Call, ParkedCall
from ivr.calls.operations import (
    CallOperations,
    FlowCallOptions,
    Originated,
    ParkOptions,
    QueueLoginOptions,
    SpyMode,
    TransferTarget,
)
from ivr.calls.queues import Queue
from ivr.calls.registry import CallRegistry, Effect
from ivr.calls.settings import CallControlSettings
from ivr.calls.sync import RegistrySync

SEPARATOR = ":"


def qualify(pbx: str, raw_id: str) -> str:
    return f"{pbx}{SEPARATOR}{raw_id}"


def split(call_id: str) -> tuple[str | None, str]:
    """(`pbx`, raw id) of a qualified id; (None, id) when it has no server prefix."""
    pbx, sep, raw = call_id.partition(SEPARATOR)
    return (pbx, raw) if sep else (None, call_id)


@dataclass
class PBXCalls:
    """Call control over one Asterisk server."""

    name: str
    ami: CallControlAMI
    registry: CallRegistry
    sync: RegistrySync
    operations: CallOperations

    @property
    def logged_in(self) -> bool:
        return self.ami.logged_in


class FleetRegistry:
    """The read side of the API over every server's registry (ids qualified, calls tagged with their `pbx`)."""

    def __init__(self, parts: list[PBXCalls]) -> None:
        self.parts = parts
        self.listeners: list[Callable[[Effect], object]] = []  # effects go per server; kept for interface parity

    def calls(self) -> list[Call]:
        out: list[Call] = []
        for part in self.parts:
            out.extend(dataclasses.replace(c, id=qualify(part.name, c.id)) for c in part.registry.calls())
        return sorted(out, key=lambda c: (min((ch.created_at for ch in c.channels), default=0.0), c.id))

    def locate(self, call_id: str) -> tuple[PBXCalls, Call]:
        """The server holding `call_id` and its call (raw id); `UnknownCall` if none does."""
        pbx, raw = split(call_id)
        candidates = [p for p in self.parts if p.name == pbx] if pbx is not None else self.parts
        found = [(p, c) for p in candidates if (c := p.registry.call(raw)) is not None and c.channels]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UnknownCall(
                f"call id {call_id!r} exists on {', '.join(p.name for p, _ in found)}; "
                f"use the full id from GET /calls (<pbx>{SEPARATOR}<id>)"
            )
        raise UnknownCall(f"no live call {call_id!r}; GET /calls lists the calls in progress")

    def call(self, call_id: str) -> Call | None:
        try:
            part, call = self.locate(call_id)
        except UnknownCall:
            return None
        return dataclasses.replace(call, id=qualify(part.name, call.id))

    def parked_in(self, lot: str | None = None) -> list[ParkedCall]:
        out = [
            dataclasses.replace(p, linkedid=qualify(part.name, p.linkedid))
            for part in self.parts
            for p in part.registry.parked_in(lot)
        ]
        return sorted(out, key=lambda p: (p.lot, p.linkedid))

    @property
    def queues(self) -> dict[str, Queue]:
        """Queues by name; a queue configured on several servers shows the members and callers of all."""
        merged: dict[str, Queue] = {}
        for part in self.parts:
            for name, queue in part.registry.queues.items():
                into = merged.setdefault(name, Queue(name=name, strategy=queue.strategy))
                for interface, member in queue.members.items():
                    into.members[f"{part.name}{SEPARATOR}{interface}"] = member
                for uid, caller in queue.callers.items():
                    into.callers[f"{part.name}{SEPARATOR}{uid}"] = dataclasses.replace(
                        caller, linkedid=qualify(part.name, caller.linkedid)
                    )
        return merged

    def note_flow(self, uniqueid: str, flow: str | None, node: str | None = None) -> None:
        """From the FastAGI side, which does not know the server: the channel is noted where it exists."""
        for part in self.parts:
            if uniqueid in part.registry.channels:
                part.registry.note_flow(uniqueid, flow, node)

    def recordings_running(self) -> int:
        return sum(part.registry.recordings_running() for part in self.parts)


class FleetOperations:
    """`CallOperations`' interface over several servers: each call action goes to the server holding the call."""

    def __init__(
        self,
        parts: list[PBXCalls],
        registry: FleetRegistry,
        settings: CallControlSettings,
        *,
        queue_homes: Mapping[str, str] | None = None,
    ) -> None:
        self.parts = parts
        self.registry = registry
        self.settings = settings
        self.storage = parts[0].operations.storage
        self.queue_homes = dict(queue_homes or {})
        self._by_name = {p.name: p for p in parts}

    # --- choosing a server ---------------------------------------------------------------------------------

    def server_for(self, queue: str | None = None) -> PBXCalls:
        """Where a new call goes: the queue's home server if logged in, else the first logged-in server."""
        home = self._by_name.get(self.queue_homes.get(queue or "", ""))
        if home is not None and home.logged_in:
            return home
        for part in self.parts:
            if part.logged_in:
                return part
        raise AsteriskUnavailable(
            "no Asterisk server is logged in (" + ", ".join(p.name for p in self.parts) + "); try again later"
        )

    def _queue_servers(self, queue: str | None) -> list[PBXCalls]:
        home = self._by_name.get(self.queue_homes.get(queue or "", ""))
        if home is not None:
            return [home]
        up = [p for p in self.parts if p.logged_in]
        knowing = [p for p in up if queue is None or queue in p.registry.queues]
        return knowing or up[:1] or [self.server_for()]

    def _originated(self, part: PBXCalls, out: Originated) -> Originated:
        return dataclasses.replace(out, call_id=qualify(part.name, out.call_id), pbx=part.name)

    # --- calls ---------------------------------------------------------------------------------------------

    def call(self, call_id: str) -> Call:
        call = self.registry.call(call_id)
        if call is None:
            self.registry.locate(call_id)  # raises the precise UnknownCall
            raise UnknownCall(f"no live call {call_id!r}")
        return call

    def _on(self, call_id: str) -> tuple[CallOperations, str]:
        part, call = self.registry.locate(call_id)
        return part.operations, call.id

    async def click_to_call(
        self, agent: str, number: str, *, caller_id: str | None = None, timeout: float | None = None
    ) -> Originated:
        part = self.server_for()
        out = await part.operations.click_to_call(agent, number, caller_id=caller_id, timeout=timeout)
        return self._originated(part, out)

    async def originate_flow(self, number: str, flow: str, **options: Unpack[FlowCallOptions]) -> Originated:
        part = self.server_for(options.get("queue"))
        out = await part.operations.originate_flow(number, flow, **options)
        return self._originated(part, out)

    async def wait_originate(self, originated: Originated, timeout: float) -> OriginateResult | None:
        part = self._by_name.get(originated.pbx or "") or self.parts[0]
        _, raw = split(originated.call_id)
        return await part.operations.wait_originate(dataclasses.replace(originated, call_id=raw), timeout)

    async def transfer(
        self,
        call_id: str,
        target: TransferTarget,
        *,
        mode: Literal["blind", "attended"] = "blind",
        channel: str | None = None,
    ) -> dict[str, str]:
        ops, raw = self._on(call_id)
        return await ops.transfer(raw, target, mode=mode, channel=channel)

    async def park(self, call_id: str, **options: Unpack[ParkOptions]) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.park(raw, **options)

    async def retrieve(self, call_id: str, agent: str, *, timeout: float | None = None) -> Originated:
        part, call = self.registry.locate(call_id)
        return self._originated(part, await part.operations.retrieve(call.id, agent, timeout=timeout))

    async def hold(self, call_id: str, *, moh_class: str | None = None) -> dict[str, str]:
        ops, raw = self._on(call_id)
        return await ops.hold(raw, moh_class=moh_class)

    async def resume(self, call_id: str) -> dict[str, str]:
        ops, raw = self._on(call_id)
        return await ops.resume(raw)

    async def record_start(self, call_id: str, *, channel: str | None = None) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.record_start(raw, channel=channel)

    async def record_pause(self, call_id: str) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.record_pause(raw)

    async def record_resume(self, call_id: str) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.record_resume(raw)

    async def record_stop(self, call_id: str) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.record_stop(raw)

    async def hangup(self, call_id: str) -> dict[str, Any]:
        ops, raw = self._on(call_id)
        return await ops.hangup(raw)

    async def spy(
        self, call_id: str, supervisor: str, mode: SpyMode = "listen", *, channel: str | None = None
    ) -> Originated:
        part, call = self.registry.locate(call_id)
        out = await part.operations.spy(call.id, supervisor, mode, channel=channel)
        return self._originated(part, out)

    # --- queue members -------------------------------------------------------------------------------------

    async def _each(self, queue: str | None, action: Callable[[CallOperations], Awaitable[None]]) -> None:
        """Run `action` on the operations of each server the queue's member actions go to."""
        error: CallControlError | None = None
        done = 0
        for part in self._queue_servers(queue):
            try:
                await action(part.operations)
                done += 1
            except CallControlError as exc:
                error = exc
        if not done and error is not None:
            raise error

    async def queue_login(self, queue: str, interface: str, **options: Unpack[QueueLoginOptions]) -> None:
        await self._each(queue, lambda ops: ops.queue_login(queue, interface, **options))

    async def queue_logout(self, queue: str, interface: str) -> None:
        await self._each(queue, lambda ops: ops.queue_logout(queue, interface))

    async def queue_pause(self, interface: str, *, queue: str | None = None, reason: str | None = None) -> None:
        await self._each(queue, lambda ops: ops.queue_pause(interface, queue=queue, reason=reason))

    async def queue_unpause(self, interface: str, *, queue: str | None = None) -> None:
        await self._each(queue, lambda ops: ops.queue_unpause(interface, queue=queue))

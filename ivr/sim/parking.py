"""The parking lot: park a channel, wait for retrieval or timeout, and the events of each step (ami-13, agi-07).

Rules for this file:
- One waiting primitive, `park_channel()`, shared by EXEC Park (AGI), AMI Park and Redirect to the park
  extension; it returns "timeout", "retrieved" or "hangup".  On a timeout the channel moves to the lot's
  comebackcontext,s,1 (comeback_goto), or to `comeback` when Park's c() option named a location
  (ast_async_parseable_goto of the option's text); ParkedCallTimeOut already shows the new location (agi-07).
- Events carry the parked channel's block with the "Parkee" prefix, then ParkerDialString, Parkinglot,
  ParkingSpace, ParkingTimeout (seconds left), ParkingDuration (seconds parked).
- Retrieval is done by `retrieve()` (AMI Originate to Local/<space>@parkedcalls, or the test API); the
  retriever talks `talk` seconds (None = until the parked caller hangs up), then the parked channel goes on.
- `parked_call()` is the ParkedCall(<lot>,<space>) application on a retrieving channel (e.g. an originated agent
  leg, Originate Application=ParkedCall): as ami-13 records a retrieval, BridgeCreate, UnParkedCall (Parkee and
  Retriever blocks), BridgeEnter of the parkee then of the retriever, whose Linkedid becomes the parkee's (the
  oldest linkedid of a bridge wins); whoever hangs up leaves first, then the other, BridgeDestroy; the parked
  side's Park (EXEC or the Park action's dialplan) then returns -1 and the channel hangs up.  An empty space
  plays pbx-invalidpark and returns -1 (res_parking).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.sim import media
from ivr.sim.appargs import GotoTarget, separate_args
from ivr.sim.bridging import bridge_block
from ivr.sim.pbx import ParkedCall

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel
    from ivr.sim.pbx import PBX
    from ivr.sim.simulator import SimulatedAsterisk


def park_fields(pbx: PBX, p: ParkedCall, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    now = pbx.clock.now()
    left = max(0, int(round(p.parked_at + p.timeout - now)))
    return (
        p.channel.block("Parkee")
        + (extra or [])
        + [
            ("ParkerDialString", p.parker),
            ("Parkinglot", pbx.config.parking.name),
            ("ParkingSpace", str(p.space)),
            ("ParkingTimeout", str(left)),
            ("ParkingDuration", str(int(now - p.parked_at))),
        ]
    )


async def park_channel(
    ch: SimChannel,
    *,
    timeout: float,
    parker: str,
    announce: bool,
    on_space: Callable[[int], None] | None = None,
    comeback: GotoTarget | None = None,
) -> tuple[str, int]:
    """Park `ch`; returns (outcome, space).  The announcement (space number) counts against the timeout.
    `comeback`: where a timed-out channel goes instead of the lot's comebackcontext,s,1 (Park's c() option)."""
    pbx = ch.pbx
    clock = pbx.clock
    deadline = clock.now() + timeout
    space = pbx.free_space()
    if space is None:
        return "full", 0
    parked = ParkedCall(ch, space, parker=parker, timeout=timeout, parked_at=clock.now())
    pbx.parked[space] = parked
    ch.set_var("PARKINGSLOT", str(space))
    if on_space is not None:
        on_space(space)
    pbx.bus.emit("ParkedCall", "call,all", park_fields(pbx, parked))
    try:
        if announce and await ch.pause(min(pbx.config.parking.announce_seconds, timeout)) is not None:
            pbx.bus.emit("ParkedCallGiveUp", "call,all", park_fields(pbx, parked))
            return "hangup", space
        ch.start_moh("default")  # after the space number was said
        while True:
            ev = await ch.next_event(deadline)
            if ev is None:
                parked.done = True
                pbx.parked.pop(space, None)
                ch.unset_var("PARKINGSLOT")
                target = comeback or GotoTarget(pbx.config.parking.comebackcontext, "s", 1)
                ch.context, ch.exten, ch.priority = target.context, target.exten, target.priority
                pbx.bus.emit("ParkedCallTimeOut", "call,all", park_fields(pbx, parked))
                return "timeout", space
            if ev.kind == "hangup":
                pbx.bus.emit("ParkedCallGiveUp", "call,all", park_fields(pbx, parked))
                return "hangup", space
            if parked.retrieved_by is not None:
                ch.unset_var("PARKINGSLOT")
                return "retrieved", space
    finally:
        ch.stop_moh()
        parked.done = True
        pbx.parked.pop(space, None)


def retrieve(pbx: PBX, space: int, retriever: SimChannel | None = None) -> ParkedCall | None:
    """Take the call parked on `space` out of the lot (UnParkedCall); None if the space is empty."""
    parked = pbx.parked.get(space)
    if parked is None or parked.done or parked.retrieved_by is not None:
        return None
    parked.retrieved_by = retriever or parked.channel
    extra = retriever.block("Retriever") if retriever is not None else []
    pbx.bus.emit("UnParkedCall", "call,all", park_fields(pbx, parked, extra))
    parked.channel.wake()
    return parked


async def parked_call(sim: SimulatedAsterisk, ch: SimChannel, data: str) -> int:
    """ParkedCall([lot][,space]) on `ch` (the retriever): bridge it with the parked call until one hangs up."""
    pbx = ch.pbx
    lot_name, space_text = (separate_args(data, max_args=2) + ["", ""])[:2]
    space = int(space_text) if space_text.strip().isdigit() else None
    parked = pbx.parked.get(space) if space is not None else None
    if lot_name.strip() not in ("", pbx.config.parking.name):
        parked = None
    if parked is None or parked.done or parked.retrieved_by is not None:
        await media.play(ch, "pbx-invalidpark", "")
        return -1
    parkee = parked.channel
    bridge_id = str(uuid.UUID(int=pbx.rng.getrandbits(128)))
    pbx.bus.emit("BridgeCreate", "call,all", bridge_block(bridge_id, 0))
    sim.retrieve_parked(parked.space, talk=None, retriever=ch)  # UnParkedCall, the parkee leaves the lot
    if parkee.created <= ch.created:
        ch.linkedid = parkee.linkedid
    ch.bridge_id = parkee.bridge_id = bridge_id
    ch.bridge_peer, parkee.bridge_peer = parkee, ch
    for n, c in enumerate((parkee, ch), 1):
        pbx.bus.emit("BridgeEnter", "call,all", bridge_block(bridge_id, n) + c.block())
    left: list[bool] = []

    def leave() -> None:
        # Runs inside the hangup of either side (like talk(): the call's record is complete when it ends)
        if left:
            return
        left.append(True)
        parkee_first = (parkee.hungup or sim.goto_pending(parkee)) and not ch.hungup
        order = (parkee, ch) if parkee_first else (ch, parkee)
        for n, c in enumerate(order):
            c.bridge_id, c.bridge_peer = "", None
            pbx.bus.emit("BridgeLeave", "call,all", bridge_block(bridge_id, 1 - n) + c.block())
        pbx.bus.emit("BridgeDestroy", "call,all", bridge_block(bridge_id, 0))
        parkee.wake()  # its Park returns now (wait_retrieval_end)

    parkee.on_hangup(leave)
    ch.on_hangup(leave)
    parkee.on_hangup(ch.wake)
    # until one side hangs up or a Redirect takes either out of the bridge (the supervisor puts the call on hold)
    while not ch.hungup and not parkee.hungup and ch.redirect_to is None and not sim.goto_pending(parkee):
        await ch.next_event(None)
    leave()
    if ch.redirect_to is not None and not ch.hungup:
        pbx.redirected(ch)  # it goes on in the dialplan there (ivr-hold-wait ...)
    return -1

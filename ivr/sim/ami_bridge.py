"""A basic bridge made by the AMI `Bridge` action (Channel1/Channel2/Tone), as main/features.c action_bridge does it.

Rules for this file:
- The action answers at once ("Channels have been bridged"); errors as features.c words them: "Missing channel
  parameter in request", "Channel1 does not exist: <name>", "Channel2 does not exist: <name>" (channels are
  found by name prefix, like ast_channel_get_by_name_prefix).
- Events (inferred from features.c and the bridging core; no recording has an AMI Bridge): BridgeCreate, then
  each channel leaves its application (MusicOnHoldStop when music was playing) and enters (BridgeEnter, Channel1
  first); when one leaves (hangup or redirect) it gets BridgeLeave first, then the other, then BridgeDestroy.
- Each channel's own application loop joins and waits (one reader per channel inbox, channel.py); after the
  bridge each goes on at its next priority (ast_bridge_set_after_go_on), which dialplan.py runs.
- `Tone` (no / Channel1 / Channel2 / Both / yes) only plays the transfer sound: nothing a test can observe
  beyond its acceptance.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ivr.sim.bridging import bridge_block

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel
    from ivr.sim.pbx import PBX


def find_by_prefix(pbx: PBX, name: str) -> SimChannel | None:
    exact = pbx.find_channel(name)
    if exact is not None:
        return exact
    return next((c for n, c in pbx.channels.items() if n.startswith(name) and not c.hungup), None)


class AMIBridge:
    """Two channels taken out of their applications into one basic bridge."""

    def __init__(self, pbx: PBX, one: SimChannel, two: SimChannel) -> None:
        self.pbx = pbx
        self.id = str(uuid.UUID(int=pbx.rng.getrandbits(128)))
        self.pair = (one, two)
        self.members: list[SimChannel] = []
        self.left: set[str] = set()

    def offer(self) -> None:
        """BridgeCreate, then pull both channels out of what they run (their loops call `join`)."""
        self.pbx.bus.emit("BridgeCreate", "call,all", bridge_block(self.id, 0))
        for ch in self.pair:
            ch.pending_bridge = self
            ch.wake()

    def _peer(self, ch: SimChannel) -> SimChannel:
        return self.pair[1] if ch is self.pair[0] else self.pair[0]

    def _peer_gone(self, ch: SimChannel) -> bool:
        peer = self._peer(ch)
        return peer.hungup or peer.uniqueid in self.left

    async def join(self, ch: SimChannel) -> str:
        """`ch` enters and stays until it hangs up or is redirected ("hangup") or its partner left ("peer")."""
        ch.pending_bridge = None
        peer = self._peer(ch)
        self.members.append(ch)
        ch.bridge_id = self.id
        self.pbx.bus.emit("BridgeEnter", "call,all", bridge_block(self.id, len(self.members)) + ch.block())
        if peer in self.members:
            ch.bridge_peer, peer.bridge_peer = peer, ch
        peer.on_hangup(ch.wake)
        outcome = "peer"
        while not self._peer_gone(ch):
            ev = await ch.next_event(None)
            if ev is not None and ev.kind == "hangup":
                outcome = "hangup"
                break
        self.members.remove(ch)
        self.left.add(ch.uniqueid)
        ch.bridge_id = ""
        ch.bridge_peer = None
        if peer.bridge_peer is ch:
            peer.bridge_peer = None
        self.pbx.bus.emit("BridgeLeave", "call,all", bridge_block(self.id, len(self.members)) + ch.block())
        if self.members:
            peer.wake()
        elif peer.uniqueid in self.left or peer.hungup:
            self.pbx.bus.emit("BridgeDestroy", "call,all", bridge_block(self.id, 0))
        return outcome

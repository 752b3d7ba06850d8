"""Calling an agent and talking to it: the part of Dial, Queue, Redirect and transfers that they share.

Rules for this file:
- `ring_agent()` creates the agent's Local pair, emits DialBegin/DialEnd and waits for the agent's behaviour
  (answer after N s, busy, never answers, unavailable) or the caller hanging up.
- `talk()` bridges the caller with the answered agent leg (BridgeEnter/BridgeLeave) until the agent hangs up
  (its `talk` time, or an AMI Hangup of its channel), the caller hangs up, or a transfer/redirect moves the
  caller elsewhere (`ch.transfer_to`).
- Every wait goes through the caller's channel inbox (clock rules of clock.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.sim.model import AgentSpec

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession
    from ivr.sim.channel import SimChannel


@dataclass
class Ringing:
    status: str  # ANSWER | BUSY | NOANSWER | CHANUNAVAIL | CANCEL
    leg: SimChannel | None = None  # the agent's ;1 leg when answered
    other: SimChannel | None = None  # the agent's ;2 leg


async def ring_agent(
    ch: SimChannel,
    target: str,
    timeout: float | None,
    on_ringing: Callable[[], None] | None = None,
    on_answer: Callable[[SimChannel], None] | None = None,
) -> Ringing:
    """`on_ringing` runs when the agent starts ringing (not for agents that are busy or answer at once);
    `on_answer(leg)` when it answers, before DialEnd (app_dial sets DIALSTATUS ... there, agi-06.ami)."""
    pbx = ch.pbx
    two: SimChannel | None
    agent, exten, context = pbx.resolve_agent(target)
    if agent is None or agent.unavailable:
        if agent is None and target.lower().startswith("local/"):
            # Asterisk creates the Local pair, finds no extension and emits no DialBegin/DialEnd
            one, two = pbx.local_pair(exten, context, linkedid=ch.linkedid)
            two.hangup(0)
            one.hangup(0)
        return Ringing("CHANUNAVAIL")
    if target.lower().startswith("local/"):
        one, two = pbx.local_pair(
            exten,
            context,
            linkedid=ch.linkedid,
            caller_num=ch.caller_num,
            caller_name=ch.caller_name,
            language=ch.language,
        )
    else:  # PJSIP/1001, SIP/x ...: one outgoing channel to the endpoint
        one = pbx.outbound_channel(
            target.split("/", 1)[0],
            exten,
            linkedid=ch.linkedid,
            caller_num=ch.caller_num,
            caller_name=ch.caller_name,
            language=ch.language,
        )
        two = None
    one.connected_num, one.connected_name = ch.caller_num, ch.caller_name
    dial_string = target.split("/", 1)[-1]
    ch.emit("DialBegin", "call,all", one.block("Dest") + [("DialString", dial_string)])
    if on_ringing is not None and not agent.busy and agent.answer_after != 0:
        on_ringing()
    status = await _ring(ch, agent, timeout)
    if status != "ANSWER":
        ch.emit("DialEnd", "call,all", one.block("Dest") + [("DialStatus", status)])
        if two is not None:
            two.hangup(17 if status == "BUSY" else 0)
            one.hangup(0)
        else:
            one.hangup(17 if status == "BUSY" else 0)
        return Ringing(status)
    one.set_state(6)
    if two is not None:
        two.set_state(6)
    if on_answer is not None:
        on_answer(one)
    ch.emit("DialEnd", "call,all", one.block("Dest") + [("DialStatus", "ANSWER")])
    return Ringing("ANSWER", one, two)


async def _ring(ch: SimChannel, agent: AgentSpec, timeout: float | None) -> str:
    if agent.busy:
        return "BUSY"
    clock = ch.pbx.clock
    waits = [t for t in (agent.answer_after, timeout) if t is not None]
    deadline = clock.now() + min(waits) if waits else None
    while True:
        ev = await ch.next_event(deadline)
        if ev is None:
            if agent.answer_after is not None and (timeout is None or agent.answer_after < timeout):
                return "ANSWER"
            return "NOANSWER"
        if ev.kind == "hangup":
            return "CANCEL"


async def talk(
    ch: SimChannel,
    leg: SimChannel,
    other: SimChannel | None,
    seconds: float | None,
    on_enter: Callable[[], None] | None = None,
    on_end: Callable[[str], None] | None = None,
    on_caller_gone: Callable[[], None] | None = None,
) -> str:
    """Bridge `ch` and `leg`; returns "agent" (agent hung up), "caller" (caller hung up) or "transfer".

    The agent's leg enters first (agi-06/agi-07 .ami: BridgeEnter `BridgeNumChannels: 1` is
    `Local/answer2s@agents-...;1`); whoever hangs up leaves first.  `on_enter` runs between the two BridgeEnter
    events, `on_end(outcome)` before the BridgeLeave events (app_queue's AgentComplete and QueueMemberStatus,
    agi-07.ami), and `on_caller_gone` after the caller left and before the agent's leg leaves (the application
    sets its variables then: agi-06.ami, caller hangup while bridged)."""
    pbx = ch.pbx
    clock = pbx.clock
    bridge_id = str(uuid.UUID(int=pbx.rng.getrandbits(128)))
    ch.bridge_peer, leg.bridge_peer = leg, ch
    ch.bridge_id = leg.bridge_id = bridge_id
    for n, c in enumerate((leg, ch), 1):
        pbx.bus.emit("BridgeEnter", "call,all", bridge_block(bridge_id, n) + c.block())
        if n == 1 and on_enter is not None:
            on_enter()
    leg.on_hangup(ch.wake)
    deadline = clock.now() + seconds if seconds is not None else None
    outcome = "agent"
    while True:
        ev = await ch.next_event(deadline)
        if ev is None:
            outcome = "agent"
            break
        if ev.kind == "hangup":
            outcome = "caller"  # hung up, or redirected out of the bridge (an async goto)
            break
        if leg.hungup or leg.redirect_to is not None:
            outcome = "agent"
            break
        if ch.transfer_to is not None:
            outcome = "transfer"
            break
    if on_end is not None:
        on_end(outcome)
    ch.bridge_peer = leg.bridge_peer = None
    ch.bridge_id = leg.bridge_id = ""
    order = (ch, leg) if outcome == "caller" else (leg, ch)
    for n, c in enumerate(order):
        pbx.bus.emit("BridgeLeave", "call,all", bridge_block(bridge_id, 1 - n) + c.block())
        if n == 0 and outcome == "caller" and on_caller_gone is not None:
            on_caller_gone()
    if leg.redirect_to is not None and not leg.hungup:
        # a (Dual) Redirect took the agent's leg out too: it goes on in the dialplan, its Local half with it
        leg.pbx.redirected(leg)
        return outcome
    for party in (leg, other):
        if party is not None and not party.hungup:
            party.hangup(16)
    return outcome


async def talk_with(s: AGISession, ring: Ringing, target: str, on_caller_gone: Callable[[], None] | None = None) -> str:
    """Talk to the answered agent of an AGI call; follow transfers to new targets.  Returns the last talk()
    outcome."""
    ch = s.channel
    while True:
        s.sim.note_destination(s, "agent:" + target)
        agent, _, _ = ch.pbx.resolve_agent(target)
        assert ring.leg is not None
        outcome = await talk(ch, ring.leg, ring.other, agent.talk if agent else None, on_caller_gone=on_caller_gone)
        if outcome != "transfer" or ch.transfer_to is None:
            return outcome
        target, ch.transfer_to = ch.transfer_to, None
        ring = await ring_agent(ch, target, None)
        s.sim.note_dial(s, target, ring.status)
        if ring.status != "ANSWER":
            return "caller" if ring.status == "CANCEL" else "agent"


def bridge_block(bridge_id: str, count: int) -> list[tuple[str, str]]:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]

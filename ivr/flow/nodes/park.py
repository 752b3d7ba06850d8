"""`park`: park the caller in a lot; comeback via the dialplan.

Rules: before Park() the node sets the channel variable IVR_COMEBACK=<flow>:<node>; the lot's
parkedcallstimeout context reads it and re-enters the service at agi://.../<flow>?node=<node> (docs: dialplan).
Asterisk moves a timed-out parked call to that context, which ends this AGI session (HANGUP), so the flow ends
here either way with outcome "parked": "timeout" (comeback follows in a new session) or "retrieved".
"""
from __future__ import annotations

from ivr.flow.context import CallContext, Finish
from ivr.flow.model import ParkNode
from ivr.flow.nodes import register

COMEBACK_VARIABLE = "IVR_COMEBACK"


@register("park")
async def run(node: ParkNode, ctx: CallContext) -> Finish:
    if node.announcement:
        await ctx.play(node.announcement)
    comeback = ctx.qualify(node.comeback) if node.comeback else ""
    if comeback:
        await ctx.channel.set_variable(COMEBACK_VARIABLE, comeback)
    ctx.outcome, ctx.end_target = "parked", f"park:{node.lot}"
    ctx.emit("park", f"parked in lot {node.lot} for {node.timeout:g} s"
             + (f", comeback to {comeback}" if comeback else ""), lot=node.lot, comeback=comeback)
    result = await ctx.channel.park(node.lot, node.timeout, comeback)
    ctx.emit("park", f"park ended: {result.status}" + (f" (space {result.space})" if result.space else ""),
             status=result.status)
    return Finish("parked", "next", result.status, ctx.end_target)

"""`park`: park the caller in a lot; comeback via the dialplan.

Rules: before Park() the node sets the channel variable IVR_COMEBACK=<flow>:<node> ("" without `comeback`) and
parks with the comeback location `<park_comeback_context>,s,1` (setting, default `ivr-park-comeback`), whose
dialplan reads IVR_COMEBACK and re-enters the service at agi://.../<flow>?node=<node>, or sends the caller to the
operator fallback when it is empty (dialplans/extensions_ivr.conf). The lot's own comeback settings do not matter.
Asterisk moves a timed-out parked call to that context, which ends this AGI session (HANGUP), so the flow ends
here either way with outcome "parked": "timeout" (comeback follows in a new session) or "retrieved".
"""

from __future__ import annotations

from ivr import dialplan
from ivr.flow.compiled import ParkNode
from ivr.flow.context import CallContext, Finish
from ivr.flow.nodes import register

COMEBACK_VARIABLE = dialplan.COMEBACK


@register("park")
async def run(node: ParkNode, ctx: CallContext) -> Finish:
    if node.announcement:
        await ctx.play(node.announcement)
    comeback = ctx.qualify(node.comeback) if node.comeback else ""
    # Always set (also to ""): a value left by an earlier park in this call must not send the caller back there.
    await ctx.channel.set_variable(COMEBACK_VARIABLE, comeback)
    ctx.outcome, ctx.end_target = "parked", f"park:{node.lot}"
    ctx.emit(
        "park",
        f"parked in lot {node.lot} for {node.timeout:g} s" + (f", comeback to {comeback}" if comeback else ""),
        lot=node.lot,
        comeback=comeback,
    )
    result = await ctx.channel.park(node.lot, node.timeout, ctx.settings.park_comeback_context)
    ctx.emit(
        "park",
        f"park ended: {result.status}" + (f" (space {result.space})" if result.space else ""),
        status=result.status,
    )
    return Finish("parked", "next", result.status, ctx.end_target)

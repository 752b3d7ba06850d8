"""`hangup`: play the goodbye prompts (no barge-in: a goodbye is short and final) and hang up."""

from __future__ import annotations

from ivr.flow.compiled import HangupNode
from ivr.flow.context import CallContext, Finish
from ivr.flow.nodes import register


@register("hangup")
async def run(node: HangupNode, ctx: CallContext) -> Finish:
    if node.prompts:
        await ctx.play(node.prompts)
    ctx.emit("hangup", "the IVR hangs up")
    await ctx.channel.hangup()
    return Finish(None, "next", "hung up by the flow", ctx.end_target or "hangup")

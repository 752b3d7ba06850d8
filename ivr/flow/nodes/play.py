"""`play`: play prompts in order; with barge_in a digit stops playback and is kept as type-ahead for the next
node that collects digits."""

from __future__ import annotations

from ivr.flow.compiled import PlayNode
from ivr.flow.context import ALL_DIGITS, CallContext, Goto
from ivr.flow.nodes import register


@register("play")
async def run(node: PlayNode, ctx: CallContext) -> Goto:
    digit = await ctx.play(node.prompts, ALL_DIGITS if node.barge_in else "")
    if digit:
        ctx.pending_digits += digit
        return Goto(node.next, "next", f"interrupted by {digit}")
    return Goto(node.next)

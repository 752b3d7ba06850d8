"""`hold`: music on hold in slices of `every` seconds with the announcement between slices, up to `max`."""

from __future__ import annotations

from ivr.flow.compiled import HoldNode
from ivr.flow.context import CallContext, Goto
from ivr.flow.nodes import register

MIN_SLICE = 1.0  # an `every` of 0 must not turn into a busy loop of announcements


@register("hold")
async def run(node: HoldNode, ctx: CallContext) -> Goto:
    held = 0.0
    every = max(node.every, MIN_SLICE)
    ctx.emit("hold", f"music on hold ({node.music_class}) for up to {node.max:g} s", music_class=node.music_class)
    while held < node.max:
        chunk = min(every, node.max - held)
        await ctx.channel.music_on_hold(node.music_class, chunk)
        held += chunk
        if held < node.max and node.announcement:
            await ctx.play(node.announcement)
    return Goto(node.next, "next", f"held {held:g} s")

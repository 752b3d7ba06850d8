"""`goto`: jump to another node (possibly `flow:node` in another flow)."""

from __future__ import annotations

from ivr.flow.compiled import GotoNode
from ivr.flow.context import CallContext, Goto
from ivr.flow.nodes import register


@register("goto")
async def run(node: GotoNode, ctx: CallContext) -> Goto:
    return Goto(node.target)

"""`set`: assign variables from `${name}` templates (no code runs); optionally mirror them as channel variables,
whose names must be plain identifiers (values are sent quoted by the channel)."""
from __future__ import annotations

from ivr.flow.context import VARIABLE_NAME, CallContext, EngineError, Goto
from ivr.flow.model import SetNode
from ivr.flow.nodes import register


@register("set")
async def run(node: SetNode, ctx: CallContext) -> Goto:
    # All templates see the values from before this node, so the order of keys does not matter.
    values = {name: ctx.render(template) for name, template in node.variables.items()}
    for name, value in values.items():
        if not VARIABLE_NAME.fullmatch(name):
            raise EngineError(f"set node {ctx.ref}: {name!r} is not a variable name; use letters, digits and _")
        ctx.set_var(name, value)
        if node.channel:
            await ctx.channel.set_variable(name, value)
    return Goto(node.next)

"""`set`: assign variables from `${name}` templates (no code runs); optionally mirror them as channel variables,
whose names must be plain identifiers (values are sent quoted by the channel). Values are data: control
characters become spaces and they are cut to 1024 characters (`clean_value`), so a lookup answer with a NUL or
a few kilobytes of text cannot make SET VARIABLE fail and end the call."""

from __future__ import annotations

from ivr.flow.compiled import SetNode
from ivr.flow.context import VARIABLE_NAME, CallContext, EngineError, Goto, clean_value
from ivr.flow.nodes import register


@register("set")
async def run(node: SetNode, ctx: CallContext) -> Goto:
    # All templates see the values from before this node, so the order of keys does not matter.
    values = {name: clean_value(ctx.render(template)) for name, template in node.variables.items()}
    for name, value in values.items():
        if not VARIABLE_NAME.fullmatch(name):
            raise EngineError(f"set node {ctx.ref}: {name!r} is not a variable name; use letters, digits and _")
        ctx.set_var(name, value)
        if node.channel:
            await ctx.channel.set_variable(name, value)
    return Goto(node.next)

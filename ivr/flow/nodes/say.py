"""`say`: read a templated value to the caller as digits, a number, or letters.

Rules: digits mode says only the digits in the value; number mode needs an integer (anything else is skipped
with a trace event, because a CRM answer must not end the call); alpha mode plays Asterisk's core
`letters/<c>` and `digits/<d>` sounds, one per character, skipping anything else.
"""
from __future__ import annotations

from ivr.flow.context import CallContext, Goto
from ivr.flow.model import SayNode
from ivr.flow.nodes import register


@register("say")
async def run(node: SayNode, ctx: CallContext) -> Goto:
    value = ctx.render(node.value)
    if node.mode == "digits":
        await ctx.say_digits(value)
    elif node.mode == "number":
        text = value.strip()
        if text.lstrip("-").isdigit():
            ctx.emit("prompt", f"(says number {int(text)})", say="number", value=text)
            await ctx.channel.say_number(int(text))
        else:
            ctx.emit("error", f"not saying {value!r}: not a whole number", say="number")
            return Goto(node.next, "next", "value is not a number")
    else:
        files = []
        for char in value.lower():
            if char.isdigit() and char.isascii():
                files.append(f"digits/{char}")
            elif "a" <= char <= "z":
                files.append(f"letters/{char}")
        if files:
            ctx.emit("prompt", f"(spells {value!r})", say="alpha", value=value)
            await ctx.channel.play(files, "")
    return Goto(node.next)

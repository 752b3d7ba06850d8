"""`say`: read a templated value to the caller as digits, a number, or letters.

Rules: a CRM answer must never end the call, so odd values are skipped with a trace event, never raised.
Digits mode says only the ASCII digits in the value (at most MAX_SAY_CHARS of them); number mode needs a whole
number that fits SAY NUMBER's C int (Asterisk reads it with %d), anything else is skipped; alpha mode plays
Asterisk's core `letters/<c>` and `digits/<d>` sounds, one per character (at most MAX_SAY_CHARS), skipping
anything else.
"""

from __future__ import annotations

import re

from ivr.flow.compiled import SayNode
from ivr.flow.context import CallContext, Goto
from ivr.flow.nodes import register

MAX_SAY_CHARS = 64  # longer is not something a caller can follow (and would be minutes of audio)
INT_MAX = 2**31 - 1  # SAY NUMBER's %d
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,10}")


@register("say")
async def run(node: SayNode, ctx: CallContext) -> Goto:
    value = ctx.render(node.value)
    if node.mode == "digits":
        digits = "".join(c for c in value if c.isascii() and c.isdigit())
        if len(digits) > MAX_SAY_CHARS:
            ctx.emit("error", f"not saying {len(digits)} digits: more than {MAX_SAY_CHARS}", say="digits")
            return Goto(node.next, "next", "value is too long to say")
        await ctx.say_digits(digits)
    elif node.mode == "number":
        text = value.strip()
        if _WHOLE_NUMBER.fullmatch(text) and abs(int(text)) <= INT_MAX:
            ctx.emit("prompt", f"(says number {int(text)})", say="number", value=text)
            await ctx.channel.say_number(int(text))
        else:
            ctx.emit("error", f"not saying {value[:40]!r}: not a whole number up to {INT_MAX}", say="number")
            return Goto(node.next, "next", "value is not a number")
    else:
        files = []
        for char in value.lower()[:MAX_SAY_CHARS]:
            if char.isdigit() and char.isascii():
                files.append(f"digits/{char}")
            elif "a" <= char <= "z":
                files.append(f"letters/{char}")
        if files:
            ctx.emit("prompt", f"(spells {value[:MAX_SAY_CHARS]!r})", say="alpha", value=value[:MAX_SAY_CHARS])
            await ctx.channel.play(files, "")
    return Goto(node.next)

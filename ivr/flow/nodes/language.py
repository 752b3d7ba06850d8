"""`language`: the caller picks a language by digit; it becomes the channel language and the prompt set.

No choice (or only wrong keys) after the retries -> the node's default or the flow's default language, so a
caller who does not understand the question still gets through.
"""

from __future__ import annotations

from ivr.flow.compiled import LanguageNode
from ivr.flow.context import ALL_DIGITS, CallContext, Goto
from ivr.flow.nodes import register


@register("language")
async def run(node: LanguageNode, ctx: CallContext) -> Goto:
    for attempt in range(node.retries + 1):
        digit = await ctx.offer(node.prompts, ALL_DIGITS)
        if digit is None:
            digit = await ctx.next_digit(node.timeout)
        if digit in node.options:
            language = node.options[digit]
            await ctx.set_language(language)
            return Goto(node.next, "valid", f"chose {language}")
        ctx.emit(
            "invalid" if digit else "no_input",
            f"{'key ' + digit if digit else 'no choice'} ({attempt + 1} of {node.retries + 1})",
        )
    language = node.default or ctx.flow.language
    await ctx.set_language(language)
    return Goto(node.next, "exhausted", f"no choice; default {language}")

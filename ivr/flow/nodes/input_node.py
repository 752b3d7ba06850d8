"""`input`: collect digits into a variable (min/max length, terminator, regex, read-back + confirm, retries).

Rules: no input, a bad length, a regex mismatch and a "no" to the read-back all count against the same `retries`;
the invalid prompts precede the question again (not after a "no", which is the caller's own choice). Digits typed
past `max_length` make the entry too long (`CallContext.collect` reads them to the entry's end).
Exhausted -> `on_failure`. The digits become a variable only once accepted.
"""

from __future__ import annotations

import re

from ivr.flow.compiled import InputNode
from ivr.flow.context import ALL_DIGITS, CallContext, Goto
from ivr.flow.nodes import register


def problem_with(node: InputNode, digits: str) -> str | None:
    if not digits and node.min_length > 0:
        return "no input"
    if len(digits) < node.min_length:
        return f"too short ({len(digits)} < {node.min_length})"
    if len(digits) > node.max_length:
        return f"too long ({len(digits)} > {node.max_length})"
    if node.pattern is not None and not re.fullmatch(node.pattern, digits):
        return "does not match the expected format"
    return None


@register("input")
async def run(node: InputNode, ctx: CallContext) -> Goto:
    failures = 0
    prompts = list(node.prompts)
    while True:
        digits = await ctx.collect(
            prompts,
            max_length=node.max_length,
            terminator=node.terminator,
            timeout=node.timeout,
            inter_digit_timeout=node.inter_digit_timeout,
        )
        problem = problem_with(node, digits)
        rejected = False
        if problem is None and node.confirm:
            answer = await ctx.say_digits(digits, ALL_DIGITS)
            if answer is None:
                answer = await ctx.offer(node.confirm_prompts, ALL_DIGITS)
            if answer is None:
                answer = await ctx.next_digit(ctx.settings.confirm_wait)
            if answer != node.confirm_yes:
                problem, rejected = "not confirmed", True
        if problem is None:
            ctx.set_var(node.variable, digits)
            return Goto(node.next, "valid", f"{node.variable} accepted")
        failures += 1
        ctx.emit(
            "invalid" if digits else "no_input",
            f"{problem} ({failures} of {node.retries + 1})",
            problem=problem,
            count=failures,
        )
        if failures > node.retries:
            return Goto(node.on_failure, "exhausted", f"{problem}; {failures} attempts")
        prompts = list(node.prompts) if rejected else list(node.invalid_prompts) + list(node.prompts)

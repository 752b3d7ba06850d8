"""`route`: the first rule whose condition holds wins; otherwise `else`.

Conditions: open/closed/holiday (a schedule of this flow, evaluated at the engine clock's time), caller (regex
searched in the caller ID number), variable (equals / matches = regex search / in), language (the caller's
current language). An undefined schedule is a flow error, never silently "closed".
`ivr.flow.hours` (and zoneinfo) is imported when a rule first reads a schedule: classic AGI imports every node
kind before its first command, and most calls reach their first hours rule, if any, after it (docs/agi.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ivr.flow.compiled import RouteNode, RouteRule
from ivr.flow.context import CallContext, EngineError, Goto
from ivr.flow.nodes import register

if TYPE_CHECKING:
    from ivr.flow.hours import HoursStatus


def _hours(ctx: CallContext, name: str) -> HoursStatus:
    from ivr.flow.hours import HoursError, schedule_status

    schedule = ctx.flow.schedules.get(name)
    if schedule is None:
        raise EngineError(f"route {ctx.ref}: schedule {name!r} is not defined in flow {ctx.flow.name!r}")
    try:
        return schedule_status(schedule, ctx.now(), default_timezone=ctx.flow.timezone, base_dir=ctx.base_dir())
    except HoursError as exc:
        raise EngineError(f"route {ctx.ref}: schedule {name!r}: {exc}") from None


def evaluate(rule: RouteRule, ctx: CallContext) -> tuple[bool, str, str]:
    """(holds, exit reason, words for the trace)."""
    if rule.open:
        st = _hours(ctx, rule.open)
        state = "open" if st.open else "closed"
        return st.open, state, f"{rule.open} is {state} ({st.reason})"
    if rule.closed:
        st = _hours(ctx, rule.closed)
        return (
            (not st.open),
            ("open" if st.open else "closed"),
            f"{rule.closed} is {'open' if st.open else 'closed'} ({st.reason})",
        )
    if rule.holiday:
        st = _hours(ctx, rule.holiday)
        return st.holiday, "closed" if st.holiday else "next", f"{rule.holiday} holiday: {st.holiday}"
    if rule.caller is not None:
        holds = re.search(rule.caller, ctx.info.caller_id) is not None
        return holds, "next", f"caller matches {rule.caller!r}: {holds}"
    if rule.language:
        holds = ctx.language == rule.language
        return holds, "next", f"language {ctx.language} == {rule.language}: {holds}"
    assert rule.variable is not None
    value = ctx.variables.get(rule.variable, "")
    if rule.equals is not None:
        holds = value == rule.equals
        how = f"== {rule.equals!r}"
    elif rule.matches is not None:
        holds = re.search(rule.matches, value) is not None
        how = f"matches {rule.matches!r}"
    else:
        holds = value in (rule.in_ or [])
        how = f"in {rule.in_!r}"
    return holds, "next", f"{rule.variable}={value!r} {how}: {holds}"


@register("route")
async def run(node: RouteNode, ctx: CallContext) -> Goto:
    for index, rule in enumerate(node.rules):
        holds, reason, words = evaluate(rule, ctx)
        ctx.emit("route", f"rule {index + 1}: {words}", rule=index, holds=holds)
        if holds:
            return Goto(rule.goto, reason, f"rule {index + 1}: {words}")
    ctx.emit("route", "no rule matched: else")
    return Goto(node.else_, "next", "else")

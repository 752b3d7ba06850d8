"""`callback`: capture a number to call back and store the request durably.

Rules: the caller ID is offered first when it looks like a phone number (read back digit by digit); the caller
presses 1 to confirm or 2 (or any other key) to enter another number, which is then read back and confirmed
the same way. The number entry ends with `#` (also right after a full-length number: `CallContext.collect` takes
that `#`, so it cannot cut the offer short and mean "another number"). Silence and bad numbers count against
`retries`; exhausted -> `on_failure` (or the call ends).
A usable number has `min_length`-`max_length` ASCII digits (after an optional `+`) and fully matches the number
pattern: the node's `number_pattern`, else the service's (`callbacks.number_pattern`, default
`^\\+?[1-9][0-9]{6,14}$`), so premium-rate or short numbers are never stored, whether they came as the caller ID
(then not offered: the caller is asked for a number) or were typed (then `invalid_prompts`, and asked again).
Stored via `storage.add_callback`; the callback scheduler does the dialling. When the database refuses the
request (down, lost), the failure is counted (ivr_storage_failures_total{action="callback_request"}) and the caller
goes to `on_failure` (the same branch as "no usable number"); without it the call ends as an error.
"""

from __future__ import annotations

from ivr.flow.compiled import CallbackNode
from ivr.flow.context import ALL_DIGITS, CallContext, EngineError, Finish, Goto
from ivr.flow.nodes import register
from ivr.metric_batch import BATCH
from ivr.telephony import is_callback_number

CONFIRM, OTHER = "1", "2"


def _usable(node: CallbackNode, number: str, pattern: str) -> bool:
    digits = number[1:] if number.startswith("+") else number
    return (
        digits.isdigit()
        and digits.isascii()
        and node.min_length <= len(digits) <= node.max_length
        and is_callback_number(number, pattern)
    )


@register("callback")
async def run(node: CallbackNode, ctx: CallContext) -> Goto | Finish:
    if ctx.storage is None:
        raise EngineError(f"callback {ctx.ref}: no storage configured in the service")
    pattern = node.number_pattern or ctx.settings.callback_number_pattern
    caller = ctx.info.caller_id.strip()
    number = ""
    if node.use_caller_id and caller:
        if _usable(node, caller, pattern):
            number = caller
        else:
            ctx.emit("callback", f"caller ID {caller[:32]!r} cannot be called back; asking for a number")
    failures = 0
    while failures <= node.retries:
        if not number:
            entered = await ctx.collect(
                node.number_prompts,
                max_length=node.max_length,
                terminator="#",
                timeout=ctx.settings.confirm_wait + 1,
                inter_digit_timeout=3.0,
            )
            if _usable(node, entered, pattern):
                number = entered
            else:
                failures += 1
                ctx.emit(
                    "invalid" if entered else "no_input",
                    f"not a usable number ({failures} of {node.retries + 1})",
                    count=failures,
                )
                if entered and node.invalid_prompts and failures <= node.retries:
                    await ctx.play(node.invalid_prompts)
            continue
        answer = await ctx.offer(node.prompts, ALL_DIGITS)
        if answer is None:
            answer = await ctx.say_digits(number, ALL_DIGITS)
        if answer is None:
            answer = await ctx.offer(node.confirm_prompts, ALL_DIGITS)
        if answer is None:
            answer = await ctx.next_digit(ctx.settings.confirm_wait)
        if answer == CONFIRM:
            from ivr.storage import CallbackRequest, StorageError

            try:
                request_id = await ctx.storage.add_callback(
                    CallbackRequest(
                        number=number,
                        queue=node.queue,
                        caller_name=ctx.info.caller_name,
                        source_call_id=ctx.info.uniqueid,
                        language=ctx.language,
                        requested_at=ctx.now(),
                    )
                )
            except StorageError as exc:
                BATCH.record("STORAGE_FAILURES", ("callback_request",))
                what = f"callback {ctx.ref}: the request could not be stored: {exc}"
                if node.on_failure is None:
                    raise EngineError(what) from exc
                ctx.emit("callback", what)
                return Goto(node.on_failure, "storage_error", "request not stored")
            BATCH.record("CALLBACKS", (node.queue, "requested"))
            ctx.outcome, ctx.end_target = "callback", f"callback:{node.queue}"
            ctx.variables["callback_id"] = str(request_id)
            ctx.emit("callback", f"callback {request_id} to {number} requested for {node.queue}", id=request_id)
            return Goto(node.next, "valid", f"callback {request_id}")
        if answer is None:
            failures += 1
            ctx.emit("no_input", f"no confirmation ({failures} of {node.retries + 1})", count=failures)
        else:
            ctx.emit("choice", "caller wants to enter another number")
            ctx.tick()  # bounded: a caller cannot go round this loop for ever
            number = ""
    if node.on_failure:
        return Goto(node.on_failure, "exhausted", "no usable callback number")
    return Finish(None, "exhausted", "no usable callback number", "hangup:exhausted")

"""`transfer`: to an agent extension (via the service's dial template), a full dial string, or a queue.

Rules:
- The target is checked first (see below), then the announcement is played (no barge-in), then the caller ID
  name gets the prefix (so the agent sees "Sales: Ann"), then recording starts if the node asks for it and the
  flow's policy allows.
- `extension`, `dial` and `queue` are templates. Every value substituted into them (a CRM answer, a query
  parameter, `${dialed}`) must be a plain extension (ivr.telephony: 1-40 of letters, digits, `*#+_-`; for a
  queue letters, digits, `_-`): `&`, `/`, `@` and `:` are allowed only in the flow's literal text, so a lookup
  answer `1001&PJSIP/00900...@trunk` can never add a dial target. An extension must also come out as a plain
  extension as a whole. A refused value is logged and counted (result "refused") and the transfer fails like
  an unreachable target: on_unavailable (queue: on_unavailable, then on_timeout), else `next`, else "error".
- DIALSTATUS: ANSWER -> transferred (then `next` if the caller is still there, else the call ends);
  BUSY -> on_busy, NOANSWER -> on_no_answer, CHANUNAVAIL/CONGESTION -> on_unavailable, CANCEL -> caller hung up.
  QUEUESTATUS: ANSWERED/CONTINUE -> transferred; TIMEOUT/JOINEMPTY/LEAVEEMPTY -> on_timeout;
  FULL/JOINUNAVAIL/LEAVEUNAVAIL -> on_unavailable (else on_timeout); ABANDONED -> caller hung up.
- Only an answer makes the call "transferred". A caller who hangs up while the agent's phone rings (CANCEL) or
  while waiting in the queue (ABANDONED) is counted with that result and ends the call as "abandoned"; a caller
  who hangs up after the agent answered ends it as "transferred", recorded at this node.
- A failure without its branch goes to `next`; without `next` the call ends with outcome "error" (the
  validator warns), never in silence without a record.
- Metric `target` is the configured extension/queue text, never the dialled digits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from ivr.flow.channel import QUEUE_ABANDONED, QUEUE_ANSWERED, CallerHangup
from ivr.flow.compiled import TransferNode
from ivr.flow.context import CallContext, EngineError, Finish, Goto
from ivr.flow.nodes import register
from ivr.flow.templates import render
from ivr.metric_batch import BATCH
from ivr.telephony import is_extension, is_queue_name
from ivr.transfer_results import transfer_result

log = logging.getLogger(__name__)

_DIAL_STRING = re.compile(r"[A-Za-z0-9*#+_\-/@.:&]{1,200}")

DIAL_BRANCH = {
    "BUSY": "on_busy",
    "NOANSWER": "on_no_answer",
    "CHANUNAVAIL": "on_unavailable",
    "CONGESTION": "on_unavailable",
}
QUEUE_BRANCH = {
    "TIMEOUT": ("on_timeout",),
    "JOINEMPTY": ("on_timeout",),
    "LEAVEEMPTY": ("on_timeout",),
    "FULL": ("on_unavailable", "on_timeout"),
    "JOINUNAVAIL": ("on_unavailable", "on_timeout"),
    "LEAVEUNAVAIL": ("on_unavailable", "on_timeout"),
}


class TransferRefused(EngineError):
    """A value substituted into the transfer target is not a plain extension/queue name (or the result is not)."""


def render_target(
    template: str, variables: Mapping[str, object], allowed: Callable[[str], bool], what: str, kind: str = "extension"
) -> str:
    """Render `template`, refusing any substituted value that `allowed(value)` rejects (empty values included)."""
    refused: list[str] = []

    def check(value: str) -> str:
        if not allowed(value):
            refused.append(value)
        return value

    result = render(template, variables, encode=check)
    if refused:
        raise TransferRefused(
            f"{what} {template!r}: value {refused[0][:60]!r} is not a plain {kind}; transfer "
            "refused (check the lookup answer or parameter that set it)"
        )
    return result


_SAMPLE_VALUE = "1"  # a plain value every placeholder could hold


def target_problem(field: str, template: str) -> str:
    """Why `template` (the node's `extension` or `dial`) can never pass the run-time checks, or "". A queue's
    own text is the queue's name in queues.conf and is not restricted (only values substituted into it are)."""
    sample = render(template, {}, encode=lambda _: _SAMPLE_VALUE, strict=False)
    if field == "extension" and not is_extension(sample):
        return "can never be a plain extension (letters, digits, *#+_-)"
    if field == "dial" and not _DIAL_STRING.fullmatch(sample):
        return "has characters Dial() would misread"
    return ""


def dial_string(template: str, extension: str) -> str:
    """The service's dial template with the extension: `PJSIP/{extension}` (settings) or `PJSIP/${extension}`."""
    if "${" in template:
        return render(template, {"extension": extension})
    return template.replace("{extension}", extension)


def destination(node: TransferNode, ctx: CallContext) -> tuple[str, str]:
    """(Dial() destination, end target words)."""
    if node.extension:
        extension = render_target(node.extension, ctx.variables, is_extension, f"transfer {ctx.ref}: extension")
        if not is_extension(extension):
            raise TransferRefused(f"transfer {ctx.ref}: extension {extension[:60]!r} is not a plain extension")
        return dial_string(ctx.settings.dial_template, extension), f"extension:{extension}"
    assert node.dial is not None
    dial = render_target(node.dial, ctx.variables, is_extension, f"transfer {ctx.ref}: dial")
    if not _DIAL_STRING.fullmatch(dial):
        raise TransferRefused(f"transfer {ctx.ref}: dial string {dial[:80]!r} has characters Dial() would misread")
    return dial, f"dial:{dial}"


def queue_name(node: TransferNode, ctx: CallContext) -> str:
    assert node.queue is not None
    return render_target(node.queue, ctx.variables, is_queue_name, f"transfer {ctx.ref}: queue", "queue name")


def _refused(node: TransferNode, ctx: CallContext, metric_target: str, exc: TransferRefused) -> Goto | Finish:
    log.warning("call %r: %s", ctx.info.uniqueid, exc)
    BATCH.record("TRANSFERS", (ctx.flow.name, metric_target, "refused"))
    ctx.emit("transfer", str(exc), status="REFUSED")
    names = ("on_unavailable", "on_timeout") if node.queue else ("on_unavailable",)
    step = _branch(node, names, "REFUSED")
    if isinstance(step, Finish):
        return Finish("error", "error", str(exc), "failed:refused")
    return step


def _branch(node: TransferNode, names: tuple[str, ...], status: str) -> Goto | Finish:
    for name in names:
        target = getattr(node, name)
        if target:
            return Goto(target, "next", f"{status} -> {name}")
    if node.next:
        return Goto(node.next, "next", f"{status} -> next")
    return Finish("error", "error", f"{status} and no branch for it", f"failed:{status.lower()}")


def _answered(
    node: TransferNode, ctx: CallContext, status: str, end_target: str, caller_hung_up: bool
) -> Goto | Finish:
    ctx.outcome, ctx.end_target = "transferred", end_target
    if caller_hung_up:  # the conversation ended with the caller hanging up: the call ends here, transferred
        raise CallerHangup(f"the caller hung up after the agent answered ({status})")
    return Goto(node.next, "next", status) if node.next else Finish("transferred", "next", status, end_target)


@register("transfer")
async def run(node: TransferNode, ctx: CallContext) -> Goto | Finish:
    metric_target = node.queue or node.extension or node.dial or ""
    try:  # checked first: a refused target plays no "connecting you" announcement
        queue = queue_name(node, ctx) if node.queue else ""
        dest, end_target = ("", "") if node.queue else destination(node, ctx)
    except TransferRefused as exc:
        return _refused(node, ctx, metric_target, exc)
    if node.announcement:
        await ctx.play(node.announcement)
    if node.caller_id_name_prefix:
        prefix = ctx.render(node.caller_id_name_prefix)
        # No name (Asterisk's "unknown"): the agent sees the number after the prefix instead.
        await ctx.channel.set_variable("CALLERID(name)", f"{prefix}{ctx.info.caller_name or ctx.info.caller_id}")
    if node.record and ctx.recorder is not None:
        await ctx.recorder.start(ctx, "transfer")
    if node.queue:
        ctx.emit("transfer", f"queue {queue} (timeout {node.timeout:g} s)", queue=queue)
        result = await ctx.channel.queue(queue, node.timeout)
        status = result.status.upper()
        BATCH.record("TRANSFERS", (ctx.flow.name, metric_target, transfer_result(status)))
        ctx.emit(
            "transfer",
            f"QUEUESTATUS {status}" + (" (caller hung up)" if result.caller_hung_up else ""),
            status=status,
            caller_hung_up=result.caller_hung_up,
        )
        if status in (QUEUE_ANSWERED, "CONTINUE"):
            return _answered(node, ctx, status, f"queue:{queue}", result.caller_hung_up)
        if result.caller_hung_up or status == QUEUE_ABANDONED:
            raise CallerHangup(f"the caller hung up in queue {queue} before an agent answered ({status})")
        return _branch(node, QUEUE_BRANCH.get(status, ("on_unavailable", "on_timeout")), status)
    ctx.emit("transfer", f"dial {dest} (timeout {node.timeout:g} s)", destination=dest)
    dial = await ctx.channel.dial(dest, node.timeout)
    status = dial.status.upper()
    BATCH.record("TRANSFERS", (ctx.flow.name, metric_target, transfer_result(status)))
    ctx.emit(
        "transfer",
        f"DIALSTATUS {status}" + (" (caller hung up)" if dial.caller_hung_up else ""),
        status=status,
        caller_hung_up=dial.caller_hung_up,
    )
    if status == "ANSWER":
        return _answered(node, ctx, status, end_target, dial.caller_hung_up)
    if dial.caller_hung_up or status == "CANCEL":
        raise CallerHangup(f"the caller hung up while {dest} was ringing ({status})")
    return _branch(node, (DIAL_BRANCH.get(status, "on_unavailable"),), status)

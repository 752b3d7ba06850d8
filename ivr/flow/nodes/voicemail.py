"""`voicemail`: greeting, beep, record until `#`, silence or `max_length`, then store the message and its
metadata through storage.

Rules: a caller hanging up is the normal way to end a message, so the message is stored first and the call
then ends as "voicemail" (not "abandoned"). A message shorter than MIN_SECONDS is nothing but a click and is
not stored. The file name is built from the mailbox, the uniqueid and the time through `safe_filename()`.
When the database refuses the row (down, lost), the failure is counted (ivr_storage_failures_total{action=
"voicemail"}) and the caller goes to `on_failure`; without it the call ends as an error.
"""

from __future__ import annotations

from ivr.flow.channel import CallerHangup
from ivr.flow.compiled import VoicemailNode
from ivr.flow.context import CallContext, EngineError, Goto
from ivr.flow.nodes import register
from ivr.flow.templates import safe_filename
from ivr.metric_batch import BATCH

MIN_SECONDS = 1.0
FORMAT = "wav"


@register("voicemail")
async def run(node: VoicemailNode, ctx: CallContext) -> Goto:
    if ctx.storage is None:
        raise EngineError(f"voicemail {ctx.ref}: no storage configured in the service")
    mailbox = ctx.render(node.mailbox)
    if node.greeting:
        await ctx.play(node.greeting, "#")  # "#" skips the greeting
    stamp = ctx.now().strftime("%Y%m%dT%H%M%S")
    name = safe_filename(f"{mailbox}-{ctx.info.uniqueid}-{stamp}")
    path = f"{ctx.settings.voicemail_dir.rstrip('/')}/{name}"
    ctx.emit("voicemail", f"recording a message for {mailbox} (max {node.max_length:g} s)", mailbox=mailbox)
    result = await ctx.channel.record_file(path, FORMAT, "#", node.max_length, node.silence, node.beep)
    ctx.emit(
        "voicemail",
        f"recording ended by {result.reason} after {result.seconds:.1f} s",
        reason=result.reason,
        seconds=result.seconds,
    )
    if result.seconds >= MIN_SECONDS:
        from ivr.storage import StorageError, Voicemail

        try:
            vm_id = await ctx.storage.add_voicemail(
                Voicemail(
                    mailbox=mailbox,
                    caller=ctx.info.caller_id,
                    path=f"{path}.{FORMAT}",
                    seconds=result.seconds,
                    flow=ctx.flow.name,
                    call_id=ctx.info.uniqueid,
                    created_at=ctx.now(),
                )
            )
        except StorageError as exc:
            BATCH.record("STORAGE_FAILURES", ("voicemail",))
            what = f"voicemail {ctx.ref}: the message {path}.{FORMAT} was recorded but not stored: {exc}"
            if node.on_failure is None:
                raise EngineError(what) from exc
            ctx.emit("voicemail", what)
            if result.reason == "hangup":
                raise CallerHangup("the caller hung up to end the message") from exc
            return Goto(node.on_failure, "storage_error", "message not stored")
        BATCH.record("VOICEMAILS", (ctx.flow.name,))
        ctx.outcome, ctx.end_target = "voicemail", f"voicemail:{mailbox}"
        ctx.variables["voicemail_id"] = str(vm_id)
        ctx.emit("voicemail", f"message {vm_id} stored ({result.seconds:.1f} s)", id=vm_id)
        detail = f"stored message {vm_id}"
    else:
        ctx.emit("voicemail", "message too short; not stored")
        detail = "empty message"
    if result.reason == "hangup":
        raise CallerHangup("the caller hung up to end the message")
    return Goto(node.next, "next", detail)

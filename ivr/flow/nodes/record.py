"""`record`: start, pause, resume or stop call recording under the flow's policy (see ivr.flow.recording)."""

from __future__ import annotations

from ivr.flow.compiled import RecordNode
from ivr.flow.context import CallContext, Goto
from ivr.flow.nodes import register
from ivr.flow.recording import Recorder


@register("record")
async def run(node: RecordNode, ctx: CallContext) -> Goto:
    if ctx.recorder is None:
        ctx.recorder = Recorder()
    recorder = ctx.recorder
    if node.action == "start":
        started = await recorder.start(ctx, "record node")
        return Goto(node.next, "next", "recording" if started else "not recording")
    if node.action == "pause":
        await recorder.pause(ctx)
    elif node.action == "resume":
        await recorder.resume(ctx)
    else:
        await recorder.stop(ctx)
    return Goto(node.next, "next", node.action)

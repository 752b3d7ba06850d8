"""`lookup`: an HTTP request to a CRM/webhook; JSON fields become variables; any failure -> `on_error` with the
failure kind in `${lookup_error}`. The metric `result` is ok, timeout or error.
`ivr.flow.lookup` is imported when a lookup first runs: classic AGI imports every node kind before its first
command (docs/agi.md)."""

from __future__ import annotations

from ivr.flow.compiled import LookupNode
from ivr.flow.context import CallContext, EngineError, Goto
from ivr.flow.nodes import register
from ivr.metric_batch import BATCH


@register("lookup")
async def run(node: LookupNode, ctx: CallContext) -> Goto:
    if ctx.lookup_client is None:
        raise EngineError(f"lookup {ctx.ref}: no lookup client configured in the service")
    from ivr.flow.lookup import LookupFailed, build_request, map_answer

    try:
        request = build_request(ctx.flow.name, ctx.node_id, node, ctx.variables)
        ctx.emit("lookup", f"{request.method} {request.url}", url=request.url)
        answer = await ctx.lookup_client.fetch(request)
        values = map_answer(answer, node.map)
    except LookupFailed as exc:
        BATCH.record("LOOKUPS", (ctx.flow.name, ctx.node_id, "timeout" if exc.kind == "timeout" else "error"))
        ctx.variables["lookup_error"] = exc.kind
        ctx.emit("lookup", f"failed ({exc.kind}): {exc}", error=exc.kind)
        return Goto(node.on_error, "error", f"lookup failed: {exc.kind}")
    BATCH.record("LOOKUPS", (ctx.flow.name, ctx.node_id, "ok"))
    ctx.variables["lookup_error"] = ""
    for name, value in values.items():
        ctx.set_var(name, value)
    return Goto(node.next, "next", "lookup ok")

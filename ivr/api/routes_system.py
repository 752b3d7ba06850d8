"""Health, readiness, metrics, the OpenAPI document, and the flows (version, validation state, reload, graph).

Rules for this file:
- /healthz answers as long as the process serves requests; /readyz runs the injected checks (each AMI server
  logged in: `ami`, or `ami:<pbx>` with several servers; FastAGI listening) and answers 503 naming the ones that
  fail; it names the instance.
- Nothing here blocks the event loop: reload runs through `reload_async`, drawing in a worker thread.
- The flow graph is drawn by the `draw_flow` the service injects (`ivr.flowgraph.render.render`; the API does not import
  the admin tools): without one the route answers 501 instead of failing the whole API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ivr import metrics
from ivr.api.deps import deps, parse_query, run_check
from ivr.api.errors import JSONError
from ivr.api.openapi import document
from ivr.api.schemas import GRAPH_FORMATS, GraphQuery


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    d = deps(request)
    checks = {name: await run_check(check) for name, check in d.readiness.items()}
    ready = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if d.instance is not None:
        body["instance"] = d.instance
    return web.json_response(body, status=200 if ready else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    registry = deps(request).metrics_registry or metrics.REGISTRY
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


# --- flows -----------------------------------------------------------------------------------------------------


def _repo(request: web.Request) -> Any:
    repo = deps(request).flows
    if repo is None:
        raise JSONError(503, "unavailable", "flows are not loaded in this process")
    return repo


def _problems(repo: Any) -> list[dict]:
    return [p.to_dict() for p in repo.last_errors]


async def list_flows(request: web.Request) -> web.Response:
    repo = _repo(request)
    current = repo.current
    flows = []
    for name in current.names():
        flow = current[name]
        flows.append(
            {
                "name": name,
                "description": flow.description,
                "language": flow.language,
                "languages": list(flow.languages),
                "start": flow.start,
                "nodes": len(flow.nodes),
            }
        )
    return web.json_response(
        {
            "version": current.version,
            "loaded_at": current.loaded_at.isoformat(),
            "valid": not repo.failing,
            "errors": _problems(repo),
            "warnings": [p.to_dict() for p in current.warnings],
            "flows": flows,
        }
    )


async def get_flow(request: web.Request) -> web.Response:
    repo = _repo(request)
    name = request.match_info["name"]
    flow = repo.current.get(name)
    if flow is None:
        raise JSONError(404, "not_found", f"no flow {name!r}; GET /flows lists them")
    return web.json_response({"version": repo.current.version, "flow": flow.model_dump(mode="json", by_alias=True)})


async def reload_flows(request: web.Request) -> web.Response:
    result = await _repo(request).reload_async("api")  # reads and validates files off the event loop
    body = result.to_dict()
    if not result.ok:
        raise JSONError(422, "invalid_flows", body)
    return web.json_response(body)


async def flow_graph(request: web.Request) -> web.Response:
    repo = _repo(request)
    name = request.match_info["name"]
    fmt = parse_query(request, GraphQuery).format
    flow = repo.current.get(name)
    if flow is None:
        raise JSONError(404, "not_found", f"no flow {name!r}; GET /flows lists them")
    draw = deps(request).draw_flow
    if draw is None:
        raise JSONError(501, "not_implemented", "flow diagrams are not available in this service (no flow drawer)")
    try:
        drawn = await asyncio.to_thread(draw, flow, fmt)  # may run Graphviz (a process)
    except ValueError as exc:
        raise JSONError(422, "invalid_request", str(exc)) from None
    except Exception as exc:
        if type(exc).__name__ == "GraphvizMissing":
            raise JSONError(501, "not_implemented", f"{exc}; ask for format=mermaid, which needs no Graphviz") from None
        raise
    body = drawn if isinstance(drawn, bytes) else drawn.encode("utf-8")
    return web.Response(
        body=body, content_type=GRAPH_FORMATS[fmt], charset=None if isinstance(drawn, bytes) else "utf-8"
    )


ROUTES = [
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    ("GET", "/metrics", metrics_endpoint),
    ("GET", "/openapi.json", openapi_json),
    ("GET", "/flows", list_flows),
    ("POST", "/flows/reload", reload_flows),
    # As /calls/{call_id}: GET /flows/reload is a 405 (POST reloads), not a flow named "reload".
    ("GET", "/flows/{name:(?!reload$)[^{}/]+}", get_flow),
    ("GET", "/flows/{name}/graph", flow_graph),
]

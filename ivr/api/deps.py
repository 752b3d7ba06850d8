"""What the API handlers work with, injected by `create_app` (no globals), and small request helpers.

Rules for this file:
- `Deps` is built by the service (or a test) and stored on the app; handlers read it with `deps(request)`.
- Request bodies are parsed only through `parse_body`, query strings through `parse_query`, path ids through
  `path_id`: each validates with the models of ivr.api.schemas, which the OpenAPI document is made from.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from ivr.api.errors import JSONError
from ivr.api.schemas import PathParams, Query
from ivr.calls.fleet import FleetOperations, FleetRegistry
from ivr.calls.operations import CallOperations
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.storage import Storage

M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound=Query)
Check = Callable[[], bool | Awaitable[bool]]
# (flow, format) -> the drawing (str or bytes); ValueError for a format it cannot draw. Injected so the API does not
# import the drawing code (`ivr.flowgraph`, which needs Graphviz for SVG/PNG).
FlowDrawer = Callable[[Any, str], str | bytes]
MAX_BODY = 64 * 1024


@dataclass
class Deps:
    operations: CallOperations | FleetOperations  # FleetOperations with several Asterisk servers
    registry: CallRegistry | FleetRegistry  # FleetRegistry with several Asterisk servers, same read interface
    storage: Storage
    settings: CallControlSettings = field(default_factory=CallControlSettings)
    flows: Any = None  # ivr.flow.repository.FlowRepository
    scheduler: Any = None  # ivr.calls.callbacks.CallbackScheduler (woken on new requests)
    readiness: dict[str, Check] = field(default_factory=dict)  # name -> check (AMI logged in, FastAGI listening)
    metrics_registry: Any = None  # prometheus CollectorRegistry (default ivr.metrics.REGISTRY)
    draw_flow: FlowDrawer | None = (
        None  # GET /flows/{name}/graph; None: 501 (the service passes ivr.flowgraph.render's)
    )
    instance: str | None = None  # this service instance's name (settings.instance), shown by /readyz
    campaigns: Any = None  # ivr.campaigns.dialer.CampaignDialer (woken on changes; its clock and pacing)
    max_upload_bytes: int = 5_000_000  # campaigns.max_upload_bytes: contact and do-not-call CSV files
    max_upload_rows: int = 50_000  # campaigns.max_rows


DEPS = web.AppKey("ivr_deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]


JSON_TYPES = ("application/json",)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The body as `model`: JSON only (415 for another media type), 413 past MAX_BODY, else 422 on anything wrong.

    Parsed and validated in one step by pydantic's JSON parser, which has a nesting limit: a deeply nested body
    is a 422, where `json.loads` would raise RecursionError."""
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise JSONError(413, "too_large", f"request bodies are limited to {MAX_BODY} bytes")
    if not raw.strip():
        return model.model_validate({})  # actions without parameters may send no body at all
    if request.content_type not in JSON_TYPES:
        raise JSONError(
            415,
            "unsupported_media_type",
            f"send the body as JSON with 'Content-Type: application/json' (got {request.content_type!r})",
        )
    return model.model_validate_json(raw)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """The query string as `model` (422 naming the parameter). A repeated parameter counts once (the first)."""
    return model.model_validate({key: request.query[key] for key in request.query})


@cache
def _path_adapter(name: str) -> TypeAdapter[Any]:
    field = PathParams.model_fields[name]
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)])  # type: ignore[arg-type]


def path_id(request: web.Request, name: str, what: str) -> int:
    """A row id from the path by its rule in `PathParams` (ASCII digits, 64-bit): anything else names no row, 404."""
    value = request.match_info[name]
    try:
        return int(_path_adapter(name).validate_python(value))
    except ValidationError:
        raise JSONError(
            404, "not_found", f"no {what} {value[:40]!r}: ids are whole numbers written with the digits 0-9"
        ) from None


async def run_check(check: Check) -> bool:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)
    except Exception:
        return False

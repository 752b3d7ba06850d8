"""What the API handlers work with, injected by `create_app` (no globals), and small request helpers.

Rules for this file:
- `Deps` is built by the service (or a test) and stored on the app; handlers read it with `deps(request)`.
- Request bodies are parsed only through `parse_body` (pydantic model, 422 on anything wrong).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from ivr.api.errors import JSONError
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.storage import Storage

M = TypeVar("M", bound=BaseModel)
Check = Callable[[], bool | Awaitable[bool]]
# (flow, format) -> the drawing (str or bytes); ValueError for a format it cannot draw. Injected so the API does not
# import the drawing code (it lives with the admin tools).
FlowDrawer = Callable[[Any, str], str | bytes]
MAX_BODY = 64 * 1024


@dataclass
class Deps:
    operations: Any  # ivr.calls.operations.CallOperations
    registry: CallRegistry  # or ivr.calls.fleet.FleetRegistry (several Asterisk servers), same read interface
    storage: Storage
    settings: CallControlSettings = field(default_factory=CallControlSettings)
    flows: Any = None  # ivr.flow.repository.FlowRepository
    scheduler: Any = None  # ivr.calls.callbacks.CallbackScheduler (woken on new requests)
    readiness: dict[str, Check] = field(default_factory=dict)  # name -> check (AMI logged in, FastAGI listening)
    metrics_registry: Any = None  # prometheus CollectorRegistry (default ivr.metrics.REGISTRY)
    draw_flow: FlowDrawer | None = None  # GET /flows/{name}/graph; None: 501 (the service passes ivr.tools.graph's)
    instance: str | None = None  # this service instance's name (settings.instance), shown by /readyz


DEPS = web.AppKey("ivr_deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]


async def parse_body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise JSONError(413, "too_large", f"request bodies are limited to {MAX_BODY} bytes")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise JSONError(422, "invalid_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise JSONError(422, "invalid_request", "the body must be a JSON object")
    return model.model_validate(data)


async def run_check(check: Check) -> bool:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)
    except Exception:
        return False


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise JSONError(422, "invalid_request", f"query parameter {name} must be an integer") from None
    if not low <= number <= high:
        raise JSONError(422, "invalid_request", f"query parameter {name} must be between {low} and {high}")
    return number

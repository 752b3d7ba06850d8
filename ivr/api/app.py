"""The aiohttp application factory of the HTTP API.

Rules for this file:
- `create_app` takes every dependency as an argument (no globals) and returns a ready `web.Application`; the
  service (ivr.service) builds the objects, checks the bind address with `ivr.api.auth.check_bind`, and runs it.
- Middleware order: errors outermost (so even auth failures and aiohttp's 404/405 are JSON), then auth.
- Routes come from the route tables of the routes_* modules; the OpenAPI document lists the same pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ivr.api import routes_calls, routes_campaigns, routes_data, routes_system
from ivr.api.auth import bearer_middleware
from ivr.api.deps import DEPS, MAX_BODY, Check, Deps, FlowDrawer
from ivr.api.errors import error_middleware
from ivr.calls.fleet import FleetOperations, FleetRegistry
from ivr.calls.operations import CallOperations
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.console import web as console
from ivr.storage import Storage

ROUTE_TABLES = (routes_system.ROUTES, routes_calls.ROUTES, routes_data.ROUTES, routes_campaigns.ROUTES)


def all_routes() -> Iterable[tuple[str, str, Any]]:
    for table in ROUTE_TABLES:
        yield from table


def create_app(
    *,
    operations: CallOperations | FleetOperations,
    registry: CallRegistry | FleetRegistry,
    storage: Storage,
    token: str | None,
    settings: CallControlSettings | None = None,
    flows: Any = None,
    scheduler: Any = None,
    readiness: dict[str, Check] | None = None,
    metrics_registry: Any = None,
    draw_flow: FlowDrawer | None = None,
    instance: str | None = None,
    campaigns: Any = None,
    upload_limits: tuple[int, int] = (5_000_000, 50_000),
) -> web.Application:
    """Build the API. `token=None` disables authentication (only allowed on loopback: see `check_bind`).

    `readiness` maps a check name to a callable returning bool (or an awaitable of bool), e.g.
    `{"ami": lambda: ami.logged_in, "fastagi": lambda: server.listening}`. `instance` (the `instance` setting)
    is shown by /readyz. `campaigns`: the campaign dialer (None: campaigns are managed, nobody dials);
    `upload_limits`: (bytes, rows) of a CSV upload (campaigns.max_upload_bytes, campaigns.max_rows).
    """
    app = web.Application(middlewares=[error_middleware, bearer_middleware(token)], client_max_size=MAX_BODY)
    app[DEPS] = Deps(
        operations=operations,
        registry=registry,
        storage=storage,
        settings=settings or getattr(operations, "settings", None) or CallControlSettings(),
        flows=flows,
        scheduler=scheduler,
        readiness=dict(readiness or {}),
        metrics_registry=metrics_registry,
        draw_flow=draw_flow,
        instance=instance,
        campaigns=campaigns,
        max_upload_bytes=upload_limits[0],
        max_upload_rows=upload_limits[1],
    )
    for method, path, handler in all_routes():
        app.router.add_route(method, path, handler)
    # The supervisor console: /console (page, public) and /events (its live stream, with the token).
    console.install(app, registry=registry, storage=storage, lots=app[DEPS].settings.parking_lots)
    return app

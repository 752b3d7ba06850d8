"""The call routes, shared by the FastAGI service and the classic process-per-call AGI script.

Rules for this file:
- `build_router(settings)` -> a Router whose routes are the flows in `settings.flows_dir` (script path `<flow>`).
- Kept light (no aiohttp, no AMI): agi/ivr_agi.py imports it once per call, so start-up time matters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ivr.agi.router import Router
from ivr.flow.engine import FlowEngine
from ivr.flow.handler import build_flow_router
from ivr.flow.lookup import HttpLookupClient
from ivr.flow.repository import FlowRepository
from ivr.settings import Settings
from ivr.storage import open_storage


def build_router(
    settings: Settings,
    *,
    storage: Any = None,
    lookup_client: Any = None,
    repository: FlowRepository | None = None,
    clock: Callable[[], datetime] | None = None,
    on_node: Callable[[str, str, str | None], None] | None = None,
    on_report: Callable[[Any], None] | None = None,
) -> Router:
    """Flows from the repository (loaded here if not given; invalid flows raise ConfigError).

    `clock` is the time flows see (business hours, holidays); default: now. The demo shifts it into a business day.
    `on_node(uniqueid, flow, node)` is told where each call is (node None when it leaves the flow);
    `on_report(report)` gets each call's CallReport when it ends (callbacks use it to retry or complete).
    """
    if repository is None:
        repository = FlowRepository.from_settings(settings)
        repository.load()
    storage = storage if storage is not None else open_storage(settings.storage.url, **settings.storage.open_options())
    lookup_client = lookup_client if lookup_client is not None else HttpLookupClient.from_settings(settings.lookups)
    return build_flow_router(
        repository,
        FlowEngine.factory(settings, storage=storage, lookup_client=lookup_client, clock=clock),
        on_node=on_node,
        on_report=on_report,
    )

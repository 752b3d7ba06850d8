"""An API instance on 127.0.0.1 (ephemeral port) over a scripted AMI client, a real registry and in-memory storage.

Every response a test gets through `Api.get/post/delete` is checked against the OpenAPI document
(tests/api/documented.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from ivr.api.app import create_app
from ivr.calls.operations import CallOperations
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.flowgraph.render import render as draw_flow
from ivr.storage import open_storage
from tests.api.documented import check_documented
from tests.calls.fakes import FakeAMI
from tests.e2e.stack import ApiTestServer

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    client: TestClient
    ami: FakeAMI
    registry: CallRegistry
    storage: Any
    ops: CallOperations
    settings: CallControlSettings
    ready: dict

    async def get(self, path: str, **kw: Any) -> ClientResponse:
        return await check_documented(await self.client.get(path, headers={**AUTH, **kw.pop("headers", {})}, **kw))

    async def post(self, path: str, json: Any = None, **kw: Any) -> ClientResponse:
        headers = {**AUTH, **kw.pop("headers", {})}
        return await check_documented(await self.client.post(path, json=json, headers=headers, **kw))

    async def delete(self, path: str, **kw: Any) -> ClientResponse:
        return await check_documented(await self.client.delete(path, headers={**AUTH, **kw.pop("headers", {})}, **kw))


@pytest.fixture
async def api(tmp_path):
    ami = FakeAMI()
    registry = CallRegistry(clock=lambda: 1000.0)
    storage = open_storage("memory:")
    settings = CallControlSettings(recordings_dir="/var/spool/asterisk/monitor", download_dir=str(tmp_path / "rec"))
    ops = CallOperations(ami, registry, storage, settings)
    ready = {"ami": True, "fastagi": True}
    app = create_app(
        operations=ops,
        registry=registry,
        storage=storage,
        token=TOKEN,
        settings=settings,
        readiness={"ami": lambda: ready["ami"], "fastagi": lambda: ready["fastagi"]},
        draw_flow=draw_flow,
    )
    client = TestClient(ApiTestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield Api(client, ami, registry, storage, ops, settings, ready)
    finally:
        await client.close()
        await storage.close()

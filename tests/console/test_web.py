"""The console over HTTP: public page files with a strict policy, the token-only /events stream, package data,
and texts in both languages for every key the page uses."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.protocol import Message
from ivr.api.app import create_app
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "ivr" / "console" / "static"
TOKEN = "console-test-token"


@pytest.fixture
async def client():
    storage = open_storage("memory:")
    registry = CallRegistry()
    app = create_app(
        operations=None,
        registry=registry,
        storage=storage,
        token=TOKEN,
        settings=CallControlSettings(parking_lots={"default": "parkedcalls", "vip": "parkedvip"}),
    )
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    client.registry = registry
    try:
        yield client
    finally:
        await client.close()
        await storage.close()


async def test_the_page_and_its_files_are_public_with_a_strict_policy(client):
    page = await client.get("/console")
    assert page.status == 200 and page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    html = await page.text()
    assert 'src="/console/app.js"' in html and "http" not in re.sub(r'href="data:,"', "", html).replace("http-", "")
    script = await client.get("/console/app.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await client.get("/console/console.css")).content_type == "text/css"
    for bad in ("/console/nope.js", "/console/..%2Fweb.py", "/console/__init__.py", "/console/static"):
        assert (await client.get(bad)).status == 404, bad


async def test_events_need_the_token_and_start_with_a_snapshot(client):
    assert (await client.get("/events")).status == 401
    assert (await client.get("/events", headers={"Authorization": "Bearer nope"})).status == 403
    resp = await client.get("/events", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    assert await resp.content.readline() == b"event: snapshot\n"
    assert (await resp.content.readline()).startswith(b"id: ")
    data = await resp.content.readline()
    assert b'"lots":[{"name":"default","calls":[]},{"name":"vip","calls":[]}]' in data
    await resp.content.readline()
    client.registry.apply(
        Message([("Event", "Newchannel"), ("Channel", "PJSIP/t-1"), ("Uniqueid", "9.1"), ("Linkedid", "9.1")])
    )
    assert await resp.content.readline() == b"event: delta\n"
    await resp.content.readline()
    assert b'"id":"9.1"' in await resp.content.readline()
    resp.close()


async def test_shutdown_ends_open_streams(client):
    resp = await client.get("/events", headers={"Authorization": f"Bearer {TOKEN}"})
    assert await resp.content.readline() == b"event: snapshot\n"
    await client.server.runner.shutdown()  # what the service's stop does: on_shutdown ends the streams
    assert (await resp.content.read()).endswith(b"\n\n")
    resp.close()


def test_every_page_file_is_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ivr.console"]
    for path in STATIC.iterdir():
        assert any(fnmatch(f"static/{path.name}", g) for g in globs), f"{path.name} would be missing when installed"


def _keys(block: str) -> set[str]:
    return set(re.findall(r"^\s{4}(\w+):", block, re.M))


def test_english_and_lithuanian_have_every_text_the_page_uses():
    source = (STATIC / "i18n.js").read_text()
    en = _keys(source[source.index("  en: {") : source.index("  lt: {")])
    lt = _keys(source[source.index("  lt: {") : source.index("export const LANGUAGES")])
    assert en == lt and len(en) > 100
    used = set(re.findall(r'data-i18n(?:-placeholder|-title)?="(\w+)"', (STATIC / "index.html").read_text()))
    for js in STATIC.glob("*.js"):
        used |= set(re.findall(r'\bt\("(\w+)"', js.read_text()))
        used |= {f"state_{s}" for s in re.findall(r'"(\w+)"', js.read_text()) if f"state_{s}" in en}
    assert used - en == set()

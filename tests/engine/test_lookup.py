import asyncio
import json

import pytest
from aiohttp import web

from ivr.flow.lookup import (
    FixtureLookupClient,
    HttpLookupClient,
    LookupBadJSON,
    LookupConnectionError,
    LookupHTTPError,
    LookupTimeout,
    build_request,
    map_answer,
)
from ivr.flow.model import LookupNode


def node(**kw):
    kw.setdefault("type", "lookup")
    kw.setdefault("next", "ok")
    kw.setdefault("on_error", "err")
    return LookupNode(**kw)


@pytest.fixture
async def server():
    seen = []
    release = asyncio.Event()

    async def customer(request):
        seen.append(("GET", request.path_qs, dict(request.headers)))
        return web.json_response(
            {
                "customer": {"name": "Ann", "tier": "gold", "tags": ["a", "b"]},
                "balance": 12.5,
                "vip": True,
                "missing": None,
            }
        )

    async def create(request):
        body = await request.json()
        seen.append(("POST", request.path_qs, body))
        return web.json_response({"ticket": {"id": 42}})

    async def broken(request):
        return web.Response(text="<html>oops", content_type="text/html")

    async def fail(request):
        return web.json_response({"error": "x"}, status=503)

    async def slow(request):
        await release.wait()
        return web.json_response({})

    async def deep(request):
        return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")

    async def huge_int(request):
        return web.Response(text='{"n": ' + "7" * 5000 + "}", content_type="application/json")

    app = web.Application()
    app.router.add_get("/deep", deep)
    app.router.add_get("/huge_int", huge_int)
    app.router.add_get("/customer", customer)
    app.router.add_post("/ticket", create)
    app.router.add_get("/broken", broken)
    app.router.add_get("/fail", fail)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = HttpLookupClient()
    yield f"http://127.0.0.1:{port}", seen, client
    release.set()
    await client.close()
    await runner.cleanup()


async def test_get_with_url_encoded_values_and_mapping(server):
    base, seen, client = server
    n = node(
        url=base + "/customer?phone=${caller_id}",
        headers={"X-Call": "${uniqueid}"},
        map={
            "name": "customer.name",
            "tag": "customer.tags.1",
            "vip": "vip",
            "balance": "balance",
            "none": "missing",
            "absent": "customer.nope",
            "tags": "customer.tags",
        },
    )
    req = build_request("main", "crm", n, {"caller_id": "+370 6&x=1", "uniqueid": "17.5\r\nEvil: 1"})
    answer = await client.fetch(req)
    assert seen[0][1] == "/customer?phone=%2B370%206%26x%3D1"
    assert seen[0][2]["X-Call"] == "17.5  Evil: 1"
    assert map_answer(answer, n.map) == {
        "name": "Ann",
        "tag": "b",
        "vip": "true",
        "balance": "12.5",
        "none": "",
        "absent": "",
        "tags": '["a","b"]',
    }


async def test_post_json_body(server):
    base, seen, client = server
    n = node(
        url=base + "/ticket",
        method="POST",
        body={"account": "${account}", "caller": "${caller_id}"},
        map={"ticket": "ticket.id"},
    )
    answer = await client.fetch(build_request("main", "t", n, {"account": "12345678", "caller": "x"}))
    assert seen[0] == ("POST", "/ticket", {"account": "12345678", "caller": ""})
    assert map_answer(answer, n.map) == {"ticket": "42"}


@pytest.mark.parametrize(
    "path,error,kind",
    [
        ("/broken", LookupBadJSON, "bad_json"),
        ("/deep", LookupBadJSON, "bad_json"),  # RecursionError in the parser
        ("/huge_int", LookupBadJSON, "bad_json"),  # int over CPython's 4300-digit conversion limit
        ("/fail", LookupHTTPError, "status"),
        ("/slow", LookupTimeout, "timeout"),
    ],
)
async def test_typed_errors(server, path, error, kind):
    base, _, client = server
    with pytest.raises(error) as info:
        await client.fetch(build_request("main", "n", node(url=base + path, timeout="200ms"), {}))
    assert info.value.kind == kind


async def test_connection_refused_is_typed():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    client = HttpLookupClient()
    try:
        with pytest.raises(LookupConnectionError):
            await client.fetch(build_request("m", "n", node(url=f"http://127.0.0.1:{port}/x"), {}))
    finally:
        await client.close()


async def test_fixture_client_keys_and_errors(tmp_path):
    path = tmp_path / "fx.json"
    path.write_text(
        json.dumps(
            {
                "http://crm/c?n=1": {"a": 1},
                "main:crm2": {"b": 2},
                "crm3": {"$error": "status", "status": 404},
                "crm4": {"$error": "timeout"},
            }
        )
    )
    fx = FixtureLookupClient.from_file(path)
    assert await fx.fetch(build_request("main", "crm", node(url="http://crm/c?n=${n}"), {"n": "1"})) == {"a": 1}
    assert await fx.fetch(build_request("main", "crm2", node(url="http://x/"), {})) == {"b": 2}
    with pytest.raises(LookupHTTPError) as info:
        await fx.fetch(build_request("main", "crm3", node(url="http://x/"), {}))
    assert info.value.status == 404
    with pytest.raises(LookupTimeout):
        await fx.fetch(build_request("main", "crm4", node(url="http://x/"), {}))
    with pytest.raises(LookupConnectionError, match="no fixture answer"):
        await fx.fetch(build_request("main", "other", node(url="http://x/"), {}))
    assert len(fx.requests) == 5


async def test_allowed_hosts_and_timeout_cap(server):
    from ivr.flow.lookup import LookupNotAllowed

    base, seen, _ = server
    client = HttpLookupClient(allowed_hosts=["crm.example"], max_timeout=0.2)
    try:
        with pytest.raises(LookupNotAllowed, match="allowed_hosts"):
            await client.fetch(build_request("m", "n", node(url=base + "/customer"), {}))
        assert seen == []
        open_client = HttpLookupClient(allowed_hosts=["127.0.0.1"], max_timeout=0.2)
        with pytest.raises(LookupTimeout, match="0.2 s"):
            await open_client.fetch(build_request("m", "n", node(url=base + "/slow", timeout="30s"), {}))
        await open_client.close()
    finally:
        await client.close()


def test_map_answer_cleans_and_clamps_values():
    answer = {"name": "Ann\x00\r\nEvil", "long": "x" * 5000, "big": 10**100}
    assert map_answer(answer, {"name": "name", "long": "long", "big": "big"}) == {
        "name": "Ann   Evil",
        "long": "x" * 1024,
        "big": "",
    }


def test_map_answer_of_a_structure_too_deep_to_write_is_bad_json():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(LookupBadJSON):
        map_answer({"d": deep}, {"d": "d"})

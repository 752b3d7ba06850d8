"""Hostile requests a fuzzer or an attacker sends: each gets a 4xx with the documented JSON error, never a 500.

Each case here answered `500 internal_error` (or was wrongly accepted) before the request models were made strict.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from ivr.api.openapi import OPERATIONS
from ivr.storage import Recording

from .conftest import AUTH

JSON = {"Content-Type": "application/json"}
BODY_ROUTES = sorted(
    path.replace("{call_id}", "x").replace("{queue}", "sales").replace("{campaign_id}", "1")
    for (method, path), op in OPERATIONS.items()
    if method == "POST" and op.body is not None
)
HUGE_ID = "9" * 30  # beyond a 64-bit integer
MAX_PLUS_ONE = str(2**63)


async def expect_error(resp, status: int, error_code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == error_code, body
    return body


def fields(body: dict) -> list[str]:
    return [item["field"] for item in body["detail"]]


# --- bodies ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_deeply_nested_json_is_a_422_on_every_route_with_a_body(api, path):
    deep = b"[" * 20_000 + b"]" * 20_000  # under the body limit, far over any parser's nesting
    body = await expect_error(await api.post(path, data=deep, headers=JSON), 422, "invalid_request")
    assert "recursion" in str(body["detail"]) or "nest" in str(body["detail"])
    deep_object = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    await expect_error(await api.post(path, data=deep_object, headers=JSON), 422, "invalid_request")
    assert api.ami.sent == []


async def test_a_body_over_the_limit_is_a_413(api):
    big = b'{"number": "+37060000001", "queue": "support", "caller_name": "' + b"x" * 70_000 + b'"}'
    await expect_error(await api.post("/callbacks", data=big, headers=JSON), 413, "too_large")
    assert await api.storage.list_callbacks() == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_json_body_of_another_media_type_is_a_415(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"number": "+37060000001", "queue": "support"}'
    resp = await api.client.post("/callbacks", data=body, headers={**AUTH, **headers})
    await expect_error(resp, 415, "unsupported_media_type")
    assert await api.storage.list_callbacks() == []
    # Actions without parameters may still come without any body (and so without a Content-Type).
    await expect_error(await api.client.post("/calls/x/hangup", headers=AUTH), 404, "unknown_call")


async def test_json_with_a_charset_parameter_is_json(api):
    resp = await api.client.post(
        "/callbacks",
        data=b'{"number": "+37060000001", "queue": "support"}',
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize("name", ["Ann\x00", "Ann\nSmith", "Ann\x1b[31m", "Ann\x7f", "Ann\u0085"])
async def test_caller_name_with_control_characters_is_refused_naming_the_field(api, name):
    body = await expect_error(
        await api.post("/callbacks", json={"number": "+37060000001", "queue": "support", "caller_name": name}),
        422,
        "invalid_request",
    )
    assert fields(body) == ["caller_name"] and "control characters" in body["detail"][0]["message"]
    assert await api.storage.list_callbacks() == []


async def test_caller_name_of_printable_text_is_kept(api):
    resp = await api.post("/callbacks", json={"number": "+37060000001", "queue": "support", "caller_name": "Žana Ö"})
    assert resp.status == 201 and (await resp.json())["caller_name"] == "Žana Ö"


async def test_errors_name_the_field_that_is_wrong(api):
    login = {"interface": "PJSIP/1001", "name": "Ann\x07", "reason": "fine"}
    body = await expect_error(await api.post("/queues/sales/members", json=login), 422, "invalid_request")
    assert fields(body) == ["name"]
    body = await expect_error(
        await api.post("/queues/sales/members/pause", json={"interface": "PJSIP/1001", "reason": "x" * 81}),
        422,
        "invalid_request",
    )
    assert fields(body) == ["reason"]
    body = await expect_error(
        await api.post("/queues/sales/members", json={"interface": "PJSIP/1001\n"}), 422, "invalid_request"
    )
    assert fields(body) == ["interface"] and "PJSIP/1001" in body["detail"][0]["message"]
    body = await expect_error(
        await api.post("/calls/originate", json={"agent": "10&01", "number": "+37060000001"}), 422, "invalid_request"
    )
    assert fields(body) == ["agent"]
    assert api.ami.sent == []


@pytest.mark.parametrize(
    "body",
    [
        {"agent": "1001", "number": "+37060000001", "timeout": "30"},  # a string for a number
        {"interface": "PJSIP/1001", "paused": "yes"},  # a string for a boolean
        {"agent": "1001", "number": "+37060000001", "timeout": float("nan")},
    ],
)
async def test_bodies_are_strict_about_types(api, body):
    path = "/queues/sales/members" if "interface" in body else "/calls/originate"
    raw = (
        b'{"agent": "1001", "number": "+37060000001", "timeout": NaN}'
        if body.get("timeout") != body.get("timeout")
        else None
    )
    resp = await api.post(path, data=raw, headers=JSON) if raw else await api.post(path, json=body)
    await expect_error(resp, 422, "invalid_request")
    assert api.ami.sent == []


# --- ids ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rec_id", [HUGE_ID, MAX_PLUS_ONE, "-1"])
async def test_ids_beyond_64_bits_are_404(api, rec_id):
    for path in (f"/recordings/{rec_id}", f"/recordings/{rec_id}/file", f"/callbacks/{rec_id}"):
        await expect_error(await api.get(path), 404, "not_found")
    await expect_error(await api.delete(f"/callbacks/{rec_id}"), 404, "not_found")


async def test_ids_are_ascii_digits_only(api):
    for _ in range(10):
        await api.storage.add_recording(
            Recording(
                call_id="c", path="/var/spool/asterisk/monitor/x.wav", state="finished", started_at=datetime.now(UTC)
            )
        )
    assert (await api.get("/recordings/10")).status == 200
    assert (await api.get("/recordings/010")).status == 200
    # int() would read each of these as 1 or 10.
    for lenient in ("1_0", "%D9%A1", "%EF%BC%91", "+1", "%201", "1%20", "0x1"):
        await expect_error(await api.get(f"/recordings/{lenient}"), 404, "not_found")
        await expect_error(await api.get(f"/callbacks/{lenient}"), 404, "not_found")
    body = await expect_error(await api.get("/recordings?limit=1_0"), 422, "invalid_request")
    assert fields(body) == ["limit"]
    await expect_error(await api.get("/recordings?offset=%D9%A1"), 422, "invalid_request")
    await expect_error(await api.get("/voicemail?limit=+5"), 422, "invalid_request")
    await expect_error(await api.get("/callbacks?limit=%205"), 422, "invalid_request")
    assert (await (await api.get("/recordings?limit=3")).json())["count"] == 3


# --- date-times --------------------------------------------------------------------------------------------------

OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("value", OVERFLOWING)
async def test_date_times_that_overflow_in_utc_are_422(api, value):
    for name in ("since", "until"):
        body = await expect_error(await api.get("/recordings", params={name: value}), 422, "invalid_request")
        assert fields(body) == [name]
    body = await expect_error(
        await api.post("/callbacks", json={"number": "+37060000001", "queue": "support", "not_before": value}),
        422,
        "invalid_request",
    )
    assert fields(body) == ["not_before"]


@pytest.mark.parametrize(
    "value", ["2026-11-30T09:00:00", "2026-11-30", "1764493200", "2026-11-30 09:00:00Z", "2026-13-01T00:00:00Z"]
)
async def test_date_times_are_rfc3339_with_an_offset(api, value):
    await expect_error(await api.get("/recordings", params={"since": value}), 422, "invalid_request")


async def test_date_times_with_offsets_are_compared_in_utc(api):
    await api.storage.add_recording(
        Recording(call_id="c", path="/x.wav", started_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    )
    listed = await (await api.get("/recordings", params={"since": "2026-11-30T10:59:00+02:00"})).json()
    assert listed["count"] == 1
    listed = await (await api.get("/recordings", params={"since": "2026-11-30T11:01:00.5+02:00"})).json()
    assert listed["count"] == 0


# --- malformed HTTP ----------------------------------------------------------------------------------------------


async def raw_exchange(api, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.client.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /calls HTTP/1.1\r\nHost: x\r\nX-Secret: " + b"s3cr3t" * 2000 + b"\r\n\r\n",  # over-long header line
        b"GET /calls?" + b"s3cr3t" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # over-long request line
        b"GET /calls HTTP/1.1\r\nHost: x\r\nX-Secret: s3cr3t\x00<script>\r\n\r\n",  # NUL in a header
        b"GET /calls HTTP/1.1\r\nHost: x\r\nX-S\x01cr3t: s3cr3t\r\n\r\n",  # control character in a header name
    ],
    ids=["long-header", "long-request-line", "nul-in-header", "bad-header-name"],
)
async def test_malformed_http_gets_the_json_error_without_echo(api, caplog, request_bytes):
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    caplog.set_level(logging.DEBUG, logger="ivr.api")
    answer = await raw_exchange(api, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", answer[:200]
    assert b"Content-Type: application/json" in head
    assert b"s3cr3t" not in answer and b"<script>" not in answer
    assert body.startswith(b'{"error": "bad_request", "detail": ')
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    lines = [r for r in caplog.records if r.name == "ivr.api"]
    assert len(lines) == 1 and lines[0].exc_info is None and "s3cr3t" not in lines[0].getMessage()
    # The server is still there for the next client.
    assert (await api.get("/healthz")).status == 200


async def test_a_concrete_path_wins_over_a_templated_one(api):
    """As OpenAPI matches paths: GET /calls/originate is not the call "originate", nor /flows/reload a flow."""
    resp = await api.get("/calls/originate")
    await expect_error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"
    resp = await api.get("/flows/reload")
    await expect_error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"
    await expect_error(await api.get("/calls/originated"), 404, "unknown_call")

"""Check a response against the OpenAPI document the app serves: the status must be documented for the operation,
a JSON body must match the documented schema, another body's media type must be documented.

The API tests and the end-to-end stack send their requests through `check_documented`, so every answer they see
(the real ones from the simulated Asterisk included) is held to the document. A 500 is a bug, never documented:
it is left to the test that provokes it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema_rs
from aiohttp import ClientResponse

from ivr.api.openapi import document


@cache
def _operations() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    """(method, path regex, operation), concrete paths first: OpenAPI matches them before templated ones."""
    ops = [
        (method.upper(), re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), op)
        for path, methods in document()["paths"].items()
        for method, op in methods.items()
    ]
    return sorted(ops, key=lambda item: "[^/]+" in item[1].pattern)


async def check_documented(resp: ClientResponse) -> ClientResponse:
    if resp.status == 500:
        return resp
    method, path = resp.method, resp.url.path
    op = next((op for m, pattern, op in _operations() if m == method and pattern.match(path)), None)
    if op is None:
        return resp  # an undocumented route (404) or method (405): aiohttp's answer, tested for its shape
    documented = op["responses"].get(str(resp.status))
    assert documented is not None, f"{method} {path}: {resp.status} is not documented ({sorted(op['responses'])})"
    if resp.content_type == "application/json":
        schema = documented["content"]["application/json"]["schema"]
        body = await resp.json()
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": document()["components"]})
        errors = [str(e) for e in validator.iter_errors(body)]
        assert not errors, f"{method} {path} {resp.status}: {errors}"
    else:
        assert resp.content_type in documented.get("content", {}) or any(
            media.endswith("/*") and resp.content_type.startswith(media[:-1]) for media in documented.get("content", {})
        ), f"{method} {path}: {resp.content_type} is not documented"
    return resp

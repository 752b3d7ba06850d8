"""Errors as JSON: `{"error": <code>, "detail": <what happened and what to do>}` with the right HTTP status.

Rules for this file:
- Every response the API sends for a failure goes through here, including aiohttp's own (404 route, 405 method,
  413 body too large). Typed call-control errors carry their status; pydantic validation is 422.
- An unexpected exception becomes a JSON 500 with a correlation id and one log line with the traceback; the
  client never sees a traceback or exception text.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ivr.ami.errors import AMIEncodingError
from ivr.api.schemas import PATTERN_HINTS
from ivr.calls.errors import CallControlError
from ivr.storage import NotFound as StorageNotFound
from ivr.storage import StorageError

log = logging.getLogger("ivr.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    501: "not_implemented",
    503: "unavailable",
}


def error_response(
    status: int, error: str, detail: Any = None, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": _message(err)}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _message(err: Any) -> str:
    """Pydantic's message, with a pattern said in words (`PATTERN_HINTS`) rather than as a regular expression."""
    if err["type"] == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")))
        if hint:
            return hint
    if err["type"] == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallControlError as exc:
        detail = exc.message if exc.detail is None else f"{exc.message} [Asterisk: {exc.detail}]"
        return error_response(exc.status, exc.code, detail)
    except ValidationError as exc:
        return error_response(422, "invalid_request", _validation_detail(exc))
    except AMIEncodingError as exc:  # a value that cannot be sent to Asterisk safely: the request's fault
        return error_response(422, "invalid_request", str(exc))
    except StorageNotFound as exc:
        return error_response(404, "not_found", str(exc))
    except StorageError as exc:
        log.error("storage failure on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "storage_unavailable", "the database is not available; retry later")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES.get(exc.status, "error")
        detail = exc.text if exc.text and exc.content_type == "application/json" else exc.reason
        if exc.content_type == "application/json" and exc.text:
            try:
                body = json.loads(exc.text)
                if isinstance(body, dict) and "error" in body:
                    return web.json_response(body, status=exc.status, headers=_keep_headers(exc))
            except ValueError:
                pass
        return error_response(exc.status, code, detail, headers=_keep_headers(exc))
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", incident, request.method, request.path)
        return error_response(500, "internal_error", f"unexpected error; it was logged as incident {incident}")


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    keep = {}
    for name in ("Allow", "WWW-Authenticate", "Retry-After"):
        if name in exc.headers:
            keep[name] = exc.headers[name]
    return keep


class JSONError(web.HTTPException):
    """Raise from a handler to answer with a JSON error of any status."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": error, "detail": detail}), content_type="application/json")

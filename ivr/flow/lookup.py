"""HTTP lookups (CRM, webhooks) for the `lookup` node.

Rules for this file:
- A lookup is built from the node and the call's variables (`build_request`), sent by a `LookupClient`, and its
  JSON answer is mapped into variables (`map_answer`). The engine only sees `LookupRequest` in and JSON out.
- Values substituted into the URL are URL-encoded (a caller ID `+370 6&x=1` cannot add query parameters).
  Header values from templates may not contain CR/LF.
- Every failure is a `LookupFailed` subclass with a bounded `kind` (timeout, status, bad_json, connection,
  too_large, not_allowed), which the node turns into its `on_error` branch and the metric label.
- Answers are capped in size; mapped values are text (objects and lists as compact JSON, null as ""), without
  control characters and at most 1024 characters (`clean_value`). An answer nested too deeply to parse or to
  write out is `LookupBadJSON`, never an exception that ends the call.
- `FixtureLookupClient` answers from a file or dict, keyed by URL, `flow:node` or node id, so admin tools and
  tests run flows with lookups and no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from ivr.flow.compiled import LookupNode
from ivr.flow.context import clean_value
from ivr.flow.templates import TemplateError, render

__all__ = [
    "LookupRequest",
    "LookupClient",
    "LookupFailed",
    "LookupTimeout",
    "LookupHTTPError",
    "LookupBadJSON",
    "LookupConnectionError",
    "LookupTooLarge",
    "LookupNotAllowed",
    "HttpLookupClient",
    "FixtureLookupClient",
    "build_request",
    "map_answer",
    "extract_path",
    "decode_answer",
]

MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class LookupRequest:
    flow: str
    node: str
    method: str
    url: str
    timeout: float
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] | None = None


class LookupFailed(Exception):
    """A lookup did not produce a usable answer. `kind` is a fixed word for metrics and `lookup_error`."""

    kind = "error"


class LookupTimeout(LookupFailed):
    kind = "timeout"


class LookupHTTPError(LookupFailed):
    kind = "status"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LookupBadJSON(LookupFailed):
    kind = "bad_json"


class LookupConnectionError(LookupFailed):
    kind = "connection"


class LookupTooLarge(LookupFailed):
    kind = "too_large"


class LookupNotAllowed(LookupFailed):
    """The URL's host is not in the service's `lookups.allowed_hosts`."""

    kind = "not_allowed"


@runtime_checkable
class LookupClient(Protocol):
    async def fetch(self, request: LookupRequest) -> Any:
        """Send the request; return the decoded JSON answer or raise LookupFailed."""
        ...


def _no_crlf(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def build_request(flow: str, node_id: str, node: LookupNode, variables: Mapping[str, object]) -> LookupRequest:
    """Render the node's templates. URL values are percent-encoded; header values lose CR/LF."""
    try:
        url = render(node.url, variables, encode=lambda v: quote(v, safe=""))
        headers = {k: _no_crlf(render(v, variables)) for k, v in node.headers.items()}
        body = {k: render(v, variables) for k, v in node.body.items()} if node.method == "POST" else None
    except TemplateError as exc:
        raise LookupFailed(f"lookup {flow}:{node_id}: {exc}") from None
    if not url.startswith(("http://", "https://")):
        raise LookupFailed(f"lookup {flow}:{node_id}: URL {url[:80]!r} must start with http:// or https://")
    return LookupRequest(
        flow=flow, node=node_id, method=node.method, url=url, timeout=node.timeout, headers=headers, body=body
    )


def extract_path(data: Any, path: str) -> Any:
    """`customer.name` / `items.0.id` -> the value, or None when any step is missing."""
    current = data
    for step in path.split("."):
        if isinstance(current, Mapping):
            if step not in current:
                return None
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            index = int(step)
            if not -len(current) <= index < len(current):
                return None
            current = current[index]
        else:
            return None
    return current


def decode_answer(raw: bytes, request: LookupRequest) -> Any:
    """The answer's JSON. Anything odd is `LookupBadJSON`: invalid UTF-8 or JSON, an integer too long to convert,
    and nesting so deep that the parser runs out of stack (RecursionError), which would otherwise end the call as
    an internal error."""
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except ValueError as exc:  # bad UTF-8, bad JSON, or an integer over CPython's 4300-digit limit
        raise LookupBadJSON(f"lookup {request.flow}:{request.node}: answer is not JSON ({exc})") from None
    except RecursionError:
        raise LookupBadJSON(f"lookup {request.flow}:{request.node}: answer is nested too deeply") from None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, int):
        # str() of an int over 4300 digits raises ValueError (CPython's limit); such a value is not a number a
        # caller can use anyway.
        return str(value) if -(10**64) < value < 10**64 else ""
    return str(value)


def map_answer(data: Any, mapping: Mapping[str, str]) -> dict[str, str]:
    """variable -> text of the value at its dotted path ("" when missing), without control characters and at
    most MAX_VALUE_CHARS long. An answer that cannot be turned into text raises `LookupBadJSON`."""
    try:
        return {name: clean_value(_as_text(extract_path(data, path))) for name, path in mapping.items()}
    except (RecursionError, ValueError) as exc:
        raise LookupBadJSON(f"the answer cannot be mapped into variables ({type(exc).__name__})") from None


class HttpLookupClient:
    """aiohttp client. Pass a shared `aiohttp.ClientSession` or let it create one (closed by `close()`).

    `allowed_hosts` (if not empty) is the exact list of host names lookups may reach; `max_timeout` caps a node's
    own timeout so one flow edit cannot hold calls for minutes. Redirects are not followed.
    """

    def __init__(
        self,
        session: Any = None,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        allowed_hosts: Iterable[str] = (),
        max_timeout: float | None = None,
    ) -> None:
        self._session = session
        self._own_session = session is None
        self.max_bytes = max_bytes
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.max_timeout = max_timeout

    @classmethod
    def from_settings(cls, lookups: Any, session: Any = None) -> HttpLookupClient:
        """From `Settings.lookups` (timeout, allowed_hosts, max_response_bytes)."""
        return cls(
            session,
            max_bytes=lookups.max_response_bytes,
            allowed_hosts=lookups.allowed_hosts,
            max_timeout=lookups.timeout * 3,
        )

    async def _client(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession()
        return self._session

    async def fetch(self, request: LookupRequest) -> Any:
        import asyncio  # with aiohttp, here: classic AGI imports this module before its first command

        import aiohttp

        host = (urlsplit(request.url).hostname or "").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise LookupNotAllowed(
                f"lookup {request.flow}:{request.node}: host {host!r} is not in "
                "lookups.allowed_hosts; add it to the service settings"
            )
        timeout = min(request.timeout, self.max_timeout) if self.max_timeout else request.timeout
        session = await self._client()
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    json=request.body if request.method == "POST" else None,
                    allow_redirects=False,
                ) as response:
                    if response.status >= 400 or response.status < 200:
                        raise LookupHTTPError(
                            f"lookup {request.flow}:{request.node} got HTTP {response.status} from the server",
                            response.status,
                        )
                    raw = await response.content.read(self.max_bytes + 1)
        except TimeoutError:
            raise LookupTimeout(f"lookup {request.flow}:{request.node} got no answer within {timeout} s") from None
        except aiohttp.ClientError as exc:
            raise LookupConnectionError(f"lookup {request.flow}:{request.node} failed: {exc}") from None
        if len(raw) > self.max_bytes:
            raise LookupTooLarge(f"lookup {request.flow}:{request.node}: answer larger than {self.max_bytes} bytes")
        return decode_answer(raw, request)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


_FIXTURE_ERRORS: dict[str, type[LookupFailed]] = {
    "timeout": LookupTimeout,
    "bad_json": LookupBadJSON,
    "connection": LookupConnectionError,
    "too_large": LookupTooLarge,
    "not_allowed": LookupNotAllowed,
}


class FixtureLookupClient:
    """Canned answers, keyed by exact URL, `flow:node` or node id (tried in that order).

    An answer `{"$error": "timeout" | "status" | "bad_json" | "connection", "status": 503}` makes the lookup fail
    that way, so the `on_error` branch can be tested too. No answer for a request -> LookupConnectionError.
    `requests` records what was asked, for tests.
    """

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers = dict(answers)
        self.requests: list[LookupRequest] = []

    @classmethod
    def from_file(cls, path: str | Path) -> FixtureLookupClient:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"lookup fixture {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"lookup fixture {path} is not JSON: line {exc.lineno}: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ValueError(f"lookup fixture {path} must be a JSON object: {{url-or-node: answer}}")
        return cls(data)

    async def fetch(self, request: LookupRequest) -> Any:
        self.requests.append(request)
        for key in (request.url, f"{request.flow}:{request.node}", request.node):
            if key in self.answers:
                answer = self.answers[key]
                break
        else:
            raise LookupConnectionError(
                f"lookup {request.flow}:{request.node}: no fixture answer for {request.url!r} "
                f"(add it under the URL, '{request.flow}:{request.node}' or '{request.node}')"
            )
        if isinstance(answer, dict) and "$error" in answer:
            kind = str(answer["$error"])
            if kind == "status":
                raise LookupHTTPError(f"fixture: HTTP {answer.get('status', 500)}", int(answer.get("status", 500)))
            raise _FIXTURE_ERRORS.get(kind, LookupFailed)(f"fixture: lookup fails with {kind}")
        return answer

    async def close(self) -> None:
        return None

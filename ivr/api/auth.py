"""Bearer-token authentication for the HTTP API, and the start-up rule that protects a non-loopback bind.

Rules for this file:
- Every path needs `Authorization: Bearer <token>` except the public ones (health, readiness, metrics, and the
  console page's static files), which give away nothing a scraper or load balancer should not see.
- Tokens are compared in constant time (`hmac.compare_digest` on bytes). Missing or malformed header -> 401 with
  `WWW-Authenticate: Bearer`; a wrong token -> 403. The token never appears in logs or responses.
- `check_bind()` is what the service calls before listening: an API on a non-loopback address without a token
  is refused (`InsecureBind`), because anyone on the network could then hang up or record calls.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from aiohttp import web

from ivr.api.errors import error_response
from ivr.netutil import is_loopback

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/console"})
# The console page's files (HTML, CSS, JavaScript: no data; it signs in with the token, see ivr.console.web).
PUBLIC_PREFIXES = ("/console/",)


class InsecureBind(Exception):
    """The API would listen on a non-loopback address without a token."""


def check_bind(host: str, token: str | None) -> None:
    """Raise `InsecureBind` unless the API listens on loopback only or has a token."""
    if token:
        return
    if not is_loopback(host):
        raise InsecureBind(
            f"refusing to serve the HTTP API on {host!r} without a token: anyone who can reach it could control "
            "calls. Set IVR_API_TOKEN (or http.token_file), or bind the API to 127.0.0.1"
        )


def load_token(
    env: Mapping[str, str] | None = None, *, var: str = "IVR_API_TOKEN", file_var: str = "IVR_API_TOKEN_FILE"
) -> str | None:
    """The token from `$IVR_API_TOKEN_FILE` (first line) or `$IVR_API_TOKEN`; None when neither is set."""
    env = os.environ if env is None else env
    path = env.get(file_var)
    if path:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise ValueError(f"the API token file {path} is empty")
        return token
    token = (env.get(var) or "").strip()
    return token or None


def bearer_middleware(token: str | None, public: Iterable[str] = PUBLIC_PATHS) -> Callable:
    public_paths = frozenset(public)
    expected = token.encode("utf-8") if token else None

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is None or request.path in public_paths or request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return error_response(
                401,
                "unauthorized",
                "send the API token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="ivr"'},
            )
        if not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            return error_response(403, "forbidden", "the bearer token is not valid for this service")
        return await handler(request)

    return middleware

"""HTTP side of the supervisor console: the page and its files (public), and the live stream `GET /events`.

Rules for this file:
- The page is package data (`ivr/console/static/`): plain HTML, CSS and JavaScript modules, read once at start-up.
  Only the files found there are served, by exact name: no path from a request ever reaches the file system.
- The page and its files are public (they hold no data, like a login page); everything they show comes from the
  API with the bearer token, and so does `/events`. The token never goes in a URL: the page reads the stream with
  fetch() and the Authorization header (EventSource cannot send headers).
- A strict Content-Security-Policy: scripts, styles and connections only from this origin, no inline code, no
  framing. Nothing is fetched from anywhere else, so the console works offline.
- `/events` is Server-Sent Events: a `snapshot` message, then `delta` messages (see `ivr.console.feed`), and a
  comment line every `HEARTBEAT` seconds so both ends notice a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from importlib import resources
from typing import Any

from aiohttp import web

from ivr.console.feed import ConsoleFeed

HEARTBEAT = 15.0
PAGE = "/console"
ASSETS = "/console/{asset}"
EVENTS = "/events"

FEED = web.AppKey("ivr_console_feed", ConsoleFeed)
_FILES = web.AppKey("ivr_console_files", dict)

_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, content type) of every file in the package's static directory."""
    out: dict[str, tuple[bytes, str]] = {}
    root = resources.files("ivr.console") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return out


def _file(request: web.Request, name: str) -> web.Response:
    found = request.app[_FILES].get(name)
    if found is None:
        raise web.HTTPNotFound(text="no such console file")
    body, content_type = found
    charset = "utf-8" if content_type.startswith("text/") or content_type.endswith("+xml") else None
    return web.Response(body=body, content_type=content_type, charset=charset, headers=_SECURITY_HEADERS)


async def page(request: web.Request) -> web.Response:
    return _file(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _file(request, request.match_info["asset"])


async def events(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a reverse proxy must not hold the stream back
        }
    )
    await response.prepare(request)
    sub = await feed.subscribe()
    try:
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT):
                    chunk = await sub.get()
            except TimeoutError:
                chunk = b": ping\n\n"
            if chunk is None:  # the feed ended this stream (shutdown, or the console fell behind)
                break
            await response.write(chunk)
    except (ConnectionError, OSError):
        pass  # the console went away
    finally:
        feed.unsubscribe(sub)
    with contextlib.suppress(ConnectionError, OSError):
        await response.write_eof()
    return response


ROUTES = [("GET", PAGE, page), ("GET", ASSETS, asset), ("GET", EVENTS, events)]


def install(app: web.Application, *, registry: Any, storage: Any, lots: Iterable[str] = ()) -> None:
    """Add the console's routes to the API app; its feed runs while the app does."""
    app[_FILES] = load_files()
    feed = ConsoleFeed(registry, storage, lots)
    app[FEED] = feed
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)

    async def on_startup(_: web.Application) -> None:
        if registry is not None:
            feed.start()

    async def on_shutdown(_: web.Application) -> None:
        await feed.close()  # ends the open streams, so shutdown does not wait for them

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)

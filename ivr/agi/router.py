"""Router: AGI script path -> handler, and `dispatch()`, which runs one routed call the same way for FastAGI
and classic AGI.

Rules for this file:
- A route is an exact script path without slashes at either end (`agi://host:4573/main?lang=en` -> "main").
- Flows are loaded and hot-reloaded elsewhere: an optional fallback resolver is asked for paths that have no
  exact route; it returns a handler or None.
- No route -> `SET VARIABLE IVR_STATUS NOROUTE` so the dialplan can fall back (e.g. to an operator), then close.
  Handler failure -> log, `SET VARIABLE IVR_STATUS ERROR` if the channel is still alive, then close.
  A caller hangup is a normal end, not an error.
- The session is always closed at the end: Asterisk never closes an AGI connection by itself.
- Text from the network is logged with repr() only (no log injection), and never used as a file path here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ivr import dialplan

from .commands import AGICommands
from .errors import AGIError, AGIHangupError

log = logging.getLogger(__name__)

Handler = Callable[[AGICommands], Awaitable[None]]  # an AGISession (FastAGI) or a BlockingSession (classic)
Resolver = Callable[[str], "Handler | None"]

STATUS_VARIABLE = dialplan.STATUS


def normalise_path(path: str) -> str:
    return path.strip().strip("/")


class Router:
    """Exact script paths to handlers, plus an optional fallback resolver."""

    def __init__(self, fallback: Resolver | None = None) -> None:
        self._routes: dict[str, Handler] = {}
        self.fallback = fallback

    def add(self, path: str, handler: Handler) -> None:
        key = normalise_path(path)
        if key in self._routes:
            raise ValueError(f"AGI route {key!r} is already registered; each script path has one handler")
        self._routes[key] = handler

    def remove(self, path: str) -> None:
        self._routes.pop(normalise_path(path), None)

    def route(self, path: str) -> Callable[[Handler], Handler]:
        """Decorator form of add()."""

        def register(handler: Handler) -> Handler:
            self.add(path, handler)
            return handler

        return register

    @property
    def paths(self) -> list[str]:
        return sorted(self._routes)

    def resolve(self, path: str) -> Handler | None:
        key = normalise_path(path)
        handler = self._routes.get(key)
        if handler is None and self.fallback is not None:
            handler = self.fallback(key)
        return handler


async def _set_status(session: AGICommands, value: str) -> None:
    """Best effort: the dialplan reads IVR_STATUS after the AGI; a dead or broken session just skips it."""
    if session.closed:
        return
    try:
        await session.set_variable(STATUS_VARIABLE, value)
    except AGIError as exc:
        log.info("could not set %s=%s on %r: %s", STATUS_VARIABLE, value, session.env.channel, exc)


async def dispatch(router: Router, session: AGICommands, path: str | None = None) -> str:
    """Resolve the route for `path` (default: the session's script path), run the handler, always close.

    Returns the outcome for the AGI_CONNECTIONS metric: "ok", "noroute" or "error".
    """
    route = normalise_path(session.env.script_path if path is None else path)
    try:
        try:
            handler = router.resolve(route)
        except Exception:
            log.exception("AGI route resolver failed for %r; treating it as no route", route)
            handler = None
        if handler is None:
            log.warning(
                "no AGI route for script %r (channel %r); known routes: %s; set %s=NOROUTE",
                route,
                session.env.channel,
                ", ".join(router.paths) or "none",
                STATUS_VARIABLE,
            )
            await _set_status(session, dialplan.NOROUTE)
            return "noroute"
        try:
            await handler(session)
        except AGIHangupError:
            log.debug("caller hung up during %r on %r", route, session.env.channel)
        except Exception:
            log.exception("AGI handler for %r failed on channel %r", route, session.env.channel)
            if not session.hung_up and not session.broken:
                await _set_status(session, dialplan.ERROR)
            return "error"
        return "ok"
    finally:
        await session.close()

"""Classic AGI: one process per call over stdin/stdout, running the same Router, dispatch and AGI commands as FastAGI.

Rules for this file:
- No event loop before the first command: everything before it is silence the caller hears, and `import asyncio`
  alone is ~25-30 ms. The session is a `BlockingSession` (blocking reads on the pipes, the same protocol core and
  high-level commands as FastAGI's `AGISession`), and the handler's coroutine is driven by `ivr.syncrun.drive()`
  (it never suspends). What needs asyncio (storage, HTTP lookups) runs on `ivr.syncrun.BRIDGE`'s loop, created
  when a node first uses it and closed here after the call (decision D2).
- The route is the first AGI argument: `AGI(/path/agi/ivr_agi.py,<flow>)` -> agi_arg_1 = "<flow>".
- stdout belongs to the protocol. The real fd 1 is kept for AGI and fd 1 is pointed at stderr, so a stray
  print() in a handler cannot corrupt a command.
- Asterisk signals a hangup to classic AGI with SIGHUP (the HANGUP line is FastAGI only); SIGHUP marks the session
  dead instead of killing the process, so the dialplan's variables can still be set before exiting. The handler
  is installed before the environment is read; a wake-up pipe lets it end a blocking wait at once.
- The router is built after the environment has been read (`router_factory`), so heavy imports (flows) never
  delay reading Asterisk's header, and a factory failure still lets us set IVR_STATUS.
- A classic process exports no metrics (nobody scrapes it): the engine's metric batch is discarded.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from ..metric_batch import BATCH
from ..syncrun import BRIDGE, drive
from .blocking import BlockingSession, PipeLink
from .errors import AGIConnectionLost, AGIError, AGIProtocolError, AGITimeoutError
from .protocol import AGIConnection
from .router import STATUS_VARIABLE, Router, dispatch

log = logging.getLogger(__name__)

RouterFactory = Callable[[], Router]


def watch_hangup(link: PipeLink) -> int | None:
    """SIGHUP -> `link.notify_hangup()` (never the default, which kills the process), and a wake-up pipe that
    ends a blocking wait when it arrives; returns the pipe's read end. Only in the main thread (else None)."""
    try:

        def on_sighup(signum: int, frame: FrameType | None) -> None:
            link.notify_hangup()

        signal.signal(signal.SIGHUP, on_sighup)
    except (AttributeError, ValueError):  # no SIGHUP (Windows), or not the main thread
        return None
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_end)
        os.close(write_end)
        return None
    return read_end


def run_call(
    router_factory: RouterFactory,
    link: PipeLink,
    *,
    header_timeout: float = 10.0,
    command_timeout: float | None = 30.0,
) -> str:
    """Read the environment, route, run the handler; the outcome ("ok", "noroute", "error", "bad_header")."""
    try:
        session = BlockingSession.open(link, header_timeout=header_timeout, command_timeout=command_timeout)
    except (AGITimeoutError, AGIConnectionLost, AGIProtocolError) as exc:
        log.error("classic AGI: bad environment on stdin: %s", exc)
        link.close()
        return "bad_header"
    try:
        router = router_factory()
    except Exception:
        log.exception("classic AGI: could not build the router")
        try:
            drive(session.set_variable(STATUS_VARIABLE, "ERROR"))
        except AGIError as exc:
            log.info("could not set %s=ERROR: %s", STATUS_VARIABLE, exc)
        finally:
            drive(session.close())
        return "error"
    flow = session.env.args[0] if session.env.args else ""
    return drive(dispatch(router, session, flow))


def main(router_factory: RouterFactory, *, in_fd: int = 0, out_fd: int = 1) -> int:
    """Entry point for a classic AGI script. Exit status 0 unless the call could not be handled at all."""
    # Keep the protocol pipe and point fd 1 at stderr so prints go to Asterisk's log, not into the protocol.
    if out_fd == 1:
        out_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("IVR_AGI_LOG_LEVEL", "WARNING").upper(),
        format="ivr_agi[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    BATCH.discard()
    link = PipeLink(in_fd, out_fd, AGIConnection())
    link.wakeup_fd = watch_hangup(link)
    try:
        result = run_call(router_factory, link)
    finally:
        link.close()
        BRIDGE.close()  # the storage and lookups a node used, and their event loop
    return 0 if result in ("ok", "noroute") else 1

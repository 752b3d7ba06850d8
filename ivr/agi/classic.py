"""Classic AGI: one process per call over stdin/stdout, running the same Router and AGISession as FastAGI.

Rules for this file:
- asyncio streams on the two pipes, not a separate sync loop: handlers (flows) are async and must run exactly
  as they do under FastAGI, and one code path means one set of bugs. The cost is `import asyncio` at start-up
  (measured in docs/agi.md).
- The route is the first AGI argument: `AGI(/path/agi/ivr_agi.py,<flow>)` -> agi_arg_1 = "<flow>".
- stdout belongs to the protocol. The real fd 1 is kept for AGI and fd 1 is pointed at stderr, so a stray
  print() in a handler cannot corrupt a command.
- Asterisk signals a hangup to classic AGI with SIGHUP (the HANGUP line is FastAGI only); SIGHUP marks the session
  dead instead of killing the process, so the dialplan's variables can still be set before exiting.
- The router is built after the environment has been read (`router_factory`), so heavy imports (flows) never
  delay reading Asterisk's header, and a factory failure still lets us set IVR_STATUS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from .errors import AGIConnectionLost, AGIProtocolError, AGITimeoutError
from .router import STATUS_VARIABLE, Router, dispatch
from .session import AGISession

log = logging.getLogger(__name__)

RouterFactory = Callable[[], Router]


async def open_pipes(in_fd: int, out_fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over two pipe file descriptors."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: read_protocol, os.fdopen(in_fd, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(), os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def run_call(
    router_factory: RouterFactory,
    in_fd: int,
    out_fd: int,
    *,
    header_timeout: float = 10.0,
    command_timeout: float | None = 30.0,
) -> str:
    reader, writer = await open_pipes(in_fd, out_fd)
    try:
        session = await AGISession.start(
            reader, writer, header_timeout=header_timeout, command_timeout=command_timeout, record_metrics=False
        )
    except (AGITimeoutError, AGIConnectionLost, AGIProtocolError) as exc:
        log.error("classic AGI: bad environment on stdin: %s", exc)
        writer.close()
        return "bad_header"
    loop = asyncio.get_running_loop()
    # no SIGHUP (Windows) or not the main thread
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, session.notify_hangup)
    try:
        router = router_factory()
    except Exception:
        log.exception("classic AGI: could not build the router")
        try:
            await session.set_variable(STATUS_VARIABLE, "ERROR")
        finally:
            await session.close()
        return "error"
    flow = session.env.args[0] if session.env.args else ""
    return await dispatch(router, session, flow)


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
    result = asyncio.run(run_call(router_factory, in_fd, out_fd))
    return 0 if result in ("ok", "noroute") else 1

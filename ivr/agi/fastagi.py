"""FastAGIServer: accept Asterisk's FastAGI connections, read the environment, route, run, close.

Rules for this file:
- One asyncio task per connection, and an `AGILink` as the socket's protocol (no StreamReader/StreamWriter:
  see link.py); nothing here blocks the event loop. A bad peer (slow or partial header, an
  oversized header or line, EOF mid-header, a stalled peer) costs its own task only and is bounded by
  `header_timeout`, `line_limit`, `header_limit` and the session's `command_timeout`.
- Over `max_connections` a new connection is closed at once (and counted as "rejected"); the running calls
  are not touched.
- `stop()` is graceful: stop accepting, let running calls finish until `shutdown_deadline`, then cancel them
  (which closes their sockets so Asterisk continues the dialplan).
- Routing, status variables and closing are shared with classic AGI in `router.dispatch()`.
- Metrics: AGI_CONNECTIONS_ACTIVE, AGI_CONNECTIONS{result: ok, noroute, rejected, bad_header, error}.
"""
from __future__ import annotations

import asyncio
import logging

from .. import metrics
from .errors import AGIConnectionLost, AGIProtocolError, AGITimeoutError
from .link import AGILink, read_buffer
from .protocol import DEFAULT_HEADER_LIMIT, DEFAULT_LINE_LIMIT, AGIConnection
from .router import Router, dispatch
from .session import AGISession

log = logging.getLogger(__name__)


class FastAGIServer:
    """`server = FastAGIServer(router, "0.0.0.0", 4573); await server.start(); ...; await server.stop()`."""

    def __init__(
        self,
        router: Router,
        host: str = "0.0.0.0",
        port: int = 4573,
        *,
        max_connections: int = 5000,
        header_timeout: float = 5.0,
        command_timeout: float | None = 30.0,
        shutdown_deadline: float = 30.0,
        line_limit: int = DEFAULT_LINE_LIMIT,
        header_limit: int = DEFAULT_HEADER_LIMIT,
        hangup_grace: float = 0.2,
        backlog: int = 1024,
    ) -> None:
        self.router = router
        self.host = host
        self._port = port
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.shutdown_deadline = shutdown_deadline
        self.line_limit = line_limit
        self.header_limit = header_limit
        self.hangup_grace = hangup_grace
        self.backlog = backlog
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._read_buffer = read_buffer()   # shared by this server's links (see link.py)
        self.rejected = 0   # connections refused over the cap (also in the metric)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAGIServer already started")
        self._stopping = False
        # asyncio's socket transports already set TCP_NODELAY: replies are single small lines, never delayed.
        self._server = await asyncio.get_running_loop().create_server(
            self._new_link, self.host, self._port, backlog=self.backlog,
        )
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    def _new_link(self) -> AGILink:
        conn = AGIConnection(line_limit=self.line_limit, header_limit=self.header_limit)
        return AGILink(conn, on_made=self._on_connect, high_water=2 * self.line_limit,
                       read_buffer=self._read_buffer)

    def _on_connect(self, link: AGILink) -> None:
        if self._stopping or len(self._tasks) >= self.max_connections:
            self.rejected += 1
            metrics.AGI_CONNECTIONS.labels(result="rejected").inc()
            if not self._stopping:
                log.warning("FastAGI connection cap (%d) reached; refusing a connection from %r",
                            self.max_connections, link.get_extra_info("peername"))
            link.abort()
            return
        task = asyncio.get_running_loop().create_task(self._run_call(link))
        self._tasks.add(task)
        metrics.AGI_CONNECTIONS_ACTIVE.inc()
        task.add_done_callback(self._call_done)   # also runs for a task cancelled before its first step

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        metrics.AGI_CONNECTIONS_ACTIVE.dec()

    async def _run_call(self, link: AGILink) -> None:
        try:
            try:
                result = await self._serve_call(link)
            except Exception:  # a bug below dispatch(); keep the server and the metrics consistent
                log.exception("FastAGI connection from %r failed", link.get_extra_info("peername"))
                result = "error"
            metrics.AGI_CONNECTIONS.labels(result=result).inc()
        finally:
            if link.transport is not None and not link.transport.is_closing():
                link.abort()

    async def _serve_call(self, link: AGILink) -> str:
        try:
            session = await AGISession.open(
                link, header_timeout=self.header_timeout, command_timeout=self.command_timeout,
                hangup_grace=self.hangup_grace,
            )
        except (AGITimeoutError, AGIConnectionLost, AGIProtocolError, ConnectionError) as exc:
            log.warning("bad FastAGI header from %r: %s", link.get_extra_info("peername"), exc)
            link.abort()
            return "bad_header"
        return await dispatch(self.router, session)

    async def stop(self) -> None:
        """Stop accepting; let running calls finish until `shutdown_deadline`; then cancel (close) the rest."""
        self._stopping = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        pending = set(self._tasks)
        if pending:
            log.info("FastAGI stopping: waiting up to %.1f s for %d call(s)", self.shutdown_deadline, len(pending))
            _, still = await asyncio.wait(pending, timeout=self.shutdown_deadline)
            if still:
                log.warning("FastAGI shutdown deadline passed; closing %d call(s)", len(still))
                for task in still:
                    task.cancel()
                await asyncio.wait(still, timeout=5.0)
        if server is not None:
            try:
                async with asyncio.timeout(5.0):
                    await server.wait_closed()
            except TimeoutError:
                pass

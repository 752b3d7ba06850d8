"""FastAGIServer: accept Asterisk's FastAGI connections, read the environment, route, run, close.

Rules for this file:
- One asyncio task per connection; nothing here blocks the event loop. A bad peer (slow or partial header, an
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
import socket

from .. import metrics
from .errors import AGIConnectionLost, AGIProtocolError, AGITimeoutError
from .protocol import DEFAULT_HEADER_LIMIT, DEFAULT_LINE_LIMIT
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
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self._port, backlog=self.backlog, limit=self.line_limit * 2,
        )
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping or len(self._tasks) >= self.max_connections:
            self.rejected += 1
            metrics.AGI_CONNECTIONS.labels(result="rejected").inc()
            if not self._stopping:
                log.warning("FastAGI connection cap (%d) reached; refusing a connection from %r",
                            self.max_connections, writer.get_extra_info("peername"))
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        metrics.AGI_CONNECTIONS_ACTIVE.inc()
        try:
            try:
                result = await self._serve_call(reader, writer)
            except Exception:  # a bug below dispatch(); keep the server and the metrics consistent
                log.exception("FastAGI connection from %r failed", writer.get_extra_info("peername"))
                result = "error"
            metrics.AGI_CONNECTIONS.labels(result=result).inc()
        finally:
            self._tasks.discard(task)
            metrics.AGI_CONNECTIONS_ACTIVE.dec()
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _serve_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:  # replies are single small lines: do not let Nagle delay them
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            session = await AGISession.start(
                reader, writer, header_timeout=self.header_timeout, line_limit=self.line_limit,
                header_limit=self.header_limit, command_timeout=self.command_timeout, hangup_grace=self.hangup_grace,
            )
        except (AGITimeoutError, AGIConnectionLost, AGIProtocolError, ConnectionError) as exc:
            log.warning("bad FastAGI header from %r: %s", writer.get_extra_info("peername"), exc)
            writer.transport.abort()
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

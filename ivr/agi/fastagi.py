"""FastAGIServer: accept Asterisk's FastAGI connections, read the environment, route, run, close.

Rules for this file:
- One asyncio task per connection, and an `AGILink` as the socket's protocol (no StreamReader/StreamWriter:
  see link.py); nothing here blocks the event loop. A bad peer (slow or partial header, an
  oversized header or line, EOF mid-header, a stalled peer) costs its own task only and is bounded by
  `header_timeout`, `line_limit`, `header_limit` and the session's `command_timeout`.
- A peer whose address is not in `allowed_peers` (default: loopback only) is closed at once, before a byte is
  read, counted as "forbidden" and logged at most once per 10 s (a port scan cannot flood the log): anyone who
  reaches the port could otherwise pretend to be Asterisk.
- Over `max_connections` a new connection is closed at once (and counted as "rejected"); the running calls
  are not touched.
- A peer whose header is bad (half sent then closed, stalled past `header_timeout`, oversized) is counted as
  "bad_header". Refusals and bad headers are logged through `RateLimitedWarning`s (one line per kind per 10 s,
  the next line saying how many were left out): a flood of 300 broken connections is 300 in the metric and one
  WARNING, not 300 log lines.
- Accepted sockets get TCP keepalive, so a powered-off Asterisk host (no FIN, no RST) does not hold a session
  and a connection slot forever while a command or an `exec()` waits. On Linux it is set once on the listening
  socket, which passes it on to every accepted one (checked on the first): four system calls less per call.
- `stop()` is graceful: stop accepting, let running calls finish until `shutdown_deadline`, then cancel them
  (which closes their sockets so Asterisk continues the dialplan).
- Routing, status variables and closing are shared with classic AGI in `router.dispatch()`.
- Metrics: AGI_CONNECTIONS_ACTIVE, AGI_CONNECTIONS{result: ok, noroute, forbidden, rejected, bad_header, error};
  those of every call go through ivr.metric_batch (folded within 1 s and before every scrape).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterable
from typing import Any

from .. import metrics
from ..metric_batch import BATCH
from ..netutil import set_tcp_keepalive
from .errors import AGIConnectionLost, AGIProtocolError, AGITimeoutError
from .link import AGILink, read_buffer
from .peers import LOOPBACK_ONLY, PeerAllowList, RateLimitedWarning
from .protocol import DEFAULT_HEADER_LIMIT, DEFAULT_LINE_LIMIT, AGIConnection
from .router import Router, dispatch
from .session import DEFAULT_EXEC_TIMEOUT, AGISession
from .tally import TALLY

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
        allowed_peers: Iterable[str] | PeerAllowList = LOOPBACK_ONLY,
        exec_timeout: float | None = DEFAULT_EXEC_TIMEOUT,
        keepalive_idle: float | None = 60.0,
        keepalive_interval: float = 10.0,
        keepalive_count: int = 3,
    ) -> None:
        """`allowed_peers`: addresses/CIDR ranges that may connect (the Asterisk servers); ValueError names a bad
        entry. `exec_timeout`: longest EXEC (Dial, Queue, ...) before the session is closed; None = no limit.
        `keepalive_idle` None turns TCP keepalive off; otherwise a dead peer is found after about
        idle + interval x count seconds of silence (60 + 10 x 3 by default)."""
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
        self.allowed_peers = allowed_peers if isinstance(allowed_peers, PeerAllowList) else PeerAllowList(allowed_peers)
        self.exec_timeout = exec_timeout
        self.keepalive_idle = keepalive_idle
        self.keepalive_interval = keepalive_interval
        self.keepalive_count = keepalive_count
        self._forbidden_log = RateLimitedWarning(log, interval=10.0)
        self._bad_header_log = RateLimitedWarning(log, interval=10.0)
        self._cap_log = RateLimitedWarning(log, interval=10.0)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._read_buffer = read_buffer()  # shared by this server's links (see link.py)
        self._keepalive_inherited = False  # set on the listening socket(s), carried over to accepted ones
        self._keepalive_checked = False
        self.rejected = 0  # connections refused over the cap (also in the metric)
        self.forbidden = 0  # connections refused by the allow-list (also in the metric)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is not None and self._server.sockets:
            port: int = self._server.sockets[0].getsockname()[1]  # getsockname() is untyped (Any)
            return port
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
            self._new_link,
            self.host,
            self._port,
            backlog=self.backlog,
        )
        # Linux copies a listening socket's keepalive options to the sockets it accepts: set them once here; the
        # first accepted socket is checked (_keepalive_check) and, if they did not carry over, each one gets them.
        self._keepalive_inherited = False
        if self.keepalive_idle is not None and sys.platform == "linux":
            self._keepalive_inherited = all(
                set_tcp_keepalive(sock, self.keepalive_idle, self.keepalive_interval, self.keepalive_count)
                for sock in self._server.sockets
            )
        self._keepalive_checked = False
        log.info("FastAGI listening on %s:%d", self.host, self.port)
        metrics.add_collect_hook(TALLY.flush)  # a scrape shows every command so far, not up to 1 s late

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    def _new_link(self) -> AGILink:
        conn = AGIConnection(line_limit=self.line_limit, header_limit=self.header_limit)
        return AGILink(conn, on_made=self._on_connect, high_water=2 * self.line_limit, read_buffer=self._read_buffer)

    def _on_connect(self, link: AGILink) -> None:
        # Called from connection_made: nothing has been read yet.
        if not self.allowed_peers.allows(link.get_extra_info("peername")):
            self.forbidden += 1
            metrics.AGI_CONNECTIONS.labels(result="forbidden").inc()
            self._forbidden_log.warning(
                "FastAGI connection from %r refused: not in fastagi.allowed_peers %s",
                link.get_extra_info("peername"),
                [str(n) for n in self.allowed_peers.networks],
            )
            link.abort()
            return
        if self._stopping or len(self._tasks) >= self.max_connections:
            self.rejected += 1
            metrics.AGI_CONNECTIONS.labels(result="rejected").inc()
            if not self._stopping:
                self._cap_log.warning(
                    "FastAGI connection cap (%d) reached; refusing a connection from %r",
                    self.max_connections,
                    link.get_extra_info("peername"),
                )
            link.abort()
            return
        if self.keepalive_idle is not None and link.transport is not None:
            if not self._keepalive_checked:
                self._keepalive_check(link.transport.get_extra_info("socket"))
            if not self._keepalive_inherited:
                set_tcp_keepalive(
                    link.transport.get_extra_info("socket"),
                    self.keepalive_idle,
                    self.keepalive_interval,
                    self.keepalive_count,
                )
        task = asyncio.get_running_loop().create_task(self._run_call(link))
        self._tasks.add(task)
        BATCH.record("AGI_CONNECTIONS_ACTIVE", (), 1.0)  # batched: folded within 1 s and at every scrape
        task.add_done_callback(self._call_done)  # also runs for a task cancelled before its first step

    def _keepalive_check(self, sock: Any) -> None:
        """Once per server: did the accepted socket inherit the listener's keepalive (idle time included)?"""
        self._keepalive_checked = True
        if not self._keepalive_inherited or sock is None:
            return
        try:
            inherited = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0 and (
                not hasattr(socket, "TCP_KEEPIDLE")
                or sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == max(1, int(self.keepalive_idle or 0))
            )
        except OSError:
            inherited = False
        if not inherited:
            log.debug("accepted FastAGI sockets do not inherit keepalive; setting it on each")
            self._keepalive_inherited = False

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        BATCH.record("AGI_CONNECTIONS_ACTIVE", (), -1.0)

    async def _run_call(self, link: AGILink) -> None:
        try:
            try:
                result = await self._serve_call(link)
            except Exception:  # a bug below dispatch(); keep the server and the metrics consistent
                log.exception("FastAGI connection from %r failed", link.get_extra_info("peername"))
                result = "error"
            BATCH.record("AGI_CONNECTIONS", (result,))
        finally:
            if link.transport is not None and not link.transport.is_closing():
                link.abort()

    async def _serve_call(self, link: AGILink) -> str:
        try:
            session = await AGISession.open(
                link,
                header_timeout=self.header_timeout,
                command_timeout=self.command_timeout,
                hangup_grace=self.hangup_grace,
                exec_timeout=self.exec_timeout,
            )
        except (AGITimeoutError, AGIConnectionLost, AGIProtocolError, ConnectionError) as exc:
            self._bad_header_log.warning("bad FastAGI header from %r: %s", link.get_extra_info("peername"), exc)
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
            metrics.remove_collect_hook(TALLY.flush)
            TALLY.flush()  # the stopped server's calls are in the metrics without waiting for a scrape

"""AGILink: one AGI peer's byte stream, as an asyncio.Protocol that feeds the sans-IO `AGIConnection`.

Rules for this file:
- It moves bytes and hands over events; it never interprets them. Received bytes go into `AGIConnection`; the
  one session waiting (one command in flight) gets the next event through a future from `wait()`. A wait can
  be cut short with `expire()` (the session's timeout), which resolves it with None.
- While nobody waits, bytes are buffered, not parsed: a HANGUP notice received while idle is consumed before the
  next reply, as the state machine expects. Reading pauses once more than `high_water` bytes wait unparsed, so
  an idle session never holds more than that.
- Sockets (FastAGI) use it as their protocol directly, with no StreamReader/StreamWriter between the socket and
  the parser: these layers cost more per command than parsing the reply. Pipes and any other StreamReader/
  StreamWriter pair go through `AGILink.from_streams()`, where a pump task calls the same methods, so both
  paths have the same semantics.
- It is a BufferedProtocol: the socket is read with recv_into() into a buffer we own. A plain Protocol makes
  asyncio call recv(256 KiB), which allocates (and maps, and unmaps) a 256 KiB object for every 13-byte reply:
  ~20 us per read on the build machine, more than everything else a command costs. All links of one server
  share one read buffer: asyncio calls get_buffer() and buffer_updated() back to back on the loop's thread,
  and the bytes are copied into the connection before anything else runs.
- Writes are never drained: one command is in flight at a time and its reply is awaited before the next one is
  written, so at most one command line (< 2 KiB) is ever buffered for a peer that stops reading.
- EOF and a lost connection become the connection's EOF event (the session raises AGIConnectionLost); the
  transport's error, if any, is kept in `lost_reason` for the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import AGIProtocolError
from .protocol import DEFAULT_LINE_LIMIT, AGIConnection, Event

READ_CHUNK = 65536


def _not_connected(data: bytes) -> None:
    raise ConnectionError("AGI link has no transport yet")


def read_buffer(size: int = READ_CHUNK) -> memoryview:
    """A read buffer links can share (one per server: all its links run on one loop)."""
    return memoryview(bytearray(size))


class AGILink(asyncio.BufferedProtocol):
    """`loop.create_server(lambda: AGILink(AGIConnection(), on_made=...))`, or `AGILink.from_streams(r, w, conn)`."""

    __slots__ = (
        "conn",
        "transport",
        "write",
        "waiter",
        "lost",
        "lost_reason",
        "high_water",
        "_on_made",
        "_loop",
        "_paused",
        "_closed",
        "_pump",
        "_resume",
        "_writer",
        "_read_buffer",
    )

    def __init__(
        self,
        conn: AGIConnection,
        on_made: Callable[[AGILink], None] | None = None,
        high_water: int = 2 * DEFAULT_LINE_LIMIT,
        read_buffer: memoryview | None = None,
    ) -> None:
        """`read_buffer`: shared with other links on the same loop (see `read_buffer()`); by default each link
        allocates its own on its first read."""
        self.conn = conn
        self._read_buffer = read_buffer
        self.transport: asyncio.BaseTransport | None = None
        self.write: Callable[[bytes], None] = _not_connected  # bound transport.write once connected
        self.waiter: asyncio.Future[Event | None] | None = None
        self.lost = False
        self.lost_reason: BaseException | None = None
        self.high_water = high_water
        self._on_made = on_made
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused = False
        self._closed: asyncio.Future[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._resume: asyncio.Future[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    # -- building from streams (pipes, tests) -----------------------------------------------------------
    @classmethod
    def from_streams(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: AGIConnection) -> AGILink:
        """A link over an existing StreamReader/StreamWriter pair: a pump task feeds the reader's bytes in."""
        link = cls(conn, high_water=2 * conn.line_limit)
        link._loop = asyncio.get_running_loop()
        link.transport = writer.transport
        link.write = writer.write
        link._writer = writer
        link._pump = link._loop.create_task(link._run_pump(reader))
        return link

    async def _run_pump(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                if self._paused:
                    self._resume = self._loop.create_future()  # type: ignore[union-attr]
                    await self._resume
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                self.data_received(data)
        except (ConnectionError, OSError) as exc:
            self.connection_lost(exc)
            return
        self.connection_lost(None)

    # -- asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.write = transport.write  # type: ignore[attr-defined]
        self._loop = asyncio.get_running_loop()
        if self._on_made is not None:
            self._on_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self._read_buffer
        if buffer is None:
            buffer = self._read_buffer = read_buffer(4096)
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_buffer[:nbytes])  # type: ignore[index]  # copied into the connection

    def data_received(self, data: bytes | memoryview) -> None:
        conn = self.conn
        conn.receive_data(data)
        waiter = self.waiter
        if waiter is not None:
            self._deliver(waiter)
        elif not self._paused and conn.buffered_bytes > self.high_water:
            self._pause()

    def eof_received(self) -> bool | None:
        self._eof()
        return None  # let the transport close itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None and self.lost_reason is None:
            self.lost_reason = exc
        self._eof()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:  # at most one command line is ever buffered (see the header)
        pass

    def resume_writing(self) -> None:
        pass

    # -- for the session ---------------------------------------------------------------------------------
    def wait(self) -> asyncio.Future[Event | None]:
        """A future for the next event (already resolved if one is buffered). One waiter at a time."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        waiter: asyncio.Future[Event | None] = loop.create_future()
        self.waiter = waiter
        if self._paused:
            self._unpause()
        if self.conn.buffered:
            self._deliver(waiter)
        return waiter

    def expire(self) -> None:
        """Resolve the pending wait with None (the session's timeout fired)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Close our side; pending bytes are still sent. `wait_closed()` waits for the end."""
        if self._writer is not None:
            self._writer.close()
        elif self.transport is not None:
            self.transport.close()
        if self._pump is not None:
            self._pump.cancel()

    async def wait_closed(self) -> None:
        if self._writer is not None:
            await self._writer.wait_closed()
            return
        if self.lost or self.transport is None:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await self._closed

    def abort(self) -> None:
        """Drop the connection now, discarding unsent bytes."""
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abort", None)
            if abort is not None:
                abort()
            else:
                transport.close()
        if self._pump is not None:
            self._pump.cancel()

    def get_extra_info(self, name: str) -> object:
        return self.transport.get_extra_info(name) if self.transport is not None else None

    # -- internals ---------------------------------------------------------------------------------------
    def _deliver(self, waiter: asyncio.Future[Event | None]) -> None:
        if waiter.done():  # cancelled (the task was cancelled) or expired: leave the bytes buffered
            self.waiter = None
            return
        try:
            event = self.conn.next_event()
        except AGIProtocolError as exc:
            self.waiter = None
            waiter.set_exception(exc)
            return
        if event is not None:
            self.waiter = None
            waiter.set_result(event)

    def _eof(self) -> None:
        conn = self.conn
        if not conn.eof:
            conn.receive_data(b"")
        waiter = self.waiter
        if waiter is not None:
            self._deliver(waiter)

    def _pause(self) -> None:
        self._paused = True
        if self._pump is None and self.transport is not None:
            self.transport.pause_reading()  # type: ignore[attr-defined]

    def _unpause(self) -> None:
        self._paused = False
        if self._pump is None:
            if self.transport is not None and not self.lost:
                self.transport.resume_reading()  # type: ignore[attr-defined]
        elif self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

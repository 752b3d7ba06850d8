"""BlockingSession: the AGI commands over classic AGI's two pipes with blocking reads, no event loop, no asyncio.

Rules for this file:
- Classic AGI is one process per call, and everything before its first command is silence the caller hears
  (`import asyncio` alone costs ~25-30 ms, docs/agi.md). So this session does its I/O with `select()` and
  `os.read()`/`os.write()` on the pipes, and its `async def` methods never suspend: a coroutine of the flow engine
  driven with `ivr.syncrun.drive()` runs to its end in one `send()`. It is the same framing and parsing
  (`protocol.AGIConnection`), the same high-level commands and result labels (`commands.AGICommands`) and the
  same errors as the asyncio `AGISession`; only the round trip differs (decision D2).
- Asterisk tells a classic script of a hangup with SIGHUP (never a HANGUP line). The signal handler only sets a
  flag (`PipeLink.notify_hangup`, safe at any bytecode); the session applies it to the connection's state machine
  at its own safe points, and a wake-up pipe (`signal.set_wakeup_fd`) ends a `select()` at once, so the
  `result=-1` grace learns of a hangup without waiting the whole grace.
- A reply that does not come within the command's timeout (the same timeouts as `AGISession`) breaks and closes
  the session and raises AGITimeoutError; EOF is AGIConnectionLost; a write to a closed pipe (EPIPE) too.
- Writes are blocking and cannot stall: one command (< 2 KiB, under PIPE_BUF) is in flight at a time and
  Asterisk reads it before it replies, so the pipe never holds more than one unread command.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from typing import Any

from .commands import _DEFAULT, DEFAULT_EXEC_TIMEOUT, AGICommands, Observe, command_label, no_metrics
from .errors import AGIConnectionLost, AGIProtocolError, AGISessionClosed, AGITimeoutError
from .protocol import (
    DEFAULT_HEADER_LIMIT,
    DEFAULT_LINE_LIMIT,
    EOF,
    AGIConnection,
    AGIEnvironment,
    AGIReply,
    Event,
    encode_command,
)

# What PipeLink.wait() saw.
INPUT, SIGNAL, TIMEOUT = "input", "signal", "timeout"
READ_SIZE = 65536


class PipeLink:
    """The two pipe file descriptors of one classic AGI call, feeding an `AGIConnection`."""

    def __init__(self, in_fd: int, out_fd: int, conn: AGIConnection, *, wakeup_fd: int | None = None) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.conn = conn
        self.wakeup_fd = wakeup_fd  # the read end of signal.set_wakeup_fd()'s pipe, if any
        self.hangup_pending = False
        self.closed = False
        self.lost_reason: str | None = None

    def notify_hangup(self) -> None:
        """Called from the SIGHUP handler: only a flag (the state machine is changed in `take_hangup`)."""
        self.hangup_pending = True

    def take_hangup(self) -> None:
        """Apply a SIGHUP received since the last call to the connection's state."""
        if self.hangup_pending:
            self.hangup_pending = False
            self.conn.notify_hangup()

    def wait(self, deadline: float | None) -> str:
        """Block until input (or EOF) is readable (INPUT), a signal arrived (SIGNAL) or `deadline` (TIMEOUT)."""
        fds = [self.in_fd] if self.wakeup_fd is None else [self.in_fd, self.wakeup_fd]
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select(fds, [], [], timeout)
        if self.wakeup_fd is not None and self.wakeup_fd in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup_fd, 512)  # the signal numbers; what matters is the flag the handler set
            self.take_hangup()
            return SIGNAL
        if readable:
            return INPUT
        self.take_hangup()
        return TIMEOUT

    def receive(self) -> None:
        """Read what is there into the connection (b"" = EOF; a read error counts as the peer gone)."""
        try:
            data = os.read(self.in_fd, READ_SIZE)
        except OSError as exc:
            self.lost_reason = str(exc)
            data = b""
        self.conn.receive_data(data)

    def next_event(self, deadline: float | None) -> Event | None:
        """The next event, reading as needed; None at `deadline`. A SIGHUP is applied as it arrives."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not None:
                return event
            seen = self.wait(deadline)
            if seen == INPUT:
                self.receive()
            elif seen == TIMEOUT:
                return None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.out_fd, view) :]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.out_fd, self.in_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class BlockingSession(AGICommands):
    """One classic AGI call's session: `BlockingSession.open(link)` reads the environment."""

    def __init__(
        self,
        link: PipeLink,
        *,
        command_timeout: float | None = 30.0,
        media_timeout: float | None = 3600.0,
        hangup_grace: float = 0.2,
        exec_timeout: float | None = DEFAULT_EXEC_TIMEOUT,
        observe: Observe = no_metrics,  # a classic process exports no metrics (decision D2)
    ) -> None:
        if link.conn.env is None:
            raise ValueError("BlockingSession needs a link whose environment has been received (use open())")
        self.env: AGIEnvironment = link.conn.env
        self._link = link
        self._conn = link.conn
        self.command_timeout = command_timeout
        self.media_timeout = media_timeout
        self.exec_timeout = exec_timeout
        self.hangup_grace = hangup_grace
        self._observe = observe
        self._held = None
        self._hangup_sent = False
        self._closed = False
        self._broken = False

    @classmethod
    def open(cls, link: PipeLink, *, header_timeout: float | None = 10.0, **kwargs: Any) -> BlockingSession:
        """Read the environment from `link` and return a session. Raises AGITimeoutError (no full header in
        time), AGIConnectionLost (EOF inside the header) or AGIProtocolError (oversized header, line too long)."""
        deadline = None if header_timeout is None else time.monotonic() + header_timeout
        event = link.next_event(deadline)
        if event is None:
            raise AGITimeoutError(f"no complete AGI environment within {header_timeout} s")
        if type(event) is EOF:
            raise AGIConnectionLost("the AGI peer closed the pipe before the environment ended")
        return cls(link, **kwargs)

    @classmethod
    def from_fds(
        cls,
        in_fd: int,
        out_fd: int,
        *,
        wakeup_fd: int | None = None,
        line_limit: int = DEFAULT_LINE_LIMIT,
        header_limit: int = DEFAULT_HEADER_LIMIT,
        **kwargs: Any,
    ) -> BlockingSession:
        link = PipeLink(
            in_fd, out_fd, AGIConnection(line_limit=line_limit, header_limit=header_limit), wakeup_fd=wakeup_fd
        )
        return cls.open(link, **kwargs)

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        self._link.take_hangup()
        return self._conn.hung_up or self._hangup_sent

    @property
    def broken(self) -> bool:
        return self._broken

    def notify_hangup(self) -> None:
        self._link.notify_hangup()

    # -- the round trip -----------------------------------------------------------------------------------------
    async def command(self, *words: str, timeout: float | None = _DEFAULT, count_negative: bool = True) -> AGIReply:
        data = encode_command(*words)
        label = command_label(words)
        if timeout is _DEFAULT:
            timeout = self.command_timeout
        if self._closed:
            raise AGISessionClosed(
                "AGI session is closed" + (" after an earlier timeout/protocol error" if self._broken else "")
            )
        link = self._link
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        try:
            link.take_hangup()
            self._conn.mark_sent()
            link.write(data)
            while True:
                event = link.next_event(deadline)
                if type(event) is AGIReply:
                    break
                if event is None:
                    self._broken = True
                    self._observe(label, "timeout", time.monotonic() - started)
                    self._shutdown()
                    raise AGITimeoutError(
                        f"no reply to {data[:60]!r} within {timeout} s; the session was closed (its reply would "
                        "arrive out of turn). Raise the command's timeout if Asterisk legitimately needs longer."
                    )
                if type(event) is EOF:
                    self._observe(label, "hangup", time.monotonic() - started)
                    self._shutdown()
                    reason = f" ({link.lost_reason})" if link.lost_reason else ""
                    where = " inside a 520 usage block" if event.in_usage_block else ""
                    raise AGIConnectionLost(f"the AGI peer closed the pipe{where} while a reply was due{reason}")
                # HangupNotice: the connection recorded it (dead mode); keep waiting for the reply.
        except AGIProtocolError:
            self._broken = True
            self._shutdown()
            raise
        except OSError as exc:  # EPIPE writing to a closed pipe, or a select/read failure
            self._observe(label, "hangup", time.monotonic() - started)
            self._shutdown()
            raise AGIConnectionLost(f"the AGI pipe failed: {exc}") from exc
        return self._result_of(label, event, time.monotonic() - started, count_negative)

    async def _wait_for_hangup_notice(self, grace: float) -> bool:
        if self.hung_up or self._closed:
            return True
        deadline = time.monotonic() + grace
        link = self._link
        try:
            while not self.hung_up:  # a SIGHUP applied by wait() shows here
                event = self._conn.next_event()
                if event is None:
                    seen = link.wait(deadline)
                    if seen == TIMEOUT:
                        return False
                    if seen == INPUT:
                        link.receive()
                elif type(event) is EOF:
                    self._shutdown()
                    return True
        except AGIProtocolError:
            self._broken = True
            self._shutdown()
            raise
        except OSError:
            self._shutdown()
            return True
        return True

    # -- closing ----------------------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._link.close()

    async def close(self) -> None:
        self._shutdown()

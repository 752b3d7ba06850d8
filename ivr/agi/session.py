"""AGISession: high-level async AGI commands over an `AGILink` (a socket, or a StreamReader/StreamWriter pair).

Rules for this file:
- All framing and parsing happens in `protocol.AGIConnection`, all I/O in `link.AGILink`; this file only maps
  replies to results and typed errors. FastAGI (TCP) and classic AGI (stdin/stdout pipes) use the same class.
- One command in flight per session (a busy flag with a FIFO of waiters: a lock without its call overhead).
  Replies are read only while a command is in flight; a `HANGUP` line that arrives while idle stays buffered
  and is consumed as a notice before the next reply, so replies never shift.
- A command that times out leaves the stream desynchronised (its reply may still come): the session is marked
  broken and closed, and `AGITimeoutError` is raised. Nothing is retried. The timeout is one lazily re-armed
  loop timer per session, not one per command (see `_on_timer`).
- The high-level commands (answer, stream_file, exec, ...), dead mode, the `result=-1` grace and the result labels
  live in `commands.AGICommands`, shared with classic AGI's `blocking.BlockingSession`; this class is the asyncio
  round trip under them.
- `close()` always closes our side: Asterisk never closes a FastAGI socket by itself, and an open socket keeps
  the whole call up.
- Commands are recorded in `tally.TALLY` and folded into Prometheus in batches (at most 1 s late, and before
  every scrape while a FastAGIServer runs); labels as in `commands`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from .commands import (
    _DEFAULT,
    CALL_APPS,
    COMMAND_RESULTS,
    DEFAULT_EXEC_TIMEOUT,
    KNOWN_COMMANDS,
    MEDIA_COMMANDS,
    AGICommands,
    command_label,
    no_metrics,
)
from .errors import (
    AGIConnectionLost,
    AGIDeadChannelError,
    AGIInvalidCommandError,
    AGIProtocolError,
    AGISessionClosed,
    AGITimeoutError,
    AGIUsageError,
)
from .link import AGILink
from .protocol import (
    DEFAULT_HEADER_LIMIT,
    DEFAULT_LINE_LIMIT,
    EOF,
    AGIConnection,
    AGIEnvironment,
    AGIReply,
    encode_command,
)
from .tally import TALLY

# The label names used to live here; they are re-exported for the code that imports them from this module.
__all__ = [
    "AGISession",
    "CALL_APPS",
    "COMMAND_RESULTS",
    "DEFAULT_EXEC_TIMEOUT",
    "KNOWN_COMMANDS",
    "MEDIA_COMMANDS",
    "command_label",
]

log = logging.getLogger(__name__)


class AGISession(AGICommands):
    """One call's AGI session. Build it with `await AGISession.start(reader, writer)` (reads the environment)."""

    def __init__(
        self,
        link: AGILink,
        *,
        command_timeout: float | None = 30.0,
        media_timeout: float | None = 3600.0,
        hangup_grace: float = 0.2,
        record_metrics: bool = True,
        exec_timeout: float | None = DEFAULT_EXEC_TIMEOUT,
    ) -> None:
        connection = link.conn
        if connection.env is None:
            raise ValueError("AGISession needs a link whose environment has been received (use AGISession.open)")
        self.env: AGIEnvironment = connection.env
        self._link = link
        self._conn = connection
        self.command_timeout = command_timeout
        self.media_timeout = media_timeout  # prompts, SAY, GET DATA: their length is not known here
        self.exec_timeout = exec_timeout  # EXEC: Dial/Queue/Park legitimately last hours, but not forever
        self.hangup_grace = hangup_grace
        self._observe = TALLY.record if record_metrics else no_metrics  # folded into Prometheus in batches
        self._busy = False  # one command in flight: a flag, plus a FIFO of waiting callers
        self._queue: deque[asyncio.Future[None]] = deque()
        self._loop = asyncio.get_running_loop()
        self._timer_when = 0.0
        self._closed = False
        self._broken = False
        self._hangup_sent = False
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._held: tuple[str, float] | None = None  # (label, seconds) of a negative reply exec() counts

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, link: AGILink, *, header_timeout: float | None = 10.0, **kwargs: Any) -> AGISession:
        """Wait for the environment on `link` and return a session. Raises AGITimeoutError (no full header in
        time), AGIConnectionLost (EOF inside the header) or AGIProtocolError (oversized header, line too long)."""
        waiter = link.wait()  # whole events only: the environment or EOF
        if header_timeout is None or waiter.done():
            event = await waiter
        else:
            # The link's own expiry (resolves the wait with None), as commands do: cheaper than asyncio.timeout().
            timer = asyncio.get_running_loop().call_later(header_timeout, link.expire)
            try:
                event = await waiter
            finally:
                timer.cancel()
            if event is None:
                raise AGITimeoutError(f"no complete AGI environment within {header_timeout} s")
        if type(event) is EOF:
            raise AGIConnectionLost("the AGI peer closed the connection before the environment ended")
        return cls(link, **kwargs)

    @classmethod
    async def start(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        header_timeout: float | None = 10.0,
        line_limit: int = DEFAULT_LINE_LIMIT,
        header_limit: int = DEFAULT_HEADER_LIMIT,
        **kwargs: Any,
    ) -> AGISession:
        """`open()` over a StreamReader/StreamWriter pair (pipes, or streams from asyncio.start_server).
        On failure the pump reading `reader` is stopped and the transport aborted."""
        link = AGILink.from_streams(reader, writer, AGIConnection(line_limit=line_limit, header_limit=header_limit))
        try:
            return await cls.open(link, header_timeout=header_timeout, **kwargs)
        except BaseException:
            link.abort()
            raise

    # -- state --------------------------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        """True once the channel hung up (HANGUP notice, our own HANGUP, a 511, or the peer closed)."""
        return self._conn.hung_up or self._hangup_sent

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        """True after a timeout or protocol error: the stream can no longer be trusted."""
        return self._broken

    def notify_hangup(self) -> None:
        """Mark the channel hung up from outside the stream (classic AGI receives SIGHUP, not a HANGUP line)."""
        self._conn.notify_hangup()

    # -- the core round trip ------------------------------------------------------------------------------
    # This is the hot path (one pass per AGI command), kept flat on purpose: the one-at-a-time fast path, the
    # timeout and the round trip are inlined, because each Python call level costs about as much as parsing the
    # reply (bench/agi_bench.py).
    async def command(self, *words: str, timeout: float | None = _DEFAULT, count_negative: bool = True) -> AGIReply:
        """Send one command and return its 200 reply (also for result=-1/-2, which callers interpret).
        `count_negative=False`: a negative result is left for the caller to count (`_count_held()`), once it
        knows whether it was a failure (exec()).

        Raises AGIDeadChannelError (511), AGIInvalidCommandError (510), AGIUsageError (520), AGITimeoutError,
        AGIConnectionLost (EOF), AGIProtocolError, AGISessionClosed, AGIEncodingError (before sending).
        """
        data = encode_command(*words)
        label = command_label(words)
        if timeout is _DEFAULT:
            timeout = self.command_timeout
        # One command in flight: a flag when free (the usual case), a FIFO of waiters otherwise.
        if self._busy or self._queue:
            await self._acquire_slow()
        else:
            self._busy = True
        try:
            if self._closed:
                raise AGISessionClosed(
                    "AGI session is closed" + (" after an earlier timeout/protocol error" if self._broken else "")
                )
            link = self._link
            loop = self._loop
            started = loop.time()
            if timeout is not None:
                deadline = started + timeout
                self._deadline = deadline
                if self._timer is None or self._timer_when > deadline:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer_when = deadline
                    self._timer = loop.call_at(deadline, self._on_timer)
            try:
                self._conn.mark_sent()
                link.write(data)
                event = await link.wait()
                while type(event) is not AGIReply:
                    if event is None:  # the timer expired the wait
                        self._broken = True
                        self._observe(label, "timeout", loop.time() - started)
                        await self._shutdown()
                        raise AGITimeoutError(
                            f"no reply to {data[:60]!r} within {timeout} s; the session was closed (its reply would "
                            "arrive out of turn). Raise the command's timeout if Asterisk legitimately needs longer."
                        )
                    if type(event) is EOF:
                        self._observe(label, "hangup", loop.time() - started)
                        await self._shutdown()
                        raise AGIConnectionLost(self._lost_message(event))
                    # HangupNotice: the connection recorded it (dead mode); keep waiting for the reply.
                    event = await link.wait()
                reply = event
            except AGIProtocolError:
                self._broken = True
                await self._shutdown()
                raise
            except (ConnectionError, BrokenPipeError) as exc:
                self._observe(label, "hangup", loop.time() - started)
                await self._shutdown()
                raise AGIConnectionLost(f"the AGI connection failed: {exc}") from exc
            finally:
                self._deadline = None
            elapsed = loop.time() - started
        finally:
            if self._queue:
                self._release_slow()
            else:
                self._busy = False
        code = reply.code
        if code == 200:
            if not reply.result.startswith("-"):
                self._observe(label, "ok", elapsed)
            elif count_negative:
                self._observe(label, "failure", elapsed)
            else:
                self._held = (label, elapsed)
            return reply
        if code == 511:
            self._observe(label, "dead", elapsed)
            raise AGIDeadChannelError(f"{label}: the channel has hung up (511 {reply.message})", reply)
        if code == 510:
            self._observe(label, "invalid", elapsed)
            raise AGIInvalidCommandError(
                f"{label}: Asterisk does not know this command (510); check its spelling", reply
            )
        if code == 520:
            self._observe(label, "usage", elapsed)
            raise AGIUsageError(f"{label}: wrong arguments (520); usage: {reply.usage[:200]}", reply)
        self._observe(label, "failure", elapsed)
        raise AGIProtocolError(f"{label}: unexpected AGI reply {reply.lines[0][:80]!r}")

    def _lost_message(self, event: EOF) -> str:
        where = " inside a 520 usage block" if event.in_usage_block else ""
        reason = self._link.lost_reason
        return f"the AGI peer closed the connection{where} while a reply was due" + (
            f" ({reason})" if reason is not None else ""
        )

    async def _acquire_slow(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release_slow()  # the turn was handed to us just before the cancel: pass it on
            else:
                self._queue.remove(waiter)
            raise

    def _release_slow(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the turn over; _busy stays True
                return
        self._busy = False

    # Per-command timeouts use one lazily re-armed loop timer per session instead of a new timer per command:
    # a command only stores its deadline; the timer fires at most once per `timeout` seconds, checks the
    # deadline of the command in flight, and re-arms itself if needed. Scheduling and cancelling a TimerHandle
    # for every command was the largest cost in the hot path (heap operations in Python). On expiry it resolves
    # the link's pending wait with None; the command then closes the session and raises AGITimeoutError.
    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() >= deadline:
            self._deadline = None
            self._link.expire()
        else:
            self._timer_when = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    async def _wait_for_hangup_notice(self, grace: float) -> bool:
        """After an ambiguous result=-1: wait up to `grace` s for the HANGUP notice. True if the caller is gone."""
        if self.hung_up or self._closed:
            return True
        if self._busy or self._queue:
            await self._acquire_slow()
        else:
            self._busy = True
        try:
            if self._closed:
                return True
            async with asyncio.timeout(grace):
                while not self._conn.hung_up:
                    event = await self._link.wait()
                    if type(event) is EOF:
                        await self._shutdown()
                        return True
        except TimeoutError:
            return False
        except AGIProtocolError:
            self._broken = True
            await self._shutdown()
            raise
        except (ConnectionError, BrokenPipeError):
            await self._shutdown()
            return True
        finally:
            if self._queue:
                self._release_slow()
            else:
                self._busy = False
        return True

    # -- closing ------------------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        link = self._link
        try:
            link.close()
            # With nothing unsent (the usual case) the transport reports the close on the next loop pass: one
            # yield, no timer (asyncio.timeout() costs ~5-10 us per call). A peer that does not read could keep
            # our unsent bytes (and the close) pending: that wait is bounded.
            await asyncio.sleep(0)
            if not link.lost:
                async with asyncio.timeout(1.0):
                    await link.wait_closed()
        except NotImplementedError:  # pipe writers (classic AGI) cannot wait for the close; close() is enough
            pass
        except (TimeoutError, ConnectionError, BrokenPipeError, OSError):
            link.abort()

    async def close(self) -> None:
        """Close our side (idempotent). Asterisk then closes its side and continues the dialplan."""
        await self._shutdown()

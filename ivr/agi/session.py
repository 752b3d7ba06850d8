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
- Dead mode: after HANGUP, variable reads/writes, NOOP and VERBOSE still work; media commands raise
  `AGIHangupError` without being sent (Asterisk would answer 511).
- `result=-1` of a media command is ambiguous (missing file vs caller hangup; the HANGUP notice follows ~40 ms
  later), so the session waits up to `hangup_grace` for that notice before deciding which error to raise.
- `close()` always closes our side: Asterisk never closes a FastAGI socket by itself, and an open socket keeps
  the whole call up.
- Metric labels: `command` from a fixed list of AGI command names (else "other"; EXEC is just "EXEC").
  Commands are recorded in `tally.TALLY` and folded into Prometheus in batches (at most 1 s late, and before
  every scrape while a FastAGIServer runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from .errors import (
    AGIAppError,
    AGIConnectionLost,
    AGIDeadChannelError,
    AGIHangupError,
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
    Quoted,
    encode_command,
)
from .tally import TALLY

log = logging.getLogger(__name__)

# Every AGI command Asterisk 22 knows, by its words; anything else is labelled "other".
KNOWN_COMMANDS = frozenset(
    {
        "ANSWER",
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "CONTROL STREAM FILE",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET DATA",
        "GET FULL VARIABLE",
        "GET OPTION",
        "GET VARIABLE",
        "GOSUB",
        "HANGUP",
        "NOOP",
        "RECEIVE CHAR",
        "RECEIVE TEXT",
        "RECORD FILE",
        "SAY ALPHA",
        "SAY DATE",
        "SAY DATETIME",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY PHONETIC",
        "SAY TIME",
        "SEND IMAGE",
        "SEND TEXT",
        "SET AUTOHANGUP",
        "SET CALLERID",
        "SET CONTEXT",
        "SET EXTENSION",
        "SET MUSIC",
        "SET PRIORITY",
        "SET VARIABLE",
        "STREAM FILE",
        "TDD MODE",
        "VERBOSE",
        "WAIT FOR DIGIT",
    }
)
# Commands that need a live channel (Asterisk answers 511 in dead mode).
MEDIA_COMMANDS = frozenset(
    {
        "ANSWER",
        "CHANNEL STATUS",
        "CONTROL STREAM FILE",
        "GET DATA",
        "GET OPTION",
        "RECORD FILE",
        "SAY ALPHA",
        "SAY DATE",
        "SAY DATETIME",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY PHONETIC",
        "SAY TIME",
        "SET MUSIC",
        "STREAM FILE",
        "WAIT FOR DIGIT",
        "RECEIVE CHAR",
        "RECEIVE TEXT",
        "SEND TEXT",
        "SEND IMAGE",
        "TDD MODE",
    }
)

_DEFAULT: Any = object()  # "use the session's command_timeout" (exec(): its exec_timeout)
DEFAULT_EXEC_TIMEOUT = 4 * 3600.0  # seconds; the longest EXEC (a queue wait plus a long call) before we give up


# First word -> the known command names starting with it, longest first (labels are looked up per command).
_BY_FIRST_WORD: dict[str, list[tuple[str, ...]]] = {}
for _name in sorted(KNOWN_COMMANDS, key=lambda n: -len(n.split())):
    _BY_FIRST_WORD.setdefault(_name.split()[0], []).append(tuple(_name.split()))


# Static fast lookups for the command names as the session sends them (upper case); anything else goes through
# _command_label(). Keys are command words only, never arguments.
_ONE_WORD = {name: name for name in KNOWN_COMMANDS if " " not in name}
_TWO_WORDS = {tuple(name.split()): name for name in KNOWN_COMMANDS if name.count(" ") == 1}


def command_label(words: tuple[str, ...] | list[str]) -> str:
    """Bounded metric label for a command: its name from KNOWN_COMMANDS, else "other"."""
    if not words:
        return "other"
    label = _ONE_WORD.get(words[0])
    if label is None and len(words) > 1:
        label = _TWO_WORDS.get((words[0], words[1]))
    return label or _command_label(words)


def _command_label(words: tuple[str, ...] | list[str]) -> str:
    candidates = _BY_FIRST_WORD.get(str(words[0]).upper()) if words else None
    if candidates:
        for name in candidates:
            if len(name) == 1 or tuple(str(w).upper() for w in words[: len(name)]) == name:
                return " ".join(name)
    return "other"


def _no_metrics(label: str, result: str, seconds: float) -> None:
    return None


def _escape_app_arg(arg: str) -> str:
    """Escape one application argument for Asterisk's app argument splitter (commas separate, quotes group,
    backslash escapes). Parentheses are left alone: options such as `i(MIXID)` use them on purpose."""
    return arg.replace("\\", "\\\\").replace('"', '\\"').replace(",", "\\,")


class AGISession:
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
        self._observe = TALLY.record if record_metrics else _no_metrics  # folded into Prometheus in batches
        self._busy = False  # one command in flight: a flag, plus a FIFO of waiting callers
        self._queue: deque[asyncio.Future[None]] = deque()
        self._loop = asyncio.get_running_loop()
        self._timer_when = 0.0
        self._closed = False
        self._broken = False
        self._hangup_sent = False
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

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
    async def command(self, *words: str, timeout: float | None = _DEFAULT) -> AGIReply:
        """Send one command and return its 200 reply (also for result=-1/-2, which callers interpret).

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
            self._observe(label, "failure" if reply.result.startswith("-") else "ok", elapsed)
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

    def _check_live(self, name: str) -> None:
        if self.hung_up:
            raise AGIHangupError(f"{name} not sent: the caller has hung up (dead mode; variables can still be read)")

    async def _failed(self, name: str, reply: AGIReply) -> AGIHangupError | AGIAppError:
        """The error for a media command that returned result=-1 (or -2)."""
        if reply.data == "hangup" or (reply.result == "-1" and await self._wait_for_hangup_notice(self.hangup_grace)):
            return AGIHangupError(f"{name}: the caller hung up during the command ({reply.lines[0]})")
        return AGIAppError(f"{name} failed ({reply.lines[0]}); check the file or application name", reply)

    def _timeout_after(self, wait_ms: int | float | None) -> float | None:
        """Timeout for a command that waits `wait_ms` on purpose: that wait plus the usual command timeout."""
        if self.command_timeout is None or wait_ms is None or wait_ms < 0:
            return None
        return wait_ms / 1000.0 + self.command_timeout

    # -- high-level commands ------------------------------------------------------------------------------
    async def answer(self) -> None:
        self._check_live("ANSWER")
        reply = await self.command("ANSWER")
        if reply.result != "0":
            raise await self._failed("ANSWER", reply)

    async def stream_file(
        self, name: str, escape_digits: str = "", offset: int = 0, *, timeout: float | None = _DEFAULT
    ) -> tuple[str | None, int]:
        """Play a prompt; returns (digit pressed or None, end position in samples)."""
        self._check_live("STREAM FILE")
        words = ["STREAM", "FILE", name, Quoted(escape_digits)] + ([str(int(offset))] if offset else [])
        reply = await self.command(*words, timeout=self.media_timeout if timeout is _DEFAULT else timeout)
        value = reply.result_int
        if value is None or value < 0:
            raise await self._failed("STREAM FILE", reply)
        return (chr(value) if value > 0 else None), (reply.endpos or 0)

    async def get_data(
        self, name: str, timeout_ms: int, max_digits: int, *, timeout: float | None = _DEFAULT
    ) -> tuple[str, bool]:
        """Play a prompt and collect digits; returns (digits, timed_out). `#` ends input and is not returned."""
        self._check_live("GET DATA")
        reply = await self.command(
            "GET",
            "DATA",
            name,
            str(int(timeout_ms)),
            str(int(max_digits)),
            timeout=self.media_timeout if timeout is _DEFAULT else timeout,
        )
        if reply.result.startswith("-"):
            raise await self._failed("GET DATA", reply)
        return reply.result, reply.data == "timeout"

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one DTMF digit; None on timeout. -1 waits forever."""
        self._check_live("WAIT FOR DIGIT")
        reply = await self.command(
            "WAIT", "FOR", "DIGIT", str(int(timeout_ms)), timeout=self._timeout_after(timeout_ms)
        )
        value = reply.result_int
        if value is None or value < 0:
            raise await self._failed("WAIT FOR DIGIT", reply)
        return chr(value) if value > 0 else None

    async def _say(self, kind: str, value: str, escape: str) -> str | None:
        name = f"SAY {kind}"
        self._check_live(name)
        reply = await self.command("SAY", kind, value, Quoted(escape), timeout=self.media_timeout)
        result = reply.result_int
        if result is None or result < 0:
            raise await self._failed(name, reply)
        return chr(result) if result > 0 else None

    async def say_digits(self, digits: str, escape: str = "") -> str | None:
        if not digits.isdigit():
            raise ValueError(f"say_digits needs digits only, got {digits[:20]!r}")
        return await self._say("DIGITS", digits, escape)

    async def say_number(self, number: int, escape: str = "") -> str | None:
        return await self._say("NUMBER", str(int(number)), escape)

    async def say_alpha(self, text: str, escape: str = "") -> str | None:
        return await self._say("ALPHA", text, escape)

    async def record_file(
        self,
        name: str,
        fmt: str,
        escape_digits: str,
        timeout_ms: int,
        beep: bool = False,
        silence_s: int | None = None,
        offset: int | None = None,
    ) -> AGIReply:
        """Record to `name.fmt`. Returns the reply: `(dtmf)`, `(timeout)` (also for silence), or `(hangup)` —
        a hangup is not raised here, because a caller hanging up is the normal end of a voicemail. Raises
        AGIAppError for `(writefile)` (directory missing or not writable)."""
        self._check_live("RECORD FILE")
        words = ["RECORD", "FILE", name, fmt, Quoted(escape_digits), str(int(timeout_ms))]
        if offset is not None or beep or silence_s is not None:
            words.append(str(int(offset or 0)))
        if beep:
            words.append("BEEP")
        if silence_s is not None:
            words.append(f"s={int(silence_s)}")
        reply = await self.command(*words, timeout=self._timeout_after(timeout_ms))
        if reply.data == "hangup":
            return reply
        if reply.result.startswith("-"):
            error = await self._failed("RECORD FILE", reply)
            if isinstance(error, AGIHangupError):
                return reply
            raise error
        return reply

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET", "VARIABLE", name, Quoted(value))

    async def get_variable(self, name: str) -> str | None:
        """Value of a variable or function; None if unset ("200 result=0"), "" if set to empty ("result=1 ()")."""
        reply = await self.command("GET", "VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def get_full_variable(self, expr: str, channel: str | None = None) -> str | None:
        words = ["GET", "FULL", "VARIABLE", expr] + ([channel] if channel else [])
        reply = await self.command(*words)
        return (reply.data or "") if reply.result == "1" else None

    async def exec(self, app: str, *args: str, timeout: float | None = _DEFAULT) -> int:
        """Run a dialplan application; returns its result (-2: no such application). Arguments are escaped for
        the application's comma splitter. The timeout defaults to the session's `exec_timeout` (4 h; None = no
        limit), not `command_timeout`: Dial/Queue/Park legitimately take hours. On expiry the session is closed
        as broken and AGITimeoutError is raised, like any command timeout.
        After a -1 the session waits briefly for a HANGUP notice, so `hung_up` is accurate on return."""
        if not app or not app.replace("_", "").isalnum():
            raise ValueError(f"application name must be alphanumeric, got {app[:30]!r}")
        words = ["EXEC", app] + ([Quoted(",".join(_escape_app_arg(a) for a in args))] if args else [])
        reply = await self.command(*words, timeout=self.exec_timeout if timeout is _DEFAULT else timeout)
        value = reply.result_int
        if value is None:
            raise AGIProtocolError(f"EXEC {app}: non-numeric result {reply.result!r}")
        if value == -1:
            await self._wait_for_hangup_notice(self.hangup_grace)
        return value

    async def set_music(self, on: bool, moh_class: str | None = None) -> None:
        self._check_live("SET MUSIC")
        await self.command("SET", "MUSIC", "on" if on else "off", *([moh_class] if moh_class else []))

    async def hangup(self) -> None:
        """Hang up the channel (Asterisk answers `200 result=1`, then sends HANGUP). No-op in dead mode."""
        if self.hung_up or self._closed:
            return
        await self.command("HANGUP")
        self._hangup_sent = True

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", Quoted(message), str(int(level)))

    async def channel_status(self) -> int:
        """Asterisk channel state: 4 ringing, 6 up, ... (raises AGIDeadChannelError after hangup)."""
        self._check_live("CHANNEL STATUS")
        reply = await self.command("CHANNEL", "STATUS")
        value = reply.result_int
        if value is None or value < 0:
            raise AGIAppError(f"CHANNEL STATUS failed ({reply.lines[0]})", reply)
        return value

    async def noop(self) -> None:
        await self.command("NOOP")

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

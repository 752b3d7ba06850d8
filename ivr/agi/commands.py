"""AGICommands: the high-level AGI commands (answer, stream_file, exec, ...) over one abstract round trip.

Rules for this file:
- Written once for every transport: `AGISession` (asyncio; FastAGI sockets) and `BlockingSession` (classic AGI's
  pipes, blocking reads, no event loop) implement `command()` (send one command, return its 200 reply or raise the
  typed error), `_wait_for_hangup_notice()`, `close()` and the state properties; everything here maps replies to
  results and typed errors the same way for both, so the two modes cannot drift apart.
- No asyncio and no I/O here: classic AGI imports this before its first command (docs/agi.md, decision D2).
- Metric labels: `command` from a fixed list of AGI command names (else "other"; EXEC is just "EXEC"); result
  labels in `COMMAND_RESULTS`. A 200 reply with a negative result is counted once the session knows what it was
  (`command(count_negative=False)`, then `_count_held()`): Dial/Queue/Park returning -1 is their normal end (the
  call they connected or held is over, agi-06/agi-07), `ended`; a -1 of a media command or another application
  with the caller gone (`(hangup)`, or the hangup notice within `hangup_grace`) is `hangup`; anything else
  negative is `failure`. A plain `command()` counts every negative result as `failure`.
- `result=-1` of a media command is ambiguous (missing file vs caller hangup; the HANGUP notice, or classic AGI's
  SIGHUP, follows), so the session waits up to `hangup_grace` for that notice before deciding which error to raise.
- Dead mode: after a hangup, variable reads/writes, NOOP and VERBOSE still work; media commands raise
  `AGIHangupError` without being sent (Asterisk would answer 511).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import (
    AGIAppError,
    AGIDeadChannelError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGIProtocolError,
    AGIUsageError,
)
from .protocol import AGIEnvironment, AGIReply, Quoted

Observe = Callable[[str, str, float], None]  # (command label, result label, seconds)

# Result labels of ivr_agi_command_results_total. `ended`: EXEC of an application in CALL_APPS returned -1, its
# normal "the call is over" (not an error); every other value but `ok` is a problem worth a look.
COMMAND_RESULTS = ("ok", "ended", "failure", "hangup", "dead", "invalid", "usage", "timeout")
# Applications whose -1 means "the call I connected or held is over" (agi-06: Dial answered, the agent or the
# caller hung up; agi-07: Queue without `c` after an answered call, Park when the retrieved call ends).
CALL_APPS = frozenset({"dial", "queue", "park"})

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


def no_metrics(label: str, result: str, seconds: float) -> None:
    return None


def _escape_app_arg(arg: str) -> str:
    """Escape one application argument for Asterisk's app argument splitter (commas separate, quotes group,
    backslash escapes). Parentheses are left alone: options such as `i(MIXID)` use them on purpose."""
    return arg.replace("\\", "\\\\").replace('"', '\\"').replace(",", "\\,")


class AGICommands:
    """The high-level commands of one call's AGI session; a subclass provides the round trip (see the rules)."""

    env: AGIEnvironment
    command_timeout: float | None
    media_timeout: float | None  # prompts, SAY, GET DATA: their length is not known here
    exec_timeout: float | None  # EXEC: Dial/Queue/Park legitimately last hours, but not forever
    hangup_grace: float
    _observe: Observe
    _held: tuple[str, float] | None  # (label, seconds) of a negative reply exec() counts
    _hangup_sent: bool
    _closed: bool

    # -- what a transport provides ----------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        """True once the channel hung up (hangup notice, our own HANGUP, a 511, or the peer closed)."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        """True after a timeout or protocol error: the stream can no longer be trusted."""
        raise NotImplementedError

    def notify_hangup(self) -> None:
        """Mark the channel hung up from outside the stream (classic AGI receives SIGHUP, not a HANGUP line)."""
        raise NotImplementedError

    async def command(self, *words: str, timeout: float | None = _DEFAULT, count_negative: bool = True) -> AGIReply:
        """Send one command and return its 200 reply (also for result=-1/-2, which callers interpret).
        `count_negative=False`: a negative result is left for the caller to count (`_count_held()`), once it
        knows whether it was a failure (exec()).

        Raises AGIDeadChannelError (511), AGIInvalidCommandError (510), AGIUsageError (520), AGITimeoutError,
        AGIConnectionLost (EOF), AGIProtocolError, AGISessionClosed, AGIEncodingError (before sending).
        """
        raise NotImplementedError

    async def _wait_for_hangup_notice(self, grace: float) -> bool:
        """After an ambiguous result=-1: wait up to `grace` s for the hangup notice. True if the caller is gone."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close our side (idempotent). Asterisk then closes its side and continues the dialplan."""
        raise NotImplementedError

    # -- shared by every transport --------------------------------------------------------------------------
    def _result_of(self, label: str, reply: AGIReply, elapsed: float, count_negative: bool) -> AGIReply:
        """Count a command's reply and return it (200) or raise its typed error: the end of `command()`.
        (`AGISession.command` inlines the same on its hot path: a call level costs as much as parsing a reply.)"""
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

    def _check_live(self, name: str) -> None:
        if self.hung_up:
            raise AGIHangupError(f"{name} not sent: the caller has hung up (dead mode; variables can still be read)")

    async def _failed(self, name: str, reply: AGIReply) -> AGIHangupError | AGIAppError:
        """The error for a media command that returned result=-1 (or -2); counts the reply the command left
        uncounted (`count_negative=False`) as `hangup` or `failure`."""
        result = "failure"
        try:
            if reply.data == "hangup" or (
                reply.result == "-1" and await self._wait_for_hangup_notice(self.hangup_grace)
            ):
                result = "hangup"
                return AGIHangupError(f"{name}: the caller hung up during the command ({reply.lines[0]})")
            return AGIAppError(f"{name} failed ({reply.lines[0]}); check the file or application name", reply)
        finally:
            self._count_held(result)

    def _timeout_after(self, wait_ms: int | float | None) -> float | None:
        """Timeout for a command that waits `wait_ms` on purpose: that wait plus the usual command timeout."""
        if self.command_timeout is None or wait_ms is None or wait_ms < 0:
            return None
        return wait_ms / 1000.0 + self.command_timeout

    # -- high-level commands ------------------------------------------------------------------------------
    async def answer(self) -> None:
        self._check_live("ANSWER")
        reply = await self.command("ANSWER", count_negative=False)
        if reply.result != "0":
            raise await self._failed("ANSWER", reply)

    async def stream_file(
        self, name: str, escape_digits: str = "", offset: int = 0, *, timeout: float | None = _DEFAULT
    ) -> tuple[str | None, int]:
        """Play a prompt; returns (digit pressed or None, end position in samples)."""
        self._check_live("STREAM FILE")
        words = ["STREAM", "FILE", name, Quoted(escape_digits)] + ([str(int(offset))] if offset else [])
        reply = await self.command(
            *words, timeout=self.media_timeout if timeout is _DEFAULT else timeout, count_negative=False
        )
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
            count_negative=False,
        )
        if reply.result.startswith("-"):
            raise await self._failed("GET DATA", reply)
        return reply.result, reply.data == "timeout"

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one DTMF digit; None on timeout. -1 waits forever."""
        self._check_live("WAIT FOR DIGIT")
        reply = await self.command(
            "WAIT", "FOR", "DIGIT", str(int(timeout_ms)), timeout=self._timeout_after(timeout_ms), count_negative=False
        )
        value = reply.result_int
        if value is None or value < 0:
            raise await self._failed("WAIT FOR DIGIT", reply)
        return chr(value) if value > 0 else None

    async def _say(self, kind: str, value: str, escape: str) -> str | None:
        name = f"SAY {kind}"
        self._check_live(name)
        reply = await self.command("SAY", kind, value, Quoted(escape), timeout=self.media_timeout, count_negative=False)
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
        reply = await self.command(*words, timeout=self._timeout_after(timeout_ms), count_negative=False)
        if reply.data == "hangup":  # the caller hung up: the normal end of a voicemail message
            self._count_held("hangup")
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
        reply = await self.command(
            *words, timeout=self.exec_timeout if timeout is _DEFAULT else timeout, count_negative=False
        )
        value = reply.result_int
        if value is None:
            self._count_held("failure")
            raise AGIProtocolError(f"EXEC {app}: non-numeric result {reply.result!r}")
        if value == -1:
            result = "ended" if app.lower() in CALL_APPS else "failure"
            try:
                if await self._wait_for_hangup_notice(self.hangup_grace) and result == "failure":
                    result = "hangup"
            finally:
                self._count_held(result)
        elif value < 0:
            self._count_held("failure")  # -2: no such application
        return value

    def _count_held(self, result: str) -> None:
        """Count the negative reply `command(count_negative=False)` left uncounted."""
        held, self._held = self._held, None
        if held is not None:
            self._observe(held[0], result, held[1])

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

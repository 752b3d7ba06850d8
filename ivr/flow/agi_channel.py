"""`AGIChannel`: the flow engine's `Channel` over an AGI session (FastAGI's `AGISession`, classic's `BlockingSession`).

Rules for this file:
- One Channel method = a few AGI commands, mapped the way the Asterisk 22 transcripts show: STREAM FILE per
  prompt with escape digits, WAIT FOR DIGIT, SAY DIGITS/NUMBER, RECORD FILE, and EXEC of Dial / Queue / Park /
  MusicOnHold / MixMonitor / StopMixMonitor followed by reads of DIALSTATUS, QUEUESTATUS, ANSWEREDTIME.
- Errors: the caller being gone (AGIHangupError, 511, EOF) becomes `CallerHangup`; anything else from the AGI
  layer becomes `ChannelError` with the cause chained. A missing prompt file is logged and skipped (a call
  should not die for one sound file; Asterisk still marks AGISTATUS=FAILURE so it shows up).
- EXEC arguments are passed one by one (the session escapes the application's comma splitter) and must not
  contain `,`, `|`, parentheses, quotes, backslashes or control characters; such a value is refused before
  anything is sent. Values for SET VARIABLE are quoted by the session's encoder.
- A timed-out Park is not a hangup even though Asterisk sends HANGUP: the channel went on to the comeback
  context (`park(..., comeback=<context>)` -> Park option `c(<context>,s,1)`; none -> the lot's
  comebackcontext). It is reported as ParkResult("timeout").
- The dialplan contract (ivr.dialplan): IVR_STATUS=AGENT right before EXEC Dial/Queue, PARKED right before EXEC
  Park, and RUNNING once when the caller is back in the flow (right after a connected Dial/Queue the caller
  outlived; after an unanswered one, lazily before the next prompt, digit wait, recording or hold), so a service
  that dies while the app runs, or after it, leaves the dialplan a true report.
- Values for SET VARIABLE lose control characters and are cut to fit the 2 KiB command line (`fit_value`).
- Dial/Queue and a caller hangup: GET VARIABLE still works in dead mode (agi-06: `GET VARIABLE DIALSTATUS` after
  `HANGUP`), so the verdict is read from the channel variables and returned with `caller_hung_up=True`:
  Dial: DIALSTATUS ANSWER = answered (the caller ended the conversation), CANCEL = hung up while it rang.
  Queue: QUEUESTATUS when set (CONTINUE with option c); else ABANDONED=TRUE = gave up waiting (app_queue sets it
  for every abandon, agi-07.ami), ANSWEREDTIME_MS/ANSWEREDTIME > 0 or MEMBERINTERFACE = an agent answered (Queue
  clears those when it starts, agi-07.ami). No evidence either way: answered if the caller is still there
  (agi-07: "Without c: 200 result=-1 ... channel still up ... QUEUESTATUS unset"), abandoned if gone, so a
  hangup is never counted as a successful transfer on a guess.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from types import TracebackType

from ivr import dialplan
from ivr.agi.commands import AGICommands
from ivr.agi.errors import AGIAppError, AGIConnectionLost, AGIError, AGIHangupError, AGISessionClosed
from ivr.flow.channel import (
    QUEUE_ABANDONED,
    QUEUE_ANSWERED,
    CallerHangup,
    CallInfo,
    ChannelError,
    DialResult,
    ParkResult,
    QueueResult,
    RecordResult,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000  # RECORD FILE endpos is in samples of 8 kHz audio
MIXMON_ID_VARIABLE = dialplan.MIXMONITOR_ID
_UNSAFE_ARG = re.compile(r"[,|()\"'\\\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTEXT = re.compile(r"[A-Za-z0-9_\-]{1,80}")
SET_VARIABLE_BYTES = 1900  # name + quoted UTF-8 value; the SET VARIABLE line must stay under 2047 bytes
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*")


def _known(value: str) -> str:
    # Asterisk writes "unknown" for an absent caller ID, name or DNID (agi-06: "agi_dnid: unknown").
    return "" if value == "unknown" else value


def call_info(session: AGICommands) -> CallInfo:
    env = session.env
    return CallInfo(
        uniqueid=env.uniqueid,
        channel=env.channel,
        caller_id=_known(env.callerid),
        caller_name=_known(env.calleridname),
        dnid=_known(env.dnid),
        language=env.language or "en",
        context=env.context,
        extension=env.extension,
        linkedid=env.get("linkedid"),
        args=tuple(env.args),
        params=dict(env.query),
    )


def exec_arg(value: str, what: str) -> str:
    """Refuse a value that could change how a dialplan application splits its arguments."""
    if not value or _UNSAFE_ARG.search(value):
        raise ChannelError(
            f"{what} {value[:60]!r} is empty or contains characters an application would misread "
            "(, | ( ) quotes backslash or control characters); fix the flow or the value"
        )
    return value


def fit_value(value: str, budget: int) -> str:
    """`value` without control characters, cut to at most `budget` bytes once UTF-8 encoded and quoted."""
    cleaned = _CONTROL.sub(" ", value)
    if len(cleaned) * 4 <= budget:  # the common case: no UTF-8 character takes more than 4 bytes quoted
        return cleaned
    out: list[str] = []
    for char in cleaned:
        budget -= len(char.encode("utf-8")) + (char in '"\\')
        if budget < 0:
            break
        out.append(char)
    return "".join(out)


class _Guard:
    """`with channel._guard(what):` AGI errors become the engine's CallerHangup / ChannelError.

    A class rather than a @contextmanager generator: it runs around every AGI command, and the generator's
    set-up and two resumptions cost ~1.5 us per command (bench/call_cpu.py)."""

    __slots__ = ("session", "what")

    def __init__(self, session: AGICommands, what: str) -> None:
        self.session = session
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            return
        what = self.what
        if isinstance(exc, (AGIHangupError, AGIConnectionLost)):
            raise CallerHangup(f"{what}: {exc}") from exc
        if isinstance(exc, AGISessionClosed):
            if self.session.hung_up:
                raise CallerHangup(f"{what}: {exc}") from exc
            raise ChannelError(f"{what}: {exc}") from exc
        if isinstance(exc, AGIError):
            raise ChannelError(f"{what}: {exc}") from exc


class AGIChannel:
    def __init__(self, session: AGICommands, info: CallInfo | None = None) -> None:
        self.session = session
        self._info = info or call_info(session)
        self._mixmonitor_id: str | None = None
        self._handed_over = False  # IVR_STATUS says AGENT/PARKED: see _hand_over

    @property
    def info(self) -> CallInfo:
        return self._info

    def _guard(self, what: str) -> _Guard:
        return _Guard(self.session, what)

    def _hung_up(self, what: str) -> None:
        if self.session.hung_up:
            raise CallerHangup(f"{what}: the caller hung up")

    # -- media ------------------------------------------------------------------------------------------------
    async def answer(self) -> None:
        with self._guard("ANSWER"):
            await self.session.answer()

    async def play(self, files: Sequence[str], escape_digits: str = "") -> str | None:
        await self._back_in_flow()
        for file in files:
            with self._guard(f"STREAM FILE {file}"):
                try:
                    digit, _ = await self.session.stream_file(file, escape_digits)
                except AGIAppError:
                    log.warning(
                        "prompt %r is missing on %r; skipped (install it or run `prompts build`)",
                        file,
                        self._info.channel,
                    )
                    continue
            if digit:
                return digit
        return None

    async def wait_for_digit(self, timeout: float) -> str | None:
        await self._back_in_flow()
        with self._guard("WAIT FOR DIGIT"):
            return await self.session.wait_for_digit(-1 if timeout < 0 else int(timeout * 1000))

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        await self._back_in_flow()
        only = "".join(c for c in digits if c.isdigit() and c.isascii())
        if not only:
            return None
        with self._guard("SAY DIGITS"):
            return await self.session.say_digits(only, escape_digits)

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        await self._back_in_flow()
        with self._guard("SAY NUMBER"):
            return await self.session.say_number(int(number), escape_digits)

    # -- variables ----------------------------------------------------------------------------------------------
    async def set_variable(self, name: str, value: str) -> None:
        # Control characters (CR/LF would end the command line, NUL is refused by the encoder) become spaces, and
        # the value is cut so the whole line stays within Asterisk's 2 KiB AGI buffer.
        with self._guard(f"SET VARIABLE {name}"):
            await self.session.set_variable(name, fit_value(value, SET_VARIABLE_BYTES - len(name)))

    async def get_variable(self, name: str) -> str | None:
        with self._guard(f"GET VARIABLE {name}"):
            return await self.session.get_variable(name)

    async def set_language(self, language: str) -> None:
        if not _LANGUAGE.fullmatch(language):
            raise ChannelError(f"{language!r} is not a language code (en, lt, pt_BR)")
        await self.set_variable("CHANNEL(language)", language)

    # -- applications ---------------------------------------------------------------------------------------
    async def _exec(self, app: str, *args: str) -> int:
        with self._guard(f"EXEC {app}"):
            result = await self.session.exec(app, *args)
        if result == -2:
            raise ChannelError(f"Asterisk has no application {app}; load its module")
        return result

    async def _hand_over(self, status: str) -> None:
        """IVR_STATUS=<status> (AGENT, PARKED) right before EXEC Dial/Queue/Park: if the service dies while the app
        runs, the app goes on inside AGI() and the dialplan reads this afterwards (ivr.dialplan, docs/dialplan.md)."""
        await self.set_variable(dialplan.STATUS, status)
        self._handed_over = True

    async def _back_in_flow(self) -> None:
        """The caller hears the flow again after a hand-over: IVR_STATUS=RUNNING (once), so a service that dies now
        sends the caller to a person. Lazy: a flow that ends right after the transfer pays nothing."""
        if self._handed_over and not self.session.hung_up:
            self._handed_over = False
            await self.set_variable(dialplan.STATUS, dialplan.RUNNING)

    async def _status(self, name: str) -> str:
        return (await self.get_variable(name) or "").strip().upper()

    async def _seconds(self, name: str, per_second: float = 1.0) -> float | None:
        """A duration variable in seconds; None when unset or empty (not a number: 0)."""
        value = (await self.get_variable(name) or "").strip()
        if not value:
            return None
        try:
            seconds = float(value) / per_second
        except ValueError:
            return 0.0
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0

    async def dial(self, destination: str, timeout: float, options: str = "") -> DialResult:
        result = await self._dial(destination, timeout, options)
        await self._after_agent(result.answered, result.caller_hung_up)
        return result

    async def queue(self, queue: str, timeout: float, options: str = "") -> QueueResult:
        result = await self._queue(queue, timeout, options)
        await self._after_agent(result.answered, result.caller_hung_up)
        return result

    async def _after_agent(self, answered: bool, caller_hung_up: bool) -> None:
        """The agent hung up and the caller is still there: back in the flow now (whatever node comes next, a
        lookup included), not only at the next prompt; an unanswered Dial/Queue leaves no evidence anyway."""
        if answered and not caller_hung_up:
            await self._back_in_flow()

    async def _dial(self, destination: str, timeout: float, options: str = "") -> DialResult:
        args = [exec_arg(destination, "dial destination"), str(max(1, math.ceil(timeout)))]
        if options:
            args.append(exec_arg(options, "dial options"))
        await self._hand_over(dialplan.AGENT)
        await self._exec("Dial", *args)
        status = await self._status("DIALSTATUS")  # readable in dead mode too (agi-06)
        gone = self.session.hung_up
        if not status:
            if gone:  # the caller left before Dial() decided anything: nobody answered
                return DialResult("CANCEL", caller_hung_up=True)
            raise ChannelError(f"Dial {destination!r} set no DIALSTATUS; check the destination")
        talk = 0.0
        if status == "ANSWER":
            talk = await self._seconds("ANSWEREDTIME") or 0.0
        return DialResult(status, talk, gone or status == "CANCEL")

    async def _queue(self, queue: str, timeout: float, options: str = "") -> QueueResult:
        await self._hand_over(dialplan.AGENT)
        await self._exec(
            "Queue",
            exec_arg(queue, "queue name"),
            exec_arg(options, "queue options") if options else "",
            "",
            "",
            str(max(1, math.ceil(timeout))),
        )
        status = await self._status("QUEUESTATUS")
        gone = self.session.hung_up
        if status:
            return QueueResult(status, caller_hung_up=gone)
        # No QUEUESTATUS: an agent's call ended (agi-07 "Without c: 200 result=-1 ... QUEUESTATUS unset") or the
        # caller hung up before an agent answered. The variables app_queue leaves tell which.
        if await self._status("ABANDONED") == "TRUE":
            return QueueResult(QUEUE_ABANDONED, caller_hung_up=gone)
        talk = await self._seconds("ANSWEREDTIME_MS", 1000.0)
        if talk is None:
            talk = await self._seconds("ANSWEREDTIME")
        if talk or (talk is None and await self.get_variable("MEMBERINTERFACE")):
            return QueueResult(QUEUE_ANSWERED, caller_hung_up=gone, talk_seconds=talk or 0.0)
        return QueueResult(QUEUE_ABANDONED if gone else QUEUE_ANSWERED, caller_hung_up=gone)

    async def park(self, lot: str, timeout: float, comeback: str = "") -> ParkResult:
        """Park(lot,st(<s>)[c(<comeback>,s,1)]): silent (the flow announces), own timeout, and on time-out the
        caller goes to `comeback,s,1` (res_parking's `c(context,extension,priority)` option, whose comeback
        string ast_async_parseable_goto splits on commas; the session escapes them for Park's own splitter)."""
        options = f"st({max(1, math.ceil(timeout))})"
        if comeback:
            if not _CONTEXT.fullmatch(comeback):
                raise ChannelError(
                    f"park comeback context {comeback[:60]!r} is not a dialplan context name "
                    "(letters, digits, _ and -); fix the park_comeback_context setting"
                )
            options += f"c({comeback},s,1)"
        await self._hand_over(dialplan.PARKED)
        result = await self._exec("Park", exec_arg(lot, "parking lot"), options)
        if result == 0:
            # agi-07: "200 result=0 when the timeout fires, then HANGUP": the channel moved to the comeback.
            return ParkResult("timeout")
        self._hung_up("Park")  # the caller gave up while parked (or hung up on whoever picked up)
        return ParkResult("retrieved")

    async def music_on_hold(self, moh_class: str, seconds: float) -> None:
        await self._back_in_flow()
        await self._exec("MusicOnHold", exec_arg(moh_class, "music class"), str(max(1, math.ceil(seconds))))
        self._hung_up("MusicOnHold")

    async def record_file(
        self, path: str, fmt: str, escape_digits: str, max_seconds: float, silence_seconds: float, beep: bool
    ) -> RecordResult:
        await self._back_in_flow()
        with self._guard("RECORD FILE"):
            reply = await self.session.record_file(
                path,
                fmt,
                escape_digits,
                int(max_seconds * 1000) if max_seconds > 0 else -1,
                beep=beep,
                silence_s=int(silence_seconds) if silence_seconds >= 1 else None,
            )
        seconds = (reply.endpos or 0) / SAMPLE_RATE
        value = reply.result_int
        if reply.data == "hangup" or (value is not None and value < 0):
            return RecordResult("hangup", seconds)
        if reply.data == "dtmf" and value:
            return RecordResult("dtmf", seconds, chr(value))
        # "(timeout)": result=0 when the time limit ended it, ms left when silence did (agi-04).
        return RecordResult("silence" if value else "timeout", seconds)

    async def start_recording(self, path: str, append: bool = False) -> None:
        options = ("a" if append else "") + f"i({MIXMON_ID_VARIABLE})"
        await self._exec("MixMonitor", exec_arg(path, "recording path"), options)
        self._mixmonitor_id = await self.get_variable(MIXMON_ID_VARIABLE)

    async def stop_recording(self) -> None:
        if self._mixmonitor_id:
            await self._exec("StopMixMonitor", exec_arg(self._mixmonitor_id, "MixMonitor id"))
        else:
            await self._exec("StopMixMonitor")
        self._mixmonitor_id = None

    async def hangup(self) -> None:
        with self._guard("HANGUP"):
            await self.session.hangup()

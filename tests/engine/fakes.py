"""A scripted `Channel` with its own virtual time, for fast engine tests.

The caller is a list of key presses at moments (seconds since the call started) and optionally a hangup at a
moment or at the N-th channel call. Every channel call advances the virtual time the way Asterisk would:
prompts take `prompt_seconds`, WAIT FOR DIGIT takes its timeout unless a key comes first, Dial/Queue/Park take
their ring/wait time. A press outside any reading window is lost, as on a real channel. `log` records every
call for assertions; `clock()` gives the virtual time as a datetime for the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ivr.flow.channel import CallerHangup, CallInfo, DialResult, ParkResult, QueueResult, RecordResult

T0 = datetime(2026, 3, 23, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Vilnius


@dataclass
class FakeChannel:
    presses: Sequence[tuple[float, str]] = ()
    hangup_at: float | None = None
    hangup_on_call: int | None = None
    prompt_seconds: float | Mapping[str, float] = 2.0
    dial_results: Mapping[str, str] = field(default_factory=dict)  # destination -> DIALSTATUS
    queue_results: Mapping[str, str] = field(default_factory=dict)  # queue -> QUEUESTATUS / ANSWERED
    queue_wait: float = 10.0  # seconds until a queue agent answers
    park_status: str = "timeout"
    record_seconds: float = 8.0
    record_reason: str = "dtmf"
    caller_id: str = "+37060000001"
    caller_name: str = "Ann"
    language: str = "en"
    uniqueid: str = "1795909322.39"
    start: datetime = T0
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = 0.0
        self.log: list[tuple[Any, ...]] = []
        self.variables: dict[str, str] = {}
        self.hung_up = False
        self.calls = 0
        self._pending = sorted(self.presses)
        self._info = CallInfo(
            uniqueid=self.uniqueid,
            channel="PJSIP/trunk-00000001",
            caller_id=self.caller_id,
            caller_name=self.caller_name,
            dnid="100",
            language=self.language,
            context="ivr",
            extension="s",
            params=dict(self.params),
        )
        self.channel_language = self.language

    # -- the virtual world ------------------------------------------------------------------------------------
    def clock(self) -> datetime:
        return self.start + timedelta(seconds=self.now)

    def _call(self, *entry: Any, media: bool = True) -> None:
        self.calls += 1
        self.log.append(entry)
        if self.hangup_on_call is not None and self.calls >= self.hangup_on_call:
            self.hung_up = True
        if media and self.hung_up:
            raise CallerHangup(f"{entry[0]} on a hung-up channel")

    def _window(self, seconds: float, escape: str) -> str | None:
        """Let `seconds` pass; return the first escape digit pressed in that window (time stops there)."""
        end = self.now + seconds
        while self._pending and self._pending[0][0] < end:
            at, digit = self._pending.pop(0)
            if at < self.now:
                continue  # pressed while nothing was listening: lost
            if self.hangup_at is not None and self.hangup_at <= at:
                break
            if digit in escape:
                self.now = at
                return digit
        if self.hangup_at is not None and self.hangup_at < end:
            self.now = max(self.now, self.hangup_at)
            self.hung_up = True
            raise CallerHangup("caller hung up")
        self.now = end
        return None

    def _prompt_length(self, file: str) -> float:
        if isinstance(self.prompt_seconds, Mapping):
            return self.prompt_seconds.get(file, 2.0)
        return self.prompt_seconds

    # -- Channel ----------------------------------------------------------------------------------------------
    @property
    def info(self) -> CallInfo:
        return self._info

    async def answer(self) -> None:
        self._call("answer")

    async def play(self, files: Sequence[str], escape_digits: str = "") -> str | None:
        for file in files:
            self._call("play", file, escape_digits)
            digit = self._window(self._prompt_length(file), escape_digits)
            if digit:
                return digit
        return None

    async def wait_for_digit(self, timeout: float) -> str | None:
        self._call("wait", timeout)
        return self._window(timeout, "0123456789*#")

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        self._call("say_digits", digits)
        return self._window(0.5 * len(digits), escape_digits)

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        self._call("say_number", number)
        return self._window(1.0, escape_digits)

    async def set_variable(self, name: str, value: str) -> None:
        self._call("set", name, value, media=False)
        self.variables[name] = value

    async def get_variable(self, name: str) -> str | None:
        self._call("get", name, media=False)
        return self.variables.get(name)

    async def set_language(self, language: str) -> None:
        self._call("language", language, media=False)
        self.channel_language = language

    async def dial(self, destination: str, timeout: float, options: str = "") -> DialResult:
        """The agent's phone rings 5 s (NOANSWER: the whole timeout), then they talk 60 s. A caller hangup is
        reported the way AGIChannel reads it from Asterisk: CANCEL while ringing, ANSWER after the answer."""
        self._call("dial", destination, timeout)
        status = self.dial_results.get(destination, "ANSWER")
        try:
            self._window(5.0 if status == "ANSWER" else (timeout if status == "NOANSWER" else 0.0), "")
        except CallerHangup:
            return DialResult("CANCEL", caller_hung_up=True)
        if status != "ANSWER":
            return DialResult(status)
        answered = self.now
        try:
            self._window(60.0, "")  # the conversation
        except CallerHangup:
            return DialResult("ANSWER", self.now - answered, caller_hung_up=True)
        return DialResult("ANSWER", 60.0)

    async def queue(self, queue: str, timeout: float, options: str = "") -> QueueResult:
        """ANSWERED: an agent answers after `queue_wait` s and talks 60 s; TIMEOUT waits the whole timeout; other
        statuses return at once. A caller hangup before the answer is ABANDONED, after it ANSWERED (hung up)."""
        self._call("queue", queue, timeout)
        status = self.queue_results.get(queue, "ANSWERED")
        start = self.now
        try:
            self._window(timeout if status == "TIMEOUT" else (self.queue_wait if status == "ANSWERED" else 0.0), "")
        except CallerHangup:
            return QueueResult("ABANDONED", self.now - start, caller_hung_up=True)
        if status != "ANSWERED":
            return QueueResult(status, self.now - start)
        wait, answered = self.now - start, self.now
        try:
            self._window(60.0, "")
        except CallerHangup:
            return QueueResult("ANSWERED", wait, caller_hung_up=True, talk_seconds=self.now - answered)
        return QueueResult("ANSWERED", wait, talk_seconds=60.0)

    async def park(self, lot: str, timeout: float, comeback: str = "") -> ParkResult:
        self._call("park", lot, timeout, comeback)
        self._window(timeout if self.park_status == "timeout" else 5.0, "")
        if self.park_status == "timeout":
            self.hung_up = True  # Asterisk moves the channel to the comeback context: the AGI sees HANGUP
        return ParkResult(self.park_status, "701")

    async def music_on_hold(self, moh_class: str, seconds: float) -> None:
        self._call("moh", moh_class, seconds)
        self._window(seconds, "")

    async def record_file(
        self, path: str, fmt: str, escape_digits: str, max_seconds: float, silence_seconds: float, beep: bool
    ) -> RecordResult:
        self._call("record_file", path, fmt, max_seconds, silence_seconds, beep)
        seconds = min(self.record_seconds, max_seconds)
        start = self.now
        try:
            self._window(seconds, "")
        except CallerHangup:
            return RecordResult("hangup", self.now - start)
        return RecordResult(self.record_reason, seconds, "#" if self.record_reason == "dtmf" else None)

    async def start_recording(self, path: str, append: bool = False) -> None:
        self._call("mixmonitor", path, append)

    async def stop_recording(self) -> None:
        self._call("stop_mixmonitor")

    async def hangup(self) -> None:
        self._call("hangup")
        self.hung_up = True

    # -- helpers for assertions -------------------------------------------------------------------------------
    def played(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "play"]

    def ops(self, name: str) -> list[tuple[Any, ...]]:
        return [entry for entry in self.log if entry[0] == name]

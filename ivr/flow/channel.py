"""The channel interface the flow engine runs against.

Rules for this file:
- The engine knows calls only through `Channel`; it never imports AGI, AMI or the simulator.
- Every wait that a caller can feel (prompt length, digit time-outs, ringing, music on hold) happens on the
  Asterisk side of the channel, never in `asyncio.sleep` in the engine. That is what lets the simulator's virtual
  clock make a 60-second call finish in milliseconds with the same result.
- Any method raises `CallerHangup` once the caller has gone; the engine catches it at the top and records the node.
  Exception: `dial` and `queue` return their result with `caller_hung_up=True` when the caller hung up during
  them, because only the result can say whether an agent had answered first (transferred) or not (abandoned).
- The records are `ivr.records.FrozenRecord`s, not dataclasses: classic AGI builds them before its first command
  (ivr/records.py says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ivr.records import FrozenRecord

_set = object.__setattr__


class CallerHangup(Exception):
    """The caller hung up (AGI `HANGUP`, `511` on a dead channel, or EOF)."""


class ChannelError(Exception):
    """Asterisk refused or failed a command in a way the flow cannot recover from (510/520, lost socket)."""


class CallInfo(FrozenRecord):
    """What Asterisk told us about the call when it arrived (the AGI environment, normalised)."""

    __slots__ = (
        "uniqueid",
        "channel",
        "caller_id",
        "caller_name",
        "dnid",
        "language",
        "context",
        "extension",
        "linkedid",
        "args",
        "params",
    )

    uniqueid: str
    channel: str
    caller_id: str
    caller_name: str
    dnid: str
    language: str
    context: str
    extension: str
    linkedid: str
    args: tuple[str, ...]
    params: dict[str, str]  # query string of agi://host/flow?k=v

    def __init__(
        self,
        uniqueid: str,
        channel: str,
        caller_id: str = "",
        caller_name: str = "",
        dnid: str = "",
        language: str = "en",
        context: str = "",
        extension: str = "",
        linkedid: str = "",
        args: tuple[str, ...] = (),
        params: dict[str, str] | None = None,
    ) -> None:
        _set(self, "uniqueid", uniqueid)
        _set(self, "channel", channel)
        _set(self, "caller_id", caller_id)
        _set(self, "caller_name", caller_name)
        _set(self, "dnid", dnid)
        _set(self, "language", language)
        _set(self, "context", context)
        _set(self, "extension", extension)
        _set(self, "linkedid", linkedid)
        _set(self, "args", args)
        _set(self, "params", {} if params is None else params)


class DialResult(FrozenRecord):
    """Outcome of Dial(). `status` is Asterisk's DIALSTATUS: ANSWER, BUSY, NOANSWER, CHANUNAVAIL, CONGESTION, or
    CANCEL (the caller hung up before anyone answered, e.g. while the agent's phone rang).

    `caller_hung_up`: the caller was gone when Dial() returned (AGI `HANGUP`). With ANSWER that is the normal end
    of a transferred call; with CANCEL it is an abandoned one. Either way the flow cannot go on."""

    __slots__ = ("status", "talk_seconds", "caller_hung_up")

    status: str
    talk_seconds: float
    caller_hung_up: bool

    def __init__(self, status: str, talk_seconds: float = 0.0, caller_hung_up: bool = False) -> None:
        _set(self, "status", status)
        _set(self, "talk_seconds", talk_seconds)
        _set(self, "caller_hung_up", caller_hung_up)

    @property
    def answered(self) -> bool:
        return self.status.upper() == "ANSWER"


QUEUE_ANSWERED = "ANSWERED"  # an agent took the call; the bridged call has ended (Queue() set no QUEUESTATUS)
QUEUE_ABANDONED = "ABANDONED"  # the caller hung up while waiting or while agents rang (no QUEUESTATUS either)


class QueueResult(FrozenRecord):
    """Outcome of Queue(). `status` is QUEUESTATUS (TIMEOUT, FULL, JOINEMPTY, LEAVEEMPTY, JOINUNAVAIL, LEAVEUNAVAIL,
    CONTINUE), or, when Queue() set none: "ANSWERED" (an agent took the call and the bridged call has ended) or
    "ABANDONED" (the caller hung up before an agent answered).

    `caller_hung_up`: the caller was gone when Queue() returned; `talk_seconds`: how long the agent talked, when
    Asterisk said (ANSWEREDTIME)."""

    __slots__ = ("status", "wait_seconds", "caller_hung_up", "talk_seconds")

    status: str
    wait_seconds: float
    caller_hung_up: bool
    talk_seconds: float

    def __init__(
        self, status: str, wait_seconds: float = 0.0, caller_hung_up: bool = False, talk_seconds: float = 0.0
    ) -> None:
        _set(self, "status", status)
        _set(self, "wait_seconds", wait_seconds)
        _set(self, "caller_hung_up", caller_hung_up)
        _set(self, "talk_seconds", talk_seconds)

    @property
    def answered(self) -> bool:
        return self.status.upper() in (QUEUE_ANSWERED, "CONTINUE")


class ParkResult(FrozenRecord):
    """Outcome of Park(): "retrieved" (someone picked the call up; it ended there) or "timeout" (comeback)."""

    __slots__ = ("status", "space")

    status: str
    space: str

    def __init__(self, status: str, space: str = "") -> None:
        _set(self, "status", status)
        _set(self, "space", space)


class RecordResult(FrozenRecord):
    """Outcome of RECORD FILE: why it stopped ("dtmf", "silence", "timeout", "hangup") and the length in seconds."""

    __slots__ = ("reason", "seconds", "digit")

    reason: str
    seconds: float
    digit: str | None

    def __init__(self, reason: str, seconds: float, digit: str | None = None) -> None:
        _set(self, "reason", reason)
        _set(self, "seconds", seconds)
        _set(self, "digit", digit)


@runtime_checkable
class Channel(Protocol):
    """A live call as the flow engine sees it."""

    @property
    def info(self) -> CallInfo: ...

    async def answer(self) -> None: ...

    async def play(self, files: Sequence[str], escape_digits: str = "") -> str | None:
        """Play sound files in order; return the digit that interrupted playback, or None."""
        ...

    async def wait_for_digit(self, timeout: float) -> str | None:
        """Wait up to `timeout` seconds for one digit; None on time-out."""
        ...

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def set_language(self, language: str) -> None: ...

    async def dial(self, destination: str, timeout: float, options: str = "") -> DialResult: ...

    async def queue(self, queue: str, timeout: float, options: str = "") -> QueueResult: ...

    async def park(self, lot: str, timeout: float, comeback: str = "") -> ParkResult:
        """Park in `lot` for `timeout` s. `comeback`: the dialplan context a caller nobody retrieved continues in
        (at `s,1`); "" leaves it to the lot's configuration."""
        ...

    async def music_on_hold(self, moh_class: str, seconds: float) -> None: ...

    async def record_file(
        self, path: str, fmt: str, escape_digits: str, max_seconds: float, silence_seconds: float, beep: bool
    ) -> RecordResult: ...

    async def start_recording(self, path: str, append: bool = False) -> None:
        """Start MixMonitor on the channel (`append` continues a paused recording)."""
        ...

    async def stop_recording(self) -> None: ...

    async def hangup(self) -> None: ...

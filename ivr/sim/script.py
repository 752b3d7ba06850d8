"""Caller scripts: what the simulated caller does during a call.

Rules for this file:
- A script is a list of steps run in order by the caller; each step waits for something, then acts.
- Waiting steps: `At(t)` (t seconds after the call started), `Sleep(s)`, `NextPrompt()` (until the next prompt
  starts playing), `OnCommand("RECORD FILE")` (until such an AGI command or EXEC app starts), `WhenIdle()` (until no
  AGI command is running, i.e. the service is thinking).
- Acting steps: `Press("12#")` (DTMF, 120 ms each, a new key every 0.42 s as recorded; a digit counts at DTMF
  end), `Speak(seconds)` (voice, heard by RECORD FILE silence detection and written into recordings),
  `Hangup()`.
- When the script runs out the caller stays on the line, silent, until the call ends (or `max_call_seconds`).
- Data only: no I/O here; `Call` (call.py) runs a script against its channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class At:
    """Wait until `seconds` after the call was placed."""

    seconds: float


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class NextPrompt:
    """Wait until the next prompt (STREAM FILE, GET DATA, GET OPTION, SAY *, Playback ...) starts, then `delay`."""

    delay: float = 0.0


@dataclass(frozen=True)
class OnCommand:
    """Wait until an AGI command (e.g. "RECORD FILE", "GET DATA") or an EXEC'd app (e.g. "Queue") starts."""

    name: str
    delay: float = 0.0


@dataclass(frozen=True)
class WhenIdle:
    """Wait until no AGI command is running (the service is between commands)."""


@dataclass(frozen=True)
class Press:
    digits: str
    gap: float = 0.42  # start-to-start between keys, as recorded with PlayDTMF
    duration: float = 0.12  # DTMF length; the digit is acted on at DTMF end

    def __post_init__(self) -> None:
        bad = [d for d in self.digits if d not in "0123456789*#ABCD"]
        if bad:
            raise ValueError(f"Press({self.digits!r}): {bad!r} are not DTMF digits (use 0-9, *, #, A-D)")


@dataclass(frozen=True)
class Speak:
    """The caller talks for `seconds` from now (then is silent again)."""

    seconds: float


@dataclass(frozen=True)
class Hangup:
    """The caller hangs up (cause 16, Normal Clearing)."""


Step = At | Sleep | NextPrompt | OnCommand | WhenIdle | Press | Speak | Hangup


@dataclass(frozen=True)
class CallerScript:
    steps: tuple[Step, ...] = ()

    @classmethod
    def of(cls, steps: Sequence[Step] | CallerScript | None) -> CallerScript:
        if steps is None:
            return cls()
        if isinstance(steps, CallerScript):
            return steps
        return cls(tuple(steps))


# Convenience builders used by tests -------------------------------------------------------------------------


def press_on_prompt(digits: str, after: float = 0.8) -> list[Step]:
    """Press `digits` `after` seconds into the next prompt."""
    return [NextPrompt(after), Press(digits)]


def hangup_during(command: str, after: float = 0.0) -> list[Step]:
    """Hang up `after` seconds into the next `command` (e.g. "RECORD FILE", "Queue")."""
    return [OnCommand(command, after), Hangup()]

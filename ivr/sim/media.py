"""Media primitives shared by AGI commands and applications: play prompts, wait for digits.

Rules for this file:
- Times are clock times; positions are 8 kHz samples.  A digit is acted on at DTMF end (the inbox delivers it
  then).  A position reported after an interruption counts the 20 ms frame in progress:
  `(floor(elapsed * 50) + 1) * 160` samples -- 1.322 s into demo-congrats gives endpos=10720 as recorded.
- Every function returns a small result object; replies are formatted by the caller (agi_commands.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ivr.sim.channel import SimChannel

RATE = 8000
FRAME = 160


def frames_played(elapsed: float) -> int:
    """Samples played after `elapsed` seconds, counting the current 20 ms frame."""
    return (math.floor(elapsed * 50 + 1e-6) + 1) * FRAME


@dataclass
class PlayResult:
    kind: str  # "done" | "digit" | "hangup" | "missing"
    digit: str = ""
    endpos: int = 0  # samples
    elapsed: float = 0.0


async def play(ch: SimChannel, name: str, escape: str = "", offset: int = 0) -> PlayResult:
    """Play one file, stoppable by a digit in `escape`."""
    total = ch.pbx.config.sounds.samples(name, ch.language)
    if total is None:
        return PlayResult("missing", endpos=0)
    offset = max(0, min(offset, total))
    clock = ch.pbx.clock
    start = clock.now()
    end = start + (total - offset) / RATE
    ch.notify_prompt(name)
    while True:
        ev = await ch.next_event(end)
        elapsed = clock.now() - start
        if ev is None:
            return PlayResult("done", endpos=total, elapsed=elapsed)
        if ev.kind == "hangup":
            return PlayResult("hangup", endpos=min(total, offset + frames_played(elapsed)), elapsed=elapsed)
        if ev.kind == "dtmf" and ev.value in escape:
            return PlayResult("digit", ev.value, min(total, offset + frames_played(elapsed)), elapsed)


async def play_many(ch: SimChannel, names: list[str], escape: str = "") -> PlayResult:
    """Play files in order (SAY DIGITS, SAY NUMBER, Playback a&b); stops at the first digit/hangup/missing."""
    last = PlayResult("done")
    for name in names:
        last = await play(ch, name, escape)
        if last.kind != "done":
            return last
    return last


async def wait_digit(ch: SimChannel, timeout: float | None, allowed: str | None = None) -> tuple[str, str]:
    """("digit", d) | ("timeout", "") | ("hangup", "").  `timeout` None waits forever.

    With `allowed`, any other digit ends the wait as ("other", d) -- GET OPTION's rule.
    """
    deadline = None if timeout is None else ch.pbx.clock.now() + timeout
    while True:
        ev = await ch.next_event(deadline)
        if ev is None:
            return "timeout", ""
        if ev.kind == "hangup":
            return "hangup", ""
        if ev.kind == "dtmf":
            if allowed is None or ev.value in allowed:
                return "digit", ev.value
            return "other", ev.value

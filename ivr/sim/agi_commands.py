"""AGI command handlers with the semantics recorded on Asterisk 22 (agi-01 .. agi-08).

Rules for this file:
- A handler gets the session and the words after the command name, and returns a `Done` (reply bytes + how
  AMI's AGIExecEnd reports it) or raises `Usage` for a 520 block.  Argument checks follow res_agi (argc).
- Numbers are read like C's atoi: leading digits, garbage -> 0; where Asterisk uses sscanf, garbage -> 520.
- Paths from the network only reach the filesystem through `session.writable_path()`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.sim import media
from ivr.sim.agi_codec import reply
from ivr.sim.sounds import say_number_files
from ivr.sim.wav import write_wav

if TYPE_CHECKING:
    from ivr.sim.agi_session import AGISession

RATE = 8000
BEEP_GAP = 0.045  # RECORD FILE ... BEEP: recording starts this long after the beep ends (agi-04 timings)


class Usage(Exception):
    """Wrong arguments: Asterisk answers with the 520 usage block."""


@dataclass
class Done:
    data: bytes
    status: str = "ok"  # "ok" -> 200 Success, "failure" -> -1 Failure, "unknown" -> 200 Unknown Result


def atoi(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def scan_int(text: str) -> int:
    """sscanf("%d"): must start with a number, else usage."""
    m = re.match(r"\s*([+-]?\d+)", text)
    if not m:
        raise Usage()
    return int(m.group(1))


Handler = Callable[["AGISession", tuple[str, ...]], Awaitable[Done]]


async def answer(s: AGISession, a: tuple[str, ...]) -> Done:
    ch = s.channel
    if ch.state != 6:
        ch.set_state(6)
        if not ch.media_flowing:
            if await ch.pause(s.config.answer_delay) is not None:
                return Done(reply(-1), "failure")
        else:
            await ch.pause(0.001)
    return Done(reply(0))


async def channel_status(s: AGISession, a: tuple[str, ...]) -> Done:
    return Done(reply(s.channel.state))


async def noop(s: AGISession, a: tuple[str, ...]) -> Done:
    return Done(reply(0))


async def verbose(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 1:
        raise Usage()
    s.log("VERBOSE", a[0])
    return Done(reply(1))


async def asyncagi_break(s: AGISession, a: tuple[str, ...]) -> Done:
    """Ends an Async AGI session; over FastAGI it is a no-op that answers 0 (agi-05)."""
    if s.async_mode:
        s.break_requested = True
    return Done(reply(0))


async def database_get(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 2:
        raise Usage()
    value = s.sim.database.get((a[0], a[1]))
    return Done(reply(0) if value is None else reply(1, value))


async def database_put(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 3:
        raise Usage()
    s.sim.database[(a[0], a[1])] = a[2]
    return Done(reply(1))


async def database_del(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 2:
        raise Usage()
    return Done(reply(1 if s.sim.database.pop((a[0], a[1]), None) is not None else 0))


async def database_deltree(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 1:
        raise Usage()
    keys = [k for k in s.sim.database if k[0] == a[0] and (len(a) < 2 or k[1].startswith(a[1]))]
    for k in keys:
        del s.sim.database[k]
    return Done(reply(1 if keys else 0))


async def get_variable(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 1:
        raise Usage()
    value = s.channel.get_var(a[0])
    return Done(reply(0) if value is None else reply(1, value))


async def get_full_variable(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) not in (1, 2):
        raise Usage()
    ch = s.channel
    if len(a) == 2:
        other = s.sim.pbx.find_channel(a[1])
        if other is None:
            return Done(reply(0))
        ch = other
    return Done(reply(1, ch.expand(a[0])))


async def set_variable(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 2:
        raise Usage()
    s.channel.set_var(a[0], a[1])
    return Done(reply(1))


async def hangup(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) > 1:
        raise Usage()
    if a:
        other = s.sim.pbx.find_channel(a[0])
        if other is None:
            return Done(reply(-1))
        other.hangup(16)
        return Done(reply(1))
    s.hangup_by_service()
    return Done(reply(1))


async def set_music(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 1:
        raise Usage()
    if a[0].lower() == "on":
        s.channel.start_moh(a[1] if len(a) > 1 else "default")
    else:
        s.channel.stop_moh()
    return Done(reply(0))


async def stream_file(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 2 or len(a) > 3:
        raise Usage()
    offset = atoi(a[2]) if len(a) > 2 else 0
    s.channel.stop_moh()  # "If musiconhold is playing before calling stream file it will be ... stopped"
    res = await media.play(s.channel, a[0], a[1], offset)
    if res.kind == "missing":
        s.failed = True
        return Done(reply(-1, endpos=0), "failure")
    s.channel.set_var("PLAYBACKSTATUS", "SUCCESS")
    if res.kind == "hangup":
        return Done(reply(-1, endpos=res.endpos), "failure")
    if res.kind == "digit":
        return Done(reply(ord(res.digit), endpos=res.endpos))
    return Done(reply(0, endpos=res.endpos))


async def control_stream_file(s: AGISession, a: tuple[str, ...]) -> Done:
    """Stop keys stop; ff/rew (default # and *) skip `skipms` (default 3000); pause key toggles.  endpos in ms."""
    if len(a) < 2 or len(a) > 7:
        raise Usage()
    name, stop = a[0], a[1]
    skip = atoi(a[2]) / 1000 if len(a) > 2 and atoi(a[2]) > 0 else 3.0
    ff = a[3] if len(a) > 3 and a[3] else "#"
    rew = a[4] if len(a) > 4 and a[4] else "*"
    pause_key = a[5] if len(a) > 5 else ""
    ch = s.channel
    total = s.config.sounds.samples(name, ch.language)
    if total is None:
        return Done(reply(-1), "failure")
    length = total / RATE
    clock = ch.pbx.clock
    pos, t0, paused = 0.0, clock.now(), False
    ch.notify_prompt(name)
    while True:
        deadline = None if paused else t0 + (length - pos)
        ev = await ch.next_event(deadline)
        now = clock.now()
        if not paused:
            pos += now - t0
        t0 = now
        framed = math.floor(pos * 50 + 1e-6) / 50  # seeks and reports use whole 20 ms frames; pause does not
        if ev is None:
            return Done(reply(0, endpos=-1))
        if ev.kind == "hangup":
            return Done(reply(-1, endpos=int(round(framed * 1000))), "failure")
        if ev.kind != "dtmf":
            continue
        d = ev.value
        if d in ff:
            pos = min(length, framed + skip)
        elif d in rew:
            pos = max(0.0, framed - skip)
        elif pause_key and d in pause_key:
            paused = not paused
        elif d in stop:
            return Done(reply(ord(d), endpos=int(round(framed * 1000))))
        if pos >= length:
            return Done(reply(0, endpos=-1))


async def get_option(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 2 or len(a) > 3:
        raise Usage()
    name, allowed = a[0], a[1]
    timeout = atoi(a[2]) / 1000 if len(a) > 2 else 5.0
    res = await media.play(s.channel, name, allowed)
    if res.kind == "missing":
        return Done(reply(-1, endpos=0), "failure")
    if res.kind == "hangup":
        return Done(reply(-1, endpos=res.endpos), "failure")
    if res.kind == "digit":
        return Done(reply(ord(res.digit), endpos=res.endpos))
    kind, d = await media.wait_digit(s.channel, timeout if timeout > 0 else None, allowed)
    if kind == "digit":
        return Done(reply(ord(d), endpos=res.endpos))
    if kind == "hangup":
        return Done(reply(-1, endpos=res.endpos), "failure")
    return Done(reply(0, endpos=res.endpos))


async def get_data(s: AGISession, a: tuple[str, ...]) -> Done:
    """Prompt interrupted by any digit; '#' ends input (not returned); max digits; timeout after the prompt."""
    if len(a) < 1 or len(a) > 3:
        raise Usage()
    ch = s.channel
    first: float | None
    between: float | None
    if len(a) > 1 and atoi(a[1]) > 0:
        first = between = atoi(a[1]) / 1000
    elif len(a) > 1 and atoi(a[1]) < 0:
        first = between = None
    else:
        first, between = 10.0, 5.0  # the dialplan's response / digit timeouts
    maxd = atoi(a[2]) if len(a) > 2 else 1024
    maxd = maxd if maxd > 0 else 1024
    digits = ""
    res = await media.play(ch, a[0], "0123456789*#ABCD")
    if res.kind == "missing":
        return Done(reply(-1))
    if res.kind == "hangup":
        return Done(reply(-1))
    pending = res.digit if res.kind == "digit" else None
    while True:
        if pending is None:
            kind, pending = await media.wait_digit(ch, between if digits else first)
            if kind == "hangup":
                return Done(reply(-1))
            if kind == "timeout":
                return Done(reply(digits, "timeout"))
        if pending == "#":
            return Done(reply(digits))
        digits += pending
        pending = None
        if len(digits) >= maxd:
            return Done(reply(digits))


async def wait_for_digit(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 1:
        raise Usage()
    ms = scan_int(a[0])
    kind, d = await media.wait_digit(s.channel, None if ms < 0 else ms / 1000)
    if kind == "hangup":
        return Done(reply(-1), "failure")
    if kind == "digit":
        return Done(reply(ord(d)))
    return Done(reply(0))


async def _say(s: AGISession, files: list[str], escape: str) -> Done:
    res = await media.play_many(s.channel, files, escape)
    if res.kind == "hangup":
        return Done(reply(-1), "failure")
    if res.kind == "digit":
        return Done(reply(ord(res.digit)))
    return Done(reply(0))


async def say_digits(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 2:
        raise Usage()
    return await _say(s, [_char_file(c) for c in a[0] if _char_file(c)], a[1])


async def say_number(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 2 or len(a) > 3:
        raise Usage()
    return await _say(s, say_number_files(scan_int(a[0])), a[1])


async def say_alpha(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) != 2:
        raise Usage()
    return await _say(s, [_char_file(c) for c in a[0] if _char_file(c)], a[1])


def _char_file(c: str) -> str:
    if c.isdigit():
        return "digits/" + c
    if c.isalpha() and c.isascii():
        return "letters/" + c.lower()
    return {"*": "digits/star", "#": "digits/pound"}.get(c, "")


async def record_file(s: AGISession, a: tuple[str, ...]) -> Done:
    """RECORD FILE <file> <format> <escape> <timeout ms|-1> [offset] [BEEP] [s=<secs>] -- see agi-04."""
    if len(a) < 4:
        raise Usage()
    name, fmt, escape = a[0], a[1], a[2]
    timeout_ms = atoi(a[3])
    beep = any(w.upper() == "BEEP" for w in a[4:])
    silence = 0
    for w in a[4:]:
        if w.lower().startswith("s="):
            silence = atoi(w[2:])
    ch = s.channel
    path = s.writable_path(name + "." + fmt)
    if path is None:
        s.failed = True
        return Done(reply(-1, "writefile"), "failure")
    clock = ch.pbx.clock
    if beep:
        res = await media.play(ch, "beep", "")
        if res.kind == "hangup":
            return Done(reply(-1, "hangup", endpos=0), "failure")
        if await ch.pause(BEEP_GAP) is not None:
            return Done(reply(-1, "hangup", endpos=0), "failure")
    ch.notify_command("RECORDING")
    start = clock.now()
    deadline = start + timeout_ms / 1000 if timeout_ms > 0 else None
    s.sim.note_destination(s, "recording:" + str(path))

    def silence_deadline() -> float | None:
        if silence <= 0:
            return None
        now = clock.now()
        quiet_since = max(start, max((b for a_, b in ch.voice if a_ <= now), default=start))
        if ch.speaking_at(now):
            quiet_since = max(b for a_, b in ch.voice if a_ <= now < b)
        return quiet_since + silence

    while True:
        sd = silence_deadline()
        dl = min([d for d in (deadline, sd) if d is not None], default=None)
        ev = await ch.next_event(dl)
        now = clock.now()
        elapsed = now - start
        if ev is None:
            if deadline is not None and now >= deadline:
                samples = int(round(timeout_ms / 1000 * RATE))
                _write(s, path, samples, start)
                return Done(reply(0, "timeout", endpos=samples))
            if sd is not None and now >= sd:
                samples = max(0, int(round((elapsed - (silence - 1)) * RATE)))
                _write(s, path, samples, start)
                left = timeout_ms - int(round(elapsed * 1000)) if timeout_ms > 0 else 0
                return Done(reply(left, "timeout", endpos=samples))
            continue
        if ev.kind == "hangup":
            samples = int(elapsed * 50 + 1e-6) * media.FRAME  # whole frames written so far
            _write(s, path, samples, start)
            return Done(reply(-1, "hangup", endpos=samples), "failure")
        if ev.kind == "dtmf" and ev.value in escape:
            # voice stopped at DTMF begin (120 ms earlier); Asterisk rewinds 200 ms to cut the tone
            kept = max(0.0, elapsed - 0.12 - 0.2)
            samples = int(kept * 50 + 1e-6) * media.FRAME
            _write(s, path, samples, start)
            return Done(reply(ord(ev.value), "dtmf", endpos=samples))


def _write(s: AGISession, path: Path, samples: int, start: float) -> None:
    voiced = [(int((a - start) * RATE), int((b - start) * RATE)) for a, b in s.channel.voice if b > start]
    write_wav(path, samples, voiced)
    s.sim.note_recording(s, str(path), samples / RATE, "record")


async def exec_(s: AGISession, a: tuple[str, ...]) -> Done:
    if len(a) < 1:
        raise Usage()
    from ivr.sim.apps import run_app

    result = await run_app(s, a[0], a[1] if len(a) > 1 else "")
    if result is None:
        return Done(reply(-2), "unknown")
    return Done(reply(result), "ok" if result == 0 else "unknown")


async def unsupported(s: AGISession, a: tuple[str, ...]) -> Done:
    """Commands in the table that the simulator does not model: Asterisk would accept them; we say 0."""
    return Done(reply(0))


HANDLERS: dict[str, Handler] = {
    "ANSWER": answer,
    "ASYNCAGI BREAK": asyncagi_break,
    "CHANNEL STATUS": channel_status,
    "CONTROL STREAM FILE": control_stream_file,
    "DATABASE DEL": database_del,
    "DATABASE DELTREE": database_deltree,
    "DATABASE GET": database_get,
    "DATABASE PUT": database_put,
    "EXEC": exec_,
    "GET DATA": get_data,
    "GET FULL VARIABLE": get_full_variable,
    "GET OPTION": get_option,
    "GET VARIABLE": get_variable,
    "HANGUP": hangup,
    "NOOP": noop,
    "RECORD FILE": record_file,
    "SAY ALPHA": say_alpha,
    "SAY DIGITS": say_digits,
    "SAY NUMBER": say_number,
    "SET AUTOHANGUP": unsupported,
    "SET CALLERID": unsupported,
    "SET CONTEXT": unsupported,
    "SET EXTENSION": unsupported,
    "SET MUSIC": set_music,
    "SET PRIORITY": unsupported,
    "SET VARIABLE": set_variable,
    "STREAM FILE": stream_file,
    "VERBOSE": verbose,
    "WAIT FOR DIGIT": wait_for_digit,
}

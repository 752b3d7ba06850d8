"""Asterisk's side of the AGI wire format: env block, command-line parsing, reply lines, 520 usage blocks.

Rules for this file:
- Sans-IO: no asyncio, no sockets.  It turns bytes into parsed commands and results into bytes.
- Parse exactly like Asterisk's res_agi `parse_args`: words split on space/tab, double quotes group (a quote
  right after whitespace starts a word, so `""` is an empty word), a backslash makes the next byte literal,
  single quotes are ordinary characters, a trailing "\\r" is part of the last word (so `NOOP\\r` is 510).
- Command names match case-insensitively against the command table; the longest match wins.
- Everything Asterisk sends over FastAGI ends with "\\n" only.
- Independent of ivr.agi (the service side): the two must be able to disagree, that is what the tests catch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.sim.usage import USAGE, generic_usage

MAX_ARGS = 128

# (words, allowed on a dead channel) -- res_agi's table for the commands the simulator knows.
COMMANDS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("ANSWER",), False),
    (("ASYNCAGI", "BREAK"), True),
    (("CHANNEL", "STATUS"), False),
    (("CONTROL", "STREAM", "FILE"), False),
    (("DATABASE", "DEL"), True),
    (("DATABASE", "DELTREE"), True),
    (("DATABASE", "GET"), True),
    (("DATABASE", "PUT"), True),
    (("EXEC",), True),
    (("GET", "DATA"), False),
    (("GET", "FULL", "VARIABLE"), True),
    (("GET", "OPTION"), False),
    (("GET", "VARIABLE"), True),
    (("HANGUP",), False),
    (("NOOP",), True),
    (("RECORD", "FILE"), False),
    (("SAY", "ALPHA"), False),
    (("SAY", "DIGITS"), False),
    (("SAY", "NUMBER"), False),
    (("SET", "AUTOHANGUP"), False),
    (("SET", "CALLERID"), False),
    (("SET", "CONTEXT"), False),
    (("SET", "EXTENSION"), False),
    (("SET", "MUSIC"), False),
    (("SET", "PRIORITY"), False),
    (("SET", "VARIABLE"), True),
    (("STREAM", "FILE"), False),
    (("VERBOSE",), True),
    (("WAIT", "FOR", "DIGIT"), False),
)

ENV_ORDER = (
    "network",
    "network_script",
    "request",
    "channel",
    "language",
    "type",
    "uniqueid",
    "version",
    "callerid",
    "calleridname",
    "callingpres",
    "callingani2",
    "callington",
    "callingtns",
    "dnid",
    "rdnis",
    "context",
    "extension",
    "priority",
    "enhanced",
    "accountcode",
    "threadid",
)

ASYNC_ENV_ORDER = ENV_ORDER[2:]  # Async AGI: no agi_network / agi_network_script (agi-09)
URI_SAFE = "-_.!~*'()"  # what Asterisk's URI encoding leaves alone in AsyncAGI Env/Result


class LineTooLong(ValueError):
    """The FastAGI server sent more than `LineBuffer.max_line` bytes without a newline."""


INVALID = b"510 Invalid or unknown command\n"
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
HANGUP_LINE = b"HANGUP\n"
USAGE_HEAD = b"520-Invalid command syntax.  Proper usage follows:\n"
USAGE_TAIL = b"520 End of proper usage.\n"


def parse_args(line: str) -> list[str]:
    """Split one command line (without its final "\\n") into words, the way res_agi does."""
    words: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                words.append("")  # placeholder, filled when the word ends
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None and not whitespace:
                words[-1] = "".join(cur)
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            if len(words) >= MAX_ARGS - 1:
                escaped = False
                continue
            cur = []
            words.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        escaped = False
    if cur is not None and words:
        words[-1] = "".join(cur)
    return words


@dataclass(frozen=True)
class ParsedCommand:
    """A command line as Asterisk understood it."""

    line: str  # the raw line without the final "\n" (may end in "\r")
    words: tuple[str, ...]  # all words as parsed
    name: tuple[str, ...] | None  # upper-case command words from the table, None -> 510
    dead_ok: bool = False

    @property
    def args(self) -> tuple[str, ...]:
        """The words after the command name."""
        return self.words[len(self.name or ()) :]

    @property
    def title(self) -> str:
        return " ".join(self.name or ())


def find_command(words: list[str]) -> tuple[tuple[str, ...], bool] | None:
    best: tuple[tuple[str, ...], bool] | None = None
    for names, dead_ok in COMMANDS:
        if len(words) < len(names):
            continue
        if all(w.upper() == n for w, n in zip(words, names, strict=False)) and (
            best is None or len(names) > len(best[0])
        ):
            best = (names, dead_ok)
    return best


def parse_command(line: str) -> ParsedCommand:
    words = parse_args(line)
    found = find_command(words)
    if found is None:
        return ParsedCommand(line, tuple(words), None)
    return ParsedCommand(line, tuple(words), found[0], found[1])


class LineBuffer:
    """Accumulates bytes from the FastAGI server and yields complete lines (without "\\n").

    Remembers how far it already searched so a peer sending one byte at a time costs O(n).
    """

    def __init__(self, max_line: int = 65536) -> None:
        self._buf = bytearray()
        self._searched = 0
        self.max_line = max_line

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_line(self) -> str | None:
        idx = self._buf.find(b"\n", self._searched)
        if idx < 0:
            self._searched = len(self._buf)
            if len(self._buf) > self.max_line:
                raise LineTooLong(f"AGI command line longer than {self.max_line} bytes")
            return None
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        self._searched = 0
        return line.decode("latin-1")


# -- replies ----------------------------------------------------------------------------------------------------


def reply(result: int | str, data: str | None = None, endpos: int | None = None) -> bytes:
    """`200 result=<result>[ (<data>)][ endpos=<n>]\\n` -- the forms of the transcripts."""
    text = f"200 result={result}"
    if data is not None:
        text += f" ({data})"
    if endpos is not None:
        text += f" endpos={endpos}"
    return (text + "\n").encode("latin-1", "replace")


def usage_block(name: tuple[str, ...]) -> tuple[bytes, bytes]:
    """The 520 block in two parts: Asterisk sends the first line ~40 ms before the rest."""
    lines = USAGE.get(" ".join(name)) or generic_usage(" ".join(name))
    body = "".join(line + "\n" for line in lines).encode("latin-1", "replace") + USAGE_TAIL
    return USAGE_HEAD, body


def env_block(env: Mapping[str, str], args: Iterable[str], order: tuple[str, ...] = ENV_ORDER) -> bytes:
    """The env block in Asterisk's order; empty values keep the space; ends with an empty line."""
    out = []
    for key in order:
        out.append("agi_{}: {}\n".format(key, env.get(key, "")))
    for i, arg in enumerate(args, 1):
        out.append(f"agi_arg_{i}: {arg}\n")
    out.append("\n")
    return "".join(out).encode("latin-1", "replace")

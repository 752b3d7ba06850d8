"""AGI protocol core, without I/O (sans-IO, h11 style).

Rules for this file:
- It imports neither asyncio nor socket: bytes go in through `AGIConnection.receive_data()`, events come out of
  `next_event()`, bytes to send come out of `send_command()`. FastAGI (TCP) and classic AGI (pipes) share it.
- Everything that changes the connection state lives in the `_TRANSITIONS` table below; no other code sets
  `state`.
- We play the server role: Asterisk sends the environment block, then one reply per command, plus an
  unsolicited `HANGUP` line once the channel hangs up. `HANGUP` is a notice, never a reply: it may arrive while
  idle, or between a command's reply and the next command, and it must not shift replies.
- Lines from Asterisk end with "\\n" only; lines to Asterisk must end with "\\n" only (a "\\r" is not stripped by
  Asterisk and corrupts the command). Bytes that are not UTF-8 are decoded as Latin-1, line by line, so a
  caller name in another encoding never drops a call.
- Every wire format handled here is quoted from a real Asterisk 22 transcript in tests/agi/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from urllib.parse import parse_qsl

from ..records import FrozenRecord, Record
from .errors import AGIEncodingError, AGIProtocolError

DEFAULT_LINE_LIMIT = 8192  # longest usage line in Asterisk 22 is ~500 bytes
DEFAULT_HEADER_LIMIT = 32768  # a real environment block is ~700 bytes
MAX_COMMAND_BYTES = 2047  # Asterisk reads commands into a 2048-byte buffer (AGI_BUF_LEN); longer lines
# would be cut and the rest run as a second command
MAX_COMMAND_WORDS = 128  # Asterisk's MAX_ARGS
USAGE_END = "520 End of proper usage."


def decode_line(raw: bytes | bytearray) -> str:
    """UTF-8 if valid, else Latin-1 (never fails: every byte is a Latin-1 character)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# --- environment ------------------------------------------------------------------------------------------


class AGIEnvironment(FrozenRecord):
    """The `agi_*` block Asterisk sends first. Keys are stored without the `agi_` prefix."""

    __slots__ = ("raw", "script_path", "query", "args")

    raw: dict[str, str]
    script_path: str
    query: dict[str, str]
    args: list[str]

    def __init__(self, raw: dict[str, str], script_path: str, query: dict[str, str], args: list[str]) -> None:
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "script_path", script_path)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "args", args)

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> AGIEnvironment:
        raw: dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep:
                raise AGIProtocolError(f"environment line without ':' : {line[:80]!r}")
            key = key.strip()
            if key.startswith("agi_"):
                key = key[4:]
            # "agi_accountcode: " -> "" (empty values keep the space after the colon; we drop exactly one).
            raw[key] = value[1:] if value.startswith(" ") else value
        script = raw.get("network_script", "")
        path, _, query_string = script.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}
        args: list[str] = []
        n = 1
        while f"arg_{n}" in raw:
            args.append(raw[f"arg_{n}"])
            n += 1
        return cls(raw=raw, script_path=path.strip("/"), query=query, args=args)

    def get(self, key: str, default: str = "") -> str:
        return self.raw.get(key, default)

    # Properties over raw for the keys every call has (names follow Asterisk's, without `agi_`).
    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def dnid(self) -> str:
        return self.get("dnid")

    @property
    def rdnis(self) -> str:
        return self.get("rdnis")

    @property
    def language(self) -> str:
        return self.get("language")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def extension(self) -> str:
        return self.get("extension")

    @property
    def priority(self) -> str:
        return self.get("priority")

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def type(self) -> str:
        return self.get("type")

    @property
    def accountcode(self) -> str:
        return self.get("accountcode")

    @property
    def version(self) -> str:
        return self.get("version")

    @property
    def network(self) -> bool:
        return self.get("network") == "yes"


Environment = AGIEnvironment


# --- command encoding ------------------------------------------------------------------------------------


class Quoted(str):
    """A word that is always sent in double quotes (escape digits, as Asterisk's own docs and pyst2 send them)."""


_FORBIDDEN = frozenset("\r\n\0")
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_PLAIN_WORD = re.compile(r'[^\s"\\\0]+').fullmatch  # \s covers CR and LF: a word that goes bare


def quote_word(word: str) -> str:
    """Quote one argument the way Asterisk's parse_args() reads it: double quotes group, backslash escapes."""
    if _FORBIDDEN.intersection(word):
        raise AGIEncodingError(
            f"AGI argument {word[:40]!r} contains CR, LF or NUL; these would end the command line early "
            "(command injection). Remove control characters from the value first."
        )
    if word and not isinstance(word, Quoted) and not _NEEDS_QUOTES.search(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(*words: str) -> bytes:
    """`encode_command("SET", "VARIABLE", "X", "a b")` -> b'SET VARIABLE X "a b"\\n'.

    Command words and plain arguments go bare; arguments with blanks, quotes or backslashes are quoted; empty
    arguments become "". Refuses CR/LF/NUL, more than 128 words and lines over Asterisk's 2 KiB buffer.
    """
    if not words:
        raise AGIEncodingError("empty AGI command; pass the command name, e.g. encode_command('NOOP')")
    if len(words) > MAX_COMMAND_WORDS:
        raise AGIEncodingError(f"AGI command has {len(words)} words; Asterisk accepts at most {MAX_COMMAND_WORDS}")
    # One regex call per word (plain str words: command names, numbers, file names go bare); only the others
    # (a Quoted value, blanks, quotes, backslashes, CR/LF/NUL) go through quote_word().
    text = " ".join(
        [w if type(w) is str and _PLAIN_WORD(w) else quote_word(w if isinstance(w, str) else str(w)) for w in words]
    )
    line = (text + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND_BYTES:
        raise AGIEncodingError(
            f"AGI command is {len(line)} bytes; Asterisk truncates commands over {MAX_COMMAND_BYTES} bytes and runs "
            "the rest as another command. Shorten the value."
        )
    return line


# --- replies ---------------------------------------------------------------------------------------------


class AGIReply(Record):
    """One reply: `200 result=1 (hello world)`, `200 result=35 (dtmf) endpos=18560`, `510 ...`, a 520 block.

    Read-only by convention. Not a FrozenRecord: setting each field through object.__setattr__ made building the
    reply the largest single cost of a command (bench/agi_bench.py).
    """

    __slots__ = ("code", "result", "data", "endpos", "extra", "lines")

    code: int
    result: str
    data: str | None
    endpos: int | None
    extra: dict[str, str]
    lines: list[str]

    def __init__(
        self,
        code: int,
        result: str,
        data: str | None = None,
        endpos: int | None = None,
        extra: dict[str, str] | None = None,
        lines: list[str] | None = None,
    ) -> None:
        self.code = code
        self.result = result
        self.data = data
        self.endpos = endpos
        self.extra = {} if extra is None else extra
        self.lines = [] if lines is None else lines

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        """The result as an int (`None` for `200 result= (timeout)` or a non-numeric result)."""
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def message(self) -> str:
        """Text after the code of the first line, e.g. 'Invalid or unknown command'."""
        first = self.lines[0] if self.lines else ""
        return first[4:]

    @property
    def usage(self) -> str:
        """Usage text of a 520 block (the lines between the first line and `520 End of proper usage.`)."""
        return "\n".join(self.lines[1:-1]) if self.code == 520 else ""


_KV_TAIL = re.compile(r"(?:\s+[A-Za-z_]\w*=\S*)*\s*")
_KV = re.compile(r"([A-Za-z_]\w*)=(\S*)")


# The usual 200 shapes in one match: `200 result=<r>[ (<data>)][ k=v...]`, single spaces. The greedy data group
# ends at the last ")" followed only by key=value pairs, the same rule as the general parser below; anything
# else (extra blanks, junk, an unterminated "(") falls through to it. Equal results: test_protocol.py.
_REPLY_200 = re.compile(r"200 result=(\S*)(?: \((.*)\))?((?: [A-Za-z_]\w*=\S*)*)").fullmatch


def parse_reply_line(line: str) -> AGIReply:
    """Parse a single-line reply (not the continuation lines of a 520 block)."""
    if line.startswith("200 result=") and " " not in line[11:]:  # fast path: "200 result=0", the common case
        return AGIReply(200, line[11:], None, None, {}, [line])
    match = _REPLY_200(line)
    if match is not None:
        result, data, pairs = match.groups()
        extra = dict(_KV.findall(pairs)) if pairs else {}
        endpos_text = extra.get("endpos")
        endpos = int(endpos_text) if endpos_text and endpos_text.lstrip("-").isdigit() else None
        return AGIReply(200, result, data, endpos, extra, [line])
    return _parse_reply_general(line)


def _parse_reply_general(line: str) -> AGIReply:
    if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
        raise AGIProtocolError(f"not an AGI reply line: {line[:80]!r}")
    code = int(line[:3])
    rest = line[4:]
    if code not in (100, 200) or not rest.startswith("result="):
        return AGIReply(code=code, result="", lines=[line])
    rest = rest[len("result=") :]
    result, _, tail = rest.partition(" ")
    data: str | None = None
    tail = tail.lstrip(" ")
    if tail.startswith("("):
        # Data may itself contain ")" and spaces (`200 result=1 (say "hi" there||IVR Caller|21)`); it ends at the
        # last ")" that is followed only by key=value pairs (`(dtmf) endpos=18560`).
        end = len(tail)
        while True:
            end = tail.rfind(")", 0, end)
            if end < 0:
                raise AGIProtocolError(f"unterminated '(' in AGI reply: {line[:80]!r}")
            if _KV_TAIL.fullmatch(tail, end + 1):
                break
        data = tail[1:end]
        tail = tail[end + 1 :]
    extra = dict(_KV.findall(tail))
    endpos_text = extra.get("endpos")
    endpos = int(endpos_text) if endpos_text and endpos_text.lstrip("-").isdigit() else None
    return AGIReply(code=code, result=result, data=data, endpos=endpos, extra=extra, lines=[line])


# --- events ----------------------------------------------------------------------------------------------


class HangupNotice(FrozenRecord):
    """The unsolicited `HANGUP` line: the channel hung up; the session is now in dead mode."""

    __slots__ = ()


class EOF(FrozenRecord):
    """The peer closed its side. `in_usage_block` is True when it happened inside an unfinished 520 block."""

    __slots__ = ("in_usage_block",)

    in_usage_block: bool

    def __init__(self, in_usage_block: bool = False) -> None:
        object.__setattr__(self, "in_usage_block", in_usage_block)


Event = AGIEnvironment | AGIReply | HangupNotice | EOF


# --- receive buffer --------------------------------------------------------------------------------------


class ReceiveBuffer:
    """Bytes received but not yet parsed, split into "\\n"-terminated lines.

    It remembers how far it already searched for "\\n": a peer sending one byte at a time costs O(n) in total,
    not O(n^2) (a cheap denial of service otherwise). A line longer than `line_limit` is refused.
    """

    def __init__(self, line_limit: int = DEFAULT_LINE_LIMIT) -> None:
        self._data = bytearray()
        self._searched = 0
        self.line_limit = line_limit

    def __len__(self) -> int:
        return len(self._data)

    def feed(self, data: bytes) -> None:
        self._data += data

    def maybe_extract_line(self) -> bytes | None:
        """The next line without its "\\n", or None until a whole line has arrived."""
        idx = self._data.find(b"\n", self._searched)
        if idx < 0:
            self._searched = len(self._data)
            if self._searched > self.line_limit:
                raise AGIProtocolError(
                    f"line longer than {self.line_limit} bytes from the AGI peer;"
                    " raise line_limit if this is legitimate"
                )
            return None
        if idx > self.line_limit:
            raise AGIProtocolError(
                f"line longer than {self.line_limit} bytes from the AGI peer; raise line_limit if this is legitimate"
            )
        line = bytes(self._data[:idx])
        del self._data[: idx + 1]  # deleting from the front of a bytearray is amortised O(1) in CPython
        self._searched = 0
        return line


# --- state machine ---------------------------------------------------------------------------------------


class State(StrEnum):  # str first: C-level hashing, the table lookups are per command
    ENV = "ENV"  # reading the environment block
    READY = "READY"  # idle, a command may be sent
    WAITING_REPLY = "WAITING_REPLY"  # a command is in flight
    DEAD = "DEAD"  # HANGUP received, idle: variables still work, media gets 511
    DEAD_WAITING_REPLY = "DEAD_WAITING_REPLY"  # HANGUP received, a command is in flight
    CLOSED = "CLOSED"  # EOF received or we closed
    ERROR = "ERROR"  # protocol error; nothing more is parsed


class _Input(StrEnum):
    ENVIRONMENT = "environment"
    SEND = "send"
    REPLY = "reply"
    HANGUP = "hangup"
    EOF = "eof"


# state -> input -> new state. Anything missing is a protocol error.
_TRANSITIONS: dict[State, dict[_Input, State]] = {
    State.ENV: {_Input.ENVIRONMENT: State.READY, _Input.EOF: State.CLOSED},
    State.READY: {_Input.SEND: State.WAITING_REPLY, _Input.HANGUP: State.DEAD, _Input.EOF: State.CLOSED},
    State.WAITING_REPLY: {_Input.REPLY: State.READY, _Input.HANGUP: State.DEAD_WAITING_REPLY, _Input.EOF: State.CLOSED},
    # Asterisk may send HANGUP a second time when the session ends; it stays a notice.
    State.DEAD: {_Input.SEND: State.DEAD_WAITING_REPLY, _Input.HANGUP: State.DEAD, _Input.EOF: State.CLOSED},
    State.DEAD_WAITING_REPLY: {
        _Input.REPLY: State.DEAD,
        _Input.HANGUP: State.DEAD_WAITING_REPLY,
        _Input.EOF: State.CLOSED,
    },
    State.CLOSED: {_Input.EOF: State.CLOSED},
    State.ERROR: {},
}
# The REPLY column of the table on its own: one lookup on the per-command fast paths.
_AFTER_REPLY: dict[State, State] = {
    state: row[_Input.REPLY] for state, row in _TRANSITIONS.items() if _Input.REPLY in row
}


class AGIConnection:
    """Server-side AGI connection state: feed bytes, pull events, encode commands.

    Typical use:
        conn.receive_data(chunk)             # b"" means EOF
        while (event := conn.next_event()) is not None: ...
        transport.write(conn.send_command("STREAM", "FILE", "beep", Quoted("#")))
    """

    def __init__(self, *, line_limit: int = DEFAULT_LINE_LIMIT, header_limit: int = DEFAULT_HEADER_LIMIT) -> None:
        self.state = State.ENV
        self._buffer = ReceiveBuffer(line_limit)
        self.header_limit = header_limit
        self._env_lines: list[str] = []
        self._env_bytes = 0
        self._usage: list[str] | None = None  # lines of a 520 block being read
        self._eof = False
        self.env: AGIEnvironment | None = None
        self.hung_up = False

    # -- transitions --
    def _apply(self, inp: _Input) -> None:
        new = _TRANSITIONS[self.state].get(inp)
        if new is None:
            old = self.state
            self.state = State.ERROR
            raise AGIProtocolError(f"unexpected {inp.value} in state {old.value}")
        self.state = new

    @property
    def waiting_reply(self) -> bool:
        return self.state in (State.WAITING_REPLY, State.DEAD_WAITING_REPLY)

    @property
    def can_send(self) -> bool:
        return self.state in (State.READY, State.DEAD)

    # -- output --
    def send_command(self, *words: str) -> bytes:
        """Encode a command and move to WAITING_REPLY. One command in flight at a time."""
        data = encode_command(*words)
        self.mark_sent()
        return data

    def mark_sent(self) -> None:
        """Record that an already-encoded command is being sent (for callers that encode once and reuse)."""
        state = self.state
        if state is not State.READY and state is not State.DEAD:
            raise AGIProtocolError(f"cannot send a command in state {state.value}; one command at a time")
        self.state = _TRANSITIONS[state][_Input.SEND]

    def notify_hangup(self) -> None:
        """The channel hung up, learnt out of band (classic AGI gets SIGHUP instead of a HANGUP line)."""
        if self.state in (State.CLOSED, State.ERROR, State.ENV):
            self.hung_up = True
            return
        self.hung_up = True
        self._apply(_Input.HANGUP)

    @property
    def buffered(self) -> bool:
        """True when received bytes are waiting to be parsed (or EOF is pending)."""
        return bool(self._buffer._data) or (self._eof and self.state is not State.CLOSED)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not parsed yet (the I/O layer pauses reading above a bound)."""
        return len(self._buffer._data)

    @property
    def eof(self) -> bool:
        """True once the peer's EOF has been fed in."""
        return self._eof

    @property
    def line_limit(self) -> int:
        return self._buffer.line_limit

    # -- input --
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer (copied: the caller may reuse its buffer); b"" means the peer closed (EOF)."""
        if data:
            if self._eof:
                raise AGIProtocolError("data after EOF")
            self._buffer._data += data  # ReceiveBuffer.feed(), inlined: this runs once per reply
        else:
            self._eof = True

    def next_event(self) -> Event | None:
        """The next complete event, or None until more data arrives. 100 Trying lines are consumed silently."""
        state = self.state
        if state is State.ERROR:
            raise AGIProtocolError("connection is in ERROR state after a protocol error")
        buf = self._buffer
        data = buf._data
        if state is State.ENV and data.find(b"\n", buf._searched) >= 0:
            env = self._read_environment()
            if env is not None:
                return env
        # Fast path for the usual reply: exactly one "200 result=<word>\n" line in the buffer while a command is
        # in flight (same result as the general path below, see test_connection_fast_path_equals_full_parser).
        if (
            data.startswith(b"200 result=")
            and data.find(b"\n") == len(data) - 1
            and data.find(b" ", 11) < 0
            and state in _AFTER_REPLY
            and self._usage is None
            and len(data) <= buf.line_limit
        ):
            line = decode_line(data[:-1])
            data.clear()
            buf._searched = 0
            self.state = _AFTER_REPLY[state]
            return AGIReply(200, line[11:], None, None, {}, [line])
        while True:
            try:
                raw = buf.maybe_extract_line()
            except AGIProtocolError:
                self.state = State.ERROR
                raise
            if raw is None:
                if self._eof and self.state is not State.CLOSED:
                    in_usage = self._usage is not None
                    self._usage = None
                    self._apply(_Input.EOF)
                    return EOF(in_usage_block=in_usage)
                return None
            event = self._process_line(raw)
            if event is not None:
                return event

    def _read_environment(self) -> AGIEnvironment | None:
        """ENV state: take every complete line at once (a header arrives in one or two reads) under the same rules
        as one line at a time in _process_line(). Lines after the block's empty line go back to the buffer."""
        buf = self._buffer
        data = buf._data
        last = data.rfind(b"\n")
        lines = bytes(data[:last]).split(b"\n")
        del data[: last + 1]
        buf._searched = 0
        limit = buf.line_limit
        for i, raw in enumerate(lines):
            if len(raw) > limit:
                self.state = State.ERROR
                raise AGIProtocolError(
                    f"line longer than {limit} bytes from the AGI peer; raise line_limit if this is legitimate"
                )
            if raw:
                self._env_bytes += len(raw) + 1
                if self._env_bytes > self.header_limit:
                    self.state = State.ERROR
                    raise AGIProtocolError(f"AGI environment block over {self.header_limit} bytes; closing")
                self._env_lines.append(decode_line(raw))
                continue
            rest = lines[i + 1 :]
            if rest:
                data[0:0] = b"\n".join(rest) + b"\n"
            event = self._process_line(raw)  # the empty line: builds the environment
            assert isinstance(event, AGIEnvironment)
            return event
        return None

    def _process_line(self, raw: bytes) -> Event | None:
        state = self.state
        if state is State.ENV:
            self._env_bytes += len(raw) + 1
            if self._env_bytes > self.header_limit:
                self.state = State.ERROR
                raise AGIProtocolError(f"AGI environment block over {self.header_limit} bytes; closing")
            if raw:
                self._env_lines.append(decode_line(raw))
                return None
            try:
                env = AGIEnvironment.from_lines(self._env_lines)
            except AGIProtocolError:
                self.state = State.ERROR
                raise
            self._env_lines = []
            self.env = env
            self._apply(_Input.ENVIRONMENT)
            return env
        if (
            raw.startswith(b"200 result=")
            and raw.find(b" ", 11) < 0
            and self._usage is None
            and (state is State.WAITING_REPLY or state is State.DEAD_WAITING_REPLY)
        ):
            # Fast path for the most common reply ("200 result=0"): same result as parse_reply_line().
            line = decode_line(raw)
            self.state = _AFTER_REPLY[state]
            return AGIReply(200, line[11:], None, None, {}, [line])
        line = decode_line(raw)
        if self._usage is not None:
            # Inside a 520 block every line is usage text until "520 End of proper usage." (or any "520 " line).
            self._usage.append(line)
            if line.startswith("520 "):
                lines, self._usage = self._usage, None
                self._apply(_Input.REPLY)
                return AGIReply(code=520, result="", lines=lines)
            return None
        if line == "HANGUP":
            self.hung_up = True
            self._apply(_Input.HANGUP)
            return HangupNotice()
        if state is State.CLOSED:
            return None
        if not self.waiting_reply:
            self.state = State.ERROR
            raise AGIProtocolError(f"unsolicited line from Asterisk while no command is in flight: {line[:80]!r}")
        if line.startswith("520-"):
            self._usage = [line]
            return None
        try:
            reply = parse_reply_line(line)
        except AGIProtocolError:
            self.state = State.ERROR
            raise
        if reply.code == 100:  # "100 result=0 Trying..." precedes the real reply
            return None
        self._apply(_Input.REPLY)
        return reply

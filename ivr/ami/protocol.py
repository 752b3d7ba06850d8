"""AMI (Asterisk Manager Interface) protocol core, without I/O.

Rules for this file:
- No asyncio, no sockets, no clocks: bytes in, `Message`/`Banner` out; headers in, bytes out. Both roles use it:
  the client (we parse what Asterisk says) and the simulated Asterisk (it parses what clients say).
- What the peer sent is never altered or lost: header order and repeats are kept (`Output`, `ChanVariable`,
  `Variable`), a raw CR inside a value stays (`Command: NOOP\\r\\r\\n` -> value `NOOP\\r`), bytes that are not UTF-8
  become U+FFFD (never dropped), and a UTF-8 character split between two reads is decoded whole because only complete
  messages are decoded.
- Line ends, as on a real Asterisk 22 (see tests/data/asterisk/README.md):
  * client role (parsing Asterisk): every line ends in CRLF and a message ends with an empty line. A bare LF is part
    of a value (the Park response `Message: Park successful\\n\\r\\n\\r\\n` gives the value `Park successful\\n`).
  * server role (parsing a client, like Asterisk's own reader): a line ends at LF and one CR before it is removed, so
    CRLF and bare LF clients both work; header lines without a colon are ignored, as Asterisk does.
- A receive buffer remembers how far it has searched for the end of a message, so a peer that sends one byte at a
  time costs O(n), not O(n^2) (a denial-of-service vector otherwise). One message may not exceed
  `max_message_size` bytes (`AMIMessageTooLarge`); after any `AMIProtocolError` the parser must be discarded.
- Speed without changing meaning: client-role messages keep their text and split it into headers only when all of
  them are needed; a single-header lookup searches the text at C speed (a regex, no copy) and falls back
  to the full split whenever it cannot prove its answer (tested equal to the full split on every recorded message
  and on generated odd blocks).
- Encoding refuses CR/LF in names and values (`AMIEncodingError`): text from the network or a user must not be able
  to inject headers or whole actions. Only the simulated Asterisk may pass `raw_values=True` to reproduce Asterisk's
  own quirks byte for byte.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from ivr.ami.errors import AMIEncodingError, AMIMessageTooLarge, AMIProtocolError

__all__ = [
    "Banner",
    "Message",
    "AMIParser",
    "Role",
    "HeaderValue",
    "Headers",
    "encode_message",
    "encode_action",
    "header_pairs",
    "md5_key",
    "login_headers",
    "md5_login_headers",
    "command_output",
    "is_list_start",
    "is_list_complete",
    "DEFAULT_MAX_MESSAGE_SIZE",
]

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024  # a `core show channels` with thousands of calls still fits
_MAX_BANNER = 1024
_END_CRLF = b"\r\n\r\n"
_END_LENIENT = re.compile(rb"\n\r?\n")
_FOLLOWS_END = "--END COMMAND--"
_UNSURE = object()  # Message._find_raw(): the quick look cannot decide


class Role(enum.Enum):
    CLIENT = "client"  # we read what Asterisk sends (banner first, CRLF lines)
    SERVER = "server"  # we read what an AMI client sends (CRLF or bare LF lines, no banner)


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line Asterisk sends on connect, e.g. `Asterisk Call Manager/11.0.0`."""

    text: str

    @property
    def version(self) -> str:
        """The AMI version after the last '/', or '' if the banner has none."""
        _, sep, version = self.text.rpartition("/")
        return version.strip() if sep else ""


class Message:
    """One AMI message: ordered header pairs; names compare case-insensitively; a name may repeat.

    `msg["X"]` and `msg.get("X")` give the first value; `msg.getall("X")` gives every value in order.
    Messages from the client-role parser keep their text and split it into headers on first use: routing needs
    only the first line (`Event:`/`Response:`), and most events reach no subscriber that reads them.
    """

    # _kind: "Event", "Response" or "Action" when the first header is exactly that (as Asterisk writes it), with
    # its value in _name; None otherwise (then the headers decide).
    __slots__ = ("_raw", "_low", "_pairs_", "_index", "_kind", "_name")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._raw: str | None = None
        self._low: str | None = None  # raw.lower(), made on the first quick lookup
        self._pairs_: list[tuple[str, str]] | None = [(str(k), str(v)) for k, v in pairs]
        self._index: dict[str, str] | None = None
        self._kind, self._name = _kind_of(self._pairs_)

    @classmethod
    def _trusted(cls, pairs: list[tuple[str, str]]) -> Message:
        # The parser already built a list of str pairs; skip the copy.
        msg = cls.__new__(cls)
        msg._raw = None
        msg._low = None
        msg._pairs_ = pairs
        msg._index = None
        msg._kind, msg._name = _kind_of(pairs)
        return msg

    @classmethod
    def _lazy(cls, block: str, kind: str, name: str) -> Message:
        # A CRLF block whose first line is a well-formed `Event:`/`Response:` header (the parser's hot path).
        msg = cls.__new__(cls)
        msg._raw = block
        msg._low = None
        msg._pairs_ = None
        msg._index = None
        msg._kind = kind
        msg._name = name
        return msg

    @property
    def _pairs(self) -> list[tuple[str, str]]:
        pairs = self._pairs_
        if pairs is None:
            pairs = self._pairs_ = _parse_crlf_block(self._raw or "")
            self._raw = self._low = None
        return pairs

    def _idx(self) -> dict[str, str]:
        index = self._index
        if index is None:
            # Reversed so that the first of repeated headers wins.
            index = self._index = {key.lower(): value for key, value in reversed(self._pairs)}
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        raw = self._raw
        if raw is not None and raw.isascii():
            # The quick lookup in unsplit text, the hot path of every subscriber: a search in C for the first line
            # starting with `name:` in any case, in a lower-case copy of the text made once per message (in ASCII
            # the copy has the same offsets), then the value from the text itself, up to CRLF; no split of the
            # headers. A line `Name: ...` there is the answer (the first value wins); `Name:value` without the
            # space (the key might be `Name:value`) and odd names go to the full split.
            try:
                marker, kind = _PROBES[name]
            except KeyError:
                marker, kind = _probe(name)
            if marker is not None:
                if kind == self._kind:  # the first line, `Event: name` / `Response: name`
                    return self._name
                low = self._low
                if low is None:
                    low = self._low = raw.lower()
                at = low.find(marker)
                if at < 0:
                    return default
                start = at + len(marker)
                if raw.startswith(" ", start):
                    end = raw.find("\r\n", start)  # a CR not before LF, or a bare LF, is part of the value
                    return raw[start + 1 :] if end < 0 else raw[start + 1 : end]
        elif raw is not None:
            hit = self._find_raw(name)
            if hit is not _UNSURE:
                return default if hit is None else cast(str, hit)  # not _UNSURE: a str or None
        return self._idx().get(name.lower(), default)

    def leading(self, names: tuple[str, ...]) -> tuple[str, ...] | None:
        """The values of `names` when they are this event's first headers, in that order, each `Name: value`, right
        after the `Event:` line and Asterisk's optional `Privilege:` and `SystemName:` lines; None otherwise (then
        ask `get()`). Equal to `tuple(get(n) for n in names)` whenever it answers: no earlier line can hold one of
        the names, so the first value wins as in `get()`.

        Asterisk writes every channel event's snapshot block in one order (Channel ... Linkedid): one regular
        expression match reads the 14 headers a new channel needs in about the time of three `get()`s.
        """
        raw = self._raw
        if raw is None or self._kind != "Event":
            return None
        pattern = _LEADING.get(names)
        if pattern is None:
            pattern = _leading_pattern(names)
        match = pattern.match(raw)
        return None if match is None else match.groups()

    def _find_raw(self, name: str) -> str | None | object:
        """Look one header up in the unsplit text at C speed: the value, None if surely absent, or _UNSURE.

        For text that is not pure ASCII (where case folding may change lengths, so folded offsets are not raw
        offsets) and for names the quick path in get() does not handle. A header exists only where a line starts
        with `name:` (any case), so a case-folded search for that proves absence; a `name: ` line in the exact
        case is the answer only if no earlier line starts with the name in another case (the first value wins).
        Anything unusual falls back to splitting all headers.
        """
        raw = self._raw
        assert raw is not None
        if not name or any(c in name for c in "\r\n:"):
            return _UNSURE
        marker = name.lower() + ":"
        crlf_marker = "\r\n" + marker
        line = name + ": "
        if raw.startswith(line):
            start = len(line)
        else:
            crlf_line = "\r\n" + line
            at = raw.find(crlf_line)
            if at < 0:
                folded = raw.lower()
                if folded.startswith(marker) or crlf_marker in folded:
                    return _UNSURE
                return None
            earlier = raw[:at].lower()
            if earlier.startswith(marker) or crlf_marker in earlier:
                return _UNSURE
            start = at + len(crlf_line)
        end = raw.find("\r\n", start)
        return raw[start:] if end < 0 else raw[start:end]

    def getall(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self._pairs if k.lower() == lname]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)  # header values are never None: None means no such header
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in wire order, repeats included."""
        return list(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self._pairs == other._pairs

    # compared by content, so unhashable; typeshed types object.__hash__ as a method, not as the documented None
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Message({self._pairs!r})"

    def to_dict(self) -> dict[str, str]:
        """First value of each header, in wire order, names as sent (convenient for JSON)."""
        out: dict[str, str] = {}
        seen: set[str] = set()
        for key, value in self._pairs:
            lkey = key.lower()
            if lkey not in seen:
                seen.add(lkey)
                out[key] = value
        return out

    @property
    def name(self) -> str | None:
        """The value of `Event` (events), `Response` (responses) or `Action` (requests, server role)."""
        if self._kind is not None:
            return self._name
        index = self._idx()
        return index.get("event") or index.get("response") or index.get("action")

    @property
    def is_event(self) -> bool:
        kind = self._kind
        if kind is not None:
            return kind == "Event"
        return "event" in self._idx()

    @property
    def is_response(self) -> bool:
        kind = self._kind
        if kind is not None:
            return kind == "Response"
        index = self._idx()
        return "response" in index and "event" not in index

    @property
    def is_action(self) -> bool:
        return "action" in self._idx()

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


class AMIParser:
    """Incremental AMI framing: `feed(bytes) -> list[Message | Banner]`.

    In the client role the first item is always a `Banner` (delivered once); then `Message`s.
    """

    def __init__(self, role: Role = Role.CLIENT, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 16:
            raise ValueError("max_message_size must be at least 16 bytes")
        self.role = role
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for a message end (no end lies before it)
        self._want_banner = role is Role.CLIENT
        self.banner: Banner | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | Banner]:
        buf = self._buf
        buf += data
        out: list[Message | Banner] = []
        if self._want_banner:
            banner = self._take_banner()
            if banner is None:
                return out
            out.append(banner)
        if self.role is Role.CLIENT:
            self._feed_crlf(out)
        else:
            self._feed_lenient(out)
        return out

    # -- client role: CRLF framing --------------------------------------------------------------------------

    def _take_banner(self) -> Banner | None:
        buf = self._buf
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > _MAX_BANNER:
                raise AMIProtocolError(
                    f"no AMI banner line within {_MAX_BANNER} bytes; check that host:port is an Asterisk manager port"
                )
            return None
        line = bytes(buf[:end])
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("utf-8", "replace")
        if ": " in text:
            raise AMIProtocolError(
                f"expected the AMI banner (e.g. 'Asterisk Call Manager/11.0.0'), got a header line {text[:80]!r}; "
                "check that host:port is an Asterisk manager port"
            )
        del buf[: end + 1]
        self._want_banner = False
        self.banner = Banner(text)
        return self.banner

    def _feed_crlf(self, out: list[Message | Banner]) -> None:
        buf = self._buf
        # Resume 3 bytes early: a terminator may straddle the previous read's end.
        end = buf.rfind(_END_CRLF, max(self._scanned - 3, 0))
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > self.max_message_size:
                raise AMIMessageTooLarge(len(buf), self.max_message_size)
            return
        end += 4
        # Decode every complete message at once: terminators are ASCII, so a multi-byte character never spans
        # two messages, and the incomplete tail (which may end inside a character) stays as bytes.
        text = buf[:end].decode("utf-8", "replace")
        del buf[:end]
        self._scanned = len(buf)  # rfind found the last terminator: the tail holds none
        if len(buf) > self.max_message_size:
            raise AMIMessageTooLarge(len(buf), self.max_message_size)
        limit = self.max_message_size
        blocks = text.split("\r\n\r\n")
        if len(text) > limit:  # no single block can exceed the limit when the whole text does not
            for block in blocks:
                if len(block) > limit:
                    raise AMIMessageTooLarge(len(block), limit)
        append = out.append
        new = Message.__new__
        for block in blocks:
            # Fast path, an event: keep the text, parse the first line only (see Message; Message._lazy inlined).
            if block.startswith("Event: "):
                eol = block.find("\r\n", 7)
                msg = new(Message)
                msg._raw, msg._low, msg._pairs_, msg._index, msg._kind = block, None, None, None, "Event"
                msg._name = block[7:] if eol < 0 else block[7:eol]
                append(msg)
            elif block:
                parsed = _block_message(block)
                if parsed is not None:
                    append(parsed)

    # -- server role: LF or CRLF framing, like Asterisk's get_input() ---------------------------------------

    def _feed_lenient(self, out: list[Message | Banner]) -> None:
        buf = self._buf
        pos = 0
        search_from = max(self._scanned - 2, 0)
        limit = self.max_message_size
        while True:
            match = _END_LENIENT.search(buf, search_from)
            if match is None:
                break
            block = bytes(buf[pos : match.start()])
            if len(block) > limit:
                raise AMIMessageTooLarge(len(block), limit)
            pos = search_from = match.end()
            pairs = _parse_lenient_block(block.decode("utf-8", "replace"))
            if pairs:
                out.append(Message._trusted(pairs))
        if pos:
            del buf[:pos]
        self._scanned = len(buf)
        if len(buf) > limit:
            raise AMIMessageTooLarge(len(buf), limit)


_KINDS = ("Event", "Response", "Action")

# Per header name, for the quick lookup in Message.get(): (the marker `\r\n<name in lower case>:` that starts its
# line in the lower-cased text; the kind ("Event"/"Response") whose first line the name denotes, or ""), or
# (None, None) for names the quick path does not handle (not ASCII, empty, or containing ":", CR or LF). Names come
# from code, so the cache stays small; it is cleared if it ever grows past _MAX_PROBES.
_PROBES: dict[str, tuple[str | None, str | None]] = {}
_MAX_PROBES = 512


# Message.leading(): a compiled match per tuple of names (names come from code: a handful of tuples).
_LEADING: dict[tuple[str, ...], re.Pattern[str]] = {}
_PREAMBLE = ("event", "privilege", "systemname")


def _leading_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    folded = [n.lower() for n in names]
    if (
        not names
        or len(set(folded)) != len(folded)
        or any(not n or not n.isascii() or any(c in n for c in "\r\n: ") for n in names)
        or any(f in _PREAMBLE for f in folded)
    ):
        raise ValueError(f"leading(): names must be distinct plain header names other than {_PREAMBLE}: {names!r}")
    # A value is the rest of its line; one holding a bare CR or LF (which get() keeps) does not match, so get()
    # answers such an event.
    value = r"([^\r\n]*)"
    pattern = r"Event: [^\r\n]*\r\n(?:Privilege: [^\r\n]*\r\n)?(?:SystemName: [^\r\n]*\r\n)?"
    pattern += r"\r\n".join(f"{re.escape(n)}: {value}" for n in names) + r"(?:\r\n|\Z)"
    compiled = _LEADING[names] = re.compile(pattern)
    return compiled


def _probe(name: str) -> tuple[str | None, str | None]:
    lname = name.lower()
    if not name or not name.isascii() or any(c in name for c in "\r\n:"):
        probe: tuple[str | None, str | None] = (None, None)
    else:
        probe = ("\r\n" + lname + ":", {"event": "Event", "response": "Response"}.get(lname, ""))
    if len(_PROBES) >= _MAX_PROBES:
        _PROBES.clear()
    _PROBES[name] = probe
    return probe


def _block_message(block: str) -> Message | None:
    """A client-role message from one CRLF block (not empty), or None if it holds only empty lines."""
    if block[0] == "\r":
        block = block.lstrip("\r\n")  # stray empty lines before a message
        if not block:
            return None
    if block.startswith("Event: "):
        eol = block.find("\r\n", 7)
        return Message._lazy(block, "Event", block[7:] if eol < 0 else block[7:eol])
    if (
        block.startswith("Response: ")
        and not block.startswith("Response: Follows\r\n")
        and block != "Response: Follows"
    ):
        eol = block.find("\r\n", 10)
        return Message._lazy(block, "Response", block[10:] if eol < 0 else block[10:eol])
    pairs = _parse_crlf_block(block)
    return Message._trusted(pairs) if pairs else None


def _kind_of(pairs: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    if pairs and pairs[0][0] in _KINDS:
        return pairs[0]
    return None, None


def _parse_crlf_block(block: str) -> list[tuple[str, str]]:
    lines = block.split("\r\n")
    # Fast path: every line is `Name: value` (one list comprehension, no per-line Python branches).
    pairs = [(key, value) for key, sep, value in [line.partition(": ") for line in lines] if sep]
    if len(pairs) != len(lines):
        pairs = _parse_crlf_lines(lines)
    if pairs and pairs[0] == ("Response", "Follows"):
        return _convert_follows(pairs)
    return pairs


def _parse_crlf_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Slow path for blocks with empty lines, `Name:value` without the space, or lines without a colon."""
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep:
            if not line:
                continue  # a stray empty line before a message
            key, sep, value = line.partition(":")
            if not sep:
                append(("", line))  # not a header; kept so nothing Asterisk said is lost
                continue
        append((key, value))
    return pairs


def _convert_follows(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Old `Response: Follows` command output (raw LF lines, `--END COMMAND--`) -> `Output` headers.

    Asterisk >= 14 sends one `Output:` header per line instead (ami-12); this keeps older servers working.
    """
    headers: list[tuple[str, str]] = []
    body: list[str] = []
    for key, value in pairs:
        if body or "\n" in value or "\n" in key or not key or f"{key}: {value}".endswith(_FOLLOWS_END):
            body.append(f"{key}: {value}" if key else value)
        else:
            headers.append((key, value))
    lines = "\r\n".join(body).split("\n")
    if lines and lines[-1].endswith(_FOLLOWS_END):
        last = lines.pop()[: -len(_FOLLOWS_END)]
        if last:
            lines.append(last)
    headers.extend(("Output", line[:-1] if line.endswith("\r") else line) for line in lines)
    return headers


def _parse_lenient_block(block: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition(":")
        if not sep:
            continue  # Asterisk ignores header lines without a colon (ami-17)
        if value.startswith(" "):
            value = value[1:]
        pairs.append((key.strip(), value))
    return pairs


# -- encoding ------------------------------------------------------------------------------------------------

HeaderValue = str | int | float | bool | None | Sequence[str]
Headers = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]] | Message


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # Asterisk's ast_true()/ast_false() understand these
    return str(value)


def header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    """Normalise headers to (name, text) pairs: None values are skipped, a list/tuple value repeats the header
    (e.g. several `Variable:` lines), bools become true/false."""
    if headers is None:
        return []
    if isinstance(headers, Message):
        return headers.items()
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, (str, int, float)):  # bool is an int
            pairs.append((key, _text(value)))
        else:  # a sequence repeats the header
            pairs.extend((key, _text(v)) for v in value if v is not None)
    return pairs


def _check_name(name: str) -> None:
    if not name or ":" in name or "\r" in name or "\n" in name or name != name.strip():
        raise AMIEncodingError(
            f"invalid AMI header name {name!r}: use a non-empty name without ':', spaces around it, CR or LF"
        )


def encode_message(pairs: Iterable[tuple[str, str]], *, raw_values: bool = False) -> bytes:
    """Encode header pairs as one AMI message: `Name: value\\r\\n` lines and an empty line.

    Values containing CR or LF are refused (`AMIEncodingError`) unless `raw_values` is true, which only the
    simulated Asterisk should use to reproduce Asterisk's own output (e.g. `Message: Park successful\\n`).
    """
    parts: list[str] = []
    for key, value in pairs:
        _check_name(key)
        value = str(value)
        if not raw_values and ("\r" in value or "\n" in value):
            raise AMIEncodingError(
                f"AMI header {key!r} has a CR or LF in its value {value[:60]!r}; remove line "
                "breaks (they would inject extra headers or actions)"
            )
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def encode_action(name: str, headers: Headers | None = None, *, action_id: str | None = None) -> bytes:
    """Encode `Action: <name>` (+ `ActionID:` when given) followed by the headers.

    `headers` may be a mapping or pairs; see `header_pairs()` for value types. An `Action` or `ActionID` inside
    `headers` is refused so a caller cannot send a second, conflicting one.
    """
    if not name or any(c in name for c in "\r\n:") or name != name.strip():
        raise AMIEncodingError(f"invalid AMI action name {name!r}")
    pairs: list[tuple[str, str]] = [("Action", name)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    for key, value in header_pairs(headers):
        if key.lower() in ("action", "actionid"):
            raise AMIEncodingError(
                f"header {key!r} is set by encode_action(); pass the action name / action_id arguments instead"
            )
        pairs.append((key, value))
    return encode_message(pairs)


# -- login -----------------------------------------------------------------------------------------------------


def md5_key(challenge: str, secret: str) -> str:
    """The `Key` of an MD5 challenge login: md5hex(challenge + secret) (ami-10, connection D)."""
    return hashlib.md5((challenge + secret).encode("utf-8")).hexdigest()


def _events_value(events: bool | str) -> str:
    if isinstance(events, bool):
        return "on" if events else "off"
    return events


def login_headers(username: str, secret: str, *, events: bool | str = True) -> list[tuple[str, str]]:
    """Headers of a plain `Login` (events: True/False or a class mask such as "call,system")."""
    return [("Username", username), ("Secret", secret), ("Events", _events_value(events))]


def md5_login_headers(username: str, key: str, *, events: bool | str = True) -> list[tuple[str, str]]:
    """Headers of a `Login` answering a `Challenge` (`AuthType: MD5`, `Key: md5_key(challenge, secret)`)."""
    return [("AuthType", "MD5"), ("Username", username), ("Key", key), ("Events", _events_value(events))]


# -- message kinds -----------------------------------------------------------------------------------------------


def is_list_start(msg: Message) -> bool:
    """A response that announces a list (`EventList: start`); its items follow as events with its ActionID."""
    value = msg.get("EventList")
    return value is not None and value.lower() == "start"


def is_list_complete(msg: Message) -> bool:
    """The event that ends a list: `EventList: Complete` (e.g. CoreShowChannelsComplete, StatusComplete)."""
    value = msg.get("EventList")
    if value is not None:
        return value.lower() == "complete"
    name = msg.name or ""
    return msg.is_event and name.endswith("Complete")


def command_output(msg: Message) -> list[str]:
    """The CLI output lines of a `Command` response (one `Output:` header per line in Asterisk >= 14, ami-12)."""
    return msg.getall("Output")

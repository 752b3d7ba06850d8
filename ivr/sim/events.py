"""AMI events as the PBX model emits them: the common channel header block and the event bus.

Rules for this file:
- An event is an ordered list of (header, value) pairs starting with Event and Privilege, exactly in Asterisk's
  order; channel events then carry the block Channel, ChannelState, ChannelStateDesc, CallerIDNum, CallerIDName,
  ConnectedLineNum, ConnectedLineName, Language, AccountCode, Context, Exten, Priority, Uniqueid, Linkedid.
- Values are emitted as the PBX holds them; VarSet values are C-escaped (`?` -> `\\?`, `"` -> `\\"`) as recorded.
- The bus is synchronous fan-out; subscribers must not block (the AMI server queues per session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.sim.channel import SimChannel

Pairs = list[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


def channel_block(ch: SimChannel, prefix: str = "") -> Pairs:
    unknown = "<unknown>"
    return [
        (prefix + "Channel", ch.name),
        (prefix + "ChannelState", str(ch.state)),
        (prefix + "ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
        (prefix + "CallerIDNum", ch.caller_num or unknown),
        (prefix + "CallerIDName", ch.caller_name or unknown),
        (prefix + "ConnectedLineNum", ch.connected_num or unknown),
        (prefix + "ConnectedLineName", ch.connected_name or unknown),
        (prefix + "Language", ch.language),
        (prefix + "AccountCode", ch.accountcode),
        (prefix + "Context", ch.context),
        (prefix + "Exten", ch.exten),
        (prefix + "Priority", str(ch.priority)),
        (prefix + "Uniqueid", ch.uniqueid),
        (prefix + "Linkedid", ch.linkedid),
    ]


def c_escape(value: str) -> str:
    """How Asterisk escapes VarSet values on AMI."""
    out = []
    for c in value:
        if c in '\\"?':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    return "".join(out)


@dataclass(frozen=True)
class Event:
    """One emitted AMI event, with the (virtual or real) time it was emitted."""

    time: float
    pairs: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.pairs[0][1]

    def get(self, key: str, default: str | None = None) -> str | None:
        low = key.lower()
        for k, v in self.pairs:
            if k.lower() == low:
                return v
        return default

    @property
    def privilege(self) -> str:
        return self.get("Privilege", "") or ""

    def __getitem__(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, now: Callable[[], float]) -> None:
        self._subs: list[Subscriber] = []
        self._now = now
        self.count = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subs.append(fn)
        return lambda: self._subs.remove(fn) if fn in self._subs else None

    def emit(self, name: str, privilege: str, pairs: Iterable[tuple[str, str]] = ()) -> Event:
        ev = Event(self._now(), (("Event", name), ("Privilege", privilege)) + tuple(pairs))
        self.count += 1
        for fn in list(self._subs):
            fn(ev)
        return ev

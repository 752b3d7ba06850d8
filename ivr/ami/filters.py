"""AMI event filters: only the events the service's subscribers use cross the wire (Asterisk's own filtering).

Asterisk 22 (and 21.6+, 20.11+, where "manager: Enhance event filtering" landed) filters per session: a login copies
the user's `eventfilter` lines of manager.conf into the session, and the `Filter` action (write class `system`)
adds to that session's copy until it closes. With include filters only, an event reaches the session when it
matches one of them; events that are answers to our own actions (list items such as CoreShowChannel, FullyBooted
after the login) are not filtered. The advanced form matches the event name by hash and one header's value
(`eventfilter(action(include),name(VarSet),header(Variable),method(regex)) = ^IVR_(FLOW|NODE)$`), which is
cheap for Asterisk, unlike the legacy form (a regular expression over the whole event).

`EventFilter` is one filter; `merge()` turns what the subscribers asked for into the smallest list (an event some
subscriber wants whole needs no header filter). With include and exclude filters, Asterisk sends an event that
matches an include filter and no exclude filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EventFilter:
    """Include events named `name`; with `header`, only those whose `header` value matches the POSIX extended
    regular expression `regex` (write patterns that mean the same in Python's `re`: they are tested with it).
    `exclude=True`: keep such events out instead (an exclude filter needs a header and a regex)."""

    name: str
    header: str | None = None
    regex: str | None = None
    exclude: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " ,()\r\n"):
            raise ValueError(f"event name {self.name!r} cannot be used in an AMI event filter")
        if (self.header is None) != (self.regex is None):
            raise ValueError("give both header and regex, or neither")
        if self.header is not None and (not self.header or any(c in self.header for c in " ,():\r\n")):
            raise ValueError(f"header name {self.header!r} cannot be used in an AMI event filter")
        if self.regex is not None and any(c in self.regex for c in "\r\n"):
            raise ValueError("a filter's regular expression cannot hold CR or LF")
        if self.exclude and self.header is None:
            raise ValueError("an exclude filter needs a header and a regex (it would drop the whole event)")

    @property
    def match_criteria(self) -> str:
        """The `MatchCriteria` header of the `Filter` action (the parenthesised part of manager.conf's key)."""
        action = "exclude" if self.exclude else "include"
        if self.header is None:
            return f"action({action}),name({self.name})"
        return f"action({action}),name({self.name}),header({self.header}),method(regex)"

    @property
    def pattern(self) -> str:
        """The `Filter` header of the action (what follows `=` in manager.conf); empty for a name-only filter."""
        return self.regex or ""

    def action_headers(self) -> list[tuple[str, str]]:
        return [("Operation", "Add"), ("MatchCriteria", self.match_criteria), ("Filter", self.pattern)]

    def conf_line(self) -> str:
        """The same filter as a manager.conf line for the AMI user's section."""
        return f"eventfilter({self.match_criteria}) = {self.pattern}".rstrip()

    def sort_key(self) -> tuple[bool, str, str, str]:
        return (self.exclude, self.name, self.header or "", self.regex or "")


def merge(wanted: Iterable[EventFilter], excludes: Iterable[EventFilter] = ()) -> list[EventFilter]:
    """Include filters (a name-only filter wins over header filters of the same event; duplicates go), then the
    exclude filters; includes first, as they must reach Asterisk before anything is excluded."""
    includes = {f for f in wanted if not f.exclude}
    whole = {f.name for f in includes if f.header is None}
    kept = {f for f in includes if f.header is None or f.name not in whole} | set(excludes)
    return sorted(kept, key=EventFilter.sort_key)

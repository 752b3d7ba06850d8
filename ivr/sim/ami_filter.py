"""AMI users and event filters as Asterisk 22's manager.c applies them (manager.conf users, the `Filter` action).

Rules for this file:
- `AMIUser` is one manager.conf section: secret, `read`/`write` classes, `eventfilter` lines. `load_manager_conf()`
  reads them from a manager.conf-style file (e.g. the shipped dialplans/manager_ivr.conf).
- A filter is parsed as `manager_add_filter()` does: `eventfilter(<criteria>) = <pattern>` (advanced: action(),
  name(), header(), method(); the name compared exactly, the header as the start of a line `Name:` with the
  blanks after the colon skipped, each line matched on its own) or the legacy `eventfilter = [!]<regex>` over the
  whole event text. A bad filter is a `FilterError` (Asterisk: "Filter was formatted incorrectly", "Filter did not
  compile").
- `should_send()` is `should_send_event()`: no filters -> everything; include filters only -> an event must match
  one; exclude only -> it must match none; both -> include first, then exclude.
- Filters are per session: a login copies the user's filters, `Filter` adds to the session's own copy.
- Python's `re` stands in for POSIX extended regular expressions (the patterns used here mean the same in both).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ALL_CLASSES = frozenset(
    {"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting", "cdr", "dialplan",
     "originate", "agi", "cc", "aoc", "test", "security", "message"}
)  # fmt: skip
_METHODS = ("regex", "exact", "starts_with", "ends_with", "contains", "none")


class FilterError(ValueError):
    """The filter is malformed (`format`) or its regular expression does not compile (`compile`)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class EventFilter:
    exclude: bool
    name: str | None  # event name, exact
    header: str | None  # "Variable:" (with the colon, as manager.c stores it)
    method: str  # one of _METHODS
    pattern: str
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, criteria: str, pattern: str) -> EventFilter:
        """`criteria` is what precedes `=` in manager.conf (`eventfilter` or `eventfilter(...)`), `pattern` what
        follows; the `Filter` action builds `eventfilter(<MatchCriteria>)` the same way."""
        exclude = pattern.startswith("!")
        if exclude:
            pattern = pattern[1:]
        start = criteria.find("(")
        if start < 0:  # legacy: a regex over the whole event
            if not pattern:
                raise FilterError("format", "legacy filter with no filter pattern")
            return cls(exclude, None, None, "regex", pattern, _compile(pattern))
        options = criteria[start + 1 :].strip()
        if not options.endswith(")"):
            raise FilterError("format", "filter options not formatted correctly")
        name = header = None
        method = "none"
        found = False
        for option in re.split(r"[ ,)]+", options):
            if not option:
                continue
            key, _, value = option.partition("(")
            value = value.strip()
            if not value and key in ("action", "name", "header", "method"):
                raise FilterError("format", f"{key!r} parameter not formatted correctly")
            if key == "action":
                if value not in ("include", "exclude"):
                    raise FilterError("format", f"'action' option {value!r} is unknown")
                exclude = value == "exclude"
            elif key == "name":
                name = value
            elif key == "header":
                header = value if value.endswith(":") else value + ":"
            elif key == "method":
                if value not in _METHODS:
                    raise FilterError("format", f"'method' option {value!r} is unknown")
                method = value
            else:
                raise FilterError("format", f"filter option {option!r} is unknown")
            found = True
        if not found:
            raise FilterError("format", "no action, name, header, or method option found")
        if not pattern and method != "none":
            raise FilterError("format", "a match method needs a pattern")
        return cls(exclude, name, header, method, pattern, _compile(pattern) if method == "regex" else None)

    def _match_data(self, data: str) -> bool:
        m = self.method
        if m == "regex":
            assert self.regex is not None
            return self.regex.search(data) is not None
        if m == "starts_with":
            return data.startswith(self.pattern)
        if m == "ends_with":
            return data.endswith(self.pattern)
        if m == "contains":
            return self.pattern in data
        if m == "exact":
            return data == self.pattern
        return True  # none

    def matches(self, name: str, text: str) -> bool:
        """`text` is the event as sent (`Event: ...\\r\\n...\\r\\n\\r\\n`)."""
        if self.name is not None and name != self.name:
            return False
        if self.header is None:
            return self._match_data(text)
        for line in text.split("\n"):
            line = line.removesuffix("\r")
            if line.startswith(self.header):
                value = line[len(self.header) :].lstrip(" \t")
                if value and self._match_data(value):
                    return True
        return False


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FilterError("compile", f"filter did not compile: {exc}") from exc


@dataclass
class Filters:
    """One session's filters."""

    include: list[EventFilter] = field(default_factory=list)
    exclude: list[EventFilter] = field(default_factory=list)

    def add(self, f: EventFilter) -> None:
        (self.exclude if f.exclude else self.include).append(f)

    def should_send(self, name: str, text: str) -> bool:
        if not self.include and not self.exclude:
            return True
        if self.include and not any(f.matches(name, text) for f in self.include):
            return False
        return not any(f.matches(name, text) for f in self.exclude)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


@dataclass
class AMIUser:
    secret: str
    read: frozenset[str] = ALL_CLASSES
    write: frozenset[str] = ALL_CLASSES
    eventfilters: Sequence[tuple[str, str]] = ()  # (criteria, pattern) as written in manager.conf

    def filters(self) -> Filters:
        out = Filters()
        for criteria, pattern in self.eventfilters:
            out.add(EventFilter.parse(criteria, pattern))
        return out


def classes(value: str) -> frozenset[str]:
    """A manager.conf class list (`system,call`; `all` = every class; `none`/empty = none)."""
    names = {c.strip().lower() for c in value.split(",") if c.strip()}
    if "all" in names:
        return ALL_CLASSES
    return frozenset(names - {"none"})


def load_manager_conf(path: Path, *, secrets: dict[str, str] | None = None) -> dict[str, AMIUser]:
    """The user sections of a manager.conf-style file; `secrets` replaces the file's placeholder secrets."""
    users: dict[str, AMIUser] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section != "general":
                users[section] = AMIUser(secret="")
            continue
        if section in ("", "general"):
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        user = users[section]
        if key == "secret":
            user.secret = value
        elif key == "read":
            user.read = classes(value)
        elif key == "write":
            user.write = classes(value)
        elif key.startswith("eventfilter"):
            user.eventfilters = (*user.eventfilters, (key, value))
    for name, secret in (secrets or {}).items():
        if name in users:
            users[name].secret = secret
    return users


def event_classes(privilege: str) -> Iterable[str]:
    return (c.strip().lower() for c in privilege.split(",") if c.strip() and c.strip().lower() != "all")

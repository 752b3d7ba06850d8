"""What a telephone extension, a dial-string value and a callback number may look like: one rule for the whole service.

Rules for this file:
- Allow-lists only, no I/O, no imports from the rest of ivr: the flow engine (ivr.flow) and call control
  (ivr.calls) both import these, so a value one side accepts the other side accepts too.
- An extension (and any value substituted into a dial string, queue name or extension template) is 1-40 of
  `A-Z a-z 0-9 * # + _ -`. No `.`, `&`, `/`, `@`, `:`, `,` or `|`: such a character would add a dial target
  (`&`), pick another technology or trunk (`/`, `@`), or split the application's arguments.
- A callback number must fully match a pattern (`DEFAULT_CALLBACK_NUMBER_PATTERN` unless the service or the flow
  sets one): E.164-like, no leading 0 after the optional `+`, 7-15 digits, so short codes and premium-rate
  prefixes can be excluded by configuration.
"""

from __future__ import annotations

import re

__all__ = [
    "EXTENSION_RE",
    "QUEUE_RE",
    "DEFAULT_CALLBACK_NUMBER_PATTERN",
    "is_extension",
    "is_queue_name",
    "compile_number_pattern",
    "is_callback_number",
]

EXTENSION_RE = re.compile(r"[A-Za-z0-9*#+_\-]{1,40}")
QUEUE_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
DEFAULT_CALLBACK_NUMBER_PATTERN = r"^\+?[1-9][0-9]{6,14}$"


def is_extension(value: str) -> bool:
    """True for a plain extension (also the rule for any value substituted into a dial string)."""
    return EXTENSION_RE.fullmatch(value) is not None


def is_queue_name(value: str) -> bool:
    return QUEUE_RE.fullmatch(value) is not None


def compile_number_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a number pattern; `ValueError` with a readable message when it is not a regular expression."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"number pattern {pattern!r} is not a regular expression: {exc}") from None


def is_callback_number(number: str, pattern: str | re.Pattern[str] = DEFAULT_CALLBACK_NUMBER_PATTERN) -> bool:
    """True when the whole `number` matches `pattern` (ASCII digits only: no Unicode digits sneak through)."""
    if not number.isascii():
        return False
    compiled = pattern if isinstance(pattern, re.Pattern) else compile_number_pattern(pattern)
    return compiled.fullmatch(number) is not None


# An Asterisk server's name (`ami.servers[].name`): a metric label and the `<pbx>:` prefix of call ids with several
# servers (ivr.calls.fleet), so no ':' and nothing a label or a URL path would have to escape.
PBX_NAME_PATTERN = r"^[a-z0-9][a-z0-9_]{0,31}$"

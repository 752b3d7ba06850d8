"""Checks for values that end up in AMI headers, dial strings, dialplan locations or file names.

Rules for this file:
- Allow-lists only. A value that passes cannot add a dial target (`&`), an option (`,`, `|`), a variable
  expansion (`$`, `{`), a header (CR/LF) or a path component (`/`, `..`).
- Every check raises `InvalidRequest` (HTTP 422) with a message saying what is allowed.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from ivr.calls.errors import InvalidRequest

_EXTENSION = re.compile(r"^[A-Za-z0-9_\-+*#.]{1,40}$")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_\-]+[/:][A-Za-z0-9_\-+.@:]{1,80}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_\-]+/[A-Za-z0-9_\-+.@:;/]{1,120}$")
_REASON = re.compile(r"^[^\x00-\x1f\x7f]{0,80}$")
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9_\-+.]")
_TEMPLATE_VAR = re.compile(r"\$\{([a-z_]+)\}")


def extension(value: str, what: str = "extension") -> str:
    if not _EXTENSION.match(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not valid; use letters, digits, _-+*#. (at most 40)")
    return value


def number(value: str, what: str = "number") -> str:
    if not _NUMBER.match(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not a phone number; use digits with an optional leading +")
    return value


def name(value: str, what: str = "name") -> str:
    if not _NAME.match(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not valid; use letters, digits, _ and - (at most 64)")
    return value


def interface(value: str) -> str:
    if not _INTERFACE.match(value or ""):
        raise InvalidRequest(f"interface {value!r} is not valid; write it like PJSIP/1001 or Local/1001@agents")
    return value


def channel(value: str) -> str:
    if not _CHANNEL.match(value or ""):
        raise InvalidRequest(f"channel {value!r} is not a channel name such as PJSIP/1001-00000001")
    return value


def reason(value: str) -> str:
    if not _REASON.match(value or ""):
        raise InvalidRequest("pause reason must be at most 80 printable characters")
    return value


def safe_component(value: str, max_length: int = 80) -> str:
    """One harmless file-name component: letters, digits and _-+. only; no leading dot or dash."""
    cleaned = _FILE_UNSAFE.sub("_", value)
    while ".." in cleaned:
        cleaned = cleaned.replace("..", "_")
    return cleaned.lstrip(".-")[:max_length].rstrip(".")


def recording_name(template: str, *, call: str, caller: str, agent: str = "", flow: str = "", queue: str = "",
                   when: datetime | None = None) -> str:
    """Render a recording file-name template (`${date}`, `${time}`, `${call}`, `${caller}`, `${agent}`,
    `${flow}`, `${queue}`); every value, and the result, is reduced to safe characters."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    values = {"date": when.strftime("%Y%m%d-%H%M%S"), "time": when.strftime("%H%M%S"), "call": call,
              "caller": caller or "unknown", "agent": agent, "flow": flow, "queue": queue}

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise InvalidRequest(f"recording template variable ${{{key}}} is unknown; use one of "
                                 + ", ".join(f"${{{k}}}" for k in values))
        return safe_component(values[key])

    rendered = safe_component(_TEMPLATE_VAR.sub(sub, template), max_length=180)
    return rendered or safe_component(f"call-{call}") or "recording"

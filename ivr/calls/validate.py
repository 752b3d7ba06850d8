"""Checks for values that end up in AMI headers, dial strings, dialplan locations or file names.

Rules for this file:
- Allow-lists only. A value that passes cannot add a dial target (`&`), an option (`,`, `|`), a variable
  expansion (`$`, `{`), a header (CR/LF) or a path component (`/`, `..`).
- Extensions, queue-like names and dial-out number patterns follow the one rule in `ivr.telephony`, shared with
  the flow engine: a value the API accepts is one a flow accepts too (no `.` in extensions, for instance).
- Every check raises `InvalidRequest` (HTTP 422) with a message saying what is allowed.
- Numbers that are dialled out (click-to-call, flow calls, callbacks) must also fully match the configured
  `callbacks.number_pattern` (premium-rate and international fraud); file names use the one sanitiser
  `ivr.flow.templates.safe_filename`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ivr import telephony
from ivr.calls.errors import InvalidRequest
from ivr.flow.templates import safe_filename

DEFAULT_NUMBER_PATTERN = telephony.DEFAULT_CALLBACK_NUMBER_PATTERN  # E.164: no short codes, no 00/0 prefixes

_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_\-]+[/:][A-Za-z0-9_\-+.@:]{1,80}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_\-]+/[A-Za-z0-9_\-+.@:;/]{1,120}$")
# Free text (member names, pause reasons, callback caller names): no C0/C1 control characters or DEL.
_REASON = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{0,80}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2})?$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Asterisk splits Originate `Variable:` values on commas, honouring quotes and backslashes (ivr.ami.actions).
_VARIABLE_VALUE_UNSAFE = re.compile(r'[,\\"\x00-\x1f\x7f]')
_CALLER_NAME_UNSAFE = re.compile(r'["<>\\\x00-\x1f\x7f]')
_CALLER_NUMBER_UNSAFE = re.compile(r"[^0-9+*#]")
_TEMPLATE_VAR = re.compile(r"\$\{([a-z_]+)\}")
# The same rules as patterns, for the API's request models (ivr.api.schemas): the OpenAPI document then states
# what these checks enforce. Anchored with ^...$ and matched here with fullmatch, so a trailing newline fails.
NUMBER_PATTERN = _NUMBER.pattern
INTERFACE_PATTERN = _INTERFACE.pattern
CHANNEL_PATTERN = _CHANNEL.pattern
TEXT_PATTERN = _REASON.pattern
LANGUAGE_PATTERN = _LANGUAGE.pattern
VARIABLE_NAME_PATTERN = _VARIABLE_NAME.pattern


def extension(value: str, what: str = "extension") -> str:
    if not telephony.is_extension(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not valid; use letters, digits, _-+*# (at most 40)")
    return value


def number(value: str, what: str = "number", pattern: re.Pattern[str] | str | None = None) -> str:
    """A phone number; with `pattern` (settings.callbacks.number_pattern) one this service may dial out to."""
    if not _NUMBER.fullmatch(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not a phone number; use digits with an optional leading +")
    if pattern is not None and not telephony.is_callback_number(value, pattern):
        shown = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        raise InvalidRequest(
            f"{what} {value!r} is not a number this service may call (it must match {shown}, "
            "callbacks.number_pattern in the settings); premium-rate and foreign numbers are "
            "refused"
        )
    return value


def compile_number_pattern(pattern: str) -> re.Pattern[str]:
    """Compile `callbacks.number_pattern`; ValueError (for the settings checker) if it is not a regex."""
    return telephony.compile_number_pattern(pattern)


def language(value: str) -> str:
    """A language code such as en, lt, fil or en_GB (it ends up in a channel variable and an AGI URL)."""
    if not _LANGUAGE.fullmatch(value or ""):
        raise InvalidRequest(f"language {value!r} is not valid; write it like en, lt or en_GB")
    return value


def variable_name(value: str) -> str:
    """A caller-supplied channel variable name; IVR_* names belong to this service."""
    if not _VARIABLE_NAME.fullmatch(value or ""):
        raise InvalidRequest(
            f"variable name {value!r} is not valid; use a letter, then letters, digits and _ (at most 64)"
        )
    if value.upper().startswith("IVR_"):
        raise InvalidRequest(f"variable name {value!r} is reserved: IVR_* variables are set by this service")
    return value


def variable_value(value: str, what: str = "variable") -> str:
    """A channel variable value that Asterisk sets as given (no `,` `\\` `"` or control characters)."""
    if _VARIABLE_VALUE_UNSAFE.search(value) or len(value) > 256:
        raise InvalidRequest(
            f"{what}: the value must be at most 256 characters without commas, backslashes, "
            "double quotes or control characters (Asterisk would split it into more variables)"
        )
    return value


def caller_id(name: str, number_: str) -> str | None:
    """`"name" <number>` from text seen in AMI events (a caller sets it): quotes, angle brackets, backslashes and
    control characters are dropped, so it cannot end the quoted name or add a second number."""
    num = _CALLER_NUMBER_UNSAFE.sub("", number_ or "")[:32]
    clean = _CALLER_NAME_UNSAFE.sub("", name or "").strip()[:80] or num
    if not num and not clean:
        return None
    return f'"{clean}" <{num}>' if num else f'"{clean}"'


def name(value: str, what: str = "name") -> str:
    """A queue, flow, parking lot or music-on-hold class name: the queue-name rule of `ivr.telephony`."""
    if not telephony.is_queue_name(value or ""):
        raise InvalidRequest(f"{what} {value!r} is not valid; use letters, digits, _ and - (at most 64)")
    return value


def interface(value: str) -> str:
    if not _INTERFACE.fullmatch(value or ""):
        raise InvalidRequest(f"interface {value!r} is not valid; write it like PJSIP/1001 or Local/1001@agents")
    return value


def channel(value: str) -> str:
    if not _CHANNEL.fullmatch(value or ""):
        raise InvalidRequest(f"channel {value!r} is not a channel name such as PJSIP/1001-00000001")
    return value


def reason(value: str, what: str = "pause reason") -> str:
    """Free text (a pause reason, a member name): at most 80 characters, no control characters."""
    if not _REASON.fullmatch(value or ""):
        raise InvalidRequest(f"{what} must be at most 80 characters without control characters")
    return value


def recording_name(
    template: str,
    *,
    call: str,
    caller: str,
    agent: str = "",
    flow: str = "",
    queue: str = "",
    when: datetime | None = None,
) -> str:
    """Render a recording file-name template (`${date}`, `${time}`, `${call}`, `${caller}`, `${agent}`,
    `${flow}`, `${queue}`); every value, and the result, is reduced to safe characters."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    values = {
        "date": when.strftime("%Y%m%d-%H%M%S"),
        "time": when.strftime("%H%M%S"),
        "call": call,
        "caller": caller or "unknown",
        "agent": agent,
        "flow": flow,
        "queue": queue,
    }

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise InvalidRequest(
                f"recording template variable ${{{key}}} is unknown; use one of "
                + ", ".join(f"${{{k}}}" for k in values)
            )
        return safe_filename(values[key], max_length=80, default="")

    rendered = safe_filename(_TEMPLATE_VAR.sub(sub, template), max_length=180, default="")
    return rendered or safe_filename(f"call-{call}", default="recording")

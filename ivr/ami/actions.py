"""Typed AMI action helpers: build the headers of the actions the product uses, and read their answers.

Rules for this file:
- Pure functions and dataclasses: no I/O. The client sends what these build (`AMIClient.originate(...)` etc.).
- Header names and values are exactly those seen on a real Asterisk 22 (transcripts ami-11..ami-17); optional
  headers are left out when not given, so Asterisk applies its own defaults.
- Values are checked for CR/LF by the encoder (`encode_action`), so a channel name or a variable from a caller can
  never inject headers.
- Originate `Variable:` values are refused when they hold `,` `\\` `"` or a control character: Asterisk splits
  every Variable header on commas (man_do_variable_value -> AST_STANDARD_APP_ARGS, which also strips quotes and
  backslashes) and sets each `name=value` part with pbx_builtin_setvar_helper, dialplan functions included, so
  a comma in a value would set a second variable (or call `SHELL()`/`FILE()` through a function name).
- `Originate` is always asynchronous (`Async: true`): a synchronous Originate blocks the AMI session for the whole
  ring time and its failure response can overtake the call's events (ami-11).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from ivr.ami.errors import AMIEncodingError
from ivr.ami.protocol import Message

Pairs = list[tuple[str, str]]

# Action names counted by name in AMI_ACTION_SECONDS; anything else is "other" (bounded label set).
KNOWN_ACTIONS = frozenset(
    {
        "login",
        "challenge",
        "logoff",
        "ping",
        "events",
        "originate",
        "redirect",
        "blindtransfer",
        "atxfer",
        "park",
        "parkedcalls",
        "parkinglots",
        "hangup",
        "mixmonitor",
        "mixmonitormute",
        "stopmixmonitor",
        "queueadd",
        "queueremove",
        "queuepause",
        "queuestatus",
        "queuesummary",
        "coreshowchannels",
        "status",
        "getvar",
        "setvar",
        "command",
        "corestatus",
        "coresettings",
        "playdtmf",
        "agi",
        "userevent",
    }
)

# OriginateResponse `Reason` codes (Asterisk's AST_CONTROL_* values; 4, 5, 3 and 0 seen in ami-11).
ORIGINATE_REASONS = {0: "failed", 1: "hangup", 3: "no_answer", 4: "answered", 5: "busy", 8: "congestion"}


def action_label(name: str) -> str:
    """Bounded metric label for an action name."""
    lname = name.lower()
    return lname if lname in KNOWN_ACTIONS else "other"


def _put(pairs: Pairs, name: str, value: str | int | bool | None) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        value = "true" if value else "false"
    pairs.append((name, str(value)))


_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")
_VARIABLE_VALUE_UNSAFE = re.compile(r'[,\\"\x00-\x1f\x7f]')


def check_variable(key: str, value: str) -> None:
    """Raise `AMIEncodingError` unless `key=value` reaches Asterisk as exactly one plain variable (see the rules)."""
    if not _VARIABLE_NAME.match(key):
        raise AMIEncodingError(
            f"variable name {key!r} is not allowed; use letters, digits and _ (a name with "
            "'(' would call a dialplan function, one with '=' or ',' would split)"
        )
    if _VARIABLE_VALUE_UNSAFE.search(value):
        raise AMIEncodingError(
            f"the value of variable {key} holds a comma, backslash, double quote or control "
            "character; Asterisk would split it into further variables, so it is refused"
        )


def _variables(pairs: Pairs, variables: Mapping[str, str] | None) -> None:
    for key, value in (variables or {}).items():
        value = str(value)
        check_variable(key, value)
        pairs.append(("Variable", f"{key}={value}"))


# -- call origination ------------------------------------------------------------------------------------------


class OriginateOptions(TypedDict, total=False):
    """The keyword arguments of `originate` after the channel, for wrappers that pass them on unchanged."""

    context: str | None
    exten: str | None
    priority: int | None
    application: str | None
    data: str | None
    timeout_ms: int | None
    caller_id: str | None
    variables: Mapping[str, str] | None
    account: str | None
    channel_id: str | None
    other_channel_id: str | None
    early_media: bool | None
    codecs: str | None


def originate(
    channel: str,
    *,
    context: str | None = None,
    exten: str | None = None,
    priority: int | None = None,
    application: str | None = None,
    data: str | None = None,
    timeout_ms: int | None = None,
    caller_id: str | None = None,
    variables: Mapping[str, str] | None = None,
    account: str | None = None,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
    early_media: bool | None = None,
    codecs: str | None = None,
) -> Pairs:
    """Headers of an asynchronous Originate to a dialplan location (context/exten/priority) or an application."""
    if (application is None) == (exten is None):
        raise ValueError("originate needs either exten (+ context, priority) or application, not both")
    if exten is not None and (context is None or priority is None):
        # Asterisk says: "Originate with 'Exten' requires 'Context' and 'Priority'" (ami-17).
        raise ValueError("originate with exten requires context and priority")
    pairs: Pairs = [("Channel", channel)]
    _put(pairs, "Context", context)
    _put(pairs, "Exten", exten)
    _put(pairs, "Priority", priority)
    _put(pairs, "Application", application)
    _put(pairs, "Data", data)
    _put(pairs, "CallerID", caller_id)
    _put(pairs, "Timeout", timeout_ms)
    _variables(pairs, variables)
    _put(pairs, "ChannelId", channel_id)
    _put(pairs, "OtherChannelId", other_channel_id)
    _put(pairs, "Account", account)
    _put(pairs, "EarlyMedia", early_media)
    _put(pairs, "Codecs", codecs)
    pairs.append(("Async", "true"))
    return pairs


@dataclass(frozen=True)
class OriginateResult:
    """The outcome of an Originate, from its `OriginateResponse` event (correlated by ActionID)."""

    response: str  # "Success" or "Failure"
    reason: int  # 4 answered, 5 busy, 3 no answer, 0 failed (see ORIGINATE_REASONS)
    uniqueid: str | None  # Uniqueid of the originated channel (= ChannelId if given)
    channel: str | None
    event: Message = field(repr=False, compare=False)

    @property
    def success(self) -> bool:
        return self.response.lower() == "success"

    @property
    def reason_text(self) -> str:
        return ORIGINATE_REASONS.get(self.reason, "other")

    @classmethod
    def from_event(cls, event: Message) -> OriginateResult:
        reason_text = event.get("Reason", "") or ""
        try:
            reason = int(reason_text)
        except ValueError:
            reason = -1
        uniqueid = event.get("Uniqueid")
        return cls(
            response=event.get("Response", "") or "",
            reason=reason,
            uniqueid=uniqueid if uniqueid not in ("", "<null>", "<unknown>") else None,
            channel=event.get("Channel"),
            event=event,
        )


# -- moving calls ----------------------------------------------------------------------------------------------


def redirect(
    channel: str,
    context: str,
    exten: str,
    priority: int = 1,
    *,
    extra_channel: str | None = None,
    extra_context: str | None = None,
    extra_exten: str | None = None,
    extra_priority: int | None = None,
) -> Pairs:
    """Redirect a channel (and optionally its bridged peer, `ExtraChannel`) to a dialplan location."""
    pairs: Pairs = [("Channel", channel)]
    if extra_channel is not None:
        pairs.append(("ExtraChannel", extra_channel))
    pairs += [("Context", context), ("Exten", exten), ("Priority", str(priority))]
    if extra_channel is not None:
        # Without Extra* the peer goes to the same place as the channel (header order as in ami-16).
        pairs.append(("ExtraContext", extra_context if extra_context is not None else context))
        pairs.append(("ExtraExten", extra_exten if extra_exten is not None else exten))
        pairs.append(("ExtraPriority", str(extra_priority if extra_priority is not None else priority)))
    return pairs


def blind_transfer(channel: str, context: str, exten: str) -> Pairs:
    """Blind transfer: `channel` is the transferer; its bridged peer goes to context/exten (ami-16)."""
    return [("Channel", channel), ("Context", context), ("Exten", exten)]


def atxfer(channel: str, exten: str, context: str | None = None) -> Pairs:
    """Attended transfer started on the transferer `channel` (needs an atxfer feature code; numeric exten)."""
    pairs: Pairs = [("Channel", channel), ("Exten", exten)]
    _put(pairs, "Context", context)
    return pairs


def park(
    channel: str,
    *,
    timeout_ms: int | None = None,
    timeout_channel: str | None = None,
    parkinglot: str | None = None,
    announce_channel: str | None = None,
    parking_space: str | None = None,
) -> Pairs:
    """Park `channel`. `timeout_channel` is who gets the call back on timeout (and, when bridged with `channel`,
    hears the announcement); `timeout_ms` 0 disables the timeout; `parking_space` asks for a given space."""
    pairs: Pairs = [("Channel", channel)]
    _put(pairs, "TimeoutChannel", timeout_channel)
    _put(pairs, "AnnounceChannel", announce_channel)
    _put(pairs, "Timeout", timeout_ms)
    _put(pairs, "Parkinglot", parkinglot)
    _put(pairs, "ParkingSpace", parking_space)
    return pairs


def parked_calls(parkinglot: str | None = None) -> Pairs:
    pairs: Pairs = []
    _put(pairs, "ParkingLot", parkinglot)
    return pairs


def hangup(channel: str, cause: int | None = None) -> Pairs:
    """Hang up a channel by name (or `/regex/`, which makes the answer a list). Cause 16 = normal clearing;
    without a cause Asterisk uses 0 (unknown)."""
    pairs: Pairs = [("Channel", channel)]
    _put(pairs, "Cause", cause)
    return pairs


# -- recording -----------------------------------------------------------------------------------------------


def mixmonitor(channel: str, file: str, options: str | None = None, command: str | None = None) -> Pairs:
    pairs: Pairs = [("Channel", channel), ("File", file)]
    _put(pairs, "Options", options)
    _put(pairs, "Command", command)
    return pairs


MUTE_DIRECTIONS = ("read", "write", "both")


def mixmonitor_mute(channel: str, mute: bool, direction: str = "both") -> Pairs:
    if direction not in MUTE_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(MUTE_DIRECTIONS)}, not {direction!r}")
    return [("Channel", channel), ("Direction", direction), ("State", "1" if mute else "0")]


def stop_mixmonitor(channel: str, mixmonitor_id: str | None = None) -> Pairs:
    pairs: Pairs = [("Channel", channel)]
    _put(pairs, "MixMonitorID", mixmonitor_id)
    return pairs


# -- queues --------------------------------------------------------------------------------------------------


def queue_add(
    queue: str,
    interface: str,
    *,
    penalty: int | None = None,
    paused: bool | None = None,
    member_name: str | None = None,
    state_interface: str | None = None,
    reason: str | None = None,
) -> Pairs:
    pairs: Pairs = [("Queue", queue), ("Interface", interface)]
    _put(pairs, "Penalty", penalty)
    _put(pairs, "Paused", paused)
    _put(pairs, "Reason", reason)
    _put(pairs, "MemberName", member_name)
    _put(pairs, "StateInterface", state_interface)
    return pairs


def queue_remove(queue: str, interface: str) -> Pairs:
    return [("Queue", queue), ("Interface", interface)]


def queue_pause(interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None) -> Pairs:
    """Pause or unpause a member in one queue, or in every queue when `queue` is None."""
    pairs: Pairs = []
    _put(pairs, "Queue", queue)
    pairs.append(("Interface", interface))
    pairs.append(("Paused", "true" if paused else "false"))
    _put(pairs, "Reason", reason)
    return pairs


def queue_status(queue: str | None = None, member: str | None = None) -> Pairs:
    pairs: Pairs = []
    _put(pairs, "Queue", queue)
    _put(pairs, "Member", member)
    return pairs


def queue_summary(queue: str | None = None) -> Pairs:
    pairs: Pairs = []
    _put(pairs, "Queue", queue)
    return pairs


# -- variables and CLI ---------------------------------------------------------------------------------------


def getvar(variable: str, channel: str | None = None) -> Pairs:
    """Read a channel variable/function, or a global variable when `channel` is None."""
    pairs: Pairs = []
    _put(pairs, "Channel", channel)
    pairs.append(("Variable", variable))
    return pairs


def setvar(variable: str, value: str, channel: str | None = None) -> Pairs:
    pairs: Pairs = []
    _put(pairs, "Channel", channel)
    pairs.append(("Variable", variable))
    pairs.append(("Value", value))
    return pairs


def bridge(channel1: str, channel2: str, tone: str = "no") -> Pairs:
    """Bridge two channels; `tone` says who hears a beep first (no, Channel1, Channel2, Both)."""
    return [("Channel1", channel1), ("Channel2", channel2), ("Tone", tone)]


def command(cli: str) -> Pairs:
    return [("Command", cli)]


@dataclass(frozen=True)
class CommandResult:
    """A CLI command's answer: `ok` is False for `Response: Error` (e.g. unknown CLI command, ami-12)."""

    ok: bool
    output: list[str]
    response: Message = field(repr=False, compare=False)

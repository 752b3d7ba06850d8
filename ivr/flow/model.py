"""The flow language: one typed model, from which validation, the JSON Schema and the engine all derive.

Rules for this file:
- Only the shape of a flow lives here (types, defaults, per-field checks). Graph checks (undefined targets,
  unreachable nodes, loops) live in `ivr.flow.validate`; running a flow lives in `ivr.flow.engine`.
- Every model forbids unknown keys, so a typo in YAML is an error with a "did you mean" hint, never a silent default.
- Durations accept `5`, `5s`, `500ms`, `2m`, `1h` and are stored as float seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

# Durations are shared with the service settings; they live in ivr.units and are re-exported here.
from ivr.units import Duration as Duration
from ivr.units import parse_duration as parse_duration


def check_regex(pattern: str, *, quote: bool = False) -> str:
    """The pattern if it compiles; else a ValueError saying why (quoting the pattern where that helps)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" {pattern!r}" if quote else ""
        raise ValueError(f"invalid regular expression{where}: {exc}") from None
    return pattern


Digits = Annotated[str, Field(pattern=r"^[0-9*#]+$")]
# A node reference: `node` in the same flow or `flow:node` in another flow.
NodeRef = Annotated[str, Field(pattern=r"^([A-Za-z0-9_\-]+:)?[A-Za-z0-9_\-]+$")]
# Menu targets may also be the menu verbs.
MENU_VERBS = ("repeat", "back", "top")


class Strict(BaseModel):
    # coerce_numbers_to_str: `extension: 1001` and `mailbox: 100` need no quotes. (The YAML loader keeps numbers
    # with leading zeros, like 0123, as strings, so nothing is lost.)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


# --- prompts -----------------------------------------------------------------------------------------------


class PromptVariant(Strict):
    """One recording of a prompt in one language."""

    file: str = Field(
        pattern=r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$",
        description="Sound file without extension, relative to the prompts directory (e.g. en/welcome). Letters, "
        "digits, _ and - in /-separated parts: never an absolute path or `..`.",
    )
    text: str = Field("", description="What the prompt says; shown by `simulate` and used by `prompts build`.")


def _prompt_shorthand(value: Any) -> Any:
    # `welcome: {en: en/welcome}` is accepted as shorthand for `{en: {file: en/welcome}}`.
    if isinstance(value, dict):
        return {k: ({"file": v} if isinstance(v, str) else v) for k, v in value.items()}
    return value


Prompt = Annotated[dict[str, PromptVariant], BeforeValidator(_prompt_shorthand)]


# --- business hours ----------------------------------------------------------------------------------------


def check_time_zone(zone: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}; use an IANA name such as Europe/Vilnius") from None
    return zone


_DAY_SPEC = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$")
_TIME_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")


class Schedule(Strict):
    """Opening hours: a weekly pattern in a time zone, minus holidays, with a manual override switch."""

    timezone: str | None = Field(None, description="IANA zone (Europe/Vilnius); defaults to the flow's timezone.")
    weekly: dict[str, str | list[str]] = Field(
        description="Day or day range (mon, mon-fri) -> 'HH:MM-HH:MM' or a list of ranges; days not listed are closed."
    )
    holidays: list[date] = Field(default_factory=list, description="Closed all day (YYYY-MM-DD).")
    holiday_calendar: str | None = Field(
        None, description="iCalendar (.ics) file of closed days, relative to the flow."
    )
    override: Literal["open", "closed"] | None = Field(
        None, description="Manual switch (e.g. emergency closed). Wins over everything else while set."
    )

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, zone: str | None) -> str | None:
        return None if zone is None else check_time_zone(zone)

    @field_validator("weekly")
    @classmethod
    def _check_weekly(cls, weekly: dict[str, Any]) -> dict[str, Any]:
        for day, ranges in weekly.items():
            if not _DAY_SPEC.match(day):
                raise ValueError(f"{day!r} is not a day; use mon..sun or a range like mon-fri")
            for item in [ranges] if isinstance(ranges, str) else ranges:
                if not _TIME_RANGE.match(item):
                    raise ValueError(f"{item!r} is not a time range; write it like 08:00-18:00")
        return weekly


# --- recording policy --------------------------------------------------------------------------------------


class RecordingPolicy(Strict):
    """Whether calls of this flow are recorded: always, after the caller's consent (with an opt-out key), or never."""

    policy: Literal["always", "consent", "never"] = "never"
    consent_prompts: list[str] = Field(default_factory=list, description="Played before recording when policy=consent.")
    opt_out_key: Digits = Field("9", description="Digit the caller presses during the consent prompt to opt out.")
    file: str = Field(
        "${flow}-${uniqueid}", description="Recording file name template (no extension); only safe characters survive."
    )
    format: Literal["wav", "gsm", "ulaw", "alaw"] = "wav"


# --- what a node kind says about itself ---------------------------------------------------------------------

# Keys from the node down to a field, e.g. ("next",), ("options", "1"), ("no_input", "exhausted").
FieldPath = tuple[str | int, ...]
# The kind of a way out: how the graph styles it and what coverage calls it.
ExitKind = Literal[
    "next",
    "option",
    "direct_dial",
    "verb",
    "rule",
    "closed",
    "open",
    "else",
    "no_input",
    "invalid",
    "exhausted",
    "busy",
    "no_answer",
    "unavailable",
    "timeout",
    "error",
    "failure",
]


@dataclass(frozen=True)
class Count:
    """The series that counts callers taking an exit: a menu choice (`key` = digits), a node exit (`key` = the exit
    reason the handler reports) or a transfer branch (`key` = on_busy, ..., next; `target` = the configured target)."""

    metric: Literal["choice", "exit", "transfer"]
    key: str
    target: str | None = None  # only for "transfer": the series is labelled by target, not by node


@dataclass(frozen=True)
class Exit:
    """One way out of a node. Each node kind lists its own (`exits()`); validation and the flow graph read them.

    `target` is the node reference written at `path` (a node id, `flow:node` or a menu verb); for an inline menu
    option it is the option's digits and `inline` holds the node (the engine names it `<menu>.<digits>`).
    `written` is False for ways out that no field names (a menu offered again after a retry).
    """

    path: FieldPath
    target: str
    kind: ExitKind
    key: str  # which way out this is, unique per node: next, option:1, exhausted:no_input, on_busy, rule:0 ...
    label: str = ""
    count: Count | None = None
    verbs: tuple[str, ...] = ()  # menu verbs allowed as the target here
    inline: Node | None = None
    written: bool = True


def _exit(
    path: FieldPath, target: str | None, kind: ExitKind, reason: str, label: str = "", key: str = "next"
) -> list[Exit]:
    """An exit counted by ivr_node_exits_total{reason}, or nothing when the optional field is not set."""
    return [] if target is None else [Exit(path, target, kind, key, label, Count("exit", reason))]


# --- nodes ------------------------------------------------------------------------------------------------


class NodeBase(Strict):
    """Fields every node has, and how a node kind describes itself (overridden per kind)."""

    description: str = Field("", description="What the node is for; shown by simulate and graph.")

    # Takes no time at all: a loop made only of such nodes would spin without the caller hearing anything.
    instant: ClassVar[bool] = False

    def exits(self, flow_language: str) -> list[Exit]:
        """Every way out of this node, in order. `flow_language` names the fallback of a language choice."""
        return []

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        """The prompt id lists this node plays, with their field paths."""
        return []

    def templates(self) -> list[tuple[FieldPath, str]]:
        """The template texts of this node, with their field paths."""
        return []

    def assigned(self) -> set[str]:
        """Variables this node sets."""
        return set()

    def may_end_call(self) -> bool:
        """The call may be over after this node (so a loop through it is not a trap)."""
        return False


class PlayNode(NodeBase):
    """Play prompts in order, then go to `next`."""

    type: Literal["play"]
    prompts: list[str] = Field(min_length=1, description="Prompt ids played in order.")
    barge_in: bool = Field(False, description="Stop playing when the caller presses a digit.")
    next: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("prompts",), self.prompts)]


class SayNode(NodeBase):
    """Say a value as digits, a number or letters (Asterisk's built-in sounds)."""

    type: Literal["say"]
    mode: Literal["digits", "number", "alpha"] = "digits"
    value: str = Field(description="Template, e.g. '${account}'.")
    next: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next")

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [(("value",), self.value)]


class SetNode(NodeBase):
    """Set call variables from templates (${name} substitution only; no code)."""

    type: Literal["set"]
    variables: dict[str, str] = Field(min_length=1, description="name -> template (${name} substitution only).")
    channel: bool = Field(False, description="Also set them as Asterisk channel variables.")
    next: NodeRef

    instant: ClassVar[bool] = True

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next")

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [(("variables", name), text) for name, text in self.variables.items()]

    def assigned(self) -> set[str]:
        return set(self.variables)


class Retry(Strict):
    """What happens when the caller gives no input or an invalid one."""

    prompts: list[str] = Field(default_factory=list, description="Played before the menu is offered again.")
    retries: int = Field(2, ge=0, le=10, description="How many more times the menu is offered.")
    exhausted: NodeRef | None = Field(None, description="Where the caller goes when retries are used up.")


class DirectDial(Strict):
    """Dial an extension straight from the menu (e.g. pattern 1XXX)."""

    pattern: str = Field(description="Asterisk-style pattern: X=0-9, Z=1-9, N=2-9, [1-4] ranges, digits literal.")
    target: NodeRef = Field(description="Node that handles it; the digits are in ${dialed}.")

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, pattern: str) -> str:
        dial_pattern_regex(pattern)  # raises ValueError with a hint
        return pattern


_PATTERN_TOKEN = re.compile(r"\[[0-9*#\-]+\]|[0-9*#XZNxzn]")
_PATTERN_CLASS = {"x": "[0-9]", "z": "[1-9]", "n": "[2-9]"}


def dial_pattern_tokens(pattern: str) -> list[str]:
    """A fixed-length Asterisk-style extension pattern (`1XXX`, `_2[0-4]XX`) as one regex per dialled digit."""
    body = pattern[1:] if pattern.startswith("_") else pattern
    parts: list[str] = []
    pos = 0
    while pos < len(body):
        match = _PATTERN_TOKEN.match(body, pos)
        if not match:
            raise ValueError(
                f"{pattern!r} is not a dial pattern; use digits, X (0-9), Z (1-9), N (2-9) and ranges like [1-4]"
            )
        token = match.group(0)
        if token.startswith("["):
            parts.append("[" + re.sub(r"([*#])", r"\\\1", token[1:-1]) + "]")
        else:
            parts.append(_PATTERN_CLASS.get(token.lower(), re.escape(token)))
        pos = match.end()
    if not parts:
        raise ValueError("an empty dial pattern; write it like 1XXX")
    return parts


def dial_pattern_regex(pattern: str) -> re.Pattern[str]:
    """Compile a dial pattern to a regex for `fullmatch` on the digits the caller pressed."""
    return re.compile("".join(dial_pattern_tokens(pattern)))


class MenuOption(Strict):
    """A menu option written as a mapping: where it goes and a label for graphs and reports."""

    goto: NodeRef
    label: str = ""


class MenuNode(NodeBase):
    """Offer choices by digits: options, direct dial, separate no-input and invalid-input handling."""

    type: Literal["menu"]
    greeting: list[str] = Field(min_length=1, description="Prompt ids played each time the menu is offered.")
    options: dict[str, NodeRef | MenuOption | InlineNode] = Field(
        min_length=1,
        description="Digits -> node id, repeat/back/top, {goto: ...} or an inline node (e.g. {type: transfer, ...}).",
    )
    direct_dial: DirectDial | None = None
    timeout: Duration = Field(5.0, description="How long to wait for the first digit after the greeting.")
    inter_digit_timeout: Duration = Field(2.0, description="How long to wait between digits of a multi-digit choice.")
    no_input: Retry = Field(default_factory=Retry)
    invalid: Retry = Field(default_factory=Retry)

    @field_validator("options")
    @classmethod
    def _check_keys(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key in options:
            if not re.fullmatch(r"[0-9*#]+", str(key)):
                raise ValueError(f"option {key!r} is not a digit sequence (0-9, * and #); quote digits in YAML: '1'")
        return options

    def exits(self, flow_language: str) -> list[Exit]:
        out: list[Exit] = []
        for digits, option in self.options.items():
            choice = Count("choice", digits)
            key = f"option:{digits}"
            if isinstance(option, str):
                verb = option in MENU_VERBS
                label = f"{digits}: {option}" if verb else digits
                out.append(
                    Exit(("options", digits), option, "verb" if verb else "option", key, label, choice, MENU_VERBS)
                )
            elif isinstance(option, MenuOption):
                verb = option.goto in MENU_VERBS
                label = f"{digits}: {option.label or option.goto}" if verb or option.label else digits
                kind: ExitKind = "verb" if verb else "option"
                out.append(Exit(("options", digits, "goto"), option.goto, kind, key, label, choice, MENU_VERBS))
            else:
                out.append(Exit(("options", digits), digits, "option", key, digits, choice, inline=option))
        if self.direct_dial is not None:
            dial = self.direct_dial
            out.append(
                Exit(
                    ("direct_dial", "target"),
                    dial.target,
                    "direct_dial",
                    "direct_dial",
                    f"dial {dial.pattern}",
                    Count("choice", "direct_dial"),
                )
            )
        retries: tuple[tuple[Literal["no_input", "invalid"], Retry], ...] = (
            ("no_input", self.no_input),
            ("invalid", self.invalid),
        )
        for branch, retry in retries:
            label = "no input" if branch == "no_input" else "invalid"
            if retry.retries:
                # The retry loop: the caller hears the menu again (no field names it).
                out.append(
                    Exit(
                        (branch, "retries"),
                        "repeat",
                        branch,
                        f"retry:{branch}",
                        f"{label} ×{retry.retries}",
                        Count("exit", branch),
                        ("repeat",),
                        written=False,
                    )
                )
            if retry.exhausted is not None:
                verb = retry.exhausted in MENU_VERBS
                out.append(
                    Exit(
                        (branch, "exhausted"),
                        retry.exhausted,
                        "exhausted",
                        f"exhausted:{branch}",
                        f"{label}: exhausted → {retry.exhausted}" if verb else f"{label}: exhausted",
                        Count("exit", "exhausted"),
                        ("back", "top"),
                    )
                )
        return out

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [
            (("greeting",), self.greeting),
            (("no_input", "prompts"), self.no_input.prompts),
            (("invalid", "prompts"), self.invalid.prompts),
        ]


class InputNode(NodeBase):
    """Collect digits into a variable: length limits, terminator, regex check, read-back and confirm, retries."""

    type: Literal["input"]
    variable: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    prompts: list[str] = Field(min_length=1)
    min_length: int = Field(1, ge=0)
    max_length: int = Field(20, ge=1, le=64)
    terminator: Literal["#", "*", ""] = "#"
    timeout: Duration = 6.0
    inter_digit_timeout: Duration = 3.0
    pattern: str | None = Field(None, description="Regular expression the whole input must match.")
    confirm: bool = Field(False, description="Read the digits back and ask the caller to confirm.")
    confirm_prompts: list[str] = Field(default_factory=list, description="e.g. 'press 1 if correct, 2 to re-enter'.")
    confirm_yes: Digits = "1"
    invalid_prompts: list[str] = Field(default_factory=list)
    retries: int = Field(2, ge=0, le=10)
    next: NodeRef
    on_failure: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        return [
            *_exit(("next",), self.next, "next", "valid", "valid", key="valid"),
            *_exit(
                ("on_failure",), self.on_failure, "exhausted", "exhausted", f"failed ×{self.retries + 1}", "failure"
            ),
        ]

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [
            (("prompts",), self.prompts),
            (("confirm_prompts",), self.confirm_prompts),
            (("invalid_prompts",), self.invalid_prompts),
        ]

    def assigned(self) -> set[str]:
        return {self.variable}

    @field_validator("pattern")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        return None if pattern is None else check_regex(pattern)

    @model_validator(mode="after")
    def _check_lengths(self) -> InputNode:
        if self.min_length > self.max_length:
            raise ValueError("min_length is larger than max_length")
        return self


class RouteRule(Strict):
    """One condition and a target. The first rule whose condition holds wins."""

    open: str | None = Field(None, description="Schedule name: true while open.")
    closed: str | None = Field(None, description="Schedule name: true while closed (holidays included).")
    holiday: str | None = Field(None, description="Schedule name: true on a holiday.")
    caller: str | None = Field(None, description="Regular expression on the caller ID number.")
    variable: str | None = None
    equals: str | None = None
    matches: str | None = None
    in_: list[str] | None = Field(None, alias="in")
    language: str | None = None
    goto: NodeRef

    @model_validator(mode="after")
    def _one_condition(self) -> RouteRule:
        kinds = [k for k in ("open", "closed", "holiday", "caller", "variable", "language") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a rule needs exactly one of: open, closed, holiday, caller, variable, language")
        comparators = [c for c in ("equals", "matches", "in_") if getattr(self, c) is not None]
        if self.variable and len(comparators) != 1:
            raise ValueError("a variable rule needs exactly one of: equals, matches, in")
        if not self.variable and comparators:
            raise ValueError("equals/matches/in only go with variable")
        for regex in (self.caller, self.matches):
            if regex is not None:
                check_regex(regex, quote=True)
        return self

    def describe(self) -> tuple[ExitKind, str]:
        """How the rule's branch is drawn: its kind (hours rules apart) and its condition as a label."""
        if self.open:
            return "open", f"open ({self.open})"
        if self.closed:
            return "closed", f"closed ({self.closed})"
        if self.holiday:
            return "closed", f"holiday ({self.holiday})"
        if self.caller:
            return "rule", f"caller ~ {self.caller}"
        if self.language:
            return "rule", f"language = {self.language}"
        if self.equals is not None:
            return "rule", f"{self.variable} = {self.equals}"
        if self.matches is not None:
            return "rule", f"{self.variable} ~ {self.matches}"
        return "rule", f"{self.variable} in {', '.join(self.in_ or [])}"


class RouteNode(NodeBase):
    """Branch without caller input: the first matching rule wins, else `else`."""

    type: Literal["route"]
    rules: list[RouteRule] = Field(default_factory=list)
    else_: NodeRef = Field(alias="else")

    instant: ClassVar[bool] = True

    def exits(self, flow_language: str) -> list[Exit]:
        out: list[Exit] = []
        for index, rule in enumerate(self.rules):
            kind, label = rule.describe()
            # Only the hours rules exit with a reason of their own (ivr_node_exits_total{reason="open"|"closed"}).
            reason = kind if kind in ("open", "closed") else "next"
            out += _exit(("rules", index, "goto"), rule.goto, kind, reason, label, key=f"rule:{index}")
        return out + _exit(("else",), self.else_, "else", "next", "else", key="else")


class LanguageNode(NodeBase):
    """Let the caller choose the language of the call (channel language and prompt set)."""

    type: Literal["language"]
    prompts: list[str] = Field(min_length=1)
    options: dict[str, str] = Field(min_length=1, description="Digit -> language code.")
    timeout: Duration = 5.0
    retries: int = Field(1, ge=0, le=10)
    default: str | None = Field(None, description="Language used when the caller chooses nothing (flow default).")
    next: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        # Every choice leads to `next`; they are told apart by the language chosen.
        out = [
            exit_
            for digit, language in self.options.items()
            for exit_ in _exit(("next",), self.next, "option", "valid", f"{digit}: {language}", f"language:{language}")
        ]
        fallback = self.default or flow_language
        return out + _exit(("next",), self.next, "exhausted", "exhausted", f"no choice: {fallback}", "language:default")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("prompts",), self.prompts)]

    @field_validator("options")
    @classmethod
    def _check_keys(cls, options: dict[str, str]) -> dict[str, str]:
        for key in options:
            if not re.fullmatch(r"[0-9*#]", key):
                raise ValueError(f"option {key!r} is not a single digit; use 0-9, * or #")
        return options


class LookupNode(NodeBase):
    """Ask a CRM or webhook over HTTP; map fields of its JSON answer into variables."""

    type: Literal["lookup"]
    url: str = Field(description="Template; values are URL-encoded when substituted.")
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, str] = Field(default_factory=dict, description="JSON body fields (templates) for POST.")
    timeout: Duration = 3.0
    map: dict[str, str] = Field(default_factory=dict, description="variable -> dotted path in the JSON answer.")
    next: NodeRef
    on_error: NodeRef

    instant: ClassVar[bool] = True

    def exits(self, flow_language: str) -> list[Exit]:
        return [
            *_exit(("next",), self.next, "next", "next", "ok"),
            *_exit(("on_error",), self.on_error, "error", "error", "lookup failed", key="error"),
        ]

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [
            (("url",), self.url),
            *((("headers", name), text) for name, text in self.headers.items()),
            *((("body", name), text) for name, text in self.body.items()),
        ]

    def assigned(self) -> set[str]:
        return set(self.map)


class TransferNode(NodeBase):
    """Connect the caller to an extension, a dial string or a queue, with branches for each failure."""

    type: Literal["transfer"]
    extension: str | None = Field(None, description="Agent extension; dialled with the service's dial template.")
    dial: str | None = Field(None, description="Full Asterisk dial string (PJSIP/1001), instead of extension.")
    queue: str | None = None
    timeout: Duration = 30.0
    announcement: list[str] = Field(default_factory=list)
    caller_id_name_prefix: str = ""
    record: bool = False
    on_busy: NodeRef | None = None
    on_no_answer: NodeRef | None = None
    on_unavailable: NodeRef | None = None
    on_timeout: NodeRef | None = Field(None, description="Queue: nobody answered in time (or the queue is empty).")
    next: NodeRef | None = Field(None, description="After the transferred call ends; default: hang up.")

    @model_validator(mode="after")
    def _one_target(self) -> TransferNode:
        targets = [t for t in (self.extension, self.dial, self.queue) if t]
        if len(targets) != 1:
            raise ValueError("a transfer needs exactly one of: extension, dial, queue")
        return self

    def exits(self, flow_language: str) -> list[Exit]:
        # Every way out exits with reason "next"; ivr_transfers_total{target,result} tells them apart.
        target = self.queue or self.extension or self.dial or ""
        branches: tuple[tuple[str, str | None, ExitKind, str], ...] = (
            ("on_busy", self.on_busy, "busy", "busy"),
            ("on_no_answer", self.on_no_answer, "no_answer", "no answer"),
            ("on_unavailable", self.on_unavailable, "unavailable", "unavailable"),
            ("on_timeout", self.on_timeout, "timeout", "queue timeout"),
            ("next", self.next, "next", "after the call"),
        )
        return [
            Exit((field,), ref, kind, field, label, Count("transfer", field, target))
            for field, ref, kind, label in branches
            if ref is not None
        ]

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("announcement",), self.announcement)]

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [((field,), text) for field in ("extension", "dial", "queue") if (text := getattr(self, field))]

    def may_end_call(self) -> bool:
        return self.next is None  # a connected call ends there


class ParkNode(NodeBase):
    """Park the caller in a parking lot for someone to pick up; `comeback` when nobody does."""

    type: Literal["park"]
    lot: str = "default"
    timeout: Duration = 45.0
    announcement: list[str] = Field(default_factory=list)
    comeback: NodeRef | None = Field(None, description="Where the caller returns when nobody retrieves the call.")

    def exits(self, flow_language: str) -> list[Exit]:
        # Park ends the session; the comeback arrives as a new call at that node (agi://.../flow?node=...).
        return _exit(("comeback",), self.comeback, "timeout", "next", "not retrieved (comeback)", key="comeback")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("announcement",), self.announcement)]

    def may_end_call(self) -> bool:
        return True  # a retrieved call leaves the IVR


class HoldNode(NodeBase):
    """Music on hold with periodic announcements, for at most `max`."""

    type: Literal["hold"]
    music_class: str = "default"
    announcement: list[str] = Field(default_factory=list, description="Played every `every` seconds.")
    every: Duration = 30.0
    max: Duration = Field(120.0, description="Total hold time before moving on.")
    next: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("announcement",), self.announcement)]


class RecordNode(NodeBase):
    """Start, pause, resume or stop call recording (under the flow's recording policy)."""

    type: Literal["record"]
    action: Literal["start", "pause", "resume", "stop"]
    next: NodeRef

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next")


class VoicemailNode(NodeBase):
    """Record a message for a mailbox and store it with its metadata."""

    type: Literal["voicemail"]
    mailbox: str
    greeting: list[str] = Field(default_factory=list)
    beep: bool = True
    max_length: Duration = 120.0
    silence: Duration = 5.0
    next: NodeRef
    on_failure: NodeRef | None = Field(
        None,
        description="Where the caller goes when the message was recorded but could not be stored (database "
        "down); without it the call ends as an error.",
    )

    def exits(self, flow_language: str) -> list[Exit]:
        return [
            *_exit(("next",), self.next, "next", "next"),
            *_exit(("on_failure",), self.on_failure, "failure", "storage_error", "not stored", key="failure"),
        ]

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("greeting",), self.greeting)]

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [(("mailbox",), self.mailbox)]


class CallbackNode(NodeBase):
    """Take a callback request: the caller ID or another number, read back and confirmed, stored durably."""

    type: Literal["callback"]
    queue: str = Field(description="Queue whose agents work off the callback.")
    prompts: list[str] = Field(default_factory=list, description="Offer, e.g. 'we will call you back on'.")
    use_caller_id: bool = Field(True, description="Offer the caller ID first; the caller may enter another number.")
    number_prompts: list[str] = Field(default_factory=list, description="Asks for another number.")
    confirm_prompts: list[str] = Field(default_factory=list, description="'press 1 to confirm, 2 for another number'.")
    invalid_prompts: list[str] = Field(
        default_factory=list,
        description="Played when a typed number cannot be called "
        "back (wrong length or refused by the number pattern), before asking again.",
    )
    number_pattern: str | None = Field(
        None,
        description="Regular expression the whole number (caller ID or typed, "
        "with its + if any) must match; default: the service's "
        "callbacks.number_pattern. Use it to refuse premium-rate and short numbers.",
    )
    min_length: int = 6
    max_length: int = 15
    retries: int = Field(2, ge=0, le=10)
    next: NodeRef
    on_failure: NodeRef | None = None

    @field_validator("number_pattern")
    @classmethod
    def _check_number_pattern(cls, pattern: str | None) -> str | None:
        return None if pattern is None else check_regex(pattern)

    def exits(self, flow_language: str) -> list[Exit]:
        return [
            *_exit(("next",), self.next, "next", "valid", "requested"),
            *_exit(("on_failure",), self.on_failure, "failure", "exhausted", "failed", key="failure"),
        ]

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [
            (("prompts",), self.prompts),
            (("number_prompts",), self.number_prompts),
            (("confirm_prompts",), self.confirm_prompts),
            (("invalid_prompts",), self.invalid_prompts),
        ]


def _answer_range(value: Any) -> Any:
    # `answers: 1-5` is shorthand for ["1", "2", "3", "4", "5"].
    if isinstance(value, str) and re.fullmatch(r"[0-9]-[0-9]", value):
        first, last = int(value[0]), int(value[2])
        return [str(d) for d in range(first, last + 1)]
    return value


class SurveyQuestion(Strict):
    """One survey question: prompts, the digits that answer it, how long to wait and how often to ask again."""

    id: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$",
        description="Stable name of the question (stored with each answer, a metric label, a /surveys filter).",
    )
    prompts: list[str] = Field(min_length=1, description="The question, e.g. 'how satisfied were you, 1 to 5'.")
    answers: Annotated[
        list[Annotated[str, Field(pattern=r"^[0-9]$")]],
        BeforeValidator(_answer_range),
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"type": "string", "pattern": "^[0-9]$"},
                                {"type": "integer", "minimum": 0, "maximum": 9},
                            ]
                        },
                        "minItems": 2,
                        "maxItems": 10,
                    },
                    {"type": "string", "pattern": "^[0-9]-[0-9]$"},
                ],
                "description": "Allowed answers, one digit each: a range like 1-5, or a list such as ['1', '2'] "
                "(1 yes, 2 no).",
            }
        ),
    ] = Field(
        min_length=2,
        max_length=10,
        description="Allowed answers, one digit each: a range like 1-5, or a list such as ['1', '2'] (1 yes, 2 no).",
    )
    timeout: Duration = Field(6.0, description="How long to wait for the answer after the prompts.")
    retries: int = Field(
        1, ge=0, le=5, description="How many more times the question is asked after no or a wrong answer."
    )
    invalid_prompts: list[str] = Field(default_factory=list, description="Played before the question is asked again.")

    @field_validator("answers")
    @classmethod
    def _unique(cls, answers: list[str]) -> list[str]:
        if len(set(answers)) != len(answers):
            raise ValueError("answers repeat a digit")
        return answers


class SurveyNode(NodeBase):
    """Ask the caller a few questions answered by one digit each (e.g. after the agent hung up) and store the
    answers with the call id, flow, queue and agent."""

    type: Literal["survey"]
    intro: list[str] = Field(default_factory=list, description="Played first, e.g. 'please answer two questions'.")
    questions: list[SurveyQuestion] = Field(min_length=1, max_length=10)
    thanks: list[str] = Field(default_factory=list, description="Played after the last question.")
    queue: str | None = Field(
        None, description="Template for the queue stored with the answers; default: the queue the call was just in."
    )
    agent: str | None = Field(
        None,
        description="Template for the agent stored with the answers; default: the agent who just talked to the "
        "caller (Asterisk's MEMBERINTERFACE after a queue, DIALEDPEERNAME after a dial).",
    )
    next: NodeRef | None = Field(None, description="After the survey; default: hang up.")

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[SurveyQuestion]) -> list[SurveyQuestion]:
        ids = [q.id for q in questions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"question ids repeat: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        return questions

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("next",), self.next, "next", "next", "after the survey")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        out: list[tuple[FieldPath, list[str]]] = [(("intro",), self.intro)]
        for index, question in enumerate(self.questions):
            out.append((("questions", index, "prompts"), question.prompts))
            out.append((("questions", index, "invalid_prompts"), question.invalid_prompts))
        return out + [(("thanks",), self.thanks)]

    def templates(self) -> list[tuple[FieldPath, str]]:
        return [((field,), text) for field in ("queue", "agent") if (text := getattr(self, field))]

    def may_end_call(self) -> bool:
        return self.next is None


class GotoNode(NodeBase):
    """Continue at another node (of this flow or, with flow:node, another flow)."""

    type: Literal["goto"]
    target: NodeRef

    instant: ClassVar[bool] = True

    def exits(self, flow_language: str) -> list[Exit]:
        return _exit(("target",), self.target, "next", "next")


class HangupNode(NodeBase):
    """Play goodbye prompts and hang up."""

    type: Literal["hangup"]
    prompts: list[str] = Field(default_factory=list, description="Goodbye prompts.")

    def prompt_lists(self) -> list[tuple[FieldPath, list[str]]]:
        return [(("prompts",), self.prompts)]

    def may_end_call(self) -> bool:
        return True


Node = Annotated[
    PlayNode
    | SayNode
    | SetNode
    | MenuNode
    | InputNode
    | RouteNode
    | LanguageNode
    | LookupNode
    | TransferNode
    | ParkNode
    | HoldNode
    | RecordNode
    | VoicemailNode
    | CallbackNode
    | SurveyNode
    | GotoNode
    | HangupNode,
    Field(discriminator="type"),
]
# A node written inline as a menu option.
InlineNode = Node
MenuNode.model_rebuild()

NODE_KINDS: tuple[str, ...] = (
    "play",
    "say",
    "set",
    "menu",
    "input",
    "route",
    "language",
    "lookup",
    "transfer",
    "park",
    "hold",
    "record",
    "voicemail",
    "callback",
    "survey",
    "goto",
    "hangup",
)


class Flow(Strict):
    """One IVR flow: one YAML file in config/flows/, routed by the FastAGI path agi://host/<name>."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    language: str = Field("en", description="Default language.")
    languages: list[str] = Field(default_factory=lambda: ["en"], description="Languages this flow offers.")
    timezone: str = Field("UTC", description="IANA time zone for schedules.")
    start: str = Field(description="Id of the first node.")
    answer: bool = Field(True, description="Answer the channel before the first node.")
    variables: dict[str, str] = Field(default_factory=dict, description="Initial flow variables.")
    prompts: dict[str, Prompt] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    recording: RecordingPolicy = Field(default_factory=RecordingPolicy)
    nodes: dict[str, Node] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, zone: str) -> str:
        return check_time_zone(zone)


def all_nodes(flow: Flow) -> Iterator[Any]:
    """Every node of a flow, the nodes written inline as menu options included."""
    for node in flow.nodes.values():
        yield node
        if isinstance(node, MenuNode):
            yield from (option for option in node.options.values() if not isinstance(option, (str, MenuOption)))


def literal_queues(flows: Iterable[Flow]) -> set[str]:
    """Queue names written literally in transfer and callback nodes (a `${...}` queue is chosen at run time)."""
    return {
        node.queue
        for flow in flows
        for node in all_nodes(flow)
        if isinstance(node, (TransferNode, CallbackNode)) and node.queue and "${" not in node.queue
    }

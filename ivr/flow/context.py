"""The running state of one call, and the helpers every node kind uses.

Rules for this file:
- `CallContext` is the only thing a node handler gets: the channel, the variables, the current flow and language,
  the menu stack, the sticky outcome, the recorder, the settings, and helpers to play prompts and collect digits.
- Node handlers return a `Goto` (go on at another node) or a `Finish` (the call leaves the IVR here); they never
  loop the engine themselves and never sleep: every wait is a channel call.
- Helpers emit trace events (prompt with its text, digit, timeout) so `simulate` shows exactly what a caller
  experiences.
- Type-ahead: a digit that interrupted a barge-in `play` node is kept and consumed by the next node that collects
  digits, so a caller who knows the menu is not ignored.
- A terminator pressed right after a full-length entry ends that entry: `collect` listens `terminator_grace`
  seconds for it, so the `#` a prompt asked for never interrupts the read-back or the next prompt. Digits past
  `max_length` make the entry too long (the node rejects it); they never leak into the next prompt either.
- `Goto`, `Finish`, `EngineSettings` and `CallContext` are `ivr.records` records, not dataclasses: classic AGI
  builds them before its first command (ivr/records.py says why).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.flow.channel import CallInfo, Channel
from ivr.flow.compiled import Flow
from ivr.flow.report import Observer, TraceEvent
from ivr.flow.templates import render
from ivr.records import FrozenRecord, Record
from ivr.telephony import DEFAULT_CALLBACK_NUMBER_PATTERN

if TYPE_CHECKING:  # pragma: no cover
    from ivr.flow.lookup import LookupClient
    from ivr.flow.recording import Recorder

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"
MAX_OVERFLOW = 32  # digits past max_length that `collect` reads into a too-long entry, however long one types
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_VALUE_CHARS = 1024  # a variable's value; AGI command lines are 2 KiB in all
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_value(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Data from outside (query parameters, lookup answers) as a variable value: control characters (NUL, CR,
    LF, ...) become spaces and the text is cut to `limit` characters, so it can always be sent as a channel
    variable and never ends an AGI command line early."""
    return _CONTROL.sub(" ", value)[:limit]


class EngineError(Exception):
    """The flow cannot go on (undefined node or schedule, a node needs storage that is not configured, ...).
    The call ends with outcome "error"; the message says what to fix in the flow or the service settings."""


class StepBudgetExceeded(EngineError):
    """The call visited more nodes than the step budget allows: a cycle in the flow that never waits for the
    caller (or a caller pressing `repeat` forever)."""


_set = object.__setattr__


class Goto(FrozenRecord):
    """Continue at `target` (`node`, `flow:node` or an inline option id `menu.digit`)."""

    __slots__ = ("target", "reason", "detail")

    target: str
    reason: str
    detail: str

    def __init__(self, target: str, reason: str = "next", detail: str = "") -> None:
        _set(self, "target", target)
        _set(self, "reason", reason)
        _set(self, "detail", detail)


class Finish(FrozenRecord):
    """The call leaves the IVR at this node. `outcome` None means "contained" unless an earlier node set one."""

    __slots__ = ("outcome", "reason", "detail", "end_target")

    outcome: str | None
    reason: str
    detail: str
    end_target: str

    def __init__(
        self, outcome: str | None = None, reason: str = "next", detail: str = "", end_target: str = ""
    ) -> None:
        _set(self, "outcome", outcome)
        _set(self, "reason", reason)
        _set(self, "detail", detail)
        _set(self, "end_target", end_target)


Step = Goto | Finish


VOICEMAIL_SUBDIR = "voicemail"


class EngineSettings(Record):
    """Service settings the nodes need. Paths are as Asterisk sees them (it reads prompts, writes recordings)."""

    __slots__ = (
        "prompts_dir",
        "dial_template",
        "recordings_dir",
        "voicemail_dir",
        "max_steps",
        "consent_wait",
        "confirm_wait",
        "terminator_grace",
        "base_dir",
        "callback_number_pattern",
        "park_comeback_context",
    )

    def __init__(
        self,
        prompts_dir: str = "",  # prefix of prompt files: <prompts_dir>/<file>
        dial_template: str = "PJSIP/{extension}",  # extension -> Dial() destination ({extension} or ${extension})
        recordings_dir: str = "/var/spool/asterisk/monitor",
        voicemail_dir: str = "/var/spool/asterisk/voicemail/ivr",
        max_steps: int = 200,  # node visits per call before the loop guard ends it
        consent_wait: float = 2.0,  # seconds to press the opt-out key after the consent prompt
        confirm_wait: float = 5.0,  # seconds to answer "press 1 to confirm" prompts
        terminator_grace: float = 2.0,  # seconds to listen for the terminator after a full-length entry
        base_dir: Path | None = None,  # for relative holiday calendars when the flow set has no sources
        callback_number_pattern: str = DEFAULT_CALLBACK_NUMBER_PATTERN,  # a callback number must fully match it
        park_comeback_context: str = "ivr-park-comeback",  # Park(...,c(<context>,s,1)): where a timed-out caller goes
    ) -> None:
        self.prompts_dir = prompts_dir
        self.dial_template = dial_template
        self.recordings_dir = recordings_dir
        self.voicemail_dir = voicemail_dir
        self.max_steps = max_steps
        self.consent_wait = consent_wait
        self.confirm_wait = confirm_wait
        self.terminator_grace = terminator_grace
        self.base_dir = base_dir
        self.callback_number_pattern = callback_number_pattern
        self.park_comeback_context = park_comeback_context

    def set_recordings_dir(self, recordings_dir: str) -> None:
        """Call recordings go to `recordings_dir`, voicemail messages to its `voicemail` subdirectory (the layout
        `serve` and the admin tools share; ivr.writedirs creates both)."""
        self.recordings_dir = recordings_dir.rstrip("/") or recordings_dir  # "/" stays "/"
        self.voicemail_dir = f"{self.recordings_dir.rstrip('/')}/{VOICEMAIL_SUBDIR}"


class CallContext(Record):
    __slots__ = (
        "channel",
        "info",
        "flows",
        "flow",
        "settings",
        "clock",
        "storage",
        "lookup_client",
        "observer",
        "version",
        "base_dirs",
        "node_id",
        "variables",
        "language",
        "menu_stack",
        "pending_digits",
        "outcome",
        "end_target",
        "recorder",
        "entered_flows",
        "steps",
    )

    def __init__(
        self,
        channel: Channel,
        info: CallInfo,
        flows: Mapping[str, Flow],
        flow: Flow,
        settings: EngineSettings,
        clock: Callable[[], datetime],
        storage: Any = None,
        lookup_client: LookupClient | None = None,
        observer: Observer | None = None,
        version: str = "",
        base_dirs: Mapping[str, Path] | None = None,
        node_id: str = "",
        variables: dict[str, str] | None = None,
        language: str = "en",
        menu_stack: list[str] | None = None,
        pending_digits: str = "",
        outcome: str | None = None,  # sticky: transferred / parked / voicemail / callback
        end_target: str = "",
        recorder: Recorder | None = None,
        entered_flows: set[str] | None = None,
        steps: int = 0,
    ) -> None:
        self.channel = channel
        self.info = info
        self.flows = flows
        self.flow = flow
        self.settings = settings
        self.clock = clock
        self.storage = storage
        self.lookup_client = lookup_client
        self.observer = observer
        self.version = version
        self.base_dirs: Mapping[str, Path] = {} if base_dirs is None else base_dirs
        self.node_id = node_id
        self.variables: dict[str, str] = {} if variables is None else variables
        self.language = language
        self.menu_stack: list[str] = [] if menu_stack is None else menu_stack
        self.pending_digits = pending_digits
        self.outcome = outcome
        self.end_target = end_target
        self.recorder = recorder
        self.entered_flows: set[str] = set() if entered_flows is None else entered_flows
        self.steps = steps

    def tick(self) -> None:
        """Count one step (a node visit or a menu repeat) against the call's budget."""
        self.steps += 1
        if self.steps > self.settings.max_steps:
            raise StepBudgetExceeded(
                f"more than {self.settings.max_steps} steps in one call (last at {self.ref}); the flow has a cycle "
                "that never waits for the caller, or the caller repeated a menu without end"
            )

    # -- tracing ----------------------------------------------------------------------------------------------
    def emit(self, kind: str, text: str, **data: Any) -> None:
        if self.observer is not None:
            try:
                self.observer(TraceEvent(self.clock(), kind, self.flow.name, self.node_id, text, data))
            except Exception:  # a broken observer (a tool's printer) must not change what the caller gets
                log.exception("trace observer failed on %s event", kind)

    @property
    def ref(self) -> str:
        return f"{self.flow.name}:{self.node_id}"

    # -- variables --------------------------------------------------------------------------------------------
    def render(self, template: str) -> str:
        return render(template, self.variables)

    def set_var(self, name: str, value: str) -> None:
        if not VARIABLE_NAME.fullmatch(name):
            raise EngineError(f"{name!r} is not a variable name; use letters, digits and _")
        self.variables[name] = value
        if self.observer is not None:  # the trace text is built only for an observer
            self.emit("variable", f"{name} = {value!r}", name=name, value=value)

    # -- prompts ----------------------------------------------------------------------------------------------
    def prompt_file(self, prompt_id: str) -> tuple[str, str]:
        """Prompt id -> (file for Asterisk, text). The caller's language first, then the flow's default.
        An id the flow does not define is played as an Asterisk sound name (e.g. `beep`)."""
        variants = self.flow.prompts.get(prompt_id)
        if not variants:
            return prompt_id, ""
        variant = variants.get(self.language) or variants.get(self.flow.language) or next(iter(variants.values()))
        file = variant.file
        if self.settings.prompts_dir and not file.startswith("/"):
            file = f"{self.settings.prompts_dir.rstrip('/')}/{file}"
        return file, variant.text

    async def play(self, prompt_ids: Sequence[str], escape_digits: str = "") -> str | None:
        """Play prompts in order (one channel call per prompt, so the trace shows what was heard); return the
        digit that interrupted, or None."""
        for prompt_id in prompt_ids:
            file, text = self.prompt_file(prompt_id)
            self.emit("prompt", text or file, prompt=prompt_id, file=file)
            digit = await self.channel.play([file], escape_digits)
            if digit:
                self.emit("digit", f"{digit} (interrupted {prompt_id})", digit=digit, barge_in=True)
                return digit
        return None

    async def offer(self, prompt_ids: Sequence[str], escape_digits: str = ALL_DIGITS) -> str | None:
        """Play prompts with barge-in, unless the caller already typed ahead; return the first digit or None."""
        if self.pending_digits:
            digit, self.pending_digits = self.pending_digits[0], self.pending_digits[1:]
            self.emit("digit", f"{digit} (typed ahead)", digit=digit, typeahead=True)
            return digit
        return await self.play(prompt_ids, escape_digits)

    async def next_digit(self, timeout: float, *, trace_timeout: bool = True) -> str | None:
        if self.pending_digits:
            digit, self.pending_digits = self.pending_digits[0], self.pending_digits[1:]
            self.emit("digit", f"{digit} (typed ahead)", digit=digit, typeahead=True)
            return digit
        pressed = await self.channel.wait_for_digit(timeout)
        if pressed:
            self.emit("digit", pressed, digit=pressed)
        elif trace_timeout:
            self.emit("timeout", f"no digit within {timeout:g} s", seconds=timeout)
        return pressed

    async def collect(
        self,
        prompt_ids: Sequence[str],
        *,
        max_length: int,
        terminator: str,
        timeout: float,
        inter_digit_timeout: float,
    ) -> str:
        """Prompt (with barge-in) and collect up to `max_length` digits; the terminator ends input early and is
        not returned. "" when the caller pressed nothing.

        With a terminator, a full entry still listens `terminator_grace` seconds: the terminator the prompt asked
        for ends the entry there (silence too, untraced: the entry is complete). A further digit means the caller
        typed too many: the entry is read on to its end and returned longer than `max_length`, for the node to
        reject, rather than leaking the extra digits into the read-back or the next prompt."""
        digit = await self.offer(prompt_ids)
        if digit is None:
            digit = await self.next_digit(timeout)
        buffer = ""
        while digit is not None:
            if terminator and digit == terminator:
                break
            buffer += digit
            if (len(buffer) >= max_length and not terminator) or len(buffer) >= max_length + MAX_OVERFLOW:
                break
            if len(buffer) == max_length:
                grace = min(self.settings.terminator_grace, inter_digit_timeout)
                digit = await self.next_digit(grace, trace_timeout=False) if grace > 0 else None
            else:
                digit = await self.next_digit(inter_digit_timeout)
        return buffer

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        only = "".join(c for c in digits if c.isdigit())
        if not only:
            return None
        self.emit("prompt", f"(says digits {only})", say="digits", value=only)
        digit = await self.channel.say_digits(only, escape_digits)
        if digit:
            self.emit("digit", f"{digit} (interrupted read-back)", digit=digit, barge_in=True)
        return digit

    # -- language ---------------------------------------------------------------------------------------------
    async def set_language(self, language: str) -> None:
        self.language = language
        self.variables["language"] = language
        await self.channel.set_language(language)
        self.emit("language", f"language is now {language}", language=language)

    # -- menu stack -------------------------------------------------------------------------------------------
    def enter_menu(self) -> None:
        """Remember this menu for `back`/`top`. Re-entering a menu already on the stack unwinds to it, so a
        caller going round in circles never grows the stack."""
        ref = self.ref
        if ref in self.menu_stack:
            del self.menu_stack[self.menu_stack.index(ref) + 1 :]
        else:
            self.menu_stack.append(ref)

    def menu_back(self) -> str | None:
        if len(self.menu_stack) >= 2:
            return self.menu_stack[-2]
        return None

    def menu_top(self) -> str | None:
        return self.menu_stack[0] if self.menu_stack else None

    # -- helpers ----------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def base_dir(self) -> Path | None:
        return self.base_dirs.get(self.flow.name, self.settings.base_dir)

    def qualify(self, ref: str) -> str:
        """`node` -> `flow:node` in the current flow."""
        return ref if ":" in ref else f"{self.flow.name}:{ref}"

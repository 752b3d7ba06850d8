"""What a simulated caller does, as data: press digits, let a time-out pass, hang up; optionally at a moment.

Rules for this file:
- A caller is an ordered list of `Step`s. By default a press comes when the IVR has finished its prompts and
  waits for a digit (a caller who listens to the whole menu). `barge_in` presses during the next prompt that
  accepts digits; `at` (seconds after the answer) and `after_prompt` (once that prompt id has been heard) press
  at that moment, interrupting whatever plays then if it accepts digits. The digits of one step follow each
  other at once (a multi-digit option or an account number); between two steps the IVR must listen afresh.
- `wait` lets one listen time out (no input). `hangup` hangs up when it is the caller's turn (the next digit
  wait, or the end of a voicemail message), or exactly at `at` / after `after_prompt` wherever the call is then.
- The `--digits` shorthand (`1,2w3#h`) and the YAML form of test cases both produce these steps, so `simulate`
  and `test-flows` mean the same thing by the same words. Nothing here touches a channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


class ScriptSyntaxError(ValueError):
    """A `--digits` script that cannot be read; the message shows the syntax."""


@dataclass(frozen=True)
class Step:
    action: Literal["press", "wait", "hangup"]
    digits: str = ""
    at: float | None = None  # seconds after answer; the step waits for that moment
    after_prompt: str | None = None  # a prompt id; the step waits until it has been heard
    barge_in: bool = False  # press during the next prompt instead of after it

    def describe(self) -> str:
        when = f" at {self.at:g}s" if self.at is not None else ""
        when += f" after prompt {self.after_prompt}" if self.after_prompt else ""
        if self.action == "press":
            return f"press {self.digits}{when}" + (" during the prompt" if self.barge_in else "")
        return f"{self.action}{when}"


SYNTAX_HELP = (
    "digits script: digits 0-9 * # are pressed together when the IVR waits for input; ',' or ' ' separates "
    "entries (each at a new prompt); 'w' lets one time-out pass; 'h' hangs up; '!' before digits presses them "
    "during the prompt (barge-in); '@12s' after an entry makes it happen 12 s after the answer "
    "(e.g. 1,2w3  or  !1,123456#  or  w,w,h  or  h@30s)"
)
_TOKEN = re.compile(
    r"\s*(?:(?P<barge>!)?(?P<digits>[0-9*#]+)|(?P<wait>[wW])|(?P<hangup>[hH]))(?:@(?P<at>\d+(?:\.\d+)?)s?)?\s*"
)


def parse_digits(script: str) -> list[Step]:
    """`1,2w3` -> press 1; press 2; wait; press 3. See SYNTAX_HELP."""
    steps: list[Step] = []
    pos = 0
    text = script.strip()
    while pos < len(text):
        if text[pos] in ", ":
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ScriptSyntaxError(f"cannot read {text[pos:]!r} in {script!r}; {SYNTAX_HELP}")
        at = float(match.group("at")) if match.group("at") else None
        if match.group("digits"):
            steps.append(Step("press", match.group("digits"), at=at, barge_in=bool(match.group("barge"))))
        elif match.group("wait"):
            steps.append(Step("wait", at=at))
        else:
            steps.append(Step("hangup", at=at))
        pos = match.end()
    return steps


def format_steps(steps: list[Step]) -> str:
    """The inverse of `parse_digits` for steps without `after_prompt` (used in messages)."""
    parts = []
    for step in steps:
        token = {"press": ("!" if step.barge_in else "") + step.digits, "wait": "w", "hangup": "h"}[step.action]
        if step.at is not None:
            token += f"@{step.at:g}s"
        if step.after_prompt:
            token += f"(after {step.after_prompt})"
        parts.append(token)
    return ",".join(parts)

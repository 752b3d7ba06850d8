"""`menu`: greeting, options by digits, repeat/back/top, direct dial by pattern, timeouts and retry counters.

Rules (each one answers a common complaint about IVR menus):
- Barge-in: every key interrupts the greeting, so a caller who knows the menu never waits, and a wrong key is
  answered at once with the invalid prompt instead of being swallowed.
- Multi-digit choices wait `inter_digit_timeout` only while more digits could still make a valid choice; a
  choice that cannot grow is taken immediately, and `#` ends a choice early (unless an option uses it).
- No input and invalid input have separate counters, prompts, retries and exhaustion targets. Retry prompts are
  played before the greeting is offered again, so the caller always hears the options again.
- `back` returns to the menu before this one (menu stack), `top` to the first menu of the call; with no earlier
  menu they repeat this one, so a caller is never stranded.
- An exhaustion target may be a menu verb (`exhausted: back`); with no earlier menu (`back` or `top` from the
  first menu) the call ends as if there were no target. Exhausted retries without a target end the call
  (outcome "contained"); the validator warns about it.
"""

from __future__ import annotations

import re
from typing import Any

from ivr.flow.compiled import MENU_VERBS, MenuNode, MenuOption, Retry
from ivr.flow.context import ALL_DIGITS, CallContext, EngineError, Finish, Goto
from ivr.flow.nodes import register
from ivr.metric_batch import BATCH

NONE, PREFIX, FULL, FULL_OPEN = "none", "prefix", "full", "full_open"
_WILD = (".", "!")


def pattern_tokens(pattern: str) -> list[str]:
    """Asterisk extension pattern -> tokens: a set of allowed characters, or "." / "!" (the rest)."""
    text = pattern[1:] if pattern.startswith("_") else pattern
    tokens: list[str] = []
    i = 0
    classes = {"X": "0123456789", "Z": "123456789", "N": "23456789"}
    while i < len(text):
        c = text[i].upper()
        if c in classes:
            tokens.append(classes[c])
        elif c in _WILD:
            tokens.append(c)
            break  # Asterisk: a wildcard matches the rest of the number
        elif c == "[":
            end = text.find("]", i)
            if end < 0:
                raise EngineError(f"direct_dial pattern {pattern!r}: '[' without ']'")
            chars = ""
            body = text[i + 1 : end]
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    chars += "".join(chr(k) for k in range(ord(body[j]), ord(body[j + 2]) + 1))
                    j += 3
                else:
                    chars += body[j]
                    j += 1
            tokens.append(chars)
            i = end
        elif re.fullmatch(r"[0-9*#]", c):
            tokens.append(c)
        else:
            raise EngineError(f"direct_dial pattern {pattern!r}: {c!r} is not a digit, X, Z, N, [..], . or !")
        i += 1
    return tokens


def pattern_state(tokens: list[str], digits: str) -> str:
    """How `digits` relate to the pattern: none, prefix (needs more), full, or full_open (full, may grow)."""
    i = 0
    for _position, char in enumerate(digits):
        if i >= len(tokens):
            return NONE
        token = tokens[i]
        if token in _WILD:
            return FULL_OPEN
        if char not in token:
            return NONE
        i += 1
    if i == len(tokens):
        return FULL
    if tokens[i] == "!":
        return FULL_OPEN
    return PREFIX


def _can_grow(node: MenuNode, tokens: list[str] | None, digits: str) -> bool:
    if any(key != digits and key.startswith(digits) for key in node.options):
        return True
    return tokens is not None and pattern_state(tokens, digits) in (PREFIX, FULL_OPEN)


async def _choose(node: MenuNode, ctx: CallContext, first: str, tokens: list[str] | None) -> str:
    """Collect the rest of a multi-digit choice after `first`."""
    digits = first
    while _can_grow(node, tokens, digits):
        digit = await ctx.next_digit(node.inter_digit_timeout)
        if digit is None:
            break
        if digit == "#" and not _can_grow(node, tokens, digits + "#") and digits + "#" not in node.options:
            break  # "#" = done
        digits += digit
    return digits


def _exhausted(ctx: CallContext, retry: Retry, why: str, count: int) -> Goto | Finish:
    detail = f"{why} {count} times"
    target = retry.exhausted
    if target in MENU_VERBS:  # `exhausted: back` returns to the previous menu; repeat re-enters with fresh counters
        verb = target
        target = {"back": ctx.menu_back, "top": ctx.menu_top}.get(verb, lambda: ctx.ref)()
        detail += f" -> {verb}"
        if target is None or (verb != "repeat" and target == ctx.ref):
            # `top` from the first menu would re-enter it with fresh counters: a loop only the step budget ends
            return Finish(None, "exhausted", detail + " (no earlier menu)", "hangup:exhausted")
    if target:
        return Goto(target, "exhausted", detail)
    return Finish(None, "exhausted", detail + "; no exhausted target", "hangup:exhausted")


@register("menu")
async def run(node: MenuNode, ctx: CallContext) -> Goto | Finish:
    ctx.enter_menu()
    tokens = pattern_tokens(node.direct_dial.pattern) if node.direct_dial else None
    no_input = invalid = 0
    before: list[str] = []
    while True:
        digit = await ctx.offer(before + list(node.greeting), ALL_DIGITS)
        if digit is None:
            digit = await ctx.next_digit(node.timeout)
        if digit is None:
            no_input += 1
            ctx.emit("no_input", f"no input ({no_input} of {node.no_input.retries + 1})", count=no_input)
            if no_input > node.no_input.retries:
                return _exhausted(ctx, node.no_input, "no input", no_input)
            before = list(node.no_input.prompts)
            continue
        choice = await _choose(node, ctx, digit, tokens)
        option: Any = node.options.get(choice)
        if option is None and tokens is not None and pattern_state(tokens, choice) in (FULL, FULL_OPEN):
            assert node.direct_dial is not None
            ctx.set_var("dialed", choice)
            BATCH.record("MENU_CHOICES", (ctx.flow.name, ctx.node_id, "direct_dial"))
            ctx.emit("choice", f"direct dial {choice}", choice=choice, option="direct_dial")
            return Goto(node.direct_dial.target, "valid", f"direct dial {choice}")
        if option is None:
            invalid += 1
            ctx.emit(
                "invalid",
                f"invalid choice {choice!r} ({invalid} of {node.invalid.retries + 1})",
                choice=choice,
                count=invalid,
            )
            if invalid > node.invalid.retries:
                return _exhausted(ctx, node.invalid, "invalid input", invalid)
            before = list(node.invalid.prompts)
            continue
        BATCH.record("MENU_CHOICES", (ctx.flow.name, ctx.node_id, choice))
        if isinstance(option, str):
            target = option
        elif isinstance(option, MenuOption):
            target = option.goto
        else:  # an inline node: it lives at "<menu>.<digits>"
            target = f"{ctx.flow.name}:{ctx.node_id}.{choice}"
        if target in MENU_VERBS:  # `'9': back` or `'9': {goto: back, label: ...}`
            verb = target
            ctx.emit("choice", f"{choice} -> {verb}", choice=choice, option=verb)
            back_to = {"back": ctx.menu_back, "top": ctx.menu_top}.get(verb, lambda: None)()
            if back_to is None or back_to == ctx.ref:
                ctx.tick()  # a caller pressing repeat forever still hits the step budget
                before = []
                continue
            return Goto(back_to, "valid", f"option {choice}: {verb}")
        label = option.label if isinstance(option, MenuOption) and option.label else target
        ctx.emit("choice", f"{choice} -> {label}", choice=choice, target=target)
        return Goto(target, "valid", f"option {choice}")

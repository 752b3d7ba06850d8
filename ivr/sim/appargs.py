"""How Asterisk cuts a dialplan application's data into arguments, options and goto locations (sans-IO).

Rules for this file:
- `separate_args()` is main/app.c `__ast_app_separate_args(..., remove_chars=1)`, what AST_STANDARD_APP_ARGS runs
  for nearly every application (Dial, Queue, Park, MixMonitor, Playback, MusicOnHold ...): the delimiter splits only
  outside parentheses, square brackets and double quotes; double quotes toggle quoting and are removed; a backslash
  is removed and the character after it is taken literally (an escaped comma, quote or parenthesis does not count).
  An unmatched `)` or `]` is ignored.  `"a,"` has two arguments (the second empty), `""` has none.  When the app
  declares fewer arguments than the text holds, the last one is the rest of the text, *not* unescaped.
- `parse_options()` is `ast_app_parse_options`: one letter per option, an option may carry `(argument)` up to the
  matching parenthesis; backslashes outside a leading-quoted argument are removed.  Later letters win.
- `parse_goto()` is `pbx_parseable_goto`'s reading of `[[context,]exten,]priority` (ast_async_parseable_goto, used
  by Park's c() option): missing or empty parts keep the channel's current context/extension, parts after the
  third are ignored, `+N`/`-N` are relative.  A label or a bad priority raises `UnmodelledGoto` (Asterisk would
  look the label up in a dialplan the simulator does not have, or log a warning and not move the channel).
Nothing here touches a channel: these functions only read text.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GotoTarget", "UnmodelledGoto", "parse_goto", "parse_options", "separate_args"]


class UnmodelledGoto(Exception):
    """A goto location the simulator cannot resolve (a priority label, an empty or bad priority)."""


def separate_args(data: str, delim: str = ",", max_args: int | None = None) -> list[str]:
    """Split `data` as AST_STANDARD_APP_ARGS does; `max_args` is how many AST_APP_ARGs the application declares."""
    if max_args is not None and max_args < 1:
        raise ValueError("max_args must be at least 1 (the number of arguments the application declares)")
    args: list[str] = []
    i, n = 0, len(data)
    paren = bracket = 0
    quote = False
    ended_on_delim = False
    while i < n and (max_args is None or len(args) < max_args - 1):
        cur: list[str] = []
        ended_on_delim = False
        while i < n:
            c = data[i]
            if c == "(":
                paren += 1
            elif c == ")":
                paren = max(0, paren - 1)
            elif c == "[":
                bracket += 1
            elif c == "]":
                bracket = max(0, bracket - 1)
            elif c == '"' and delim != '"':
                quote = not quote
                i += 1
                continue  # the quote itself is removed
            elif c == "\\":
                # the backslash goes; the next character is kept without being looked at
                if i + 1 < n:
                    cur.append(data[i + 1])
                i += 2
                continue
            elif c == delim and not paren and not quote and not bracket:
                i += 1
                ended_on_delim = True
                break
            cur.append(c)
            i += 1
        args.append("".join(cur))
    if i < n:
        args.append(data[i:])  # the app's last argument: the rest, as it is
    elif ended_on_delim:
        args.append("")  # "a," -> ["a", ""]
    return args


def parse_options(text: str) -> dict[str, str | None]:
    """`ast_app_parse_options`: {"s": None, "t": "45", "c": "ivr-park-comeback,s,1"} for `st(45)c(...)`."""
    out: dict[str, str | None] = {}
    i, n = 0, len(text)
    while i < n:
        letter = text[i]
        i += 1
        if i < n and text[i] == "(":
            i += 1
            quoted_arg = i < n and text[i] == '"'
            paren, quote = 1, False
            arg: list[str] = []
            while i < n:
                c = text[i]
                if c == "(" and not quote:
                    paren += 1
                elif c == ")" and not quote:
                    paren -= 1
                    if paren == 0:
                        break
                elif c == '"' and quoted_arg:
                    quote = not quote  # quotes around the argument are removed
                    i += 1
                    continue
                elif c == "\\":
                    if not quote or (i + 1 < n and text[i + 1] == '"'):
                        i += 1  # the backslash goes, the next character stays as it is
                        if i < n:
                            arg.append(text[i])
                        i += 1
                        continue
                    arg.append(c)  # inside quotes a backslash stays with its character
                    i += 1
                    if i < n:
                        arg.append(text[i])
                    i += 1
                    continue
                arg.append(c)
                i += 1
            i += 1  # past the closing parenthesis (or the end)
            out[letter] = "".join(arg)
        else:
            out[letter] = None
    return out


@dataclass(frozen=True)
class GotoTarget:
    context: str
    exten: str
    priority: int


def parse_goto(text: str, context: str, exten: str, priority: int = 1) -> GotoTarget:
    """`[[context,]exten,]priority` for a channel now at context/exten/priority (see the rules above)."""
    if not text:
        raise UnmodelledGoto("empty goto location; give [[context,]exten,]priority, e.g. c(my-context,s,1)")
    parts = text.split(",")
    if len(parts) == 1:
        new_context, new_exten, prio = "", "", parts[0]
    elif len(parts) == 2:
        new_context, new_exten, prio = "", parts[0], parts[1]
    else:
        new_context, new_exten, prio = parts[0], parts[1], parts[2]
    prio = prio.strip()
    sign = 0
    if prio[:1] in "+-" and prio:
        sign, prio = (1 if prio[0] == "+" else -1), prio[1:]
    number = (priority + sign * int(prio) if sign else int(prio)) if prio.isdigit() else 0
    if number < 1:
        raise UnmodelledGoto(
            f"goto {text[:80]!r}: the priority must be a number > 0 or +N/-N (labels are not "
            "modelled by the simulator); give [[context,]exten,]<number>"
        )
    return GotoTarget(new_context or context, new_exten or exten, number)

"""`dialplans/extensions_ivr.conf` read the way Asterisk reads it: the subset of extensions.conf the shipped file
uses, so the simulator runs the file itself and a change to it cannot drift away from the tests.

Rules for this file:
- Syntax (pbx_config.c): `[context]`, `exten => <pattern>,<priority>,<App>(<data>)`, `same => n,<App>(<data>)`,
  `;` comments (`\\;` is a literal semicolon), blank lines. A priority is a number or `n`. Anything else (labels,
  `include =>`, `#include`, switches, hints) raises `DialplanError` naming the line: the simulator refuses what it
  cannot run rather than running something else.
- Patterns (`_X.`, `_+X.`, `_[-A-Za-z0-9_].`): X Z N, `[...]` sets with ranges, `.` one or more, `!` zero or more;
  a literal extension wins over a pattern, patterns are tried in file order (enough for this file).
- Expansion (pbx_substitute_variables_helper): `${VAR}`, `${VAR:offset[:length]}`, `${FUNC(args)}` for FILTER,
  CUT, IF, LEN and the channel's own functions (CALLERID, CHANNEL ...), `$[...]` with `|`, `&`, `=`, `!=`, `<`,
  `>`, parentheses, quoted strings and words; inner `${}`/`$[]` are expanded first, as Asterisk does. An unknown
  function raises `DialplanError` (Asterisk would log "Function not registered" and go on with an empty value).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "dialplans" / "extensions_ivr.conf"

Lookup = Callable[[str], "str | None"]  # a variable or function text -> its value (None: unset)


class DialplanError(ValueError):
    """The file uses something this model does not interpret."""


@dataclass(frozen=True)
class ConfPriority:
    number: int
    app: str
    data: str  # unexpanded, as written
    line: int


@dataclass(frozen=True)
class ConfExtension:
    pattern: str  # as written: "s", "fallback", "_X."
    priorities: tuple[ConfPriority, ...]

    @property
    def regex(self) -> str:
        return pattern_regex(self.pattern)

    def matches(self, exten: str) -> bool:
        return re.fullmatch(self.regex, exten) is not None


Contexts = dict[str, tuple[ConfExtension, ...]]

_LINE = re.compile(r"(exten|same)\s*=>\s*(.*)$")
_APP = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$", re.S)


def _strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line.startswith("\\;", i):
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse(text: str) -> Contexts:
    """The contexts of an extensions.conf text (the subset above)."""
    contexts: dict[str, list[tuple[str, list[ConfPriority]]]] = {}
    context: str | None = None
    current: tuple[str, list[ConfPriority]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1].strip()
            contexts.setdefault(context, [])
            current = None
            continue
        m = _LINE.fullmatch(line)
        if m is None or context is None:
            raise DialplanError(f"line {number}: not modelled: {line!r}")
        kind, rest = m.groups()
        if kind == "exten":
            pattern, _, rest = rest.partition(",")
            current = (pattern.strip(), [])
            contexts[context].append(current)
        elif current is None:
            raise DialplanError(f"line {number}: `same =>` without an extension")
        prio, _, app_text = rest.partition(",")
        prio = prio.strip()
        steps = current[1]
        if prio == "n":
            if not steps:
                raise DialplanError(f"line {number}: priority n without a priority 1")
            value = steps[-1].number + 1
        elif prio.isdigit():
            value = int(prio)
        else:
            raise DialplanError(f"line {number}: priority {prio!r} (labels are not modelled)")
        am = _APP.fullmatch(app_text.strip())
        if am is None:
            raise DialplanError(f"line {number}: application {app_text!r}")
        steps.append(ConfPriority(value, am.group(1), am.group(2) or "", number))
    out: Contexts = {}
    for name, extens in contexts.items():
        checked = []
        for pattern, steps in extens:
            if [s.number for s in steps] != list(range(1, len(steps) + 1)):
                raise DialplanError(f"[{name}] {pattern}: priorities must run 1, 2, 3 ... (got gaps)")
            checked.append(ConfExtension(pattern, tuple(steps)))
        out[name] = tuple(checked)
    return out


def load(path: Path = SHIPPED) -> Contexts:
    return parse(path.read_text(encoding="utf-8"))


def find(contexts: Contexts, context: str, exten: str) -> ConfExtension | None:
    """Asterisk's choice: a literal extension first, then the first pattern that matches."""
    extens = contexts.get(context, ())
    for ext in extens:
        if not ext.pattern.startswith("_") and ext.pattern == exten:
            return ext
    for ext in extens:
        if ext.pattern.startswith("_") and ext.matches(exten):
            return ext
    return None


def pattern_regex(pattern: str) -> str:
    if not pattern.startswith("_"):
        return re.escape(pattern)
    out, i, body = [], 0, pattern[1:]
    while i < len(body):
        c = body[i]
        if c == "[":
            j = body.index("]", i)
            inner = body[i + 1 : j]
            out.append("[" + inner.replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = j + 1
            continue
        out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(c.upper(), re.escape(c)))
        i += 1
    return "".join(out)


# -- expansion ---------------------------------------------------------------------------------------------------
def _close(text: str, start: int, opening: str, closing: str) -> int:
    """Index just past the bracket closing the one opened at text[start] (nested ${ } and $[ ] counted)."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise DialplanError(f"unbalanced {opening}{closing} in {text!r}")


def expand(text: str, lookup: Lookup) -> str:
    """Substitute ${...} and $[...] in `text` (inner ones first)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("${", i):
            end = _close(text, i + 1, "{", "}")
            out.append(_variable(expand(text[i + 2 : end - 1], lookup), lookup))
            i = end
        elif text.startswith("$[", i):
            end = _close(text, i + 1, "[", "]")
            out.append(evaluate(expand(text[i + 2 : end - 1], lookup)))
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _variable(inner: str, lookup: Lookup) -> str:
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", inner, re.S)
    if m:
        return _function(m.group(1).upper(), m.group(2), lookup)
    name, _, cut = inner.partition(":")
    value = lookup(name) or ""
    if not cut:
        return value
    offset_text, _, length_text = cut.partition(":")
    offset = int(offset_text or 0)
    value = value[offset:] if offset >= 0 else value[offset:]
    return value[: int(length_text)] if length_text else value


def filter_chars(allowed: str, text: str) -> str:
    """FILTER(allowed,text): `a-z` ranges, other characters literal (a leading `-` is the dash)."""
    chars: set[str] = set()
    i = 0
    while i < len(allowed):
        if i + 2 < len(allowed) and allowed[i + 1] == "-":
            chars.update(chr(c) for c in range(ord(allowed[i]), ord(allowed[i + 2]) + 1))
            i += 3
        else:
            chars.add(allowed[i])
            i += 1
    return "".join(c for c in text if c in chars)


def _function(name: str, args: str, lookup: Lookup) -> str:
    if name == "FILTER":
        allowed, _, text = args.partition(",")
        return filter_chars(allowed, text)
    if name == "CUT":
        parts = args.split(",")
        if len(parts) != 3:
            raise DialplanError(f"CUT({args}): CUT(var,delimiter,field) is modelled")
        pieces = (lookup(parts[0]) or "").split(parts[1] or "-")
        field_no = int(parts[2])
        return pieces[field_no - 1] if 0 < field_no <= len(pieces) else ""
    if name == "IF":
        condition, _, branches = args.partition("?")
        yes, _, no = branches.partition(":")
        return yes if is_true(condition) else no
    if name == "LEN":
        return str(len(args))
    value = lookup(f"{name}({args})")
    if value is None and name not in ("CALLERID", "CHANNEL", "CONNECTEDLINE", "GLOBAL"):
        raise DialplanError(f"function {name}() is not modelled")
    return value or ""


def is_true(value: str) -> bool:
    """pbx_checkcondition: empty and numeric zero are false."""
    value = value.strip()
    if not value:
        return False
    try:
        return float(value) != 0
    except ValueError:
        return True


_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|!=|<=|>=|[()|&=<>]|[^\s()|&=<>!"]+)')


def evaluate(expression: str) -> str:
    """$[...] for the operators the file uses; "1"/"0" for comparisons and logic."""
    tokens = []
    pos = 0
    text = expression.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise DialplanError(f"$[{expression}]: cannot read {text[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    parser = _Expr(tokens, expression)
    value = parser.or_expr()
    if parser.i != len(tokens):
        raise DialplanError(f"$[{expression}]: unexpected {tokens[parser.i]!r}")
    return value


class _Expr:
    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens, self.i, self.source = tokens, 0, source

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def or_expr(self) -> str:
        left = self.and_expr()
        while self._peek() == "|":
            self.i += 1
            right = self.and_expr()
            left = "1" if is_true(left) or is_true(right) else "0"
        return left

    def and_expr(self) -> str:
        left = self.comparison()
        while self._peek() == "&":
            self.i += 1
            right = self.comparison()
            left = "1" if is_true(left) and is_true(right) else "0"
        return left

    def comparison(self) -> str:
        left = self.atom()
        op = self._peek()
        if op in ("=", "!=", "<", ">", "<=", ">="):
            self.i += 1
            right = self.atom()
            return "1" if _compare(left, op, right) else "0"
        return left

    def atom(self) -> str:
        token = self._peek()
        if token is None:
            raise DialplanError(f"$[{self.source}]: ends early")
        self.i += 1
        if token == "(":
            value = self.or_expr()
            if self._peek() != ")":
                raise DialplanError(f"$[{self.source}]: missing )")
            self.i += 1
            return value
        if token.startswith('"'):
            return token[1:-1]
        return token


def _compare(left: str, op: str, right: str) -> bool:
    try:
        a: float | str = float(left)
        b: float | str = float(right)
    except ValueError:
        a, b = left, right
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,  # type: ignore[operator]
        ">": a > b,  # type: ignore[operator]
        "<=": a <= b,  # type: ignore[operator]
        ">=": a >= b,  # type: ignore[operator]
    }[op]


def goto_target(data: str, context: str, exten: str) -> tuple[str, str, int]:
    """Goto()'s [[context,]exten,]priority after expansion."""
    parts = [p.strip() for p in data.split(",")]
    if len(parts) == 3:
        where = (parts[0], parts[1], parts[2])
    elif len(parts) == 2:
        where = (context, parts[0], parts[1])
    else:
        where = (context, exten, parts[0])
    if not where[2].isdigit():
        raise DialplanError(f"Goto({data}): only numeric priorities are modelled")
    return where[0], where[1], int(where[2])


def goto_if(data: str, context: str, exten: str) -> tuple[str, str, int] | None:
    """GotoIf(condition?[true][:false]) after expansion: the location, or None (go on)."""
    condition, _, branches = data.partition("?")
    yes, _, no = branches.partition(":")
    chosen = yes if is_true(condition) else no
    return goto_target(chosen, context, exten) if chosen.strip() else None

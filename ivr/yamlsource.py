"""YAML with positions, and configuration problems that say where they are and what to do.

Rules for this file:
- Loading keeps the line and column (1-based) of every mapping key and every value, keyed by the path of keys and
  list indexes from the document root. Nothing else in the service parses YAML.
- Mapping keys are always strings, exactly as written (`1:` is the key "1", `01:` is "01", `no:` is "no"), so
  menu digits and language codes need no quotes.
- Values follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only true/false are booleans (a language `no`
  stays Norwegian), `0123` and `8:30` stay strings (no octal, no base-60). Dates (2026-12-24) are dates.
- A `Problem` always carries file, line, column, a message and a hint (what to do); `ConfigError` carries all
  problems found, so a user fixes everything in one round.
- pydantic errors become problems here (`problems_from_validation`), mapped back to the line of the offending key.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Severity = Literal["error", "warning"]
PathKey = tuple[Any, ...]


@dataclass(frozen=True, order=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    severity: Severity = "error"
    code: str = "schema"  # short stable identifier (schema, syntax, unknown-key, undefined-target, ...)
    path: PathKey = field(default=(), compare=False)  # keys from the document root, when known

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "path": ".".join(str(p) for p in self.path),
        }


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists every error found (and any warnings seen on the way)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{len(errors)} configuration error(s)"
        super().__init__(head + ":\n" + "\n".join(p.format() for p in errors))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class PositionMap:
    """Path of keys -> (mark of the key, mark of the value)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._keys: dict[PathKey, Mark] = {}
        self._values: dict[PathKey, Mark] = {}

    def add(self, path: PathKey, key: Mark | None, value: Mark) -> None:
        if key is not None:
            self._keys[path] = key
        self._values[path] = value

    def key(self, path: Sequence[Any]) -> Mark:
        """Where the key of `path` is written (the nearest written ancestor if `path` is not in the file)."""
        path = tuple(path)
        while path:
            if path in self._keys:
                return self._keys[path]
            if path in self._values:
                return self._values[path]
            path = path[:-1]
        return self._values.get((), Mark(1, 1))

    def value(self, path: Sequence[Any]) -> Mark:
        """Where the value of `path` starts (the nearest written ancestor if `path` is not in the file)."""
        path = tuple(path)
        while path:
            if path in self._values:
                return self._values[path]
            path = path[:-1]
        return self._values.get((), Mark(1, 1))

    def __contains__(self, path: Sequence[Any]) -> bool:
        return tuple(path) in self._values

    def problem(
        self,
        path: Sequence[Any],
        message: str,
        hint: str = "",
        *,
        severity: Severity = "error",
        code: str = "schema",
        at_key: bool = True,
    ) -> Problem:
        mark = self.key(path) if at_key else self.value(path)
        return Problem(self.file, mark.line, mark.column, message, hint, severity, code, tuple(path))


@dataclass
class YamlDocument:
    data: Any
    positions: PositionMap
    file: str
    text: str = field(repr=False, default="")


# --- the loader --------------------------------------------------------------------------------------------


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.2 core-schema scalars (see the file header)."""


_Resolver.yaml_implicit_resolvers = {}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
        r"|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:timestamp", re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), list("0123456789")
)


class _PositionLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    loader: _PositionLoader, node: yaml.Node, path: PathKey, positions: PositionMap, problems: list[Problem]
) -> Any:
    """Construct the value of `node`, recording positions. Keys are taken as written (see the file header)."""
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                problems.append(
                    Problem(
                        positions.file,
                        *_astuple(_mark(key_node)),
                        "a mapping key must be a plain name or number",
                        "write the key on one line, e.g. `sales:` or `'1':`",
                        code="syntax",
                    )
                )
                continue
            child = path + (key,)
            if key in result:
                problems.append(
                    Problem(
                        positions.file,
                        *_astuple(_mark(key_node)),
                        f"duplicate key {key!r}",
                        "remove one of them; YAML would silently keep only the last",
                        code="duplicate-key",
                    )
                )
            positions.add(child, _mark(key_node), _mark(value_node))
            result[key] = _build(loader, value_node, child, positions, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = path + (index,)
            positions.add(child, None, _mark(item))
            items.append(_build(loader, item, child, positions, problems))
        return items
    return loader.construct_object(node, deep=True)


def _astuple(mark: Mark) -> tuple[int, int]:
    return mark.line, mark.column


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document. Raises `ConfigError` for syntax errors (with their position) and duplicate keys."""
    positions = PositionMap(file)
    problems: list[Problem] = []
    loader = _PositionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            data: Any = None
        else:
            positions.add((), None, _mark(node))
            data = _build(loader, node, (), positions, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = str(exc.problem or exc.context or "invalid YAML")
        raise ConfigError(
            [Problem(file, line, column, f"YAML syntax error: {message}", _syntax_hint(message), code="syntax")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            [Problem(file, 0, 0, f"YAML error: {exc}", "check the file is valid YAML", code="syntax")]
        ) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return YamlDocument(data, positions, file, text)


def _syntax_hint(message: str) -> str:
    if "found character '\\t'" in message or "\\t" in message:
        return "YAML does not allow tabs for indentation; use spaces"
    if "mapping values are not allowed" in message:
        return "a value containing ': ' must be quoted, or the indentation is off"
    if "alias" in message or "expected alphabetic or numeric character" in message:
        return "quote values starting with * or & (e.g. '*'), they are YAML anchors/aliases otherwise"
    if "expected <block end>" in message or "indentation" in message:
        return "check the indentation: keys of one mapping must start in the same column"
    return "check quoting and indentation around this position"


def load_yaml(path: str | Path, display: str | None = None) -> YamlDocument:
    """Read and parse a YAML file; `display` is the name used in problems (default: the path as given)."""
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(name, 0, 0, "file not found", "check the path", code="io")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [Problem(name, 0, 0, f"cannot read the file: {exc}", "the file must be readable UTF-8 text", code="io")]
        ) from None
    return parse_yaml(text, name)


# --- pydantic errors -> problems ---------------------------------------------------------------------------

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list (- item lines)",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
}
# pydantic error types that only say "this is the wrong kind of value" (merged per location into one problem).
_WRONG_TYPE = frozenset(_TYPE_WORDS)


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, typing.ForwardRef):
        return None
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp] if tp is not None else []


def _tag_of(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    if info is not None and typing.get_origin(info.annotation) is Literal:
        args = typing.get_args(info.annotation)
        return str(args[0]) if len(args) == 1 else None
    return None


def _field_by_key(model: type[BaseModel], key: Any) -> Any:
    for name, info in model.model_fields.items():
        if key == name or key == info.alias:
            return info.annotation
    return None


def _descend(tp: Any, key: Any) -> tuple[Any, bool]:
    """Type found under `key` inside a value of type `tp`; the bool says whether `key` is a data key (False for the
    union-branch names pydantic puts into `loc`, such as a node kind or `str`)."""
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            if _tag_of(member) == key and len(_members(tp)) > 1:
                return member, False
            found = _field_by_key(member, key)
            if found is not None:
                return found, True
        origin = typing.get_origin(member)
        if origin is dict and not isinstance(key, int):
            return typing.get_args(member)[1], True
        if origin is list and isinstance(key, int):
            return typing.get_args(member)[0], True
    # A union branch label (`str`, `MenuOption`, `function-after[...]`): stay on the same data.
    members = _members(tp)
    for member in members:
        if getattr(member, "__name__", None) == key:
            return member, False
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
        return None, True  # a key the model does not have (extra_forbidden)
    return tp, False


def _allowed_keys(tp: Any) -> list[str]:
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return [info.alias or name for name, info in member.model_fields.items()]
    return []


Branches = tuple[tuple[PathKey, str], ...]


def _resolve_loc(root: type[BaseModel], loc: Sequence[Any], base: PathKey) -> tuple[PathKey, Any, Any, Branches]:
    """pydantic `loc` -> (data path, type at the parent of the last element, type at the last element, the union
    branches taken: (data path of the union, branch label), the first label per data path)."""
    path = base
    tp: Any = root
    parent: Any = root
    branches: dict[PathKey, str] = {}
    for item in loc:
        new_tp, is_key = _descend(tp, item)
        if is_key:
            parent = tp
            path = path + (item,)
        elif len(_members(tp)) > 1:
            branches.setdefault(path, str(item))
        tp = new_tp
    return path, parent, tp, tuple(branches.items())


def _value_at(data: Any, path: PathKey) -> Any:
    for key in path:
        if (
            isinstance(data, dict)
            and key in data
            or isinstance(data, list)
            and isinstance(key, int)
            and key < len(data)
        ):
            data = data[key]
        else:
            return None
    return data


def _pick_branches(
    entries: list[tuple[PathKey, Any, Any, Branches, ErrorDetails]], data: Any
) -> set[tuple[PathKey, str]]:
    """Where a value could match several union branches and all failed, keep the errors of the branch the author
    meant: a mapping with `type` is an inline node, a mapping without it is the other mapping form; else the branch
    with the fewest errors."""
    # place -> label -> [errors, errors that only say "wrong type"]
    by_place: dict[PathKey, dict[str, list[int]]] = {}
    for entry in entries:
        for place, label in entry[3]:
            counts = by_place.setdefault(place, {}).setdefault(label, [0, 0])
            counts[0] += 1
            counts[1] += entry[4]["type"] in _WRONG_TYPE
    chosen: set[tuple[PathKey, str]] = set()
    for place, labels in by_place.items():
        if all(errors == wrong for errors, wrong in labels.values()):
            # No branch accepts the value's type at all: keep them all ("expected text or a mapping").
            chosen.update((place, label) for label in labels)
            continue
        candidates = [label for label, (errors, wrong) in labels.items() if errors > wrong]
        value = _value_at(data, place) if data is not None else None
        if isinstance(value, dict):
            tagged = [label for label in candidates if label.startswith("tagged-union")]
            untagged = [label for label in candidates if not label.startswith("tagged-union")]
            candidates = (tagged if "type" in value else untagged) or candidates
        chosen.add((place, min(candidates, key=lambda label: labels[label][0])))
    return chosen


def _split_message(msg: str) -> tuple[str, str]:
    """Our validators write 'what is wrong; what to do'. Split them into message and hint."""
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if "; " in msg:
        head, hint = msg.split("; ", 1)
        return head, hint
    return msg, ""


def problems_from_validation(
    exc: ValidationError, model: type[BaseModel], positions: PositionMap, base: PathKey = (), data: Any = None
) -> list[Problem]:
    """Turn a pydantic ValidationError (validating `data` at `base` with `model`) into located problems.

    Union noise is removed: where one data location has a precise error (a bad pattern, an unknown key), the
    "should be a valid string/dictionary" errors of the other union branches are dropped."""
    raw: list[tuple[PathKey, Any, Any, Branches, ErrorDetails]] = []
    for err in exc.errors():
        path, parent, tp, branches = _resolve_loc(model, err["loc"], base)
        raw.append((path, parent, tp, branches, err))
    chosen = _pick_branches(raw, data)
    entries = [
        (path, parent, tp, err)
        for path, parent, tp, branches, err in raw
        if all(branch in chosen for branch in branches)
    ]
    precise_paths = [e[0] for e in entries if e[3]["type"] not in _WRONG_TYPE]
    problems: list[Problem] = []
    seen: set[tuple[PathKey, str]] = set()
    type_errors: dict[PathKey, list[ErrorDetails]] = {}
    for path, parent, tp, err in entries:
        kind = err["type"]
        if kind in _WRONG_TYPE:
            # Dropped when a precise error sits at the same place or below (another union branch explains it).
            if any(p[: len(path)] == path for p in precise_paths):
                continue
            type_errors.setdefault(path, []).append(err)
            continue
        problem = _problem_for(kind, err, path, parent, tp, positions)
        if (path, problem.message) not in seen:
            seen.add((path, problem.message))
            problems.append(problem)
    for path, errs in type_errors.items():
        expected = []
        for err in errs:
            word = _TYPE_WORDS.get(err["type"]) or err["msg"]
            if word not in expected:
                expected.append(word)
        got = _describe(errs[0].get("input"))
        problems.append(
            positions.problem(
                path,
                f"{_name(path)}: expected {' or '.join(expected)}, got {got}",
                _type_hint(expected),
                at_key=False,
                code="wrong-type",
            )
        )
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def _name(path: PathKey) -> str:
    return ".".join(str(p) for p in path) or "document"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"{value!r}"


def _type_hint(expected: list[str]) -> str:
    if any("mapping" in e for e in expected):
        return "indent the keys below this one, e.g. `key:` then `  field: value`"
    if any("list" in e for e in expected):
        return "write one item per line starting with `- `, or [a, b]"
    if "text" in expected:
        return "quote the value"
    return f"write {expected[0]}"


def _problem_for(kind: str, err: ErrorDetails, path: PathKey, parent: Any, tp: Any, positions: PositionMap) -> Problem:
    name = _name(path)
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(parent)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else ("allowed keys: " + ", ".join(allowed) if allowed else "remove it")
        )
        return positions.problem(path, f"unknown key {key!r}", hint, code="unknown-key")
    if kind == "missing":
        key = str(path[-1])
        return positions.problem(
            path[:-1],
            f"missing required key {key!r} in {_name(path[:-1])}",
            f"add `{key}:`" + _field_doc(parent, key),
            code="missing-key",
        )
    if kind in ("union_tag_not_found",):
        return positions.problem(
            path,
            f"{name}: a node needs a `type`",
            "add `type:` with one of: " + ", ".join(_node_kinds(tp)),
            code="missing-key",
        )
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))
        kinds = _node_kinds(tp)
        close = difflib.get_close_matches(tag, kinds, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else "use one of: " + ", ".join(kinds)
        return positions.problem(
            path + ("type",), f"{name}: unknown node type {tag!r}", hint, at_key=False, code="unknown-type"
        )
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        got = err.get("input")
        options = re.findall(r"'([^']*)'", expected)
        close = difflib.get_close_matches(str(got), options, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of: {expected}"
        return positions.problem(path, f"{name}: {got!r} is not allowed", hint, at_key=False, code="bad-value")
    if kind == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        return positions.problem(
            path,
            f"{name}: {err.get('input')!r} has the wrong form",
            _pattern_hint(pattern),
            at_key=False,
            code="bad-value",
        )
    if kind in ("too_short", "too_long"):
        return positions.problem(
            path,
            f"{name}: {err['msg'].lower()}",
            "add at least one item" if kind == "too_short" else "remove items",
            at_key=False,
            code="bad-value",
        )
    if kind.startswith(("greater_than", "less_than")):
        return positions.problem(
            path, f"{name}: {err['msg'].lower()}", "change the number", at_key=False, code="bad-value"
        )
    message, hint = _split_message(str(err["msg"]))
    return positions.problem(path, f"{name}: {message}", hint, at_key=False, code="bad-value")


def _node_kinds(tp: Any) -> list[str]:
    kinds = []
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            tag = _tag_of(member)
            if tag:
                kinds.append(tag)
    return kinds


def _field_doc(model: Any, key: str) -> str:
    for member in _members(model):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, info in member.model_fields.items():
                if key in (name, info.alias) and info.description:
                    return f" ({info.description.rstrip('.')})"
    return ""


def _pattern_hint(pattern: str) -> str:
    if pattern == r"^[0-9*#]+$":
        return "use digits 0-9, * and #; quote it: '1'"
    if "A-Za-z0-9_" in pattern and ":" in pattern:
        return "a node id like main_menu, or flow:node for another flow (letters, digits, _ and -)"
    if "A-Za-z0-9_" in pattern:
        return "use letters, digits, _ and - only"
    return f"it must match {pattern}"


def suggest(word: str, choices: Iterable[str]) -> str:
    """A "did you mean" hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""

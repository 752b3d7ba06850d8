"""YAML with positions: keys as written, YAML 1.2 scalars, syntax errors with their position."""

from __future__ import annotations

from datetime import date

import pytest

from ivr.yamlsource import ConfigError, Mark, parse_yaml


def test_keys_as_written_and_yaml_1_2_scalars() -> None:
    doc = parse_yaml(
        "a:\n  1: x\n  01: 0123\n  no: no\n  on: 8:30\n  d: 2026-12-24\n  n: [1, 2.5, true, ~]\n", "t.yaml"
    )
    assert doc.data == {
        "a": {"1": "x", "01": "0123", "no": "no", "on": "8:30", "d": date(2026, 12, 24), "n": [1, 2.5, True, None]}
    }


def test_positions_of_keys_and_values() -> None:
    doc = parse_yaml("top:\n  inner: [a, b]\n", "t.yaml")
    assert doc.positions.key(("top", "inner")) == Mark(2, 3)
    assert doc.positions.value(("top", "inner", 1)) == Mark(2, 14)
    assert doc.positions.key(("top", "inner", "missing", "deeper")) == Mark(2, 3)  # nearest written ancestor


def test_syntax_error_has_its_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\nb: [1, 2\n", "t.yaml")
    (problem,) = info.value.problems
    assert (problem.file, problem.code) == ("t.yaml", "syntax")
    assert problem.line == 3 and problem.message.startswith("YAML syntax error")


def test_unknown_alias_hint() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("options:\n  *: repeat\n", "t.yaml")
    (problem,) = info.value.problems
    assert problem.line == 2 and "quote" in problem.hint


def test_merge_keys_still_work() -> None:
    doc = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "t.yaml")
    assert doc.data["other"] == {"x": 1, "y": 2}

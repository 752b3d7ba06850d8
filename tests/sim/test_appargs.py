"""Application data as Asterisk cuts it (AST_STANDARD_APP_ARGS, ast_app_parse_options, pbx_parseable_goto)."""

from __future__ import annotations

import pytest

from ivr.sim.appargs import GotoTarget, UnmodelledGoto, parse_goto, parse_options, separate_args


@pytest.mark.parametrize(
    "data, args",
    [
        ("", []),
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        ("a,", ["a", ""]),
        (",", ["", ""]),
        (",b", ["", "b"]),
        # the flow engine's Park (ivr/agi/session.py escapes commas for this splitter)
        (r"default,st(45)c(ivr-park-comeback\,s\,1)", ["default", "st(45)c(ivr-park-comeback,s,1)"]),
        # parentheses and brackets protect commas and stay; quotes group and go
        ("x,b(sub^a,b^1),y", ["x", "b(sub^a,b^1)", "y"]),
        ("[a,b],c", ["[a,b]", "c"]),
        ('"a,b",c', ["a,b", "c"]),
        ('a"b,c"d,e', ["ab,cd", "e"]),
        # a backslash goes and the next character is taken as it is: an escaped quote, backslash or parenthesis
        (r"a\,b,c", ["a,b", "c"]),
        (r'\"a,b', ['"a', "b"]),
        (r"a\\,b", ["a\\", "b"]),
        (r"f\(x,y", ["f(x", "y"]),
        # an unmatched closing parenthesis does not open anything
        ("a),b", ["a)", "b"]),
        # an unclosed parenthesis swallows the rest
        ("a(b,c", ["a(b,c"]),
    ],
)
def test_separate_args(data: str, args: list[str]) -> None:
    assert separate_args(data) == args


def test_last_declared_argument_takes_the_rest_unprocessed() -> None:
    # "the last element of the array will contain the remaining arguments, not separated" (app.h)
    assert separate_args(r'default,st(6),x\,"y",z', max_args=3) == ["default", "st(6)", r'x\,"y",z']
    assert separate_args("a,b", max_args=1) == ["a,b"]
    assert separate_args("a,", max_args=2) == ["a", ""]


def test_max_args_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        separate_args("a", max_args=0)


@pytest.mark.parametrize(
    "text, options",
    [
        ("", {}),
        ("s", {"s": None}),
        ("st(45)c(ivr-park-comeback,s,1)", {"s": None, "t": "45", "c": "ivr-park-comeback,s,1"}),
        ("i(IVR_MIXMONITOR_ID)a", {"i": "IVR_MIXMONITOR_ID", "a": None}),
        ("b(sub(1),x)c", {"b": "sub(1),x", "c": None}),  # nested parentheses count
        (r"x(a\)b)q", {"x": "a)b", "q": None}),  # an escaped ) does not close
        ('x("a)b")q', {"x": "a)b", "q": None}),  # quotes around the argument protect and go
        (r'x("a\)b")', {"x": r"a\)b"}),  # inside quotes a backslash stays
        ("ccc", {"c": None}),
    ],
)
def test_parse_options(text: str, options: dict[str, str | None]) -> None:
    assert parse_options(text) == options


@pytest.mark.parametrize(
    "text, target",
    [
        ("ivr-park-comeback,s,1", GotoTarget("ivr-park-comeback", "s", 1)),
        ("s,2", GotoTarget("here", "s", 2)),  # exten,priority: the current context
        ("5", GotoTarget("here", "100", 5)),  # priority only
        (",,4", GotoTarget("here", "100", 4)),  # empty parts keep the channel's
        ("+2", GotoTarget("here", "100", 5)),  # relative to the current priority (3)
        ("-2", GotoTarget("here", "100", 1)),
        ("ctx,x,1,ignored", GotoTarget("ctx", "x", 1)),
    ],
)
def test_parse_goto(text: str, target: GotoTarget) -> None:
    assert parse_goto(text, "here", "100", 3) == target


@pytest.mark.parametrize("text", ["", "ctx,s,", "ctx,s,label", "0", "-5"])
def test_parse_goto_refuses_what_it_cannot_resolve(text: str) -> None:
    with pytest.raises(UnmodelledGoto, match="priority"):
        parse_goto(text, "here", "100", 3)

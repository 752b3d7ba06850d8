"""Asterisk-side AGI parsing, as res_agi does it (agi-01, agi-05)."""

from __future__ import annotations

import pytest

from ivr.sim.agi_codec import LineBuffer, env_block, parse_args, parse_command, reply, usage_block


@pytest.mark.parametrize(
    "line,words",
    [
        ('SET VARIABLE MYVAR "hello world"', ["SET", "VARIABLE", "MYVAR", "hello world"]),
        ('SET VARIABLE MYVAR2 "say \\"hi\\" there"', ["SET", "VARIABLE", "MYVAR2", 'say "hi" there']),
        ("SET VARIABLE MYVAR3 'single quoted'", ["SET", "VARIABLE", "MYVAR3", "'single", "quoted'"]),
        ('SET VARIABLE EMPTYVAR ""', ["SET", "VARIABLE", "EMPTYVAR", ""]),
        ("GET   VARIABLE    CALLERID(num)", ["GET", "VARIABLE", "CALLERID(num)"]),
        ("GET VARIABLE CALLERID(num)\r", ["GET", "VARIABLE", "CALLERID(num)\r"]),
        ('STREAM FILE beep "" 2000', ["STREAM", "FILE", "beep", "", "2000"]),
        ("a\\ b c", ["a b", "c"]),
        ("", []),
    ],
)
def test_parse_args_like_res_agi(line: str, words: list[str]) -> None:
    assert parse_args(line) == words


def test_command_lookup() -> None:
    assert parse_command("noop").name == ("NOOP",)
    assert parse_command("NOOP\r").name is None  # -> 510
    assert parse_command("CHANNEL STATUS\r").name is None
    assert parse_command("get full variable ${X}").name == ("GET", "FULL", "VARIABLE")
    assert parse_command("GET VARIABLE X").args == ("X",)
    assert parse_command("FOO BAR").name is None
    assert parse_command("EXEC Dial x").dead_ok and not parse_command("STREAM FILE a b").dead_ok


def test_reply_forms_of_the_recordings() -> None:
    assert reply(0) == b"200 result=0\n"
    assert reply(1, "hello world") == b"200 result=1 (hello world)\n"
    assert reply(1, "") == b"200 result=1 ()\n"
    assert reply(53, endpos=10720) == b"200 result=53 endpos=10720\n"
    assert reply("", "timeout") == b"200 result= (timeout)\n"
    assert reply(35, "dtmf", endpos=18560) == b"200 result=35 (dtmf) endpos=18560\n"
    assert reply(-1, "writefile") == b"200 result=-1 (writefile)\n"
    head, body = usage_block(("SET", "VARIABLE"))
    assert head + body == (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Sets a variable to the current channel.\n520 End of proper usage.\n"
    )


def test_env_block_keeps_empty_values_and_ends_with_empty_line() -> None:
    data = env_block({"network": "yes", "accountcode": ""}, ["first arg"])
    lines = data.decode().split("\n")
    assert lines[0] == "agi_network: yes" and "agi_accountcode: " in lines
    assert data.endswith(b"agi_arg_1: first arg\n\n")


def test_line_buffer_one_byte_at_a_time() -> None:
    buf = LineBuffer()
    out = []
    for b in b"NOOP\nGET VARIABLE X\r\n":
        buf.feed(bytes([b]))
        line = buf.next_line()
        if line is not None:
            out.append(line)
    assert out == ["NOOP", "GET VARIABLE X\r"]
    big = LineBuffer(max_line=10)
    big.feed(b"x" * 20)
    with pytest.raises(ValueError):
        big.next_line()

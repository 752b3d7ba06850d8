import re

import pytest

from ivr.telephony import (
    DEFAULT_CALLBACK_NUMBER_PATTERN,
    EXTENSION_RE,
    compile_number_pattern,
    is_callback_number,
    is_extension,
    is_queue_name,
)


@pytest.mark.parametrize("value", ["1001", "*97", "#1", "+37060000001", "agent_ann-2", "A" * 40])
def test_plain_extensions(value):
    assert is_extension(value) and EXTENSION_RE.fullmatch(value)


@pytest.mark.parametrize(
    "value", ["", "1001&PJSIP/2", "PJSIP/1001", "1001@trunk", "10:01", "10.01", "1 2", "1,m", "A" * 41, "１２３"]
)
def test_not_extensions(value):
    assert not is_extension(value)


def test_queue_names():
    assert is_queue_name("support-2_tier") and not is_queue_name("sup*port") and not is_queue_name("")


@pytest.mark.parametrize(
    "number,ok",
    [
        ("+37060000001", True),
        ("860012345", True),
        ("1234567", True),
        ("+0123456789", False),
        ("112", False),
        ("*100#", False),
        ("+3706000000１", False),
        ("1" * 16, False),
        ("86001234\n", False),
    ],
)
def test_default_callback_number_pattern(number, ok):
    assert is_callback_number(number) is ok
    assert is_callback_number(number, re.compile(DEFAULT_CALLBACK_NUMBER_PATTERN)) is ok


def test_custom_pattern_and_bad_pattern():
    lithuanian = r"^(\+370|8)[3-9][0-9]{7}$"
    assert is_callback_number("+37060000001", lithuanian) and not is_callback_number("+4790000000", lithuanian)
    with pytest.raises(ValueError, match="not a regular expression"):
        compile_number_pattern("(")

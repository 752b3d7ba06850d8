"""Odd data from a CRM or a caller must never end a call as "error": a lookup answer that cannot be used takes the
lookup's on_error branch, a value that cannot be said is skipped, and set values are cleaned."""

import pytest

from ivr.flow.lookup import FixtureLookupClient

from .conftest import make_flow
from .fakes import FakeChannel


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


async def test_lookup_answer_too_deep_to_map_takes_on_error(run):
    run.lookups = FixtureLookupClient({"crm": {"customer": deep(100_000)}})
    flow = make_flow(
        {
            "crm": {
                "type": "lookup",
                "url": "http://crm.local/c",
                "map": {"c": "customer"},
                "next": "bye",
                "on_error": "sorry",
            },
            "bye": {"type": "hangup"},
            "sorry": {"type": "hangup"},
        }
    )
    report = await run(flow, FakeChannel())
    assert report.outcome == "contained" and report.end_node == "main:sorry"
    assert report.variables["lookup_error"] == "bad_json"


@pytest.mark.parametrize("value", ["7" * 5000, "99999999999", "²", "-", "1e3", "12 34"])
async def test_say_number_skips_what_say_number_cannot_take(run, value):
    run.lookups = FixtureLookupClient({"crm": {"balance": value}})
    flow = make_flow(
        {
            "crm": {
                "type": "lookup",
                "url": "http://crm.local/c",
                "map": {"b": "balance"},
                "next": "say",
                "on_error": "bye",
            },
            "say": {"type": "say", "mode": "number", "value": "${b}", "next": "bye"},
            "bye": {"type": "hangup", "prompts": ["bye"]},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert report.outcome == "contained" and report.end_node == "main:bye"
    assert ch.ops("say_number") == [] and ch.played() == ["/p/en/bye"]


async def test_say_number_at_the_int_limits(run):
    flow = make_flow(
        {
            "a": {"type": "say", "mode": "number", "value": "2147483647", "next": "b"},
            "b": {"type": "say", "mode": "number", "value": "-2147483647", "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    await run(flow, ch)
    assert ch.ops("say_number") == [("say_number", 2147483647), ("say_number", -2147483647)]


async def test_say_digits_and_alpha_of_a_huge_value(run):
    flow = make_flow(
        {
            "s": {"type": "set", "variables": {"x": "5" * 5000}, "next": "d"},
            "d": {"type": "say", "mode": "digits", "value": "${x}", "next": "a"},
            "a": {"type": "say", "mode": "alpha", "value": "${x}", "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert report.outcome == "contained"
    assert ch.ops("say_digits") == []  # 1024 digits after `set`'s clamp: too many to say
    assert len(ch.played()) == 64


async def test_set_cleans_values_for_the_channel(run):
    run.lookups = FixtureLookupClient({"crm": {"note": "VIP\u0000\r\n" + "x" * 3000}})
    flow = make_flow(
        {
            "crm": {
                "type": "lookup",
                "url": "http://crm.local/c",
                "map": {"note": "note"},
                "next": "s",
                "on_error": "bye",
            },
            "s": {"type": "set", "variables": {"CRM_NOTE": "${note}${note}"}, "channel": True, "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert report.outcome == "contained"
    assert ch.variables["CRM_NOTE"].startswith("VIP   xxx") and len(ch.variables["CRM_NOTE"]) == 1024
    assert "\x00" not in ch.variables["CRM_NOTE"]

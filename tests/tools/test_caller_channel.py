"""The scripted caller: the `--digits` syntax and how `ScriptedChannel` delivers steps in virtual time."""

from __future__ import annotations

import pytest

from ivr.flow.channel import CallerHangup, CallInfo
from ivr.flow.model import Flow
from ivr.flowtest.caller import ScriptSyntaxError, Step, format_steps, parse_digits
from ivr.flowtest.channel import PromptBook, ScriptedChannel, World

FLOW = Flow.model_validate(
    {
        "name": "t",
        "start": "a",
        "prompts": {
            "menu": {"en": {"file": "en/menu", "text": "x" * 28}},  # 2 s at 14 characters a second
            "other": {"en": {"file": "en/other", "text": "y" * 14}},
        },  # 1 s
        "nodes": {"a": {"type": "hangup"}},
    }
)


def channel(script: str | list[Step], world: World | None = None, **kw: float) -> ScriptedChannel:
    steps = parse_digits(script) if isinstance(script, str) else script
    return ScriptedChannel(CallInfo("u1", "SIM/1", caller_id="1001"), steps, world or World(), PromptBook([FLOW]), **kw)


def test_digits_syntax() -> None:
    assert parse_digits("1,2w3") == [Step("press", "1"), Step("press", "2"), Step("wait"), Step("press", "3")]
    assert parse_digits("123456# h") == [Step("press", "123456#"), Step("hangup")]
    assert parse_digits("!1,w@12s,h@30.5") == [
        Step("press", "1", barge_in=True),
        Step("wait", at=12.0),
        Step("hangup", at=30.5),
    ]
    assert format_steps(parse_digits("!1,2w,h@30s")) == "!1,2,w,h@30s"
    with pytest.raises(ScriptSyntaxError, match="cannot read 'x2'"):
        parse_digits("1,x2")


async def test_press_waits_for_the_digit_wait_after_the_prompt() -> None:
    ch = channel("1")
    assert await ch.play(["en/menu"], "0123456789") is None  # the caller listens to the whole prompt
    assert ch.elapsed == pytest.approx(2.0)
    assert await ch.wait_for_digit(5) == "1"
    assert ch.elapsed == pytest.approx(2.0)  # pressed at once
    assert [e.kind for e in ch.events] == ["prompt", "digit"]


async def test_barge_in_interrupts_the_prompt() -> None:
    ch = channel("!1")
    assert await ch.play(["en/menu", "en/other"], "1") == "1"
    assert ch.elapsed == 0.0
    assert ch.events[0].data["interrupted"] is True
    assert "menu" not in ch.heard


async def test_one_entry_is_several_digits_and_a_new_entry_needs_a_new_question() -> None:
    ch = channel("12,3")
    await ch.play(["en/menu"], "0123456789")
    assert await ch.wait_for_digit(5) == "1"
    assert await ch.wait_for_digit(2) == "2"  # same entry
    before = ch.elapsed
    assert await ch.wait_for_digit(2) is None  # the entry is over: the inter-digit wait times out
    assert ch.elapsed == pytest.approx(before + 2)
    assert await ch.wait_for_digit(5) == "3"  # a fresh question (after a time-out) gets the next entry


async def test_wait_lets_one_listen_time_out_and_silence_after_the_script() -> None:
    ch = channel("w,1")
    await ch.play(["en/menu"], "0123456789")
    assert await ch.wait_for_digit(5) is None
    assert ch.elapsed == pytest.approx(7.0)
    await ch.play(["en/menu"], "0123456789")
    assert await ch.wait_for_digit(5) == "1"
    await ch.play(["en/other"])
    assert await ch.wait_for_digit(5) is None  # script ended: a silent caller
    assert ch.events[-1].data["why"] == "caller silent (script ended)"


async def test_timed_press_interrupts_whatever_plays_then() -> None:
    ch = channel([Step("press", "5", at=1.5)])
    assert await ch.play(["en/menu"], "5") == "5"
    assert ch.elapsed == pytest.approx(1.5)


async def test_press_after_a_prompt_was_heard() -> None:
    ch = channel([Step("press", "2", after_prompt="other")])
    await ch.play(["en/menu"], "2")
    assert await ch.wait_for_digit(3) is None  # "other" not heard yet: the caller waits for it
    assert await ch.play(["en/other", "en/menu"], "2") == "2"  # right after "other", interrupting "menu"
    assert ch.elapsed == pytest.approx(2 + 3 + 1)


async def test_untimed_hangup_comes_at_the_callers_turn() -> None:
    ch = channel("h")
    await ch.play(["en/menu"])  # not the caller's turn yet
    with pytest.raises(CallerHangup):
        await ch.wait_for_digit(5)
    assert ch.hung_up_by == "caller"
    with pytest.raises(CallerHangup):
        await ch.play(["en/menu"])


async def test_timed_hangup_happens_mid_prompt() -> None:
    ch = channel("h@1")
    with pytest.raises(CallerHangup):
        await ch.play(["en/menu"])
    assert ch.elapsed == pytest.approx(1.0)


async def test_hangup_after_a_voicemail_message() -> None:
    ch = channel("h", World(voicemail_seconds=12))
    result = await ch.record_file("/tmp/vm", "wav", "#", 120, 5, True)
    assert (result.reason, result.seconds) == ("hangup", 12)
    assert ch.hung_up_by == "caller"


async def test_world_behaviours_per_attempt() -> None:
    ch = channel("", World(agents={"6000": ["busy", "answer"]}, queues={"sales": "timeout"}, parking="retrieved"))
    assert (await ch.dial("PJSIP/6000", 20)).status == "BUSY"
    assert (await ch.dial("PJSIP/6000", 20)).status == "ANSWER"
    assert (await ch.dial("PJSIP/6000", 20)).status == "ANSWER"  # the last behaviour repeats
    assert (await ch.dial("PJSIP/7000", 20)).status == "ANSWER"  # unknown agents answer
    before = ch.elapsed
    assert (await ch.queue("sales", 30)).status == "TIMEOUT"
    assert ch.elapsed == pytest.approx(before + 30)
    assert (await ch.park("default", 45)).status == "retrieved"


async def test_a_call_that_never_ends_gives_up() -> None:
    ch = channel("", max_seconds=60)
    with pytest.raises(CallerHangup, match="gave up after 60s"):
        for _ in range(100):
            await ch.play(["en/menu"], "1")
            await ch.wait_for_digit(5)


async def test_interactive_caller_is_asked_only_at_a_fresh_wait() -> None:
    asked: list[float] = []

    async def ask() -> list[Step]:
        asked.append(0)
        return [Step("press", "42")]

    ch = ScriptedChannel(CallInfo("u1", "SIM/1"), [], World(), PromptBook([FLOW]), ask=ask)
    await ch.play(["en/menu"], "0123456789")
    assert await ch.wait_for_digit(5) == "4"
    assert await ch.wait_for_digit(2) == "2"
    assert await ch.wait_for_digit(2) is None  # end of entry: not asked
    assert len(asked) == 1


async def test_rest_of_an_entry_is_lost_while_nothing_listens() -> None:
    ch = channel("12,3")
    await ch.play(["en/menu"], "0123456789")
    assert await ch.wait_for_digit(5) == "1"
    await ch.play(["en/other"])  # the IVR talks without listening: the "2" lands and is lost
    assert ch.events[-2].kind == "lost" and ch.events[-2].data == {"digits": "2"}
    assert await ch.wait_for_digit(5) == "3"

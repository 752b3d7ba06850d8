"""A terminator pressed right after a full-length entry ends that entry; it never leaks into the read-back or the
next prompt (caller complaint: "I typed my 8-digit account and #, as the prompt said, and it was 'not confirmed'").
Digits typed past the maximum make the entry too long instead of leaking either."""

from .conftest import make_flow
from .fakes import FakeChannel


def account_flow(**kw):
    node = {
        "type": "input",
        "variable": "account",
        "prompts": ["enter"],
        "min_length": 6,
        "max_length": 8,
        "terminator": "#",
        "pattern": "^[0-9]{6,8}$",
        "invalid_prompts": ["invalid"],
        "retries": 1,
        "timeout": "8s",
        "inter_digit_timeout": "4s",
        "next": "menu",
        "on_failure": "sorry",
    }
    node.update(kw)
    return make_flow(
        {
            "ask": node,
            "menu": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "done"},
                "timeout": "3s",
                "no_input": {"retries": 0, "exhausted": "sorry"},
                "invalid": {"retries": 0, "exhausted": "sorry"},
            },
            "done": {"type": "hangup"},
            "sorry": {"type": "hangup", "prompts": ["sorry"]},
        }
    )


def typed(text: str, start: float, gap: float = 0.3) -> list[tuple[float, str]]:
    return [(start + gap * i, digit) for i, digit in enumerate(text)]


async def test_hash_after_eight_digits_does_not_interrupt_the_read_back(run):
    flow = account_flow(confirm=True, confirm_prompts=["confirm"])
    # 8 digits from 0.5 s (the first one interrupts "enter"), # at 2.9 s; read-back 4 s; confirm prompt 2 s; 1
    ch = FakeChannel(presses=typed("12345678#", 0.5) + [(9.5, "1")])
    report = await run(flow, ch)
    assert ch.ops("say_digits") == [("say_digits", "12345678")]
    assert not any("interrupted read-back" in text for text in run.trace("digit"))
    assert (report.visits[0].reason, report.variables["account"]) == ("valid", "12345678")
    assert report.path == ["main:ask", "main:menu", "main:sorry"]  # (nothing pressed at the menu)
    assert "/p/en/invalid" not in ch.played()


async def test_hash_after_eight_digits_does_not_leak_into_the_next_prompt(run):
    # No read-back: the next thing the caller hears is the menu, where # would be an invalid choice.
    ch = FakeChannel(presses=typed("12345678#", 0.5) + [(4.0, "1")])
    report = await run(account_flow(), ch)
    assert report.path == ["main:ask", "main:menu", "main:done"]
    assert report.visits[1].reason == "valid"
    assert run.trace("invalid") == []
    assert ch.played() == ["/p/en/enter", "/p/en/menu"]


async def test_full_entry_without_the_terminator_waits_the_grace_silently(run):
    flow = account_flow(confirm=True, confirm_prompts=["confirm"])
    ch = FakeChannel(presses=typed("12345678", 0.5) + [(11.0, "1")])
    report = await run(flow, ch)
    assert report.variables["account"] == "12345678"
    # seven inter-digit waits, the grace for the terminator (2 s), the confirmation, the menu
    assert [op[1] for op in ch.ops("wait")] == [4.0] * 7 + [2.0, 5.0, 3.0]
    assert ch.log.index(("say_digits", "12345678")) > ch.log.index(("wait", 2.0))
    assert [e.text for e in run.events if e.node == "ask" and e.kind in ("timeout", "no_input")] == []


async def test_grace_is_capped_by_the_inter_digit_timeout(run):
    ch = FakeChannel(presses=typed("12345678", 0.5, gap=0.2))
    await run(account_flow(inter_digit_timeout="1s"), ch)
    assert [op[1] for op in ch.ops("wait")][:8] == [1.0] * 8


async def test_no_terminator_means_no_grace(run):
    ch = FakeChannel(presses=typed("12345678", 0.5) + [(5.5, "1")])
    report = await run(account_flow(terminator="", pattern=None), ch)
    assert [op[1] for op in ch.ops("wait")] == [4.0] * 7 + [3.0]  # the menu greeting at once, then its wait
    assert report.path == ["main:ask", "main:menu", "main:done"]


async def test_digits_past_the_maximum_make_the_entry_too_long(run):
    flow = account_flow(confirm=True, confirm_prompts=["confirm"])
    # 9 digits and #; then the invalid prompt (2 s) and "enter" (2 s); a good number, #, read-back, confirm
    ch = FakeChannel(presses=typed("123456781#", 0.5) + typed("87654321#", 8.0) + [(17.0, "1")])
    report = await run(flow, ch)
    assert ch.ops("say_digits") == [("say_digits", "87654321")]  # the 9th digit never reached a read-back
    assert any("too long (9 > 8)" in text for text in run.trace("invalid"))
    assert ch.played()[:3] == ["/p/en/enter", "/p/en/invalid", "/p/en/enter"]
    assert report.variables["account"] == "87654321"


async def test_hash_after_a_full_callback_number_is_not_a_request_for_another_number(run, storage):
    flow = make_flow(
        {
            "cb": {
                "type": "callback",
                "queue": "sales",
                "prompts": ["cb_offer"],
                "number_prompts": ["cb_number"],
                "confirm_prompts": ["cb_confirm"],
                "use_caller_id": False,
                "min_length": 6,
                "max_length": 9,
                "retries": 1,
                "next": "bye",
                "on_failure": "sorry",
            },
            "bye": {"type": "hangup"},
            "sorry": {"type": "hangup"},
        }
    )
    # number prompt, 9 digits + # from 0.5 s; offer 2 s, read-back 4.5 s, confirm prompt 2 s; then 1
    ch = FakeChannel(caller_id="", presses=typed("861234567#", 0.5) + [(13.0, "1")])
    report = await run(flow, ch)
    assert report.outcome == "callback" and report.end_node == "main:bye"
    (req,) = await storage.list_callbacks(queue="sales")
    assert req.number == "861234567"
    assert ch.ops("say_digits") == [("say_digits", "861234567")]
    assert run.trace("choice") == []  # not "caller wants to enter another number"

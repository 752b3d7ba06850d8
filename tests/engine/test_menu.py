from ivr import metrics

from .conftest import make_flow
from .fakes import FakeChannel


def menu_flow(**menu_kw):
    menu = {
        "type": "menu",
        "greeting": ["menu"],
        "timeout": "5s",
        "inter_digit_timeout": "2s",
        "options": {
            "1": "sales",
            "2": {"goto": "support", "label": "Support"},
            "3": {"type": "transfer", "queue": "billing"},
        },
        "no_input": {"prompts": ["noinput"], "retries": 2, "exhausted": "bye"},
        "invalid": {"prompts": ["invalid"], "retries": 2, "exhausted": "bye"},
    }
    menu.update(menu_kw)
    return make_flow(
        {
            "menu": menu,
            "sales": {"type": "transfer", "queue": "sales"},
            "support": {"type": "transfer", "queue": "support"},
            "bye": {"type": "hangup", "prompts": ["bye"]},
        }
    )


async def test_choice_during_greeting_barges_in(run):
    ch = FakeChannel(presses=[(0.5, "1")])
    before = (
        metrics.REGISTRY.get_sample_value("ivr_call_outcomes_total", {"flow": "main", "outcome": "transferred"}) or 0
    )
    report = await run(menu_flow(), ch)
    assert report.outcome == "transferred"
    assert report.end_target == "queue:sales"
    assert report.path == ["main:menu", "main:sales"]
    assert report.visits[0].reason == "valid" and report.visits[0].target == "main:sales"
    assert ch.played() == ["/p/en/menu"]  # interrupted; nothing else played
    assert ch.ops("wait") == []  # no timeout wait after a barge-in
    assert ch.ops("queue") == [("queue", "sales", 30.0)]
    assert (
        metrics.REGISTRY.get_sample_value("ivr_call_outcomes_total", {"flow": "main", "outcome": "transferred"})
        == before + 1
    )
    assert report.version == "v1"


async def test_invalid_then_valid(run):
    # 9 during the greeting (invalid, answered at once), then 2 during the second greeting.
    ch = FakeChannel(presses=[(0.5, "9"), (3.0, "2")])
    report = await run(menu_flow(), ch)
    assert ch.played() == ["/p/en/menu", "/p/en/invalid", "/p/en/menu"]
    assert report.end_target == "queue:support"
    assert "invalid choice '9' (1 of 3)" in run.trace("invalid")


async def test_no_input_exhaustion_goes_to_target(run):
    ch = FakeChannel()
    report = await run(menu_flow(), ch)
    assert ch.played() == ["/p/en/menu", "/p/en/noinput", "/p/en/menu", "/p/en/noinput", "/p/en/menu", "/p/en/bye"]
    assert [op[1] for op in ch.ops("wait")] == [5.0, 5.0, 5.0]
    assert report.visits[0].reason == "exhausted"
    assert report.visits[0].detail == "no input 3 times"
    assert report.outcome == "contained" and report.end_node == "main:bye"
    assert ch.ops("hangup")


async def test_counters_are_separate(run):
    flow = menu_flow(
        no_input={"prompts": ["noinput"], "retries": 1, "exhausted": "bye"},
        invalid={"prompts": ["invalid"], "retries": 1, "exhausted": "bye"},
    )
    # silence (1st no-input), then wrong key (1st invalid), then a valid key: a shared counter would have hung up.
    ch = FakeChannel(presses=[(9.5, "7"), (14.0, "1")])
    report = await run(flow, ch)
    assert report.end_target == "queue:sales"


async def test_exhaustion_without_target_ends_politely(run):
    flow = menu_flow(no_input={"retries": 0})
    report = await run(flow, FakeChannel())
    assert report.outcome == "contained"
    assert report.visits[-1].reason == "exhausted"
    assert report.end_target == "hangup:exhausted"


async def test_multi_digit_waits_inter_digit_only_when_needed(run):
    flow = menu_flow(options={"1": "sales", "12": "support", "3": "bye"})
    ch = FakeChannel(presses=[(0.5, "1"), (1.5, "2")])
    report = await run(flow, ch)
    assert report.end_target == "queue:support"
    assert ch.ops("wait") == [("wait", 2.0)]
    # 1 then silence: option 1 after the inter-digit timeout
    ch = FakeChannel(presses=[(0.5, "1")])
    assert (await run(flow, ch)).end_target == "queue:sales"
    # 1 then # : option 1 at once
    ch = FakeChannel(presses=[(0.5, "1"), (0.7, "#")])
    report = await run(flow, ch)
    assert report.end_target == "queue:sales"
    assert (report.visits[-1].entered_at - ch.start).total_seconds() == 0.7  # no inter-digit wait after "#"
    # 3 cannot grow: taken without any wait
    ch = FakeChannel(presses=[(0.5, "3")])
    await run(flow, ch)
    assert ch.ops("wait") == []


async def test_direct_dial_by_pattern(run):
    flow = make_flow(
        {
            "menu": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "bye"},
                "direct_dial": {"pattern": "2XXX", "target": "ext"},
            },
            "ext": {"type": "transfer", "extension": "${dialed}", "on_no_answer": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel(presses=[(0.2, "2"), (0.5, "0"), (0.9, "0"), (1.2, "7")], dial_results={"PJSIP/2007": "NOANSWER"})
    report = await run(flow, ch)
    assert ch.ops("dial") == [("dial", "PJSIP/2007", 30.0)]
    assert report.variables["dialed"] == "2007"
    assert report.path == ["main:menu", "main:ext", "main:bye"]
    assert report.visits[1].detail == "NOANSWER -> on_no_answer"


async def test_repeat_back_and_top(run):
    flow = make_flow(
        {
            "main_menu": {"type": "menu", "greeting": ["menu"], "options": {"1": "sub", "9": "repeat", "5": "bye"}},
            "sub": {"type": "menu", "greeting": ["sub"], "options": {"1": "subsub", "*": "back"}},
            "subsub": {"type": "menu", "greeting": ["sub"], "options": {"*": "back", "0": "top", "9": "repeat"}},
            "bye": {"type": "hangup"},
        }
    )
    # 9 repeat, 1 -> sub, 1 -> subsub, 9 repeat, * back -> sub, 1 -> subsub, 0 top -> main, 5 -> bye
    presses = [(0.5 + 2.0 * i, d) for i, d in enumerate("91191*105")]
    report = await run(flow, FakeChannel(presses=presses))
    assert report.path == [
        "main:main_menu",
        "main:sub",
        "main:subsub",
        "main:sub",
        "main:subsub",
        "main:main_menu",
        "main:bye",
    ]
    assert report.outcome == "contained"


async def test_back_without_earlier_menu_repeats(run):
    flow = make_flow(
        {
            "m": {"type": "menu", "greeting": ["menu"], "options": {"*": "back", "1": "bye"}},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel(presses=[(0.5, "*"), (1.0, "1")])
    report = await run(flow, ch)
    assert ch.played() == ["/p/en/menu", "/p/en/menu"]
    assert report.path == ["main:m", "main:bye"]


async def test_inline_option_node(run):
    ch = FakeChannel(presses=[(0.5, "3")])
    report = await run(menu_flow(), ch)
    assert report.path == ["main:menu", "main:menu.3"]
    assert report.end_target == "queue:billing"


async def test_caller_hangup_mid_prompt(run):
    ch = FakeChannel(hangup_at=1.0)
    report = await run(menu_flow(), ch)
    assert report.outcome == "abandoned"
    assert report.end_node == "main:menu"
    assert report.visits[-1].reason == "hangup"
    assert report.seconds == 1.0


async def test_type_ahead_from_barge_in_play(run):
    flow = make_flow(
        {
            "hello": {"type": "play", "prompts": ["welcome"], "barge_in": True, "next": "menu"},
            "menu": {"type": "menu", "greeting": ["menu"], "options": {"2": "bye"}},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel(presses=[(0.5, "2")])
    report = await run(flow, ch)
    assert ch.played() == ["/p/en/welcome"]
    assert report.path == ["main:hello", "main:menu", "main:bye"]


async def test_step_budget_ends_a_cycle_with_error(run):
    flow = make_flow({"a": {"type": "goto", "target": "b"}, "b": {"type": "goto", "target": "a"}})
    report = await run(flow, FakeChannel(), max_steps=50)
    assert report.outcome == "error"
    assert "more than 50 steps" in report.error
    assert len(report.visits) == 50


async def test_trace_shows_prompt_text_digits_and_reasons(run):
    await run(menu_flow(), FakeChannel(presses=[(0.5, "9"), (3.0, "1")]))
    kinds = [e.kind for e in run.events]
    assert kinds[0] == "call" and kinds[-1] == "end"
    assert "menu text" in run.trace("prompt")
    assert "9 (interrupted menu)" in run.trace("digit")
    assert "valid: option 1" in run.trace("exit")


async def test_exhausted_back_returns_to_previous_menu(run):
    flow = make_flow(
        {
            "top_menu": {"type": "menu", "greeting": ["menu"], "options": {"1": "sub", "5": "bye"}},
            "sub": {
                "type": "menu",
                "greeting": ["sub"],
                "options": {"1": "bye"},
                "invalid": {"prompts": ["invalid"], "retries": 0, "exhausted": "back"},
            },
            "bye": {"type": "hangup"},
        }
    )
    report = await run(flow, FakeChannel(presses=[(0.5, "1"), (1.0, "7"), (4.0, "5")]))
    assert report.path == ["main:top_menu", "main:sub", "main:top_menu", "main:bye"]
    assert report.visits[1].reason == "exhausted" and report.visits[1].detail == "invalid input 1 times -> back"


async def test_exhausted_top_from_the_first_menu_ends_the_call(run):
    # `top` from the first menu is this menu: re-entering it with fresh counters would never end
    flow = make_flow(
        {
            "top_menu": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "bye"},
                "no_input": {"retries": 1, "exhausted": "top"},
            },
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert report.path == ["main:top_menu"] and report.outcome == "contained"
    assert report.visits[0].detail == "no input 2 times -> top (no earlier menu)"
    assert report.end_target == "hangup:exhausted" and ch.ops("wait") == [("wait", 5.0)] * 2


async def test_dial_template_from_service_settings(run):
    from ivr.flow.engine import FlowEngine
    from ivr.settings import Settings

    s = Settings(dial_template="SIP/trunk/{extension}")
    es = FlowEngine.settings_from(s)
    flow = make_flow({"t": {"type": "transfer", "extension": "1001"}})
    ch = FakeChannel()
    await run(flow, ch, dial_template=es.dial_template)
    assert ch.ops("dial")[0][1] == "SIP/trunk/1001"


async def test_broken_observer_does_not_change_the_call(storage):
    from ivr.flow.engine import FlowEngine

    def boom(event):
        raise RuntimeError("printer broke")

    ch = FakeChannel(presses=[(0.5, "1")])
    engine = FlowEngine({"main": menu_flow()}, storage=storage, clock=ch.clock, observer=boom)
    report = await engine.run(ch, "main")
    assert report.outcome == "transferred"


async def test_menu_option_object_with_a_verb(run):
    flow = make_flow(
        {
            "a": {"type": "menu", "greeting": ["menu"], "options": {"1": "b", "5": "bye"}},
            "b": {"type": "menu", "greeting": ["sub"], "options": {"9": {"goto": "back", "label": "Back"}}},
            "bye": {"type": "hangup"},
        }
    )
    report = await run(flow, FakeChannel(presses=[(0.5, "1"), (1.0, "9"), (2.0, "5")]))
    assert report.path == ["main:a", "main:b", "main:a", "main:bye"]

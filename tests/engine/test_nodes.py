from datetime import UTC, datetime

import pytest

from ivr.flow.engine import FlowEngine
from ivr.flow.lookup import FixtureLookupClient

from .conftest import make_flow
from .fakes import FakeChannel

# --- input ------------------------------------------------------------------------------------------------


def input_flow(**kw):
    node = {
        "type": "input",
        "variable": "account",
        "prompts": ["enter"],
        "min_length": 4,
        "max_length": 8,
        "pattern": r"\d+",
        "invalid_prompts": ["invalid"],
        "retries": 1,
        "timeout": "6s",
        "inter_digit_timeout": "3s",
        "next": "done",
        "on_failure": "sorry",
    }
    node.update(kw)
    return make_flow({"ask": node, "done": {"type": "hangup"}, "sorry": {"type": "hangup", "prompts": ["sorry"]}})


async def test_input_terminator_and_variable(run):
    ch = FakeChannel(presses=[(0.5, "1"), (1.0, "2"), (1.5, "3"), (2.0, "4"), (2.5, "#")])
    report = await run(input_flow(), ch)
    assert report.variables["account"] == "1234"
    assert report.path == ["main:ask", "main:done"]
    assert [op[1] for op in ch.ops("wait")] == [3.0, 3.0, 3.0, 3.0]


async def test_input_max_length_stops_without_terminator(run):
    presses = [(0.2 + 0.3 * i, str(i)) for i in range(1, 9)]
    report = await run(input_flow(), FakeChannel(presses=presses))
    assert report.variables["account"] == "12345678"


async def test_input_too_short_then_failure(run):
    ch = FakeChannel(
        presses=[(0.5, "1"), (1.0, "#"), (6.0, "*"), (6.5, "1"), (6.8, "2"), (7.0, "3"), (7.2, "4"), (7.5, "#")]
    )
    report = await run(input_flow(), ch)
    # 1st: too short; 2nd: "*1234" fails the regex -> on_failure
    assert report.path == ["main:ask", "main:sorry"]
    assert report.visits[0].reason == "exhausted"
    assert "account" not in report.variables
    assert ch.played()[:3] == ["/p/en/enter", "/p/en/invalid", "/p/en/enter"]


async def test_input_read_back_and_confirm(run):
    flow = input_flow(confirm=True, confirm_prompts=["confirm"])
    # 5555# ; read back 2 s ; confirm prompt: press 2 (no) ; enter 6666# ; confirm 1
    ch = FakeChannel(
        presses=[
            (0.5, "5"),
            (0.7, "5"),
            (0.9, "5"),
            (1.1, "5"),
            (1.3, "#"),
            (3.5, "2"),
            (4.0, "6"),
            (4.2, "6"),
            (4.4, "6"),
            (4.6, "6"),
            (4.8, "#"),
            (7.0, "1"),
        ]
    )
    report = await run(flow, ch)
    assert ch.ops("say_digits") == [("say_digits", "5555"), ("say_digits", "6666")]
    assert report.variables["account"] == "6666"
    # a "no" is the caller's choice: the invalid prompt is not played
    assert "/p/en/invalid" not in ch.played()


# --- route ------------------------------------------------------------------------------------------------


def route_flow():
    return make_flow(
        {
            "r": {
                "type": "route",
                "rules": [
                    {"closed": "office", "goto": "closed"},
                    {"caller": r"^\+3706", "goto": "mobile"},
                    {"variable": "tier", "equals": "gold", "goto": "gold"},
                    {"variable": "tier", "in": ["silver", "bronze"], "goto": "metal"},
                    {"variable": "account", "matches": r"^9\d+$", "goto": "nine"},
                    {"language": "lt", "goto": "lt"},
                ],
                "else": "other",
            },
            **{n: {"type": "hangup"} for n in ("closed", "mobile", "gold", "metal", "nine", "lt", "other")},
        },
        schedules={"office": {"weekly": {"mon-fri": "08:00-18:00"}, "holidays": ["2026-03-24"]}},
        variables={"tier": "", "account": ""},
    )


@pytest.mark.parametrize(
    "kw,end",
    [
        ({"caller_id": "+37060000001"}, "mobile"),
        ({"caller_id": "+3705200", "params": {}}, "other"),
        ({"caller_id": "+3705200", "language": "lt"}, "lt"),
        ({"caller_id": "+3705200", "start": datetime(2026, 3, 23, 17, 0, tzinfo=UTC)}, "closed"),
        ({"caller_id": "+3705200", "start": datetime(2026, 3, 24, 10, 0, tzinfo=UTC)}, "closed"),
    ],
)
async def test_route_rules(run, kw, end):
    report = await run(route_flow(), FakeChannel(**kw))
    assert report.end_node == f"main:{end}"


async def test_route_closed_rule_exit_reason(run):
    report = await run(route_flow(), FakeChannel(start=datetime(2026, 3, 23, 17, 0, tzinfo=UTC)))
    assert report.visits[0].reason == "closed"


@pytest.mark.parametrize(
    "tier,account,end", [("gold", "", "gold"), ("bronze", "", "metal"), ("", "912", "nine"), ("", "812", "other")]
)
async def test_route_variables(run, tier, account, end):
    flow = route_flow()
    flow.variables.update({"tier": tier, "account": account})
    report = await run(flow, FakeChannel(caller_id="+3705200"))
    assert report.end_node == f"main:{end}"


async def test_route_undefined_schedule_is_an_error(run):
    flow = make_flow(
        {"r": {"type": "route", "rules": [{"open": "nope", "goto": "x"}], "else": "x"}, "x": {"type": "hangup"}}
    )
    report = await run(flow, FakeChannel())
    assert report.outcome == "error" and "schedule 'nope' is not defined" in report.error


# --- language ---------------------------------------------------------------------------------------------


def language_flow():
    return make_flow(
        {
            "lang": {
                "type": "language",
                "prompts": ["langq"],
                "options": {"1": "en", "2": "lt"},
                "retries": 1,
                "next": "hello",
            },
            "hello": {"type": "play", "prompts": ["welcome"], "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )


async def test_language_choice_switches_channel_and_prompts(run):
    ch = FakeChannel(presses=[(0.5, "2")])
    report = await run(language_flow(), ch)
    assert ch.channel_language == "lt"
    assert ch.played() == ["/p/en/langq", "/p/lt/welcome"]
    assert report.language == "lt" and report.variables["language"] == "lt"


async def test_language_default_when_no_choice(run):
    ch = FakeChannel(language="lt")
    report = await run(language_flow(), ch)
    assert ch.played()[:3] == ["/p/lt/langq", "/p/lt/langq", "/p/en/welcome"]
    assert report.language == "en"
    assert report.visits[0].reason == "exhausted"


async def test_unknown_channel_language_falls_back_to_flow_default(run):
    ch = FakeChannel(language="de")
    await run(language_flow(), ch, start="hello")
    assert ch.ops("language") == [("language", "en")]
    assert ch.played()[0] == "/p/en/welcome"


async def test_dialplan_lang_parameter_sets_the_starting_language(run):
    # extensions_ivr.conf: AGI(agi://.../main?lang=${FILTER(a-z,${IVR_LANG})}) for a Lithuanian DID
    ch = FakeChannel(language="en", params={"lang": "lt"})
    report = await run(language_flow(), ch, start="hello")
    assert ch.ops("language") == [("language", "lt")]
    assert ch.played()[0] == "/p/lt/welcome" and report.variables["param_lang"] == "lt"
    # empty (IVR_LANG unset) or a language the flow does not offer: the channel's language stays
    for lang in ("", "de"):
        ch = FakeChannel(language="en", params={"lang": lang})
        await run(language_flow(), ch, start="hello")
        assert ch.ops("language") == [] and ch.played()[0] == "/p/en/welcome"


# --- lookup -----------------------------------------------------------------------------------------------


def lookup_flow():
    return make_flow(
        {
            "crm": {
                "type": "lookup",
                "url": "http://crm.local/c?phone=${caller_id}",
                "timeout": "2s",
                "map": {"name": "customer.name", "tier": "customer.tier"},
                "next": "ok",
                "on_error": "err",
            },
            "ok": {"type": "hangup"},
            "err": {"type": "hangup"},
        }
    )


async def test_lookup_maps_variables(run):
    run.lookups = FixtureLookupClient({"main:crm": {"customer": {"name": "Ann", "tier": "gold"}}})
    report = await run(lookup_flow(), FakeChannel(caller_id="+370 600"))
    assert report.end_node == "main:ok"
    assert (report.variables["name"], report.variables["tier"]) == ("Ann", "gold")
    assert run.lookups.requests[0].url == "http://crm.local/c?phone=%2B370%20600"


async def test_lookup_error_branch(run):
    run.lookups = FixtureLookupClient({"crm": {"$error": "timeout"}})
    report = await run(lookup_flow(), FakeChannel())
    assert report.end_node == "main:err"
    assert report.visits[0].reason == "error"
    assert report.variables["lookup_error"] == "timeout"


# --- transfer ---------------------------------------------------------------------------------------------


def transfer_flow(**kw):
    node = {
        "type": "transfer",
        "extension": "1001",
        "timeout": "20s",
        "announcement": ["ann"],
        "caller_id_name_prefix": "Sales: ",
        "on_busy": "busy",
        "on_no_answer": "noans",
        "on_unavailable": "unavail",
    }
    node.update(kw)
    return make_flow({"t": node, **{n: {"type": "hangup"} for n in ("busy", "noans", "unavail", "after")}})


@pytest.mark.parametrize(
    "status,end", [("BUSY", "busy"), ("NOANSWER", "noans"), ("CHANUNAVAIL", "unavail"), ("CONGESTION", "unavail")]
)
async def test_dial_status_branches(run, status, end):
    ch = FakeChannel(dial_results={"PJSIP/1001": status})
    report = await run(transfer_flow(), ch)
    assert report.end_node == f"main:{end}"
    assert ch.variables["CALLERID(name)"] == "Sales: Ann"
    assert ch.played() == ["/p/en/ann"]
    assert ch.ops("dial") == [("dial", "PJSIP/1001", 20.0)]


async def test_dial_answer_then_next_and_dial_template(run):
    ch = FakeChannel(dial_results={"SIP/agents/1001": "ANSWER"})
    report = await run(transfer_flow(next="after"), ch, dial_template="SIP/agents/${extension}")
    assert report.outcome == "transferred"  # sticky, even though the call went on to `after`
    assert report.end_target == "extension:1001"
    assert report.end_node == "main:after"


async def test_failed_transfer_without_branch_is_an_error(run):
    flow = make_flow({"t": {"type": "transfer", "dial": "PJSIP/1001"}})
    report = await run(flow, FakeChannel(dial_results={"PJSIP/1001": "BUSY"}))
    assert report.outcome == "error"
    assert report.visits[0].detail == "BUSY and no branch for it"


async def test_extension_from_variables_must_be_plain(run):
    flow = make_flow(
        {
            "s": {"type": "set", "variables": {"x": "1001,m"}, "next": "t"},
            "t": {"type": "transfer", "extension": "${x}"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert report.outcome == "error" and "not a plain extension" in report.error
    assert report.end_target == "failed:refused" and ch.ops("dial") == []


TOLL_FRAUD = "1001&PJSIP/00900123456@trunk"


@pytest.mark.parametrize(
    "field,template", [("dial", "PJSIP/${agent}"), ("dial", "PJSIP/${agent}@agents"), ("extension", "${agent}")]
)
async def test_substituted_value_cannot_add_dial_targets(run, field, template):
    # A CRM answer (or a query parameter) must never turn one dial target into two (toll fraud).
    flow = make_flow(
        {
            "s": {"type": "set", "variables": {"agent": TOLL_FRAUD}, "next": "t"},
            "t": {"type": "transfer", field: template, "announcement": ["ann"], "on_unavailable": "sorry"},
            "sorry": {"type": "hangup", "prompts": ["sorry"]},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert ch.ops("dial") == [] and ch.played() == ["/p/en/sorry"]  # no "connecting you" either
    assert report.end_node == "main:sorry" and report.outcome == "contained"
    assert report.visits[1].detail == "REFUSED -> on_unavailable"


@pytest.mark.parametrize("value", ["", "a b", "1001\x00", "1" * 41, "1001/2", "1001@x", "1001:2", "10.01"])
async def test_dial_template_values_are_plain_extensions(run, value):
    flow = make_flow(
        {
            "s": {"type": "set", "variables": {"agent": value}, "next": "t"},
            "t": {"type": "transfer", "dial": "PJSIP/${agent}@agents&PJSIP/1999", "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert ch.ops("dial") == [] and report.end_node == "main:bye"


async def test_dial_template_literal_text_may_hold_several_targets(run):
    flow = make_flow(
        {
            "s": {"type": "set", "variables": {"agent": "1001"}, "next": "t"},
            "t": {"type": "transfer", "dial": "PJSIP/${agent}@agents&PJSIP/1999"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert ch.ops("dial") == [("dial", "PJSIP/1001@agents&PJSIP/1999", 30.0)]
    assert report.outcome == "transferred" and report.end_target == "dial:PJSIP/1001@agents&PJSIP/1999"


@pytest.mark.parametrize(
    "value,expected", [("billing", [("queue", "billing", 30.0)]), ("sales&x", []), ("", []), ("sup*port", [])]
)
async def test_queue_template_values_are_plain_queue_names(run, value, expected):
    flow = make_flow(
        {"t": {"type": "transfer", "queue": "${param_queue}", "on_timeout": "bye"}, "bye": {"type": "hangup"}}
    )
    ch = FakeChannel(params={"queue": value} if value else {})
    report = await run(flow, ch)
    assert ch.ops("queue") == expected
    assert report.end_node == ("main:t" if expected else "main:bye")


@pytest.mark.parametrize("status,end", [("TIMEOUT", "to"), ("JOINEMPTY", "to"), ("FULL", "full")])
async def test_queue_statuses(run, status, end):
    flow = make_flow(
        {
            "q": {"type": "transfer", "queue": "sales", "timeout": "60s", "on_timeout": "to", "on_unavailable": "full"},
            "to": {"type": "hangup"},
            "full": {"type": "hangup"},
        }
    )
    ch = FakeChannel(queue_results={"sales": status})
    report = await run(flow, ch)
    assert report.end_node == f"main:{end}"
    assert ch.ops("queue") == [("queue", "sales", 60.0)]


async def test_caller_hangup_while_transferred_keeps_outcome(run):
    ch = FakeChannel(hangup_at=30.0)
    report = await run(transfer_flow(next="after"), ch)
    # the caller hung up during the conversation: Dial said ANSWER and the caller is gone; the call ends at the
    # transfer node, transferred, and the metric counts an answer
    assert (report.outcome, report.end_node, report.end_target) == ("transferred", "main:t", "extension:1001")
    assert report.visits[-1].reason == "hangup" and report.path == ["main:t"]


async def test_caller_hangup_while_ringing_is_abandoned(run):
    ch = FakeChannel(hangup_at=3.0, prompt_seconds=1.0)
    report = await run(transfer_flow(next="after"), ch)
    assert report.outcome == "abandoned" and report.end_node == "main:t"
    assert "DIALSTATUS CANCEL (caller hung up)" in run.trace("transfer")


def results_of(target: str) -> dict[str, float]:
    from ivr.metrics import REGISTRY

    return {
        s.labels["result"]: s.value
        for family in REGISTRY.collect()
        if family.name == "ivr_transfers"
        for s in family.samples
        if s.name == "ivr_transfers_total" and s.labels["flow"] == "main" and s.labels["target"] == target
    }


@pytest.mark.parametrize(
    "kind,status,hangup_at,result",
    [
        ("dial", "ANSWER", None, "answered"),  # DIALSTATUS ANSWER
        ("queue", "ANSWERED", None, "answered"),  # no QUEUESTATUS after an answered queue call (agi-07)
        ("queue", "CONTINUE", None, "answered"),  # QUEUESTATUS with option c: answered too
        ("dial", "ANSWER", 3.0, "abandoned"),  # the caller hung up while it rang: DIALSTATUS CANCEL
        ("queue", "ANSWERED", 5.0, "abandoned"),  # ... while waiting in the queue
        ("dial", "BUSY", None, "busy"),
        ("dial", "NOANSWER", None, "noanswer"),
        ("queue", "TIMEOUT", None, "timeout"),
        ("queue", "JOINEMPTY", None, "joinempty"),
        ("dial", "TORTURE", None, "other"),  # a status outside the documented set: the label stays bounded
    ],
)
async def test_transfer_results_are_one_vocabulary_for_dial_and_queue(run, kind, status, hangup_at, result):
    """ivr_transfers_total{result}: the same word for the same thing whether the flow dialled or queued
    (docs/observability.md); DIALSTATUS ANSWER used to be `answer` and a queue call `answered`."""
    from ivr import metrics

    target = "1001" if kind == "dial" else "sales"
    flow = transfer_flow(next="after") if kind == "dial" else queue_flow()
    ch = FakeChannel(
        hangup_at=hangup_at,
        prompt_seconds=1.0,
        queue_wait=10.0,
        dial_results={"PJSIP/1001": status},
        queue_results={"sales": status},
    )
    before = results_of(target)
    await run(flow, ch)
    after = results_of(target)
    changed = {r: after[r] - before.get(r, 0.0) for r in after if after[r] != before.get(r, 0.0)}
    assert changed == {result: 1.0}
    assert result in metrics.TRANSFER_RESULTS


def queue_flow(**kw):
    node = {"type": "transfer", "queue": "sales", "timeout": "120s", "on_timeout": "to", "next": "after"}
    node.update(kw)
    return make_flow({"q": node, "to": {"type": "hangup"}, "after": {"type": "hangup"}})


async def test_caller_hangup_while_waiting_in_queue_is_abandoned_not_answered(run):
    flow = queue_flow()
    before = transfers("sales")
    report = await run(flow, FakeChannel(hangup_at=5.0, queue_wait=10.0))
    assert (report.outcome, report.end_node, report.end_target) == ("abandoned", "main:q", "hangup:caller")
    assert transfers("sales") == {**before, "abandoned": before["abandoned"] + 1}
    assert "QUEUESTATUS ABANDONED (caller hung up)" in run.trace("transfer")


async def test_caller_hangup_after_queue_agent_answered_is_transferred(run):
    flow = queue_flow()
    before = transfers("sales")
    report = await run(flow, FakeChannel(hangup_at=30.0, queue_wait=10.0))
    assert (report.outcome, report.end_node, report.end_target) == ("transferred", "main:q", "queue:sales")
    assert report.visits[-1].reason == "hangup"
    assert transfers("sales") == {**before, "answered": before["answered"] + 1}


async def test_queue_answered_caller_stays_goes_next(run):
    report = await run(queue_flow(), FakeChannel())
    assert (report.outcome, report.end_node) == ("transferred", "main:after")


def transfers(target: str) -> dict[str, float]:
    from ivr.metrics import REGISTRY

    return {
        result: REGISTRY.get_sample_value("ivr_transfers_total", {"flow": "main", "target": target, "result": result})
        or 0.0
        for result in ("answered", "abandoned", "timeout", "continue")
    }


# --- park and hold ----------------------------------------------------------------------------------------


async def test_park_sets_comeback_and_ends_parked(run):
    flow = make_flow(
        {
            "p": {"type": "park", "lot": "sales", "timeout": "45s", "announcement": ["ann"], "comeback": "back"},
            "back": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch)
    assert ch.variables["IVR_COMEBACK"] == "main:back"
    # the comeback location is the service's context (whose dialplan reads IVR_COMEBACK), not the lot's
    assert ch.ops("park") == [("park", "sales", 45.0, "ivr-park-comeback")]
    assert report.outcome == "parked" and report.end_target == "park:sales"
    assert report.visits[0].detail == "timeout"


async def test_park_without_comeback_clears_an_earlier_one_and_uses_the_setting(run):
    flow = make_flow({"p": {"type": "park", "lot": "sales", "timeout": "45s"}})
    ch = FakeChannel()
    ch.variables["IVR_COMEBACK"] = "main:old"  # left by an earlier park of this call
    await run(flow, ch, park_comeback_context="my-comeback")
    assert ch.variables["IVR_COMEBACK"] == ""
    assert ch.ops("park") == [("park", "sales", 45.0, "my-comeback")]


async def test_comeback_starts_at_the_node(run):
    flow = make_flow(
        {
            "p": {"type": "park", "comeback": "back"},
            "back": {"type": "play", "prompts": ["sorry"], "next": "bye"},
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    report = await run(flow, ch, start="back")
    assert report.path == ["main:back", "main:bye"]


async def test_hold_slices_music_and_announcements(run):
    flow = make_flow(
        {
            "h": {
                "type": "hold",
                "music_class": "jazz",
                "announcement": ["ann"],
                "every": "20s",
                "max": "50s",
                "next": "bye",
            },
            "bye": {"type": "hangup"},
        }
    )
    ch = FakeChannel()
    await run(flow, ch)
    assert ch.ops("moh") == [("moh", "jazz", 20.0), ("moh", "jazz", 20.0), ("moh", "jazz", 10.0)]
    assert ch.played() == ["/p/en/ann", "/p/en/ann"]


# --- recording --------------------------------------------------------------------------------------------


def record_flow(policy, **rec):
    return make_flow(
        {
            "start": {"type": "record", "action": "start", "next": "pause"},
            "pause": {"type": "record", "action": "pause", "next": "resume"},
            "resume": {"type": "record", "action": "resume", "next": "stop"},
            "stop": {"type": "record", "action": "stop", "next": "bye"},
            "bye": {"type": "hangup"},
        },
        recording={"policy": policy, "consent_prompts": ["consent"], **rec},
    )


async def test_recording_start_pause_resume_stop(run, storage):
    ch = FakeChannel(uniqueid="17.5/../x")
    await run(record_flow("always", file="${flow}-${uniqueid}-${caller_id}"), ch)
    path = "/var/spool/asterisk/monitor/main-17.5___x-+37060000001.wav"
    # policy always starts at call start; the start node then keeps it running
    assert [op for op in ch.log if op[0] in ("mixmonitor", "stop_mixmonitor")] == [
        ("mixmonitor", path, False),
        ("stop_mixmonitor",),
        ("mixmonitor", path, True),
        ("stop_mixmonitor",),
    ]
    recs = await storage.list_recordings(call_id="17.5/../x")
    assert len(recs) == 1 and recs[0].path == path


async def test_recording_never(run):
    ch = FakeChannel()
    await run(record_flow("never"), ch)
    assert ch.ops("mixmonitor") == []


async def test_recording_consent_opt_out(run):
    ch = FakeChannel(presses=[(1.0, "9")])
    report = await run(record_flow("consent"), ch)
    assert ch.played()[0] == "/p/en/consent"
    assert ch.ops("mixmonitor") == []
    assert report.variables["recording_consent"] == "no"


async def test_recording_consent_given(run):
    ch = FakeChannel()
    report = await run(record_flow("consent"), ch)
    assert len(ch.ops("mixmonitor")) == 2
    assert ch.ops("wait") == [("wait", 2.0)]
    assert report.variables["recording_consent"] == "yes"


async def test_transfer_with_record_asks_consent_once(run):
    flow = make_flow(
        {
            "t": {"type": "transfer", "queue": "sales", "record": True, "on_timeout": "t2"},
            "t2": {"type": "transfer", "queue": "other", "record": True},
        },
        recording={"policy": "consent", "consent_prompts": ["consent"]},
    )
    ch = FakeChannel(queue_results={"sales": "TIMEOUT"})
    await run(flow, ch)
    assert ch.played().count("/p/en/consent") == 1
    assert len(ch.ops("mixmonitor")) == 1


# --- voicemail --------------------------------------------------------------------------------------------


def vm_flow():
    return make_flow(
        {
            "vm": {
                "type": "voicemail",
                "mailbox": "sales",
                "greeting": ["vm"],
                "max_length": "60s",
                "silence": "4s",
                "next": "bye",
            },
            "bye": {"type": "hangup", "prompts": ["bye"]},
        }
    )


async def test_voicemail_stored(run, storage):
    ch = FakeChannel(record_seconds=12.0)
    report = await run(vm_flow(), ch)
    assert report.outcome == "voicemail" and report.end_target == "voicemail:sales"
    (op,) = ch.ops("record_file")
    assert op[2:] == ("wav", 60.0, 4.0, True)
    assert op[1].startswith("/var/spool/asterisk/voicemail/ivr/sales-1795909322.39-2026")
    (vm,) = await storage.list_voicemails("sales")
    assert vm.seconds == 12.0 and vm.caller == "+37060000001" and vm.path == op[1] + ".wav"
    assert vm.flow == "main" and vm.call_id == "1795909322.39"


async def test_voicemail_hangup_ends_message_and_keeps_outcome(run, storage):
    ch = FakeChannel(record_seconds=30.0, hangup_at=10.0)
    report = await run(vm_flow(), ch)
    assert report.outcome == "voicemail"
    (vm,) = await storage.list_voicemails("sales")
    assert vm.seconds == 8.0  # greeting took 2 s


async def test_voicemail_too_short_is_not_stored(run, storage):
    report = await run(vm_flow(), FakeChannel(record_seconds=0.4))
    assert report.outcome == "contained"
    assert await storage.list_voicemails("sales") == []


# --- callback ---------------------------------------------------------------------------------------------


def cb_flow():
    return make_flow(
        {
            "cb": {
                "type": "callback",
                "queue": "sales",
                "prompts": ["cb_offer"],
                "number_prompts": ["cb_number"],
                "confirm_prompts": ["cb_confirm"],
                "min_length": 6,
                "max_length": 15,
                "retries": 1,
                "next": "bye",
                "on_failure": "sorry",
            },
            "bye": {"type": "hangup"},
            "sorry": {"type": "hangup"},
        }
    )


async def test_callback_confirms_caller_id(run, storage):
    # offer 2 s, read-back 12 digits = 6 s, confirm prompt: 1 at 9 s
    ch = FakeChannel(caller_id="+37060000001", presses=[(9.0, "1")])
    report = await run(cb_flow(), ch)
    assert ch.ops("say_digits") == [("say_digits", "37060000001")]
    assert report.outcome == "callback"
    (req,) = await storage.list_callbacks(queue="sales")
    assert req.number == "+37060000001" and req.source_call_id == "1795909322.39"


async def test_callback_other_number(run, storage):
    presses = [(9.0, "2")] + [(11.5 + 0.2 * i, d) for i, d in enumerate("861234567#")] + [(23.0, "1")]
    report = await run(cb_flow(), FakeChannel(presses=presses))
    (req,) = await storage.list_callbacks(queue="sales")
    assert req.number == "861234567"
    assert report.end_node == "main:bye"


async def test_callback_without_caller_id_fails_after_retries(run, storage):
    report = await run(cb_flow(), FakeChannel(caller_id="anonymous"))
    assert report.end_node == "main:sorry"
    assert await storage.list_callbacks() == []


LT_NUMBERS = r"^(\+370|8)[3-9][0-9]{7}$"


def typed(at: float, digits: str) -> list[tuple[float, str]]:
    return [(at + 0.2 * i, d) for i, d in enumerate(digits)]


async def test_callback_caller_id_outside_the_pattern_is_not_offered(run, storage):
    # A foreign (or premium-rate) caller ID is never read back: the caller is asked for a number at once.
    presses = typed(2.5, "861234567#") + [(13.0, "1")]  # number prompt 2 s, offer 2 s, read-back 4.5 s, confirm
    ch = FakeChannel(caller_id="+4790000000", presses=presses)
    report = await run(cb_flow(), ch, callback_number_pattern=LT_NUMBERS)
    assert ch.played()[0] == "/p/en/cb_number"
    assert ch.ops("say_digits") == [("say_digits", "861234567")]
    (req,) = await storage.list_callbacks(queue="sales")
    assert req.number == "861234567" and report.outcome == "callback"


async def test_callback_typed_premium_number_is_refused_and_asked_again(run, storage):
    flow = cb_flow()
    flow.nodes["cb"].invalid_prompts = ["invalid"]
    # 0900... (leading 0: not a number the default pattern allows), then a good one
    presses = typed(2.5, "0900123456#") + typed(9.0, "861234567#") + [(20.0, "1")]
    ch = FakeChannel(caller_id="", presses=presses)
    report = await run(flow, ch)
    assert ch.played()[:3] == ["/p/en/cb_number", "/p/en/invalid", "/p/en/cb_number"]
    assert ("say_digits", "0900123456") not in ch.ops("say_digits")
    (req,) = await storage.list_callbacks(queue="sales")
    assert req.number == "861234567" and report.end_node == "main:bye"


async def test_callback_node_pattern_overrides_the_service_pattern(run, storage):
    flow = cb_flow()
    flow.nodes["cb"].number_pattern = LT_NUMBERS
    ch = FakeChannel(caller_id="+4790000000")  # fine for the service's default, not for this node
    report = await run(flow, ch)
    assert ch.ops("say_digits") == [] and report.end_node == "main:sorry"
    assert await storage.list_callbacks() == []


async def test_callback_only_refused_numbers_exhaust_retries(run, storage):
    presses = typed(2.5, "1900#") + typed(9.0, "0012345678#")
    report = await run(cb_flow(), FakeChannel(caller_id="", presses=presses))
    assert report.end_node == "main:sorry" and await storage.list_callbacks() == []


def test_engine_settings_take_the_service_number_pattern():
    from types import SimpleNamespace

    base = dict(prompts_dir="/p", dial_template="PJSIP/{extension}", recordings_dir="/r")
    with_pattern = SimpleNamespace(
        **base,
        callbacks=SimpleNamespace(number_pattern=LT_NUMBERS),
        calls=SimpleNamespace(park_comeback_context="my-comeback"),
    )
    settings = FlowEngine.settings_from(with_pattern)
    assert settings.callback_number_pattern == LT_NUMBERS and settings.park_comeback_context == "my-comeback"
    settings = FlowEngine.settings_from(SimpleNamespace(**base))  # older Settings without those sections
    assert settings.callback_number_pattern == r"^\+?[1-9][0-9]{6,14}$"
    assert settings.park_comeback_context == "ivr-park-comeback"


def test_callback_number_pattern_must_be_a_regex():
    with pytest.raises(ValueError, match="invalid regular expression"):
        make_flow({"cb": {"type": "callback", "queue": "s", "number_pattern": "(", "next": "cb"}})


# --- say, set, hangup, cross-flow -------------------------------------------------------------------------


async def test_say_and_set(run):
    flow = make_flow(
        {
            "s": {
                "type": "set",
                "variables": {"acct": "A-${caller_id}", "n": "42", "word": "ab1?"},
                "channel": True,
                "next": "d",
            },
            "d": {"type": "say", "mode": "digits", "value": "${acct}", "next": "n"},
            "n": {"type": "say", "mode": "number", "value": "${n}", "next": "a"},
            "a": {"type": "say", "mode": "alpha", "value": "${word}", "next": "bad"},
            "bad": {"type": "say", "mode": "number", "value": "${acct}", "next": "bye"},
            "bye": {"type": "hangup", "prompts": ["bye"]},
        }
    )
    ch = FakeChannel(caller_id="+3706")
    report = await run(flow, ch)
    assert ch.variables["acct"] == "A-+3706"
    assert ch.ops("say_digits") == [("say_digits", "3706")]
    assert ch.ops("say_number") == [("say_number", 42)]
    assert ch.played() == ["letters/a", "letters/b", "digits/1", "/p/en/bye"]
    assert report.outcome == "contained" and ch.ops("hangup")


async def test_cross_flow_goto_uses_other_flows_prompts_and_defaults(run):
    main = make_flow({"g": {"type": "goto", "target": "other:hello"}}, variables={"x": "main"})
    other = make_flow(
        {"hello": {"type": "play", "prompts": ["welcome"], "next": "bye"}, "bye": {"type": "hangup"}},
        name="other",
        variables={"x": "other", "y": "${caller_id}"},
        prompts={"welcome": {"en": {"file": "other/welcome"}}},
    )
    ch = FakeChannel()
    report = await run({"main": main, "other": other}, ch)
    assert report.path == ["main:g", "other:hello", "other:bye"]
    assert ch.played() == ["/p/other/welcome"]
    assert report.variables["x"] == "main" and report.variables["y"] == "+37060000001"


async def test_undefined_node_is_an_error(run):
    report = await run(make_flow({"g": {"type": "goto", "target": "nowhere"}}), FakeChannel())
    assert report.outcome == "error" and "has no node 'nowhere'" in report.error


async def test_hangup_on_nth_call_records_node(run):
    flow = make_flow(
        {
            "a": {"type": "play", "prompts": ["welcome"], "next": "b"},
            "b": {"type": "play", "prompts": ["welcome"], "next": "c"},
            "c": {"type": "hangup"},
        }
    )
    report = await run(flow, FakeChannel(hangup_on_call=3))  # answer, play(a), play(b) <- here
    assert report.outcome == "abandoned" and report.end_node == "main:b"


async def test_comeback_restores_recording_and_consent(run):
    flow = make_flow(
        {"p": {"type": "park", "comeback": "t"}, "t": {"type": "transfer", "queue": "sales", "record": True}},
        recording={"policy": "consent", "consent_prompts": ["consent"]},
    )
    # first part: consent given, recording, parked (timeout -> comeback)
    first = FakeChannel()
    await run(
        make_flow(
            {"r": {"type": "record", "action": "start", "next": "p"}, **flow.model_dump(by_alias=True)["nodes"]},
            recording={"policy": "consent", "consent_prompts": ["consent"]},
        ),
        first,
    )
    assert first.variables["IVR_RECORDING_STATE"] == "recording"
    # second part: a new session on the same channel (its variables survive), entering at the comeback node
    second = FakeChannel(presses=[(0.5, "9")])
    second.variables.update(first.variables)
    report = await run(flow, second, start="t")
    assert "/p/en/consent" not in second.played()  # not asked again
    assert second.ops("mixmonitor") == []  # the running MixMonitor is not doubled
    assert report.variables["recording_consent"] == "yes"


async def test_storage_failure_is_a_typed_error(run):
    from ivr.storage import StorageError

    class BrokenStorage:
        async def add_voicemail(self, vm):
            raise StorageError("disk full: /var/lib/ivr/ivr.db")

    run.storage = BrokenStorage()
    report = await run(vm_flow(), FakeChannel(record_seconds=5.0))
    assert report.outcome == "error"
    assert "recorded but not stored: disk full" in report.error

"""End to end: simulated Asterisk -> real FastAGIServer -> flow router -> engine, on the sample flows in
config/flows (node ids as documented in the flow file). Virtual time: a call of minutes runs in milliseconds."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr import metrics
from ivr.agi.fastagi import FastAGIServer
from ivr.flow.engine import FlowEngine
from ivr.flow.loader import load_flows
from ivr.flow.lookup import FixtureLookupClient
from ivr.flow.routing import fixed_flow_router
from ivr.metric_batch import BATCH
from ivr.sim import (
    AgentSpec,
    CallSpec,
    Hangup,
    NextPrompt,
    OnCommand,
    Press,
    QueueSpec,
    SimConfig,
    SimulatedAsterisk,
    Speak,
    VirtualClock,
)

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC
MONDAY_NOON = datetime(2026, 3, 23, 10, 0, tzinfo=UTC)  # 12:00 in Vilnius: open
MONDAY_NIGHT = datetime(2026, 3, 23, 18, 30, tzinfo=UTC)  # 20:30 in Vilnius: closed


@pytest.fixture
async def stack(storage, tmp_path):
    started = []
    (tmp_path / "vm").mkdir()
    (tmp_path / "rec").mkdir()

    async def start(at: datetime = MONDAY_NOON, operator: AgentSpec | None = None, on_node=None):
        flows = load_flows(ROOT / "config" / "flows")
        clock = VirtualClock(start=at)
        lookups = FixtureLookupClient({"main:crm_lookup": {"name": "Ann", "balance": {"euros": 42}, "vip": False}})
        reports = []
        engine = FlowEngine(
            flows,
            storage=storage,
            lookup_client=lookups,
            clock=clock.datetime,
            prompts_dir="/prompts",
            recordings_dir=str(tmp_path / "rec"),
            voicemail_dir=str(tmp_path / "vm"),
        )
        server = FastAGIServer(fixed_flow_router(engine, on_report=reports.append, on_node=on_node), "127.0.0.1", 0)
        await server.start()
        queues = {
            name: QueueSpec(name, members=["Local/answer2s@agents"], setinterfacevar=True)
            for name in ("sales", "support", "billing", "complaints", "technical")
        }
        config = SimConfig(
            queues=queues,
            agents={
                "answer2s": AgentSpec("answer2s", answer_after=3.0, talk=20.0),
                "6000": operator or AgentSpec("6000", answer_after=2.0, talk=30.0),
            },
        )
        sim = SimulatedAsterisk(config, clock=clock)
        await sim.start(fastagi=("127.0.0.1", server.port), ami=False)
        started.append(server)
        return sim, reports

    yield start
    for server in started:
        await server.stop()


async def call(
    stack, script, at=MONDAY_NOON, operator=None, reports_expected=1, on_node=None, all_reports=False, **spec
):
    sim, reports = await stack(at, operator, on_node)
    try:
        flow = spec.pop("flow_override", "main")
        c = await sim.place_call(CallSpec(flow=flow, caller_id="+37060000001", script=script, **spec))
        record = await c.finished(timeout=20)
    finally:
        await sim.stop()
    assert len(reports) == reports_expected, record.commands()
    if all_reports:
        return record, reports
    return record, (reports[0] if reports else None)


# language 1 (English), consent notice (silence = consent), welcome, then the main menu greeting starts
TO_MAIN_MENU = [NextPrompt(0.5), Press("1"), NextPrompt(), NextPrompt(), NextPrompt(0.5)]


async def test_menu_choice_to_a_queue(stack):
    record, report = await call(stack, TO_MAIN_MENU + [Press("1")])
    assert report.path == [
        "main:language_select",
        "main:hours_check",
        "main:recording_start",
        "main:welcome",
        "main:main_menu",
        "main:sales",
        "main:post_call_survey",  # the agent hung up first: the caller is offered the survey (and stays silent)
    ]
    assert report.outcome == "transferred" and report.end_target == "queue:sales"
    assert 'EXEC Queue "sales,,,,120"' in record.commands()
    assert 'SET VARIABLE CALLERID(name) "Sales: +37060000001"' in record.commands()
    assert any(cmd.startswith('EXEC MixMonitor "') and "/rec/main-" in cmd for cmd in record.commands())
    assert record.variables["IVR_STATUS"] == "OK" and record.variables["IVR_OUTCOME"] == "transferred"
    assert report.version and report.seconds > 20  # the agent talked 20 virtual seconds


async def test_after_the_agent_hangs_up_the_caller_answers_the_survey(stack, storage):
    # The agent talks 20 s and hangs up; Queue() returns with the caller still up (agi-07), the survey starts.
    before = metrics.REGISTRY.get_sample_value(
        "ivr_surveys_total", {"flow": "main", "queue": "sales", "result": "completed"}
    )
    survey = [OnCommand("EXEC Queue"), NextPrompt(), NextPrompt(0.5), Press("4"), NextPrompt(0.5), Press("1")]
    record, report = await call(stack, TO_MAIN_MENU + [Press("1")] + survey)
    assert report.path[-2:] == ["main:sales", "main:post_call_survey"]
    assert (report.outcome, report.end_target) == ("transferred", "queue:sales")
    answers = await storage.list_survey_answers(flow="main")
    assert [(a.question, a.answer, a.queue, a.agent, a.call_id) for a in answers] == [
        ("csat", "4", "sales", "Local/answer2s@agents", report.uniqueid),
        ("resolved", "1", "sales", "Local/answer2s@agents", report.uniqueid),
    ]
    BATCH.flush()
    after = metrics.REGISTRY.get_sample_value(
        "ivr_surveys_total", {"flow": "main", "queue": "sales", "result": "completed"}
    )
    assert after == (before or 0) + 1


async def test_invalid_then_valid_input(stack):
    record, report = await call(
        stack, TO_MAIN_MENU + [Press("8"), NextPrompt(), NextPrompt(0.5), Press("2"), NextPrompt(0.5), Press("1")]
    )
    menu = report.visits[4]
    assert (menu.node, menu.reason, menu.target) == ("main_menu", "valid", "main:support_menu")
    streams = [c for c in record.commands() if c.startswith("STREAM FILE")]
    assert streams[3:6] == [
        'STREAM FILE /prompts/en/main_menu "0123456789*#"',
        'STREAM FILE /prompts/en/invalid_option "0123456789*#"',
        'STREAM FILE /prompts/en/main_menu "0123456789*#"',
    ]
    assert report.end_target == "queue:support"


async def test_no_input_exhaustion_goes_to_operator(stack):
    record, report = await call(stack, TO_MAIN_MENU)
    menu = report.visits[4]
    assert (menu.reason, menu.detail, menu.target) == ("exhausted", "no input 3 times", "main:operator")
    assert [c for c in record.commands() if c.startswith("WAIT FOR DIGIT")][-3:] == ["WAIT FOR DIGIT 6000"] * 3
    assert 'EXEC Dial "PJSIP/6000,20"' in record.commands()
    assert report.outcome == "transferred" and report.end_target == "extension:6000"


async def test_on_node_names_flow_and_node_by_the_agi_uniqueid(stack):
    seen = []
    record, report = await call(stack, TO_MAIN_MENU + [Press("1")], on_node=lambda *args: seen.append(args))
    assert {uid for uid, _, _ in seen} == {record.uniqueid}
    assert [f"{flow}:{node}" for _, flow, node in seen[:-1]] == report.path
    assert seen[-1] == (record.uniqueid, "main", None)


async def test_a_raising_on_node_does_not_change_the_call(stack, caplog):
    def broken(uniqueid, flow, node):
        raise KeyError(uniqueid)

    record, report = await call(stack, TO_MAIN_MENU + [Press("1")], on_node=broken)
    assert report.outcome == "transferred" and report.end_target == "queue:sales"
    assert record.variables["IVR_STATUS"] == "OK"
    assert "on_node failed" in caplog.text


async def test_caller_hangup_mid_prompt_is_recorded_with_its_node(stack):
    record, report = await call(stack, TO_MAIN_MENU[:-1] + [NextPrompt(1.0), Hangup()])
    assert report.outcome == "abandoned"
    assert report.end_node == "main:main_menu"
    assert report.visits[-1].reason == "hangup"
    assert record.ended.by == "caller"
    assert "IVR_OUTCOME" not in record.variables  # the channel was gone


async def test_language_choice_switches_prompts(stack):
    record, report = await call(
        stack, [NextPrompt(0.5), Press("2"), NextPrompt(), NextPrompt(), NextPrompt(0.5), Press("1")], language="en"
    )
    assert report.language == "lt"
    cmds = record.commands()
    assert 'SET VARIABLE CHANNEL(language) "lt"' in cmds
    assert 'STREAM FILE /prompts/lt/welcome "0123456789*#"' in cmds
    assert 'STREAM FILE /prompts/lt/main_menu "0123456789*#"' in cmds


async def test_after_hours_voicemail(stack, storage, tmp_path):
    script = [
        NextPrompt(0.5),
        Press("1"),
        NextPrompt(1.0),
        Press("1"),
        OnCommand("RECORD FILE", 1.0),
        Speak(6.0),
        OnCommand("RECORD FILE", 9.0),
        Hangup(),
    ]
    record, report = await call(stack, script, at=MONDAY_NIGHT)
    assert report.path[:3] == ["main:language_select", "main:hours_check", "main:after_hours"]
    assert report.visits[1].reason == "closed"
    assert report.outcome == "voicemail" and report.end_target == "voicemail:1000"
    (vm,) = await storage.list_voicemails("1000")
    assert vm.caller == "+37060000001" and vm.flow == "main" and vm.seconds > 5
    assert vm.path.startswith(str(tmp_path / "vm" / "1000-")) and Path(vm.path).exists()


async def test_operator_no_answer_parks_with_comeback_then_comeback_starts_at_node(stack, storage, tmp_path):
    # One call, the whole story: the operator does not answer -> parked (st(45)) -> nobody picks up -> the
    # simulator's [ivr-park-comeback] (as dialplans/extensions_ivr.conf) runs AGI(agi://.../main?node=
    # general_voicemail) on the same channel -> the caller leaves a voicemail in that second session.
    script = TO_MAIN_MENU + [Press("0"), OnCommand("RECORD FILE", 1.0), Speak(3.0)]
    record, reports = await call(
        stack, script, operator=AgentSpec("6000", answer_after=None), reports_expected=2, all_reports=True
    )
    parked, back = reports
    assert parked.path[-2:] == ["main:operator", "main:operator_park"]
    assert parked.visits[-2].detail == "NOANSWER -> on_no_answer"
    assert parked.outcome == "parked" and parked.end_target == "park:default"
    assert back.start_node == "general_voicemail" and back.path[0] == "main:general_voicemail"
    assert back.outcome == "voicemail"

    first, second = record.agi_runs
    assert record.variables["IVR_COMEBACK"] == "main:general_voicemail"
    park = 'EXEC Park "default,st(45)c(ivr-park-comeback\\\\,s\\\\,1)"'
    lines = [(line.direction, line.text) for line in record.session_lines(0)]
    at = lines.index((">>>", park + "\n"))
    assert lines[at + 1 : at + 3] == [("<<<", "200 result=0\n"), ("<<<", "HANGUP\n")]  # agi-07c: the time-out
    assert (first.script, first.status) == ("main", "HANGUP")
    assert (second.context, second.exten, second.priority) == ("ivr-park-comeback", "s", 6)
    assert second.script == "main?node=general_voicemail" and second.env["uniqueid"] == record.uniqueid
    assert any(c.startswith("RECORD FILE ") for c in record.session_commands(1))
    (timeout,) = record.events_named("ParkedCallTimeOut")
    assert timeout["ParkingDuration"] == "45"
    assert record.dials == [("PJSIP/6000", "NOANSWER")]
    assert record.destinations[:3] == ["ivr", "parked:701", "ivr"]  # back in the flow after the lot
    assert record.destinations[3].startswith("recording:" + str(tmp_path / "vm" / "1000-"))
    assert (record.ended.by, record.ended.during) == ("service", "HANGUP")  # voicemail_thanks hangs up
    (vm,) = await storage.list_voicemails("1000")
    assert vm.caller == "+37060000001" and vm.flow == "main" and vm.seconds > 2
    assert Path(vm.path).exists()


async def test_stale_comeback_node_falls_back_to_start(stack):
    record, report = await call(stack, [NextPrompt(0.5), Hangup()], params={"node": "no_such_node"})
    assert report.path == ["main:language_select"] and report.outcome == "abandoned"


async def test_unknown_flow_is_noroute(stack):
    record, report = await call(stack, [], flow_override="nosuch", reports_expected=0)
    assert record.variables["IVR_STATUS"] == "NOROUTE"


async def test_billing_account_input_confirm_lookup_and_recording_pause(stack):
    script = TO_MAIN_MENU + [Press("3"), NextPrompt(0.5), Press("123456#"), NextPrompt(), NextPrompt(0.3), Press("1")]
    record, report = await call(stack, script)
    assert report.path[5:] == [
        "main:billing_pause_recording",
        "main:billing_account",
        "main:crm_lookup",
        "main:billing_route",
        "main:billing_balance_intro",
        "main:billing_balance",
        "main:billing_resume_recording",
        "main:billing_queue",
    ]
    assert report.variables["account"] == "123456" and report.variables["balance"] == "42"
    cmds = record.commands()
    assert "SAY DIGITS 123456 \"0123456789*#\"" in cmds
    assert "SAY NUMBER 42 \"\"" in cmds
    mix = [c for c in cmds if "MixMonitor" in c]
    assert mix[0].startswith('EXEC MixMonitor "') and mix[0].endswith(',i(IVR_MIXMONITOR_ID)"')
    assert mix[1].startswith("EXEC StopMixMonitor")  # account number is not recorded
    assert mix[2].endswith(',ai(IVR_MIXMONITOR_ID)"')  # resumed into the same file
    assert report.outcome == "transferred" and report.end_target == "queue:billing"


def replies_to(record, command: str) -> list[str]:
    """Asterisk's reply line to each time the service sent `command`."""
    out, sent = [], None
    for line in record.transcript:
        if line.direction == ">>>":
            sent = line.text[:-1]
        elif sent is not None:
            if sent == command:
                out.append(line.text.splitlines()[0])
            sent = None
    return out


async def test_account_of_full_length_then_hash_is_confirmed(stack):
    # The prompt says "followed by the hash key": 8 digits and # (real DTMF, 0.42 s apart). Before the fix the #
    # interrupted the read-back and the entry counted as "not confirmed".
    script = TO_MAIN_MENU + [Press("3"), NextPrompt(0.5), Press("12345678#"), OnCommand("STREAM FILE", 0.3), Press("1")]
    record, report = await call(stack, script)
    account = report.visits[6]
    assert (account.node, account.reason, account.target) == ("billing_account", "valid", "main:crm_lookup")
    assert report.variables["account"] == "12345678"
    cmds = record.commands()
    read_back = cmds.index('SAY DIGITS 12345678 "0123456789*#"')
    assert cmds[read_back - 1] == "WAIT FOR DIGIT 2000"  # the grace for the terminator...
    assert replies_to(record, "WAIT FOR DIGIT 2000")[-1] == "200 result=35"  # ...took the # (ASCII 35)
    assert replies_to(record, cmds[read_back]) == ["200 result=0"]  # the read-back was heard to its end
    assert cmds[read_back + 1] == 'STREAM FILE /prompts/en/account_confirm "0123456789*#"'
    assert cmds.count('STREAM FILE /prompts/en/enter_account "0123456789*#"') == 1
    assert report.end_target == "queue:billing"


async def test_callback_number_of_full_length_then_hash_is_stored(stack, storage):
    # 15 digits (the node's max_length) and #; then the offer, the read-back and "press 1 to confirm"
    script = TO_MAIN_MENU + [
        Press("5"),
        NextPrompt(0.5),
        Press("2"),
        NextPrompt(0.5),
        Press("370612345678901#"),
        OnCommand("STREAM FILE"),
        OnCommand("STREAM FILE", 0.3),
        Press("1"),
    ]
    record, report = await call(stack, script)
    assert (report.outcome, report.end_target) == ("callback", "callback:support")
    (request,) = await storage.list_callbacks(queue="support")
    assert request.number == "370612345678901"
    cmds = record.commands()
    assert cmds.count('STREAM FILE /prompts/en/callback_number "0123456789*#"') == 1
    assert replies_to(record, 'SAY DIGITS 370612345678901 "0123456789*#"') == ["200 result=0"]
    assert replies_to(record, 'STREAM FILE /prompts/en/callback_offer "0123456789*#"')[-1].startswith(
        "200 result=0 "
    )  # the # did not cut the offer short (it would have meant "another number")


async def test_caller_hangup_while_waiting_in_queue_is_abandoned(stack):
    # the agent would answer 3 s after Queue() starts; the caller gives up after 1 s
    record, report = await call(stack, TO_MAIN_MENU + [Press("1"), OnCommand("EXEC Queue", 1.0), Hangup()])
    assert report.path[-1] == "main:sales"
    assert (report.outcome, report.end_node, report.end_target) == ("abandoned", "main:sales", "hangup:caller")
    assert report.visits[-1].reason == "hangup"
    assert record.ended.by == "caller"


async def test_caller_hangup_while_the_operator_phone_rings_is_abandoned(stack):
    # no input at the main menu -> operator; the operator would answer after 10 s, the caller hangs up after 4 s
    record, report = await call(
        stack,
        TO_MAIN_MENU + [OnCommand("EXEC Dial", 4.0), Hangup()],
        operator=AgentSpec("6000", answer_after=10.0, talk=30.0),
    )
    assert 'EXEC Dial "PJSIP/6000,20"' in record.commands()
    assert (report.outcome, report.end_node, report.end_target) == ("abandoned", "main:operator", "hangup:caller")
    assert "GET VARIABLE DIALSTATUS" in record.commands()  # read in dead mode, after HANGUP


async def test_caller_hangup_while_talking_to_the_operator_is_transferred(stack):
    record, report = await call(
        stack,
        TO_MAIN_MENU + [OnCommand("EXEC Dial", 10.0), Hangup()],
        operator=AgentSpec("6000", answer_after=2.0, talk=30.0),
    )
    assert (report.outcome, report.end_node, report.end_target) == ("transferred", "main:operator", "extension:6000")
    assert report.visits[-1].reason == "hangup"


async def test_caller_hangup_while_talking_to_a_queue_agent_is_transferred(stack):
    # the agent answers 3 s after Queue() starts and would talk 20 s; the caller hangs up at 10 s
    record, report = await call(stack, TO_MAIN_MENU + [Press("1"), OnCommand("EXEC Queue", 10.0), Hangup()])
    assert (report.outcome, report.end_node, report.end_target) == ("transferred", "main:sales", "queue:sales")


async def test_api_transfer_out_of_the_ivr_is_transferred_not_abandoned(stack):
    # What call control does for POST /calls/{id}/transfer while the caller is in a menu: Setvar
    # IVR_TRANSFERRED, then Redirect to [ivr-queue] (the AGI sees HANGUP, the channel goes on to the queue).
    live = {}

    def on_node(uniqueid, flow, node):
        if node == "main_menu" and "call" in live:
            c = live["call"]
            c.channel.set_var("IVR_TRANSFERRED", "queue:support")
            c.goto("ivr-queue", "support")

    sim, reports = await stack(on_node=on_node)
    try:
        c = await sim.place_call(CallSpec(flow="main", caller_id="+37060000001", script=TO_MAIN_MENU[:-1]))
        live["call"] = c
        record = await c.finished(timeout=20)
    finally:
        await sim.stop()
    (report,) = reports
    assert (report.outcome, report.end_target, report.end_node) == (
        "transferred",
        "api:queue:support",
        "main:main_menu",
    )
    assert "GET VARIABLE IVR_TRANSFERRED" in record.commands()


async def test_callback_flow_as_the_dialplan_starts_it(stack):
    # [ivr-outbound]: AGI(agi://.../callback?outbound=1&lang=..&queue=..&callback=..)
    record, report = await call(
        stack,
        [NextPrompt(0.5), Press("1")],
        flow_override="callback",
        params={"outbound": "1", "lang": "lt", "queue": "billing", "callback": "7"},
    )
    assert (report.outcome, report.end_target, report.language) == ("transferred", "queue:billing", "lt")
    assert report.variables["param_callback"] == "7"
    assert 'EXEC Queue "billing,,,,180"' in record.commands()
    assert 'STREAM FILE /prompts/lt/callback_hello "0123456789*#"' in record.commands()

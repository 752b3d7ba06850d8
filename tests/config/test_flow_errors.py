"""Every kind of flow mistake is reported at its exact file:line:column with a hint saying what to do."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from ivr.flow.loader import load_flows
from ivr.yamlsource import ConfigError, Problem

from .helpers import BASE_FLOW, column_of, line_of, mutate, only, write_flow


def problems_for(tmp_path: Path, text: str, **kwargs) -> tuple[list[Problem], str]:
    path = write_flow(tmp_path / "flows", text)
    try:
        flow_set = load_flows(path.parent, **kwargs)
    except ConfigError as exc:
        return exc.problems, str(path)
    return list(flow_set.warnings), str(path)


def test_base_flow_is_clean(tmp_path: Path) -> None:
    problems, _ = problems_for(tmp_path, BASE_FLOW)
    assert problems == []


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "    nxt: main_menu")
    problems, file = problems_for(tmp_path, text)
    problem = only(problems, "unknown-key")
    assert (problem.file, problem.line, problem.column) == (file, line_of(text, "nxt:"), 5)
    assert problem.message == "unknown key 'nxt'"
    assert problem.hint == "did you mean 'next'?"
    assert problem.format() == f"{file}:{problem.line}:5: error: unknown key 'nxt' (did you mean 'next'?)"
    missing = only(problems, "missing-key")
    assert missing.message == "missing required key 'next' in nodes.welcome"
    assert missing.line == line_of(text, "  welcome:", 2)


def test_unknown_top_level_key_lists_allowed_keys_when_nothing_is_close(tmp_path: Path) -> None:
    text = BASE_FLOW + "zzz: 1\n"
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-key")
    assert problem.line == line_of(text, "zzz:")
    assert problem.hint.startswith("allowed keys: name, description,")


def test_wrong_type_says_what_is_expected(tmp_path: Path) -> None:
    text = mutate("    prompts: [welcome]", "    prompts: {a: b}")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "wrong-type")
    assert problem.line == line_of(text, "prompts: {a: b}")
    assert problem.column == column_of(text, "{a: b}")
    assert problem.message == "nodes.welcome.prompts: expected a list (- item lines), got a mapping"
    assert "- " in problem.hint


def test_bad_duration(tmp_path: Path) -> None:
    text = mutate("    direct_dial:", "    timeout: 5 sec\n    direct_dial:")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert (problem.line, problem.column) == (line_of(text, "timeout: 5 sec"), column_of(text, "5 sec"))
    assert problem.message == "nodes.main_menu.timeout: '5 sec' is not a duration"
    assert problem.hint == "write it like 5s, 500ms, 2m or 1h"


def test_bad_time_range(tmp_path: Path) -> None:
    text = mutate('"08:00-18:00"', '"8-18"')
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == line_of(text, '"8-18"')
    assert "'8-18' is not a time range" in problem.message
    assert problem.hint == "write it like 08:00-18:00"


def test_bad_time_zone(tmp_path: Path) -> None:
    text = mutate("timezone: Europe/Vilnius", "timezone: Europe/Vilna")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == 3
    assert problem.hint == "use an IANA name such as Europe/Vilnius"


def test_unknown_node_type(tmp_path: Path) -> None:
    text = mutate("    type: play", "    type: plya")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-type")
    assert (problem.line, problem.column) == (line_of(text, "type: plya"), column_of(text, "plya"))
    assert problem.hint == "did you mean 'play'?"


def test_node_without_type(tmp_path: Path) -> None:
    text = mutate("    type: play\n", "")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "missing-key")
    assert problem.line == line_of(text, "  welcome:", 2)
    assert "menu" in problem.hint and "transfer" in problem.hint


def test_invalid_regex(tmp_path: Path) -> None:
    text = mutate("      - {closed: office, goto: goodbye}", "      - {caller: '^(+370', goto: goodbye}")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == line_of(text, "caller:")
    assert "invalid regular expression" in problem.message


def test_menu_digit_keys_need_no_quotes_but_letters_are_refused(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      x: goodbye")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert "option 'x' is not a digit sequence" in problem.message


def test_undefined_target_did_you_mean(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "    next: main_manu")
    problems, file = problems_for(tmp_path, text)
    problem = only(problems, "undefined-target")
    assert (problem.file, problem.line, problem.column) == (
        file,
        line_of(text, "main_manu"),
        column_of(text, "main_manu"),
    )
    assert problem.hint == "did you mean 'main_menu'?"


def test_undefined_start(tmp_path: Path) -> None:
    text = mutate("start: hours", "start: hour")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "undefined-target")
    assert problem.line == line_of(text, "start: hour")
    assert problem.hint == "did you mean 'hours'?"


def test_cross_flow_targets(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: other:nowhere\n      5: ghost:x")
    other = "name: other\nstart: end\nnodes:\n  end: {type: hangup}\n"
    write_flow(tmp_path / "flows", other, "other.yaml")
    problems, _ = problems_for(tmp_path, text)
    bad = [p for p in problems if p.code == "undefined-target"]
    assert [(p.line, p.message) for p in bad] == [
        (line_of(text, "other:nowhere"), "target 'other:nowhere': flow 'other' has no node 'nowhere'"),
        (line_of(text, "ghost:x"), "target 'ghost:x': there is no flow 'ghost'"),
    ]


def test_cross_flow_target_makes_node_reachable(tmp_path: Path) -> None:
    other = "name: other\nstart: end\nnodes:\n  end: {type: hangup}\n  side: {type: hangup}\n"
    write_flow(tmp_path / "flows", other, "other.yaml")
    text = mutate("      0: goodbye", "      0: goodbye\n      5: other:side")
    problems, _ = problems_for(tmp_path, text)
    assert problems == []


def test_menu_verb_outside_menu(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "    next: repeat")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "menu-verb")
    assert problem.line == line_of(text, "next: repeat")
    assert problem.message == "menu verb 'repeat' only in menu options"


def test_repeat_as_exhaustion_target(tmp_path: Path) -> None:
    text = mutate("invalid: {retries: 2, exhausted: goodbye}", "invalid: {retries: 2, exhausted: repeat}")
    problems, _ = problems_for(tmp_path, text)
    assert only(problems, "menu-verb").line == line_of(text, "exhausted: repeat")


def test_unreachable_node_is_a_warning(tmp_path: Path) -> None:
    text = BASE_FLOW + "  orphan:\n    type: hangup\n"
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unreachable", "warning")
    assert problem.line == line_of(text, "orphan:")


def test_loop_with_no_way_out(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: spin_a") + (
        "  spin_a:\n    type: play\n    prompts: [bye]\n    next: spin_b\n"
        "  spin_b:\n    type: goto\n    target: spin_a\n"
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "endless-loop")
    assert problem.line == line_of(text, "spin_a:")
    assert problem.message == "nodes spin_a, spin_b form a loop with no way out"


def test_loop_that_plays_nothing(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: again") + (
        "  again:\n    type: set\n    variables: {n: x}\n    next: check\n"
        "  check:\n    type: route\n    rules: [{variable: n, equals: y, goto: goodbye}]\n    else: again\n"
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "busy-loop")
    assert problem.line == line_of(text, "again:")
    assert "loop without playing or waiting" in problem.message


def test_option_shadowing_direct_dial(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      6: goodbye")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "digit-collision")
    assert problem.line == line_of(text, "6: goodbye")
    assert problem.message == "menu 'main_menu': option '6' shadows direct dial '6XXX'"
    assert "narrow the pattern" in problem.hint


def test_options_that_prefix_one_another(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: goodbye\n      12: sales")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "digit-collision")
    assert problem.line == line_of(text, "12: sales")
    assert problem.message == "menu 'main_menu': option '1' is a prefix of option '12'"


def test_bad_dial_pattern(tmp_path: Path) -> None:
    text = mutate("pattern: 6XXX", "pattern: 6XY")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == line_of(text, "6XY")
    assert "X (0-9)" in problem.hint


def test_retries_without_exhaustion_target(tmp_path: Path) -> None:
    text = mutate("    no_input: {retries: 2, exhausted: goodbye}\n", "")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "no-exhausted")
    assert problem.line == line_of(text, "main_menu:")
    assert problem.message == "menu 'main_menu': no_input has 2 retries but no exhaustion target"
    assert "no_input: {exhausted:" in problem.hint


def test_unknown_prompt(tmp_path: Path) -> None:
    text = mutate("    prompts: [welcome]", "    prompts: [welcom]")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-prompt")
    assert (problem.line, problem.column) == (line_of(text, "[welcom]"), column_of(text, "welcom]"))
    assert problem.hint == "did you mean 'welcome'?"


def test_prompt_missing_for_a_declared_language_is_a_warning(tmp_path: Path) -> None:
    text = mutate("    lt: {file: lt/bye, text: Viso gero}\n", "")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "missing-translation", "warning")
    assert problem.line == line_of(text, "  bye:")
    assert problem.message == "prompt 'bye' has no lt version"


def test_missing_prompt_files_are_warnings(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    for name in ("en/welcome", "lt/welcome", "en/menu", "lt/menu", "en/bye"):
        (prompts / name).parent.mkdir(parents=True, exist_ok=True)
        (prompts / f"{name}.wav").write_bytes(b"RIFF")
    problems, _ = problems_for(tmp_path, BASE_FLOW, prompts_dir=prompts)
    problem = only(problems, "missing-file", "warning")
    assert (problem.line, problem.column) == (line_of(BASE_FLOW, "lt/bye"), column_of(BASE_FLOW, "lt/bye"))
    assert "prompts build" in problem.hint


def test_unsafe_prompt_file_is_refused(tmp_path: Path) -> None:
    text = mutate("file: en/bye", "file: ../../etc/passwd")
    problems, _ = problems_for(tmp_path, text)
    assert only(problems, "bad-value").line == line_of(text, "etc/passwd")


def test_unknown_schedule(tmp_path: Path) -> None:
    text = mutate("{closed: office,", "{closed: ofice,")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-schedule")
    assert problem.line == line_of(text, "ofice")
    assert problem.hint == "did you mean 'office'?"


def test_language_offered_but_not_declared(tmp_path: Path) -> None:
    text = mutate("start: hours", "start: pick") + (
        "  pick:\n    type: language\n    prompts: [menu]\n    options: {1: en, 2: lv}\n    next: hours\n"
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "language")
    assert problem.line == line_of(text, "2: lv")
    assert problem.message == "language 'lv' is offered but not declared"


def test_default_language_not_declared(tmp_path: Path) -> None:
    text = mutate("languages: [en, lt]", "language: lv\nlanguages: [en, lt]")
    problems, _ = problems_for(tmp_path, text)
    assert only(problems, "language").line == 2


def test_transfer_without_failure_branches_is_a_warning(tmp_path: Path) -> None:
    text = mutate("    queue: sales\n    on_timeout: goodbye", '    extension: "6001"')
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "dead-end", "warning")
    assert problem.line == line_of(text, "  sales:")
    assert "on_busy, on_no_answer, on_unavailable" in problem.message


def test_yaml_syntax_error_position(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "    next: main_menu: x")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "syntax")
    assert (problem.line, problem.column) == (line_of(text, "main_menu: x"), column_of(text, ": x"))
    assert problem.message.startswith("YAML syntax error: mapping values are not allowed here")
    assert "quoted" in problem.hint


def test_tab_indentation_hint(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "\tnext: main_menu")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "syntax")
    assert problem.line == line_of(text, "\tnext")
    assert "tabs" in problem.hint


def test_duplicate_key(tmp_path: Path) -> None:
    text = mutate("    next: main_menu", "    next: main_menu\n    next: goodbye")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "duplicate-key")
    assert problem.line == line_of(text, "next: goodbye")


def test_errors_of_several_files_come_together_and_duplicate_names(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    write_flow(flows, mutate("    nxt", "    nxt", mutate("    next: main_menu", "    nxt: main_menu")), "main.yaml")
    write_flow(flows, BASE_FLOW, "zcopy.yaml")
    write_flow(flows, "name: [\n", "broken.yaml")
    with pytest.raises(ConfigError) as info:
        load_flows(flows)
    by_file = {p.file.rsplit("/", 1)[-1] for p in info.value.errors}
    assert by_file == {"main.yaml", "broken.yaml"}
    # The valid copy alone is fine; with main fixed, its duplicate name is the error.
    write_flow(flows, BASE_FLOW, "main.yaml")
    (flows / "broken.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        load_flows(flows)
    problem = only(info.value.problems, "duplicate-flow")
    assert problem.file.endswith("zcopy.yaml") and problem.line == 1
    assert problem.hint.endswith("main.yaml already defines it; flow names must be unique")


def test_test_case_files_are_skipped(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    write_flow(flows, BASE_FLOW)
    write_flow(flows, "cases:\n  - not a flow\n", "main.test.yaml")
    assert load_flows(flows).names() == ["main"]


def test_holiday_calendar_missing_and_broken(tmp_path: Path) -> None:
    text = mutate(
        '    weekly: {mon-fri: "08:00-18:00"}', '    weekly: {mon-fri: "08:00-18:00"}\n    holiday_calendar: lt.ics'
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "calendar")
    assert problem.line == line_of(text, "lt.ics")
    assert problem.message.startswith("holiday calendar") and problem.message.endswith("not found")
    (tmp_path / "flows" / "lt.ics").write_text("this is not a calendar\n")
    problems, _ = problems_for(tmp_path, text)
    assert "cannot be read" in only(problems, "calendar").message


def test_holiday_calendar_event_without_start_is_located_in_the_ics(tmp_path: Path) -> None:
    ics = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20261224\n"
        "END:VEVENT\nBEGIN:VEVENT\nUID:b\nSUMMARY:no start\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "lt.ics").write_text(ics)
    text = mutate(
        '    weekly: {mon-fri: "08:00-18:00"}', '    weekly: {mon-fri: "08:00-18:00"}\n    holiday_calendar: lt.ics'
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "calendar")
    assert problem.file.endswith("lt.ics") and problem.line == 8
    assert problem.message == "calendar event without DTSTART"


def test_holiday_calendar_is_parsed_and_watched_but_not_merged(tmp_path: Path) -> None:
    """The engine's hours module gives the calendar its meaning (timed closures too); the loader only checks it."""
    from datetime import date, datetime

    from ivr.flow.loader import parse_calendar

    ics = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20261224\n"
        "DTEND;VALUE=DATE:20261227\nRRULE:FREQ=YEARLY\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    flows = tmp_path / "flows"
    write_flow(
        flows,
        mutate(
            '    weekly: {mon-fri: "08:00-18:00"}',
            '    weekly: {mon-fri: "08:00-18:00"}\n    holiday_calendar: lt.ics\n    holidays: [2026-04-06]',
        ),
    )
    (flows / "lt.ics").write_text(ics)
    flow_set = load_flows(flows, now=datetime(2026, 11, 29, tzinfo=UTC))
    assert flow_set["main"].schedules["office"].holidays == [date(2026, 4, 6)]
    assert flows / "lt.ics" in flow_set.files
    dates, bad = parse_calendar(ics.encode(), datetime(2026, 11, 29))
    assert bad == [] and {date(2026, 12, 24), date(2026, 12, 26), date(2028, 12, 25)} <= dates
    assert date(2026, 12, 27) not in dates
    before = flow_set.version
    (flows / "lt.ics").write_text(ics.replace("20261227", "20261228"))
    assert load_flows(flows).version != before  # a calendar edit is a new version


def test_template_with_a_bad_placeholder(tmp_path: Path) -> None:
    text = BASE_FLOW.replace(
        "  goodbye:\n", "  tell:\n    type: say\n    value: '${acc-ount}'\n    next: goodbye\n  goodbye:\n", 1
    )
    text = mutate("      0: goodbye", "      0: tell", text)
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-template")
    assert (problem.line, problem.column) == (line_of(text, "acc-ount"), column_of(text, "'${acc-ount}'"))
    assert "letters, digits and _" in problem.hint


def test_variable_never_set_is_a_warning_with_did_you_mean(tmp_path: Path) -> None:
    text = BASE_FLOW.replace(
        "  goodbye:\n", "  tell:\n    type: say\n    value: '${caller_di}'\n    next: goodbye\n  goodbye:\n", 1
    )
    text = mutate("      0: goodbye", "      0: tell", text)
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-variable", "warning")
    assert problem.line == line_of(text, "caller_di")
    assert problem.hint == "did you mean 'caller_id'?"


def test_lookup_url_must_be_http(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: crm") + (
        "  crm:\n    type: lookup\n    url: 'file:///etc/passwd'\n    next: goodbye\n    on_error: goodbye\n"
    )
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == line_of(text, "file:///etc/passwd")
    assert problem.message == "lookup url 'file:///etc/passwd' is not http(s)"


def test_consent_policy_needs_consent_prompts(tmp_path: Path) -> None:
    text = mutate("start: hours", "recording: {policy: consent}\nstart: hours")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "recording")
    assert problem.line == line_of(text, "recording:")
    assert "consent_prompts" in problem.hint


def test_node_named_like_a_menu_verb(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: top") + "  top:\n    type: hangup\n"
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "reserved-id")
    assert problem.line == line_of(text, "  top:")


def test_flow_name_differs_from_file_name(tmp_path: Path) -> None:
    path = write_flow(tmp_path / "flows", BASE_FLOW, "front.yaml")
    flow_set = load_flows(path.parent)
    problem = only(list(flow_set.warnings), "file-name", "warning")
    assert (problem.line, problem.hint) == (1, "name the file main.yaml so it is easy to find")


def test_inline_option_errors_come_from_the_form_the_author_meant(tmp_path: Path) -> None:
    """A menu option may be a node id, {goto, label} or an inline node: only the intended form's errors show."""
    text = mutate("      1: sales", "      1: {type: transfer, queu: sales}\n      2: {goto: sales, lable: Sales}")
    problems, _ = problems_for(tmp_path, text)
    assert [(p.line, p.column, p.message, p.hint) for p in problems] == [
        (line_of(text, "queu:"), column_of(text, "queu:"), "unknown key 'queu'", "did you mean 'queue'?"),
        (line_of(text, "lable:"), column_of(text, "lable:"), "unknown key 'lable'", "did you mean 'label'?"),
    ]


def test_inline_option_with_a_misspelt_type(tmp_path: Path) -> None:
    text = mutate("      1: sales", "      1: {type: transfr, queue: sales}")
    problems, _ = problems_for(tmp_path, text)
    problem = only(problems, "unknown-type")
    assert (problem.column, problem.hint) == (column_of(text, "transfr"), "did you mean 'transfer'?")
    assert len(problems) == 1


def test_park_and_callback_without_their_failure_branch_are_warnings(tmp_path: Path) -> None:
    text = mutate("      0: goodbye", "      0: hold_on\n      5: call_me") + (
        "  hold_on:\n    type: park\n  call_me:\n    type: callback\n    queue: sales\n    next: goodbye\n"
    )
    problems, _ = problems_for(tmp_path, text)
    assert [(p.code, p.severity, p.line) for p in problems] == [
        ("dead-end", "warning", line_of(text, "  hold_on:")),
        ("dead-end", "warning", line_of(text, "  call_me:")),
    ]
    assert problems[0].hint == "add `comeback:` so a caller nobody picks up is not dropped"


def test_empty_or_missing_flows_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as info:
        load_flows(tmp_path / "empty")
    assert info.value.problems[0].message == "no flow files in this directory"
    with pytest.raises(ConfigError) as info:
        load_flows(tmp_path / "nowhere")
    assert info.value.problems[0].hint == "give a flows directory or a flow file"


def test_a_flow_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    problems, file = problems_for(tmp_path, "- just\n- a list\n")
    assert [p.format() for p in problems] == [
        f"{file}:1:1: error: a flow file must be a mapping with name, start and nodes "
        "(start from a sample in config/flows/)"
    ]


@pytest.mark.parametrize("target", ['extension: "${agent}@trunk"', 'extension: "6 000"', 'dial: "PJSIP/${agent},m"'])
def test_transfer_target_that_can_never_pass_is_an_error(tmp_path: Path, target: str) -> None:
    text = mutate("    queue: sales", f"    {target}")
    problems, file = problems_for(tmp_path, text)
    problem = only(problems, "bad-value")
    assert problem.line == line_of(text, target)
    assert "can never be a plain extension" in problem.message or "Dial() would misread" in problem.message


def test_transfer_templates_with_placeholders_for_values_are_fine(tmp_path: Path) -> None:
    text = mutate("    queue: sales", '    dial: "PJSIP/${agent}@agents&PJSIP/1999"')
    problems, _ = problems_for(tmp_path, text)
    assert [p for p in problems if p.severity == "error"] == []

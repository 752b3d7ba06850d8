"""The shipped configuration: it passes its own check, keeps its documented node ids, and the schema is current."""

from __future__ import annotations

import json
import re
import wave
from datetime import date
from pathlib import Path

from ivr.flow.loader import load_flows
from ivr.settings import load_settings
from ivr.tools.check import check
from ivr.tools.schema import render

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "config" / "flows"


def test_sample_config_passes_check_without_errors_or_warnings() -> None:
    result = check(str(ROOT / "config" / "ivr.yaml"))
    assert [p.format() for p in result["problems"]] == []
    assert result["flows"] == ["callback", "campaign", "main", "survey"]


def test_sample_settings() -> None:
    settings = load_settings(ROOT / "config" / "ivr.yaml", env={})
    assert settings.flows_dir == ROOT / "config" / "flows"
    assert settings.prompts_dir == ROOT / "recordings" / "prompts"
    assert settings.queues.threshold("support") == 30.0 and settings.queues.threshold("sales") == 20.0


def test_documented_node_ids_exist() -> None:
    """docs/flows.md lists the sample node ids other tests rely on; they must all exist (and vice versa)."""
    doc = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    section = doc.split("## Sample flows", 1)[1].split("\n## ", 1)[0]
    flow_set = load_flows(FLOWS)
    for flow_name in ("main", "callback", "campaign"):
        listed = set(re.findall(rf"`{flow_name}:([a-z_]+)`", section))
        assert listed == set(flow_set[flow_name].nodes), flow_name


def test_every_prompt_has_english_and_lithuanian_text_and_a_wav() -> None:
    flow_set = load_flows(FLOWS)
    for name in flow_set.names():
        for prompt_id, variants in flow_set[name].prompts.items():
            assert set(variants) == {"en", "lt"}, prompt_id
            for variant in variants.values():
                assert variant.text.strip(), prompt_id
                with wave.open(str(ROOT / "recordings" / "prompts" / f"{variant.file}.wav")) as wav:
                    assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    lt_text = flow_set["main"].prompts["welcome"]["lt"].text
    assert "Sveiki" in lt_text


def test_sample_holidays_list_and_calendar() -> None:
    from datetime import datetime

    from ivr.flow.loader import parse_calendar

    assert date(2026, 4, 6) in load_flows(FLOWS)["main"].schedules["office"].holidays  # Easter Monday
    dates, bad = parse_calendar((FLOWS / "holidays-lt.ics").read_bytes(), datetime(2026, 11, 29))
    assert bad == [] and {date(2026, 12, 24), date(2026, 2, 16), date(2026, 11, 2), date(2027, 3, 11)} <= dates


def test_sample_flows_carry_the_schema_header() -> None:
    for path in sorted(FLOWS.glob("*.yaml")):
        if path.name.endswith(".test.yaml"):
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../docs/flow.schema.json", path.name


def test_committed_schema_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "flow.schema.json").read_text(encoding="utf-8")
    assert committed == render(), "run: python main.py schema --write docs/flow.schema.json"
    schema = json.loads(committed)
    assert schema["title"] == "ivr flow" and "MenuNode" in schema["$defs"]
    timeout = schema["$defs"]["MenuNode"]["properties"]["timeout"]
    assert {"type": "number", "minimum": 0} in timeout["anyOf"]  # durations may be 5 or "5s"


def _as_json(value):
    return json.loads(json.dumps(value, default=str))


def test_sample_flows_are_valid_for_editors_using_the_schema() -> None:
    from ivr.yamlsource import load_yaml

    from .minischema import errors

    schema = json.loads((ROOT / "docs" / "flow.schema.json").read_text(encoding="utf-8"))
    for name in ("main", "callback", "survey"):
        data = _as_json(load_yaml(FLOWS / f"{name}.yaml").data)
        assert errors(schema, data) == [], name
    # and the schema does reject mistakes
    data = _as_json(load_yaml(FLOWS / "main.yaml").data)
    data["nodes"]["welcome"]["nxt"] = data["nodes"]["welcome"].pop("next")
    data["nodes"]["sales"]["timeout"] = "two minutes"
    assert errors(schema, data) == [".nodes.welcome: matches 0 of oneOf", ".nodes.sales: matches 0 of oneOf"]
    assert ": unknown key 'nxt'" in errors(schema["$defs"]["PlayNode"], data["nodes"]["welcome"], schema)

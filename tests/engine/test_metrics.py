"""The engine's metrics: labels from the configuration only, durations from the injected (virtual) clock."""

from ivr.flow.lookup import FixtureLookupClient
from ivr.metrics import REGISTRY

from .conftest import make_flow
from .fakes import FakeChannel


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_counters_and_virtual_durations(run):
    flow = make_flow(
        {
            "crm": {"type": "lookup", "url": "http://crm/x", "next": "m", "on_error": "m"},
            "m": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "cb", "2": "vm"},
                "direct_dial": {"pattern": "6XXX", "target": "t"},
            },
            "cb": {"type": "callback", "queue": "mqueue", "prompts": ["cb_offer"], "next": "vm"},
            "vm": {"type": "voicemail", "mailbox": "m1", "next": "t"},
            "t": {"type": "transfer", "queue": "mq", "on_timeout": "bye"},
            "bye": {"type": "hangup"},
        },
        name="metrics_flow",
    )
    run.lookups = FixtureLookupClient({"crm": {"$error": "timeout"}})
    before = {
        "seconds_sum": value("ivr_time_in_ivr_seconds_sum", flow="metrics_flow"),
        "choice": value("ivr_menu_choices_total", flow="metrics_flow", node="m", option="1"),
        "lookup": value("ivr_lookups_total", flow="metrics_flow", node="crm", result="timeout"),
        "transfer": value("ivr_transfers_total", flow="metrics_flow", target="mq", result="timeout"),
        "vm": value("ivr_voicemails_total", flow="metrics_flow"),
        "cb": value("ivr_callbacks_total", queue="mqueue", result="requested"),
        "exit": value("ivr_node_exits_total", flow="metrics_flow", node="m", reason="valid"),
        "visits": value("ivr_node_visits_total", flow="metrics_flow", node="t"),
        "started": value("ivr_calls_started_total", flow="metrics_flow"),
        "outcome": value("ivr_call_outcomes_total", flow="metrics_flow", outcome="voicemail"),
    }
    # 1 during the menu, then confirm the caller ID (offer 2 s + read-back 5.5 s + confirm wait)
    ch = FakeChannel(presses=[(0.5, "1"), (9.0, "1")], queue_results={"mq": "TIMEOUT"})
    report = await run({"metrics_flow": flow}, ch, flow="metrics_flow")
    assert report.outcome == "voicemail"  # the last decisive event wins (callback, then voicemail; the queue failed)
    assert value("ivr_time_in_ivr_seconds_sum", flow="metrics_flow") - before["seconds_sum"] == ch.now
    assert value("ivr_menu_choices_total", flow="metrics_flow", node="m", option="1") == before["choice"] + 1
    assert value("ivr_lookups_total", flow="metrics_flow", node="crm", result="timeout") == before["lookup"] + 1
    assert value("ivr_transfers_total", flow="metrics_flow", target="mq", result="timeout") == before["transfer"] + 1
    assert value("ivr_voicemails_total", flow="metrics_flow") == before["vm"] + 1
    assert value("ivr_callbacks_total", queue="mqueue", result="requested") == before["cb"] + 1
    assert value("ivr_node_exits_total", flow="metrics_flow", node="m", reason="valid") == before["exit"] + 1
    assert value("ivr_node_visits_total", flow="metrics_flow", node="t") == before["visits"] + 1
    assert value("ivr_calls_started_total", flow="metrics_flow") == before["started"] + 1
    assert value("ivr_call_outcomes_total", flow="metrics_flow", outcome="voicemail") == before["outcome"] + 1
    assert value("ivr_calls_active", flow="metrics_flow") == 0


async def test_direct_dial_choice_label_is_fixed(run):
    flow = make_flow(
        {
            "m": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "bye"},
                "direct_dial": {"pattern": "6XXX", "target": "bye"},
            },
            "bye": {"type": "hangup"},
        },
        name="dd_flow",
    )
    before = value("ivr_menu_choices_total", flow="dd_flow", node="m", option="direct_dial")
    await run({"dd_flow": flow}, FakeChannel(presses=[(0.5, "6"), (0.8, "1"), (1.1, "2"), (1.4, "3")]), flow="dd_flow")
    assert value("ivr_menu_choices_total", flow="dd_flow", node="m", option="direct_dial") == before + 1
    # the dialled digits never become a label value
    assert value("ivr_menu_choices_total", flow="dd_flow", node="m", option="6123") == 0

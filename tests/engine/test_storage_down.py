"""The database is gone while calls run: voicemail and callback nodes take their failure branch, counted in
ivr_storage_failures_total, and the call goes on. The storage here is a real one whose database went away (a
closed SQLite storage refuses every call with StorageError, as a lost PostgreSQL does with StorageUnavailable)."""

from __future__ import annotations

from ivr import metrics
from ivr.storage import open_storage

from .conftest import make_flow
from .fakes import FakeChannel
from .test_nodes import cb_flow


def failures(kind: str) -> float:
    return metrics.REGISTRY.get_sample_value("ivr_storage_failures_total", {"action": kind}) or 0.0


async def gone_storage():
    s = open_storage("memory:")
    await s.close()
    return s


def vm_flow(on_failure: str | None = "sorry"):
    vm = {"type": "voicemail", "mailbox": "sales", "greeting": ["vm"], "next": "bye"}
    if on_failure:
        vm["on_failure"] = on_failure
    return make_flow({"vm": vm, "bye": {"type": "hangup", "prompts": ["bye"]}, "sorry": {"type": "hangup"}})


async def test_voicemail_not_stored_takes_on_failure_and_is_counted(run):
    run.storage = await gone_storage()
    before = failures("voicemail")
    report = await run(vm_flow(), FakeChannel(record_seconds=5.0))
    assert report.end_node == "main:sorry" and report.outcome != "error"
    assert failures("voicemail") == before + 1
    assert any("recorded but not stored" in t for t in run.trace("voicemail"))


async def test_voicemail_without_on_failure_is_still_an_error(run):
    run.storage = await gone_storage()
    report = await run(vm_flow(None), FakeChannel(record_seconds=5.0))
    assert report.outcome == "error" and "recorded but not stored" in report.error


async def test_callback_not_stored_takes_on_failure_and_is_counted(run):
    run.storage = await gone_storage()
    before = failures("callback_request")
    report = await run(cb_flow(), FakeChannel(caller_id="+37060000001", presses=[(9.0, "1")]))
    assert report.end_node == "main:sorry" and report.outcome != "callback"
    assert failures("callback_request") == before + 1


async def test_survey_answers_not_stored_are_counted_and_the_survey_goes_on(run):
    run.storage = await gone_storage()
    before = failures("survey_answer")
    questions = [{"id": q, "prompts": ["menu"], "answers": "1-5"} for q in ("csat", "effort")]
    flow = make_flow({"s": {"type": "survey", "questions": questions, "next": "bye"}, "bye": {"type": "hangup"}})
    report = await run(flow, FakeChannel(presses=[(2.5, "4"), (5.0, "2")]))
    assert report.end_node == "main:bye" and report.outcome != "error"  # both questions asked, the call went on
    assert failures("survey_answer") == before + 2


async def test_repeat_callers_with_the_database_gone_lose_the_record_only():
    from datetime import UTC, datetime

    from ivr.repeat_callers import RepeatCallers

    rc = RepeatCallers(await gone_storage(), b"0123456789abcdef", {"24h": 86400.0}, 86400.0)
    before = failures("repeat_callers")
    await rc.record("h", "c1", "main", "sales", datetime(2026, 12, 1, tzinfo=UTC))
    assert failures("repeat_callers") == before + 1

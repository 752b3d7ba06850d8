"""The `survey` node on the engine's fake channel: answers, retries, skipped questions, hangups, queue and agent."""

from __future__ import annotations

import pytest

from ivr import metrics
from ivr.flow.model import Flow
from ivr.metric_batch import BATCH

from .conftest import make_flow
from .fakes import FakeChannel


def survey_flow(**survey: object) -> Flow:
    node = {
        "type": "survey",
        "intro": ["welcome"],
        "questions": [
            {
                "id": "csat",
                "prompts": ["menu"],
                "answers": "1-5",
                "timeout": 3,
                "retries": 1,
                "invalid_prompts": ["invalid"],
            },
            {"id": "resolved", "prompts": ["sub"], "answers": ["1", "2"], "timeout": 3, "retries": 0},
        ],
        "thanks": ["bye"],
    }
    node.update(survey)
    return make_flow({"sales": {"type": "transfer", "queue": "sales", "next": "survey"}, "survey": node})


def sample(name: str, **labels: str) -> float:
    BATCH.flush()
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_after_the_agent_hangs_up_the_caller_answers_both_questions(run, storage):
    # queue: agent answers at 10 s, talks 60 s; intro 70-72, csat prompt 72-74, resolved prompt from the answer on
    ch = FakeChannel(presses=[(75.0, "4"), (77.5, "1")])
    ch.variables["MEMBERINTERFACE"] = "PJSIP/1001"
    before = sample("ivr_surveys_total", flow="main", queue="sales", result="completed")
    before_4 = sample("ivr_survey_answers_total", flow="main", queue="sales", question="csat", answer="4")
    report = await run(survey_flow(), ch)
    assert report.outcome == "transferred" and report.end_node == "main:survey"
    answers = await storage.list_survey_answers()
    assert [(a.question, a.answer, a.queue, a.agent, a.survey, a.call_id) for a in answers] == [
        ("csat", "4", "sales", "PJSIP/1001", "survey", "1795909322.39"),
        ("resolved", "1", "sales", "PJSIP/1001", "survey", "1795909322.39"),
    ]
    assert ch.played()[-1].endswith("en/bye")
    assert sample("ivr_surveys_total", flow="main", queue="sales", result="completed") == before + 1
    assert sample("ivr_survey_answers_total", flow="main", queue="sales", question="csat", answer="4") == before_4 + 1


async def test_a_wrong_digit_is_asked_again_and_silence_skips_the_question(run, storage):
    # csat: 9 is no answer -> invalid prompt + question again, then 2; resolved: silence, no retry -> skipped
    ch = FakeChannel(presses=[(75.0, "9"), (80.5, "2")])
    before = sample("ivr_surveys_total", flow="main", queue="sales", result="partial")
    await run(survey_flow(), ch)
    assert [(a.question, a.answer) for a in await storage.list_survey_answers()] == [("csat", "2")]
    assert any("is not an answer" in t for t in run.trace("invalid"))
    assert any(p.endswith("en/invalid") for p in ch.played())
    assert sample("ivr_surveys_total", flow="main", queue="sales", result="partial") == before + 1


async def test_a_caller_who_hangs_up_mid_survey_keeps_the_answers_given(run, storage):
    ch = FakeChannel(presses=[(75.0, "5")], hangup_at=76.0)
    before = sample("ivr_surveys_total", flow="main", queue="sales", result="partial")
    report = await run(survey_flow(), ch)
    assert report.outcome == "transferred"  # the agent answered: the call stays transferred
    assert [(a.question, a.answer) for a in await storage.list_survey_answers()] == [("csat", "5")]
    assert sample("ivr_surveys_total", flow="main", queue="sales", result="partial") == before + 1


async def test_templates_name_queue_and_agent_and_next_goes_on(run, storage):
    flow = make_flow(
        {
            "survey": {
                "type": "survey",
                "questions": [{"id": "csat", "prompts": ["menu"], "answers": "1-5"}],
                "queue": "${q}",
                "agent": "${who}",
                "next": "bye",
            },
            "bye": {"type": "hangup"},
        },
        variables={"q": "vip-line", "who": "ann"},
    )
    report = await run(flow, FakeChannel(presses=[(2.5, "3")]))
    assert report.end_node == "main:bye" and report.outcome == "contained"
    (answer,) = await storage.list_survey_answers()
    assert (answer.queue, answer.agent) == ("vip-line", "ann")
    assert sample("ivr_survey_answers_total", flow="main", queue="other", question="csat", answer="3") >= 1


def test_the_model_refuses_bad_questions():
    with pytest.raises(ValueError, match="question ids repeat"):
        survey_flow(questions=[{"id": "a", "prompts": ["menu"], "answers": "1-2"}] * 2)
    with pytest.raises(ValueError, match="answers repeat"):
        survey_flow(questions=[{"id": "a", "prompts": ["menu"], "answers": ["1", "1"]}])
    with pytest.raises(ValueError):
        survey_flow(questions=[{"id": "a", "prompts": ["menu"], "answers": ["12", "2"]}])


async def test_a_caller_the_agent_transferred_here_names_that_agent(run, storage):
    # POST /calls/{id}/transfer {"flow": ...}: a new session; Asterisk's BLINDTRANSFER names the agent's channel
    flow = make_flow(
        {"survey": {"type": "survey", "questions": [{"id": "csat", "prompts": ["menu"], "answers": "1-5"}]}}
    )
    ch = FakeChannel(presses=[(2.5, "5")])
    ch.variables["BLINDTRANSFER"] = "PJSIP/1001-0000003f"
    report = await run(flow, ch)
    assert report.outcome == "contained"
    (answer,) = await storage.list_survey_answers()
    assert (answer.queue, answer.agent, answer.answer) == ("", "PJSIP/1001", "5")

"""An agent's call handed to the post-call survey through the HTTP API, end to end on the simulated Asterisk.

The caller talks to an agent (a test handler dials the agent), then `POST /calls/{id}/transfer {"flow": "survey"}`:
call control blind-transfers the agent's side (issue 15), Asterisk names the agent in BLINDTRANSFER and runs
the shipped dialplan's [ivr-outbound] for the caller, which starts the sample `survey` flow (config/flows/survey.yaml)
on the real flow engine over FastAGI. The caller answers; the answers are stored with the agent and read back
through `GET /surveys`, JSON and CSV.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from ivr import metrics
from ivr.agi.router import Router
from ivr.flow.engine import FlowEngine
from ivr.flow.loader import load_flows
from ivr.flow.routing import FlowRoutes
from ivr.metric_batch import BATCH
from ivr.sim import AgentSpec, CallSpec, NextPrompt, Press, SimConfig
from tests.e2e.stack import AUTH, api_stack, until

ROOT = Path(__file__).resolve().parents[2]


def surveys_total(result: str) -> float:
    BATCH.flush()
    return (
        metrics.REGISTRY.get_sample_value("ivr_surveys_total", {"flow": "survey", "queue": "none", "result": result})
        or 0.0
    )


@pytest.fixture
async def stack(tmp_path):
    state: dict = {}
    reports: list = []

    async def agent_call(session) -> None:
        await session.answer()
        state["stack"].freeze()  # time stands still while the caller talks and the test uses the API
        await session.exec("Dial", "Local/1001@agents")

    router = Router()
    router.add("agent", agent_call)
    config = SimConfig()
    config.agents["1001"] = AgentSpec("1001", answer_after=0.0, talk=None, name="Ann Agent")
    async with api_stack(tmp_path, router, config, state) as stack:
        flows = load_flows(ROOT / "config" / "flows")
        engine = FlowEngine(
            flows,
            storage=stack.storage,
            clock=stack.sim.clock.datetime,
            prompts_dir="/prompts",
            recordings_dir=str(tmp_path / "rec"),
            voicemail_dir=str(tmp_path / "vm"),
        )
        # the sample flows behind every script path the test handlers do not take (`survey`, from [ivr-outbound])
        router.fallback = FlowRoutes(lambda: flows, lambda _flows: engine, on_report=reports.append)
        state["reports"] = reports
        yield stack


async def test_the_api_hands_a_talking_caller_to_the_survey_flow(stack):
    before = surveys_total("completed")
    # intro, then the satisfaction question (4), then "resolved?" (1 yes)
    script = [NextPrompt(), NextPrompt(0.5), Press("4"), NextPrompt(0.5), Press("1")]
    sim_call = await stack.sim.place_call(CallSpec(flow="agent", caller_id="37060000001", script=script))
    call_id = sim_call.uniqueid
    await until(
        lambda: (c := stack.registry.call(call_id)) is not None and c.state == "talking",
        what="the caller talking to the agent",
    )

    resp = await stack.post(f"/calls/{call_id}/transfer", {"flow": "survey"})
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert (body["mode"], body["context"], body["exten"]) == ("blind", "ivr-outbound", "survey")
    assert body["transferer"].startswith("Local/1001@agents")
    stack.thaw()  # the survey's prompts and the caller's keys run on simulated time

    rec = await sim_call.finished(timeout=10)
    # back in the IVR after the agent; the shipped dialplan ends the call on the flow's OK ([ivr-enter] done)
    assert rec.destinations == ["ivr", "agent:Local/1001@agents", "ivr"]
    assert (rec.ended.by, rec.ended.during) == ("service", "dialplan ivr-enter,done")
    assert rec.commands()[rec.commands().index('EXEC Dial "Local/1001@agents"') + 1 :][:3] == [
        "ANSWER",
        "GET VARIABLE BLINDTRANSFER",
        'STREAM FILE /prompts/en/survey_intro ""',
    ]
    report = stack.state["reports"][-1]
    assert (report.flow, report.path, report.outcome) == ("survey", ["survey:survey"], "contained")

    # The answers are stored with the agent who handed the caller over (from BLINDTRANSFER, channel suffix dropped).
    resp = await stack.get("/surveys?flow=survey")
    assert resp.status == 200, await resp.text()
    answers = (await resp.json())["answers"]
    assert [(a["question"], a["answer"], a["agent"], a["call_id"]) for a in answers] == [
        ("csat", "4", "Local/1001@agents", report.uniqueid),
        ("resolved", "1", "Local/1001@agents", report.uniqueid),
    ]
    assert surveys_total("completed") == before + 1

    resp = await stack.http.get("/surveys", params={"flow": "survey", "format": "csv"}, headers=AUTH)
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [(r["question"], r["answer"]) for r in rows] == [("csat", "4"), ("resolved", "1")]

"""End to end on the simulated Asterisk: sim (FastAGI client + AMI server) <-> FastAGI server and real AMIClient
<-> call control <-> HTTP API, all on 127.0.0.1 with ephemeral ports.

The inbound call runs a tiny AGI handler that answers and dials an agent (Local/talk@agents answers and stays),
so the API sees a caller bridged with an agent and can act on it.
"""

from __future__ import annotations

import asyncio

import pytest

from ivr.agi.router import Router
from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
from ivr.flow.report import CallReport
from ivr.sim import AgentSpec, CallSpec, Route, SimConfig
from ivr.storage import CallbackRequest
from tests.e2e.stack import INTERNAL_NUMBERS, ApiStack, api_stack, until


class E2E(ApiStack):
    async def talking_call(self) -> str:
        """Place an inbound call that the AGI handler bridges to an agent; return its call id."""
        await self.sim.place_call(CallSpec(flow="agent", caller_id="37060000001", caller_name="Ona"))
        await until(lambda: any(c.state == "talking" for c in self.registry.calls()), what="a talking call")
        return next(c.id for c in self.registry.calls() if c.state == "talking")


@pytest.fixture
async def e2e(tmp_path):
    state: dict = {}

    async def agent_handler(session) -> None:
        await session.answer()
        # Freeze virtual time before the bridge forms: the test then talks to the API in real time, and a quiet
        # simulation would otherwise jump to the next timer (the caller's give-up after an hour) at once.
        state["stack"].freeze()
        await session.exec("Dial", "Local/talk@agents")

    async def callback_handler(session) -> None:
        seen = dict(session.env.raw)
        seen["IVR_CALLBACK_ID"] = await session.get_variable("IVR_CALLBACK_ID")
        seen["IVR_CALLBACK_QUEUE"] = await session.get_variable("IVR_CALLBACK_QUEUE")
        state.setdefault("callback_sessions", []).append(seen)
        await session.answer()

    router = Router()
    router.add("agent", agent_handler)
    router.add("callback", callback_handler)
    config = SimConfig()
    config.agents["2000"] = AgentSpec("2000", answer_after=0.0, talk=None, name="Supervisor")
    config.agents["1002"] = AgentSpec("1002", answer_after=0.0, talk=None, name="Retriever")
    config.agents["5550001"] = AgentSpec("5550001", busy=True)  # a customer whose line is busy
    config.routes["callback"] = Route(flow="callback")  # ivr-outbound,callback runs the flow
    async with api_stack(tmp_path, router, config, state, stack_class=E2E) as env:
        yield env


async def test_talking_call_is_listed(e2e):
    call_id = await e2e.talking_call()
    body = await (await e2e.get(f"/calls/{call_id}")).json()
    assert body["state"] == "talking" and body["caller"]["number"] == "37060000001"


async def test_record_pause_resume_stop_with_index_row(e2e):
    call_id = await e2e.talking_call()
    resp = await e2e.post(f"/calls/{call_id}/recording/start")
    assert resp.status == 201, await resp.text()
    started = await resp.json()
    await until(lambda: e2e.registry.call(call_id).recording is not None, what="MixMonitorStart")
    assert (await e2e.post(f"/calls/{call_id}/recording/pause")).status == 200
    await until(lambda: e2e.registry.call(call_id).recording.recording.muted, what="MixMonitorMute State: 1")
    assert (await e2e.post(f"/calls/{call_id}/recording/resume")).status == 200
    resp = await e2e.post(f"/calls/{call_id}/recording/stop")
    assert resp.status == 200, await resp.text()
    await until(lambda: e2e.registry.call(call_id).recording is None, what="MixMonitorStop")
    row = await (await e2e.get(f"/recordings/{started['recording_id']}")).json()
    assert (row["state"], row["call_id"], row["caller"]) == ("finished", call_id, "37060000001")
    assert row["path"] == started["path"] and row["seconds"] is not None
    # The simulated Asterisk wrote the WAV where the settings say; the API serves it from the index row.
    resp = await e2e.get(f"/recordings/{started['recording_id']}/file")
    assert resp.status == 200, await resp.text()
    assert (await resp.read())[:4] == b"RIFF"


async def test_spy_originates_supervisor_leg(e2e):
    call_id = await e2e.talking_call()
    resp = await e2e.post(f"/calls/{call_id}/spy", json={"supervisor": "2000", "mode": "barge"})
    assert resp.status == 202, await resp.text()
    leg = (await resp.json())["supervisor_leg"]
    await until(lambda: e2e.registry.call(leg) is not None, what="the supervisor leg")
    # The simulated PBX ran ChanSpy in barge mode (option B) on this call's agent channel.
    await until(
        lambda: (
            e2e.sim.calls_by_linkedid.get(call_id) is not None and e2e.sim.calls_by_linkedid[call_id].spied == ["barge"]
        ),
        what="ChanSpy barge on the call",
    )


async def test_park_then_hangup(e2e):
    call_id = await e2e.talking_call()
    # Parking runs on simulated timers (the space announcement): let time run until the sim parks the call,
    # then freeze again so the parking timeout does not fire while the test looks.
    unsubscribe = e2e.sim.pbx.bus.subscribe(lambda ev: e2e.freeze() if ev.name == "ParkedCall" else None)
    resp = await e2e.post(f"/calls/{call_id}/park", json={"timeout": 60})
    assert resp.status == 202, await resp.text()
    e2e.thaw()
    await until(lambda: e2e.registry.parked_in("default"), what="ParkedCall")
    unsubscribe()
    lots = (await (await e2e.get("/parking/default")).json())["calls"]
    assert lots and lots[0]["call_id"] == call_id
    await _expect(await e2e.post(f"/calls/{call_id}/park"), 409)
    resp = await e2e.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    await until(lambda: e2e.registry.call(call_id) is None, what="the call to end")
    assert e2e.registry.parked_in() == []


async def test_blind_transfer_to_extension(e2e):
    call_id = await e2e.talking_call()
    before = {ch.name for ch in e2e.registry.call(call_id).channels}
    resp = await e2e.post(f"/calls/{call_id}/transfer", json={"extension": "1002"})
    assert resp.status == 202, await resp.text()
    await until(
        lambda: (
            e2e.registry.call(call_id) is not None
            and any(ch.name not in before and "1002" in ch.name for ch in e2e.registry.call(call_id).channels)
        ),
        what="the transfer target's channel",
    )


async def test_queue_member_operations(e2e):
    resp = await e2e.post(
        "/queues/testq/members",
        json={"interface": "Local/1002@agents", "name": "Ann", "paused": True, "reason": "start"},
    )
    assert resp.status == 201, await resp.text()
    await until(
        lambda: "Local/1002@agents" in e2e.registry.queues.get("testq", _Empty).members, what="QueueMemberAdded"
    )
    await _expect(await e2e.post("/queues/testq/members", json={"interface": "Local/1002@agents"}), 409)
    assert (await e2e.post("/queues/testq/members/unpause", json={"interface": "Local/1002@agents"})).status == 200
    await until(lambda: not e2e.registry.queues["testq"].members["Local/1002@agents"].paused, what="unpause")
    assert (
        await e2e.post("/queues/testq/members/pause", json={"interface": "Local/1002@agents", "reason": "lunch"})
    ).status == 200
    await until(
        lambda: e2e.registry.queues["testq"].members["Local/1002@agents"].paused_reason == "lunch",
        what="QueueMemberPause with reason",
    )
    queue = await (await e2e.get("/queues/testq")).json()
    assert queue["members"][0]["paused_reason"] == "lunch"
    assert (await e2e.post("/queues/testq/members/logout", json={"interface": "Local/1002@agents"})).status == 200
    await until(lambda: "Local/1002@agents" not in e2e.registry.queues["testq"].members, what="QueueMemberRemoved")
    await _expect(await e2e.post("/queues/testq/members/logout", json={"interface": "Local/1002@agents"}), 404)


async def test_click_to_call_refuses_numbers_outside_the_pattern(e2e):
    resp = await e2e.post("/calls/originate", json={"agent": "talk", "number": "+19005550100"})
    await _expect(resp, 422)
    assert "number_pattern" in (await resp.json())["detail"]


async def test_click_to_call(e2e):
    resp = await e2e.post("/calls/originate", json={"agent": "talk", "number": "1002"})
    assert resp.status == 202, await resp.text()
    call_id = (await resp.json())["call_id"]
    await until(lambda: e2e.registry.call(call_id) is not None, what="the originated call")
    leg = e2e.registry.channels[call_id]
    assert leg.agent_leg and leg.agent == "talk"
    await until(lambda: e2e.registry.call(call_id).state == "talking", what="agent and customer bridged")


class _Empty:
    members: dict = {}


async def _expect(resp, status: int) -> None:
    assert resp.status == status, await resp.text()
    assert set(await resp.json()) == {"error", "detail"}


async def test_callback_scheduler_answered_and_busy(e2e):
    storage = e2e.storage
    answered = await storage.add_callback(CallbackRequest(number="1002", queue="testq"))
    busy = await storage.add_callback(CallbackRequest(number="5550001", queue="support"))
    scheduler = CallbackScheduler(
        storage,
        e2e.control.operations,
        CallbackPolicy(per_queue_limit=1, backoff=(300.0,), ring_timeout=5, number_pattern=INTERNAL_NUMBERS),
    )
    assert await scheduler.run_once() == 2
    await asyncio.wait_for(scheduler.drain(), 10)
    done = await storage.get_callback(answered)
    assert (done.state, done.attempts, done.last_result) == ("answered", 1, "answered")  # the flow decides
    [attempt] = await storage.callback_attempts(answered)
    assert attempt.result == "answered" and attempt.call_id.startswith("ivr-")
    # The answered leg ran the callback flow over FastAGI, with the request's id and queue.
    await until(lambda: e2e.state.get("callback_sessions"), what="the callback flow's AGI session")
    env = e2e.state["callback_sessions"][0]
    assert env["network_script"] == "callback"
    assert (env["IVR_CALLBACK_ID"], env["IVR_CALLBACK_QUEUE"]) == (str(answered), "testq")
    # The flow's report (the dialplan passes IVR_CALLBACK_ID as ?callback=) completes the request.
    await scheduler.on_flow_report(
        CallReport(
            flow="callback",
            start_node="start",
            version="",
            uniqueid="x",
            caller_id="1002",
            started_at=done.requested_at,
            outcome="transferred",
            variables={"param_callback": env["IVR_CALLBACK_ID"]},
        )
    )
    assert (await storage.get_callback(answered)).state == "completed"
    retry = await storage.get_callback(busy)
    assert (retry.state, retry.attempts, retry.last_result) == ("pending", 1, "busy")


async def test_attended_transfer_and_refusals(e2e):
    call_id = await e2e.talking_call()
    await _expect(await e2e.post(f"/calls/{call_id}/transfer", json={"extension": "carol", "mode": "attended"}), 422)
    resp = await e2e.post(f"/calls/{call_id}/transfer", json={"extension": "1002", "mode": "attended"})
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["transferer"].startswith("Local/talk@agents")
    await until(
        lambda: (
            e2e.registry.call(call_id) is not None
            and any("1002" in ch.name for ch in e2e.registry.call(call_id).channels)
        ),
        what="the attended target's channel",
    )
    await _expect(await e2e.post("/calls/no-such-call/transfer", json={"extension": "1002"}), 404)

"""Call control end to end on the simulated Asterisk (issue 6): park -> retrieve to an agent, hold -> resume.

The stack is tests/e2e/stack.py. Virtual time: the AGI handlers freeze the simulator's clock before the caller
waits on media (Dial, EXEC Park), so nothing times out while the test talks to the API in real time; parking itself
runs on simulated timers only until the `ParkedCall` event, which freezes the clock again.
"""

from __future__ import annotations

import pytest

from ivr.agi.router import Router
from ivr.sim import AgentSpec, CallSpec, SimConfig
from tests.e2e.stack import ApiStack, api_stack, connect, until


class Stack(ApiStack):
    async def call_in(self, flow: str, state: str):
        """Place a call into `flow` and wait until the registry shows it in `state`; (sim call, call id)."""
        sim_call = await self.sim.place_call(CallSpec(flow=flow, caller_id="37060000001", caller_name="Ona"))
        await until(
            lambda: (c := self.registry.call(sim_call.uniqueid)) is not None and c.state == state,
            what=f"the call to be {state}",
        )
        return sim_call, sim_call.uniqueid

    async def post_and_run_until(self, path: str, json, event: str):
        """POST `path`, then let simulated time run (the AGI's HANGUP notice after an async goto, the park
        announcement) until the simulator emits `event`, which freezes the clock again.  Returns the response."""
        seen: list[str] = []

        def on_event(ev) -> None:
            if ev.name == event:
                self.freeze()
                seen.append(ev.name)

        unsubscribe = self.sim.pbx.bus.subscribe(on_event)
        try:
            resp = await self.post(path, json=json)
            assert resp.status == 202, await resp.text()
            self.thaw()
            await until(lambda: bool(seen), what=event)
            return resp
        finally:
            unsubscribe()

    async def park_and_freeze(self, call_id: str) -> None:
        await self.post_and_run_until(f"/calls/{call_id}/park", {"timeout": 60}, "ParkedCall")
        await until(lambda: self.registry.parked_in("default"), what="the registry to show the parked call")


@pytest.fixture
async def stack(tmp_path):
    state: dict = {}

    async def agent_flow(session) -> None:
        await session.answer()
        state["stack"].freeze()  # before the bridge: time stands still while the test uses the API
        await session.exec("Dial", "Local/talk@agents")

    async def parking_flow(session) -> None:
        await session.answer()
        # The flow parks the caller itself; EXEC Park blocks until the retrieved call ends (-1) or times out.
        unsubscribe = state["stack"].sim.pbx.bus.subscribe(
            lambda ev: state["stack"].freeze() if ev.name == "ParkedCall" else None
        )
        try:
            state["park_result"] = await session.exec("Park", "default", "s")
        finally:
            unsubscribe()
        state["status_after_park"] = await session.channel_status()

    async def menu_flow(session) -> None:
        await session.answer()
        await session.set_variable("IVR_FLOW", "menu")  # VarSet IVR_FLOW: the registry shows the call in a flow
        state["stack"].freeze()
        await session.exec("Wait", "30")

    router = Router()
    router.add("agent", agent_flow)
    router.add("menu", menu_flow)
    router.add("parking", parking_flow)
    config = SimConfig()
    config.agents["1002"] = AgentSpec("1002", answer_after=0.0, talk=None, name="Retriever")
    async with api_stack(tmp_path, router, config, state, stack_class=Stack) as stack:
        yield stack


def _retrieve_events(rec, leg: str) -> list[tuple[str, str, str]]:
    """(event, channel uniqueid, linkedid) of the retrieval as the call's AMI events show it."""
    out = []
    for ev in rec.events:
        if ev.name == "UnParkedCall":
            out.append((ev.name, ev["RetrieverUniqueid"], ev["ParkeeLinkedid"]))
        elif (
            ev.name in ("BridgeEnter", "BridgeLeave")
            and ev.get("BridgeType") == "basic"
            and (ev["Uniqueid"] == leg or ev["Uniqueid"] == rec.uniqueid)
            and any(e.name == "UnParkedCall" for e in rec.events[: rec.events.index(ev)])
        ):
            out.append((ev.name, ev["Uniqueid"], ev["Linkedid"]))
    return out


async def test_park_a_talking_call_then_retrieve_it_to_an_agent(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    await stack.park_and_freeze(call_id)
    parked = stack.registry.parked_in("default")
    assert [p.linkedid for p in parked] == [call_id]

    resp = await stack.post(f"/calls/{call_id}/retrieve", json={"agent": "1002"})
    assert resp.status == 202, await resp.text()
    leg = (await resp.json())["agent_leg"]

    # The agent answered and its leg ran ParkedCall(default,701): the caller now talks to the agent.
    def talking_to_agent() -> bool:
        call = stack.registry.call(call_id)
        if call is None or call.state != "talking":
            return False
        bridge = call.talking_bridge()
        return bridge is not None and {call_id, leg} <= bridge.channels

    await until(talking_to_agent, what="the caller bridged with the retrieving agent")
    assert stack.registry.parked_in("default") == []
    assert stack.sim.pbx.parked == {}
    body = await (await stack.get(f"/calls/{call_id}")).json()
    assert body["state"] == "talking"
    agent_leg = next(ch for ch in stack.registry.call(call_id).channels if ch.uniqueid == leg)
    assert agent_leg.agent_leg and agent_leg.agent == "1002"
    lots = (await (await stack.get("/parking/default")).json())["calls"]
    assert lots == []

    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    await until(lambda: stack.registry.call(call_id) is None, what="the call to end")
    rec = await sim_call.finished(timeout=5)
    # ami-13's retrieval: UnParkedCall, the parkee enters the new bridge, then the retriever, whose Linkedid is
    # now the parked call's; the caller hung up, so the caller leaves first.
    assert _retrieve_events(rec, leg) == [
        ("UnParkedCall", leg, call_id),
        ("BridgeEnter", call_id, call_id),
        ("BridgeEnter", leg, call_id),
        ("BridgeLeave", call_id, call_id),
        ("BridgeLeave", leg, call_id),
    ]
    assert rec.destinations[-1] == "parked:701"


async def test_hold_and_resume_a_call_retrieved_from_parking(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    await stack.park_and_freeze(call_id)
    resp = await stack.post(f"/calls/{call_id}/retrieve", json={"agent": "1002"})
    assert resp.status == 202, await resp.text()
    leg = (await resp.json())["agent_leg"]
    await until(
        lambda: (c := stack.registry.call(call_id)) is not None and c.state == "talking",
        what="the caller bridged with the retrieving agent",
    )
    customer, agent = stack.control.operations.parties(stack.registry.call(call_id))
    assert agent is not None and agent.uniqueid == leg

    resp = await stack.post_and_run_until(f"/calls/{call_id}/hold", {}, "MusicOnHoldStart")
    assert (await resp.json())["held"] == customer.name
    await until(lambda: (c := stack.registry.call(call_id)) is not None and c.state == "held", what="the call on hold")
    assert not sim_call.done

    resp = await stack.post(f"/calls/{call_id}/resume")
    assert resp.status == 202, await resp.text()

    def bridged_again() -> bool:
        c = stack.registry.call(call_id)
        bridge = c.talking_bridge() if c is not None and c.state == "talking" else None
        return bridge is not None and {customer.uniqueid, agent.uniqueid} <= bridge.channels

    await until(bridged_again, what="the caller and the retrieving agent bridged again")
    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    rec = await sim_call.finished(timeout=5)
    assert rec.destinations[-2:] == ["parked:701", "hold"]


async def test_park_a_call_in_a_flow_then_retrieve_it(stack):
    sim_call, call_id = await stack.call_in("menu", "ivr")
    await stack.park_and_freeze(call_id)
    resp = await stack.post(f"/calls/{call_id}/retrieve", json={"agent": "1002"})
    assert resp.status == 202, await resp.text()
    leg = (await resp.json())["agent_leg"]
    await until(
        lambda: (
            (c := stack.registry.call(call_id)) is not None
            and c.state == "talking"
            and leg in {ch.uniqueid for ch in c.channels}
        ),
        what="the caller talking to the agent",
    )
    assert stack.registry.parked_in() == []
    stack.thaw()
    await stack.ami.action("Hangup", [("Channel", stack.registry.channels[leg].name), ("Cause", "16")])
    rec = await sim_call.finished(timeout=5)  # parked by the Park action: the caller hangs up after the agent
    assert (rec.ended.by, rec.ended.during, rec.ended.destination) == ("service", "parked", "parked:701")
    assert [e["Uniqueid"] for e in rec.events_named("BridgeLeave")] == [leg, call_id]


async def test_exec_park_returns_minus_one_when_the_retrieved_call_ends(stack):
    sim_call, call_id = await stack.call_in("parking", "parked")
    resp = await stack.post(f"/calls/{call_id}/retrieve", json={"agent": "1002"})
    assert resp.status == 202, await resp.text()
    leg = (await resp.json())["agent_leg"]
    await until(
        lambda: (c := stack.registry.call(call_id)) is not None and c.state == "talking",
        what="the retrieved call talking",
    )
    assert "park_result" not in stack.state  # EXEC Park still blocks while they talk
    leg_name = stack.registry.channels[leg].name
    await stack.ami.action("Hangup", [("Channel", leg_name), ("Cause", "16")])  # the agent hangs up
    await until(lambda: "status_after_park" in stack.state, what="EXEC Park to return")
    assert stack.state["park_result"] == -1
    assert stack.state["status_after_park"] == 6  # agi-07: the channel stays up after Park's -1
    stack.thaw()
    rec = await sim_call.finished(timeout=5)
    assert "200 result=-1" in rec.replies()
    assert [e.name for e in rec.events if e.name.startswith("Bridge") and e.get("BridgeType") == "basic"] == [
        "BridgeEnter",
        "BridgeEnter",
        "BridgeLeave",
        "BridgeLeave",
    ]
    leaves = [e["Uniqueid"] for e in rec.events_named("BridgeLeave")]
    assert leaves == [leg, call_id]  # agi-07.ami: the retriever that hung up leaves first


async def test_hold_then_resume_a_bridged_call(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    customer, agent = stack.control.operations.parties(stack.registry.call(call_id))
    assert agent is not None

    resp = await stack.post_and_run_until(f"/calls/{call_id}/hold", {"moh_class": "default"}, "MusicOnHoldStart")
    assert (await resp.json())["held"] == customer.name
    await until(lambda: (c := stack.registry.call(call_id)) is not None and c.state == "held", what="the call on hold")
    call = stack.registry.call(call_id)
    by_name = {ch.name: ch for ch in call.channels}
    assert by_name[customer.name].moh_class == "default"  # the held party hears music
    assert by_name[agent.name].moh_class is None  # its partner waits in silence (Wait)
    assert by_name[agent.name].context == "ivr-hold-wait" and by_name[customer.name].context == "ivr-hold"
    assert call.talking_bridge() is None

    resp = await stack.post(f"/calls/{call_id}/resume")
    assert resp.status == 202, await resp.text()

    def bridged_again() -> bool:
        c = stack.registry.call(call_id)
        if c is None or c.state != "talking":
            return False
        bridge = c.talking_bridge()
        return bridge is not None and {customer.uniqueid, agent.uniqueid} <= bridge.channels

    await until(bridged_again, what="the two parties bridged again")
    assert all(ch.moh_class is None for ch in stack.registry.call(call_id).channels)

    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    await until(lambda: stack.registry.call(call_id) is None, what="the call to end")
    rec = await sim_call.finished(timeout=5)
    moh = [(e.name, e["Channel"]) for e in rec.events if e.name.startswith("MusicOnHold")]
    assert moh == [("MusicOnHoldStart", customer.name), ("MusicOnHoldStop", customer.name)]
    assert rec.variables["IVR_MOH_CLASS"] == "default"
    assert "hold" in rec.destinations


async def test_resume_refuses_a_call_that_is_not_held(stack):
    _, call_id = await stack.call_in("agent", "talking")
    resp = await stack.post(f"/calls/{call_id}/resume")
    assert resp.status == 409, await resp.text()


async def test_hangup_of_a_held_call_ends_both_parties(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    await stack.post_and_run_until(f"/calls/{call_id}/hold", {}, "MusicOnHoldStart")
    await until(lambda: (c := stack.registry.call(call_id)) is not None and c.state == "held", what="held")
    names = {ch.name for ch in stack.registry.call(call_id).channels}
    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    assert set((await resp.json())["hung_up"]) <= names
    await until(lambda: stack.registry.call(call_id) is None, what="the call to end")
    rec = await sim_call.finished(timeout=5)
    assert (rec.ended.by, rec.ended.during, rec.ended.destination) == ("ami", "dialplan ivr-hold,s", "hold")
    await until(lambda: not any(n in stack.sim.pbx.channels for n in names), what="both parties gone")


# --- held calls: nobody left waiting, and a hold survives a restart of the service ------------------------------


async def hold_and_freeze(stack, call_id: str):
    """Put a talking call on hold; returns (customer, agent) as they were before the hold."""
    customer, agent = stack.control.operations.parties(stack.registry.call(call_id))
    assert agent is not None
    await stack.post_and_run_until(f"/calls/{call_id}/hold", {}, "MusicOnHoldStart")

    def waiting() -> bool:
        c = stack.registry.call(call_id)
        if c is None or c.state != "held":
            return False
        contexts = {ch.name: ch.context for ch in c.channels}
        return contexts.get(customer.name) == "ivr-hold" and contexts.get(agent.name) == "ivr-hold-wait"

    await until(waiting, what="the caller on hold and the agent waiting in ivr-hold-wait")
    assert stack.sim.pbx.find_channel(customer.name).get_var("IVR_HELD_PARTNER") == agent.name
    return customer, agent


async def restart_service(stack, tmp_path) -> None:
    """What a restart of the service leaves: a new AMI login, a new registry from the resync, no hold notes."""
    await stack.http.close()
    await stack.control.stop()
    await stack.ami.close()
    stack.ami, stack.control, stack.http = await connect(stack.sim, stack.storage, stack.control.settings)


async def test_transfer_of_a_held_call_releases_the_waiting_agent(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    customer, agent = await hold_and_freeze(stack, call_id)

    resp = await stack.post_and_run_until(f"/calls/{call_id}/transfer", {"extension": "1002"}, "BridgeEnter")
    body = await resp.json()
    assert (body["mode"], body["channel"], body["released"]) == ("redirect", customer.name, agent.name)
    # The agent no longer sits in Wait(3600): its leg was hung up, and the hold is forgotten (note and variable).
    assert stack.sim.pbx.find_channel(agent.name) is None
    assert call_id not in stack.control.operations._held
    assert stack.sim.pbx.find_channel(customer.name).get_var("IVR_HELD_PARTNER") == ""

    def with_the_new_agent() -> bool:
        c = stack.registry.call(call_id)
        return (
            c is not None
            and c.state == "talking"
            and agent.name not in {ch.name for ch in c.channels}
            and any(ch.name.startswith("Local/1002@from-internal") for ch in c.channels)
        )

    await until(with_the_new_agent, what="the caller talking to extension 1002, the old agent gone")
    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    stack.thaw()
    rec = await sim_call.finished(timeout=5)
    assert rec.destinations[-1].startswith("agent:Local/1002@from-internal")
    assert [e["Channel"] for e in rec.events_named("HangupRequest")][0] == agent.name


def hangup_requests(stack) -> list[str]:
    """Channels that get a HangupRequest (the AMI Hangup action) from now on, in order."""
    seen: list[str] = []
    stack.sim.pbx.bus.subscribe(lambda ev: seen.append(ev["Channel"]) if ev.name == "HangupRequest" else None)
    return seen


async def test_held_caller_hanging_up_releases_the_waiting_agent(stack):
    sim_call, call_id = await stack.call_in("agent", "talking")
    customer, agent = await hold_and_freeze(stack, call_id)
    requests = hangup_requests(stack)
    sim_call.hangup()  # the caller gives up while listening to the music; the clock stays frozen
    await until(lambda: stack.registry.call(call_id) is None, what="the whole call to end")
    assert stack.sim.pbx.find_channel(agent.name) is None  # not after Wait(3600): at once
    assert requests == [agent.name]  # by our AMI Hangup
    rec = await sim_call.finished(timeout=5)
    assert (rec.ended.by, rec.ended.during) == ("caller", "dialplan ivr-hold,s")
    assert call_id not in stack.control.operations._held


async def test_resume_after_a_restart_of_the_service(stack, tmp_path):
    sim_call, call_id = await stack.call_in("agent", "talking")
    customer, agent = await hold_and_freeze(stack, call_id)
    await restart_service(stack, tmp_path)
    assert stack.control.operations._held == {}
    body = await (await stack.get(f"/calls/{call_id}")).json()
    assert body["state"] == "held"  # the resync sees MusicOnHold running

    resp = await stack.post(f"/calls/{call_id}/resume")
    assert resp.status == 202, await resp.text()
    assert await resp.json() == {"resumed": customer.name, "partner": agent.name}

    def bridged_again() -> bool:
        c = stack.registry.call(call_id)
        bridge = c.talking_bridge() if c is not None else None
        return bridge is not None and {customer.uniqueid, agent.uniqueid} <= bridge.channels

    await until(bridged_again, what="the two parties bridged again")
    assert stack.sim.pbx.find_channel(customer.name).get_var("IVR_HELD_PARTNER") == ""
    resp = await stack.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202, await resp.text()
    stack.thaw()
    await sim_call.finished(timeout=5)


async def test_after_a_restart_the_held_callers_hangup_still_releases_the_agent(stack, tmp_path):
    sim_call, call_id = await stack.call_in("agent", "talking")
    customer, agent = await hold_and_freeze(stack, call_id)
    await restart_service(stack, tmp_path)
    requests = hangup_requests(stack)
    sim_call.hangup()
    await until(lambda: stack.registry.call(call_id) is None, what="the whole call to end")
    assert stack.sim.pbx.find_channel(agent.name) is None
    assert requests == [agent.name]
    await sim_call.finished(timeout=5)

"""AMIClient(event_filter=True): after each login the client asks Asterisk (here the simulated one, which filters as
manager.c does) for only the events its subscribers use; what is not wanted never crosses the wire."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.ami.client import AMIClient
from ivr.ami.filters import EventFilter, merge
from ivr.ami.protocol import Message
from ivr.sim import SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim.ami_filter import AMIUser, classes


async def _driver(sim: SimulatedAsterisk) -> AMIClient:
    driver = AMIClient("127.0.0.1", sim.ami_port, "ivr", "ivrsecret", ping_interval=0, events=False)
    await driver.start()
    await driver.wait_logged_in(5)
    return driver


async def _user_events(driver: AMIClient, *kinds: str) -> None:
    for kind in kinds:
        await driver.action("UserEvent", [("UserEvent", "Test"), ("Kind", kind)])
    await driver.action("UserEvent", [("UserEvent", "End")])


async def test_only_wanted_events_cross_the_wire() -> None:
    sim = SimulatedAsterisk(SimConfig(), clock=VirtualClock())
    await sim.start(("127.0.0.1", 9), ami=True)
    client = AMIClient("127.0.0.1", sim.ami_port, "ivr", "ivrsecret", ping_interval=0, event_filter=True)
    got: list[Message] = []
    done = asyncio.Event()

    def on_event(msg: Message) -> None:
        got.append(msg)
        if msg.get("UserEvent") == "End":
            done.set()

    client.subscribe(
        on_event, {"UserEvent"}, inline=True, filters=[EventFilter("UserEvent", "UserEvent", "^(Test|End)$")]
    )
    client.subscribe(lambda msg: None, {"UserEvent"}, inline=True, filters=[EventFilter("UserEvent", "Kind", "^keep$")])
    await client.start()
    await client.wait_logged_in(5)
    driver = await _driver(sim)
    try:
        assert client.wanted_filters() == [
            EventFilter("OriginateResponse"),
            EventFilter("UserEvent", "Kind", "^keep$"),
            EventFilter("UserEvent", "UserEvent", "^(Test|End)$"),
        ]
        [session] = [s for s in sim.ami.sessions if s.events_on and s.username == "ivr" and s.filters]  # type: ignore[union-attr]
        before = session.events_sent
        await driver.action("UserEvent", [("UserEvent", "Other"), ("Kind", "x")])  # matches no include filter
        await _user_events(driver, "keep", "drop")
        await asyncio.wait_for(done.wait(), 5)
        assert [(m.get("UserEvent"), m.get("Kind")) for m in got] == [("Test", "keep"), ("Test", "drop"), ("End", None)]
        # the rest never left the simulated Asterisk: what it sent is what the client got
        assert session.events_sent - before == len(got)
        # a subscriber added later widens the filter at once (its events were filtered out until then)
        later: list[Message] = []
        client.subscribe(later.append, {"UserEvent"}, inline=True)
        for _ in range(100):
            if EventFilter("UserEvent") in client._filters_sent:
                break
            await asyncio.sleep(0.01)
        await driver.action("UserEvent", [("UserEvent", "Other"), ("Kind", "x")])
        for _ in range(100):
            if later:
                break
            await asyncio.sleep(0.01)
        assert [m.get("UserEvent") for m in later] == ["Other"]
    finally:
        await driver.close()
        await client.close()
        await sim.stop()


async def test_a_refused_filter_leaves_events_unfiltered(caplog: pytest.LogCaptureFixture) -> None:
    # An AMI user without the `system` write class may not send Filter (manager.c): nothing may go missing.
    sim = SimulatedAsterisk(
        SimConfig(ami_users={"ivr": "ivrsecret", "nosys": AMIUser("pw", write=classes("call"))}),
        clock=VirtualClock(),
    )
    await sim.start(("127.0.0.1", 9), ami=True)
    client = AMIClient("127.0.0.1", sim.ami_port, "nosys", "pw", ping_interval=0, event_filter=True)
    got: list[Message] = []
    client.subscribe(got.append, {"UserEvent"}, inline=True, filters=[EventFilter("UserEvent", "Kind", "^keep$")])
    with caplog.at_level(logging.WARNING, logger="ivr.ami"):
        await client.start()
        await client.wait_logged_in(5)
    driver = await _driver(sim)
    try:
        assert "refused the AMI event filter" in caplog.text
        await _user_events(driver, "keep", "drop")
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.01)
        assert [m.get("Kind") for m in got] == ["keep", "drop", None]
    finally:
        await driver.close()
        await client.close()
        await sim.stop()


def test_exclude_filters_only_when_every_subscriber_agrees() -> None:
    async def run() -> list[EventFilter]:
        client = AMIClient("127.0.0.1", 9, event_filter=True)
        skip = EventFilter("Newexten", "Application", "^NoOp$", exclude=True)
        client.subscribe(lambda m: None, {"Newexten"}, inline=True, filters=[skip])
        alone = client.wanted_filters()
        client.subscribe(lambda m: None, {"Newexten"}, inline=True)
        assert client.wanted_filters() == [EventFilter("Newexten"), EventFilter("OriginateResponse")]
        await client.close()
        return alone

    alone = asyncio.run(run())
    assert alone[-1].exclude and alone[:-1] == [EventFilter("Newexten"), EventFilter("OriginateResponse")]


def test_filter_lines_and_checks() -> None:
    f = EventFilter("VarSet", "Variable", "^IVR_(FLOW|NODE)$")
    assert (
        f.conf_line() == "eventfilter(action(include),name(VarSet),header(Variable),method(regex)) = ^IVR_(FLOW|NODE)$"
    )
    assert EventFilter("Hangup").action_headers() == [
        ("Operation", "Add"),
        ("MatchCriteria", "action(include),name(Hangup)"),
        ("Filter", ""),
    ]
    assert merge([EventFilter("A", "H", "x"), EventFilter("A")]) == [EventFilter("A")]
    for bad in (
        lambda: EventFilter("Bad Name"),
        lambda: EventFilter("A", "H"),
        lambda: EventFilter("A", "H:", "x"),
        lambda: EventFilter("A", "H", "x\r\n"),
        lambda: EventFilter("A", exclude=True),
    ):
        with pytest.raises(ValueError):
            bad()

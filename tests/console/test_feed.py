"""The console feed: snapshot then deltas from the registry's watchers hook, exact against a full rebuild.

Events are real AMI messages (`ivr.ami.protocol.Message`) with the headers Asterisk 22 sends for them.
"""

from __future__ import annotations

import json

from ivr.ami.protocol import Message
from ivr.calls.registry import CallRegistry
from ivr.console.feed import ConsoleFeed
from ivr.storage import CallbackRequest, open_storage


def event(name: str, **headers: str) -> Message:
    return Message([("Event", name), *headers.items()])


def channel(name: str, uid: str, linkedid: str, **extra: str) -> dict[str, str]:
    return {
        "Channel": name,
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": "37060000001",
        "CallerIDName": "Ona",
        "Uniqueid": uid,
        "Linkedid": linkedid,
        **extra,
    }


def parse(chunk: bytes) -> tuple[str, dict]:
    lines = chunk.decode().strip().split("\n")
    kind = lines[0].removeprefix("event: ")
    assert lines[1].startswith("id: ")
    return kind, json.loads(lines[2].removeprefix("data: "))


async def drain(sub) -> list[tuple[str, dict]]:
    out = []
    while not sub.queue.empty():
        chunk = await sub.get()
        out.append(("end", {}) if chunk is None else parse(chunk))
    return out


async def test_snapshot_then_deltas_for_a_call_its_queue_and_its_hangup():
    registry = CallRegistry(clock=lambda: 1000.0)
    registry.apply(event("Newchannel", **channel("PJSIP/trunk-1", "1.1", "1.1")))
    feed = ConsoleFeed(registry, lots=["default"])
    feed.start()
    try:
        sub = await feed.subscribe()
        [(kind, snap)] = await drain(sub)
        assert kind == "snapshot"
        assert [c["id"] for c in snap["calls"]] == ["1.1"]
        assert snap["calls"][0] | {"state": "up", "number": "37060000001", "name": "Ona"} == snap["calls"][0]
        assert snap["lots"] == [{"name": "default", "calls": []}]

        registry.apply(event("QueueCallerJoin", **channel("PJSIP/trunk-1", "1.1", "1.1"), Queue="sales", Position="1"))
        registry.note_flow("1.1", "main", "menu")
        feed._flush()
        [(kind, delta)] = await drain(sub)
        assert kind == "delta"
        [row] = delta["calls"]
        assert (row["state"], row["queue"], row["position"], row["queue_since"]) == ("queued", "sales", 1, 1000.0)
        assert (row["flow"], row["node"]) == ("main", "menu")
        assert [q["name"] for q in delta["queues"]] == ["sales"]

        feed._flush()
        assert await drain(sub) == []  # nothing changed: nothing sent

        registry.apply(event("Hangup", **channel("PJSIP/trunk-1", "1.1", "1.1"), Cause="16"))
        feed._flush()
        [(kind, delta)] = await drain(sub)
        assert delta["gone"] == ["1.1"] and "calls" not in delta
    finally:
        await feed.close()
    assert await drain(sub) == [("end", {})]
    assert registry.watchers == []


async def test_deltas_match_a_full_rebuild_when_a_channel_changes_call():
    """ami-13: the retriever's ;2 takes the parkee's Linkedid; its old call must go at once, not at a reconcile."""
    registry = CallRegistry(clock=lambda: 1000.0)
    feed = ConsoleFeed(registry)
    feed.start()
    try:
        sub = await feed.subscribe()
        registry.apply(event("Newchannel", **channel("PJSIP/trunk-1", "1.1", "1.1")))
        registry.apply(event("Newchannel", **channel("Local/1009@agents-1;2", "2.2", "2.2")))
        feed._flush()
        registry.apply(event("BridgeCreate", BridgeUniqueid="b-1", BridgeType="basic"))
        registry.apply(event("BridgeEnter", **channel("PJSIP/trunk-1", "1.1", "1.1"), BridgeUniqueid="b-1"))
        # ami-13: the retriever enters the bridge with the parked call's Linkedid
        registry.apply(event("BridgeEnter", **channel("Local/1009@agents-1;2", "2.2", "1.1"), BridgeUniqueid="b-1"))
        feed._flush()
        kinds = await drain(sub)
        assert kinds[-1][1]["gone"] == ["2.2"]
        incremental = dict(feed._calls)
        feed._all = True
        feed._flush()
        assert feed._calls == incremental
        assert list(incremental) == ["1.1"] and incremental["1.1"]["legs"] == 2
    finally:
        await feed.close()


async def test_nothing_is_noted_without_a_console_and_a_slow_console_is_dropped():
    registry = CallRegistry(clock=lambda: 1000.0)
    feed = ConsoleFeed(registry, max_backlog=3)
    feed.start()
    try:
        registry.apply(event("Newchannel", **channel("PJSIP/trunk-1", "1.1", "1.1")))
        assert feed._dirty == set() and feed._calls == {}
        sub = await feed.subscribe()
        for n in range(5):  # the console reads nothing meanwhile
            registry.apply(event("NewCallerid", **channel("PJSIP/trunk-1", "1.1", "1.1", CallerIDNum=f"3706000000{n}")))
            feed._flush()
        assert sub.dropped and sub not in feed.subscribers
        chunks = await drain(sub)
        assert chunks == [("end", {})]  # its backlog was discarded: it reconnects and gets a fresh snapshot
        again = await feed.subscribe()
        [(kind, snap)] = await drain(again)
        assert kind == "snapshot" and snap["calls"][0]["number"] == "37060000004"
    finally:
        await feed.close()


async def test_due_callbacks_come_from_storage_and_a_resync_rebuilds_everything():
    storage = open_storage("memory:")
    registry = CallRegistry(clock=lambda: 1000.0)
    feed = ConsoleFeed(registry, storage)
    feed.start()
    try:
        await storage.add_callback(CallbackRequest(number="+37060000009", queue="sales", caller_name="Ona"))
        sub = await feed.subscribe()
        [(_, snap)] = await drain(sub)
        [cb] = snap["callbacks"]
        assert (cb["number"], cb["queue"], cb["attempts"], cb["name"]) == ("+37060000009", "sales", 0, "Ona")
        registry.apply(event("Newchannel", **channel("PJSIP/trunk-1", "1.1", "1.1")))
        feed._flush()
        assert [c["id"] for c in (await drain(sub))[0][1]["calls"]] == ["1.1"]
        registry.resync_channels([])  # after a reconnect Asterisk no longer lists it
        assert feed._all
        feed._flush()
        [(_, delta)] = await drain(sub)
        assert delta["gone"] == ["1.1"]
    finally:
        await feed.close()
        await storage.close()


class Servers:
    """What the feed needs of a registry over several Asterisk servers (the multi-server set-up's fleet): `parts`
    with a `name` and a `registry` each, the combined `queues` and `parked_in()`."""

    def __init__(self, **registries: CallRegistry) -> None:
        self.parts = [type("Server", (), {"name": name, "registry": reg})() for name, reg in registries.items()]

    @property
    def queues(self) -> dict:
        return {name: q for part in self.parts for name, q in part.registry.queues.items()}

    def parked_in(self, lot=None) -> list:
        return [p for part in self.parts for p in part.registry.parked_in(lot)]


async def test_several_servers_are_watched_each_and_ids_name_the_server():
    a, b = CallRegistry(clock=lambda: 1000.0), CallRegistry(clock=lambda: 1000.0)
    feed = ConsoleFeed(Servers(a=a, b=b))
    feed.start()
    try:
        sub = await feed.subscribe()
        await drain(sub)
        for reg in (a, b):  # both servers hand out the same Uniqueid
            reg.apply(event("Newchannel", **channel("PJSIP/trunk-1", "1.1", "1.1")))
        feed._flush()
        [(_, delta)] = await drain(sub)
        assert sorted(row["id"] for row in delta["calls"]) == ["a:1.1", "b:1.1"]
        b.apply(event("Hangup", **channel("PJSIP/trunk-1", "1.1", "1.1"), Cause="16"))
        feed._flush()
        [(_, delta)] = await drain(sub)
        assert delta["gone"] == ["b:1.1"]
        a.resync_channels([])
        feed._flush()
        [(_, delta)] = await drain(sub)
        assert delta["gone"] == ["a:1.1"]
    finally:
        await feed.close()
    assert a.watchers == [] and b.watchers == []


async def test_the_reconcile_sweep_finds_a_change_no_event_named_a_slice_at_a_time():
    registry = CallRegistry(clock=lambda: 1000.0)
    for n in range(5):
        registry.apply(event("Newchannel", **channel(f"PJSIP/trunk-{n}", f"1.{n}", f"1.{n}")))
    feed = ConsoleFeed(registry, sweep_slice=2)
    feed.start()
    try:
        sub = await feed.subscribe()
        await drain(sub)
        registry.expect_agent_leg("1.3", "1009")  # sets the agent of an existing channel: no AMI event says so
        feed._flush()
        assert await drain(sub) == []  # the watchers were not told
        feed._start_sweep()
        flushes = 0
        while feed._sweep:
            feed._flush()
            flushes += 1
        assert flushes == 3  # five calls, two per flush
        [(_, delta)] = await drain(sub)
        assert [(row["id"], row["agent"]) for row in delta["calls"]] == [("1.3", "1009")]
    finally:
        await feed.close()

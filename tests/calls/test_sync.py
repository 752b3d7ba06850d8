"""RegistrySync: subscription, resync after every (re)login, effects to listeners, parking/recording metrics."""

from __future__ import annotations

import asyncio

from ivr import metrics
from ivr.calls.registry import CallEnded, CallRegistry, Unparked
from ivr.calls.sync import RegistrySync

from .fakes import FakeAMI, msg
from .transcripts import events_until, list_items, load


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def settle(sync: RegistrySync) -> None:
    if sync._resync_task is not None:
        await sync._resync_task


async def test_resync_on_login_and_after_reconnect_drops_stale():
    items = load("ami-12-status-getvar-command.jsonl")
    ami = FakeAMI()
    ami.lists["CoreShowChannels"] = list_items(items, "ami-4")
    registry = CallRegistry(clock=lambda: 50.0)
    sync = RegistrySync(ami, registry)
    seen = []
    sync.add_listener(seen.append)
    sync.start()  # already logged in: resync at once
    await settle(sync)
    assert ami.names() == ["CoreShowChannels", "ParkedCalls", "QueueStatus"]
    assert len(registry.calls()) == 2 and sync.resyncs == 1

    # Reconnect: Asterisk now has no channels; everything we knew is stale and goes away.
    ami.lists["CoreShowChannels"] = []
    for callback in ami.connected:
        callback()
    await settle(sync)
    assert registry.calls() == [] and sync.resyncs == 2
    assert sorted(e.call_id for e in seen if isinstance(e, CallEnded)) == ["1795909436.102", "1795909436.104"]


async def test_failed_resync_keeps_state_and_reports():
    ami = FakeAMI()
    ami.replies["CoreShowChannels"] = ConnectionResetError("gone")
    sync = RegistrySync(ami, CallRegistry())
    sync.start()
    await settle(sync)
    assert sync.resyncs == 0 and "ConnectionResetError" in sync.last_resync_error


async def test_events_update_registry_and_parking_metrics():
    items = load("ami-13-parking.jsonl")
    ami = FakeAMI()
    ami.logged_in = False
    registry = CallRegistry(clock=lambda: 10.0)
    sync = RegistrySync(ami, registry)
    effects = []
    sync.add_listener(effects.append)
    sync.start()
    assert ami.sent == []  # not logged in yet: no resync
    timeouts = sample("ivr_park_timeouts_total", lot="default")
    for ev in events_until(items, "ParkedCalls / Parkinglots"):
        await ami.emit(ev)
    assert registry.call("1795909439.108").state == "parked"
    assert sample("ivr_parked_calls", lot="default", pbx="default") == 1
    for ev in events_until(items, "call B", start="waiting for the 5 s"):
        await ami.emit(ev)
    assert sample("ivr_parked_calls", lot="default", pbx="default") == 0
    assert sample("ivr_park_timeouts_total", lot="default") == timeouts + 1
    assert any(isinstance(e, Unparked) and e.reason == "timeout" for e in effects)


async def test_a_failing_listener_does_not_stop_the_stream():
    ami = FakeAMI()
    registry = CallRegistry()
    sync = RegistrySync(ami, registry)
    ami.logged_in = False
    sync.start()

    async def broken(effect):
        raise RuntimeError("listener bug")

    got = []
    sync.add_listener(broken)
    sync.add_listener(got.append)
    base = [("Channel", "PJSIP/a-1"), ("ChannelState", "6"), ("Uniqueid", "1.1"), ("Linkedid", "1.1")]
    await ami.emit(msg(("Event", "Newchannel"), *base))
    await ami.emit(msg(("Event", "Hangup"), *base, ("Cause", "16"), ("Cause-txt", "Normal Clearing")))
    assert CallEnded("1.1") in got
    await sync.stop()
    assert ami.handlers == []
    await asyncio.sleep(0)


async def test_operations_get_effects_without_explicit_wiring():
    """A recording started through the API whose channel hangs up is closed in the index (no MixMonitorStop)."""
    from ivr.calls.operations import CallOperations
    from ivr.storage import open_storage

    items = load("ami-14-mixmonitor.jsonl")
    ami = FakeAMI()
    ami.logged_in = False
    registry = CallRegistry(clock=lambda: 5.0)
    storage = open_storage("memory:")
    sync = RegistrySync(ami, registry)  # built before the operations, no add_listener call
    ops = CallOperations(ami, registry, storage)
    sync.start()
    try:
        for ev in events_until(items, "second recording", start="call:"):
            await ami.emit(ev)
        [call] = registry.calls()
        started = await ops.record_start(call.id)
        for ev in events_until(items, "files produced", start="second recording"):
            await ami.emit(ev)
        assert (await storage.get_recording(started["recording_id"])).state == "finished"
    finally:
        await storage.close()


class RacingAMI(FakeAMI):
    """Asterisk hangs a call up while the CoreShowChannels answer (which still lists it) is on its way."""

    def __init__(self, hangups: list) -> None:
        super().__init__()
        self.hangups = hangups
        self.delivery: asyncio.Task | None = None

    async def list_action(self, name, headers=None, *, timeout=None):
        if name == "CoreShowChannels" and self.hangups:
            events, self.hangups = self.hangups, []

            async def deliver():
                for event in events:
                    await self.emit(event)

            self.delivery = asyncio.get_running_loop().create_task(deliver())
            for _ in range(10):  # the events reach the subscriber before the list answer completes
                await asyncio.sleep(0)
        return await super().list_action(name, headers, timeout=timeout)


async def test_hangup_during_resync_is_not_undone_by_the_snapshot():
    items = load("ami-12-status-getvar-command.jsonl")
    # The Hangup events of the "Long Call" (1795909436.102/.103), exactly as Asterisk sent them.
    hangups = [m for m in items if getattr(m, "name", None) == "Hangup" and m.get("Linkedid") == "1795909436.102"]
    assert [h.get("Uniqueid") for h in hangups] == ["1795909436.102", "1795909436.103"]
    ami = RacingAMI(hangups)
    ami.lists["CoreShowChannels"] = list_items(items, "ami-4")  # still lists the call
    registry = CallRegistry(clock=lambda: 50.0)
    sync = RegistrySync(ami, registry)
    sync.start()
    await settle(sync)
    await ami.delivery
    assert [c.id for c in registry.calls()] == ["1795909436.104"]  # the hung-up call stays gone

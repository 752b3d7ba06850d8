"""Call control with the real AMIClient over TCP (127.0.0.1) against the AMI test server of tests/ami, which answers
with the exact bytes a real Asterisk 22 sent (transcripts ami-12/13/15): resync on login, live events, a dropped
connection and the resync after the reconnect, and operations through the HTTP API.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.client import AMIClient
from ivr.ami.protocol import encode_message
from ivr.calls.settings import CallControlSettings
from ivr.calls.wiring import CallControl
from ivr.service import build_api
from ivr.storage import open_storage
from tests.ami.fake_ami import FakeAMI, replay, response

from .transcripts import events_until, load

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
async def setup():
    server = FakeAMI()
    await server.start()
    # Resync answers recorded from the real Asterisk (ActionIDs rewritten to the client's).
    server.on("CoreShowChannels", replay("ami-12-status-getvar-command", "ami-4"))
    server.on("ParkedCalls", replay("ami-13-parking", "ami-4"))
    server.on("QueueStatus", replay("ami-15-queue", "ami-13"))
    client = AMIClient(
        "127.0.0.1",
        server.port,
        "ivr",
        "ivrsecret",
        connect_timeout=2,
        login_timeout=2,
        action_timeout=2,
        ping_interval=0,
        backoff_min=0.01,
        backoff_max=0.05,
        rng=random.Random(1),
    )
    storage = open_storage("memory:")
    control = CallControl.build(client, storage, CallControlSettings(), run_callbacks=False)
    await control.start()
    await client.start()
    await client.wait_logged_in(5)
    yield server, client, control
    await control.stop()
    await client.close()
    await storage.close()
    await server.stop()


async def test_resync_events_reconnect_and_api(setup):
    server, client, control = setup
    registry = control.registry
    await until(lambda: control.sync.resyncs == 1)
    # CoreShowChannels of ami-12 (two calls), ParkedCalls of ami-13 (A in space 701), QueueStatus of ami-15.
    assert {c.id for c in registry.calls()} >= {"1795909436.102", "1795909436.104"}
    assert [p.space for p in registry.parked_in("default")] == ["701"]
    assert registry.queues["testq"].members["Local/answer3s@agents"].paused_reason == "away"

    # Live events: the exact bytes of ami-16 call 1 (a bridged alice/bob call).
    for ev in events_until(load("ami-16-transfers.jsonl"), "BlindTransfer Channel="):
        await server.broadcast(encode_message(ev.items(), raw_values=True))
    await until(
        lambda: (
            registry.channel_by_name("Local/bob@phones-00000040;1") is not None
            and registry.call(registry.channel_by_name("Local/bob@phones-00000040;1").linkedid).state == "talking"
        )
    )
    bridged = registry.channel_by_name("Local/alice@phones-0000003f;1").linkedid

    # Operations through the API, over the real client.
    server.on("BlindTransfer", lambda conn, msg: [response(msg.action_id, ("Message", "Transfer succeeded"))])
    app = build_api(control, token="t0k3n", readiness={"ami": lambda: client.logged_in})
    http = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await http.start_server()
    try:
        resp = await http.post(
            f"/calls/{bridged}/transfer", json={"extension": "carol"}, headers={"Authorization": "Bearer t0k3n"}
        )
        assert resp.status == 202, await resp.text()
        [sent] = server.received("BlindTransfer")
        assert (sent["Channel"], sent["Exten"]) == ("Local/bob@phones-00000040;1", "carol")
        assert (await http.get("/readyz")).status == 200

        # Asterisk goes away: the API says 503 for operations, and after the reconnect the resync removes
        # whatever ended meanwhile (here: the bridged call is not in CoreShowChannels any more).
        server.drop()
        await until(lambda: not client.logged_in)
        resp = await http.post(f"/calls/{bridged}/hangup", headers={"Authorization": "Bearer t0k3n"})
        assert resp.status == 503 and (await resp.json())["error"] == "asterisk_unavailable"
        assert (await http.get("/readyz")).status == 503
        await client.wait_logged_in(5)
        await until(lambda: control.sync.resyncs == 2)
        assert registry.call(bridged) is None
    finally:
        await http.close()

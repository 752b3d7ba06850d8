"""The AMI client against the simulated Asterisk (ivr.sim), the other user of ivr.ami.protocol (server role)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.ami.client import AMIClient
from ivr.ami.errors import AMIAuthError
from ivr.sim.model import SimConfig
from ivr.sim.simulator import SimulatedAsterisk


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedAsterisk]:
    simulator = SimulatedAsterisk(SimConfig(ami_auth_failure_delay=0.01))
    await simulator.start(ami=True)
    yield simulator
    await simulator.stop()


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_login_actions_and_lists(sim: SimulatedAsterisk, auth: str) -> None:
    client = AMIClient("127.0.0.1", sim.ami_port, "ivr", "ivrsecret", auth=auth, ping_interval=0)  # type: ignore[arg-type]
    try:
        await client.start()
        await client.wait_logged_in(timeout=5)
        assert client.health().version == "11.0.0"
        assert (await client.ping())["Ping"] == "Pong"
        summary = await client.queue_summary()
        assert summary and all(m.name == "QueueSummary" for m in summary)
        result = await client.command("core show version")
        assert result.ok and result.output[0].startswith("Asterisk 22")
        assert isinstance(await client.core_show_channels(), list)
    finally:
        await client.close()


async def test_wrong_secret(sim: SimulatedAsterisk) -> None:
    client = AMIClient("127.0.0.1", sim.ami_port, "ivr", "wrong", ping_interval=0, login_failure_backoff=60)
    try:
        await client.start()
        with pytest.raises(AMIAuthError, match="Authentication failed"):
            await client.wait_logged_in(timeout=5)
    finally:
        await client.close()

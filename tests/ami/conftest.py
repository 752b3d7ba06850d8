"""Fixtures: a fake AMI server on 127.0.0.1 (ephemeral port) and a factory of fast-retrying clients."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ivr.ami.client import AMIClient

from .fake_ami import FakeAMI


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    server = FakeAMI(auth_fail_delay=0.02)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_client(fake: FakeAMI) -> AsyncIterator[Callable[..., AMIClient]]:
    clients: list[AMIClient] = []

    def make(**overrides: Any) -> AMIClient:
        options: dict[str, Any] = dict(
            host="127.0.0.1",
            port=fake.port,
            username="ivr",
            secret="ivrsecret",
            connect_timeout=2.0,
            login_timeout=2.0,
            action_timeout=2.0,
            ping_interval=0,
            ping_timeout=1.0,
            backoff_min=0.01,
            backoff_max=0.05,
            login_failure_backoff=0.05,
            rng=random.Random(7),
        )
        options.update(overrides)
        client = AMIClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()

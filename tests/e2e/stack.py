"""The call-control stack on the simulated Asterisk, shared by the end-to-end tests of the API.

Stack: the simulator (FastAGI client + AMI server) <-> a real FastAGI server running the test's handlers, a real
AMIClient, call control and the HTTP API, all on 127.0.0.1 with ephemeral ports. Virtual time: handlers call
`freeze()` before the caller waits on media, so nothing times out while the test talks to the API in real time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ivr.agi.fastagi import FastAGIServer
from ivr.agi.router import Router
from ivr.ami.client import AMIClient
from ivr.api.server import ApiRunner
from ivr.calls.settings import CallControlSettings
from ivr.calls.wiring import CallControl
from ivr.service import build_api
from ivr.sim import SimConfig, SimulatedAsterisk, VirtualClock
from ivr.storage import open_storage
from tests.api.documented import check_documented

TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The simulator's "numbers" are its agents' names and short extensions: a PBX-internal number plan.
INTERNAL_NUMBERS = r"^[0-9]{4,7}$"


class ApiTestServer(TestServer):
    """aiohttp's TestServer with the runner the service uses (malformed HTTP gets the JSON error)."""

    async def _make_runner(self, **kwargs: Any) -> ApiRunner:
        return ApiRunner(self.app, **kwargs)


async def until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class ApiStack:
    """What a test drives: the simulator, the AMI client, call control and an HTTP client of its API."""

    def __init__(
        self, sim: SimulatedAsterisk, ami: AMIClient, control: CallControl, http: TestClient, storage: Any, state: dict
    ) -> None:
        self.sim, self.ami, self.control, self.http, self.storage, self.state = sim, ami, control, http, storage, state
        self.frozen = False

    @property
    def registry(self) -> Any:
        return self.control.registry

    async def post(self, path: str, json: Any = None) -> Any:
        return await check_documented(await self.http.post(path, json=json, headers=AUTH))

    async def get(self, path: str) -> Any:
        return await check_documented(await self.http.get(path, headers=AUTH))

    def freeze(self) -> None:
        """Stop virtual time: a quiet simulation would otherwise jump to its next timer at once."""
        if not self.frozen:
            self.sim.clock.acquire()
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self.sim.clock.release()
            self.frozen = False


async def connect(
    sim: SimulatedAsterisk, storage: Any, settings: CallControlSettings, *, port: int = 0
) -> tuple[AMIClient, CallControl, TestClient]:
    """A fresh AMI login, call control with its first resync done, and a started API client (also after a restart)."""
    ami = AMIClient(
        "127.0.0.1",
        sim.ami.port,
        "ivr",
        "ivrsecret",
        ping_interval=0,
        backoff_min=0.01,
        backoff_max=0.05,
        rng=random.Random(3),
    )
    control = CallControl.build(ami, storage, settings, run_callbacks=False)
    await control.start()
    await ami.start()
    await ami.wait_logged_in(5)
    await until(lambda: control.sync.resyncs >= 1, what="the first resync")
    http = TestClient(
        ApiTestServer(
            build_api(control, token=TOKEN, readiness={"ami": lambda: ami.logged_in}), host="127.0.0.1", port=port
        )
    )
    await http.start_server()
    return ami, control, http


@asynccontextmanager
async def api_stack(
    tmp_path: Path, router: Router, config: SimConfig, state: dict, *, stack_class: type[ApiStack] = ApiStack
) -> AsyncIterator[ApiStack]:
    """Start everything; `state["stack"]` is the stack (handlers reach it there). Always torn down."""
    fastagi = FastAGIServer(router, "127.0.0.1", 0)
    await fastagi.start()
    sim = SimulatedAsterisk(config, clock=VirtualClock())
    await sim.start(("127.0.0.1", fastagi.port))
    storage = open_storage(f"sqlite:///{tmp_path}/ivr.db")
    (tmp_path / "rec").mkdir(exist_ok=True)
    settings = CallControlSettings(
        agent_dial="Local/{extension}@agents", recordings_dir=str(tmp_path / "rec"), number_pattern=INTERNAL_NUMBERS
    )
    ami, control, http = await connect(sim, storage, settings)
    stack = state["stack"] = stack_class(sim, ami, control, http, storage, state)
    try:
        yield stack
    finally:
        stack.thaw()
        await stack.http.close()  # a test may have restarted the service: close what runs now
        await stack.control.stop()
        await stack.ami.close()
        await sim.stop()
        await fastagi.stop()
        await storage.close()

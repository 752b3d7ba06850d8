"""The service's call control and API on the simulated Asterisk in real time, in a background thread.

A browser (Selenium, synchronous) drives the console while the service runs on its own event loop; the test
reaches the simulator through `run()` (a coroutine run on that loop). Real clock: a parked or talking call stays
as it is while the browser works, with nothing frozen by hand. Everything binds to 127.0.0.1, ephemeral ports.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ivr.agi.fastagi import FastAGIServer
from ivr.agi.router import Router
from ivr.calls.settings import CallControlSettings
from ivr.sim import AgentSpec, QueueSpec, RealClock, SimConfig, SimulatedAsterisk
from ivr.storage import open_storage
from tests.e2e.stack import INTERNAL_NUMBERS, TOKEN, connect

T = TypeVar("T")
AGENTS = {"1001": "Ann", "1002": "Ben"}


def router() -> Router:
    r = Router()

    async def agent(session: Any) -> None:  # the caller talks to an agent who stays on the line
        await session.answer()
        await session.exec("Dial", "Local/talk@agents")

    async def queue(session: Any) -> None:  # the caller waits in the sales queue (its agents do not answer)
        await session.answer()
        await session.exec("Queue", "sales")

    r.add("agent", agent)
    r.add("queue", queue)
    return r


def sim_config() -> SimConfig:
    config = SimConfig()
    for exten, name in AGENTS.items():
        config.agents[exten] = AgentSpec(exten, answer_after=None, name=name)
    config.agents["2000"] = AgentSpec("2000", answer_after=0.0, talk=None, name="Supervisor")
    config.agents["1009"] = AgentSpec("1009", answer_after=0.0, talk=None, name="Retriever")
    config.queues["sales"] = QueueSpec("sales", members=[f"Local/{e}@agents" for e in AGENTS], joinempty=True)
    return config


class LiveService:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ivr-live", daemon=True)
        self.url = ""
        self.token = TOKEN

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LiveService:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.fastagi = FastAGIServer(router(), "127.0.0.1", 0)
        await self.fastagi.start()
        self.sim = SimulatedAsterisk(sim_config(), clock=RealClock())
        await self.sim.start(("127.0.0.1", self.fastagi.port))
        self.storage = open_storage(f"sqlite:///{self.tmp_path}/ivr.db")
        (self.tmp_path / "rec").mkdir(exist_ok=True)
        settings = CallControlSettings(
            agent_dial="Local/{extension}@agents",
            recordings_dir=str(self.tmp_path / "rec"),
            number_pattern=INTERNAL_NUMBERS,
        )
        self.ami, self.control, self.http = await connect(self.sim, self.storage, settings)
        self.url = f"http://127.0.0.1:{self.http.server.port}"

    def stop(self) -> None:
        try:
            self.run(self._stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        await self.http.close()
        await self.control.stop()
        await self.ami.close()
        await self.sim.stop()
        await self.fastagi.stop()
        await self.storage.close()

    def restart_api(self) -> None:
        """The service restarts: a new AMI login, registry, feed and API app, on the same HTTP port."""
        self.run(self._restart_api(), timeout=30)

    async def _restart_api(self) -> None:
        port = self.http.server.port
        settings = self.control.settings
        await self.http.close()
        await self.control.stop()
        await self.ami.close()
        ami, control, http = await connect(self.sim, self.storage, settings, port=port)
        self.ami, self.control, self.http = ami, control, http

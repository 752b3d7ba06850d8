import copy
from typing import Any

import pytest

from ivr.flow.engine import FlowEngine
from ivr.flow.lookup import FixtureLookupClient
from ivr.flow.model import Flow
from ivr.storage import open_storage

from .fakes import FakeChannel

PROMPTS = {
    name: {"en": {"file": f"en/{name}", "text": f"{name} text"}, "lt": {"file": f"lt/{name}", "text": f"{name} lt"}}
    for name in (
        "welcome",
        "menu",
        "sub",
        "invalid",
        "noinput",
        "bye",
        "sorry",
        "enter",
        "confirm",
        "consent",
        "vm",
        "cb_offer",
        "cb_number",
        "cb_confirm",
        "ann",
        "langq",
    )
}


def make_flow(nodes: dict[str, Any], **kw: Any) -> Flow:
    data = {
        "name": "main",
        "language": "en",
        "languages": ["en", "lt"],
        "timezone": "Europe/Vilnius",
        "start": next(iter(nodes)),
        "prompts": copy.deepcopy(PROMPTS),
        "nodes": nodes,
    }
    data.update(kw)
    return Flow.model_validate(data)


@pytest.fixture
async def storage():
    s = open_storage("memory:")
    yield s
    await s.close()


class Runner:
    def __init__(self, storage):
        self.storage = storage
        self.events = []
        self.lookups = FixtureLookupClient({})

    async def __call__(self, flows, channel: FakeChannel, start: str | None = None, flow: str = "main", **kw):
        if isinstance(flows, Flow):
            flows = {flows.name: flows}
        kw.setdefault("prompts_dir", "/p")
        engine = FlowEngine(
            flows,
            storage=self.storage,
            lookup_client=self.lookups,
            clock=channel.clock,
            version="v1",
            observer=self.events.append,
            **kw,
        )
        return await engine.run(channel, flow, start)

    def trace(self, kind=None):
        return [e.text for e in self.events if kind is None or e.kind == kind]


@pytest.fixture
def run(storage):
    return Runner(storage)

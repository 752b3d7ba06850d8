"""Schemathesis against the API on the simulated Asterisk: no 5xx, and every response as the document says.

The document is the one the app serves (generated from the request models); schemathesis generates requests from
it, valid ones and invalid ones (negative mode: the server must refuse what the document forbids), and checks each
response: status code documented, content type documented, body valid against the documented schema, no 5xx.

Bounded and repeatable: a fixed number of examples per operation and mode, derandomized (the seed is derived from
the test), no example database, only 127.0.0.1. The stack (simulator, AMI client, call control, API) runs on its
own event loop in a thread, because schemathesis sends its requests synchronously (requests).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import requests  # installed with schemathesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from ivr.agi.router import Router
from ivr.api.deps import DEPS
from ivr.flow.repository import FlowRepository
from ivr.sim import SimConfig
from tests.e2e.stack import AUTH, TOKEN, api_stack

FLOWS = Path(__file__).resolve().parents[2] / "config" / "flows"

CONFIG = {
    # The token as the document's `bearer` scheme: schemathesis then knows the requests are authenticated (and
    # its negative mode may leave the header out, expecting the 401 the document promises).
    "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
    # Schema-valid is not always acceptable here, and the document says so with 422: some rules come from the
    # configuration at run time (callbacks.number_pattern, the parking lots, callbacks.max_attempts) or from the
    # call's state. Every other check runs: no 5xx, documented status, content type, headers and body schema,
    # and (negative mode) refusal of what the document forbids.
    "checks": {"positive_data_acceptance": {"enabled": False}},
}
EXAMPLES = 10  # per operation and mode: 40 operations x 2 modes x 10 = at most 800 requests


class LiveStack:
    """The API stack on 127.0.0.1, served from an event loop in a background thread."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-stack", daemon=True)
        self.exit = AsyncExitStack()
        self.base_url = ""

    def run(self, coro: Any) -> Any:
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    async def _start(self) -> None:
        stack = await self.exit.enter_async_context(api_stack(self.tmp_path, Router(), SimConfig(), {}))
        repository = FlowRepository(FLOWS)
        repository.load()
        stack.http.app[DEPS].flows = repository  # the shipped flows, as the service serves them
        self.base_url = str(stack.http.make_url("")).rstrip("/")

    def __enter__(self) -> LiveStack:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.exit.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with LiveStack(tmp_path_factory.mktemp("contract")) as stack:
        yield stack


def load_schema(base_url: str) -> Any:
    with requests.get(f"{base_url}/openapi.json", headers=AUTH, timeout=10) as resp:
        resp.raise_for_status()
        return schemathesis.openapi.from_dict(resp.json(), config=SchemathesisConfig.from_dict(CONFIG))


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_operation_answers_as_documented(live: LiveStack, mode: GenerationMode) -> None:
    schema = load_schema(live.base_url)
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations(schema):

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                # Generation speed depends on the shared machine's load, not on the API.
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(base_url=live.base_url, session=session)

            try:
                run()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                # Nothing to get wrong: no parameters, no body, no token (/healthz, /readyz, /metrics).
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, reported together
                failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)

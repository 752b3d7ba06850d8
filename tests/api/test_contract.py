"""Schemathesis against the API on the simulated Asterisk: no 5xx, and every response as the document says.

The document is the one the app serves (generated from the request models). Schemathesis' own engine runs its
phases on it: the document's examples, the coverage phase (boundary values, each constraint broken in turn, missing
token, undocumented methods, probes such as a NUL in a header) and fuzzing, in positive and negative mode. Each
response must have a documented status code, content type, headers and body schema, no 5xx, and a request the
document forbids must be refused. Nothing may be logged at ERROR meanwhile.

Bounded and repeatable: EXAMPLES per operation, phase and mode, a fixed seed with deterministic generation, no
example database and no cache on disk, only 127.0.0.1 (~1500 requests, well under 60 s). The stack (simulator, AMI
client, call control, the API with the shipped flows) runs on its own event loop in a thread, because schemathesis
sends its requests synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests  # installed with schemathesis
import schemathesis
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events

from ivr.agi.router import Router
from ivr.api.deps import DEPS
from ivr.api.openapi import OPERATIONS
from ivr.flow.repository import FlowRepository
from ivr.sim import SimConfig
from ivr.storage import CallbackRequest, Recording
from tests.e2e.stack import AUTH, TOKEN, api_stack

FLOWS = Path(__file__).resolve().parents[2] / "config" / "flows"

STREAMS = ["/events"]
EXAMPLES = 10  # per operation, phase and mode: the whole run is ~1500 requests, ~10 s


def config(base_url: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "seed": 20261207,  # with `deterministic`, the same requests every run
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none", "mode": "all"},
            # Examples from the document, then the coverage phase (boundaries, every documented error, methods and
            # paths next to the documented ones), then fuzzing. Stateful runs need links, which the document has none.
            "phases": {"stateful": {"enabled": False}},
            "cache": {"enabled": False},  # nothing written next to the tests
            "workers": 1,
            # The token as the document's `bearer` scheme: schemathesis then knows the requests are authenticated,
            # and its negative mode may leave the header out, expecting the 401 the document promises.
            "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
            # Schema-valid is not always acceptable, and the document says so with 422: some rules come from the
            # configuration at run time (callbacks.number_pattern, the parking lots, callbacks.max_attempts) or from
            # the call's state. Every other check runs: no 5xx, documented status, content type, headers and body
            # schema, and refusal of whatever the document forbids.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )


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
        await self._rows(stack.storage)
        self.base_url = str(stack.http.make_url("")).rstrip("/")

    async def _rows(self, storage: Any) -> None:
        """A few stored rows with small ids, so generated ids also reach rows (and their response schemas)."""
        now = datetime.now(UTC)
        audio = self.tmp_path / "rec" / "call-1.wav"
        audio.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
        await storage.add_recording(Recording(call_id="c1", path=str(audio), state="finished", started_at=now))
        await storage.add_recording(Recording(call_id="c2", path=str(audio), started_at=now))
        for state_ in ("pending", "cancelled"):
            cb_id = await storage.add_callback(CallbackRequest(number="1234567", queue="support", requested_at=now))
            if state_ == "cancelled":
                await storage.cancel_callback(cb_id)

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
        schema = schemathesis.openapi.from_dict(resp.json(), config=config(base_url))
    # A stream that stays open by design: a request/response fuzzer would wait on each request until its time-out.
    # Its answers (401 without the token, the snapshot then changes) are tested in tests/console/test_web.py.
    return schema.exclude(path=STREAMS)


def describe(event: events.ScenarioFinished) -> str:
    found = {
        f"{check.failure_info.failure.title}: {check.failure_info.failure.message}"
        for checks in event.recorder.checks.values()
        for check in checks
        if check.failure_info is not None
    }
    return f"{event.label} ({event.phase.value}): " + "; ".join(sorted(found))


def test_every_operation_answers_as_documented(live: LiveStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    failures: list[str] = []
    scenarios = 0
    for event in engine.from_schema(load_schema(live.base_url)).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.ScenarioFinished):
            scenarios += 1
            if event.status in (engine.Status.FAILURE, engine.Status.ERROR):
                failures.append(describe(event))
    assert not failures, "\n\n".join(failures)
    # Nothing the fuzzer sent (its probes include a NUL in a header) is an error on the service's side.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert scenarios >= 3 * (len(OPERATIONS) - len(STREAMS))  # examples, coverage and fuzzing of every operation ran

"""End to end on the simulated Asterisk: calls run the sample `main` flow over FastAGI into queue `sales`; the real
AMIClient feeds QueueStatsFeed from the simulator's AMI server; we scrape ivr.metrics.REGISTRY and check the queue
series. Virtual time for the calls (an agent talking 20 s costs milliseconds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ivr import metrics
from ivr.agi.fastagi import FastAGIServer
from ivr.ami.client import AMIClient
from ivr.calls.registry import CallRegistry
from ivr.calls.sync import RegistrySync
from ivr.flow.engine import FlowEngine
from ivr.flow.loader import load_flows
from ivr.flow.lookup import FixtureLookupClient
from ivr.flow.routing import fixed_flow_router
from ivr.queue_stats import QueueStats, QueueStatsFeed, ServiceLevelPolicy
from ivr.sim import (
    AgentSpec,
    CallSpec,
    Hangup,
    NextPrompt,
    OnCommand,
    Press,
    QueueSpec,
    SimConfig,
    SimulatedAsterisk,
    VirtualClock,
)
from ivr.storage import open_storage
from tests.observability.conftest import Deltas
from tests.observability.promql_names import used_metric_names

ROOT = Path(__file__).resolve().parents[2]
MONDAY_NOON = datetime(2026, 3, 23, 10, 0, tzinfo=UTC)  # the office schedule is open
QUEUES = ("sales", "support", "billing", "complaints", "technical")
# language 1, consent notice, welcome, main menu; then 1 = sales (as in tests/engine/test_e2e_sim.py)
TO_SALES = [NextPrompt(0.5), Press("1"), NextPrompt(), NextPrompt(), NextPrompt(0.5), Press("1")]


class Stack:
    def __init__(self, sim: SimulatedAsterisk, stats: QueueStats, sync: RegistrySync | None = None) -> None:
        self.sim = sim
        self.stats = stats
        self.sync = sync

    async def call(self, script: list[Any]) -> None:
        placed = await self.sim.place_call(CallSpec(flow="main", caller_id="+37060000001", script=script))
        await placed.finished(timeout=20)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, with_registry: bool) -> AsyncIterator[Stack]:
    """The flows on FastAGI, the simulator, a real AMIClient and the queue statistics: on their own, or as the
    service wires them (`with_registry`: the call registry's sync feeds its board and the statistics)."""
    (tmp_path / "vm").mkdir()
    (tmp_path / "rec").mkdir()
    flows = load_flows(ROOT / "config" / "flows")
    clock = VirtualClock(start=MONDAY_NOON)
    engine = FlowEngine(
        flows,
        storage=open_storage("memory:"),
        lookup_client=FixtureLookupClient({}),
        clock=clock.datetime,
        prompts_dir="/prompts",
        recordings_dir=str(tmp_path / "rec"),
        voicemail_dir=str(tmp_path / "vm"),
    )
    server = FastAGIServer(fixed_flow_router(engine), "127.0.0.1", 0)
    await server.start()
    config = SimConfig(
        queues={name: QueueSpec(name, members=["Local/agent@agents"]) for name in QUEUES},
        agents={"agent": AgentSpec("agent", answer_after=3.0, talk=20.0)},
    )
    sim = SimulatedAsterisk(config, clock=clock)
    await sim.start(fastagi=("127.0.0.1", server.port), ami=True)
    client = AMIClient("127.0.0.1", sim.ami_port, "ivr", "ivrsecret", ping_interval=0)
    policy = ServiceLevelPolicy(default_seconds=20, per_queue={"support": 30})
    registry = CallRegistry()
    sync = RegistrySync(client, registry) if with_registry else None
    stats = QueueStats(policy, board=registry.board) if with_registry else QueueStats(policy)
    feed = QueueStatsFeed(client, stats, poll_interval=3600, sync=sync)
    await feed.start()
    if sync is not None:
        sync.start()
    await client.start()
    try:
        await client.wait_logged_in(timeout=10)
        await until(lambda: stats.queues == sorted(QUEUES))  # the on_connected resync has run
        yield Stack(sim, stats, sync)
    finally:
        await feed.close()
        if sync is not None:
            await sync.stop()
        await client.close()
        await sim.stop()
        await server.stop()
        stats.reset()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running(tmp_path, with_registry=False) as stack:
        yield stack


@pytest.fixture
async def service_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running(tmp_path, with_registry=True) as stack:
        yield stack


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for AMI events still in flight (they travel over TCP after the call's AGI ended)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.REGISTRY).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_resync_exports_every_queue_with_its_agents(stack: Stack) -> None:
    samples = scrape()
    for queue in QUEUES:
        assert value(samples, "ivr_queue_callers", queue=queue) == 0
        assert value(samples, "ivr_queue_agents", queue=queue, state="available") == 1
        assert value(samples, "ivr_queue_agents", queue=queue, state="paused") == 0
    assert value(samples, "ivr_queue_service_level_threshold_seconds", queue="support") == 30
    assert value(samples, "ivr_queue_service_level_threshold_seconds", queue="sales") == 20
    assert value(samples, "ivr_ami_up", pbx="default") == 1


async def test_answered_and_abandoned_calls_in_the_scrape(stack: Stack) -> None:
    deltas = Deltas()

    await stack.call(TO_SALES)  # the agent answers after 3 s and talks 20 s
    await until(lambda: deltas.delta("ivr_queue_talk_seconds_count", queue="sales") == 1)
    # the caller gives up 1 s after the Queue application started (the agent would answer at 3 s)
    await stack.call(TO_SALES + [OnCommand("EXEC Queue", 1.0), Hangup()])
    await until(lambda: deltas.delta("ivr_queue_calls_total", queue="sales", result="abandoned") == 1)

    samples = scrape()
    assert deltas.delta("ivr_queue_calls_total", queue="sales", result="answered") == 1
    assert deltas.delta("ivr_queue_calls_total", queue="sales", result="timeout") == 0
    assert deltas.delta("ivr_queue_wait_seconds_sum", queue="sales", result="answered") == 3
    assert deltas.delta("ivr_queue_wait_seconds_sum", queue="sales", result="abandoned") == 1
    assert deltas.delta("ivr_queue_talk_seconds_sum", queue="sales") == 20
    assert deltas.delta("ivr_queue_answered_within_sl_total", queue="sales") == 1
    assert deltas.delta("ivr_queue_abandoned_within_sl_total", queue="sales") == 1
    assert value(samples, "ivr_queue_callers", queue="sales") == 0
    assert value(samples, "ivr_queue_longest_wait_seconds", queue="sales") == 0
    assert value(samples, "ivr_queue_agents", queue="sales", state="available") == 1
    assert value(samples, "ivr_queue_agents", queue="sales", state="busy") == 0
    assert value(samples, "ivr_queue_service_level_ratio", queue="sales") == 1.0
    # the flow side saw the same two calls: one answered transfer, one caller who hung up while waiting in the queue
    # (the AGI channel tells them apart from the channel variables Queue() leaves, readable in dead mode)
    assert deltas.delta("ivr_calls_started_total", flow="main") == 2
    assert deltas.delta("ivr_transfers_total", flow="main", target="sales", result="answered") == 1
    assert deltas.delta("ivr_transfers_total", flow="main", target="sales", result="abandoned") == 1
    assert deltas.delta("ivr_call_outcomes_total", flow="main", outcome="abandoned") == 1


async def test_scrape_has_the_names_the_dashboard_reads_after_real_calls(stack: Stack) -> None:
    await stack.call(TO_SALES)
    await until(lambda: stack.stats.snapshot()["sales"].answered >= 1)
    names = {name for name, _ in scrape()}
    # Metrics only a part of the system not run here would create (parking, recordings, lookups, reloads...) may
    # be absent; the queue, call and AGI series the dashboard reads must all be there after real calls.
    wanted = {
        n
        for n in used_metric_names()
        if n.startswith(("ivr_queue_", "ivr_calls_", "ivr_call_outcomes", "ivr_agi_", "ivr_ami_up", "ivr_node_visits"))
    }
    assert wanted and not (wanted - names), sorted(wanted - names)


async def test_as_the_service_wires_it_the_registry_and_the_metrics_show_the_same_waiting_caller(
    service_stack: Stack,
) -> None:
    """The service's wiring over real sockets: one subscription (the call registry's), whose sync hands the queue
    statistics each queue event after applying it to the registry's board; the API's view and the scrape agree on
    the caller waiting, and an abandon is told from a timeout by the hangup the registry applied."""
    stack, sync = service_stack, service_stack.sync
    assert sync is not None
    registry = sync.registry
    deltas = Deltas()
    seen: list[tuple[str, list[str], bool, int]] = []

    def on_queue_event(msg: Any) -> None:  # the sync calls it after the registry and the statistics
        if msg.name in ("QueueCallerJoin", "QueueCallerAbandon"):
            callers = [c.caller_num for c in registry.queues["sales"].callers.values()]
            hung_up = registry.board.hung_up("sales", msg.get("Uniqueid"))
            seen.append((msg.name, callers, hung_up, stack.stats.snapshot()["sales"].callers))

    sync.queue_event_listeners.append(on_queue_event)
    # the caller gives up 1 s after the Queue application started (the agent would answer at 3 s)
    await stack.call(TO_SALES + [OnCommand("EXEC Queue", 1.0), Hangup()])
    await until(lambda: deltas.delta("ivr_queue_calls_total", queue="sales", result="abandoned") == 1)
    assert [name for name, *_ in seen] == ["QueueCallerJoin", "QueueCallerAbandon"]
    assert seen[0][1:] == (["+37060000001"], False, 1)  # the API's waiting caller is the one the metrics count
    _, callers, hung_up, counted = seen[1]
    assert hung_up and len(callers) == counted  # the caller's hangup was applied first: an abandon
    assert registry.queues["sales"].callers == {}
    samples = scrape()
    assert value(samples, "ivr_queue_callers", queue="sales") == 0
    assert deltas.delta("ivr_queue_calls_total", queue="sales", result="timeout") == 0
    assert deltas.delta("ivr_queue_wait_seconds_sum", queue="sales", result="abandoned") == 1

    await stack.call(TO_SALES)  # the agent answers after 3 s and talks 20 s
    await until(lambda: deltas.delta("ivr_queue_talk_seconds_count", queue="sales") == 1)
    assert deltas.delta("ivr_queue_calls_total", queue="sales", result="answered") == 1
    assert deltas.delta("ivr_queue_wait_seconds_sum", queue="sales", result="answered") == 3
    assert value(scrape(), "ivr_queue_agents", queue="sales", state="available") == 1

"""MetricBatch (the flow engine's metric updates): folded in batches, exactly what one update each gives, and
exact at every scrape of ivr.metrics.REGISTRY."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ivr import metrics
from ivr.metric_batch import BATCH, MetricBatch

BUCKETS = (0.5, 1, 2, 5, 10)
# On bucket bounds (le is inclusive), between them, zero and past the last bound (+Inf).
SECONDS = [0.0, 0.5, 0.50001, 1.0, 4.9, 10.0, 11.0, 3600.0]


def family(registry: CollectorRegistry) -> SimpleNamespace:
    return SimpleNamespace(
        STARTED=Counter("started", "t", ["flow"], registry=registry),
        ACTIVE=Gauge("active", "t", ["flow"], registry=registry),
        SECONDS=Histogram("seconds", "t", ["flow", "node"], buckets=BUCKETS, registry=registry),
    )


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in registry.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


def updates() -> list[tuple[str, tuple[str, ...], float]]:
    out: list[tuple[str, tuple[str, ...], float]] = []
    for flow in ("main", "sales"):
        out += [("STARTED", (flow,), 1.0), ("ACTIVE", (flow,), 1.0)]
        out += [("SECONDS", (flow, "menu"), v) for v in SECONDS]
    out += [("ACTIVE", ("main",), -1.0), ("STARTED", ("main",), 1.0)]
    return out


def reference() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    m = family(registry)
    for name, labels, value in updates():
        child = getattr(m, name).labels(*labels)
        if name == "SECONDS":
            child.observe(value)
        elif value < 0:
            child.dec(-value)
        else:
            child.inc(value)
    return samples(registry)


async def test_flush_equals_one_update_each() -> None:
    registry = CollectorRegistry()
    batch = MetricBatch(source=family(registry))
    for update in updates():
        batch.record(*update)
    assert all(v == 0 for v in samples(registry).values())  # nothing folded before flush()
    batch.flush()
    assert samples(registry) == reference()
    batch.flush()  # nothing pending: nothing changes
    assert samples(registry) == reference()


async def test_folded_by_the_timer_and_at_max_pending() -> None:
    registry = CollectorRegistry()
    batch = MetricBatch(interval=0.01, source=family(registry))
    batch.record("STARTED", ("main",))
    await asyncio.sleep(0.05)
    assert batch.pending == [] and registry.get_sample_value("started_total", {"flow": "main"}) == 1
    small = MetricBatch(max_pending=3, source=family(CollectorRegistry()))
    for _ in range(3):
        small.record("STARTED", ("main",))
    assert small.pending == []  # the third update folded the batch without waiting for the timer
    small.flush()


def test_without_a_running_loop_updates_fold_at_once() -> None:
    registry = CollectorRegistry()
    batch = MetricBatch(source=family(registry))
    batch.record("ACTIVE", ("main",), -1.0)
    assert batch.pending == [] and registry.get_sample_value("active", {"flow": "main"}) == -1


async def test_a_scrape_of_the_registry_folds_the_process_batch() -> None:
    before = metrics.REGISTRY.get_sample_value("ivr_calls_started_total", {"flow": "batch-scrape"}) or 0.0
    BATCH.record("CALLS_STARTED", ("batch-scrape",))
    BATCH.record("CALLS_STARTED", ("batch-scrape",))
    assert BATCH.pending  # not folded yet (the timer is 1 s away)
    assert metrics.REGISTRY.get_sample_value("ivr_calls_started_total", {"flow": "batch-scrape"}) == before + 2
    assert BATCH.pending == []


def test_a_series_removed_between_batches_is_recreated() -> None:
    registry = CollectorRegistry()
    m = family(registry)
    batch = MetricBatch(source=m)
    batch.record("STARTED", ("main",))
    batch.flush()
    m.STARTED.remove("main")
    batch.record("STARTED", ("main",))
    batch.flush()
    assert registry.get_sample_value("started_total", {"flow": "main"}) == 1


def test_a_discarding_batch_drops_updates_without_a_loop_or_a_fold() -> None:
    # Classic AGI runs its call without an event loop; a batch that folded at once would import ivr.metrics there.
    registry = CollectorRegistry()
    batch = MetricBatch(source=family(registry))
    batch.record("STARTED", ("main",))
    batch.flush()
    batch.discard()
    batch.record("STARTED", ("main",))
    batch.record("ACTIVE", ("main",), -1.0)
    assert batch.pending == []
    assert registry.get_sample_value("started_total", {"flow": "main"}) == 1
    assert registry.get_sample_value("active", {"flow": "main"}) is None


def test_the_flow_engine_and_classic_agi_import_no_prometheus_client() -> None:
    # Classic AGI starts a process per call and exports nothing: the engine, its nodes and the routes name their
    # metrics and leave ivr.metrics (prometheus_client, ~12 ms of start-up) to the first fold.
    code = (
        "import sys, ivr.flow.routing, ivr.flow.cache, ivr.flow.repository, ivr.agi.classic; "
        "print('prometheus_client' in sys.modules, 'ivr.metrics' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

"""CommandTally: batched folding gives exactly what one observe()/inc() per command gives."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram

from ivr.agi.tally import CommandTally

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Values on bucket bounds (le is inclusive), between them, zero, and past the last bound (+Inf).
VALUES = [0.0, 0.001, 0.0010001, 0.0025, 0.003, 0.01, 0.7, 1.0, 29.99, 30.0, 31.0, 3600.0, 0.0005]


def metrics(registry: CollectorRegistry) -> tuple[Histogram, Counter]:
    return (
        Histogram("cmd_seconds", "t", ["command"], buckets=BUCKETS, registry=registry),
        Counter("cmd_results", "t", ["command", "result"], registry=registry),
    )


def samples(registry: CollectorRegistry) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in registry.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


def reference(records) -> dict:
    registry = CollectorRegistry()
    hist, counter = metrics(registry)
    for label, result, seconds in records:
        hist.labels(command=label).observe(seconds)
        counter.labels(command=label, result=result).inc()
    return samples(registry)


RECORDS = [("NOOP", "ok", v) for v in VALUES] + [
    ("STREAM FILE", "failure", 0.02),
    ("STREAM FILE", "ok", 0.5),
    ("EXEC", "timeout", 30.0),
    ("STREAM FILE", "ok", 0.0025),
]


async def test_flush_equals_one_observe_per_command():
    registry = CollectorRegistry()
    hist, counter = metrics(registry)
    tally = CommandTally(seconds=hist, results=counter)
    for record in RECORDS:
        tally.record(*record)
    assert all(v == 0 for v in samples(registry).values())  # nothing folded before flush()
    tally.flush()
    assert samples(registry) == reference(RECORDS)
    tally.flush()  # nothing pending: nothing changes
    assert samples(registry) == reference(RECORDS)


async def test_fallback_replays_observe_when_internals_are_missing():
    observed: list[float] = []

    class PublicOnly:  # a histogram child without _buckets/_sum/_upper_bounds
        def labels(self, **labels):
            return self

        def observe(self, value):
            observed.append(value)

    registry = CollectorRegistry()
    _, counter = metrics(registry)
    tally = CommandTally(seconds=PublicOnly(), results=counter)
    for record in RECORDS:
        tally.record(*record)
    tally.flush()
    assert sorted(observed) == sorted(r[2] for r in RECORDS)
    assert registry.get_sample_value("cmd_results_total", {"command": "NOOP", "result": "ok"}) == len(VALUES)


async def test_timer_and_size_bound_fold_without_a_session_closing():
    registry = CollectorRegistry()
    hist, counter = metrics(registry)
    tally = CommandTally(interval=0.02, max_pending=5, seconds=hist, results=counter)
    tally.record("NOOP", "ok", 0.001)
    assert registry.get_sample_value("cmd_results_total", {"command": "NOOP", "result": "ok"}) is None
    for _ in range(100):  # the timer fires on its own
        await asyncio.sleep(0.01)
        if registry.get_sample_value("cmd_results_total", {"command": "NOOP", "result": "ok"}):
            break
    assert registry.get_sample_value("cmd_results_total", {"command": "NOOP", "result": "ok"}) == 1
    tally.interval = 3600.0
    for _ in range(5):  # the 5th pending command folds the batch at once
        tally.record("ANSWER", "ok", 0.002)
    assert registry.get_sample_value("cmd_results_total", {"command": "ANSWER", "result": "ok"}) == 5
    assert tally.pending == []
    tally.flush()


async def test_a_scrape_while_the_fastagi_server_runs_shows_every_command_so_far():
    from ivr import metrics as service_metrics
    from ivr.agi import Router
    from ivr.agi.tally import TALLY

    from .conftest import running_server
    from .fake_asterisk import ENV_AGI01, FakeAsterisk

    def noops() -> float:
        labels = {"command": "NOOP", "result": "ok"}
        return service_metrics.REGISTRY.get_sample_value("ivr_agi_command_results_total", labels) or 0.0

    TALLY.flush()
    before = noops()
    release = asyncio.Event()

    async def body(session):
        await session.noop()
        await release.wait()  # the session stays open: nothing but a scrape folds its command

    router = Router()
    router.add("agi-01", body)
    async with running_server(router) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        try:
            await fake.expect(b"NOOP\n", b"200 result=0\n")
            for _ in range(200):
                await asyncio.sleep(0)
                if TALLY.pending:
                    break
            assert TALLY.pending and noops() == before + 1  # the scrape folded it
            assert TALLY.pending == []
        finally:
            release.set()
        assert await fake.closed_by_server()
        fake.close()
    TALLY.flush()


def test_without_a_running_loop_commands_fold_at_once() -> None:
    """The timer is `ivr.metric_batch.TimedBatch`'s, as for the flow engine's batch: no loop, no timer to wait for."""
    registry = CollectorRegistry()
    hist, counter = metrics(registry)
    tally = CommandTally(seconds=hist, results=counter)
    tally.record("NOOP", "ok", 0.003)
    assert tally.pending == []
    assert registry.get_sample_value("cmd_results_total", {"command": "NOOP", "result": "ok"}) == 1

"""Shared helpers: a settable clock and metric deltas read from ivr.metrics.REGISTRY (the registry is
process-global, so tests compare before/after values instead of absolute counter values)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr import metrics
from ivr.queue_stats import QueueStats, ServiceLevelPolicy


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


class Deltas:
    """Remembers sample values at creation; `delta(name, **labels)` is the change since then."""

    def __init__(self) -> None:
        self._before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in metrics.REGISTRY.collect():
            for s in family.samples:
                self._before[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def delta(self, name: str, **labels: str) -> float:
        return sample(name, **labels) - self._before.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stats(clock: FakeClock) -> Iterator[QueueStats]:
    core = QueueStats(ServiceLevelPolicy(default_seconds=20), clock=clock)
    yield core
    core.reset()  # drop this test's gauge children so the next test starts clean


@pytest.fixture
def deltas() -> Deltas:
    return Deltas()

"""Prometheus updates recorded in plain Python and folded into `ivr.metrics` in batches.

Rules for this file:
- Recording is one list append: `record("NODE_VISITS", (flow, node))`. prometheus_client's `labels()` (a lock,
  label checks, a tuple of str) plus `inc()`/`observe()` (more locks, a Python loop over the buckets) cost
  ~2-4 us per update, and a call through the flow engine makes ~10 of them (bench/call_cpu.py).
- Metrics are named by their attribute in `ivr.metrics` and that module is imported on the first fold, so a
  process that never folds (classic AGI, one process per call, exports nothing) never imports prometheus_client.
- A batch is folded at most `interval` seconds after its first update (one loop timer for the process), at
  `max_pending` updates, and at every scrape of `ivr.metrics.REGISTRY` (a collect hook that `ivr.metrics`
  installs): what /metrics and `REGISTRY.get_sample_value()` show is always exact.
- Folding: the values of one series are summed into `inc()` for counters and gauges (a gauge's decrement is a
  negative value), and bucketed once per batch for histograms (`fold_histogram`). Children are looked up with
  `labels()` once per series and batch, so a series removed with `remove()` is recreated, as `labels()` would.
- Labels are bounded by the callers (names from the configuration and fixed words, see ivr.metrics).
- `TimedBatch` is the timer-and-flush skeleton every batch of the process shares (this one, the AGI command tally
  `ivr.agi.tally`, the queue gauges of `ivr.queue_stats`): each gives its own `_fold`; `MetricBatch.record` keeps
  its own arming (it checks the loop per update: a batch used across event loops never waits on a dead timer).
- asyncio is imported on the first update that looks for a running loop, not with this module: classic AGI (no
  event loop before its first command, docs/agi.md) imports the engine, which records here, and calls
  `BATCH.discard()` (a classic process exports nothing: decision D2).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import asyncio

FLUSH_INTERVAL = 1.0
MAX_PENDING = 4096

Item = TypeVar("Item")


def _first_running_loop() -> asyncio.AbstractEventLoop:
    global _running_loop
    import asyncio

    _running_loop = asyncio.get_running_loop  # from now on, the plain call
    return asyncio.get_running_loop()


# asyncio.get_running_loop once asyncio is imported (raises RuntimeError without a running loop).
_running_loop: Callable[[], asyncio.AbstractEventLoop] = _first_running_loop


class TimedBatch(Generic[Item]):
    """Updates pile up in `pending` and are folded by `_fold` at most `interval` seconds after the first (one loop
    timer, armed by the subclass's `record` through `_arm`), or at once by `flush()`."""

    def __init__(self, interval: float = FLUSH_INTERVAL, max_pending: int = MAX_PENDING) -> None:
        self.interval = interval
        self.max_pending = max_pending
        self.pending: list[Item] = []
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, item: Item) -> None:
        """Pile `item` up: folded within `interval` seconds, or now at `max_pending` (or without a running loop)."""
        pending = self.pending
        pending.append(item)
        if self._handle is None:
            self._arm()  # a handle left on a loop that closed before it fired is dropped by the next flush()
        elif len(pending) >= self.max_pending:
            self.flush()

    def _arm(self) -> None:
        """Fold `interval` seconds from now, on the running loop (replacing a timer of another loop, which may
        have closed and would never fire); with no running loop (a synchronous caller) fold now."""
        try:
            loop = _running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._handle is not None:
            self._handle.cancel()
        self._loop = loop
        self._handle = loop.call_later(self.interval, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self.flush()

    def flush(self) -> None:
        """Fold everything recorded so far now."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        pending, self.pending = self.pending, []
        if pending:
            self._fold(pending)

    def _fold(self, pending: list[Item]) -> None:
        raise NotImplementedError


class MetricBatch(TimedBatch[tuple[str, tuple[str, ...], float]]):
    """`record(metric, labels, value)` per update; `flush()` folds everything recorded so far."""

    def __init__(self, interval: float = FLUSH_INTERVAL, max_pending: int = MAX_PENDING, *, source: Any = None) -> None:
        """`source` holds the metrics as attributes (default: the `ivr.metrics` module, imported on first fold)."""
        super().__init__(interval, max_pending)
        self._source = source
        self.enabled = True

    def discard(self) -> None:
        """Drop every update from now on (a process that exports no metrics: classic AGI)."""
        self.enabled = False
        self.pending = []

    def record(self, metric: str, labels: tuple[str, ...], value: float = 1.0) -> None:
        """Counter/gauge: add `value` (a gauge's dec is -1); histogram: observe `value`."""
        if not self.enabled:
            return
        pending = self.pending
        pending.append((metric, labels, value))
        if len(pending) >= self.max_pending:
            self.flush()
            return
        try:
            loop = _running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing would fire a timer
            self.flush()
            return
        if self._handle is None or self._loop is not loop:  # a handle of a loop that has since closed never fires
            self._arm()

    def _fold(self, pending: list[tuple[str, tuple[str, ...], float]]) -> None:
        """Fold the updates into the Prometheus metrics."""
        series: dict[tuple[str, tuple[str, ...]], list[float]] = {}
        for metric, labels, value in pending:
            key = (metric, labels)
            values = series.get(key)
            if values is None:
                series[key] = [value]
            else:
                values.append(value)
        source = self._source if self._source is not None else load_metrics()
        for (metric, labels), values in series.items():
            parent = getattr(source, metric)
            child = parent.labels(*labels) if labels else parent
            if getattr(parent, "_type", "") == "histogram":
                fold_histogram(child, values)
            else:
                total = sum(values)
                if total:
                    child.inc(total)


def fold_histogram(histogram: Any, values: list[float]) -> None:
    """Add `values` to a histogram child as one `observe()` each would (bucket edges included).

    Adds to the child's `_buckets`/`_sum` (prometheus_client's Histogram fields since 0.4); if they ever
    disappear, each value goes through the public `observe()` instead: slower, still exact."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(buckets) != len(bounds):
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # first bound >= value: observe()'s `value <= bound`
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    total.inc(sum(values))


def load_metrics() -> ModuleType:
    # ivr.metrics (prometheus_client) is imported on first use: classic AGI, one process per call, never
    # exports metrics and should not pay ~90 ms of imports at start-up.
    from ivr import metrics

    return metrics


BATCH = MetricBatch()
"""The process's batch for the flow engine and its nodes (flushed at every scrape of ivr.metrics.REGISTRY)."""

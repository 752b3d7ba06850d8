"""Per-command AGI metrics, counted in plain Python and folded into the Prometheus metrics in batches.

Rules for this file:
- Recording a command is one list append. prometheus_client's `Histogram.observe()` takes a lock for the sum and
  for a bucket after a Python loop over the bounds, and `Counter.inc()` another lock: ~2 us per command, about as
  much as parsing the reply (bench/agi_bench.py), so commands are folded in batches instead.
- A batch is folded at most `interval` seconds after its first command (one loop timer for the whole process,
  not one per command), when it reaches `max_pending` commands, and before every scrape of ivr.metrics.REGISTRY
  while a FastAGIServer runs (its collect hook), so a scrape is exact. Not per session close: that was one fold
  per call (~6 us, measured: three histogram children and three counters) where one per second is enough.
  Code that reads these metrics without a scrape of the registry (a test reading a child) calls `flush()`.
- Folding computes the bucket counts itself and adds them to the histogram child's bucket and sum values (the
  same objects `observe()` increments; `_buckets`, `_sum` and `_upper_bounds` have been prometheus_client's
  Histogram fields since 0.4). If a future prometheus_client lacks them, each command is replayed through the
  public `observe()` instead: slower, still exact.
- Labels are bounded by the caller (`command` from a fixed list, `result` from a fixed set).
- The timer and the flush are `ivr.metric_batch.TimedBatch`'s (shared with the flow engine's `MetricBatch`); this
  file keeps the command's own `record` and `_fold`. ivr.metrics (prometheus_client) is imported on the first fold.
"""

from __future__ import annotations

from typing import Any

from ..metric_batch import FLUSH_INTERVAL, MAX_PENDING, TimedBatch, load_metrics
from ..metric_batch import fold_histogram as _fold


class CommandTally(TimedBatch[tuple[str, str, float]]):
    """`record(label, result, seconds)` per command; `flush()` folds everything recorded so far (the timer and
    flush are `ivr.metric_batch.TimedBatch`'s)."""

    def __init__(
        self,
        interval: float = FLUSH_INTERVAL,
        max_pending: int = MAX_PENDING,
        *,
        seconds: Any = None,
        results: Any = None,
    ) -> None:
        """`seconds` (Histogram, label `command`) and `results` (Counter, labels `command`, `result`) default to
        ivr.metrics.AGI_COMMAND_SECONDS and AGI_COMMAND_RESULTS, looked up on the first flush."""
        super().__init__(interval, max_pending)
        self._seconds = seconds
        self._results = results
        self._children: dict[str, tuple[Any, dict[str, Any]]] = {}

    def record(self, label: str, result: str, seconds: float) -> None:
        self.add((label, result, seconds))

    def _fold(self, pending: list[tuple[str, str, float]]) -> None:
        """Fold the commands into the Prometheus metrics."""
        by_label: dict[str, list[float]] = {}
        results: dict[tuple[str, str], int] = {}
        for label, result, seconds in pending:
            values = by_label.get(label)
            if values is None:
                values = by_label[label] = []
            values.append(seconds)
            key = (label, result)
            results[key] = results.get(key, 0) + 1
        for label, values in by_label.items():
            _fold(self._child(label)[0], values)
        for (label, result), n in results.items():
            counters = self._child(label)[1]
            counter = counters.get(result)
            if counter is None:
                if self._results is None:
                    self._results = load_metrics().AGI_COMMAND_RESULTS
                counter = counters[result] = self._results.labels(command=label, result=result)
            counter.inc(n)

    def _child(self, label: str) -> tuple[Any, dict[str, Any]]:
        entry = self._children.get(label)
        if entry is None:
            if self._seconds is None:
                self._seconds = load_metrics().AGI_COMMAND_SECONDS
            entry = self._children[label] = (self._seconds.labels(command=label), {})
        return entry


TALLY = CommandTally()

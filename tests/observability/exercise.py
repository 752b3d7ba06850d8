"""Observe one sample on every metric in ivr.metrics and print the scrape of ivr.metrics.REGISTRY.

Run as a child process (`python -m tests.observability.exercise`) so the made-up label values ("exercise") never
reach the registry of the test process, where other tests read exact series."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from ivr import metrics


def all_metrics() -> dict[str, MetricWrapperBase]:
    return {name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)}


def exercise() -> None:
    for metric in all_metrics().values():
        child = metric.labels(*["exercise"] * len(metric._labelnames)) if metric._labelnames else metric
        if isinstance(metric, Counter):
            child.inc()
        elif isinstance(metric, Gauge):
            child.set(1)
        elif isinstance(metric, Histogram):
            child.observe(0.1)
        elif isinstance(metric, Info):
            # extra keys as ivr.flow.repository passes them: they must not become labels
            child.info({"version": "exercise", "loaded_at": "2026-11-29T00:00:00", "flows": "main,sales"})
        else:  # a new metric type in ivr.metrics: teach this helper how to observe it
            raise TypeError(f"do not know how to observe {type(metric).__name__} {metric._name}")


if __name__ == "__main__":
    exercise()
    print(generate_latest(metrics.REGISTRY).decode(), end="")

"""Traffic of one flow, read from the service's Prometheus metrics (a /metrics URL or a saved scrape).

Rules for this file:
- Only two series matter: `ivr_menu_choices_total{flow,node,option}` (which option callers pressed) and
  `ivr_node_exits_total{flow,node,reason}` (why they left a node; reason="hangup" is where they hung up).
- Parsing uses prometheus_client's own text parser, so any valid exposition (comments, timestamps, escapes)
  is read the way Prometheus reads it. Other series and other flows are ignored.
- Fetching a URL is plain urllib with a timeout; errors become `TrafficError` saying what to check.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


class TrafficError(Exception):
    """The metrics could not be read or parsed."""


@dataclass
class Traffic:
    """Counts for one flow. Keys are node ids as the engine labels them."""

    flow: str
    choices: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, option) -> callers
    exits: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, reason) -> callers

    def hangups(self, node: str) -> float:
        return self.exits.get((node, "hangup"), 0.0)

    def count(self, metric: str, node: str, key: str) -> float | None:
        table = self.choices if metric == "choice" else self.exits
        return table.get((node, key))


def parse_traffic(text: str, flow: str) -> Traffic:
    """Counters of `flow` from a Prometheus text exposition."""
    choices: dict[tuple[str, str], float] = defaultdict(float)
    exits: dict[tuple[str, str], float] = defaultdict(float)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise TrafficError(f"not a Prometheus text exposition: {exc}") from None
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("flow") != flow or "node" not in labels:
                continue
            if sample.name == "ivr_menu_choices_total" and "option" in labels:
                choices[(labels["node"], labels["option"])] += sample.value
            elif sample.name == "ivr_node_exits_total" and "reason" in labels:
                exits[(labels["node"], labels["reason"])] += sample.value
    return Traffic(flow, dict(choices), dict(exits))


def load_traffic(source: str, flow: str, timeout: float = 10.0) -> Traffic:
    """Read traffic from an http(s) /metrics URL or a file holding a scrape."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response:  # noqa: S310 (scheme checked)
                text = response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise TrafficError(f"could not fetch {source}: {exc}; is the service running and the URL its /metrics?")
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise TrafficError(f"could not read metrics file {source}: {exc.strerror}") from None
    return parse_traffic(text, flow)


def traffic_from_registry(flow: str) -> Traffic:
    """Traffic of `flow` from this process's own metrics (for the HTTP API: `GET /flows/{name}/graph`)."""
    from prometheus_client import generate_latest

    from ivr.metrics import REGISTRY

    return parse_traffic(generate_latest(REGISTRY).decode("utf-8"), flow)

"""Traffic of one flow, read from the service's Prometheus metrics (a /metrics URL or a saved scrape).

Rules for this file:
- Three series matter: `ivr_menu_choices_total{flow,node,option}` (which option callers pressed),
  `ivr_node_exits_total{flow,node,reason}` (why they left a node; reason="hangup" is where they hung up) and
  `ivr_transfers_total{flow,target,result}` (DIALSTATUS/QUEUESTATUS of transfers, which tell a transfer's
  branches apart: they all exit with reason "next").
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

# Transfer branch -> the lower-cased DIALSTATUS/QUEUESTATUS values that lead there (as ivr.flow.nodes.transfer maps
# them; a branch the node does not define falls back to the next one there, which the picture cannot know).
TRANSFER_BRANCH_RESULTS: dict[str, tuple[str, ...]] = {
    "on_busy": ("busy",),
    "on_no_answer": ("noanswer",),
    "on_unavailable": ("chanunavail", "congestion", "full", "joinunavail", "leaveunavail"),
    "on_timeout": ("timeout", "joinempty", "leaveempty"),
    "next": ("answer", "answered", "continue"),
}


class TrafficError(Exception):
    """The metrics could not be read or parsed."""


@dataclass
class Traffic:
    """Counts for one flow. Keys are node ids as the engine labels them."""

    flow: str
    choices: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, option) -> callers
    exits: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, reason) -> callers
    transfers: dict[tuple[str, str], float] = field(default_factory=dict)  # (target, result) -> calls

    def hangups(self, node: str) -> float:
        return self.exits.get((node, "hangup"), 0.0)

    def count(self, metric: str, node: str, key: str) -> float | None:
        if metric == "transfer":
            results = TRANSFER_BRANCH_RESULTS.get(key, ())
            found = [self.transfers[(node, r)] for r in results if (node, r) in self.transfers]
            return sum(found) if found else None
        table = self.choices if metric == "choice" else self.exits
        return table.get((node, key))


def parse_traffic(text: str, flow: str) -> Traffic:
    """Counters of `flow` from a Prometheus text exposition."""
    choices: dict[tuple[str, str], float] = defaultdict(float)
    exits: dict[tuple[str, str], float] = defaultdict(float)
    transfers: dict[tuple[str, str], float] = defaultdict(float)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise TrafficError(f"not a Prometheus text exposition: {exc}") from None
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("flow") != flow:
                continue
            if sample.name == "ivr_transfers_total" and "target" in labels and "result" in labels:
                transfers[(labels["target"], labels["result"])] += sample.value
            elif "node" not in labels:
                continue
            elif sample.name == "ivr_menu_choices_total" and "option" in labels:
                choices[(labels["node"], labels["option"])] += sample.value
            elif sample.name == "ivr_node_exits_total" and "reason" in labels:
                exits[(labels["node"], labels["reason"])] += sample.value
    return Traffic(flow, dict(choices), dict(exits), dict(transfers))


def load_traffic(source: str, flow: str, timeout: float = 10.0) -> Traffic:
    """Read traffic from an http(s) /metrics URL or a file holding a scrape."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response:  # noqa: S310 (scheme checked)
                text = response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise TrafficError(
                f"could not fetch {source}: {exc}; is the service running and the URL its /metrics?"
            ) from exc
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

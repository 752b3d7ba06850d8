"""Repeat callers (first-contact resolution proxy) on a real in-memory storage with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from ivr import metrics
from ivr.metric_batch import BATCH
from ivr.repeat_callers import RepeatCallers, caller_hash, normalise
from ivr.storage import open_storage

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = b"0123456789abcdef-test-key"


@dataclass
class Report:
    caller_id: str
    started_at: datetime
    flow: str = "main"
    end_target: str = "queue:sales"
    uniqueid: str = "1.1"
    variables: dict[str, str] = field(default_factory=dict)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def value(name: str, **labels: str) -> float:
    BATCH.flush()
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def storage():
    s = open_storage("memory:")
    yield s
    await s.close()


def test_numbers_are_normalised_and_withheld_ones_left_out():
    assert normalise("+370 600-00001") == "+37060000001"
    for withheld in ("", "anonymous", "Anonymous", "unknown", "Restricted", "1001", "000000", "abc123456"):
        assert normalise(withheld) is None, withheld
    assert caller_hash(KEY, "+37060000001") != caller_hash(b"another-key-0123456", "+37060000001")
    assert len(caller_hash(KEY, "+37060000001")) == 64 and "37060000001" not in caller_hash(KEY, "+37060000001")


async def test_repeats_counted_per_window_with_the_first_calls_flow_and_queue(storage):
    clock = Clock()
    rc = RepeatCallers(storage, KEY, {"24h": 86400.0, "7d": 604800.0}, 8 * 86400.0, clock=clock)
    labels = {"flow": "main", "queue": "sales"}
    calls0 = value("ivr_caller_calls_total", **labels)
    day0 = value("ivr_repeat_calls_total", **labels, window="24h")
    week0 = value("ivr_repeat_calls_total", **labels, window="7d")
    support_week0 = value("ivr_repeat_calls_total", flow="main", queue="support", window="7d")

    async def call(number: str, at: datetime, **kw: object) -> None:
        clock.now = at
        task = rc.on_report(Report(number, at, **kw))  # type: ignore[arg-type]
        if task is not None:
            await task

    await call("+37060000001", T0)  # sales
    await call("+37060000001", T0 + timedelta(hours=3), end_target="queue:support")  # repeat within 24 h and 7 d
    await call("+37060000001", T0 + timedelta(days=3))  # repeats the support call within 7 d only
    await call("+37060000002", T0 + timedelta(days=3))  # someone else: no repeat
    await call("anonymous", T0 + timedelta(days=3))  # left out
    await call("+37060000002", T0 + timedelta(days=3), variables={"param_callback": "7"})  # our own callback
    assert value("ivr_caller_calls_total", **labels) == calls0 + 3
    assert value("ivr_repeat_calls_total", **labels, window="24h") == day0 + 1
    assert value("ivr_repeat_calls_total", **labels, window="7d") == week0 + 1
    assert value("ivr_repeat_calls_total", flow="main", queue="support", window="7d") == support_week0 + 1

    # nine days on: the oldest contacts are past the retention and purged on the next record
    await call("+37060000003", T0 + timedelta(days=9, hours=1))
    rows = await storage.record_contact("probe", "x", "main", "", T0 + timedelta(days=10), lookback=T0)
    assert rows == []
    assert await storage.purge_contacts(T0 + timedelta(days=1)) == 0  # the first two were purged already


def test_retention_shorter_than_a_window_is_refused(storage):
    with pytest.raises(ValueError, match="retention"):
        RepeatCallers(storage, KEY, {"7d": 604800.0}, 86400.0)
    with pytest.raises(ValueError, match="key"):
        RepeatCallers(storage, b"", {"7d": 604800.0}, 8 * 86400.0)

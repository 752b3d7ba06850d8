"""Callback scheduler: retries with backoff, per-queue limits, stored attempts, metrics, restart recovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr import metrics
from ivr.ami.actions import OriginateResult
from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
from ivr.calls.errors import AsteriskUnavailable
from ivr.calls.operations import Originated
from ivr.flow.report import CallReport
from ivr.settings import CallbackSettings
from ivr.storage import CallbackRequest, StorageError, open_storage

from .fakes import msg

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def result(reason: int) -> OriginateResult:
    return OriginateResult.from_event(
        msg(
            ("Event", "OriginateResponse"),
            ("Response", "Success" if reason == 4 else "Failure"),
            ("Reason", str(reason)),
        )
    )


class FakeOps:
    """Stands in for CallOperations: scripted OriginateResponse reasons per number; can block to hold slots."""

    def __init__(self) -> None:
        self.script: dict[str, list[int | Exception | None]] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.gate: asyncio.Event | None = None

    async def originate_flow(
        self, number, flow, *, caller_id=None, variables=None, timeout=None, service_variables=None, queue=None
    ):
        assert not variables  # the scheduler sets only the service's own IVR_* variables
        self.calls.append((number, flow, dict(service_variables or {})))
        step = self.script[number].pop(0)
        if isinstance(step, Exception):
            raise step
        return Originated(f"ivr-{len(self.calls)}", step if step is None else f"a{len(self.calls)}")

    async def wait_originate(self, originated, timeout):
        if self.gate is not None:
            await self.gate.wait()
        if originated.action_id is None:
            return None
        number = self.calls[int(originated.call_id.split("-")[1]) - 1][0]
        return result(self._reasons[number].pop(0))

    def reasons(self, number: str, *reasons: int) -> None:
        self._reasons = getattr(self, "_reasons", {})
        self._reasons[number] = list(reasons)
        self.script[number] = [0] * len(reasons)  # 0 = "Originate queued"; the reason comes from wait_originate


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store():
    s = open_storage("memory:")
    yield s
    await s.close()


def count(queue: str, result_: str) -> float:
    return metrics.REGISTRY.get_sample_value("ivr_callbacks_total", {"queue": queue, "result": result_}) or 0.0


def report(callback_id: object, outcome: str) -> CallReport:
    """What the FastAGI handler hands on_report after the callback flow ran (?callback=<id> -> param_callback)."""
    return CallReport(
        flow="callback",
        start_node="start",
        version="v1",
        uniqueid="ivr-x",
        caller_id="",
        started_at=T0,
        outcome=outcome,
        variables={"param_callback": str(callback_id), "param_queue": "cbq1"},
    )


async def test_busy_then_answered_with_backoff(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000001", 5, 4)  # busy, then answered
    cb = await store.add_callback(CallbackRequest(number="+37060000001", queue="cbq1", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(120.0,)), clock=clock, known_queues={"cbq1"})
    completed = count("cbq1", "completed")

    assert await sched.run_once() == 1
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.attempts, req.last_result, req.next_attempt_at) == (
        "pending",
        1,
        "busy",
        T0 + timedelta(seconds=120),
    )
    assert ops.calls[0] == ("+37060000001", "callback", {"IVR_CALLBACK_ID": str(cb), "IVR_CALLBACK_QUEUE": "cbq1"})

    clock.now = T0 + timedelta(seconds=119)
    assert await sched.run_once() == 0  # not due yet
    clock.now = T0 + timedelta(seconds=120)
    assert await sched.run_once() == 1
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.attempts) == ("answered", 2)  # the flow runs; not completed yet
    assert count("cbq1", "completed") == completed
    await sched.on_flow_report(report(cb, "transferred"))  # the flow put the customer in the queue
    req = await store.get_callback(cb)
    assert (req.state, req.attempts) == ("completed", 2)
    assert [(a.result, a.call_id) for a in await store.callback_attempts(cb)] == [
        ("busy", "ivr-1"),
        ("answered", "ivr-2"),
    ]
    assert count("cbq1", "completed") == completed + 1
    assert count("cbq1", "attempted") >= 2


async def test_gives_up_after_max_attempts(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000002", 3, 3)
    cb = await store.add_callback(CallbackRequest(number="+37060000002", queue="cbq2", requested_at=T0, max_attempts=2))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(10.0,)), clock=clock, known_queues={"cbq2"})
    failed = count("cbq2", "failed")
    await sched.run_once()
    await sched.drain()
    clock.now += timedelta(seconds=10)
    await sched.run_once()
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.attempts, req.last_result) == ("failed", 2, "no_answer")
    assert count("cbq2", "failed") == failed + 1
    clock.now += timedelta(hours=1)
    assert await sched.run_once() == 0


async def test_per_queue_limit_and_fairness(store):
    clock = Clock()
    ops = FakeOps()
    for n in ("1", "2", "3"):
        ops.reasons(f"+3706000010{n}", 4)
    ops.reasons("+37060000200", 4)
    for n in ("1", "2", "3"):
        await store.add_callback(CallbackRequest(number=f"+3706000010{n}", queue="big", requested_at=T0))
    await store.add_callback(
        CallbackRequest(number="+37060000200", queue="small", requested_at=T0 + timedelta(seconds=1))
    )
    ops.gate = asyncio.Event()  # keep attempts in flight
    clock.now = T0 + timedelta(seconds=1)
    sched = CallbackScheduler(store, ops, CallbackPolicy(per_queue_limit=1, queue_limits={"big": 2}), clock=clock)
    assert await sched.run_once() == 3  # 2 for "big" (its limit), 1 for "small"
    assert sched.active == {"big": 2, "small": 1}
    assert await sched.run_once() == 0  # all slots busy
    ops.gate.set()
    await sched.drain()
    assert sched.active == {"big": 0, "small": 0}
    assert await sched.run_once() == 1  # the third "big" request
    await sched.drain()
    assert [c.state for c in await store.list_callbacks()] == ["answered"] * 4


async def test_asterisk_down_and_lost_result_are_errors_that_retry(store):
    clock = Clock()
    ops = FakeOps()
    ops.script["+37060000300"] = [AsteriskUnavailable("AMI down"), None]
    cb = await store.add_callback(CallbackRequest(number="+37060000300", queue="cbq3", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(5.0,)), clock=clock)
    await sched.run_once()
    await sched.drain()
    assert (await store.get_callback(cb)).last_result == "error"
    clock.now += timedelta(seconds=5)
    await sched.run_once()
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.attempts, req.last_result) == ("pending", 2, "error")  # max_attempts=3: one left
    assert [a.result for a in await store.callback_attempts(cb)] == ["error", "error"]


async def test_start_takes_over_requests_left_dialing_and_loop_runs(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000400", 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000400", queue="cbq4", requested_at=T0))
    await store.mark_callback_dialing(cb, T0)  # a crash left it "dialing"
    sched = CallbackScheduler(store, ops, CallbackPolicy(poll_interval=60), clock=clock)
    await sched.start()
    for _ in range(100):
        await asyncio.sleep(0)
        if (await store.get_callback(cb)).state == "answered":
            break
    await sched.stop()
    assert (await store.get_callback(cb)).state == "answered"


async def test_answered_but_not_connected_is_retried_as_no_agent(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000500", 4, 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000500", queue="cbq5", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(60.0,)), clock=clock)
    await sched.run_once()
    await sched.drain()
    assert sched.on_flow_report(report(cb, "abandoned")) is not None  # hung up in the callback flow
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.attempts, req.last_result, req.next_attempt_at) == (
        "pending",
        1,
        "no_agent",
        T0 + timedelta(seconds=60),
    )
    assert [a.result for a in await store.callback_attempts(cb)] == ["no_agent"]
    # Reports of other calls and repeated reports change nothing.
    assert sched.on_flow_report(report("", "abandoned")) is None
    assert sched.on_flow_report(report("1;DROP", "abandoned")) is None
    await sched.on_flow_report(report(cb, "transferred"))
    assert (await store.get_callback(cb)).state == "pending"


async def test_flow_report_that_overtakes_the_originate_result(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000501", 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000501", queue="cbq5", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(60.0,)), clock=clock)
    ops.gate = asyncio.Event()
    await sched.run_once()
    await asyncio.sleep(0)
    await sched.on_flow_report(report(cb, "error"))
    assert (await store.get_callback(cb)).state == "dialing"  # the verdict waits on the row for the result
    ops.gate.set()
    await sched.drain()
    req = await store.get_callback(cb)
    assert (req.state, req.last_result) == ("pending", "no_agent")


async def test_policy_caps_attempts_and_fills_in_the_flow(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000502", 3, 3)
    cb = await store.add_callback(
        CallbackRequest(number="+37060000502", queue="cbq5", flow="", requested_at=T0, max_attempts=10)
    )
    policy = CallbackPolicy.from_settings(CallbackSettings(flow="cb_flow", max_attempts=1, retry_after=5.0))
    assert (policy.flow, policy.max_attempts, policy.backoff) == ("cb_flow", 1, (5.0,))
    sched = CallbackScheduler(store, ops, policy, clock=clock)
    await sched.run_once()
    await sched.drain()
    assert ops.calls[0][1] == "cb_flow"
    assert (await store.get_callback(cb)).state == "failed"  # settings.max_attempts=1 wins over 10


async def test_numbers_outside_the_pattern_are_never_dialled(store):
    clock = Clock()
    ops = FakeOps()
    cb = await store.add_callback(CallbackRequest(number="+19005550100", queue="cbq5", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(number_pattern=r"^(\+370|8)[0-9]{8}$"), clock=clock)
    await sched.run_once()
    await sched.drain()
    assert ops.calls == []
    req = await store.get_callback(cb)
    assert (req.state, req.last_result) == ("failed", "failed")  # no retry for a number we may not call


async def test_language_is_passed_only_when_it_is_a_language_code(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000503", 4)
    ops.reasons("+37060000504", 4)
    await store.add_callback(CallbackRequest(number="+37060000503", queue="cbq5", language="lt", requested_at=T0))
    await store.add_callback(CallbackRequest(number="+37060000504", queue="cbq6", language="en,X=1", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(), clock=clock)
    await sched.run_once()
    await sched.drain()
    by_number = {number: variables for number, _, variables in ops.calls}
    assert by_number["+37060000503"]["IVR_LANG"] == "lt"
    assert "IVR_LANG" not in by_number["+37060000504"]


async def test_storage_error_is_logged_and_the_row_is_retried_after_its_lease(store, caplog):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000505", 5, 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000505", queue="cbq5", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(ring_timeout=40, result_grace=15, lease=55), clock=clock)
    real = store.record_callback_attempt

    async def broken(*args, **kwargs):
        raise StorageError("database 'x': disk I/O error")

    store.record_callback_attempt = broken
    await sched.run_once()
    await sched.drain()  # the task ends without raising
    assert "cannot store the attempt result busy" in caplog.text
    assert (await store.get_callback(cb)).state == "dialing"
    assert sched.active == {"cbq5": 0}
    store.record_callback_attempt = real
    clock.now = T0 + timedelta(seconds=54)
    assert await sched.run_once() == 0  # still leased (could still be ringing)
    clock.now = T0 + timedelta(seconds=56)
    assert await sched.run_once() == 1  # the lease expired without renewal: due again
    await sched.drain()
    assert (await store.get_callback(cb)).state == "answered"


async def test_metric_labels_are_bounded_to_known_queues(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000506", 3)
    await store.add_callback(
        CallbackRequest(number="+37060000506", queue="attacker-chosen-1", requested_at=T0, max_attempts=1)
    )
    sched = CallbackScheduler(store, ops, CallbackPolicy(), clock=clock, known_queues={"support"})
    other = count("other", "failed")
    await sched.run_once()
    await sched.drain()
    assert count("other", "failed") == other + 1
    assert count("attacker-chosen-1", "attempted") == 0
    assert sched.label("support") == "support"


def cancelled_report(callback_id: object, outcome: str = "abandoned") -> CallReport:
    """The callback flow after the customer pressed 2 (node callback_cancel sets callback_result=cancelled)."""
    rep = report(callback_id, outcome)
    rep.variables["callback_result"] = "cancelled"
    return rep


async def test_customer_who_no_longer_needs_help_closes_the_request(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000600", 4, 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000600", queue="cbq6", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(60.0,)), clock=clock, known_queues={"cbq6"})
    cancelled, failed = count("cbq6", "cancelled"), count("cbq6", "failed")
    await sched.run_once()
    await sched.drain()
    assert (await store.get_callback(cb)).state == "answered"

    task = sched.on_flow_report(cancelled_report(cb, "contained"))
    assert task is not None
    await task
    req = await store.get_callback(cb)
    assert (req.state, req.attempts) == ("cancelled", 1)  # done: not pending, not failed
    assert [a.result for a in await store.callback_attempts(cb)] == ["answered"]  # they did pick up
    assert (count("cbq6", "cancelled"), count("cbq6", "failed")) == (cancelled + 1, failed)
    # Never dialled again, however long we wait; a repeated report changes nothing.
    clock.now = T0 + timedelta(hours=5)
    assert await sched.run_once() == 0
    assert len(ops.calls) == 1
    assert sched.on_flow_report(cancelled_report(cb)) is not None
    await sched.drain()
    assert (await store.get_callback(cb)).state == "cancelled"
    assert count("cbq6", "cancelled") == cancelled + 1


async def test_cancelled_report_that_overtakes_the_originate_result(store):
    clock = Clock()
    ops = FakeOps()
    ops.reasons("+37060000601", 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000601", queue="cbq6", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(60.0,)), clock=clock)
    ops.gate = asyncio.Event()
    await sched.run_once()
    await asyncio.sleep(0)
    await sched.on_flow_report(cancelled_report(cb))  # kept on the row until the attempt is stored
    assert (await store.get_callback(cb)).state == "dialing"
    ops.gate.set()
    await sched.drain()
    assert (await store.get_callback(cb)).state == "cancelled"


async def test_only_the_cancelled_value_cancels(store):
    from ivr.calls.callbacks import flow_verdict

    assert flow_verdict(cancelled_report(1)) == "cancelled"
    assert flow_verdict(cancelled_report(1, "transferred")) == "connected"  # reached the queue after all
    other = report(1, "abandoned")
    other.variables["callback_result"] = ""  # the flow's default
    assert flow_verdict(other) == "not_connected"
    other.variables["callback_result"] = "later"
    assert flow_verdict(other) == "not_connected"


async def test_the_callback_flow_pressing_2_cancels_on_the_simulator(store):
    """The real config/flows/callback.yaml on the simulated Asterisk: the customer presses 2; the report the
    FastAGI handler hands on_report closes the request."""
    from pathlib import Path

    from ivr.agi.fastagi import FastAGIServer
    from ivr.flow.engine import FlowEngine
    from ivr.flow.loader import load_flows
    from ivr.flow.routing import fixed_flow_router
    from ivr.sim import CallSpec, NextPrompt, Press, SimConfig, SimulatedAsterisk, VirtualClock

    ops = FakeOps()
    ops.reasons("+37060000602", 4)
    cb = await store.add_callback(CallbackRequest(number="+37060000602", queue="billing", requested_at=T0))
    sched = CallbackScheduler(store, ops, CallbackPolicy(backoff=(60.0,)), clock=Clock())
    await sched.run_once()
    await sched.drain()

    flows = load_flows(Path(__file__).resolve().parents[2] / "config" / "flows")
    clock = VirtualClock(start=T0)
    tasks: list = []
    engine = FlowEngine(flows, storage=store, clock=clock.datetime, prompts_dir="/prompts")
    server = FastAGIServer(
        fixed_flow_router(engine, on_report=lambda r: tasks.append(sched.on_flow_report(r))), "127.0.0.1", 0
    )
    await server.start()
    sim = SimulatedAsterisk(SimConfig(), clock=clock)
    await sim.start(fastagi=("127.0.0.1", server.port), ami=False)
    try:
        c = await sim.place_call(
            CallSpec(
                flow="callback",
                caller_id="+37060000602",
                script=[NextPrompt(0.5), Press("2")],
                params={"outbound": "1", "queue": "billing", "callback": str(cb)},
            )
        )
        record = await c.finished(timeout=20)
    finally:
        await sim.stop()
        await server.stop()
    assert 'STREAM FILE /prompts/en/callback_cancelled ""' in record.commands()
    assert len(tasks) == 1 and tasks[0] is not None
    await tasks[0]
    assert (await store.get_callback(cb)).state == "cancelled"

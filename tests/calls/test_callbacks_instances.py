"""Two callback schedulers (two service instances) on one database, SQLite file and real PostgreSQL: no request
is dialled twice, per-queue limits hold across both, and a dead instance's leases are taken over after expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
from ivr.calls.operations import Originated
from ivr.storage import CallbackRequest, open_storage

from .test_callbacks import Clock, result

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class SharedPBX:
    """Stands in for both instances' CallOperations: every number answers; counts calls ringing per queue."""

    def __init__(self) -> None:
        self.dialled: list[str] = []
        self.ringing: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.hold: asyncio.Event | None = None  # set: results flow; unset: every call keeps ringing

    async def originate_flow(
        self, number, flow, *, caller_id=None, variables=None, timeout=None, service_variables=None, queue=None
    ):
        assert queue == service_variables["IVR_CALLBACK_QUEUE"]  # the scheduler names the request's queue
        self.dialled.append(number)
        self.ringing[queue] = self.ringing.get(queue, 0) + 1
        self.most[queue] = max(self.most.get(queue, 0), self.ringing[queue])
        return Originated(f"ivr-{len(self.dialled)}", queue)

    async def wait_originate(self, originated, timeout):
        for _ in range(3):
            await asyncio.sleep(0)  # let the other instance run while this one rings
        if self.hold is not None:
            await self.hold.wait()
        self.ringing[originated.action_id] -= 1
        return result(4)


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_stores(request, tmp_path):
    if request.param == "sqlite":
        url, options = f"sqlite:///{tmp_path}/shared.db", {}
    else:
        cluster = request.getfixturevalue("pg_cluster")
        url, options = request.getfixturevalue("pg_database"), {"password": cluster.password}
    stores = [open_storage(url, **options), open_storage(url, **options)]
    for s in stores:
        await s.open()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


async def test_two_schedulers_dial_every_request_once_within_the_queue_limits(two_stores):
    a_store, b_store = two_stores
    numbers = {}
    for n in range(60):
        number = f"+3706{n:07d}"
        numbers[await a_store.add_callback(CallbackRequest(number=number, queue=f"q{n % 3}", requested_at=T0))] = number
    pbx, clock = SharedPBX(), Clock()
    clock.now = T0
    policy = CallbackPolicy(per_queue_limit=4, queue_limits={"q2": 2})
    a = CallbackScheduler(a_store, pbx, policy, clock=clock, instance="ivr-a")
    b = CallbackScheduler(b_store, pbx, policy, clock=clock, instance="ivr-b")
    assert a.owner != b.owner
    for _ in range(200):
        await asyncio.gather(a.run_once(), b.run_once())
        await asyncio.sleep(0)
        if len(pbx.dialled) == len(numbers) and not a._tasks and not b._tasks:
            break
    await asyncio.gather(a.drain(), b.drain())
    assert sorted(pbx.dialled) == sorted(numbers.values())  # every request dialled exactly once
    assert pbx.most["q0"] <= 4 and pbx.most["q1"] <= 4 and pbx.most["q2"] <= 2  # limits over both instances
    states = {c.state for c in await a_store.list_callbacks(limit=100)}
    assert states == {"answered"}


async def test_a_dead_instances_leases_are_taken_over_after_expiry(two_stores):
    a_store, b_store = two_stores
    ids = [
        await a_store.add_callback(CallbackRequest(number=f"+3706000{n:04d}", queue="q", requested_at=T0))
        for n in range(3)
    ]
    pbx, clock = SharedPBX(), Clock()
    pbx.hold = asyncio.Event()  # a's calls never get their result: a "dies" while they ring
    policy = CallbackPolicy(per_queue_limit=5, lease=30.0)
    a = CallbackScheduler(a_store, pbx, policy, clock=clock, instance="ivr-a")
    b = CallbackScheduler(b_store, pbx, policy, clock=clock, instance="ivr-b")
    assert await a.run_once() == 3
    assert await b.run_once() == 0  # a's leases are live
    clock.now = T0 + timedelta(seconds=20)
    assert await a.renew_leases() == 3  # a is alive and renews
    clock.now = T0 + timedelta(seconds=45)
    assert await b.run_once() == 0  # renewed until T0+50
    for task in list(a._tasks):  # kill -9: a's attempts vanish without a word
        task.cancel()
    await asyncio.gather(*a._tasks, return_exceptions=True)
    clock.now = T0 + timedelta(seconds=51)
    pbx.hold.set()
    assert await b.run_once() == 3  # expired: b takes them over
    await b.drain()
    for cb in ids:
        req = await b_store.get_callback(cb)
        assert (req.state, req.attempts) == ("answered", 1)
    assert len(pbx.dialled) == 6  # a's rang, then b's: at least once, never lost


async def test_a_stopping_instance_stores_the_results_of_calls_still_ringing(two_stores):
    store, _ = two_stores
    cb = await store.add_callback(CallbackRequest(number="+37060009999", queue="q", requested_at=T0))
    pbx, clock = SharedPBX(), Clock()
    pbx.hold = asyncio.Event()
    sched = CallbackScheduler(store, pbx, CallbackPolicy(lease=30.0), clock=clock, instance="ivr-a")
    assert await sched.run_once() == 1

    async def answer_soon() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        pbx.hold.set()  # the customer answers while the instance is stopping

    answering = asyncio.get_running_loop().create_task(answer_soon())
    await sched.stop(grace=30.0)  # SIGTERM: no new leases, the ringing attempt may finish
    await answering
    req = await store.get_callback(cb)
    assert (req.state, req.attempts) == ("answered", 1)  # stored, not left leased to be dialled again

"""Storage benchmark: the hot storage calls on SQLite and PostgreSQL, the two PostgreSQL drivers, and the callback
scheduler with one and two instances.

Starts its own throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary directory, 127.0.0.1, as the
`postgres` user when run as root; `ivr.storage.testing`) and removes it at the end. Prints, per backend and
concurrency (1 caller, or N tasks at once):

- voicemail row insert (`add_voicemail`);
- lease one due callback (`lease_due_callbacks`: queue lock, live-lease count, SELECT ... FOR UPDATE SKIP LOCKED,
  UPDATE) and store its attempt result (`record_callback_attempt`);
- recordings index insert (`add_recording`) and query by call id (`list_recordings(call_id=...)`) over a table
  that grows with the run;
- `--drivers`: the same statements through asyncpg and through psycopg 3 + psycopg_pool (the measurement behind
  docs/decisions.md D3);
- the scheduler: requests leased, dialled (an instant fake PBX: no AMI, so the figure is the storage-bound
  ceiling) and stored per second by one instance, then by two instances (two processes) on one database.

    .venv/bin/python bench/storage_bench.py            # full run (~1-2 min)
    .venv/bin/python bench/storage_bench.py --quick    # small counts
    .venv/bin/python bench/storage_bench.py --drivers  # also asyncpg vs psycopg 3
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.storage import CallbackRequest, Recording, Voicemail, open_storage  # noqa: E402
from ivr.storage.testing import PgCluster, create_cluster  # noqa: E402

QUEUES = [f"q{n}" for n in range(20)]


def say(text: str) -> None:
    print(text, flush=True)


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100)[98]


async def measure(op: Callable[[int], Awaitable[Any]], count: int, concurrency: int) -> tuple[float, float]:
    """(ops/s, p99 ms) of `count` calls of op(i), `concurrency` at a time."""
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return count / elapsed, p99(latencies) * 1000


def row(name: str, backend: str, conc: int, result: tuple[float, float]) -> None:
    say(f"  {name:<34} {backend:<11} x{conc:<3} {result[0]:>9,.0f} ops/s   p99 {result[1]:7.2f} ms")


# --- hot calls through ivr.storage ---------------------------------------------------------------------------


async def hot_calls(backend: str, url: str, password: str | None, count: int, conc: int) -> None:
    store = open_storage(url, password=password, max_size=max(conc, 2)) if password else open_storage(url)
    await store.open()
    now = datetime.now(UTC)
    try:
        row(
            "voicemail row insert",
            backend,
            conc,
            await measure(
                lambda i: store.add_voicemail(
                    Voicemail(mailbox=f"m{i % 50}", caller="+37060000001", path=f"/vm/{i}.wav", seconds=12.0)
                ),
                count,
                conc,
            ),
        )
        for i in range(count):  # the callback backlog the lease calls work off
            await store.add_callback(CallbackRequest(number=f"+3706{i:07d}", queue=QUEUES[i % 20], requested_at=now))
        leased: list[int] = []
        active = dict.fromkeys(QUEUES, 0)

        async def lease(i: int) -> None:
            # limit = the queue's live leases + 1: each call leases exactly one due request
            queue = QUEUES[i % 20]
            got = await store.lease_due_callbacks(
                now, queue=queue, limit=active[queue] + 1, owner="bench/1", lease_until=now + timedelta(minutes=5)
            )
            for req in got:
                active[queue] += 1
                leased.append(req.id or 0)

        row("lease 1 due callback", backend, conc, await measure(lease, count, conc))
        ids = iter(list(leased))

        async def store_result(_: int) -> None:
            cb = next(ids, None)
            if cb is not None:
                await store.record_callback_attempt(cb, "answered", now, owner="bench/1")

        row("store an attempt result", backend, conc, await measure(store_result, len(leased), conc))
        row(
            "recordings index insert",
            backend,
            conc,
            await measure(
                lambda i: store.add_recording(
                    Recording(call_id=f"c{i}", path=f"/rec/c{i}.wav", agent="1001", queue="sales", started_at=now)
                ),
                count,
                conc,
            ),
        )
        row(
            "recordings query by call id",
            backend,
            conc,
            await measure(lambda i: store.list_recordings(call_id=f"c{(i * 7919) % count}"), count, conc),
        )
    finally:
        await store.close()


# --- asyncpg vs psycopg 3 on the same statements -------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS vm (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, mailbox VARCHAR(80),
  caller VARCHAR(80), path VARCHAR(500), seconds DOUBLE PRECISION, created_at timestamptz);
CREATE TABLE IF NOT EXISTS cb (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, queue VARCHAR(80),
  state VARCHAR(16), next_attempt_at timestamptz, lease_owner VARCHAR(120), lease_until timestamptz);
CREATE INDEX IF NOT EXISTS cb_q ON cb (queue, state);
CREATE TABLE IF NOT EXISTS rec (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, call_id VARCHAR(80),
  path VARCHAR(500), started_at timestamptz);
CREATE INDEX IF NOT EXISTS rec_call ON rec (call_id);
"""
LEASE_COUNT = "SELECT COUNT(*) FROM cb WHERE queue = {0} AND state = 'dialing' AND lease_until >= {1}"
LEASE_PICK = (
    "SELECT id FROM cb WHERE queue = {0} AND state = 'pending' AND next_attempt_at <= {1} "
    "ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
LEASE_TAKE = "UPDATE cb SET state = 'dialing', lease_owner = {0}, lease_until = {1} WHERE id = {2}"


def _sql(template: str, style: str) -> str:
    marks = [f"${n}" for n in range(1, 10)] if style == "asyncpg" else ["%s"] * 9
    return template.format(*marks)


async def drivers(url: str, password: str, count: int, conc: int) -> None:
    import asyncpg
    import psycopg
    import psycopg_pool

    now = datetime.now(UTC)
    apool = await asyncpg.create_pool(url, password=password, min_size=conc, max_size=conc)
    conninfo = psycopg.conninfo.make_conninfo(url, password=password)
    ppool = psycopg_pool.AsyncConnectionPool(conninfo, min_size=conc, max_size=conc, open=False)
    await ppool.open(wait=True)
    try:
        async with apool.acquire() as c:
            await c.execute(SCHEMA)
            await c.execute("TRUNCATE vm, cb, rec RESTART IDENTITY")
            await c.executemany(
                "INSERT INTO cb (queue, state, next_attempt_at) VALUES ($1, 'pending', $2)",
                [(QUEUES[i % 20], now) for i in range(2 * count)],
            )

        async def a_vm(i: int) -> None:
            async with apool.acquire() as c:
                await c.fetchval(
                    "INSERT INTO vm (mailbox, caller, path, seconds, created_at) VALUES ($1, $2, $3, $4, $5) "
                    "RETURNING id",
                    "m",
                    "+37060000001",
                    f"/vm/{i}",
                    12.0,
                    now,
                )

        async def p_vm(i: int) -> None:
            async with ppool.connection() as c:
                cur = await c.execute(
                    "INSERT INTO vm (mailbox, caller, path, seconds, created_at) VALUES (%s, %s, %s, %s, %s) "
                    "RETURNING id",
                    ("m", "+37060000001", f"/vm/{i}", 12.0, now),
                )
                await cur.fetchone()

        async def a_lease(i: int) -> None:
            q = QUEUES[i % 20]
            async with apool.acquire() as c, c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(1, hashtext($1))", q)
                await c.fetchval(_sql(LEASE_COUNT, "asyncpg"), q, now)
                got = await c.fetchval(_sql(LEASE_PICK, "asyncpg"), q, now)
                if got is not None:
                    await c.execute(_sql(LEASE_TAKE, "asyncpg"), "bench", now, got)

        async def p_lease(i: int) -> None:
            q = QUEUES[i % 20]
            async with ppool.connection() as c, c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(1, hashtext(%s))", (q,))
                await (await c.execute(_sql(LEASE_COUNT, "psycopg"), (q, now))).fetchone()
                got = await (await c.execute(_sql(LEASE_PICK, "psycopg"), (q, now))).fetchone()
                if got is not None:
                    await c.execute(_sql(LEASE_TAKE, "psycopg"), ("bench", now, got[0]))

        async def a_rec(i: int) -> None:
            async with apool.acquire() as c:
                await c.fetchval(
                    "INSERT INTO rec (call_id, path, started_at) VALUES ($1, $2, $3) RETURNING id", f"c{i}", "/r", now
                )

        async def p_rec(i: int) -> None:
            async with ppool.connection() as c:
                cur = await c.execute(
                    "INSERT INTO rec (call_id, path, started_at) VALUES (%s, %s, %s) RETURNING id",
                    (f"c{i}", "/r", now),
                )
                await cur.fetchone()

        async def a_query(i: int) -> None:
            async with apool.acquire() as c:
                await c.fetch("SELECT * FROM rec WHERE call_id = $1 ORDER BY started_at DESC LIMIT 100", f"c{i}")

        async def p_query(i: int) -> None:
            async with ppool.connection() as c:
                cur = await c.execute(
                    "SELECT * FROM rec WHERE call_id = %s ORDER BY started_at DESC LIMIT 100", (f"c{i}",)
                )
                await cur.fetchall()

        for name, a_op, p_op in (
            ("voicemail row insert", a_vm, p_vm),
            ("lease 1 due callback", a_lease, p_lease),
            ("recordings index insert", a_rec, p_rec),
            ("recordings query by call id", a_query, p_query),
        ):
            row(name, "asyncpg", conc, await measure(a_op, count, conc))
            row(name, "psycopg 3", conc, await measure(p_op, count, conc))
    finally:
        await apool.close()
        await ppool.close()


# --- the scheduler, one and two instances ----------------------------------------------------------------------


def _scheduler_process(url: str, password: str, instance: str, start: Any, out: Any) -> None:
    asyncio.run(_scheduler_run(url, password, instance, start, out))


async def _scheduler_run(url: str, password: str, instance: str, start: Any, out: Any) -> None:
    from ivr.ami.actions import OriginateResult
    from ivr.ami.protocol import Message
    from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
    from ivr.calls.operations import Originated

    answered = OriginateResult("Success", 4, None, None, Message([("Event", "OriginateResponse")]))

    class InstantPBX:
        dialled = 0

        async def originate_flow(self, number: str, flow: str, **_: Any) -> Originated:
            self.dialled += 1
            return Originated(f"{instance}-{self.dialled}", "x")

        async def wait_originate(self, originated: Originated, timeout: float) -> OriginateResult:
            return answered

    store = open_storage(url, password=password, max_size=8)
    await store.open()
    pbx = InstantPBX()
    sched = CallbackScheduler(
        store, pbx, CallbackPolicy(per_queue_limit=25, poll_interval=0.01, lease=60), instance=instance
    )
    start.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    idle = 0
    while idle < 3:
        n = await sched.run_once()
        await sched.drain()
        idle = idle + 1 if n == 0 else 0
    out.put((instance, pbx.dialled, time.perf_counter() - t0, time.process_time() - cpu0))
    await store.close()


def scheduler_throughput(cluster: PgCluster, instances: int, count: int) -> None:
    url = cluster.create_database(f"sched{instances}_{os.getpid()}")

    async def fill() -> None:
        store = open_storage(url, password=cluster.password)
        await store.open()
        now = datetime.now(UTC)
        async with store.db.transaction() as tx:
            for i in range(count):
                await tx.execute(
                    "INSERT INTO callback (number, queue, flow, caller_name, source_call_id, language, requested_at, "
                    "next_attempt_at, max_attempts, attempts, state) VALUES (?, ?, 'callback', '', '', '', ?, ?, 1, "
                    "0, 'pending')",
                    f"+3706{i:07d}",
                    QUEUES[i % 20],
                    now,
                    now,
                )
        await store.close()

    asyncio.run(fill())
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_scheduler_process, args=(url, cluster.password, f"bench-{n}", start, out))
        for n in range(instances)
    ]
    for p in procs:
        p.start()
    time.sleep(1.5)  # let every process import and connect before the clock starts
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    dialled = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    split = " + ".join(str(r[1]) for r in sorted(results))
    cpu = " + ".join(f"{r[3]:.2f}" for r in sorted(results))
    say(
        f"  scheduler, {instances} instance(s): {dialled} requests ({split}) in {elapsed:.2f} s = "
        f"{dialled / elapsed:,.0f} requests/s; scheduler CPU {cpu} s, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


async def sqlite_and_postgres(cluster: PgCluster, count: int, concurrency: list[int], tmp: Path) -> None:
    for conc in concurrency:
        await hot_calls("sqlite", f"sqlite:///{tmp}/bench-{conc}.db", None, count, conc)
        await hot_calls(
            "postgresql", cluster.create_database(f"hot{conc}_{os.getpid()}"), cluster.password, count, conc
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts")
    parser.add_argument("--drivers", action="store_true", help="also compare asyncpg and psycopg 3")
    parser.add_argument("--count", type=int, default=None, help="operations per measurement")
    parser.add_argument("--only", choices=["hot", "drivers", "scheduler"], help="run one section only")
    args = parser.parse_args()
    count = args.count or (300 if args.quick else 2000)
    sched_count = 400 if args.quick else 3000
    sections = {args.only} if args.only else {"hot", "scheduler"} | ({"drivers"} if args.drivers else set())
    cluster = create_cluster(log=say)
    try:
        if "hot" in sections:
            say(f"hot storage calls ({count} operations each; x1 = one caller, x16 = 16 tasks at once):")
            with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
                asyncio.run(sqlite_and_postgres(cluster, count, [1, 16], Path(tmp)))
        if "drivers" in sections:
            say("PostgreSQL drivers on the same statements:")
            for conc in (1, 16):
                asyncio.run(drivers(cluster.create_database(f"drv{conc}"), cluster.password, count, conc))
        if "scheduler" in sections:
            say(f"callback scheduler on PostgreSQL ({sched_count} due requests, instant fake PBX, 20 queues x 25):")
            for n in (1, 2):
                scheduler_throughput(cluster, n, sched_count)
    finally:
        say("postgres: removing the cluster")
        cluster.destroy()


if __name__ == "__main__":
    main()

"""Two service instances (`python main.py serve` subprocesses) on one real PostgreSQL and the simulated Asterisk:
500 callbacks due at once are each dialled exactly once; after a kill -9 of one instance, the other finishes the
requests the dead one had leased once their leases expire.

Every customer answers and presses 1; the callback flow (config/flows/callback.yaml) puts them in the queue and
an agent answers, so each request ends `completed` after one attempt. The simulator's originate log
(`sim.originates`) is what counts the dialling. Short poll interval and lease keep the run bounded.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from ivr.sim import AgentSpec, NextPrompt, Press, QueueSpec, SimConfig, SimulatedAsterisk, VirtualClock
from ivr.storage.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
QUEUES = [f"cbq{n}" for n in range(5)]
LEASE = 2.0


def sim_config(ivr_server: str) -> SimConfig:
    config = SimConfig(
        queues={q: QueueSpec(q, members=["Local/agent@agents"]) for q in QUEUES},
        agents={"agent": AgentSpec("agent", answer_after=0.5, talk=1.0)},
        ami_users={"ivr": "s3cret"},
    )
    # Every customer answers, hears the greeting and presses 1 ("speak to an agent now").
    config.default_callee = AgentSpec("customer", answer_after=0.5, talk=None, script=(NextPrompt(0.3), Press("1")))
    # The shipped dialplan runs ivr-outbound,callback: AGI(agi://${IVR_SERVER}/callback?...&callback=<id>).
    config.globals["IVR_SERVER"] = ivr_server
    return config


SETTINGS = """\
ami: {{host: 127.0.0.1, port: {ami_port}, username: ivr, ping_interval: 0, backoff_max: 1s}}
fastagi: {{host: 127.0.0.1, port: {agi_port}}}
http: {{host: 127.0.0.1, port: {http_port}}}
flows_dir: {root}/config/flows
prompts_dir: {root}/recordings/prompts
recordings_dir: {tmp}/rec
reload: {{watch: false}}
storage: {{url: "{url}", pool_max: 6}}
calls: {{customer_dial: "PJSIP/{{number}}@trunk"}}
callbacks: {{interval: 200ms, lease: {lease}s, per_queue_limit: {limit}, retry_after: 1h}}
"""


class Instance:
    """One `serve` subprocess with its own ports and settings file."""

    def __init__(
        self, name: str, tmp: Path, url: str, password: str, ami_port: int, agi_port: int = 0, limit: int = 12
    ) -> None:
        self.name = name
        self.agi_port, self.http_port = agi_port or free_port(), free_port()
        folder = tmp / name / "config"
        folder.mkdir(parents=True)
        self.config = folder / "ivr.yaml"
        self.config.write_text(
            SETTINGS.format(
                ami_port=ami_port,
                agi_port=self.agi_port,
                http_port=self.http_port,
                root=ROOT,
                tmp=tmp / name,
                url=url,
                lease=LEASE,
                limit=limit,
            ),
            encoding="utf-8",
        )
        self.log = tmp / f"{name}.log"
        env = {**os.environ, "IVR_STORAGE_PASSWORD": password, "IVR_AMI_SECRET": "s3cret", "IVR_API_TOKEN": "t"}
        env.pop("IVR_CONFIG", None)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "main.py", "serve", "--config", str(self.config)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    @property
    def owner_suffix(self) -> str:
        return f"/{self.proc.pid}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


async def until(predicate, what: str, timeout: float = 60.0, step: float = 0.1, db=None):
    """Poll `predicate` (async) until truthy; a bound on a hang, not a timed assertion. With `db`, a time-out
    says what the requests' rows looked like then."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await predicate()
                if value:
                    return value
                await asyncio.sleep(step)
    except TimeoutError:
        seen = ""
        if db is not None:
            rows = await db.fetch("SELECT state, lease_owner, count(*) AS n FROM callback GROUP BY 1, 2 ORDER BY 1, 2")
            seen = "; rows: " + ", ".join(f"{r['state']}/{r['lease_owner']}: {r['n']}" for r in rows)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{seen}") from None


@pytest.fixture
async def cluster_db(pg_cluster, pg_database):
    conn = await asyncpg.connect(pg_database, password=pg_cluster.password)
    try:
        yield pg_database, pg_cluster.password, conn
    finally:
        await conn.close()


@pytest.fixture
async def scale_out(tmp_path, cluster_db):
    url, password, db = cluster_db
    a_agi_port = free_port()  # Asterisk runs every answered callback's flow on instance a
    sim = SimulatedAsterisk(
        sim_config(f"127.0.0.1:{a_agi_port}"), clock=VirtualClock(start=datetime(2026, 3, 23, 10, 0, tzinfo=UTC))
    )
    await sim.start(("127.0.0.1", a_agi_port), ami=True)
    instances: list[Instance] = []
    try:
        # The queue's limit is counted over both instances' leases and each instance applies its own: a stops at 6
        # ringing, so b always finds slots (the survivor test needs b holding leases when it is killed). Which
        # instance dials a given request is otherwise left to chance (a freed slot is open to both).
        a = Instance("ivr-a", tmp_path, url, password, sim.ami_port, a_agi_port, limit=6)
        instances.append(a)
        await until(lambda: asyncio.to_thread(a.ready), "instance a", timeout=30)  # a migrates first...
        b = Instance("ivr-b", tmp_path, url, password, sim.ami_port)
        instances.append(b)
        await until(lambda: asyncio.to_thread(b.ready), "instance b", timeout=30)  # ...b finds the schema current
        yield sim, a, b, db
    finally:
        for inst in instances:
            await asyncio.to_thread(inst.stop)
        await sim.stop()


async def add_due_callbacks(db, count: int) -> list[int]:
    """`count` requests, all due now, written in one transaction: they become due at the same moment."""
    now = datetime.now(UTC)
    rows = [
        (f"+3706{n:07d}", QUEUES[n % len(QUEUES)], "callback", "", "", "en", now, now, 1, 0, "pending")
        for n in range(count)
    ]
    async with db.transaction():
        await db.executemany(
            "INSERT INTO callback (number, queue, flow, caller_name, source_call_id, language, requested_at, "
            "next_attempt_at, max_attempts, attempts, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            rows,
        )
    return [r["id"] for r in await db.fetch("SELECT id FROM callback ORDER BY id")]


async def states(db) -> dict[str, int]:
    return {r["state"]: r["n"] for r in await db.fetch("SELECT state, COUNT(*) AS n FROM callback GROUP BY state")}


def dialled(sim) -> collections.Counter[int]:
    return collections.Counter(int(o.variables["IVR_CALLBACK_ID"]) for o in sim.originates)


async def test_500_callbacks_due_at_once_are_each_dialled_once_by_two_instances(scale_out):
    sim, a, b, db = scale_out
    ids = await add_due_callbacks(db, 500)

    async def all_completed():
        got = await states(db)
        return got if got.get("completed") == len(ids) or got.get("failed") else None

    final = await until(all_completed, "every request completed", db=db)
    assert final == {"completed": 500}, final
    counts = dialled(sim)
    assert sorted(counts) == ids and set(counts.values()) == {1}  # every request dialled exactly once
    attempts = await db.fetch("SELECT callback_id, result FROM callback_attempt")
    assert len(attempts) == 500 and {r["result"] for r in attempts} == {"answered"}


async def test_the_survivor_finishes_what_a_killed_instance_had_leased(scale_out):
    sim, a, b, db = scale_out
    ids = await add_due_callbacks(db, 120)

    async def b_is_dialling():
        rows = await db.fetch("SELECT id, lease_owner FROM callback WHERE state = 'dialing'")
        return [r["id"] for r in rows if (r["lease_owner"] or "").endswith(b.owner_suffix)]

    await until(b_is_dialling, "instance b holding leases", step=0.02, db=db)
    await asyncio.to_thread(b.kill)  # kill -9: no chance to release anything
    orphaned = {
        r["id"]
        for r in await db.fetch("SELECT id, lease_owner FROM callback WHERE state = 'dialing'")
        if (r["lease_owner"] or "").endswith(b.owner_suffix)
    }
    assert orphaned  # requests b was dialling when it died, still leased to it

    async def all_completed():
        got = await states(db)
        return got if got.get("completed") == len(ids) else None

    await until(all_completed, "every request completed by the survivor", db=db)
    counts = dialled(sim)
    assert sorted(counts) == ids  # nothing lost
    twice = {cb for cb, n in counts.items() if n > 1}
    assert twice <= orphaned and max(counts.values()) <= 2  # only b's orphans rang again, once
    for cb in orphaned:  # taken over after the lease expired, finished by a
        rows = await db.fetch("SELECT result FROM callback_attempt WHERE callback_id = $1", cb)
        assert [r["result"] for r in rows] == ["answered"]

"""Two simulated Asterisk servers and two service instances (`serve` subprocesses) on one real PostgreSQL, each
instance logged in to both AMIs: either instance lists the calls of both servers (ids `<pbx>:<Linkedid>`, tagged
with their `pbx`), and an action on a call of the second server, sent to the first instance, reaches the second
server.

Real time: the callers listen to the first prompt while the test looks (seconds); everything ends well within 20 s.
The two simulators hand out the same `<epoch>.<seq>` Uniqueids, which is exactly what the pbx prefix is for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.api.deps import DEPS
from ivr.sim import CallSpec, RealClock, SimConfig, SimulatedAsterisk

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    name: str
    proc: asyncio.subprocess.Process
    http: str = ""
    fastagi_port: int = 0
    storage: str = ""


def settings_text(tmp_path: Path, instance: str, sims: list[SimulatedAsterisk], storage_url: str = "") -> str:
    servers = "\n".join(
        f"    - {{name: pbx{i + 1}, host: 127.0.0.1, port: {sim.ami_port}}}" for i, sim in enumerate(sims)
    )
    return (
        f"instance: {instance}\n"
        f"ami:\n  auth: md5\n  username: ivr\n  secret_env: IVR_TEST_AMI_SECRET\n  backoff_max: 1s\n"
        f"  servers:\n{servers}\n"
        "fastagi: {host: 127.0.0.1, port: 0}\nhttp: {host: 127.0.0.1, port: 0}\n"
        f"flows_dir: {ROOT / 'config' / 'flows'}\nprompts_dir: {ROOT / 'recordings' / 'prompts'}\n"
        f"storage: {{url: '{storage_url or f'sqlite:///{tmp_path / instance}.db'}'}}\n"
        f"recordings_dir: {tmp_path / 'recordings'}\n"
        "reload: {watch: false}\ncallbacks: {enabled: false}\n"
    )


async def start_instance(
    tmp_path: Path, name: str, sims: list[SimulatedAsterisk], storage_url: str, password: str
) -> Instance:
    config = tmp_path / name / "config" / "ivr.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(settings_text(tmp_path, name, sims, storage_url))
    env = {**os.environ, "IVR_TEST_AMI_SECRET": "s3cret", "IVR_API_TOKEN": "", "IVR_STORAGE_PASSWORD": password}
    env.pop("IVR_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "main.py"),
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    instance = Instance(name, proc)
    assert proc.stdout is not None
    async with asyncio.timeout(15):
        while not (instance.http and instance.fastagi_port and instance.storage):
            line = (await proc.stdout.readline()).decode()
            assert line, f"{name} exited before serving"
            if line.startswith("FastAGI"):
                instance.fastagi_port = int(line.split()[1].split(":")[2].split("/")[0])
            elif line.startswith("HTTP API"):
                instance.http = line.split()[2].rsplit("/", 1)[0]
            elif line.startswith("Storage"):
                instance.storage = line.split()[1]
    return instance


@pytest.fixture
async def fleet(
    tmp_path: Path, pg_cluster: Any, pg_database: str
) -> AsyncIterator[tuple[list[SimulatedAsterisk], list[Instance]]]:
    """Two simulated Asterisk servers; two `serve` instances on one real PostgreSQL (the throwaway cluster)."""
    sims = [SimulatedAsterisk(SimConfig(ami_users={"ivr": "s3cret"}), clock=RealClock()) for _ in range(2)]
    for sim in sims:
        await sim.start(ami=True)
    instances: list[Instance] = []
    try:
        instances = list(
            await asyncio.gather(
                *(start_instance(tmp_path, n, sims, pg_database, pg_cluster.password) for n in ("ivr-a", "ivr-b"))
            )
        )
        yield sims, instances
    finally:
        for instance in instances:
            with contextlib.suppress(ProcessLookupError):
                instance.proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(i.proc.wait(), 30) for i in instances]
        for sim in sims:
            await sim.stop()
        assert codes == [0] * len(instances)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def until(what: str, probe: Any, timeout: float = 8.0) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (result := await probe()):
                await asyncio.sleep(0.05)
            return result
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_each_instance_shows_and_controls_the_calls_of_both_servers(fleet) -> None:
    sims, (a, b) = fleet
    assert a.storage.startswith("postgresql://") and a.storage == b.storage  # one database for both
    async with aiohttp.ClientSession() as http:
        for instance in (a, b):

            async def ready(instance: Instance = instance) -> Any:
                status, body = await get(http, instance.http + "/readyz")
                return body if status == 200 else None

            body = await until(f"{instance.name} ready", ready)
            assert body["instance"] == instance.name
            assert body["checks"] == {"ami:pbx1": True, "ami:pbx2": True, "fastagi": True}

        # Each Asterisk hands its calls to a different instance (as DNS SRV would spread them).
        sims[0].fastagi = ("127.0.0.1", a.fastagi_port)
        sims[1].fastagi = ("127.0.0.1", b.fastagi_port)
        first = await sims[0].place_call(CallSpec(flow="main", caller_id="+37060000011", script=[]))
        second = await sims[1].place_call(CallSpec(flow="main", caller_id="+37060000022", script=[]))

        async def both_calls(instance: Instance) -> Any:
            status, body = await get(http, instance.http + "/calls")
            calls = {c["pbx"]: c for c in body["calls"]}
            return calls if status == 200 and set(calls) == {"pbx1", "pbx2"} else None

        seen_a = await until("both calls on ivr-a", lambda: both_calls(a))
        seen_b = await until("both calls on ivr-b", lambda: both_calls(b))
        assert seen_a["pbx1"]["id"].startswith("pbx1:") and seen_a["pbx2"]["id"].startswith("pbx2:")
        assert {c["id"] for c in seen_a.values()} == {c["id"] for c in seen_b.values()}
        assert seen_a["pbx2"]["caller"]["number"] == "+37060000022"
        status, only = await get(http, a.http + "/calls?pbx=pbx2")
        assert status == 200 and [c["id"] for c in only["calls"]] == [seen_a["pbx2"]["id"]]

        # Hang up the second server's call through the instance that does not run it.
        async with http.post(f"{a.http}/calls/{seen_a['pbx2']['id']}/hangup") as resp:
            assert resp.status == 202, await resp.text()
        record = await second.finished(timeout=10)
        assert record.ended.by == "ami"
        assert not first.done  # the first server's call with the same kind of id is untouched

        async def gone() -> Any:
            calls = await both_calls(b)
            return calls is None

        await until("ivr-b to see the call end", gone)
        first.hangup()
        await first.finished(timeout=10)

        # The second Asterisk goes away: both instances say which server is missing, the first keeps serving.
        await sims[1].stop()

        async def pbx2_down(instance: Instance) -> Any:
            status, body = await get(http, instance.http + "/readyz")
            return body if status == 503 else None

        for instance in (a, b):
            body = await until(f"{instance.name} to miss pbx2", lambda i=instance: pbx2_down(i))
            assert body["checks"] == {"ami:pbx1": True, "ami:pbx2": False, "fastagi": True}
        async with http.get(a.http + "/metrics") as resp:
            text = await resp.text()
        assert 'ivr_ami_up{pbx="pbx1"} 1.0' in text and 'ivr_ami_up{pbx="pbx2"} 0.0' in text


async def test_service_wiring_for_two_servers(tmp_path: Path) -> None:
    """What `serve` builds from ami.servers, before connecting: one AMI client per server (named for ivr_ami_up),
    one /readyz check per server, queue statistics of each queue from its home server only."""
    from ivr.service import Service
    from ivr.settings import load_settings

    path = tmp_path / "config" / "ivr.yaml"
    path.parent.mkdir()
    servers = "\n".join(
        ["  servers:", "    - {name: pbx1, host: 127.0.0.1, port: 1, queues: [sales]}"]
        + ["    - {name: pbx2, host: 127.0.0.2, port: 1, queues: [support]}"]
    )
    path.write_text(settings_text(tmp_path, "ivr-a", []).replace("  servers:\n", servers))
    settings = load_settings(path, env={"IVR_TEST_AMI_SECRET": "s"})
    service = Service.from_settings(settings)
    try:
        assert {name: ami.pbx for name, ami in service.amis.items()} == {"pbx1": "pbx1", "pbx2": "pbx2"}
        assert [feed.stats._allowed for feed in service.queue_feeds] == [frozenset({"sales"}), frozenset({"support"})]
        assert set(service.app[DEPS].readiness) == {"ami:pbx1", "ami:pbx2", "fastagi"}
        assert service.calls.operations.queue_homes == {"sales": "pbx1", "support": "pbx2"}
        lines = service.describe()
        assert any("pbx2: 127.0.0.2:1" in line and "support" in line for line in lines)
        assert "Instance  ivr-a" in lines
    finally:
        await service.stop()

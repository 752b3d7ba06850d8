"""The whole service as `serve` builds it (settings -> Service), against the simulated Asterisk over real sockets:
FastAGI calls run the sample flows, AMI feeds the live registry and queue stats, the HTTP API answers.
Also the `serve` and `demo` commands as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr.service import Service
from ivr.settings import load_settings
from ivr.sim import (
    AgentSpec,
    CallSpec,
    NextPrompt,
    OnCommand,
    Press,
    QueueSpec,
    RealClock,
    SimConfig,
    SimulatedAsterisk,
    Speak,
    VirtualClock,
)

ROOT = Path(__file__).resolve().parents[2]
MONDAY_NOON = datetime(2026, 3, 23, 10, 0, tzinfo=UTC)  # 12:00 in Vilnius: the office is open
QUEUES = ("sales", "support", "billing", "complaints", "technical")
# language 1 (English), consent notice, welcome, main menu: 1 = sales (node ids in docs/flows.md)
TO_SALES = [NextPrompt(0.5), Press("1"), NextPrompt(), NextPrompt(), NextPrompt(0.5), Press("1")]


@pytest.fixture(params=["virtual"])
async def running(request, tmp_path: Path):
    clock = VirtualClock(start=MONDAY_NOON) if request.param == "virtual" else RealClock()
    async with service_on_sim(tmp_path, clock) as (sim, service):
        yield sim, service


@contextlib.asynccontextmanager
async def service_on_sim(tmp_path: Path, clock):
    """The simulated Asterisk and the service as `serve` builds it, recordings in a directory nothing created."""
    config = SimConfig(
        queues={q: QueueSpec(q, members=["Local/agent@agents"]) for q in QUEUES},
        agents={"agent": AgentSpec("agent", answer_after=3.0, talk=20.0)},
        ami_users={"ivr": "s3cret"},
    )
    sim = SimulatedAsterisk(config, clock=clock)
    await sim.start(ami=True)
    env = {
        "IVR_FASTAGI_HOST": "127.0.0.1",
        "IVR_FASTAGI_PORT": "0",
        "IVR_HTTP_PORT": "0",
        "IVR_AMI_PORT": str(sim.ami_port),
        "IVR_AMI_SECRET": "s3cret",
        "IVR_STORAGE_URL": f"sqlite:///{tmp_path / 'ivr.db'}",
        "IVR_RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_CALLER_HASH_KEY": "test-caller-hash-key-0123456789",
    }
    settings = load_settings(ROOT / "config" / "ivr.yaml", env=env)
    settings.reload.watch = False
    service = Service.from_settings(settings, clock=sim.clock.datetime)
    await service.start()
    sim.fastagi = ("127.0.0.1", service.fastagi.port)
    try:
        await service.ami.wait_logged_in(5)
        yield sim, service
    finally:
        await service.ami.close()
        await sim.stop()
        await service.stop()


async def test_voicemail_on_a_fresh_install(tmp_path: Path) -> None:
    """Nothing created recordings_dir or its voicemail directory, and Asterisk (the simulator, like Asterisk 22)
    creates none for RECORD FILE: `serve` must, or the caller gets `200 result=-1 (writefile)` and the error path."""
    night = datetime(2026, 3, 23, 18, 30, tzinfo=UTC)  # 20:30 in Vilnius: closed, the after-hours menu
    assert not (tmp_path / "rec").exists()
    async with service_on_sim(tmp_path, VirtualClock(start=night)) as (sim, service):
        script = [NextPrompt(0.5), Press("1"), NextPrompt(1.0), Press("1")]  # English; 1 = leave a message
        script += [OnCommand("RECORD FILE", 1.0), Speak(6.0)]  # then 5 s of silence end the message
        call = await sim.place_call(CallSpec(flow="main", caller_id="+37060000009", script=script))
        record = await call.finished(timeout=20)
        assert "200 result=-1 (writefile)" not in record.replies(), record.text()
        assert record.agi_status == "HANGUP"  # not FAILURE: the RECORD FILE worked
        assert (tmp_path / "rec" / "voicemail").is_dir()
        (message,) = await service.storage.list_voicemails("1000")
        assert Path(message.path).parent == tmp_path / "rec" / "voicemail" and Path(message.path).is_file()


async def get(service: Service, path: str, method: str = "GET") -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{service.http_port}{path}") as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def test_the_service_answers_malformed_http_with_the_json_error(running) -> None:
    """The service serves the API with ivr.api.server.ApiRunner: no raw bytes echoed, no traceback logged."""
    _, service = running
    reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Echo: s3cr3t\x00\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.split(b" ")[1] == b"400" and b'{"error": "bad_request"' in answer and b"s3cr3t" not in answer


async def test_a_call_through_the_whole_service(running) -> None:
    sim, service = running
    status, ready = await get(service, "/readyz")
    assert status == 200 and ready["checks"] == {"ami": True, "fastagi": True}

    before = await scrape(service)
    call = await sim.place_call(CallSpec(flow="main", caller_id="+37060000001", script=TO_SALES))
    record = await call.finished(timeout=20)
    assert 'EXEC Queue "sales,,,,120"' in record.commands()
    assert record.variables["IVR_STATUS"] == "OK" and record.variables["IVR_OUTCOME"] == "transferred"

    after = await scrape(service)

    def delta(sample: str) -> float:
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    assert delta('ivr_calls_started_total{flow="main"}') == 1
    assert delta('ivr_call_outcomes_total{flow="main",outcome="transferred"}') == 1
    assert delta('ivr_transfers_total{flow="main",result="answered",target="sales"}') == 1
    assert not any("+37060000001" in name for name in after)  # caller numbers never become labels

    # The same caller again: a repeat within 24 h of a call that ended in queue sales (first-contact resolution)
    again = await sim.place_call(CallSpec(flow="main", caller_id="+37060000001", script=TO_SALES))
    await again.finished(timeout=20)
    assert service.repeat_callers is not None
    await service.repeat_callers.drain()
    later = await scrape(service)
    calls = 'ivr_caller_calls_total{flow="main",queue="sales"}'
    assert later.get(calls, 0.0) - before.get(calls, 0.0) == 2
    for window in ("24h", "7d"):
        repeats = f'ivr_repeat_calls_total{{flow="main",queue="sales",window="{window}"}}'
        assert later.get(repeats, 0.0) - before.get(repeats, 0.0) == 1

    status, flows = await get(service, "/flows")
    assert status == 200 and {f["name"] for f in flows["flows"]} >= {"main", "callback"}
    status, reload = await get(service, "/flows/reload", "POST")
    assert status == 200 and reload["ok"] is True


async def test_live_calls_come_from_ami(running) -> None:
    sim, service = running
    call = await sim.place_call(CallSpec(flow="main", caller_id="+37060000002", script=TO_SALES))
    await call.finished(timeout=20)
    # The registry saw the call's channels come and go over AMI: nothing stale remains.
    for _ in range(100):
        status, calls = await get(service, "/calls")
        if status == 200 and not calls["calls"]:
            break
        await asyncio.sleep(0.02)
    assert status == 200 and calls["calls"] == []


async def test_agents_by_state_counts_each_agent_once(running) -> None:
    """One simulated agent is a member of all five queues: five memberships, one agent (issue 14)."""
    sim, service = running
    for _ in range(200):  # until the first queue resync of this service is in
        samples = await scrape(service)
        agents = {k: v for k, v in samples.items() if k.startswith("ivr_agents{")}
        if sum(agents.values()):
            break
        await asyncio.sleep(0.02)
    assert agents == {
        'ivr_agents{state="available"}': 1,
        'ivr_agents{state="busy"}': 0,
        'ivr_agents{state="paused"}': 0,
        'ivr_agents{state="unavailable"}': 0,
    }
    memberships = [
        k
        for k, v in samples.items()
        if k.startswith("ivr_queue_agents{") and 'available"' in k and v and any(f'"{q}"' in k for q in QUEUES)
    ]  # the registry is the process's: a test before may have left other queues' series
    assert len(memberships) == len(QUEUES)
    status, ready = await get(service, "/readyz")
    assert status == 200 and ready["instance"] == service.settings.instance
    assert samples['ivr_ami_up{pbx="default"}'] == 1


async def scrape(service: Service) -> dict[str, float]:
    """GET /metrics as {'name{label="v",...}': value}, labels sorted (counters are process-wide: compare deltas)."""
    status, text = await get(service, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@pytest.mark.parametrize("running", ["real"], indirect=True)
async def test_a_live_call_shows_its_flow_and_node(running) -> None:
    """Real time: the caller listens to the language prompt (seconds long) while we look at GET /calls."""
    sim, service = running
    call = await sim.place_call(CallSpec(flow="main", caller_id="+37060000003", script=[]))
    seen = None
    for _ in range(200):
        status, calls = await get(service, "/calls")
        nodes = [(c.get("flow"), c.get("node")) for c in calls.get("calls", [])]
        if ("main", "language_select") in nodes:
            seen = nodes
            break
        await asyncio.sleep(0.02)
    call.hangup()
    await call.finished(timeout=10)
    assert seen is not None, "the live call never showed flow main, node language_select"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_refuses_a_public_api_without_a_token() -> None:
    result = run_cli("serve", env={"IVR_HTTP_HOST": "0.0.0.0", "IVR_API_TOKEN": ""})
    assert result.returncode == 2
    assert "without a token" in result.stdout and "IVR_API_TOKEN" in result.stdout


def test_serve_refuses_broken_flows_with_their_location(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("name: main\nstart: a\nnodes:\n  a: {type: hangup, promts: []}\n")
    result = run_cli("serve", env={"IVR_FLOWS_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"{tmp_path / 'main.yaml'}:4" in result.stdout and "prompts" in result.stdout


def test_demo_runs_calls_and_prints_what_it_serves(tmp_path: Path) -> None:
    result = run_cli("demo", "--duration", "4", "--rate", "120", "--http-port", "0", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("FastAGI", "HTTP API", "/metrics", "Simulated Asterisk", "demo summary: calls placed="):
        assert expected in result.stdout


def test_serve_reloads_flows_on_sighup_and_keeps_the_running_version_on_errors(tmp_path: Path) -> None:
    """`serve` as an admin runs it: SIGHUP after a good edit swaps the version; after a broken edit the running
    version stays, GET /flows shows the error with its file and line; SIGTERM stops cleanly."""

    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "config" / "flows", flows)
    settings = tmp_path / "config" / "ivr.yaml"
    settings.parent.mkdir()
    settings.write_text(
        f"ami: {{enabled: false}}\nfastagi: {{host: 127.0.0.1, port: 0}}\nhttp: {{port: 0}}\n"
        f"flows_dir: {flows}\nprompts_dir: {ROOT / 'recordings' / 'prompts'}\nstorage: {{url: 'memory:'}}\n"
        f"reload: {{watch: false}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--config", str(settings)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = None
        for line in proc.stdout:
            if "HTTP API" in line:
                base = line.split()[2].rsplit("/", 1)[0]
                break
        assert base, "serve never printed its HTTP address"

        def flows_state() -> dict:
            with urllib.request.urlopen(base + "/flows", timeout=5) as resp:
                return json.load(resp)

        def until(predicate) -> dict:
            for _ in range(200):
                state = flows_state()
                if predicate(state):
                    return state
                time.sleep(0.05)
            raise AssertionError(f"flows never reached the expected state: {state}")

        first = flows_state()["version"]
        main = flows / "main.yaml"
        main.write_text(main.read_text().replace("description:", "description: edited -", 1))
        proc.send_signal(signal.SIGHUP)
        second = until(lambda s: s["version"] != first)["version"]

        main.write_text(main.read_text() + "\n  broken_node: {type: play, prompts: [welcome]}\n")  # no `next`
        proc.send_signal(signal.SIGHUP)
        state = until(lambda s: not s["valid"])
        assert state["version"] == second
        assert any("main.yaml" in e["file"] and e["line"] for e in state["errors"]), state["errors"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out

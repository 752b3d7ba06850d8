"""`make run` / `python main.py demo`: the service with the simulated Asterisk and a stream of sample calls.

Rules for this file:
- The service runs exactly as `serve` builds it (`ivr.service.Service`); only its Asterisk is simulated: FastAGI
  calls come from `ivr.sim`, AMI goes to the simulator's AMI server. Nothing here changes how calls are handled.
- Everything binds to 127.0.0.1; the HTTP API keeps its configured port (8080 by default, `--http-port 0` for any).
- Files the demo writes (SQLite, recordings) go under var/demo/, never into config/ or recordings/prompts/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.service import Service, apply_log_level
from ivr.settings import Settings, load_settings
from ivr.yamlsource import ConfigError

DEMO_SECRET = "demo-secret"
DEFAULT_RATE = 12.0  # calls per minute
DEFAULT_AGENTS = 6
CRM_PORT = 8089  # where the sample flow's billing lookup goes (config/flows/main.yaml, crm_lookup)


def business_day_clock(zone: str, at: datetime | None = None) -> tuple[datetime, Callable[[], datetime]]:
    """The time the demo's flows see: `at`, or the coming Monday 10:00 in `zone`, running forward in real time.

    Without it a demo started at night or on a weekend would only ever show the after-hours branch.
    """
    tz = ZoneInfo(zone)
    if at is None:
        today = datetime.now(tz).replace(hour=10, minute=0, second=0, microsecond=0)
        at = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    started = time.monotonic()
    return at, lambda: at + timedelta(seconds=time.monotonic() - started)


async def start_demo_crm(port: int = CRM_PORT) -> web.AppRunner | None:
    """A stand-in CRM for the sample billing lookup: any account number gets a name and a balance; 9... is a VIP."""

    async def account(request: web.Request) -> web.Response:
        number = request.match_info["account"]
        if not number.isdigit():
            return web.json_response({"error": "unknown account"}, status=404)
        rng = random.Random(number)
        return web.json_response(
            {
                "name": rng.choice(["Ona", "Jonas", "Ann", "Peter"]),
                "balance": {"euros": rng.randint(0, 500)},
                "vip": number.startswith("9"),
            }
        )

    app = web.Application()
    app.router.add_get("/crm/accounts/{account}", account)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError as exc:
        await runner.cleanup()
        print(f"  (demo CRM not started on 127.0.0.1:{port}: {exc}; billing lookups take their error branch)")
        return None
    return runner


def sim_config(
    settings: Settings, flows: dict, demo_dir: Path, *, agents: int = DEFAULT_AGENTS, seed: int = 1
):  # -> ivr.sim.SimConfig
    """A simulated call center for the sample flows: every queue the flows use, staffed; every extension they dial."""
    from ivr.flow.model import TransferNode, all_nodes, literal_queues
    from ivr.sim import AgentSpec, QueueSpec, SimConfig, SoundCatalog
    from ivr.sim.testing import prompt_texts

    queues = literal_queues(flows.values())
    # The operator and direct-dial extensions the flows name literally.
    extensions = {
        node.extension
        for flow in flows.values()
        for node in all_nodes(flow)
        if isinstance(node, TransferNode) and node.extension and "$" not in node.extension
    }
    n_agents = max(agents, 1)
    staff = {f"agent{i}": AgentSpec(f"agent{i}", answer_after=3.0 + i, talk=25.0 + 7 * i) for i in range(n_agents)}
    for ext in extensions:  # the operator and direct-dial extensions: answer after a few rings
        staff[ext] = AgentSpec(ext, answer_after=6.0, talk=40.0)
    queue_specs = {
        q: QueueSpec(q, members=[f"Local/agent{i}@agents" for i in range(n_agents) if i % 2 == k % 2 or n_agents == 1])
        for k, q in enumerate(sorted(queues))
    }
    sounds = SoundCatalog(prompts_dir=settings.prompts_dir, texts=prompt_texts(flows.values()))
    recordings = demo_dir / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    return SimConfig(
        agents=staff,
        queues=queue_specs,
        sounds=sounds,
        ami_users={settings.ami.username: DEMO_SECRET},
        monitor_dir=recordings,
        record_dir=recordings,
        seed=seed,
        path_map={str(settings.recordings_dir): str(recordings)},
    )


def traffic_plan(flows: dict):  # -> ivr.sim.traffic.TrafficPlan
    """Callers of the sample main flow: choose English at the language prompt, then use the main menu (the third
    prompt after it: recording notice, welcome, menu): 1 sales, 2 support, 3 billing, 4 complaints, 0 operator,
    5 callback."""
    from ivr.sim import NextPrompt, Press
    from ivr.sim.traffic import TrafficPlan

    main = "main" if "main" in flows else sorted(flows)[0]
    return TrafficPlan(
        flows=(main,),
        options="12345",
        agent_key="1",
        voicemail_key="0",
        languages=("en",),
        preamble=(NextPrompt(1.0), Press("1")),
        menu_prompt=3,
        abandon_after=(10.0, 60.0),
    )


async def run_demo(
    settings: Settings,
    *,
    duration: float | None,
    rate: float,
    quiet: bool,
    agents: int = DEFAULT_AGENTS,
    seed: int = 1,
    at: datetime | None = None,
) -> int:
    from ivr.sim import RealClock, SimulatedAsterisk
    from ivr.sim.traffic import TrafficGenerator

    demo_dir = settings.root / "var" / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    settings.fastagi.host, settings.fastagi.port = "127.0.0.1", 0
    settings.recordings_dir = demo_dir / "recordings"
    settings.storage.url = f"sqlite:///{demo_dir / 'ivr.db'}"

    # The simulated Asterisk first (its AMI port goes into the service's settings), calls pointed at the service later.
    from ivr.flow.loader import load_flows

    flows = load_flows(settings.flows_dir, prompts_dir=settings.prompts_dir)
    sim = SimulatedAsterisk(
        sim_config(settings, dict(flows.flows), demo_dir, agents=agents, seed=seed), clock=RealClock()
    )
    await sim.start(ami=True)
    settings.ami.enabled = True
    settings.ami.host, settings.ami.port = "127.0.0.1", sim.ami_port
    from pydantic import SecretStr

    settings.ami.secret = SecretStr(DEMO_SECRET)
    main = flows.flows.get("main") or next(iter(flows.flows.values()))
    flow_time, flow_clock = business_day_clock(main.timezone, at)
    service = Service.from_settings(settings, clock=flow_clock)
    crm = await start_demo_crm()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    traffic = None
    try:
        await service.start()
        sim.fastagi = ("127.0.0.1", service.fastagi.port)
        print("ivr demo: the service with a simulated Asterisk 22 and a stream of sample calls", flush=True)
        for line in service.describe():
            print("  " + line, flush=True)
        print(
            f"  Flow clock: {flow_time:%a %Y-%m-%d %H:%M %Z} (business hours and holidays follow it; --at to change)",
            flush=True,
        )
        print(
            f"  Simulated Asterisk: AMI 127.0.0.1:{sim.ami_port}, {len(sim.config.queues)} queues "
            f"({', '.join(sorted(sim.config.queues))}), {rate * 60:.0f} calls/min",
            flush=True,
        )
        print(
            f"  Try: curl -s http://{settings.http.host}:{service.http_port}/calls | python3 -m json.tool",
            flush=True,
        )
        print("Ctrl-C stops the demo." if duration is None else f"Running for {duration:.0f} s.", flush=True)
        traffic = TrafficGenerator(sim, rate=rate, plan=traffic_plan(dict(flows.flows)), seed=seed)
        runner = asyncio.create_task(traffic.run(duration=duration))
        reporter = None if quiet else asyncio.create_task(traffic.report(every=5.0))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        traffic.stop()
        for task in (runner, reporter, stopper):
            if task is not None:
                task.cancel()
        print("stopping: hanging up the simulated calls", flush=True)
    finally:
        await service.ami.close()  # before the simulated Asterisk goes away, so the client does not reconnect
        await sim.stop()  # hangs every simulated call up, as a caller would
        if traffic is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(traffic.drain(), 10)
            print("demo summary: " + traffic.summary.line(traffic.active), flush=True)
        await service.stop()
        if crm is not None:
            await crm.cleanup()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="settings file (default: config/ivr.yaml)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="CALLS_PER_MIN",
        help=f"new calls per minute (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--agents", type=int, default=DEFAULT_AGENTS, help=f"simulated agents (default {DEFAULT_AGENTS})"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the call mix")
    parser.add_argument("--http-port", type=int, metavar="PORT", help="HTTP API port (0 = any free port)")
    parser.add_argument(
        "--at",
        type=datetime.fromisoformat,
        metavar="YYYY-MM-DDTHH:MM",
        help="the time the flows see at start (default: the coming Monday 10:00 in the flow's zone)",
    )
    parser.add_argument("--quiet", action="store_true", help="no live summary lines")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, flush=True)
        return 2
    apply_log_level(settings, verbose=args.verbose)
    if args.http_port is not None:
        settings.http.port = args.http_port
    settings.http.host = "127.0.0.1"
    rate = args.rate / 60.0
    if rate <= 0:
        print("ivr demo: --rate must be more than 0 calls per minute", flush=True)
        return 2
    try:
        return asyncio.run(
            run_demo(
                settings,
                duration=args.duration,
                rate=rate,
                quiet=args.quiet,
                agents=args.agents,
                seed=args.seed,
                at=args.at,
            )
        )
    except ConfigError as exc:
        print(exc, flush=True)
        return 2
    except OSError as exc:  # e.g. the HTTP port is taken
        print(f"ivr demo: cannot start: {exc} (try --http-port 0)", flush=True)
        return 2

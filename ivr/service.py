"""The service: wires settings, flows, FastAGI, AMI, call control and the HTTP API together (`ivr serve`).

Rules for this file:
- Only construction and lifecycle live here; every part does its own job in its own module.
- The service keeps no call state that Asterisk does not also hold: the live registry is rebuilt from AMI after a
  reconnect, durable data goes through `ivr.storage`. So several instances can serve several Asterisk servers.
- It never imports the simulator; `ivr.demo` starts one beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web

from ivr import metrics
from ivr.agi.fastagi import FastAGIServer
from ivr.ami.client import AMIClient
from ivr.ami.errors import AMIConnectionLost
from ivr.api.app import create_app
from ivr.api.auth import check_bind
from ivr.api.deps import Check
from ivr.api.server import ApiRunner
from ivr.calls.callbacks import CallbackPolicy
from ivr.calls.callbacks import queue_label as callback_queue_label
from ivr.calls.settings import CallControlSettings
from ivr.calls.wiring import CallControl
from ivr.flow.loader import FlowSet
from ivr.flow.lookup import HttpLookupClient
from ivr.flow.model import Flow
from ivr.flow.repository import FlowRepository
from ivr.flow.routing import service_router
from ivr.queue_stats import QueueStats, QueueStatsFeed, ServiceLevelPolicy
from ivr.repeat_callers import RepeatCallers
from ivr.settings import Settings, load_settings
from ivr.storage import StorageError, open_storage
from ivr.writedirs import prepare as prepare_write_dirs
from ivr.writedirs import write_dirs
from ivr.yamlsource import ConfigError

log = logging.getLogger("ivr.service")
# AMI events are read at most every 5 ms, so that under load a read brings several (docs/ami.md, CPU per call);
# action answers are read at once.
AMI_READ_PAUSE = 0.005


def _init_flow_series(flows: FlowSet) -> None:
    for name in flows:
        metrics.init_flow_series(name)


def draw_flow(flow: Flow, fmt: str) -> str | bytes:
    """The API's flow drawer: `ivr.flowgraph.render.render`, imported on the first drawing (Graphviz is optional)."""
    from ivr.flowgraph.render import Format, render

    return render(flow, cast(Format, fmt))  # render refuses an unknown format with a ValueError (422)


def build_api(
    calls: CallControl,
    *,
    token: str | None,
    flows: FlowRepository | None = None,
    readiness: dict[str, Check] | None = None,
) -> web.Application:
    """The HTTP API over call control (the caller checks the bind address first: `ivr.api.auth.check_bind`)."""
    return create_app(
        operations=calls.operations,
        registry=calls.registry,
        storage=calls.operations.storage,
        token=token,
        settings=calls.settings,
        flows=flows,
        scheduler=calls.scheduler,
        readiness=readiness,
        draw_flow=draw_flow,
    )


class AMIDisabled:
    """Stands in for the AMI client when `ami.enabled: false`: every action fails as 'Asterisk unreachable' (503)."""

    logged_in = False

    async def action(self, name: str, headers: Any = None, **_: Any) -> Any:
        raise AMIConnectionLost("AMI is disabled in the settings (ami.enabled: false)")

    async def list_action(self, name: str, headers: Any = None, **_: Any) -> Any:
        raise AMIConnectionLost("AMI is disabled in the settings (ami.enabled: false)")

    def subscribe(self, handler: Any, events: Any = None, **_: Any) -> None:
        return None

    def on_connected(self, callback: Any) -> None:
        return None


def build_repeat_callers(
    settings: Settings,
    storage: Any,
    repository: FlowRepository,
    known_queues: frozenset[str],
    clock: Callable[[], datetime] | None = None,
) -> RepeatCallers | None:
    """Repeat-caller counting (first-contact resolution proxy), when enabled and a hash key is configured."""
    rc = settings.repeat_callers
    key = rc.key.get_secret_value() if rc.key else ""
    if not rc.enabled or not key:
        if rc.enabled:
            log.info("repeat callers not counted: no caller hash key (IVR_CALLER_HASH_KEY or repeat_callers.key_file)")
        return None

    def queue_label(queue: str) -> str:
        return "none" if not queue else callback_queue_label(queue, known_queues, repository)

    def flow_label(flow: str) -> str:
        return flow if flow in repository.current else "other"

    return RepeatCallers(
        storage,
        key.encode("utf-8"),
        dict(rc.windows),
        rc.retention,
        queue_label=queue_label,
        flow_label=flow_label,
        min_digits=rc.min_digits,
        clock=clock or (lambda: datetime.now(UTC)),
    )


def _reports(*sinks: Any) -> Callable[[Any], None]:
    """One FastAGI `on_report` sink feeding several (those that are None are skipped)."""
    targets = [getattr(sink, "on_report", sink) for sink in sinks if sink is not None]

    def on_report(report: Any) -> None:
        for target in targets:
            try:
                target(report)
            except Exception:  # one sink failing must not keep the report from the others
                log.exception("call report sink %r failed", target)

    return on_report


def fastagi_listening(server: FastAGIServer) -> bool:
    return server._server is not None and server._server.is_serving()


@dataclass
class Service:
    """Everything `ivr serve` runs. Build with `Service.from_settings(settings)`, then `await start()`/`stop()`."""

    settings: Settings
    repository: FlowRepository
    storage: Any
    fastagi: FastAGIServer
    ami: Any
    calls: CallControl
    queue_feed: QueueStatsFeed | None
    app: web.Application
    lookup_client: HttpLookupClient
    repeat_callers: RepeatCallers | None = None
    _runner: web.AppRunner | None = None
    _site_port: int | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Service:
        """`clock`: the time flows see for business hours (default: now)."""
        token = settings.http.token.get_secret_value() if settings.http.token else None
        check_bind(settings.http.host, token)  # refuse a non-loopback API without a token before binding anything
        repository = FlowRepository.from_settings(settings)
        repository.load()  # raises ConfigError: the service does not start without valid flows
        # Every flow's call/outcome series exist from the start (at 0), so rates and ratios are right from call one.
        for name in repository.current:
            metrics.init_flow_series(name)
        repository.on_swap(_init_flow_series)
        # Asterisk creates no directory for RECORD FILE: voicemail would fail on a fresh install (WriteDirError:
        # one line, exit status 2).
        for created in prepare_write_dirs(write_dirs(settings)):
            log.info("created %s (Asterisk writes recordings/voicemail there; its user needs write access)", created)
        storage = open_storage(settings.storage.url, **settings.storage.open_options())
        lookup_client = HttpLookupClient.from_settings(settings.lookups)
        if settings.ami.enabled:
            a = settings.ami
            ami: Any = AMIClient(
                a.host,
                a.port,
                a.username,
                a.secret.get_secret_value() if a.secret else "",
                connect_timeout=a.connect_timeout,
                action_timeout=a.action_timeout,
                ping_interval=a.ping_interval,
                ping_timeout=a.ping_timeout,
                backoff_min=a.backoff_min,
                backoff_max=a.backoff_max,
                login_failure_backoff=a.login_failure_backoff,
                auth=a.auth,
                event_filter=True,  # only the events the registry, queue stats and originates use (docs/ami.md)
                read_pause=AMI_READ_PAUSE,
            )
        else:
            ami = AMIDisabled()
        control = CallControlSettings.from_settings(settings)
        repeat_callers = build_repeat_callers(settings, storage, repository, control.known_queues, clock)
        calls = CallControl.build(
            ami,
            storage,
            control,
            callbacks=CallbackPolicy.from_settings(settings.callbacks),
            run_callbacks=settings.callbacks.enabled and settings.ami.enabled,
            flows=repository,
            instance=getattr(settings, "instance", None),  # the `instance` setting, where it exists
        )
        router = service_router(
            settings,
            storage=storage,
            lookup_client=lookup_client,
            repository=repository,
            clock=clock,
            on_node=calls.registry.note_flow,  # live calls show their flow and node
            on_report=_reports(calls.on_flow_report, repeat_callers),
        )  # a callback completes or retries by its outcome; repeat callers are counted
        fa = settings.fastagi
        fastagi = FastAGIServer(
            router,
            fa.host,
            fa.port,
            max_connections=fa.max_connections,
            header_timeout=fa.header_timeout,
            command_timeout=fa.command_timeout or None,
            shutdown_deadline=fa.shutdown_deadline,
            allowed_peers=fa.allowed_peers,
            exec_timeout=fa.exec_timeout or None,
        )
        queue_feed = None
        if settings.ami.enabled:
            policy = ServiceLevelPolicy(settings.queues.service_level, dict(settings.queues.overrides))
            queue_feed = QueueStatsFeed(ami, QueueStats(policy))
        app = build_api(
            calls,
            token=token,
            flows=repository,
            readiness={
                "ami": lambda: bool(getattr(ami, "logged_in", False)) or not settings.ami.enabled,
                "fastagi": lambda: fastagi_listening(fastagi),
            },
        )
        return cls(
            settings=settings,
            repository=repository,
            storage=storage,
            fastagi=fastagi,
            ami=ami,
            calls=calls,
            queue_feed=queue_feed,
            app=app,
            lookup_client=lookup_client,
            repeat_callers=repeat_callers,
        )

    @property
    def http_port(self) -> int:
        return self._site_port or self.settings.http.port

    async def start(self) -> None:
        try:
            await self.storage.open()  # PostgreSQL: connect and migrate before anything is served
        except StorageError as exc:
            raise StartError(
                f"storage.url: {exc}; check storage.url, the password and that the database is up"
            ) from exc
        await self.fastagi.start()
        await self.calls.start()  # subscribes before the first login, so the first resync sees everything
        if self.queue_feed is not None:
            await self.queue_feed.start()
        if self.settings.ami.enabled:
            await self.ami.start()
        self._runner = ApiRunner(self.app, access_log=None)  # malformed HTTP gets the JSON error
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self._site_port = sockets[0].getsockname()[1] if sockets else self.settings.http.port
        if self.settings.reload.watch:
            self._tasks.append(asyncio.create_task(self.repository.watch(self.settings.reload.interval)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.fastagi.stop()  # stop accepting; running calls finish until the deadline
        await self.calls.stop(grace=self.settings.fastagi.shutdown_deadline)  # ringing callbacks store their result
        if self.queue_feed is not None:
            await self.queue_feed.close()
        if self.settings.ami.enabled:
            await self.ami.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.lookup_client.close()
        if self.repeat_callers is not None:
            await self.repeat_callers.drain()  # the last calls' records, before the database closes
        await self.storage.close()

    def describe(self) -> list[str]:
        """What the service serves, for the start-up banner."""
        s = self.settings
        http = f"http://{s.http.host}:{self.http_port}"
        flows = ", ".join(sorted(self.repository.current)) or "(none)"
        return [
            f"FastAGI   agi://{s.fastagi.host}:{self.fastagi.port}/<flow>   flows: {flows}",
            f"HTTP API  {http}/calls  (OpenAPI: {http}/openapi.json)",
            f"Console   {http}/console  (supervisor console; sign in with the API token)",
            f"Metrics   {http}/metrics",
            f"Health    {http}/healthz  {http}/readyz",
            f"AMI       {s.ami.host}:{s.ami.port} as {s.ami.username!r}" if s.ami.enabled else "AMI       disabled",
            f"Storage   {s.storage.url}",
            f"Flows     version {self.repository.version}  (reload: kill -HUP {os.getpid()} or "
            f"POST {http}/flows/reload)",
        ]


class StartError(Exception):
    """The service cannot start; the message names the setting to fix (printed as one line, exit status 2)."""


def apply_log_level(settings: Settings, *, verbose: bool = False) -> None:
    """`log_level` from the settings (IVR_LOG_LEVEL), unless `-v` asked for debug."""
    if not verbose:
        logging.getLogger().setLevel(settings.log_level.upper())


async def run_until_signalled(service: Service) -> None:
    """Start, serve until SIGINT/SIGTERM, reload flows on SIGHUP, then stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The reload reads and validates files: off the event loop, so calls in progress never wait for it.
    reloads: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:
        task = loop.create_task(service.repository.reload_async("sighup"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        await service.start()
    except StartError:
        await service.lookup_client.close()  # nothing else was started yet
        await service.storage.close()
        raise
    for line in service.describe():
        print(line, flush=True)
    try:
        await stop.wait()
    finally:
        print(
            "stopping: no new calls; running calls may finish "
            f"(up to {service.settings.fastagi.shutdown_deadline:.0f} s)",
            flush=True,
        )
        await service.stop()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="settings file (default: config/ivr.yaml or $IVR_CONFIG)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        apply_log_level(settings, verbose=args.verbose)
        service = Service.from_settings(settings)
    except ConfigError as exc:
        print(exc, flush=True)
        return 2
    except Exception as exc:  # e.g. InsecureBind: say what to do, no traceback
        print(f"ivr: cannot start: {exc}", flush=True)
        return 2
    try:
        asyncio.run(run_until_signalled(service))
    except StartError as exc:
        print(f"ivr: cannot start: {exc}", flush=True)
        return 2
    return 0

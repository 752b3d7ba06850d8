"""One object that builds and runs call control: registry + AMI sync + operations + callback scheduler.

Rules for this file:
- One `RegistrySync` + `CallRegistry` + `CallOperations` per Asterisk server (`build_many`); with several servers
  the API sees them through `ivr.calls.fleet` (qualified call ids, actions routed to the call's server).
- Construction does no I/O and needs no running loop; `start()` subscribes to the AMI client, resynchronises
  and starts the scheduler; `stop()` undoes it. The service owns the AMI client and the storage and closes them.
- Call control knows nothing of HTTP: the service builds the API over these objects (`ivr.service.build_api`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.calls.amiport import CallControlAMI
from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler, FlowVersions
from ivr.calls.fleet import SEPARATOR, FleetOperations, FleetRegistry, PBXCalls
from ivr.calls.operations import CallOperations
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.calls.sync import RegistrySync
from ivr.flow.report import CallReport
from ivr.storage import Storage


@dataclass
class CallControl:
    registry: CallRegistry | FleetRegistry  # FleetRegistry with several Asterisk servers
    sync: RegistrySync  # the first server's (tests); `parts` has every server's
    operations: CallOperations | FleetOperations  # FleetOperations with several servers
    scheduler: CallbackScheduler | None
    settings: CallControlSettings
    parts: list[PBXCalls] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        ami: CallControlAMI,
        storage: Storage,
        settings: CallControlSettings | None = None,
        *,
        callbacks: CallbackPolicy | None = None,
        run_callbacks: bool = True,
        flows: FlowVersions | None = None,
        pbx: str = "default",
        instance: str | None = None,
    ) -> CallControl:
        """`flows` (the FlowRepository) lets callback metrics label queues the flows name (others: "other").
        `instance`: this service instance's name (default the host name); the callback scheduler leases
        requests under it."""
        return cls.build_many(
            {pbx: ami},
            storage,
            settings,
            callbacks=callbacks,
            run_callbacks=run_callbacks,
            flows=flows,
            instance=instance,
        )

    @classmethod
    def build_many(
        cls,
        amis: Mapping[str, CallControlAMI],
        storage: Storage,
        settings: CallControlSettings | None = None,
        *,
        callbacks: CallbackPolicy | None = None,
        run_callbacks: bool = True,
        flows: FlowVersions | None = None,
        queue_homes: Mapping[str, str] | None = None,
        instance: str | None = None,
    ) -> CallControl:
        """One AMI client per Asterisk server, by name (in preference order). With one server the registry and
        operations are the plain ones (call ids are bare Linkedids); with several, `ivr.calls.fleet` routes."""
        settings = settings or CallControlSettings()
        parts = []
        for name, ami in amis.items():
            registry = CallRegistry(pbx=name)
            operations = CallOperations(ami, registry, storage, settings)  # registers itself for registry effects
            parts.append(PBXCalls(name, ami, registry, RegistrySync(ami, registry), operations))
        registry_view: CallRegistry | FleetRegistry
        operations_view: CallOperations | FleetOperations
        if len(parts) == 1:
            registry_view = parts[0].registry
            operations_view = parts[0].operations
        else:
            for part in parts:
                part.operations.call_id_prefix = part.name + SEPARATOR
            registry_view = FleetRegistry(parts)
            operations_view = FleetOperations(parts, registry_view, settings, queue_homes=queue_homes)
        scheduler = (
            CallbackScheduler(
                storage,
                operations_view,
                callbacks,
                known_queues=settings.known_queues,
                flows=flows,
                instance=instance,
            )
            if run_callbacks
            else None
        )
        return cls(registry_view, parts[0].sync, operations_view, scheduler, settings, parts)

    async def start(self) -> None:
        for part in self.parts:
            part.sync.start()
        if self.scheduler is not None:
            await self.scheduler.start()

    async def stop(self, grace: float = 0.0) -> None:
        """`grace`: how long callback attempts already ringing may finish (see CallbackScheduler.stop)."""
        if self.scheduler is not None:
            await self.scheduler.stop(grace)
        for part in self.parts:
            await part.sync.stop()

    def on_flow_report(self, report: CallReport) -> None:
        """The FastAGI handler's on_report sink: callback calls tell the scheduler whether they connected."""
        if self.scheduler is not None:
            self.scheduler.on_flow_report(report)

"""One object that builds and runs call control: registry + AMI sync + operations + callback scheduler.

Rules for this file:
- Construction does no I/O and needs no running loop; `start()` subscribes to the AMI client, resynchronises
  and starts the scheduler; `stop()` undoes it. The service owns the AMI client and the storage and closes them.
- Call control knows nothing of HTTP: the service builds the API over these objects (`ivr.service.build_api`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
from ivr.calls.operations import CallOperations
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.calls.sync import RegistrySync
from ivr.storage import Storage


@dataclass
class CallControl:
    registry: CallRegistry
    sync: RegistrySync
    operations: CallOperations
    scheduler: CallbackScheduler | None
    settings: CallControlSettings

    @classmethod
    def build(
        cls,
        ami: Any,
        storage: Storage,
        settings: CallControlSettings | None = None,
        *,
        callbacks: CallbackPolicy | None = None,
        run_callbacks: bool = True,
        flows: Any = None,
        instance: str | None = None,
    ) -> CallControl:
        """`flows` (the FlowRepository) lets callback metrics label queues the flows name (others: "other").
        `instance`: this service instance's name (default the host name); the callback scheduler leases
        requests under it."""
        settings = settings or CallControlSettings()
        registry = CallRegistry()
        sync = RegistrySync(ami, registry)
        operations = CallOperations(ami, registry, storage, settings)  # registers itself for registry effects
        scheduler = (
            CallbackScheduler(
                storage, operations, callbacks, known_queues=settings.known_queues, flows=flows, instance=instance
            )
            if run_callbacks
            else None
        )
        return cls(registry, sync, operations, scheduler, settings)

    async def start(self) -> None:
        self.sync.start()
        if self.scheduler is not None:
            await self.scheduler.start()

    async def stop(self, grace: float = 0.0) -> None:
        """`grace`: how long callback attempts already ringing may finish (see CallbackScheduler.stop)."""
        if self.scheduler is not None:
            await self.scheduler.stop(grace)
        await self.sync.stop()

    def on_flow_report(self, report: Any) -> None:
        """The FastAGI handler's on_report sink: callback calls tell the scheduler whether they connected."""
        if self.scheduler is not None:
            self.scheduler.on_flow_report(report)

"""The routes of a classic AGI call (agi/ivr_agi.py): the flow engine over the classic AGI cache's setup.

Rules for this file:
- Everything before the first AGI command is start-up the caller waits through (a process per call), so this
  builds only what the call runs: the compiled flows and settings from the cache (`ivr.flow.cache.load_classic`),
  the engine with the service's engine settings, lookups and storage, and the service's routes
  (`fixed_flow_router`: the same `run_flow`, `IVR_STATUS`/`IVR_OUTCOME`, `?node=` as FastAGI).
- The storage is opened on first use (`LazyStorage`): most calls store nothing, and importing and opening it
  costs ~5-7 ms. A storage URL that cannot be opened then fails like an unreachable database at the node that
  stores (its `on_failure`, counted), instead of before the flow starts; `ivr check` reports a bad URL either way.
- A PostgreSQL password is never cached, nor read before the storage opens: the cache says where it is (file,
  variables: `PasswordSource`) and `LazyStorage` reads it then, so a call that stores nothing never touches it
  and no call loads the settings (pydantic, YAML) for it.
- The call runs without an event loop (ivr/agi/classic.py): the storage and the lookup client, which need one, are
  reached through a `LoopBridge` (`ivr.syncrun.BRIDGE` by default; its loop and asyncio come with the first use).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ivr.agi.router import Router
from ivr.flow.cache import ClassicSetup, PasswordSource, load_classic
from ivr.flow.engine import FlowEngine
from ivr.flow.routing import fixed_flow_router
from ivr.syncrun import BRIDGE, LoopBridge

if TYPE_CHECKING:
    from ivr.flow.lookup import HttpLookupClient, LookupRequest

log = logging.getLogger(__name__)


class LazyStorage:
    """`ivr.storage.open_storage(url, password=..., **options)`, called when a node first uses the storage (the
    password read from `password` in `environ` then)."""

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any],
        password: PasswordSource | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.options = dict(options)
        self.password = password
        self.environ = os.environ if environ is None else environ
        self._storage: Any = None

    def _open(self) -> Any:
        if self._storage is None:
            from ivr.storage import StorageError, open_storage

            options = dict(self.options)
            if self.password is not None:
                try:
                    options["password"] = self.password.read(self.environ)
                except OSError as exc:  # as a database that is down: the storing node's on_failure
                    raise StorageError(f"cannot read the storage password file {self.password.file}: {exc}") from None
            self._storage = open_storage(self.url, **options)
        return self._storage

    @property
    def opened(self) -> bool:
        return self._storage is not None

    async def close(self) -> None:
        """Close the storage if a node opened it (nothing to do otherwise)."""
        if self._storage is not None:
            storage, self._storage = self._storage, None
            await storage.close()

    def __getattr__(self, name: str) -> Any:  # only for names this class does not have: the storage's API
        return getattr(self._open(), name)


class LazyLookups:
    """`HttpLookupClient.from_settings(lookups)`, built (with `ivr.flow.lookup`) when a lookup node first asks."""

    def __init__(self, lookups: Mapping[str, Any]) -> None:
        self.lookups = dict(lookups)
        self._client: HttpLookupClient | None = None

    async def fetch(self, request: LookupRequest) -> Any:
        if self._client is None:
            from ivr.flow.lookup import HttpLookupClient

            self._client = HttpLookupClient.from_settings(SimpleNamespace(**self.lookups))
        return await self._client.fetch(request)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def classic_engine(
    setup: ClassicSetup, env: Mapping[str, str] | None = None, *, bridge: LoopBridge = BRIDGE
) -> FlowEngine:
    """The engine a classic call runs: the cached flows and engine settings, the service's lookups and storage
    (both behind `bridge`, whose `close()` closes them)."""
    storage = LazyStorage(setup.storage_url, setup.storage_options, setup.storage_password, env)
    return FlowEngine(
        setup.flows,
        settings=setup.engine,
        storage=bridge.wrap(storage),
        lookup_client=bridge.wrap(LazyLookups(setup.lookups)),
    )


def classic_router(
    env: Mapping[str, str] | None = None, *, cache_dir: Path | None = None, bridge: LoopBridge = BRIDGE
) -> Router:
    """The router of a classic AGI call (invalid settings or flows raise ConfigError, as `serve` refuses them)."""
    env = os.environ if env is None else env
    setup, how = load_classic(env, cache_dir=cache_dir)
    log.info("classic AGI cache: %s", how)
    return fixed_flow_router(classic_engine(setup, env, bridge=bridge))

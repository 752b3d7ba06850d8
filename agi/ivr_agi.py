#!/usr/bin/env python3
"""Classic AGI entry point: `exten => s,n,AGI(/path/to/ivr/agi/ivr_agi.py,<flow>)`.

Rules for this file:
- Runnable straight from a checkout: the repository root is put on sys.path. Asterisk runs the file itself, so
  its dependencies must be importable by the interpreter in the shebang: point the shebang at the project
  venv (`#!/path/to/ivr/.venv/bin/python`) or install the package into the system Python.
- The router is built lazily, after Asterisk's environment has been read: the flow engine over the compiled flows
  and the settings of the classic AGI cache (`ivr.flow.cache.load_classic`: keyed by the content of the flows, the
  settings file, the `IVR_*` environment and the code; `IVR_AGI_CACHE_DIR`, default ~/.cache/ivr of the user
  Asterisk runs as), with the service's storage and lookups. A hit imports no pydantic and no YAML; a miss loads
  and checks the settings and flows as `serve` does, then writes the cache. The flow is the first AGI argument.
- IVR_AGI_ROUTER="package.module:factory" replaces the router factory (tests, embedding); the factory takes no
  arguments and returns an `ivr.agi.Router`. It is read from the environment Asterisk was started with, which is
  under the administrator's control.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def build_router():  # -> ivr.agi.Router (annotation omitted to keep start-up imports minimal)
    spec = os.environ.get("IVR_AGI_ROUTER")
    if spec:
        module_name, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module_name), attr or "build_router")()
    # A process per call: compiled flows and settings from a cache keyed by their content (ivr/flow/cache.py),
    # so a call imports neither pydantic nor YAML; the routes are the service's (`service_router`'s) parts.
    from ivr.flow.cache import load_classic
    from ivr.flow.engine import FlowEngine
    from ivr.flow.lookup import HttpLookupClient
    from ivr.flow.routing import fixed_flow_router
    from ivr.storage import open_storage

    setup, how = load_classic()
    logging.getLogger("ivr.flow.cache").info("classic AGI cache: %s", how)
    options = dict(setup.storage_options)
    if setup.storage_password:  # PostgreSQL: the password is never cached
        from ivr.settings import load_settings

        options["password"] = load_settings().storage.open_options().get("password")
    engine = FlowEngine(
        setup.flows,
        settings=setup.engine,
        storage=open_storage(setup.storage_url, **options),
        lookup_client=HttpLookupClient.from_settings(SimpleNamespace(**setup.lookups)),
    )
    return fixed_flow_router(engine)


if __name__ == "__main__":
    from ivr.agi.classic import main

    sys.exit(main(build_router))

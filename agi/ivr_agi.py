#!/usr/bin/env python3
"""Classic AGI entry point: `exten => s,n,AGI(/path/to/ivr/agi/ivr_agi.py,<flow>)`.

Rules for this file:
- Runnable straight from a checkout: the repository root is put on sys.path. Asterisk runs the file itself, so
  its dependencies must be importable by the interpreter in the shebang: point the shebang at the project
  venv (`#!/path/to/ivr/.venv/bin/python`) or install the package into the system Python.
- The router is built lazily, after Asterisk's environment has been read: `ivr.flow.classic.classic_router`, the
  flow engine over the compiled flows and settings of the classic AGI cache (`ivr.flow.cache`: keyed by the
  flows, the settings file, the `IVR_*` environment and the ivr modules that built it; `IVR_AGI_CACHE_DIR`, default
  ~/.cache/ivr of the user Asterisk runs as). A hit imports no pydantic and no YAML; a miss loads and checks the
  settings and flows as `serve` does, then writes the cache. The flow is the first AGI argument.
- The call runs without an event loop (ivr/agi/classic.py, decision D2): nothing here or in the router may
  import asyncio before the first command.
- IVR_AGI_ROUTER="package.module:factory" replaces the router factory (tests, embedding); the factory takes no
  arguments and returns an `ivr.agi.Router`. It is read from the environment Asterisk was started with, which is
  under the administrator's control.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def build_router():  # -> ivr.agi.Router (annotation omitted to keep start-up imports minimal)
    spec = os.environ.get("IVR_AGI_ROUTER")
    if spec:
        module_name, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module_name), attr or "build_router")()
    # A process per call: compiled flows and settings from a cache keyed by their content (ivr/flow/cache.py).
    from ivr.flow.classic import classic_router

    return classic_router()


if __name__ == "__main__":
    from ivr.agi.classic import main

    sys.exit(main(build_router))

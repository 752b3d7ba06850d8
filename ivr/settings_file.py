"""Where the settings file is: `IVR_CONFIG`, else config/ivr.yaml in the working directory, else beside the package.

Kept apart from `ivr.settings` (pydantic models) so that classic AGI can find the file, and key its cache on it,
without importing them (ivr/flow/cache.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "IVR_CONFIG"  # settings file path when none is given on the command line
DEFAULT_FILE = Path("config") / "ivr.yaml"


def default_settings_path(env: Mapping[str, str] | None = None) -> Path | None:
    """IVR_CONFIG, else config/ivr.yaml in the working directory, else beside this package (a source checkout)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    for candidate in (Path.cwd() / DEFAULT_FILE, Path(__file__).resolve().parent.parent / DEFAULT_FILE):
        if candidate.is_file():
            return candidate
    return None

"""What `serve` checks before it binds anything, and the one-line refusal it prints (exit status 2).

Rules for this file:
- Each refusal names the setting to change (and its environment variable) and what to do; no traceback.
- Only what this process itself writes is checked here: the SQLite database's directory (`storage.url`) and
  `recordings_dir` (serve creates the directories it asks Asterisk to record into there). Ports are checked by
  binding them (`Service.start`): a test bind here could race with another process.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ivr.settings import Settings


class StartError(Exception):
    """The service cannot start; the message names the setting to fix (printed as one line, exit status 2)."""


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def writable_problem(path: Path) -> str | None:
    """Why this process cannot write into directory `path` (creating it if missing), or None."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "is not writable" if existing == path else f"cannot be created ({existing} is not writable)"
        return f"{path} {verb} by this user (uid {os.getuid()})"
    return None


def sqlite_directory(url: str) -> Path | None:
    if url.startswith("sqlite:///") and url not in ("sqlite:///:memory:",):
        return Path(url[len("sqlite:///") :]).parent
    return None


def check_directories(settings: Settings) -> None:
    """Raise `StartError` for the first directory this process needs but cannot write."""
    needed: list[tuple[Path, str, str]] = []
    database = sqlite_directory(settings.storage.url)
    if database is not None:
        needed.append((database, "storage.url", "IVR_STORAGE_URL"))
    if not settings.calls.asterisk_recordings_dir:  # Asterisk on this host records into recordings_dir
        needed.append((settings.recordings_dir, "recordings_dir", "IVR_RECORDINGS_DIR"))
    for path, setting, variable in needed:
        problem = writable_problem(path)
        if problem is not None:
            raise StartError(
                f"{setting}: {problem}; give the service's user write access (systemd: ReadWritePaths=) or point "
                f"{setting} ({variable}) elsewhere"
            )


def port_refusal(exc: OSError, setting: str, variable: str, host: str, port: int) -> StartError:
    """The refusal for a listening socket that could not be bound."""
    if exc.errno == errno.EADDRINUSE:
        why = "is in use by another process"
        todo = f"stop that process or choose another port ({setting}, {variable})"
    elif exc.errno == errno.EACCES:
        why = "may not be bound by this user (ports below 1024 need a privilege)"
        todo = f"choose a port above 1023 ({setting}, {variable})"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "is not an address of this host"
        todo = f"listen on one of this host's addresses ({setting.replace('port', 'host')})"
    else:
        why = f"cannot be bound ({exc.strerror or exc})"
        todo = f"check {setting} ({variable})"
    return StartError(f"{setting}: {host}:{port} {why}; {todo}")

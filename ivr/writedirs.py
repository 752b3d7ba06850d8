"""The directories the service asks Asterisk to write into: which they are, creating them, checking them.

Rules for this file:
- Asterisk creates no directory for RECORD FILE: into a missing one it answers `200 result=-1 (writefile)` at once
  and the caller goes down the error path (tests/data/asterisk/README.md). MixMonitor creates its own, but the
  service names that directory too. So the list is: `<recordings>` (call recordings of flows and of the API:
  MixMonitor) and `<recordings>/voicemail` (voicemail nodes: RECORD FILE), as Asterisk sees them.
- Only directories on this host are prepared: with `calls.asterisk_recordings_dir` unset, Asterisk writes into
  `recordings_dir` as this host sees it. Set, Asterisk runs elsewhere (another host, a container) and its
  directories are prepared there (docs/configuration.md).
- One function prepares them for everything that runs flows: `serve` (and the demo through it), `simulate` and
  `test-flows` (for their scratch directory). The admin tools thus never prepare a directory `serve` would not.
  `check` inspects the same list.
- A directory created here takes its parent's group permissions and setgid bit (a group-writable spool shared
  with Asterisk's group stays so), never more than that. Asterisk's user needs write access; this process cannot
  know that user, so it checks only what it can write itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ivr.flow.context import EngineSettings
from ivr.flow.engine import FlowEngine

_PURPOSE = {
    "recordings": "call recordings (MixMonitor)",
    "voicemail": "voicemail messages (RECORD FILE; Asterisk creates no directory for it)",
}


@dataclass(frozen=True)
class WriteDir:
    """A directory Asterisk is asked to write into, as this host sees it."""

    path: Path
    kind: Literal["recordings", "voicemail"]
    setting: str  # the setting that names it

    @property
    def purpose(self) -> str:
        """What Asterisk writes there, for messages."""
        return _PURPOSE[self.kind]


class WriteDirError(Exception):
    """A directory could not be created; the message names it, the setting and what to do."""


@dataclass(frozen=True)
class DirProblem:
    directory: WriteDir
    severity: Literal["error", "warning"]  # error: recordings/voicemail will fail; warning: serve creates it
    message: str
    hint: str


def engine_write_dirs(settings: EngineSettings, setting: str = "recordings_dir") -> list[WriteDir]:
    """The directories flows run with `settings` make Asterisk write into (paths as Asterisk sees them)."""
    return [
        WriteDir(Path(settings.recordings_dir), "recordings", setting),
        WriteDir(Path(settings.voicemail_dir), "voicemail", setting),
    ]


def write_dirs(settings: Any) -> list[WriteDir]:
    """The directories the service run with `settings` (`ivr.settings.Settings`) makes Asterisk write into on this
    host; none when Asterisk writes elsewhere (`calls.asterisk_recordings_dir`)."""
    calls = getattr(settings, "calls", None)
    if calls is not None and calls.asterisk_recordings_dir:
        return []
    return engine_write_dirs(FlowEngine.settings_from(settings))


def _creatable_from(path: Path) -> Path:
    """The nearest ancestor of `path` that exists (`path` itself if it does)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def prepare(dirs: Iterable[WriteDir]) -> list[Path]:
    """Create every missing directory (with its parents); returns those created, parents first.
    Raises `WriteDirError` when one cannot be created."""
    created: list[Path] = []
    for d in dirs:
        missing = []
        path = d.path
        while not path.exists() and path != path.parent:
            missing.append(path)
            path = path.parent
        for new in reversed(missing):
            try:
                new.mkdir()
            except FileExistsError:
                if not new.is_dir():
                    raise WriteDirError(_not_a_directory(d, new)) from None
                continue
            except OSError as exc:
                raise WriteDirError(
                    f"{d.setting}: cannot create {new} for {d.purpose}: {exc.strerror or exc}; create it, "
                    "writable by Asterisk's user, or point the setting elsewhere"
                ) from None
            _inherit_group_access(new)
            created.append(new)
        if not d.path.is_dir():
            raise WriteDirError(_not_a_directory(d, d.path))
    return created


def _not_a_directory(d: WriteDir, path: Path) -> str:
    return f"{d.setting}: {path} is not a directory, so Asterisk cannot write {d.purpose} under it"


def _inherit_group_access(path: Path) -> None:
    """Give `path` its parent's group bits and setgid bit (on top of what the umask left)."""
    try:
        parent = stat.S_IMODE(path.parent.stat().st_mode)
        mode = stat.S_IMODE(path.stat().st_mode)
        extra = parent & (stat.S_ISGID | stat.S_IRWXG)
        if extra & ~mode:
            os.chmod(path, mode | extra)
    except OSError:
        pass  # best effort: the directory exists; `check` reports it if it is not writable


def inspect(dirs: Iterable[WriteDir]) -> list[DirProblem]:
    """What `check` says about each directory: missing (serve creates it: a warning), not creatable, not a
    directory or not writable by this user (errors)."""
    problems: list[DirProblem] = []
    for d in dirs:
        existing = _creatable_from(d.path)
        if not existing.is_dir():
            problems.append(DirProblem(d, "error", _not_a_directory(d, existing), f"point {d.setting} at a directory"))
        elif not os.access(existing, os.W_OK | os.X_OK):
            what = "is not writable" if existing == d.path else f"cannot be created ({existing} is not writable)"
            problems.append(
                DirProblem(
                    d,
                    "error",
                    f"{d.path} {what} by this user (uid {os.getuid()}); Asterisk writes {d.purpose} there",
                    "give the service's and Asterisk's users write access, or point the setting elsewhere",
                )
            )
        elif existing != d.path:
            problems.append(
                DirProblem(
                    d,
                    "warning",
                    f"{d.path} does not exist yet; Asterisk writes {d.purpose} there",
                    "`serve` creates it at start; Asterisk's user needs write access to it",
                )
            )
    return problems

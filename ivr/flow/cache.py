"""A compiled, validated flow-set cache for classic AGI, where every call is a new process.

Rules for this file:
- The cache holds what `load_flows()` produced after every check passed, as plain JSON data (each flow's
  `model_dump`), never pickle: a file that someone else could write must not be able to run code. Reading it
  back re-validates each flow with the model (structure and types), but skips YAML parsing, position tracking,
  calendar parsing and the graph checks, which are what makes `load_flows()` slow.
- The key is a SHA-256 over everything the result depends on: the cache format, the Python version, the sources
  of the flow model/loader/checks, the settings file and the flows and prompts directories, and every file of the
  flows directory (names and bytes). Any change gives another key: a stale cache is never used, it is rebuilt.
- Trust: the cache directory must be owned by the user running the process and writable by no one else, and so
  must the file; otherwise it is ignored (logged) and the flows are loaded the slow way, without writing. A file
  that does not parse, has another key or another format, or does not validate is rebuilt (logged).
- Writes are atomic (a private temporary file renamed over the old one), mode 0600, in a 0700 directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.flow.loader import FlowSet, FlowSource, load_flows
from ivr.yamlsource import PositionMap

log = logging.getLogger(__name__)

FORMAT = 1
CACHE_FILE = "flows.json"
_HERE = Path(__file__).resolve().parent
# The code whose behaviour the cached result depends on (a change of the model or the checks invalidates it).
_CODE = ("model.py", "flowset.py", "loader.py", "validate.py", "cache.py")


def default_cache_dir() -> Path:
    """`IVR_AGI_CACHE_DIR`, else `$XDG_CACHE_HOME/ivr` or `~/.cache/ivr` of the user Asterisk runs scripts as."""
    configured = os.environ.get("IVR_AGI_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivr"


def cache_key(flows_dir: Path, *, prompts_dir: Path | None = None, settings_bytes: bytes = b"") -> str:
    digest = hashlib.sha256()
    digest.update(f"ivr-flow-cache {FORMAT} {sys.version}\0".encode())
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (_HERE / name).read_bytes() + b"\0")
    digest.update(b"settings\0" + settings_bytes + b"\0")
    digest.update(f"{flows_dir.resolve()}\0{prompts_dir.resolve() if prompts_dir else ''}\0".encode())
    for path in sorted(flows_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _trusted(path: Path, *, directory: bool) -> bool:
    """Owned by us and writable by nobody else (a symlink is not followed)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _encode(flow_set: FlowSet, key: str) -> bytes:
    return json.dumps(
        {
            "format": FORMAT,
            "key": key,
            "version": flow_set.version,
            "directory": str(flow_set.directory) if flow_set.directory else None,
            "flows": {name: flow.model_dump(mode="json", by_alias=True) for name, flow in flow_set.flows.items()},
            "sources": {
                name: {"file": str(src.file), "display": src.display, "calendars": [str(c) for c in src.calendars]}
                for name, src in flow_set.sources.items()
            },
            "files": [str(f) for f in flow_set.files],
        },
        separators=(",", ":"),
    ).encode()


def _decode(raw: bytes, key: str) -> FlowSet:
    """The cached set, or ValueError (stale, foreign format, corrupt, invalid)."""
    from ivr.flow.model import Flow

    data: Any = json.loads(raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a flow cache of this format")
    if data.get("key") != key:
        raise ValueError("stale (the flows, the settings or the code changed)")
    flows = {name: Flow.model_validate(body) for name, body in data["flows"].items()}
    if any(flow.name != name for name, flow in flows.items()):
        raise ValueError("flow names do not match their entries")
    sources = {
        name: FlowSource(
            Path(s["file"]), str(s["display"]), PositionMap(str(s["display"])), tuple(Path(c) for c in s["calendars"])
        )
        for name, s in data["sources"].items()
    }
    if set(sources) != set(flows):
        raise ValueError("sources do not match the flows")
    return FlowSet(
        flows=MappingProxyType(flows),
        sources=MappingProxyType(sources),
        version=str(data["version"]),
        loaded_at=datetime.now(UTC),
        directory=Path(data["directory"]) if data.get("directory") else None,
        files=tuple(Path(f) for f in data["files"]),
    )


def _write(directory: Path, raw: bytes) -> None:
    tmp = directory / f".{CACHE_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, directory / CACHE_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cached_flow_set(
    flows_dir: str | Path,
    *,
    prompts_dir: str | Path | None = None,
    settings_bytes: bytes = b"",
    cache_dir: Path | None = None,
) -> tuple[FlowSet, str]:
    """The validated flow set and how it was obtained: "hit", "built" (cache written), "untrusted" or "unwritable"
    (loaded the slow way, nothing written). Invalid flows raise ConfigError as `load_flows()` does."""
    flows_path = Path(flows_dir)
    prompts_path = Path(prompts_dir) if prompts_dir is not None else None
    directory = cache_dir or default_cache_dir()
    key = cache_key(flows_path, prompts_dir=prompts_path, settings_bytes=settings_bytes)
    file = directory / CACHE_FILE
    usable = True
    if directory.exists() or directory.is_symlink():
        if not _trusted(directory, directory=True):
            log.warning("flow cache %s is not a directory owned by this user and private to it: not used", directory)
            usable = False
    else:
        try:
            directory.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            log.warning("flow cache %s cannot be created (%s): flows load without it", directory, exc)
            usable = False
    if usable and (file.exists() or file.is_symlink()):
        if not _trusted(file, directory=False):
            log.warning("flow cache file %s is not owned by this user or is writable by others: rebuilt", file)
        else:
            try:
                return _decode(file.read_bytes(), key), "hit"
            except Exception as exc:  # anything wrong with the file: never trusted, rebuilt below
                log.info("flow cache %s not used: %s; rebuilding it", file, exc)
    flow_set = load_flows(flows_path, prompts_dir=prompts_path)
    if not usable:
        return flow_set, "untrusted"
    try:
        if file.is_symlink() or (file.exists() and not _trusted(file, directory=False)):
            file.unlink()
        _write(directory, _encode(flow_set, key))
    except OSError as exc:
        log.warning("flow cache %s cannot be written (%s)", file, exc)
        return flow_set, "unwritable"
    return flow_set, "built"

"""Classic AGI's cache: the compiled, validated flows and the settings a call needs, for a process per call.

Rules for this file:
- A hit imports no pydantic, no YAML, no settings models: it reads one JSON file and decodes the flows into the
  engine's compiled objects (ivr/flow/compiled.py), which FastAGI compiles from the same JSON form. Only a miss
  loads the settings (`ivr.settings.load_settings`) and the flows (`load_flows`: YAML, validation, calendars,
  graph checks) the slow way, then writes the file. Never pickle: a file must not be able to run code.
- The file holds what `load_settings()` and `load_flows()` produced after every check passed: each flow's JSON
  form (`model_dump(mode="json", by_alias=True)`) and the few settings classic AGI uses (engine settings, storage
  URL and pool options, lookup limits). Never a secret: for a PostgreSQL password only where to read it (the
  password file's path, the variables' names); the value is read when the storage first opens.
- The key is a SHA-256 over everything the result depends on, in three parts. The settings key: the cache format,
  the Python version, the settings file (path and bytes; none: the working directory) and every `IVR_*`
  environment variable but the secrets. The code key: every module of the `ivr` package loaded in the process
  that built the file (all `ivr.*` modules in `sys.modules` after loading, checking and encoding: whatever
  shaped the result, e.g. the engine's settings, the number patterns, templates, node modules) by path, size
  and modification time in nanoseconds -- the rule Python itself uses to tell its bytecode is stale, so a code
  change Python would run is a change here, at a stat per file (~50 files, ~0.1-0.2 ms) instead of reading them.
  The file lists those modules; a hit stats the same list, and a change of one that imports a new module changes
  its own size/time, so the list cannot drift from the code. The flows key adds the flows directory (every
  file's name and bytes, calendars included) and the prompts directory the settings name. Any change gives
  another key: a stale cache is rebuilt, never used. (Third-party packages -- pydantic, PyYAML -- are not in the
  key: they check, they do not shape what is written.)
- Trust: the cache directory must be owned by the user running the process and writable by no one else, and so
  must the file; otherwise it is ignored (logged) and everything loads the slow way, without writing. A file that
  does not parse, has another key or format, whose contents do not match their SHA-256 digest (an edit by hand),
  or that does not decode is rebuilt (logged).
- Writes are atomic (a private temporary file renamed over the old one), mode 0600, in a 0700 directory.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.flow.compiled import Flow, decode_flow
from ivr.flow.context import EngineSettings
from ivr.records import FrozenRecord
from ivr.settings_file import default_settings_path

if TYPE_CHECKING:
    from ivr.flow.flowset import FlowSet
    from ivr.settings import Settings

log = logging.getLogger(__name__)

# CPython's own SHA-256 module: hashlib loads OpenSSL's libcrypto first, ~2 ms of a classic call's start-up.
if TYPE_CHECKING:
    from hashlib import sha256
else:
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:  # pragma: no cover - 3.12 renamed it; another Python: hashlib's
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

FORMAT = 3
CACHE_FILE = "classic.json"
_IVR = Path(__file__).resolve().parent.parent  # the ivr package; the code key names its files relative to it
# Environment variables never hashed nor stored: secrets (their values are read again when needed).
_SECRET_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD", "_KEY")


class FlowFile:
    """Where a cached flow was read from (the engine resolves relative holiday calendars against it)."""

    __slots__ = ("file",)

    def __init__(self, file: Path) -> None:
        self.file = file


class CachedFlows(dict[str, Flow]):
    """Compiled flows by name, with the flow set's `version` and `sources`, as `FlowEngine` reads a FlowSet."""

    def __init__(self, flows: Mapping[str, Flow], version: str, sources: Mapping[str, FlowFile]) -> None:
        super().__init__(flows)
        self.version = version
        self.sources = dict(sources)


class PasswordSource(FrozenRecord):
    """Where the PostgreSQL password is read when the storage opens, as `load_settings` reads it: the file
    (`storage.password_file`, its first line) wins, then the first of the variables set (`storage.password_env`,
    `IVR_STORAGE_PASSWORD`). The cache holds this, never the value."""

    __slots__ = ("file", "env")

    file: str | None
    env: tuple[str, ...]

    def __init__(self, file: str | None, env: tuple[str, ...]) -> None:
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "env", env)

    def read(self, environ: Mapping[str, str]) -> str | None:
        """The password now (OSError if the file cannot be read), or None when none is configured."""
        if self.file:
            with open(self.file, encoding="utf-8") as f:
                first = f.readline()
            return first.splitlines()[0].strip() if first else ""
        return next((environ[name] for name in self.env if environ.get(name)), None)


class ClassicSetup(FrozenRecord):
    """What a classic AGI call runs on: the compiled flows and the settings the router needs (a record, not a
    dataclass: built before the first command, ivr/records.py)."""

    __slots__ = ("flows", "engine", "storage_url", "storage_options", "storage_password", "lookups")

    flows: CachedFlows
    engine: EngineSettings
    storage_url: str
    storage_options: dict[str, Any]  # pool settings, never the password
    storage_password: PasswordSource | None  # PostgreSQL: where the password is read when the storage opens
    lookups: dict[str, Any]  # timeout, allowed_hosts, max_response_bytes

    def __init__(
        self,
        flows: CachedFlows,
        engine: EngineSettings,
        storage_url: str,
        storage_options: dict[str, Any] | None = None,
        storage_password: PasswordSource | None = None,
        lookups: dict[str, Any] | None = None,
    ) -> None:
        for name, value in (
            ("flows", flows),
            ("engine", engine),
            ("storage_url", storage_url),
            ("storage_options", {} if storage_options is None else storage_options),
            ("storage_password", storage_password),
            ("lookups", {} if lookups is None else lookups),
        ):
            object.__setattr__(self, name, value)


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`IVR_AGI_CACHE_DIR`, else `$XDG_CACHE_HOME/ivr` or `~/.cache/ivr` of the user Asterisk runs scripts as."""
    env = os.environ if env is None else env
    configured = env.get("IVR_AGI_CACHE_DIR")
    if configured:
        return Path(configured)
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivr"


def settings_key(env: Mapping[str, str]) -> str:
    """What the settings depend on: settings file, `IVR_*` environment (secrets left out)."""
    digest = sha256()
    digest.update(f"ivr-classic-cache {FORMAT} {sys.version}\0".encode())
    file = default_settings_path(env)
    if file is None:
        digest.update(f"no settings file\0{Path.cwd()}\0".encode())
    else:
        digest.update(f"{file.resolve()}\0".encode() + _read(file) + b"\0")
    for name in sorted(env):
        if name.startswith("IVR_") and not name.endswith(_SECRET_SUFFIXES):
            digest.update(f"{name}={env[name]}\0".encode())
    return digest.hexdigest()


def flows_key(settings: str, flows_dir: Path, prompts_dir: Path | None) -> str:
    """The settings key plus the flows directory's files and the prompts directory's path."""
    digest = sha256()
    digest.update(f"{settings}\0{flows_dir.resolve()}\0{prompts_dir.resolve() if prompts_dir else ''}\0".encode())
    try:
        paths = sorted(flows_dir.iterdir())
    except OSError as exc:  # no such directory: the loader says so in its words (ConfigError)
        digest.update(f"unreadable: {exc}\0".encode())
        paths = []
    for path in paths:
        if path.is_file() and not path.name.startswith("."):
            digest.update(path.name.encode() + b"\0" + _read(path) + b"\0")
    return digest.hexdigest()


def code_files(modules: Mapping[str, object] | None = None, root: Path = _IVR) -> list[str]:
    """The source files (relative to `root`, the ivr package) of the `ivr.*` modules loaded in this process."""
    modules = sys.modules if modules is None else modules
    files = set()
    for name, module in list(modules.items()):
        file = getattr(module, "__file__", None)
        if (name == "ivr" or name.startswith("ivr.")) and file:
            path = Path(file).resolve()
            if path.is_relative_to(root):
                files.add(path.relative_to(root).as_posix())
    return sorted(files)


def code_key(files: Sequence[str], root: Path = _IVR) -> str:
    """The package's location and each file's path, size and modification time (ns): a stat per file, no read."""
    digest = sha256()
    digest.update(f"{root}\0".encode())
    base = str(root)
    for name in files:
        try:
            st = os.stat(f"{base}/{name}")
            digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        except OSError:  # removed by an upgrade: another key
            digest.update(f"{name}\0gone\0".encode())
    return digest.hexdigest()


def _read(path: Path) -> bytes:
    """The file's bytes; a file that cannot be read keys as such (the slow load then reports it as a ConfigError)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc}".encode()


def _trusted(path: Path, *, directory: bool) -> bool:
    """Owned by us and writable by nobody else (a symlink is not followed)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


# --- the file: a header line (keys, digest) then the payload --------------------------------------------------


def encode(settings: Settings, flow_set: FlowSet, skey: str, fkey: str) -> bytes:
    """The cache file for these settings and flows (both as loaded and checked) under the keys computed before
    they were read (a file changed meanwhile then gives another key on the next call: rebuilt, never served)."""
    from ivr.flow.engine import FlowEngine

    engine = FlowEngine.settings_from(settings).as_dict()
    engine["base_dir"] = str(engine["base_dir"]) if engine["base_dir"] is not None else None
    options = settings.storage.open_options()
    options.pop("password", None)  # never written: read from these places when the storage opens
    password = None
    if "min_size" in options:  # PostgreSQL: where its password is (load_settings's order; the file is resolved)
        from ivr.settings import SECRET_ENV

        file = settings.storage.password_file
        password = {
            "file": str(settings.root / file) if file else None,  # an absolute `file` stays itself
            "env": list(dict.fromkeys(n for n in (settings.storage.password_env, SECRET_ENV["storage"]) if n)),
        }
    payload = json.dumps(
        {
            "version": flow_set.version,
            "flows": {name: flow.model_dump(mode="json", by_alias=True) for name, flow in flow_set.flows.items()},
            "sources": {name: str(src.file) for name, src in flow_set.sources.items()},
            "engine": engine,
            "storage": {"url": settings.storage.url, "options": options, "password": password},
            "lookups": {
                "timeout": settings.lookups.timeout,
                "allowed_hosts": list(settings.lookups.allowed_hosts),
                "max_response_bytes": settings.lookups.max_response_bytes,
            },
        },
        separators=(",", ":"),
    ).encode()
    code = code_files()  # after loading, checking and encoding: every ivr module that shaped the result
    header = {
        "format": FORMAT,
        "settings_key": skey,
        "flows_dir": str(settings.flows_dir),
        "prompts_dir": str(settings.prompts_dir) if settings.prompts_dir else None,
        "key": fkey,
        "code": code,
        "code_key": code_key(code),
        "digest": sha256(payload).hexdigest(),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def decode(raw: bytes, skey: str) -> ClassicSetup:
    """The cached setup, or ValueError/KeyError/TypeError (stale, foreign format, corrupt, edited)."""
    head, sep, payload = raw.partition(b"\n")
    header: Any = json.loads(head)
    if not sep or not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("not a classic AGI cache of this format")
    if header["settings_key"] != skey:
        raise ValueError("stale (the settings or their environment changed)")
    code = header["code"]
    if not isinstance(code, list) or header["code_key"] != code_key([str(name) for name in code]):
        raise ValueError("stale (the code changed)")
    prompts = header["prompts_dir"]
    if header["key"] != flows_key(skey, Path(header["flows_dir"]), Path(prompts) if prompts else None):
        raise ValueError("stale (the flows changed)")
    if sha256(payload).hexdigest() != header["digest"]:
        raise ValueError("its contents do not match their digest (edited or damaged)")
    return _setup(payload)


def _setup(payload: bytes) -> ClassicSetup:
    data: Any = json.loads(payload)
    flows = {name: decode_flow(body) for name, body in data["flows"].items()}
    if any(flow.name != name for name, flow in flows.items()):
        raise ValueError("flow names do not match their entries")
    sources = {name: FlowFile(Path(file)) for name, file in data["sources"].items()}
    if set(sources) != set(flows):
        raise ValueError("sources do not match the flows")
    engine = dict(data["engine"])
    engine["base_dir"] = Path(engine["base_dir"]) if engine["base_dir"] is not None else None
    storage = data["storage"]
    return ClassicSetup(
        flows=CachedFlows(flows, str(data["version"]), sources),
        engine=EngineSettings(**engine),
        storage_url=str(storage["url"]),
        storage_options=dict(storage["options"]),
        storage_password=_password_source(storage["password"]),
        lookups=dict(data["lookups"]),
    )


def _password_source(data: Any) -> PasswordSource | None:
    if data is None:
        return None
    file, env = data["file"], data["env"]
    if (file is not None and not isinstance(file, str)) or not all(isinstance(name, str) for name in env):
        raise TypeError("storage password source: a file path and variable names expected")
    return PasswordSource(file, tuple(env))


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


def _load(env: Mapping[str, str], skey: str) -> tuple[ClassicSetup, bytes]:
    """The slow way: settings and flows loaded and checked (ConfigError if invalid), and the file for them."""
    from ivr.flow.loader import load_flows
    from ivr.settings import load_settings

    settings = load_settings(env=env)
    prompts = Path(settings.prompts_dir) if settings.prompts_dir else None
    fkey = flows_key(skey, Path(settings.flows_dir), prompts)  # before reading them (see encode)
    flow_set = load_flows(settings.flows_dir, prompts_dir=settings.prompts_dir)
    raw = encode(settings, flow_set, skey, fkey)
    return _setup(raw.partition(b"\n")[2]), raw  # the very objects a hit gives


def load_classic(env: Mapping[str, str] | None = None, *, cache_dir: Path | None = None) -> tuple[ClassicSetup, str]:
    """The setup for a classic AGI call and how it was obtained: "hit", "built" (cache written), "untrusted" or
    "unwritable" (loaded the slow way, nothing written). Invalid settings or flows raise ConfigError."""
    env = os.environ if env is None else env
    directory = cache_dir or default_cache_dir(env)
    skey = settings_key(env)
    file = directory / CACHE_FILE
    usable = True
    if directory.exists() or directory.is_symlink():
        if not _trusted(directory, directory=True):
            log.warning(
                "classic AGI cache %s is not a directory owned by this user and private to it: not used", directory
            )
            usable = False
    else:
        try:
            directory.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            log.warning("classic AGI cache %s cannot be created (%s): loading without it", directory, exc)
            usable = False
    if usable and (file.exists() or file.is_symlink()):
        if not _trusted(file, directory=False):
            log.warning("classic AGI cache file %s is not owned by this user or is writable by others: rebuilt", file)
        else:
            try:
                return decode(file.read_bytes(), skey), "hit"
            except Exception as exc:  # anything wrong with the file: never trusted, rebuilt below
                log.info("classic AGI cache %s not used: %s; rebuilding it", file, exc)
    setup, raw = _load(env, skey)
    if not usable:
        return setup, "untrusted"
    try:
        if file.is_symlink() or (file.exists() and not _trusted(file, directory=False)):
            file.unlink()
        _write(directory, raw)
    except OSError as exc:
        log.warning("classic AGI cache %s cannot be written (%s)", file, exc)
        return setup, "unwritable"
    return setup, "built"

"""Classic AGI's cache (ivr/flow/cache.py): compiled flows and settings as JSON, keyed by content, never trusted
blindly, and read back without importing pydantic."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.flow.cache import CACHE_FILE, FORMAT, code_files, code_key, load_classic, settings_key
from ivr.flow.compiled import compile_flow
from ivr.flow.engine import FlowEngine
from ivr.flow.loader import load_flows
from ivr.settings import load_settings
from ivr.yamlsource import ConfigError

from .test_classic import REPO, SCRIPT, WAIT, classic_env

SAMPLE = REPO / "config" / "flows"


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    shutil.copytree(SAMPLE, d)
    return d


@pytest.fixture
def env(flows: Path, tmp_path: Path) -> dict[str, str]:
    """The sample settings with the flows in a scratch copy and the database in a scratch directory."""
    return {
        "IVR_CONFIG": str(REPO / "config" / "ivr.yaml"),
        "IVR_FLOWS_DIR": str(flows),
        "IVR_STORAGE_URL": f"sqlite:///{tmp_path / 'ivr.db'}",
    }


def test_built_then_hit_and_equal_to_a_full_load(env: dict[str, str], flows: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, how = load_classic(env, cache_dir=cache)
    assert how == "built"
    assert oct((cache / CACHE_FILE).stat().st_mode & 0o777) == "0o600" and oct(cache.stat().st_mode & 0o777) == "0o700"
    second, how = load_classic(env, cache_dir=cache)
    assert how == "hit"
    settings = load_settings(env=env)
    full = load_flows(flows, prompts_dir=settings.prompts_dir)
    assert second.flows.version == full.version == first.flows.version
    assert dict(second.flows) == {name: compile_flow(flow) for name, flow in full.flows.items()}  # every node
    assert {n: s.file for n, s in second.flows.sources.items()} == {n: s.file for n, s in full.sources.items()}
    assert second.engine == FlowEngine.settings_from(settings)
    assert second.storage_url == settings.storage.url and second.storage_options == {}
    assert second.lookups == {
        "timeout": settings.lookups.timeout,
        "allowed_hosts": settings.lookups.allowed_hosts,
        "max_response_bytes": settings.lookups.max_response_bytes,
    }


def test_a_changed_flow_setting_or_variable_is_never_served_from_the_cache(
    env: dict[str, str], flows: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    load_classic(env, cache_dir=cache)
    main = flows / "main.yaml"
    main.write_text(main.read_text().replace("description:", "description: changed -", 1))
    setup, how = load_classic(env, cache_dir=cache)
    assert how == "built" and setup.flows["main"].description.startswith("changed -")
    (flows / "holidays-lt.ics").write_bytes((flows / "holidays-lt.ics").read_bytes() + b"\r\n")  # calendars too
    assert load_classic(env, cache_dir=cache)[1] == "built"
    env["IVR_DIAL_TEMPLATE"] = "SIP/{extension}"  # an override in the environment
    setup, how = load_classic(env, cache_dir=cache)
    assert how == "built" and setup.engine.dial_template == "SIP/{extension}"
    settings_file = tmp_path / "ivr.yaml"  # the settings file itself
    settings_file.write_text((REPO / "config" / "ivr.yaml").read_text())
    env["IVR_CONFIG"] = str(settings_file)
    assert load_classic(env, cache_dir=cache)[1] == "built"
    settings_file.write_text(settings_file.read_text() + "\n# edited\n")
    assert load_classic(env, cache_dir=cache)[1] == "built"
    assert load_classic(env, cache_dir=cache)[1] == "hit"


def test_secrets_are_neither_stored_nor_in_the_key(env: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env.update(IVR_STORAGE_URL="postgresql://ivr@db.example.com:5432/ivr", IVR_STORAGE_PASSWORD="s3cret-pw")
    setup, how = load_classic(env, cache_dir=cache)
    assert how == "built" and setup.storage_password and "password" not in setup.storage_options
    assert b"s3cret-pw" not in (cache / CACHE_FILE).read_bytes()
    env["IVR_STORAGE_PASSWORD"] = "another"  # read from the settings on each call, not part of the key
    assert settings_key(env) == settings_key({**env, "IVR_STORAGE_PASSWORD": "s3cret-pw"})
    assert load_classic(env, cache_dir=cache)[1] == "hit"


def test_an_invalid_flow_is_an_error_not_a_cache_entry(env: dict[str, str], flows: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_classic(env, cache_dir=cache)
    (flows / "main.yaml").write_text("name: main\nstart: nowhere\nnodes: {}\n")
    with pytest.raises(ConfigError):
        load_classic(env, cache_dir=cache)


def _reseal(raw: bytes) -> bytes:
    """The file with its digest recomputed: a damage the digest cannot see, left to the decoder."""
    head, _, payload = raw.partition(b"\n")
    header = json.loads(head)
    header["digest"] = hashlib.sha256(payload).hexdigest()
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


DAMAGES: list[Callable[[bytes], bytes]] = [
    lambda raw: b"{not json",
    lambda raw: raw[: len(raw) // 2],  # cut short
    lambda raw: raw.replace(f'"format":{FORMAT}'.encode(), b'"format":99', 1),
    lambda raw: raw.replace(b'"file":"en/welcome"', b'"file":"../../etc/passwd"', 1),  # edited: digest differs
    lambda raw: _reseal(raw.replace(b'"type":"hangup"', b'"type":"self_destruct"', 1)),  # no such node kind
    lambda raw: _reseal(raw.replace(b'"name":"main"', b'"name":"other"', 1)),  # entry and flow disagree
    lambda raw: _reseal(raw.replace(b'"start":', b'"begin":', 1)),  # a field missing
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_corrupt_or_edited_cache_is_rebuilt(
    env: dict[str, str], flows: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = tmp_path / "cache"
    built, _ = load_classic(env, cache_dir=cache)
    file = cache / CACHE_FILE
    raw = file.read_bytes()
    damaged = damage(raw)
    assert damaged != raw
    file.write_bytes(damaged)
    setup, how = load_classic(env, cache_dir=cache)
    assert how == "built"
    assert dict(setup.flows) == dict(built.flows)
    assert file.read_bytes() == raw  # repaired


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership")
def test_a_cache_others_can_write_is_not_trusted(env: dict[str, str], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a file here
    setup, how = load_classic(env, cache_dir=shared)
    assert how == "untrusted" and not (shared / CACHE_FILE).exists()  # nothing written there either
    private = tmp_path / "private"
    assert dict(load_classic(env, cache_dir=private)[0].flows) == dict(setup.flows)
    # a private directory, but a file others may write: not read, replaced by a private one
    (private / CACHE_FILE).chmod(0o666)
    assert load_classic(env, cache_dir=private)[1] == "built"
    assert (private / CACHE_FILE).stat().st_mode & 0o777 == 0o600
    # a symlink planted as the cache file is never followed
    target = tmp_path / "elsewhere.json"
    target.write_bytes((private / CACHE_FILE).read_bytes())
    (private / CACHE_FILE).unlink()
    (private / CACHE_FILE).symlink_to(target)
    assert load_classic(env, cache_dir=private)[1] == "built"
    assert not (private / CACHE_FILE).is_symlink()


def _script_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IVR_AGI_ROUTER"}
    env.update(
        IVR_CONFIG=str(REPO / "config" / "ivr.yaml"),
        IVR_STORAGE_URL=f"sqlite:///{tmp_path / 'ivr.db'}",
        IVR_AGI_CACHE_DIR=str(tmp_path / "cache"),
        IVR_AGI_LOG_LEVEL="INFO",
    )
    return env


async def _first_command(argv: list[str], env: dict[str, str]) -> tuple[bytes, str]:
    """Run the script as Asterisk would, answer its first command, then hang up: (first line, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(classic_env("main"))
    await proc.stdin.drain()
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    proc.stdin.close()  # the caller is gone after the first command: the flow ends
    err = (await asyncio.wait_for(proc.stderr.read(), WAIT)).decode(errors="replace")
    await asyncio.wait_for(proc.wait(), WAIT)
    assert line == b"ANSWER\n", err
    return line, err


async def test_classic_agi_script_builds_and_uses_the_cache(tmp_path: Path) -> None:
    """agi/ivr_agi.py with the real router: the first call builds the cache, the next one reads it."""
    env = _script_env(tmp_path)
    for expected in ("built", "hit"):
        _, err = await _first_command([sys.executable, str(SCRIPT)], env)
        assert f"classic AGI cache: {expected}" in err
    assert (tmp_path / "cache" / CACHE_FILE).exists()


# Modules a cache hit must not import: the models and their validation library, YAML, the settings models, and
# (for a call that stores nothing) the storage; and no event loop (a classic call runs on blocking pipes: asyncio,
# the ssl it pulls in, aiohttp come only with a node that stores or looks something up, docs/agi.md).
NOT_ON_A_HIT = (
    "asyncio",
    "ssl",
    "socket",
    "aiohttp",
    "pydantic",
    "pydantic_core",
    "yaml",
    "ivr.flow.model",
    "ivr.flow.loader",
    "ivr.settings",
    "ivr.metrics",
    "ivr.storage",  # opened on first use: this call stores nothing
)


@pytest.mark.parametrize("password", [False, True], ids=["sqlite", "postgresql-with-password"])
async def test_a_cache_hit_imports_no_pydantic_no_yaml_no_settings_models(tmp_path: Path, password: bool) -> None:
    """The whole classic call (to its first command and on to the end) on a warm cache, under `-X importtime`:
    none of the modules the cache exists to avoid is imported -- a PostgreSQL password configured included (only
    where it is is cached; it is read when the storage opens, and this call stores nothing)."""
    env = _script_env(tmp_path)
    if password:
        env.update(IVR_STORAGE_URL="postgresql://ivr@127.0.0.1:9/ivr", IVR_STORAGE_PASSWORD="pw-read-late")
    _, err = await _first_command([sys.executable, str(SCRIPT)], env)  # builds the cache (imports them all)
    assert "classic AGI cache: built" in err
    _, err = await _first_command([sys.executable, "-X", "importtime", str(SCRIPT)], env)
    assert "classic AGI cache: hit" in err
    imported = {
        line.rsplit("|", 1)[1].strip() for line in err.splitlines() if line.startswith("import time:") and "|" in line
    }
    assert "ivr.flow.compiled" in imported and "ivr.flow.engine" in imported  # the check sees the imports
    assert not imported & set(NOT_ON_A_HIT), sorted(imported & set(NOT_ON_A_HIT))
    assert not {m for m in imported if m.startswith(("pydantic.", "yaml.", "ivr.settings."))}


def test_the_settings_key_ignores_nothing_but_secrets() -> None:
    base = {"IVR_CONFIG": str(REPO / "config" / "ivr.yaml")}
    assert settings_key(base) == settings_key(dict(base))
    assert settings_key(base) != settings_key({**base, "IVR_FLOWS_DIR": "/elsewhere"})
    assert settings_key(base) != settings_key({**base, "IVR_LOG_LEVEL": "debug"})
    for secret in ("IVR_AMI_SECRET", "IVR_API_TOKEN", "IVR_STORAGE_PASSWORD", "IVR_CALLER_HASH_KEY"):
        assert settings_key(base) == settings_key({**base, secret: "x"})
    assert settings_key(base) == settings_key({**base, "PATH": "/nowhere"})  # only IVR_* variables count
    out = subprocess.run(
        [sys.executable, "-c", "import ivr.flow.cache, sys; print('pydantic' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("variable", ["IVR_CONFIG", "IVR_FLOWS_DIR"])
def test_a_missing_settings_file_or_flows_directory_is_a_config_error(
    env: dict[str, str], tmp_path: Path, variable: str
) -> None:
    env[variable] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError):
        load_classic(env, cache_dir=tmp_path / "cache")


# Modules that shape the cached result without being the flow model or the loader (issue 12's review: a key over
# a hand-kept file list missed them): the engine settings, number patterns, YAML source, templates, node modules.
# (ivr.flow.hours is not among them: it reads the calendars when a call asks, and building never imports it.)
SHAPING = (
    "flow/engine.py",
    "telephony.py",
    "yamlsource.py",
    "flow/templates.py",
    "flow/nodes/transfer.py",
    "flow/model.py",
    "flow/cache.py",
    "settings.py",
)
_BUILD = """
import json, sys
from pathlib import Path
from ivr.flow.cache import CACHE_FILE, load_classic
setup, how = load_classic(cache_dir=Path(sys.argv[1]))
header = json.loads((Path(sys.argv[1]) / CACHE_FILE).read_bytes().partition(b"\\n")[0])
loaded = sorted(m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "ivr" and getattr(m, "__file__", None))
print(json.dumps({"how": how, "code": header["code"], "loaded": loaded}))
"""


def test_the_code_key_covers_every_ivr_module_that_built_the_cache_and_a_change_to_one_rebuilds(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A copy of the package, run in fresh processes: the file lists every ivr module loaded while building, and
    changing one of them (bytes, or only its modification time, as an upgrade or a checkout does) rebuilds."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "ivr", src / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    run_env = {**os.environ, **env, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    run_env.pop("IVR_AGI_CACHE_DIR", None)

    def build() -> dict[str, object]:
        out = subprocess.run(
            [sys.executable, "-c", _BUILD, str(tmp_path / "cache")],
            env=run_env,
            cwd=tmp_path,  # not the checkout: its ivr/ would come first on sys.path
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    first = build()
    assert first["how"] == "built"
    code = set(first["code"])  # type: ignore[call-overload]
    loaded = {Path(f).resolve().relative_to(src / "ivr").as_posix() for f in first["loaded"]}  # type: ignore[attr-defined]
    assert loaded <= code and set(SHAPING) <= code, (sorted(loaded - code), sorted(set(SHAPING) - code))
    assert build()["how"] == "hit"
    telephony = src / "ivr" / "telephony.py"
    telephony.write_text(telephony.read_text() + "\n# upgraded\n")
    assert build()["how"] == "built"
    engine = src / "ivr" / "flow" / "engine.py"
    st = engine.stat()
    os.utime(engine, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))  # same bytes, new time: Python recompiles too
    assert build()["how"] == "built"
    assert build()["how"] == "hit"


def test_code_key_changes_with_each_shaping_module_and_code_files_names_them(tmp_path: Path) -> None:
    root = tmp_path / "ivr"
    shutil.copytree(REPO / "ivr", root, ignore=shutil.ignore_patterns("__pycache__"))
    files = code_files()  # this process has them all loaded
    assert set(SHAPING) <= set(files)
    before = code_key(files, root)
    assert code_key(files, root) == before
    for name in SHAPING:
        (root / name).write_text((root / name).read_text() + "\n")
        after = code_key(files, root)
        assert after != before, name
        before = after
    (root / "telephony.py").unlink()  # removed by an upgrade
    assert code_key(files, root) != before

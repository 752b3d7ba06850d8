"""Classic AGI's flow cache (ivr/flow/cache.py): validated flows as JSON, keyed by content, never trusted blindly."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from ivr.flow.cache import CACHE_FILE, cache_key, cached_flow_set
from ivr.flow.loader import load_flows
from ivr.yamlsource import ConfigError

from .test_classic import REPO, SCRIPT, WAIT, classic_env

SAMPLE = REPO / "config" / "flows"


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    shutil.copytree(SAMPLE, d)
    return d


def test_built_then_hit_and_equal_to_a_full_load(flows: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, how = cached_flow_set(flows, cache_dir=cache)
    assert how == "built"
    assert oct((cache / CACHE_FILE).stat().st_mode & 0o777) == "0o600" and oct(cache.stat().st_mode & 0o777) == "0o700"
    second, how = cached_flow_set(flows, cache_dir=cache)
    assert how == "hit"
    full = load_flows(flows)
    assert second.version == full.version == first.version
    assert dict(second.flows) == dict(full.flows)  # every node, prompt, schedule as validated
    assert {n: s.file for n, s in second.sources.items()} == {n: s.file for n, s in full.sources.items()}


def test_a_changed_flow_or_setting_is_never_served_from_the_cache(flows: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached_flow_set(flows, cache_dir=cache, settings_bytes=b"a")
    assert cached_flow_set(flows, cache_dir=cache, settings_bytes=b"b")[1] == "built"  # settings are in the key
    main = flows / "main.yaml"
    main.write_text(main.read_text().replace("description:", "description: changed -", 1))
    flow_set, how = cached_flow_set(flows, cache_dir=cache, settings_bytes=b"b")
    assert how == "built" and flow_set.flows["main"].description.startswith("changed -")
    (flows / "holidays-lt.ics").write_bytes((flows / "holidays-lt.ics").read_bytes() + b"\r\n")  # calendars too
    assert cached_flow_set(flows, cache_dir=cache, settings_bytes=b"b")[1] == "built"
    assert cached_flow_set(flows, cache_dir=cache, settings_bytes=b"b")[1] == "hit"


def test_an_invalid_flow_is_an_error_not_a_cache_entry(flows: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached_flow_set(flows, cache_dir=cache)
    (flows / "main.yaml").write_text("name: main\nstart: nowhere\nnodes: {}\n")
    with pytest.raises(ConfigError):
        cached_flow_set(flows, cache_dir=cache)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"{not json",
        lambda raw: raw[: len(raw) // 2],  # cut short
        lambda raw: raw.replace(b'"format":1', b'"format":99'),
        lambda raw: raw.replace(b'"type":"hangup"', b'"type":"self_destruct"', 1),  # does not validate
        lambda raw: raw.replace(b'"name":"main"', b'"name":"other"', 1),  # entry and flow disagree
    ],
)
def test_a_corrupt_cache_is_rebuilt(flows: Path, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    cached_flow_set(flows, cache_dir=cache)
    file = cache / CACHE_FILE
    raw = file.read_bytes()
    file.write_bytes(damage(raw))
    flow_set, how = cached_flow_set(flows, cache_dir=cache)
    assert how == "built"
    assert dict(flow_set.flows) == dict(load_flows(flows).flows)
    assert json.loads(file.read_bytes())["key"] == cache_key(flows)  # repaired


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership")
def test_a_cache_others_can_write_is_not_trusted(flows: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a file here
    flow_set, how = cached_flow_set(flows, cache_dir=shared)
    assert how == "untrusted" and not (shared / CACHE_FILE).exists()  # nothing written there either
    assert dict(flow_set.flows) == dict(load_flows(flows).flows)
    # a private directory, but a file others may write: not read, replaced by a private one
    private = tmp_path / "private"
    cached_flow_set(flows, cache_dir=private)
    (private / CACHE_FILE).chmod(0o666)
    assert cached_flow_set(flows, cache_dir=private)[1] == "built"
    assert (private / CACHE_FILE).stat().st_mode & 0o777 == 0o600
    # a symlink planted as the cache file is never followed
    target = tmp_path / "elsewhere.json"
    target.write_bytes((private / CACHE_FILE).read_bytes())
    (private / CACHE_FILE).unlink()
    (private / CACHE_FILE).symlink_to(target)
    assert cached_flow_set(flows, cache_dir=private)[1] == "built"
    assert not (private / CACHE_FILE).is_symlink()


async def test_classic_agi_script_builds_and_uses_the_cache(tmp_path: Path) -> None:
    """agi/ivr_agi.py with the real router: the first call builds the cache, the next one reads it."""
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "IVR_AGI_ROUTER"}
    env.update(
        IVR_CONFIG=str(REPO / "config" / "ivr.yaml"),
        IVR_STORAGE_URL=f"sqlite:///{tmp_path / 'ivr.db'}",
        IVR_AGI_CACHE_DIR=str(cache),
        IVR_AGI_LOG_LEVEL="INFO",
    )
    for expected in ("built", "hit"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(classic_env("main"))
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert line == b"ANSWER\n", (await proc.stderr.read()).decode(errors="replace")
        proc.stdin.close()  # the caller is gone after the first command: the flow ends
        err = await asyncio.wait_for(proc.stderr.read(), WAIT)
        await asyncio.wait_for(proc.wait(), WAIT)
        assert f"flow cache: {expected}" in err.decode(errors="replace")
    assert (cache / CACHE_FILE).exists()

"""Hot reload: a broken edit never reaches callers; a good one is swapped in for new calls only."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr import metrics
from ivr.flow.repository import FlowRepository
from ivr.yamlsource import ConfigError

from .helpers import BASE_FLOW, mutate, write_flow


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels or {})
    return value or 0.0


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    write_flow(tmp_path / "flows", BASE_FLOW)
    return tmp_path / "flows"


def test_start_up_load_and_version(flows: Path) -> None:
    repo = FlowRepository(flows)
    flow_set = repo.load()
    assert repo.current is flow_set and repo.version == flow_set.version and len(flow_set.version) == 12
    assert repo.last_result is not None and repo.last_result.trigger == "startup" and not repo.failing
    assert sample("ivr_config_info", {"version": flow_set.version}) == 1.0


def test_start_up_with_broken_flows_raises(flows: Path) -> None:
    write_flow(flows, "name: [\n")
    with pytest.raises(ConfigError):
        FlowRepository(flows).load()


def test_reload_without_changes_keeps_the_same_object(flows: Path) -> None:
    repo = FlowRepository(flows)
    first = repo.load()
    result = repo.reload("api")
    assert result.ok and not result.changed and repo.current is first


def test_broken_edit_keeps_serving_the_running_version(flows: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = FlowRepository(flows)
    running = repo.load()
    failed_before = sample("ivr_config_reloads_total", {"result": "failed"})
    write_flow(flows, mutate("    next: main_menu", "    next: main_manu"))
    with caplog.at_level(logging.ERROR, logger="ivr.flow.repository"):
        result = repo.reload("sighup")
    assert not result.ok and result.version == running.version and repo.current is running
    assert [p.code for p in repo.last_errors] == ["undefined-target"]
    assert "main_manu" in repo.last_errors[0].message
    assert sample("ivr_config_reloads_total", {"result": "failed"}) == failed_before + 1
    assert sample("ivr_config_reload_failing") == 1.0
    assert "still serving version " + running.version in caplog.text and "main_manu" in caplog.text
    assert result.to_dict()["errors"][0]["code"] == "undefined-target"
    # Fixing the file clears the failure and swaps in the new version.
    write_flow(flows, mutate("    next: main_menu", "    barge_in: true\n    next: main_menu"))
    fixed = repo.reload("sighup")
    assert fixed.ok and fixed.changed and repo.current is not running and repo.last_errors == []
    assert sample("ivr_config_reload_failing") == 0.0


def test_calls_in_progress_keep_their_flow_set(flows: Path) -> None:
    repo = FlowRepository(flows)
    repo.load()
    call_a = repo.current  # a call takes the set once, at its start
    write_flow(flows, mutate("    prompts: [welcome]", "    prompts: [welcome, menu]"))
    repo.reload("sighup")
    call_b = repo.current
    assert call_a.version != call_b.version
    assert call_a["main"].nodes["welcome"].prompts == ["welcome"]
    assert call_b["main"].nodes["welcome"].prompts == ["welcome", "menu"]


def test_listeners_hear_about_swaps_only(flows: Path) -> None:
    repo = FlowRepository(flows)
    seen: list[str] = []
    repo.on_swap(lambda flow_set: seen.append(flow_set.version))
    repo.load()
    repo.reload()
    write_flow(flows, "name: [\n")
    repo.reload()
    assert seen == [repo.version]


async def test_watch_reloads_on_file_change(flows: Path) -> None:
    repo = FlowRepository(flows)
    first = repo.load()
    swapped = asyncio.Event()
    loop = asyncio.get_running_loop()
    repo.on_swap(lambda _set: loop.call_soon_threadsafe(swapped.set))
    task = asyncio.create_task(repo.watch(interval=0.01))
    try:
        write_flow(flows, mutate("    prompts: [welcome]", "    prompts: [welcome, menu]"))
        await asyncio.wait_for(swapped.wait(), timeout=10)
    finally:
        task.cancel()
    assert repo.current.version != first.version
    assert repo.last_result is not None and repo.last_result.trigger == "watch"


def test_change_detection_covers_new_and_removed_files(flows: Path) -> None:
    repo = FlowRepository(flows)
    repo.load()
    assert not repo.changed_on_disk()
    write_flow(flows, "name: other\nstart: end\nnodes:\n  end: {type: hangup}\n", "other.yaml")
    assert repo.changed_on_disk()
    repo.reload("watch")
    assert repo.current.names() == ["main", "other"]
    (flows / "other.yaml").unlink()
    assert repo.changed_on_disk()


async def test_reload_async_runs_the_same_reload(flows: Path) -> None:
    repo = FlowRepository(flows)
    first = repo.load()
    write_flow(flows, mutate("    prompts: [welcome]", "    prompts: [welcome, menu]"))
    result = await repo.reload_async()
    assert result.ok and result.changed and result.trigger == "api" and repo.current is not first

"""The routes of a classic AGI call (ivr/flow/classic.py): the engine over the cached setup, storage opened late."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.cache import load_classic
from ivr.flow.classic import LazyStorage, classic_engine, classic_router
from ivr.flow.compiled import Flow
from ivr.storage import SQLiteStorage, StorageError
from ivr.syncrun import LoopBridge, drive

from .test_classic import REPO


def _env(tmp_path: Path) -> dict[str, str]:
    return {"IVR_CONFIG": str(REPO / "config" / "ivr.yaml"), "IVR_STORAGE_URL": f"sqlite:///{tmp_path / 'ivr.db'}"}


def test_the_router_serves_the_cached_flows(tmp_path: Path) -> None:
    router = classic_router(_env(tmp_path), cache_dir=tmp_path / "cache")
    assert router.resolve("main") is not None and router.resolve("survey") is not None
    assert router.resolve("no-such-flow") is None  # NOROUTE, as FastAGI answers it


def test_the_storage_opens_on_first_use_on_the_bridge_loop(tmp_path: Path) -> None:
    # No running loop here, as in a classic AGI process: the bridge makes its own on first use.
    env = _env(tmp_path)
    setup, _ = load_classic(env, cache_dir=tmp_path / "cache")
    bridge = LoopBridge()
    engine = classic_engine(setup, env, bridge=bridge)
    assert all(type(flow) is Flow for flow in engine.flows.values())
    assert engine.settings == setup.engine
    storage = engine.storage.service
    assert isinstance(storage, LazyStorage) and storage._storage is None  # nothing opened for a call yet
    assert not (tmp_path / "ivr.db").exists() and not bridge.started
    assert drive(engine.storage.list_voicemails()) == []  # the first use opens it, on the bridge's loop
    assert isinstance(storage._storage, SQLiteStorage) and (tmp_path / "ivr.db").exists() and bridge.started
    bridge.close()  # closes the storage, then the loop
    assert storage._storage is None and not bridge.started


def test_a_bridge_nobody_used_closes_without_an_event_loop(tmp_path: Path) -> None:
    env = _env(tmp_path)
    setup, _ = load_classic(env, cache_dir=tmp_path / "cache")
    bridge = LoopBridge()
    classic_engine(setup, env, bridge=bridge)
    bridge.close()
    assert not bridge.started and not (tmp_path / "ivr.db").exists()


def test_a_storage_that_cannot_be_opened_fails_where_it_is_used_as_a_storage_error() -> None:
    # The nodes that store catch StorageError (the database is down): a bad URL lands in that same branch.
    storage = LazyStorage("sqlite://no-third-slash.db", {})
    with pytest.raises(StorageError, match="three slashes"):
        storage.add_survey_answer  # noqa: B018  # the first use opens it
    assert storage._storage is None  # and the next use tries again

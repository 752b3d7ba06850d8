"""The routes of a classic AGI call (ivr/flow/classic.py): the engine over the cached setup, storage opened late."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.cache import CACHE_FILE, PasswordSource, load_classic
from ivr.flow.classic import LazyStorage, classic_engine, classic_router
from ivr.flow.compiled import Flow
from ivr.storage import SQLiteStorage, StorageError
from ivr.storage.testing import PgCluster
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


def test_a_postgresql_password_is_cached_by_where_it_is_and_read_when_the_storage_opens(
    tmp_path: Path, pg_cluster: PgCluster, pg_database: str
) -> None:
    """A real cluster with scram-sha-256 logins: the cache built while the variable held a wrong password serves a
    later call that connects with the right one (read at open time, never from the cache or the build)."""
    env = {**_env(tmp_path), "IVR_STORAGE_URL": pg_database, "IVR_STORAGE_PASSWORD": "wrong-at-build-time"}
    cache = tmp_path / "cache"
    assert load_classic(env, cache_dir=cache)[1] == "built"
    assert b"wrong-at-build-time" not in (cache / CACHE_FILE).read_bytes()
    env["IVR_STORAGE_PASSWORD"] = pg_cluster.password
    setup, how = load_classic(env, cache_dir=cache)
    assert how == "hit" and setup.storage_password == PasswordSource(None, ("IVR_STORAGE_PASSWORD",))
    bridge = LoopBridge()
    try:
        engine = classic_engine(setup, env, bridge=bridge)
        storage = engine.storage.service
        assert isinstance(storage, LazyStorage) and storage._storage is None
        assert drive(engine.storage.list_voicemails()) == []  # opened: logged in with the password read now
        assert storage._storage is not None
    finally:
        bridge.close()


def test_the_password_file_wins_over_the_variables_and_is_read_at_open(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    source = PasswordSource(str(secret), ("DB_PW", "IVR_STORAGE_PASSWORD"))
    with pytest.raises(OSError):
        source.read({})
    storage = LazyStorage("postgresql://ivr@127.0.0.1:9/ivr", {}, source, {})
    with pytest.raises(StorageError, match="password file"):  # as a database that is down: the node's on_failure
        storage.add_survey_answer  # noqa: B018
    secret.write_text("from-file  \nsecond line\n")
    assert source.read({"DB_PW": "from-env"}) == "from-file"
    secret.write_text("")
    assert source.read({}) == ""
    by_env = PasswordSource(None, ("DB_PW", "IVR_STORAGE_PASSWORD"))
    assert by_env.read({"DB_PW": "", "IVR_STORAGE_PASSWORD": "default"}) == "default"  # the first one set
    assert by_env.read({"DB_PW": "named", "IVR_STORAGE_PASSWORD": "default"}) == "named"
    assert by_env.read({}) is None


def test_the_cache_resolves_a_relative_password_file_against_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ivr.yaml").write_text((REPO / "config" / "ivr.yaml").read_text())
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db").write_text("pw\n")
    env = {
        **_env(tmp_path),
        "IVR_CONFIG": str(tmp_path / "config" / "ivr.yaml"),  # the project root: tmp_path
        "IVR_FLOWS_DIR": str(REPO / "config" / "flows"),
        "IVR_STORAGE_URL": "postgresql://ivr@127.0.0.1:9/ivr",
        "IVR_STORAGE_PASSWORD_FILE": "secrets/db",
    }
    setup, _ = load_classic(env, cache_dir=tmp_path / "cache")
    assert setup.storage_password == PasswordSource(str(tmp_path / "secrets" / "db"), ("IVR_STORAGE_PASSWORD",))
    assert load_classic(env, cache_dir=tmp_path / "cache")[0].storage_password == setup.storage_password
    assert setup.storage_password is not None and setup.storage_password.read({}) == "pw"

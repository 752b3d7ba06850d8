"""The directories the service asks Asterisk to write into (ivr.writedirs): one list, created by `serve` and by the
admin tools the same way, inspected by `check`. Asterisk creates none for RECORD FILE (tests/data/asterisk)."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from ivr.flow.engine import FlowEngine
from ivr.flowtest.caller import parse_digits
from ivr.flowtest.runner import CallSetup
from ivr.flowtest.simrun import run_call_on_sim
from ivr.settings import load_settings
from ivr.tools.check import check
from ivr.tools.flowsource import resolve
from ivr.writedirs import WriteDirError, inspect, prepare, write_dirs

ROOT = Path(__file__).resolve().parents[1]


def settings_in(root: Path, text: str = ""):
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "ivr.yaml").write_text(f"flows_dir: {ROOT / 'config' / 'flows'}\n{text}")
    return load_settings(root / "config" / "ivr.yaml", env={})


def test_the_list_is_the_recordings_dir_and_its_voicemail_dir_as_the_flows_use_them(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, "recordings_dir: spool/rec\n")
    engine = FlowEngine.settings_from(settings)
    dirs = write_dirs(settings)
    assert [(d.kind, d.path) for d in dirs] == [
        ("recordings", tmp_path / "spool" / "rec"),
        ("voicemail", tmp_path / "spool" / "rec" / "voicemail"),
    ]
    assert [str(d.path) for d in dirs] == [engine.recordings_dir, engine.voicemail_dir]


def test_asterisk_elsewhere_is_not_prepared_here_and_flows_use_its_path(tmp_path: Path) -> None:
    """calls.asterisk_recordings_dir: Asterisk writes on its own host; the flows name its path (as the API's
    MixMonitor does), and nothing is created on this host."""
    settings = settings_in(tmp_path, "calls:\n  asterisk_recordings_dir: /srv/asterisk/rec\n")
    assert write_dirs(settings) == []
    engine = FlowEngine.settings_from(settings)
    assert (engine.recordings_dir, engine.voicemail_dir) == ("/srv/asterisk/rec", "/srv/asterisk/rec/voicemail")


def test_prepare_creates_missing_directories_with_the_parents_group_access(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o2770)  # a spool shared with Asterisk's group: group-writable, setgid
    settings = settings_in(tmp_path, f"recordings_dir: {spool}/rec\n")
    old = os.umask(0o077)
    try:
        created = prepare(write_dirs(settings))
    finally:
        os.umask(old)
    assert created == [spool / "rec", spool / "rec" / "voicemail"]
    for path in created:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o2070 == 0o2070 and not mode & 0o007  # the group's access, never the world's
    assert prepare(write_dirs(settings)) == []  # idempotent


def test_prepare_names_the_setting_when_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    settings = settings_in(tmp_path, f"recordings_dir: {tmp_path}/blocker/rec\n")
    with pytest.raises(WriteDirError, match=r"^recordings_dir: cannot create .*blocker/rec"):
        prepare(write_dirs(settings))


def test_check_reports_missing_and_uncreatable_directories(tmp_path: Path) -> None:
    settings_in(tmp_path, f"recordings_dir: {tmp_path}/rec\n")
    result = check(str(tmp_path / "config" / "ivr.yaml"))
    found = [(p.severity, p.code, p.message) for p in result["problems"] if p.code == "write-dir"]
    assert [(s, c) for s, c, _ in found] == [("warning", "write-dir"), ("warning", "write-dir")]
    assert "rec does not exist yet" in found[0][2] and "voicemail" in found[1][2]
    assert all(p.line == 2 for p in result["problems"] if p.code == "write-dir")  # at recordings_dir:

    prepare(write_dirs(load_settings(tmp_path / "config" / "ivr.yaml", env={})))
    assert not [p for p in check(str(tmp_path / "config" / "ivr.yaml"))["problems"] if p.code == "write-dir"]

    (tmp_path / "blocker").write_text("")
    settings_in(tmp_path, f"recordings_dir: {tmp_path}/blocker/rec\n")
    result = check(str(tmp_path / "config" / "ivr.yaml"))
    errors = [p for p in result["problems"] if p.code == "write-dir"]
    assert errors and all(p.severity == "error" and "is not a directory" in p.message for p in errors)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere: no directory is unwritable for it")
def test_check_reports_an_unwritable_directory(tmp_path: Path) -> None:
    (tmp_path / "rec" / "voicemail").mkdir(parents=True)
    os.chmod(tmp_path / "rec" / "voicemail", 0o555)
    settings = settings_in(tmp_path, f"recordings_dir: {tmp_path}/rec\n")
    [problem] = inspect(write_dirs(settings))
    assert problem.severity == "error" and "is not writable" in problem.message


def test_simulate_prepares_the_same_layout_as_serve() -> None:
    """The admin tools prepare their scratch directory through the same function as `serve`: voicemail goes to
    <recordings>/voicemail there too, so a flow that would fail on a fresh install is not hidden by a directory
    only the tool created."""
    _, flows = resolve(str(ROOT / "config" / "flows" / "main.yaml"))
    # 20:30 on a Monday: closed, the after-hours menu; 1 = leave a message, then hang up
    setup = CallSetup("main", steps=parse_digits("1,w,1,h"), at=datetime(2026, 3, 23, 20, 30))
    run = asyncio.run(run_call_on_sim(flows, setup))
    [written] = [d for d in run.destinations if d.startswith("recording:")]
    path = Path(written.removeprefix("recording:"))
    assert (path.parent.name, path.parent.parent.name) == ("voicemail", "recordings")
    assert run.report.outcome == "voicemail"

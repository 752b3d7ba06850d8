"""The suite and the product need nothing outside the repository (a fresh clone on any machine runs them).

Fails when a tracked file names the folder the checkout sits in or a folder beside it, or when the recordings the
tests read are missing from `tests/data/asterisk/`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.asterisk_data import ASTERISK_DATA

ROOT = Path(__file__).resolve().parents[1]


def outside_names() -> list[str]:
    """What would name a place outside the checkout wherever it is cloned: the folder it sits in, as an absolute
    path, and every folder beside it, as a relative one (reference data kept beside a checkout is not a user's)."""
    parent = ROOT.parent
    names = [f"../{p.name}/" for p in parent.iterdir() if p.is_dir() and p != ROOT]
    if parent != parent.parent:  # not the file system's root
        names.append(f"{parent}/")
    return names


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (git ls-files failed): nothing to list the tracked files with")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    outside = outside_names()
    for path in tracked_files():
        if ASTERISK_DATA in path.parents or not path.is_file():
            continue  # the recordings themselves are quoted as captured
        text = path.read_bytes()
        for needle in outside:
            if needle.encode() in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_the_recordings_are_in_the_repository() -> None:
    names = {p.name for p in ASTERISK_DATA.iterdir()}
    assert {"README.md", "measurements.md", "agi-01-env-and-basic-commands.jsonl", "ami-15-queue.jsonl"} <= names
    assert len([n for n in names if n.endswith(".jsonl")]) == 29

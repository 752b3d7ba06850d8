"""`python main.py prompts build|list`: generated prompt files and the message when the tools are missing."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.tools.prompts import PromptToolsMissing, collect_jobs, find_tools

from .helpers import mutate, write_flow

tools_present = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are not installed"
)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    text = mutate("    en: {file: en/bye, text: Goodbye}", "    en: {file: en/bye, text: '-n Goodbye; rm -rf /'}")
    write_flow(tmp_path / "flows", text)
    return tmp_path / "flows"


def test_jobs_are_distinct_files_with_their_voice(flows: Path) -> None:
    jobs = collect_jobs(flows)
    assert [(j.file, j.language) for j in jobs] == [
        ("en/bye", "en"),
        ("en/menu", "en"),
        ("en/welcome", "en"),
        ("lt/bye", "lt"),
        ("lt/menu", "lt"),
        ("lt/welcome", "lt"),
    ]
    assert [j.file for j in collect_jobs(flows, only="lt")] == ["lt/bye", "lt/menu", "lt/welcome"]


@tools_present
def test_build_into_a_temp_dir(flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prompts"
    (out / "en").mkdir(parents=True)
    (out / "en" / "menu.gsm").write_bytes(b"a human recording")
    assert main(["prompts", "build", "--flows", str(flows), "--out", str(out), "--only", "en"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"[1/2] {out / 'en' / 'bye.wav'} (en)"
    assert printed[1] == f"[2/2] {out / 'en' / 'welcome.wav'} (en)"
    assert printed[-1] == f"2 prompt file(s) written, 1 already present, in {out}"
    assert not (out / "en" / "menu.wav").exists()  # the studio .gsm is kept and not shadowed
    with wave.open(str(out / "en" / "bye.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 8000 // 2  # the text was spoken, not swallowed as an option
    assert not (out / "lt").exists()
    assert main(["prompts", "list", "--flows", str(flows), "--out", str(out), "--missing"]) == 0
    listing = capsys.readouterr().out
    assert "MISSING" in listing and "lt/welcome.wav" in listing and "en/bye.wav" not in listing


def test_missing_tools_give_a_clear_message(
    flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PromptToolsMissing) as info:
        find_tools()
    assert str(info.value) == (
        "espeak-ng and sox not found on PATH; install them with: apt-get install espeak-ng "
        "sox (Debian/Ubuntu packages `espeak-ng` and `sox`)"
    )
    assert main(["prompts", "build", "--flows", str(flows), "--out", str(tmp_path / "p")]) == 1
    assert "apt-get install espeak-ng sox" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()

"""The deployment files say what docs/deployment.md says: the systemd unit passes `systemd-analyze verify` and has
the readiness, restart, stop and hardening settings the page promises; the page's two-instance settings load."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "config" / "systemd" / "ivr.service"
DOC = ROOT / "docs" / "deployment.md"


def unit() -> dict[str, list[str]]:
    """Key -> every value (systemd allows repeated keys) of the [Service] section."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_unit_promises_what_the_docs_say() -> None:
    service = unit()
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["ExecStart"][0].endswith("ivr serve --config /etc/ivr/ivr.yaml")
    assert service["Restart"] == ["on-failure"] and service["KillSignal"] == ["SIGTERM"]
    stop = int(service["TimeoutStopSec"][0].rstrip("s"))
    assert stop > 30  # fastagi.shutdown_deadline's default: running calls may finish first
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["ivr"] and service["ReadWritePaths"] == ["/var/spool/ivr"]
    assert service["CapabilityBoundingSet"] == [""]
    credentials = {v.split(":")[0] for v in service["LoadCredential"]}
    assert credentials == {"ami-secret", "api-token"}
    assert "IVR_AMI_SECRET_FILE=%d/ami-secret" in service["Environment"]
    text = DOC.read_text()
    for promised in ("Type=notify", "TimeoutStopSec=45s", "ProtectSystem=strict", "LoadCredential=", "/var/spool/ivr"):
        assert promised in text, promised
    configparser.ConfigParser(strict=False, interpolation=None).read_string(UNIT.read_text())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # ExecStart must name an existing executable for verify; the rest of the unit is checked as shipped.
    text = UNIT.read_text().replace("/opt/ivr/.venv/bin/ivr", sys.executable)
    path = tmp_path / "ivr.service"
    path.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "ivr.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_two_instance_settings_of_the_page_load(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(# /etc/ivr/ivr.yaml on both instances\n.*?)```", DOC.read_text(), re.S)
    assert block is not None
    path = tmp_path / "config" / "ivr.yaml"
    path.parent.mkdir()
    path.write_text(block.group(1))
    settings = load_settings(path, env={"IVR_INSTANCE": "ivr-a", "IVR_AMI_SECRET": "x", "IVR_API_TOKEN": "t"})
    assert [(s.name, s.host, s.queues) for s in settings.ami.connections()] == [
        ("pbx1", "10.0.0.11", ["sales", "billing"]),
        ("pbx2", "10.0.0.12", ["support"]),
    ]
    assert settings.instance == "ivr-a" and settings.fastagi.allowed_peers == ["10.0.0.11/32", "10.0.0.12/32"]

"""`serve` as systemd and an admin run it: a taken port or an unwritable directory is refused with one line naming the
setting (exit status 2, no traceback); once serving it tells systemd READY=1 over $NOTIFY_SOCKET, names its
instance in /readyz, every log line and ivr_instance_info, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ivr import sdnotify

ROOT = Path(__file__).resolve().parents[2]


def write_settings(tmp_path: Path, *, http_port: int = 0, fastagi_port: int = 0, extra: str = "") -> Path:
    path = tmp_path / "config" / "ivr.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f"instance: ivr-test-a\nami: {{enabled: false}}\n"
        f"fastagi: {{host: 127.0.0.1, port: {fastagi_port}}}\nhttp: {{host: 127.0.0.1, port: {http_port}}}\n"
        f"flows_dir: {ROOT / 'config' / 'flows'}\nprompts_dir: {ROOT / 'recordings' / 'prompts'}\n"
        f"storage: {{url: 'memory:'}}\nrecordings_dir: {tmp_path / 'recordings'}\nreload: {{watch: false}}\n{extra}"
    )
    return path


def serve(settings: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "serve", "--config", str(settings)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivr: cannot start: "), result.stdout
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_http_port_is_refused_naming_the_setting(tmp_path: Path, taken_port: int) -> None:
    result = serve(write_settings(tmp_path, http_port=taken_port))
    assert_refused(result, f"http.port: 127.0.0.1:{taken_port} is in use", "IVR_HTTP_PORT")


def test_a_taken_fastagi_port_is_refused_naming_the_setting(tmp_path: Path, taken_port: int) -> None:
    result = serve(write_settings(tmp_path, fastagi_port=taken_port))
    assert_refused(result, f"fastagi.port: 127.0.0.1:{taken_port} is in use", "IVR_FASTAGI_PORT")


def test_a_directory_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    settings = write_settings(tmp_path, extra=f"storage: {{url: 'sqlite:///{tmp_path}/a-file/db/ivr.db'}}\n")
    settings.write_text(settings.read_text().replace("storage: {url: 'memory:'}\n", ""))
    result = serve(settings)
    assert_refused(result, "storage.url:", f"{tmp_path / 'a-file'} is not a directory", "IVR_STORAGE_URL")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any directory: run as a normal user to see this")
def test_an_unwritable_recordings_dir_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    settings = write_settings(tmp_path, extra="")
    settings.write_text(settings.read_text().replace(str(tmp_path / "recordings"), str(locked / "calls")))
    result = serve(settings)
    assert_refused(result, "recordings_dir:", "cannot be created", "IVR_RECORDINGS_DIR")


def test_ready_notification_instance_identity_and_sigterm(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "serve", "--config", str(write_settings(tmp_path))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
        )
        try:
            message = notify.recv(4096).decode()
            assert message.splitlines()[0] == "READY=1" and "ivr-test-a" in message
            assert proc.stdout is not None
            base = next(line.split()[2].rsplit("/", 1)[0] for line in proc.stdout if "HTTP API" in line)
            with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:
                ready = json.load(resp)
            assert ready["instance"] == "ivr-test-a" and ready["status"] == "ready"
            with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
            assert 'ivr_instance_info{instance="ivr-test-a",version="' in text
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert notify.recv(4096) == b"STOPPING=1"
    assert proc.returncode == 0, out + err
    log_lines = [line for line in err.splitlines() if " INFO " in line]
    assert log_lines and all("[ivr-test-a]" in line for line in log_lines), err


def test_notify_without_systemd_does_nothing_and_a_dead_socket_is_only_logged(tmp_path: Path) -> None:
    assert sdnotify.notify("READY=1", env={}) is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}) is False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0ivr-test-" + tmp_path.name)  # abstract namespace, written "@name" by systemd
        assert sdnotify.notify("STATUS=x", env={"NOTIFY_SOCKET": "@ivr-test-" + tmp_path.name}) is True
        assert sock.recv(64) == b"STATUS=x"

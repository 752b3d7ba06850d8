"""Service settings: file, environment overrides, located errors, secrets that never leak."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from ivr.settings import ENV_FILE, ENV_OVERRIDES, load_settings
from ivr.yamlsource import ConfigError

from .helpers import line_of

SECRET = "s3cr3t-Do-Not-Leak"


def write_settings(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "project" / "config"
    config.mkdir(parents=True, exist_ok=True)
    path = config / "ivr.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_of_an_empty_file(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, "{}\n"), env={})
    assert (settings.ami.port, settings.fastagi.host, settings.fastagi.port) == (5038, "0.0.0.0", 4573)
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.dial_template == "PJSIP/{extension}" and settings.dial_string("1001") == "PJSIP/1001"
    assert settings.queues.threshold("any") == 20.0
    assert settings.ami.secret is None and settings.http.token is None


def test_relative_paths_resolve_against_the_project_root(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        """\
        flows_dir: my/flows
        prompts_dir: /abs/prompts
        storage: {url: "sqlite:///var/ivr.db"}
        """,
    )
    settings = load_settings(path, env={})
    root = (tmp_path / "project").resolve()
    assert settings.root == root and settings.source == path.resolve()
    assert settings.flows_dir == root / "my" / "flows"
    assert settings.prompts_dir == Path("/abs/prompts")
    assert settings.recordings_dir == root / "recordings" / "calls"
    assert settings.storage.url == f"sqlite:///{root}/var/ivr.db"


def test_every_documented_environment_override(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "ami: {host: file-host, port: 5038}\n")
    values = {
        "IVR_AMI_HOST": "pbx.example",
        "IVR_AMI_PORT": "15038",
        "IVR_AMI_USERNAME": "svc",
        "IVR_AMI_ENABLED": "false",
        "IVR_FASTAGI_HOST": "127.0.0.1",
        "IVR_FASTAGI_PORT": "0",
        "IVR_FASTAGI_MAX_CONNECTIONS": "50",
        "IVR_HTTP_HOST": "0.0.0.0",
        "IVR_HTTP_PORT": "18080",
        "IVR_FLOWS_DIR": "/srv/flows",
        "IVR_PROMPTS_DIR": "/srv/prompts",
        "IVR_RECORDINGS_DIR": "/srv/rec",
        "IVR_STORAGE_URL": "memory:",
        "IVR_DIAL_TEMPLATE": "SIP/{extension}",
        "IVR_LOG_LEVEL": "debug",
        "IVR_FASTAGI_ALLOWED_PEERS": "10.0.0.5,::1/128",
        "IVR_INSTANCE": "ivr-b",
        "IVR_EVENT_LOOP": "asyncio",
    }
    assert set(values) == {o.variable for o in ENV_OVERRIDES} - {
        "IVR_AMI_SECRET_FILE",
        "IVR_API_TOKEN_FILE",
        "IVR_STORAGE_PASSWORD_FILE",
        "IVR_CALLER_HASH_KEY_FILE",
    }
    settings = load_settings(path, env=values)
    assert (settings.ami.host, settings.ami.port, settings.ami.username, settings.ami.enabled) == (
        "pbx.example",
        15038,
        "svc",
        False,
    )
    assert (settings.fastagi.host, settings.fastagi.port, settings.fastagi.max_connections) == ("127.0.0.1", 0, 50)
    assert settings.fastagi.allowed_peers == ["10.0.0.5/32", "::1/128"]
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 18080)
    assert settings.flows_dir == Path("/srv/flows") and settings.prompts_dir == Path("/srv/prompts")
    assert settings.recordings_dir == Path("/srv/rec") and settings.storage.url == "memory:"
    assert settings.dial_string("7") == "SIP/7" and settings.log_level == "debug"
    assert settings.instance == "ivr-b"
    assert settings.event_loop == "asyncio"


def test_file_errors_name_file_line_and_key(tmp_path: Path) -> None:
    text = "ami:\n  host: x\nfastagi:\n  prot: 4573\nhttp:\n  port: abc\nqueues:\n  service_level: 20x\n"
    path = write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    lines = [p.format() for p in info.value.problems]
    assert lines == [
        f"{path}:4:3: error: unknown key 'prot' (did you mean 'port'?)",
        f"{path}:6:9: error: http.port: expected a whole number, got 'abc' (write a whole number)",
        f"{path}:8:18: error: queues.service_level: '20x' is not a duration (write it like 5s, 500ms, 2m or 1h)",
    ]


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "{}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"IVR_FASTAGI_PORT": "four"})
    (problem,) = info.value.problems
    assert problem.file == ENV_FILE
    assert problem.message == "IVR_FASTAGI_PORT: fastagi.port: expected a whole number, got 'four'"


def test_port_range_and_dial_template_checks(tmp_path: Path) -> None:
    text = "http: {port: 70000}\ndial_template: PJSIP/{ext}\n"
    path = write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    lines = {p.line: p for p in info.value.problems}
    assert "less than or equal to 65535" in lines[1].message
    assert lines[2].hint == "write it like PJSIP/{extension}"


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.yaml", env={})
    assert info.value.problems[0].message == "file not found"


def test_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    text = f"ami:\n  host: x\n  secret: {SECRET}\n"
    path = write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    (problem,) = info.value.problems
    assert problem.line == line_of(text, "secret:")
    assert "secret_env or secret_file" in problem.hint
    assert SECRET not in str(info.value)


def test_secrets_from_environment_and_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami.secret"
    secret_file.write_text(f"{SECRET}\n")
    path = write_settings(tmp_path, f"ami: {{secret_file: {secret_file}}}\nhttp: {{token_env: MY_TOKEN}}\n")
    settings = load_settings(path, env={"MY_TOKEN": "tok-123", "IVR_AMI_SECRET": "ignored: the file wins"})
    assert settings.ami.secret is not None and settings.ami.secret.get_secret_value() == SECRET
    assert settings.http.token is not None and settings.http.token.get_secret_value() == "tok-123"
    default_env = load_settings(write_settings(tmp_path, "{}\n"), env={"IVR_AMI_SECRET": SECRET, "IVR_API_TOKEN": "t"})
    assert default_env.ami.secret.get_secret_value() == SECRET


def test_unreadable_secret_file_is_located(tmp_path: Path) -> None:
    text = "ami:\n  secret_file: missing.secret\n"
    path = write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(path), 2)
    assert "cannot read the secret file" in problem.message


def test_secrets_never_in_repr_dump_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_settings(tmp_path, "{}\n")
    settings = load_settings(path, env={"IVR_AMI_SECRET": SECRET, "IVR_API_TOKEN": SECRET})
    logging.getLogger("test").warning("settings: %r %s %s", settings, settings, settings.ami)
    for text in (
        repr(settings),
        str(settings),
        repr(settings.ami),
        settings.model_dump_json(),
        caplog.text,
        str(settings.model_dump()),
    ):
        assert SECRET not in text
    assert "**********" in repr(settings.ami)


def test_caller_hash_key_from_a_file_or_the_environment_never_from_yaml(tmp_path: Path) -> None:
    key = "k" * 32
    key_file = tmp_path / "caller.key"
    key_file.write_text(f"{key}\n")
    text = f"repeat_callers:\n  key_file: {key_file}\n  windows: {{1d: 24h, 30d: 720h}}\n  retention: 721h\n"
    settings = load_settings(write_settings(tmp_path, text), env={"IVR_CALLER_HASH_KEY": "ignored: the file wins"})
    rc = settings.repeat_callers
    assert rc.key is not None and rc.key.get_secret_value() == key
    assert rc.windows == {"1d": 86400.0, "30d": 2592000.0} and key not in repr(settings)
    from_env = load_settings(write_settings(tmp_path, "{}\n"), env={"IVR_CALLER_HASH_KEY": key})
    assert from_env.repeat_callers.key is not None and from_env.repeat_callers.windows == {
        "24h": 86400.0,
        "7d": 604800.0,
    }
    assert load_settings(write_settings(tmp_path, "{}\n"), env={}).repeat_callers.key is None  # off without a key
    for bad, words in (
        (f"repeat_callers:\n  key: {key}\n", "repeat_callers.key must not be written in the file"),
        ("repeat_callers:\n  windows: {7d: 168h}\n  retention: 24h\n", "retention must be at least"),
        ("repeat_callers:\n  windows: {'a b': 1h}\n", "window label"),
    ):
        with pytest.raises(ConfigError) as info:
            load_settings(write_settings(tmp_path, bad), env={})
        assert words in str(info.value) and key not in str(info.value), bad
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_settings(write_settings(tmp_path, "{}\n"), env={"IVR_CALLER_HASH_KEY": "short"})


def test_campaign_settings_errors_are_located(tmp_path: Path) -> None:
    text = "campaigns:\n  interval: 2s\n  names: [renewals, 'bad name']\n  max_rows: 0\n  pacing: 2\n"
    path = write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    found = {p.line: p.message for p in info.value.problems}
    assert "'bad name' is not a campaign name" in found[3]
    assert "greater than or equal to 1" in found[4]
    assert "unknown key 'pacing'" in found[5]
    # a lease of 0 would spin the renewals and let another instance dial a contact still ringing
    path = write_settings(tmp_path, "campaigns:\n  lease: 0s\n  interval: 100ms\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    found = {p.line: p.message for p in info.value.problems}
    assert "greater than or equal to 10" in found[2] and "greater than or equal to 0.5" in found[3]
    ok = load_settings(write_settings(tmp_path, "campaigns: {names: [renewals], interval: 2s}\n"), env={})
    assert (ok.campaigns.names, ok.campaigns.interval, ok.campaigns.enabled) == (["renewals"], 2.0, True)

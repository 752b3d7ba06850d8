"""Settings for several Asterisk servers (`ami.servers`) and the instance name: inheritance, secrets per server,
located errors for duplicates and bad names."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from ivr.settings import default_instance, load_settings
from ivr.yamlsource import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    path = config / "ivr.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def errors(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    return [p.format() for p in info.value.problems]


def test_single_server_form_is_one_server_named_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "ami: {host: pbx.example, port: 5039}\n"), env={"IVR_AMI_SECRET": "s"})
    (server,) = settings.ami.connections()
    assert (server.name, server.host, server.port, server.secret.get_secret_value()) == (
        "default",
        "pbx.example",
        5039,
        "s",
    )


def test_servers_inherit_shared_keys_and_read_their_own_secrets(tmp_path: Path) -> None:
    (tmp_path / "pbx2.secret").write_text("s3cret-two\n")
    path = write(
        tmp_path,
        """\
        ami:
          username: svc
          ping_interval: 7s
          servers:
            - {name: pbx1, host: 10.0.0.11, queues: [sales]}
            - {name: pbx2, host: 10.0.0.12, username: other, secret_file: pbx2.secret, queues: [support]}
        """,
    )
    settings = load_settings(path, env={"IVR_AMI_SECRET": "s3cret-one"})
    one, two = settings.ami.connections()
    assert (one.name, one.host, one.username, one.ping_interval) == ("pbx1", "10.0.0.11", "svc", 7.0)
    assert one.queues == ["sales"]
    assert (two.name, two.username, two.ping_interval, two.queues) == ("pbx2", "other", 7.0, ["support"])
    assert one.secret.get_secret_value() == "s3cret-one" and two.secret.get_secret_value() == "s3cret-two"
    assert "s3cret" not in repr(settings)


def test_duplicate_names_addresses_and_queue_homes_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        ami:
          servers:
            - name: pbx1
              host: 10.0.0.11
              queues: [sales]
            - name: pbx1
              host: 10.0.0.12
            - name: pbx3
              host: 10.0.0.11
              queues: [sales]
        """,
    )
    assert errors(path) == [
        f"{path}:6:7: error: ami.servers: the name 'pbx1' is used twice (entries 1 and 2) (give every Asterisk "
        "server its own name (it tags its calls and metrics: pbx1, pbx2, ...))",
        f"{path}:9:7: error: ami.servers: 'pbx3' connects to 10.0.0.11:5038 like 'pbx1' (list each Asterisk server "
        "once; two connections to one server would show every call twice)",
        f"{path}:10:7: error: ami.servers: queue 'sales' is listed by 'pbx1' and 'pbx3' (a queue has one home "
        "server: list it under one server only)",
    ]


def test_bad_names_and_secrets_in_the_file_are_refused_at_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        ami:
          servers:
            - name: PBX-1
              host: a
            - name: pbx2
              host: b
              secret: hunter2
        instance: "bad name"
        """,
    )
    problems = errors(path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:7:7: error: ami.servers[].secret must not be written")
    path.write_text(path.read_text().replace("      secret: hunter2\n", ""))
    problems = errors(path)
    assert problems[0].startswith(f"{path}:3:13: error: ami.servers.0.name: 'PBX-1'"), problems
    assert problems[1].startswith(f"{path}:7:11: error: instance: 'bad name'"), problems


def test_instance_defaults_to_the_host_name(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "log_level: info\n"), env={})
    assert settings.instance == default_instance()
    assert settings.instance.split("-")[0] in socket.gethostname().replace(".", "-")


def test_environment_overrides_set_the_shared_defaults_of_the_servers(tmp_path: Path) -> None:
    path = write(tmp_path, "ami:\n  servers:\n    - {name: pbx1, host: 10.0.0.1}\n    - {name: pbx2}\n")
    settings = load_settings(path, env={"IVR_AMI_HOST": "pbx.example", "IVR_AMI_USERNAME": "svc"})
    assert [(s.name, s.host, s.username) for s in settings.ami.connections()] == [
        ("pbx1", "10.0.0.1", "svc"),
        ("pbx2", "pbx.example", "svc"),
    ]

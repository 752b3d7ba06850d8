"""Storage settings: the PostgreSQL password comes from the environment or a file, never from the YAML."""

from __future__ import annotations

import pytest

from ivr.settings import load_settings
from ivr.yamlsource import ConfigError


def write(tmp_path, text: str):
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / "ivr.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_password_in_the_url_is_a_located_error(tmp_path):
    path = write(tmp_path, "log_level: info\nstorage:\n  url: postgresql://ivr:hunter2@db:5432/ivr\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    text = str(caught.value)
    assert f"{path}:3:3" in text and "storage.url must not contain a password" in text
    assert "IVR_STORAGE_PASSWORD" in text and "password_file" in text
    assert "hunter2" not in text


def test_password_key_in_the_file_is_an_error(tmp_path):
    path = write(tmp_path, "storage:\n  url: postgresql://ivr@db/ivr\n  password: hunter2\n")
    with pytest.raises(ConfigError, match="storage.password must not be written in the file"):
        load_settings(path, env={})


def test_password_in_the_environment_url_is_refused(tmp_path):
    path = write(tmp_path, "storage:\n  url: postgresql://ivr@db/ivr\n")
    with pytest.raises(ConfigError, match="environment: error: IVR_STORAGE_URL"):
        load_settings(path, env={"IVR_STORAGE_URL": "postgresql://ivr:x@db/ivr"})


def test_password_from_env_or_file(tmp_path):
    path = write(tmp_path, "storage:\n  url: postgresql://ivr@db.example.com:5432/ivr\n  pool_max: 4\n")
    settings = load_settings(path, env={"IVR_STORAGE_PASSWORD": "from-env"})
    options = settings.storage.open_options()
    assert options["password"] == "from-env" and options["max_size"] == 4
    assert "from-env" not in repr(settings)
    (tmp_path / "pw").write_text("from-file\n", encoding="utf-8")
    path = write(tmp_path, "storage:\n  url: postgresql://ivr@db/ivr\n  password_file: pw\n")
    settings = load_settings(path, env={"IVR_STORAGE_PASSWORD": "from-env"})
    assert settings.storage.open_options()["password"] == "from-file"  # the file wins


def test_sqlite_default_needs_no_options(tmp_path):
    settings = load_settings(write(tmp_path, "log_level: info\n"), env={})
    assert settings.storage.url == f"sqlite:///{tmp_path}/var/ivr.db"
    assert settings.storage.open_options() == {}

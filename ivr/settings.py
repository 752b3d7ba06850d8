"""Service settings: `config/ivr.yaml`, then environment variables on top.

Rules for this file:
- One typed model (`Settings`); every sub-model forbids unknown keys, so a typo is an error with a "did you mean"
  hint and the file:line of the key, never a silent default.
- Secrets (AMI secret, API token) never sit in the YAML file: it names an environment variable or a file holding
  them. They are `SecretStr`, so repr(), logs and error messages show `**********`.
- Relative paths resolve against the project root = the parent of the directory holding the settings file
  (config/ivr.yaml -> the directory above config/). Without a file, against the working directory.
- `ENV_OVERRIDES` is the complete list of environment variables read here (docs/configuration.md shows it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from ivr.flow.model import Duration
from ivr.yamlsource import ConfigError, PositionMap, Problem, load_yaml, problems_from_validation

DEFAULT_FILE = Path("config") / "ivr.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


Port = int  # validated by Field(ge=0, le=65535) where used (0 = pick a free port, for tests)


class AMISettings(_Section):
    """The Asterisk Manager Interface connection (for call control, queues, parking, events)."""

    enabled: bool = Field(True, description="Set false to run without AMI (no live call control or queue stats).")
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=0, le=65535)
    username: str = "ivr"
    secret_env: str | None = Field("IVR_AMI_SECRET", description="Environment variable holding the secret.")
    secret_file: str | None = Field(None, description="File holding the secret (first line); wins over secret_env.")
    secret: SecretStr | None = Field(None, exclude=True, description="Resolved at load time; never in the file.")
    connect_timeout: Duration = 5.0
    action_timeout: Duration = 10.0
    ping_interval: Duration = 20.0
    ping_timeout: Duration = 5.0
    backoff_min: Duration = 0.5
    backoff_max: Duration = 30.0
    login_failure_backoff: Duration = 60.0
    auth: Literal["md5", "plain"] = Field(
        "md5", description="md5: challenge-response, the secret never crosses the network; plain: Secret header.")


class FastAGISettings(_Section):
    """Where Asterisk hands calls to the service (`AGI(agi://host:4573/<flow>)`)."""

    host: str = "0.0.0.0"
    port: int = Field(4573, ge=0, le=65535)
    max_connections: int = Field(2000, ge=1, description="Connections beyond this are refused (closed at once).")
    header_timeout: Duration = Field(5.0, description="Time allowed for Asterisk to send the AGI environment.")
    command_timeout: Duration = Field(
        30.0, description="Longest wait for an AGI reply, on top of the wait a command asks for (GET DATA's "
        "time-out, ...); a stalled Asterisk cannot hold a call longer. 0 = no limit.",
    )
    shutdown_deadline: Duration = Field(30.0, description="On stop, how long running calls may finish.")


class HTTPSettings(_Section):
    """The HTTP API, /metrics, /healthz and /readyz."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token_env: str | None = Field("IVR_API_TOKEN", description="Environment variable holding the API bearer token.")
    token_file: str | None = Field(None, description="File holding the token (first line); wins over token_env.")
    token: SecretStr | None = Field(None, exclude=True, description="Resolved at load time; never in the file.")


class StorageSettings(_Section):
    url: str = Field("sqlite:///var/ivr.db", description="sqlite:///relative/path, sqlite:////absolute/path, "
                     "or memory: (tests).")


class QueueSettings(_Section):
    """Service level: the share of calls answered within a threshold."""

    service_level: Duration = Field(20.0, description="Default threshold.")
    overrides: dict[str, Duration] = Field(default_factory=dict, description="Queue name -> threshold.")

    def threshold(self, queue: str) -> float:
        return self.overrides.get(queue, self.service_level)


class LookupSettings(_Section):
    """CRM/webhook lookups made by `lookup` nodes."""

    timeout: Duration = Field(3.0, description="Scale of lookup time-outs: a node's own `timeout` is capped at three "
                              "times this, so one flow edit cannot hold calls for minutes.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="If not empty, lookups may only go to these host names (exact match, "
        "case-insensitive)."
    )
    max_response_bytes: int = Field(1_000_000, ge=1024)


class ReloadSettings(_Section):
    watch: bool = Field(True, description="Reload flows when their files change (polling).")
    interval: Duration = Field(2.0, description="How often the flow files are checked for changes.")


class CallbackSettings(_Section):
    """The outbound callback scheduler."""

    enabled: bool = True
    flow: str = Field("callback", description="Flow an answered callback runs (what the customer hears first).")
    interval: Duration = Field(30.0, description="How often due callbacks are looked for.")
    max_attempts: int = Field(3, ge=1)
    retry_after: Duration = Field(600.0, description="Wait between attempts.")


class Settings(_Section):
    """Everything the service needs besides the flows themselves."""

    ami: AMISettings = Field(default_factory=AMISettings)
    fastagi: FastAGISettings = Field(default_factory=FastAGISettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    flows_dir: Path = Field(Path("config/flows"), description="Directory of flow files.")
    prompts_dir: Path = Field(Path("recordings/prompts"), description="Prompt sound files (<lang>/<id>.wav).")
    asterisk_prompts_dir: str | None = Field(
        None, description="The prompts directory as Asterisk sees it, if it runs on another host or container; "
        "default: prompts_dir.")
    recordings_dir: Path = Field(Path("recordings/calls"), description="Call recordings and voicemail.")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    dial_template: str = Field("PJSIP/{extension}", description="How a transfer to an extension is dialled.")
    queues: QueueSettings = Field(default_factory=QueueSettings)
    lookups: LookupSettings = Field(default_factory=LookupSettings)
    reload: ReloadSettings = Field(default_factory=ReloadSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Where the settings came from (filled by load_settings; not settable in the file).
    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def root(self) -> Path:
        """The project root relative paths were resolved against."""
        return self._root

    @property
    def source(self) -> Path | None:
        """The settings file read, if any."""
        return self._source

    @field_validator("dial_template")
    @classmethod
    def _check_dial_template(cls, template: str) -> str:
        if "{extension}" not in template:
            raise ValueError(f"{template!r} has no {{extension}}; write it like PJSIP/{{extension}}")
        try:
            template.format(extension="1001")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"{template!r} has a placeholder other than {{extension}}; "
                             "use only {extension}, e.g. PJSIP/{extension}") from None
        return template

    def dial_string(self, extension: str) -> str:
        return self.dial_template.format(extension=extension)


@dataclass(frozen=True)
class EnvOverride:
    variable: str
    path: tuple[str, ...]
    description: str


ENV_OVERRIDES: tuple[EnvOverride, ...] = (
    EnvOverride("IVR_AMI_HOST", ("ami", "host"), "AMI host"),
    EnvOverride("IVR_AMI_PORT", ("ami", "port"), "AMI port"),
    EnvOverride("IVR_AMI_USERNAME", ("ami", "username"), "AMI user name"),
    EnvOverride("IVR_AMI_SECRET_FILE", ("ami", "secret_file"), "file holding the AMI secret"),
    EnvOverride("IVR_AMI_ENABLED", ("ami", "enabled"), "true/false: use AMI at all"),
    EnvOverride("IVR_FASTAGI_HOST", ("fastagi", "host"), "FastAGI listen address"),
    EnvOverride("IVR_FASTAGI_PORT", ("fastagi", "port"), "FastAGI listen port"),
    EnvOverride("IVR_FASTAGI_MAX_CONNECTIONS", ("fastagi", "max_connections"), "FastAGI connection cap"),
    EnvOverride("IVR_HTTP_HOST", ("http", "host"), "HTTP API listen address"),
    EnvOverride("IVR_HTTP_PORT", ("http", "port"), "HTTP API listen port"),
    EnvOverride("IVR_API_TOKEN_FILE", ("http", "token_file"), "file holding the API token"),
    EnvOverride("IVR_FLOWS_DIR", ("flows_dir",), "flows directory"),
    EnvOverride("IVR_PROMPTS_DIR", ("prompts_dir",), "prompts directory"),
    EnvOverride("IVR_RECORDINGS_DIR", ("recordings_dir",), "recordings directory"),
    EnvOverride("IVR_STORAGE_URL", ("storage", "url"), "storage URL"),
    EnvOverride("IVR_DIAL_TEMPLATE", ("dial_template",), "dial string template"),
    EnvOverride("IVR_LOG_LEVEL", ("log_level",), "debug, info, warning or error"),
)
# Read directly as secrets (the names can be changed with ami.secret_env / http.token_env).
SECRET_ENV = {"ami": "IVR_AMI_SECRET", "http": "IVR_API_TOKEN"}
CONFIG_ENV = "IVR_CONFIG"  # settings file path when none is given on the command line
ENV_FILE = "environment"  # the `file` of problems caused by an environment variable


def default_settings_path(env: Mapping[str, str] | None = None) -> Path | None:
    """IVR_CONFIG, else config/ivr.yaml in the working directory, else beside this package (a source checkout)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    for candidate in (Path.cwd() / DEFAULT_FILE, Path(__file__).resolve().parent.parent / DEFAULT_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file (see `default_settings_path`) and apply environment overrides.

    Raises `ConfigError` naming the file, line and key (or the environment variable) of every problem."""
    env = os.environ if env is None else env
    file = Path(path) if path is not None else default_settings_path(env)
    if file is not None:
        doc = load_yaml(file)
        data = doc.data if doc.data is not None else {}
        positions = doc.positions
        if not isinstance(data, dict):
            raise ConfigError([Problem(doc.file, 1, 1, "the settings file must be a mapping (key: value lines)",
                                       "start from config/ivr.yaml in the source tree")])
        root = file.resolve().parent.parent
    else:
        data, positions, root = {}, PositionMap("(defaults)"), Path.cwd()
    problems: list[Problem] = []
    for section in ("ami", "http"):
        if isinstance(data.get(section), dict) and any(k in data[section] for k in ("secret", "token")):
            key = "secret" if "secret" in data[section] else "token"
            problems.append(positions.problem((section, key), f"{section}.{key} must not be written in the file",
                                              f"put it in an environment variable or a file and name that with "
                                              f"{key}_env or {key}_file"))
    data = _without_secrets(data)
    from_env: dict[tuple[str, ...], str] = {}
    for override in ENV_OVERRIDES:
        if override.variable in env:
            _set_path(data, override.path, env[override.variable])
            from_env[override.path] = override.variable
    if problems:
        raise ConfigError(problems)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_locate_env(problems_from_validation(exc, Settings, positions, data=data), from_env)) from None

    settings = _resolve_paths(settings, root)
    settings._source = file.resolve() if file is not None else None
    settings.ami.secret = _read_secret(settings.ami.secret_file, settings.ami.secret_env, SECRET_ENV["ami"], env,
                                       root, positions, ("ami", "secret_file"))
    settings.http.token = _read_secret(settings.http.token_file, settings.http.token_env, SECRET_ENV["http"], env,
                                       root, positions, ("http", "token_file"))
    return settings


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for section, key in (("ami", "secret"), ("http", "token")):
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _locate_env(problems: list[Problem], from_env: dict[tuple[str, ...], str]) -> list[Problem]:
    """Problems caused by an environment value name the variable instead of a file line."""
    out = []
    for problem in problems:
        variable = next((v for p, v in from_env.items() if problem.path[: len(p)] == p), None)
        if variable:
            out.append(Problem(ENV_FILE, 0, 0, f"{variable}: {problem.message}", problem.hint, "error", problem.code,
                               problem.path))
        else:
            out.append(problem)
    return out


def _resolve_paths(settings: Settings, root: Path) -> Settings:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (root / p)

    settings._root = root
    settings.flows_dir = resolve(settings.flows_dir)
    settings.prompts_dir = resolve(settings.prompts_dir)
    settings.recordings_dir = resolve(settings.recordings_dir)
    url = settings.storage.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # sqlite:///var/ivr.db is relative (SQLAlchemy convention); make it absolute against the project root.
        settings.storage.url = "sqlite:///" + str(root / url[len("sqlite:///"):])
    return settings


def _read_secret(file_name: str | None, env_name: str | None, default_env: str, env: Mapping[str, str], root: Path,
                 positions: PositionMap, where: tuple[str, ...]) -> SecretStr | None:
    """File first (Docker/Kubernetes secrets), then the named variable, then the default variable."""
    if file_name:
        path = Path(file_name)
        path = path if path.is_absolute() else root / path
        try:
            first = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            mark = positions.value(where)
            raise ConfigError([Problem(positions.file if where in positions else ENV_FILE,
                                       mark.line if where in positions else 0, mark.column if where in positions else 0,
                                       f"cannot read the secret file {path}: {exc.strerror}",
                                       "create it (one line, the secret) and make it readable by the service",
                                       code="secret")]) from None
        return SecretStr(first[0].strip()) if first else SecretStr("")
    for name in (env_name, default_env):
        if name and env.get(name):
            return SecretStr(env[name])
    return None

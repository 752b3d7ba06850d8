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
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ivr import telephony
from ivr.settings_file import CONFIG_ENV as CONFIG_ENV  # re-exported: where the settings file is
from ivr.settings_file import DEFAULT_FILE as DEFAULT_FILE
from ivr.settings_file import default_settings_path as default_settings_path
from ivr.units import Duration
from ivr.yamlsource import ConfigError, PositionMap, Problem, load_yaml, problems_from_validation

_SPY_OPTIONS: dict[Literal["listen", "whisper", "barge"], str] = {"listen": "qE", "whisper": "qwE", "barge": "qBE"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


Port = int  # validated by Field(ge=0, le=65535) where used (0 = pick a free port, for tests)


PBX_NAME = telephony.PBX_NAME_PATTERN  # a metric label and the prefix of call ids (docs/configuration.md)
INSTANCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # a metric label and a log field


class AMIServerSettings(_Section):
    """One Asterisk server's Manager Interface connection (for call control, queues, parking, events)."""

    name: str = Field(
        "default",
        pattern=PBX_NAME,
        description="The server's name: the `pbx` of its calls and metrics, the prefix of its call ids when there "
        "are several servers. Lower-case letters, digits and _.",
    )
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
        "md5", description="md5: challenge-response, the secret never crosses the network; plain: Secret header."
    )
    queues: list[str] = Field(
        default_factory=list,
        description="Queues this server hosts (several servers only): callbacks and API calls for them are "
        "originated here, and their statistics come from here.",
    )


# Keys of `ami:` that are not connection settings, so `servers` entries do not inherit them.
_AMI_OWN_KEYS = frozenset({"enabled", "servers", "name", "queues", "secret"})


class AMISettings(AMIServerSettings):
    """`ami:`: one server (the keys of `AMIServerSettings`), or several under `servers:`, each of which inherits the
    connection keys written beside `servers:` (username, timeouts, ...) unless it sets its own."""

    enabled: bool = Field(True, description="Set false to run without AMI (no live call control or queue stats).")
    servers: list[AMIServerSettings] = Field(
        default_factory=list,
        description="Several Asterisk servers: a list of named connections (name, host, port, secret_env, "
        "queues, ...). Empty: the single server described by the keys above.",
    )

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
            return data
        shared = {k: v for k, v in data.items() if k not in _AMI_OWN_KEYS}
        servers = [{**shared, **entry} if isinstance(entry, dict) else entry for entry in data["servers"]]
        return {**data, "servers": servers}

    def connections(self) -> list[AMIServerSettings]:
        """The servers to connect to, in preference order (one for the single-server form)."""
        if self.servers:
            return list(self.servers)
        fields = {name: getattr(self, name) for name in AMIServerSettings.model_fields}
        return [AMIServerSettings.model_construct(**fields)]


class FastAGISettings(_Section):
    """Where Asterisk hands calls to the service (`AGI(agi://host:4573/<flow>)`)."""

    host: str = "0.0.0.0"
    port: int = Field(4573, ge=0, le=65535)
    max_connections: int = Field(2000, ge=1, description="Connections beyond this are refused (closed at once).")
    header_timeout: Duration = Field(5.0, description="Time allowed for Asterisk to send the AGI environment.")
    command_timeout: Duration = Field(
        30.0,
        description="Longest wait for an AGI reply, on top of the wait a command asks for (GET DATA's "
        "time-out, ...); a stalled Asterisk cannot hold a call longer. 0 = no limit.",
    )
    shutdown_deadline: Duration = Field(30.0, description="On stop, how long running calls may finish.")
    allowed_peers: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Addresses or CIDR ranges allowed to connect (the Asterisk servers); anyone else is closed at "
        "once, before the AGI environment is read. Default: loopback only.",
    )
    exec_timeout: Duration = Field(
        4 * 3600.0,
        description="Longest EXEC (Dial, Queue, Park, MusicOnHold) before the session is closed as "
        "broken and the call leaves the service. 0 = no limit.",
    )

    @field_validator("allowed_peers", mode="before")
    @classmethod
    def _split_peers(cls, value: Any) -> Any:
        if isinstance(value, str):  # IVR_FASTAGI_ALLOWED_PEERS="10.0.0.5, 10.0.1.0/24"
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_peers")
    @classmethod
    def _check_peers(cls, peers: list[str]) -> list[str]:
        from ivr.agi.peers import parse_networks  # ValueError names the bad entry

        return [str(network) for network in parse_networks(peers)]


class HTTPSettings(_Section):
    """The HTTP API, /metrics, /healthz and /readyz."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token_env: str | None = Field("IVR_API_TOKEN", description="Environment variable holding the API bearer token.")
    token_file: str | None = Field(None, description="File holding the token (first line); wins over token_env.")
    token: SecretStr | None = Field(None, exclude=True, description="Resolved at load time; never in the file.")


class StorageSettings(_Section):
    """Durable data. SQLite (embedded, the default) or PostgreSQL (several instances on one database)."""

    url: str = Field(
        "sqlite:///var/ivr.db",
        description="sqlite:///relative/path, sqlite:////absolute/path, postgresql://user@host:5432/dbname "
        "(no password here), or memory: (tests).",
    )
    password_env: str | None = Field(
        "IVR_STORAGE_PASSWORD", description="Environment variable holding the PostgreSQL password."
    )
    password_file: str | None = Field(
        None, description="File holding the PostgreSQL password (first line); wins over password_env."
    )
    password: SecretStr | None = Field(None, exclude=True, description="Resolved at load time; never in the file.")
    pool_min: int = Field(1, ge=0, le=100, description="PostgreSQL connections kept open.")
    pool_max: int = Field(10, ge=1, le=200, description="Most PostgreSQL connections at once.")
    connect_timeout: Duration = Field(5.0, description="Longest wait for a PostgreSQL connection.")
    command_timeout: Duration = Field(10.0, description="Longest PostgreSQL statement.")
    backoff_min: Duration = Field(0.5, description="First wait before reconnecting to a lost PostgreSQL.")
    backoff_max: Duration = Field(30.0, description="Longest wait between reconnect attempts.")

    def open_options(self) -> dict[str, Any]:
        """Keyword arguments of `ivr.storage.open_storage` for this URL."""
        if not self.url.startswith(("postgresql:", "postgres:")):
            return {}
        return {
            "password": self.password.get_secret_value() if self.password else None,
            "min_size": self.pool_min,
            "max_size": max(self.pool_max, self.pool_min, 1),
            "connect_timeout": self.connect_timeout,
            "command_timeout": self.command_timeout,
            "backoff_min": self.backoff_min,
            "backoff_max": self.backoff_max,
        }


class QueueSettings(_Section):
    """Service level: the share of calls answered within a threshold."""

    service_level: Duration = Field(20.0, description="Default threshold.")
    overrides: dict[str, Duration] = Field(default_factory=dict, description="Queue name -> threshold.")

    def threshold(self, queue: str) -> float:
        return self.overrides.get(queue, self.service_level)


class LookupSettings(_Section):
    """CRM/webhook lookups made by `lookup` nodes."""

    timeout: Duration = Field(
        3.0,
        description="Scale of lookup time-outs: a node's own `timeout` is capped at three "
        "times this, so one flow edit cannot hold calls for minutes.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="If not empty, lookups may only go to these host names (exact match, case-insensitive).",
    )
    max_response_bytes: int = Field(1_000_000, ge=1024)


class ReloadSettings(_Section):
    watch: bool = Field(True, description="Reload flows when their files change (polling).")
    interval: Duration = Field(2.0, description="How often the flow files are checked for changes.")


DEFAULT_NUMBER_PATTERN = r"^\+?[1-9][0-9]{6,14}$"


class CallbackSettings(_Section):
    """The outbound callback scheduler, and which numbers the service may call out to at all."""

    enabled: bool = True
    flow: str = Field(
        "callback",
        pattern=r"^[A-Za-z0-9_\-]{1,64}$",
        description="Flow an answered callback runs when the request names none (API requests "
        "without `flow`, flows' callback nodes).",
    )
    interval: Duration = Field(30.0, description="How often due callbacks are looked for.")
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Attempts per request when the request names none; requests asking for more are capped to this.",
    )
    retry_after: Duration = Field(600.0, description="Wait between attempts.")
    per_queue_limit: int = Field(
        1, ge=1, le=1000, description="Callbacks ringing at once per queue, counted across every service instance."
    )
    queue_limits: dict[str, int] = Field(default_factory=dict, description="Queue name -> its own limit.")
    lease: Duration = Field(
        60.0,
        description="How long a request being dialled stays leased to its instance without renewal (renewed "
        "every third of it); an instance that dies loses its leases after this and another takes them over.",
    )
    number_pattern: str = Field(
        DEFAULT_NUMBER_PATTERN,
        description="Regular expression a callback or outbound number must fully match "
        "(click-to-call, calls into a flow, callbacks). Keep it to your own country's geographic and mobile "
        "numbers: it is what stops premium-rate and international fraud through the API.",
    )

    @field_validator("number_pattern")
    @classmethod
    def _check_number_pattern(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"{pattern!r} is not a regular expression ({exc}); write it like "
                r"^(\+370|8)[0-9]{8}$"
            ) from None
        return pattern


class CampaignsSettings(_Section):
    """Outbound campaigns (created through the API, kept in the storage): the dialer and the CSV upload limits.
    Numbers are checked against callbacks.number_pattern."""

    enabled: bool = Field(True, description="Run the campaign dialer (campaigns can be managed either way).")
    interval: Duration = Field(
        5.0, ge=0.5, description="How often running campaigns are looked at for contacts to dial (at least 0.5 s)."
    )
    lease: Duration = Field(
        60.0,
        ge=10,
        description="How long a contact being dialled stays leased to its instance without renewal; an instance "
        "that dies loses its leases after this and another takes its contacts over. At least 10 s: a shorter "
        "lease could lapse while the phone rings and let another instance dial the same contact.",
    )
    names: list[str] = Field(
        default_factory=list,
        description="Campaigns with their own metric series (label `campaign`); any other campaign counts as "
        '"other". At most 50.',
    )
    max_upload_bytes: int = Field(
        5_000_000, ge=1000, le=100_000_000, description="Largest contact or do-not-call CSV file accepted."
    )
    max_rows: int = Field(50_000, ge=1, le=1_000_000, description="Most rows per uploaded CSV file.")

    @field_validator("names")
    @classmethod
    def _check_names(cls, names: list[str]) -> list[str]:
        if len(names) > 50:
            raise ValueError("at most 50 names (each is a series per metric)")
        for name in names:
            if not re.fullmatch(telephony.QUEUE_RE.pattern, name):
                raise ValueError(f"{name[:40]!r} is not a campaign name; use letters, digits, _ and - (at most 64)")
        return names


class RepeatCallerSettings(_Section):
    """First-contact resolution (proxy): calls followed by another call from the same caller within a window.
    Callers are recognised by an HMAC-SHA256 of the caller ID under a secret key; without a key this is off."""

    enabled: bool = Field(True, description="Count repeat callers when a hash key is configured.")
    key_env: str | None = Field(
        "IVR_CALLER_HASH_KEY", description="Environment variable holding the caller hash key (at least 16 bytes)."
    )
    key_file: str | None = Field(None, description="File holding the key (first line); wins over key_env.")
    key: SecretStr | None = Field(None, exclude=True, description="Resolved at load time; never in the file.")
    windows: dict[str, Duration] = Field(
        default_factory=lambda: {"24h": 86400.0, "7d": 604800.0},
        description="Window label (the metric's `window`) -> duration, e.g. {24h: 24h, 7d: 168h}.",
    )
    retention: Duration = Field(
        8 * 86400.0, description="How long caller hashes are kept (at least the longest window); older are purged."
    )
    min_digits: int = Field(
        6, ge=1, le=32, description="Shorter caller IDs (internal extensions) are left out, like withheld ones."
    )

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, windows: dict[str, float]) -> dict[str, float]:
        if len(windows) > 5:
            raise ValueError("at most 5 windows (each is a metric series per flow and queue)")
        for label, seconds in windows.items():
            if not re.fullmatch(r"[0-9A-Za-z_]{1,16}", label):
                raise ValueError(f"window label {label!r}: use letters, digits and _ (at most 16), like 24h or 7d")
            if seconds <= 0:
                raise ValueError(f"window {label!r} must be longer than 0")
        return windows

    @model_validator(mode="after")
    def _retention_covers_windows(self) -> RepeatCallerSettings:
        if self.windows and self.retention < max(self.windows.values()):
            raise ValueError("retention must be at least the longest window")
        return self


class CallSettings(_Section):
    """Call control (the HTTP API and callbacks): where calls are sent in the dialplan, parking, hold, spying,
    recordings. Defaults match dialplans/extensions_ivr.conf and a stock res_parking.conf."""

    outbound_context: str = Field(
        "from-internal",
        description="Click-to-call: after the agent answers, the agent leg runs <customer number>@this context.",
    )
    customer_dial: str = Field(
        "Local/{number}@ivr-dial-out",
        description="Dial string of the customer leg of callbacks and calls into a flow ({number} only).",
    )
    flow_context: str = Field(
        "ivr-outbound", description="Answered outbound calls and transfers to a flow run <flow>@this context."
    )
    extension_context: str = Field("from-internal", description="Transfers to an extension go to <ext>@this.")
    queue_context: str = Field("ivr-queue", description="Transfers to a queue go to <queue>@this.")
    hold_context: str = Field("ivr-hold", description="The held party runs s@this (music on hold).")
    hold_wait_context: str = Field("ivr-hold-wait", description="Its partner waits in s@this until resumed.")
    moh_class: str = Field("default", description="Music on hold class when a hold request names none.")
    parking_lots: dict[str, str] = Field(
        default_factory=lambda: {"default": "parkedcalls"},
        description="Parking lots the API may use: name -> context of its spaces.",
    )
    park_timeout: Duration = Field(45.0, description="Parked calls come back after this unless a request says.")
    spy_options: dict[Literal["listen", "whisper", "barge"], str] = Field(
        default_factory=lambda: dict(_SPY_OPTIONS),
        description="ChanSpy options per supervisor mode.",
    )
    recording_template: str = Field(
        "${date}-${call}-${caller}",
        description="Recording file name (without "
        "extension): ${date} ${time} ${call} ${caller} ${agent} ${flow} ${queue}.",
    )
    recording_format: str = Field("wav", pattern=r"^[a-z0-9]{1,8}$", description="wav, gsm, ...")
    asterisk_recordings_dir: str | None = Field(
        None,
        description="Where Asterisk writes call recordings, as Asterisk sees it (another host or a "
        "container); default: recordings_dir.",
    )
    download_dir: Path | None = Field(
        None,
        description="The same directory as this host sees it, for downloads through the API; default: recordings_dir.",
    )
    originate_timeout: Duration = Field(30.0, description="Ring time of originated calls when a request names none.")

    @field_validator(
        "outbound_context",
        "flow_context",
        "extension_context",
        "queue_context",
        "hold_context",
        "hold_wait_context",
        "moh_class",
    )
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,80}", value):
            raise ValueError(f"{value!r} is not a dialplan context/class name; use letters, digits, _ and -")
        return value

    @field_validator("parking_lots")
    @classmethod
    def _check_lots(cls, lots: dict[str, str]) -> dict[str, str]:
        for name, context in lots.items():
            if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name) or not re.fullmatch(r"[A-Za-z0-9_\-]{1,80}", context):
                raise ValueError(f"parking lot {name!r}: {context!r}: names and contexts use letters, digits, _ and -")
        if not lots:
            raise ValueError("name at least one parking lot (default: parkedcalls)")
        return lots

    @field_validator("spy_options")
    @classmethod
    def _check_spy(cls, options: dict[str, str]) -> dict[str, str]:
        for mode, opts in options.items():
            if not re.fullmatch(r"[A-Za-z]{0,16}", opts):
                raise ValueError(
                    f"spy_options.{mode} {opts!r}: use ChanSpy option letters only (like qE); "
                    "options with arguments are not supported"
                )
        return options

    @field_validator("customer_dial")
    @classmethod
    def _check_customer_dial(cls, template: str) -> str:
        if "{number}" not in template:
            raise ValueError(f"{template!r} has no {{number}}; write it like Local/{{number}}@ivr-dial-out")
        try:
            template.format(number="1")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"{template!r} has a placeholder other than {{number}}") from None
        return template

    @field_validator("recording_template")
    @classmethod
    def _check_recording_template(cls, template: str) -> str:
        known = {"date", "time", "call", "caller", "agent", "flow", "queue"}
        unknown = sorted(set(re.findall(r"\$\{([A-Za-z_]+)\}", template)) - known)
        if unknown:
            raise ValueError(
                f"unknown variable(s) {', '.join('${' + u + '}' for u in unknown)}; use "
                + " ".join("${" + k + "}" for k in sorted(known))
            )
        return template


class Settings(_Section):
    """Everything the service needs besides the flows themselves."""

    instance: str = Field(
        default_factory=lambda: default_instance(),
        pattern=INSTANCE_NAME,
        description="This service instance's name: in /readyz, every log line and ivr_instance_info; the callback "
        "scheduler leases requests under it. Default: the host name.",
    )
    ami: AMISettings = Field(default_factory=AMISettings)
    fastagi: FastAGISettings = Field(default_factory=FastAGISettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    flows_dir: Path = Field(Path("config/flows"), description="Directory of flow files.")
    prompts_dir: Path = Field(Path("recordings/prompts"), description="Prompt sound files (<lang>/<id>.wav).")
    asterisk_prompts_dir: str | None = Field(
        None,
        description="The prompts directory as Asterisk sees it, if it runs on another host or container; "
        "default: prompts_dir.",
    )
    recordings_dir: Path = Field(Path("recordings/calls"), description="Call recordings and voicemail.")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    dial_template: str = Field("PJSIP/{extension}", description="How a transfer to an extension is dialled.")
    queues: QueueSettings = Field(default_factory=QueueSettings)
    lookups: LookupSettings = Field(default_factory=LookupSettings)
    reload: ReloadSettings = Field(default_factory=ReloadSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    repeat_callers: RepeatCallerSettings = Field(default_factory=RepeatCallerSettings)
    campaigns: CampaignsSettings = Field(default_factory=CampaignsSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        "auto",
        description="The event loop of `serve`: uvloop when installed (auto), or always the standard asyncio loop, "
        "or uvloop (an error if it is missing). See ivr/runtime.py.",
    )
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
            raise ValueError(
                f"{template!r} has a placeholder other than {{extension}}; "
                "use only {extension}, e.g. PJSIP/{extension}"
            ) from None
        return template

    def dial_string(self, extension: str) -> str:
        return self.dial_template.format(extension=extension)


def default_instance() -> str:
    """The host name, cut to what a metric label and INSTANCE_NAME allow ("ivr" if nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0])[:63].strip("-._")
    return name or "ivr"


@dataclass(frozen=True)
class EnvOverride:
    variable: str
    path: tuple[str, ...]
    description: str


ENV_OVERRIDES: tuple[EnvOverride, ...] = (
    EnvOverride("IVR_INSTANCE", ("instance",), "this instance's name (default: the host name)"),
    EnvOverride("IVR_AMI_HOST", ("ami", "host"), "AMI host"),
    EnvOverride("IVR_AMI_PORT", ("ami", "port"), "AMI port"),
    EnvOverride("IVR_AMI_USERNAME", ("ami", "username"), "AMI user name"),
    EnvOverride("IVR_AMI_SECRET_FILE", ("ami", "secret_file"), "file holding the AMI secret"),
    EnvOverride("IVR_AMI_ENABLED", ("ami", "enabled"), "true/false: use AMI at all"),
    EnvOverride("IVR_FASTAGI_HOST", ("fastagi", "host"), "FastAGI listen address"),
    EnvOverride("IVR_FASTAGI_PORT", ("fastagi", "port"), "FastAGI listen port"),
    EnvOverride("IVR_FASTAGI_MAX_CONNECTIONS", ("fastagi", "max_connections"), "FastAGI connection cap"),
    EnvOverride(
        "IVR_FASTAGI_ALLOWED_PEERS",
        ("fastagi", "allowed_peers"),
        "FastAGI peers allowed to connect, comma-separated addresses/CIDR ranges",
    ),
    EnvOverride("IVR_HTTP_HOST", ("http", "host"), "HTTP API listen address"),
    EnvOverride("IVR_HTTP_PORT", ("http", "port"), "HTTP API listen port"),
    EnvOverride("IVR_API_TOKEN_FILE", ("http", "token_file"), "file holding the API token"),
    EnvOverride("IVR_FLOWS_DIR", ("flows_dir",), "flows directory"),
    EnvOverride("IVR_PROMPTS_DIR", ("prompts_dir",), "prompts directory"),
    EnvOverride("IVR_RECORDINGS_DIR", ("recordings_dir",), "recordings directory"),
    EnvOverride("IVR_STORAGE_URL", ("storage", "url"), "storage URL"),
    EnvOverride("IVR_STORAGE_PASSWORD_FILE", ("storage", "password_file"), "file holding the PostgreSQL password"),
    EnvOverride("IVR_CALLER_HASH_KEY_FILE", ("repeat_callers", "key_file"), "file holding the caller hash key"),
    EnvOverride("IVR_DIAL_TEMPLATE", ("dial_template",), "dial string template"),
    EnvOverride("IVR_LOG_LEVEL", ("log_level",), "debug, info, warning or error"),
    EnvOverride("IVR_EVENT_LOOP", ("event_loop",), "auto, asyncio or uvloop"),
)
# Read directly as secrets (the names can be changed with ami.secret_env / http.token_env).
SECRET_ENV = {
    "ami": "IVR_AMI_SECRET",
    "http": "IVR_API_TOKEN",
    "storage": "IVR_STORAGE_PASSWORD",
    "repeat_callers": "IVR_CALLER_HASH_KEY",
}
ENV_FILE = "environment"  # the `file` of problems caused by an environment variable


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
            raise ConfigError(
                [
                    Problem(
                        doc.file,
                        1,
                        1,
                        "the settings file must be a mapping (key: value lines)",
                        "start from config/ivr.yaml in the source tree",
                    )
                ]
            )
        root = file.resolve().parent.parent
    else:
        data, positions, root = {}, PositionMap("(defaults)"), Path.cwd()
    problems: list[Problem] = []
    ami_data = data.get("ami")
    for index, entry in enumerate(ami_data.get("servers") or [] if isinstance(ami_data, dict) else []):
        if isinstance(entry, dict) and "secret" in entry:
            problems.append(
                positions.problem(
                    ("ami", "servers", index, "secret"),
                    "ami.servers[].secret must not be written in the file",
                    "put it in an environment variable or a file and name that with secret_env or secret_file",
                )
            )
    for section in ("ami", "http", "storage", "repeat_callers"):
        if isinstance(data.get(section), dict) and any(
            k in data[section] for k in ("secret", "token", "password", "key")
        ):
            key = next(k for k in ("secret", "token", "password", "key") if k in data[section])
            problems.append(
                positions.problem(
                    (section, key),
                    f"{section}.{key} must not be written in the file",
                    f"put it in an environment variable or a file and name that with {key}_env or {key}_file",
                )
            )
    problems += _url_password_problems(data, positions, env)
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
        raise ConfigError(
            _locate_env(problems_from_validation(exc, Settings, positions, data=data), from_env)
        ) from None

    settings = _resolve_paths(settings, root)
    settings._source = file.resolve() if file is not None else None
    server_problems = _check_servers(settings.ami, positions)
    if server_problems:
        raise ConfigError(server_problems)
    settings.ami.secret = _read_secret(
        settings.ami.secret_file,
        settings.ami.secret_env,
        SECRET_ENV["ami"],
        env,
        root,
        positions,
        ("ami", "secret_file"),
    )
    for index, server in enumerate(settings.ami.servers):
        server.secret = _read_secret(
            server.secret_file,
            server.secret_env,
            SECRET_ENV["ami"],
            env,
            root,
            positions,
            ("ami", "servers", index, "secret_file"),
        )
    settings.http.token = _read_secret(
        settings.http.token_file,
        settings.http.token_env,
        SECRET_ENV["http"],
        env,
        root,
        positions,
        ("http", "token_file"),
    )
    settings.storage.password = _read_secret(
        settings.storage.password_file,
        settings.storage.password_env,
        SECRET_ENV["storage"],
        env,
        root,
        positions,
        ("storage", "password_file"),
    )
    settings.repeat_callers.key = _read_secret(
        settings.repeat_callers.key_file,
        settings.repeat_callers.key_env,
        SECRET_ENV["repeat_callers"],
        env,
        root,
        positions,
        ("repeat_callers", "key_file"),
    )
    hash_key = settings.repeat_callers.key
    if hash_key is not None and 0 < len(hash_key.get_secret_value()) < 16:
        raise ConfigError(
            [
                Problem(
                    ENV_FILE,
                    0,
                    0,
                    "the caller hash key (repeat_callers) is shorter than 16 characters",
                    "use a long random value, e.g. `openssl rand -hex 32`",
                )
            ]
        )
    return settings


def _check_servers(ami: AMISettings, positions: PositionMap) -> list[Problem]:
    """Several servers: names, addresses and queue homes must each be unique (each error at its entry)."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    addresses: dict[tuple[str, int], str] = {}
    homes: dict[str, str] = {}
    for index, server in enumerate(ami.servers):
        where = ("ami", "servers", index)
        if server.name in names:
            problems.append(
                positions.problem(
                    (*where, "name"),
                    f"ami.servers: the name {server.name!r} is used twice (entries {names[server.name] + 1} and "
                    f"{index + 1})",
                    "give every Asterisk server its own name (it tags its calls and metrics: pbx1, pbx2, ...)",
                )
            )
        names.setdefault(server.name, index)
        address = (server.host.lower(), server.port)
        if address in addresses:
            problems.append(
                positions.problem(
                    (*where, "host"),
                    f"ami.servers: {server.name!r} connects to {server.host}:{server.port} like {addresses[address]!r}",
                    "list each Asterisk server once; two connections to one server would show every call twice",
                )
            )
        addresses.setdefault(address, server.name)
        for queue in server.queues:
            if queue in homes and homes[queue] != server.name:
                problems.append(
                    positions.problem(
                        (*where, "queues"),
                        f"ami.servers: queue {queue!r} is listed by {homes[queue]!r} and {server.name!r}",
                        "a queue has one home server: list it under one server only",
                    )
                )
            homes.setdefault(queue, server.name)
    if ami.servers and ami.queues:
        problems.append(
            positions.problem(
                ("ami", "queues"),
                "ami.queues is for one server's entry under ami.servers",
                "move the list under the server that hosts these queues",
            )
        )
    return problems


def _url_password_problems(data: dict[str, Any], positions: PositionMap, env: Mapping[str, str]) -> list[Problem]:
    """A database password written into storage.url (file or IVR_STORAGE_URL) is refused: it would sit in a file
    that is read by many and copied into backups and bug reports."""
    hint = "remove it from the URL; put it in IVR_STORAGE_PASSWORD or a file named by storage.password_file"
    out = []
    storage = data.get("storage")
    url = storage.get("url") if isinstance(storage, dict) else None
    if isinstance(url, str) and _url_has_password(url):
        out.append(positions.problem(("storage", "url"), "storage.url must not contain a password", hint))
    if _url_has_password(env.get("IVR_STORAGE_URL", "")):
        out.append(Problem(ENV_FILE, 0, 0, "IVR_STORAGE_URL: the storage URL must not contain a password", hint))
    return out


def _url_has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for section, key in (("ami", "secret"), ("http", "token"), ("storage", "password"), ("repeat_callers", "key")):
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k != key}
    servers = out["ami"].get("servers") if isinstance(out.get("ami"), dict) else None
    if isinstance(servers, list):
        out["ami"]["servers"] = [
            {k: v for k, v in entry.items() if k != "secret"} if isinstance(entry, dict) else entry for entry in servers
        ]
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
            out.append(
                Problem(
                    ENV_FILE, 0, 0, f"{variable}: {problem.message}", problem.hint, "error", problem.code, problem.path
                )
            )
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
    if settings.calls.download_dir is not None:
        settings.calls.download_dir = resolve(settings.calls.download_dir)
    url = settings.storage.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # sqlite:///var/ivr.db is relative (SQLAlchemy convention); make it absolute against the project root.
        settings.storage.url = "sqlite:///" + str(root / url[len("sqlite:///") :])
    return settings


def _read_secret(
    file_name: str | None,
    env_name: str | None,
    default_env: str,
    env: Mapping[str, str],
    root: Path,
    positions: PositionMap,
    where: tuple[str | int, ...],
) -> SecretStr | None:
    """File first (Docker/Kubernetes secrets), then the named variable, then the default variable."""
    if file_name:
        path = Path(file_name)
        path = path if path.is_absolute() else root / path
        try:
            first = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            mark = positions.value(where)
            raise ConfigError(
                [
                    Problem(
                        positions.file if where in positions else ENV_FILE,
                        mark.line if where in positions else 0,
                        mark.column if where in positions else 0,
                        f"cannot read the secret file {path}: {exc.strerror}",
                        "create it (one line, the secret) and make it readable by the service",
                        code="secret",
                    )
                ]
            ) from None
        return SecretStr(first[0].strip()) if first else SecretStr("")
    for name in (env_name, default_env):
        if name and env.get(name):
            return SecretStr(env[name])
    return None

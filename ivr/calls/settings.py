"""Where call control sends calls: dial strings and dialplan locations, as one dataclass the service fills in.

Rules for this file:
- Only data and its checks. Templates take `{extension}` / `{number}` and nothing else; values put into them are
  validated by `ivr.calls.validate` first, so a request can never add a second dial target or an option.
- Defaults match dialplans/extensions_ivr.conf (`ivr-outbound` runs a flow) and the stock res_parking.conf.
- `from_settings` is the only bridge from `ivr.settings.Settings` (`calls:` and `callbacks:` sections).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr import dialplan
from ivr.calls.validate import DEFAULT_NUMBER_PATTERN

if TYPE_CHECKING:
    from ivr.settings import Settings


@dataclass
class CallControlSettings:
    # Ringing an agent's or supervisor's phone: a dial string with {extension} (PJSIP/{extension}, Local/...).
    agent_dial: str = "PJSIP/{extension}"
    # Click-to-call: after the agent answers, the agent leg runs exten=<customer number> in this context.
    outbound_context: str = "from-internal"
    # Outbound call into a flow (callbacks): the customer leg's dial string, answered -> flow_context,<flow>,1.
    customer_dial: str = "Local/{number}@" + dialplan.DIAL_OUT_CONTEXT
    flow_context: str = dialplan.OUTBOUND_CONTEXT
    # Transfer targets: extension -> extension_context,<ext>,1; queue -> queue_context,<queue>,1;
    # flow -> flow_context,<flow>,1.
    extension_context: str = "from-internal"
    queue_context: str = dialplan.QUEUE_CONTEXT
    # Hold: the held party runs hold_context,s,1 (MusicOnHold(${IVR_MOH_CLASS})); its partner waits in
    # hold_wait_context,s,1 until resume bridges them again (AMI Bridge).
    hold_context: str = dialplan.HOLD_CONTEXT
    hold_wait_context: str = dialplan.HOLD_WAIT_CONTEXT
    moh_class: str = "default"
    # Parking lots this service may park into: name -> the context its spaces live in (shown by the API).
    # Retrieval rings the agent, whose answered leg runs ParkedCall(<lot>,<space>).
    parking_lots: dict[str, str] = field(default_factory=lambda: {"default": "parkedcalls"})
    park_timeout: float = 45.0
    # Recordings: Asterisk writes <recordings_dir>/<name>.<format>; the API serves files from the same directory
    # as this process sees it (download_dir, default recordings_dir) when it is reachable.
    recordings_dir: str = "/var/spool/asterisk/monitor"
    download_dir: str | None = None
    recording_template: str = "${date}-${call}-${caller}"
    recording_format: str = "wav"
    originate_timeout: float = 30.0
    # ChanSpy options per supervisor mode: q = no beep, E = end when the spied channel hangs up,
    # w = whisper (speak to the spied channel only), B = barge (speak to both parties).
    spy_options: dict[str, str] = field(default_factory=lambda: {"listen": "qE", "whisper": "qwE", "barge": "qBE"})
    # Numbers this service may dial out to (settings.callbacks.number_pattern), fully matched.
    number_pattern: str = DEFAULT_NUMBER_PATTERN
    # Callback requests from the API: the flow when a request names none, and the cap on attempts.
    callback_flow: str = "callback"
    callback_max_attempts: int = 3
    # Queue names that may appear as metric labels (configuration); others, and ones not in the flows, -> "other".
    known_queues: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        re.compile(self.number_pattern)  # a broken pattern fails at start, not at the first dial

    @property
    def number_re(self) -> re.Pattern[str]:
        return re.compile(self.number_pattern)  # re caches compiled patterns

    @classmethod
    def from_settings(cls, settings: Settings) -> CallControlSettings:
        """From `ivr.settings.Settings`: the `calls:` section, `dial_template`, `recordings_dir` and the
        `callbacks:` section (number pattern, default flow, attempts)."""
        out = cls()
        if settings.dial_template:
            out.agent_dial = settings.dial_template
        out.recordings_dir = str(Path(settings.recordings_dir).resolve())
        calls = settings.calls
        for name in (
            "outbound_context",
            "customer_dial",
            "flow_context",
            "extension_context",
            "queue_context",
            "hold_context",
            "hold_wait_context",
            "moh_class",
            "park_timeout",
            "recording_template",
            "recording_format",
            "originate_timeout",
        ):
            setattr(out, name, getattr(calls, name))
        out.parking_lots = dict(calls.parking_lots)
        for mode, options in calls.spy_options.items():
            out.spy_options[mode] = options
        if calls.download_dir is not None:
            out.download_dir = str(calls.download_dir)
        elif calls.asterisk_recordings_dir:
            out.download_dir = out.recordings_dir  # this host's view stays recordings_dir
        if calls.asterisk_recordings_dir:
            out.recordings_dir = calls.asterisk_recordings_dir
        out.number_pattern = settings.callbacks.number_pattern
        out.callback_flow = settings.callbacks.flow
        out.callback_max_attempts = settings.callbacks.max_attempts
        out.known_queues = frozenset(settings.queues.overrides)
        out.__post_init__()
        return out

    def recordings_path(self) -> Path:
        return Path(self.download_dir or self.recordings_dir)

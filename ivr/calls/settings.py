"""Where call control sends calls: dial strings and dialplan locations, as one dataclass the service fills in.

Rules for this file:
- Only data and its checks. Templates take `{extension}` / `{number}` and nothing else; values put into them are
  validated by `ivr.calls.validate` first, so a request can never add a second dial target or an option.
- Defaults match dialplans/extensions_ivr.conf (`ivr-outbound` runs a flow) and the stock res_parking.conf.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CallControlSettings:
    # Ringing an agent's or supervisor's phone: a dial string with {extension} (PJSIP/{extension}, Local/...).
    agent_dial: str = "PJSIP/{extension}"
    # Click-to-call: after the agent answers, the agent leg runs exten=<customer number> in this context.
    outbound_context: str = "from-internal"
    # Outbound call into a flow (callbacks): the customer leg's dial string, answered -> flow_context,<flow>,1.
    customer_dial: str = "Local/{number}@ivr-dial-out"
    flow_context: str = "ivr-outbound"
    # Transfer targets: extension -> extension_context,<ext>,1; queue -> queue_context,<queue>,1;
    # flow -> flow_context,<flow>,1.
    extension_context: str = "from-internal"
    queue_context: str = "ivr-queue"
    # Hold: the held party runs hold_context,s,1 (MusicOnHold(${IVR_MOH_CLASS})); its partner waits in
    # hold_wait_context,s,1 until resume bridges them again (AMI Bridge).
    hold_context: str = "ivr-hold"
    hold_wait_context: str = "ivr-hold-wait"
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

    @classmethod
    def from_settings(cls, settings: Any) -> "CallControlSettings":
        """Take what `ivr.settings.Settings` already says (dial template, recordings directory); the rest keeps
        the defaults above."""
        out = cls()
        dial = getattr(settings, "dial_template", None)
        if dial:
            out.agent_dial = dial
        recordings = getattr(settings, "recordings_dir", None)
        if recordings:
            out.recordings_dir = str(Path(recordings).resolve())
        return out

    def recordings_path(self) -> Path:
        return Path(self.download_dir or self.recordings_dir)

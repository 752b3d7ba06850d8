"""AGI layer: sans-IO protocol core, AGISession, Router, FastAGI server, classic AGI.

This file only re-exports the public names. FastAGIServer is imported on first access, so classic AGI (a process
per call) does not load the server and its metrics at start-up.
"""

from typing import TYPE_CHECKING

from .errors import (
    AGIAppError,
    AGIConnectionLost,
    AGIDeadChannelError,
    AGIEncodingError,
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGIProtocolError,
    AGIReplyError,
    AGISessionClosed,
    AGITimeoutError,
    AGIUsageError,
)
from .protocol import (
    EOF,
    AGIConnection,
    AGIEnvironment,
    AGIReply,
    HangupNotice,
    Quoted,
    State,
    encode_command,
    parse_reply_line,
)
from .router import Handler, Router, dispatch
from .session import AGISession

__all__ = [
    "AGIAppError",
    "AGIConnection",
    "AGIConnectionLost",
    "AGIDeadChannelError",
    "AGIEncodingError",
    "AGIEnvironment",
    "AGIError",
    "AGIHangupError",
    "AGIInvalidCommandError",
    "AGIProtocolError",
    "AGIReply",
    "AGIReplyError",
    "AGISession",
    "AGISessionClosed",
    "AGITimeoutError",
    "AGIUsageError",
    "EOF",
    "FastAGIServer",
    "Handler",
    "HangupNotice",
    "Quoted",
    "Router",
    "State",
    "dispatch",
    "encode_command",
    "parse_reply_line",
]

if TYPE_CHECKING:
    from .fastagi import FastAGIServer


def __getattr__(name: str) -> type["FastAGIServer"]:
    if name == "FastAGIServer":
        from .fastagi import FastAGIServer

        return FastAGIServer
    raise AttributeError(f"module 'ivr.agi' has no attribute {name!r}")

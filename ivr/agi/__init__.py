"""AGI layer: sans-IO protocol core, AGISession, Router, FastAGI server, classic AGI.

This file only re-exports the public names. FastAGIServer and AGISession (asyncio) are imported on first access,
so classic AGI (a process per call, blocking pipes) loads neither the server nor asyncio before its first command.
"""

from typing import TYPE_CHECKING, Any

from .commands import AGICommands
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

__all__ = [
    "AGIAppError",
    "AGICommands",
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
    from .session import AGISession


def __getattr__(name: str) -> Any:
    if name == "FastAGIServer":
        from .fastagi import FastAGIServer

        return FastAGIServer
    if name == "AGISession":
        from .session import AGISession

        return AGISession
    raise AttributeError(f"module 'ivr.agi' has no attribute {name!r}")

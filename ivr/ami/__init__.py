"""AMI (Asterisk Manager Interface): sans-IO protocol core, asyncio client, typed action helpers.

This `__init__` only re-exports public names. The client (`AMIClient`, `Subscription`, `AMIHealth`) is imported on
first use, so users of the protocol alone (the simulated Asterisk's server side) do not load the client and the
metrics it needs.
"""

from typing import TYPE_CHECKING, Any

from ivr.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectionLost,
    AMIEncodingError,
    AMIError,
    AMIMessageTooLarge,
    AMINotConnected,
    AMIProtocolError,
    AMITimeout,
)
from ivr.ami.protocol import (
    AMIParser,
    Banner,
    Message,
    Role,
    command_output,
    encode_action,
    encode_message,
    header_pairs,
    md5_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from ivr.ami.client import AMIClient, AMIHealth, Subscription

__all__ = [
    "AMIActionError",
    "AMIAuthError",
    "AMIConnectionLost",
    "AMIEncodingError",
    "AMIError",
    "AMIMessageTooLarge",
    "AMINotConnected",
    "AMIProtocolError",
    "AMITimeout",
    "AMIParser",
    "Banner",
    "Message",
    "Role",
    "command_output",
    "encode_action",
    "encode_message",
    "header_pairs",
    "md5_key",
    "AMIClient",
    "AMIHealth",
    "Subscription",
]

_LAZY = {"AMIClient", "AMIHealth", "Subscription"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from ivr.ami import client

        return getattr(client, name)
    raise AttributeError(f"module 'ivr.ami' has no attribute {name!r}")

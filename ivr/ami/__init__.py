"""AMI (Asterisk Manager Interface): sans-IO protocol core, asyncio client, typed action helpers.

This package's `__init__` only re-exports public names; the client is imported lazily so protocol users (the
simulated Asterisk's server side) do not pay for asyncio-side code.
"""
from ivr.ami.errors import (
    AMIActionError, AMIAuthError, AMIConnectionLost, AMIEncodingError, AMIError, AMIMessageTooLarge,
    AMINotConnected, AMIProtocolError, AMITimeout,
)
from ivr.ami.protocol import (
    AMIParser, Banner, Message, Role, command_output, encode_action, encode_message, header_pairs, md5_key,
)

__all__ = [
    "AMIActionError", "AMIAuthError", "AMIConnectionLost", "AMIEncodingError", "AMIError", "AMIMessageTooLarge",
    "AMINotConnected", "AMIProtocolError", "AMITimeout",
    "AMIParser", "Banner", "Message", "Role", "command_output", "encode_action", "encode_message", "header_pairs",
    "md5_key",
]

"""Typed AMI errors.

Rules for this file:
- Every error the AMI package raises is a subclass of `AMIError`, so callers can catch the family at once.
- Messages say what happened and what to do about it; they never contain secrets.
- No imports from the rest of the package (protocol.py and client.py both import this file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ivr.ami.protocol import Message


class AMIError(Exception):
    """Base class of every AMI error."""


class AMIProtocolError(AMIError):
    """The peer broke the AMI framing (no banner, a message over the size limit, ...)."""


class AMIMessageTooLarge(AMIProtocolError):
    """One message grew past the parser's size limit (a broken or hostile peer)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"AMI message of at least {size} bytes exceeds the limit of {limit} bytes; the peer is not speaking AMI "
            f"or sends runaway output (raise max_message_size if the output is legitimate)"
        )
        self.size = size
        self.limit = limit


class AMIEncodingError(AMIError, ValueError):
    """A header name or value cannot be sent safely (CR/LF would inject extra headers or actions)."""


class AMIAuthError(AMIError):
    """Asterisk refused the login (wrong username or secret, or no permission)."""


class AMIConnectionLost(AMIError):
    """The connection closed (or was found dead) while an action was pending; the action's outcome is unknown."""


class AMINotConnected(AMIError):
    """An action was requested while the client is not logged in."""


class AMITimeout(AMIError, TimeoutError):
    """No answer in time (connect, login, action, or list)."""


class AMIActionError(AMIError):
    """Asterisk answered `Response: Error` to an action. `response` holds the whole answer."""

    def __init__(self, action: str, response: Message) -> None:
        self.action = action
        self.response = response
        self.reason = response.get("Message", "") or ""
        super().__init__(f"AMI action {action} failed: {self.reason or 'Response: Error without a message'}")

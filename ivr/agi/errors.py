"""Typed AGI errors.

Rules for this file:
- Every failure the AGI layer can report has its own class, so callers catch what they can handle and let the
  rest reach the dispatcher. Messages say what happened and what to do.
- `AGIHangupError` is the root of "the caller is gone" (HANGUP notice, 511 on a dead channel, result=-1 with
  `(hangup)`); the flow layer maps it to `CallerHangup`.
- No imports from the rest of the package: the protocol core and the session both raise these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .protocol import AGIReply


class AGIError(Exception):
    """Base class of every AGI error."""


class AGIEncodingError(AGIError, ValueError):
    """A command could not be encoded safely (CR/LF/NUL in an argument, too long, too many words).

    Text from callers, CRM lookups or flow files must never change the command structure: clean the value
    (strip control characters) before passing it on.
    """


class AGIProtocolError(AGIError):
    """The peer broke the AGI framing (line too long, oversized or malformed environment, unexpected line).

    The connection cannot be trusted any more; it is closed.
    """


class AGITimeoutError(AGIError):
    """A command got no complete reply in time. The stream is desynchronised, so the session was closed.

    Raise the command's timeout (per call or `command_timeout`) if Asterisk legitimately needs longer.
    """


class AGISessionClosed(AGIError):
    """A command was attempted on a session that is already closed or broken (after a timeout or protocol error)."""


class AGIReplyError(AGIError):
    """Asterisk answered with an error reply; `reply` holds the parsed lines."""

    def __init__(self, message: str, reply: AGIReply) -> None:
        super().__init__(message)
        self.reply = reply


class AGIInvalidCommandError(AGIReplyError):
    """510: Asterisk does not know the command (typo, or a `\\r` sent at the end of the line)."""


class AGIUsageError(AGIReplyError):
    """520: wrong arguments for the command; `usage` holds Asterisk's usage text."""

    @property
    def usage(self) -> str:
        return self.reply.usage


class AGIHangupError(AGIError):
    """The caller hung up: the channel is in dead mode. Variables can still be read; media commands cannot."""


class AGIConnectionLost(AGIHangupError):
    """The AGI socket or pipe closed (EOF, reset) while a reply was expected: the call is over for us
    (Asterisk closes only when the channel is gone or Asterisk stops)."""


class AGIDeadChannelError(AGIHangupError, AGIReplyError):
    """511: the command needs a live channel but the channel has hung up."""

    def __init__(self, message: str, reply: AGIReply) -> None:
        AGIReplyError.__init__(self, message, reply)


class AGIAppError(AGIReplyError):
    """The command ran but failed: result=-1 (error, e.g. a missing sound file or an unwritable recording path)
    or result=-2 (EXEC of an application that does not exist). Check the file/application name."""

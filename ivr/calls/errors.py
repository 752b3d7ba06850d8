"""Typed errors of call control; each carries the HTTP status the API answers with.

Rules for this file:
- One class per kind of failure a client can act on: unknown thing (404), not valid now (409), bad input (422),
  Asterisk unreachable (503). Messages say what to do.
- `from_ami()` is the only place that interprets AMI failures, using the exact error texts of Asterisk 22
  (transcripts ami-13..ami-17).
"""

from __future__ import annotations

from ivr.ami.errors import (
    AMIActionError,
    AMIConnectionLost,
    AMIEncodingError,
    AMIError,
    AMINotConnected,
    AMITimeout,
)


class CallControlError(Exception):
    status = 500
    code = "error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(CallControlError):
    status = 404
    code = "not_found"


class UnknownCall(NotFound):
    code = "unknown_call"


class InvalidState(CallControlError):
    """The operation is not valid in the call's (or member's) current state."""

    status = 409
    code = "invalid_state"


class InvalidRequest(CallControlError):
    status = 422
    code = "invalid_request"


class AsteriskUnavailable(CallControlError):
    status = 503
    code = "asterisk_unavailable"


# Asterisk's error texts (exact, see tests/data/asterisk/README.md) -> our error class.
_GONE = ("No such channel", "Channel specified does not exist", "Channel not specified")
_CONFLICT = ("Transfer invalid", "Unable to add interface: Already there", "Could not stop monitoring channel")
_MISSING = ("Unable to remove interface: Not there", "Interface not found")


def from_ami(exc: Exception, what: str) -> CallControlError:
    """Translate an AMI failure of operation `what` into a typed error."""
    if isinstance(exc, AMIActionError):
        reason = exc.reason.strip()
        if reason.startswith(_GONE):
            return NotFound(f"{what}: the channel no longer exists (the call probably ended)", detail=reason)
        if reason.startswith(_MISSING):
            return NotFound(f"{what}: {reason}", detail=reason)
        if reason.startswith(_CONFLICT):
            return InvalidState(f"{what}: Asterisk refused ({reason})", detail=reason)
        return InvalidState(f"{what}: Asterisk refused the action ({reason or 'no reason given'})", detail=reason)
    if isinstance(exc, AMIEncodingError):  # a value that cannot be sent safely: the request is at fault
        return InvalidRequest(f"{what}: {exc}")
    if isinstance(exc, (AMINotConnected, AMIConnectionLost, AMITimeout, OSError)):
        return AsteriskUnavailable(
            f"{what}: Asterisk is not reachable over AMI; retry when /readyz is ready", detail=str(exc)
        )
    if isinstance(exc, AMIError):
        return AsteriskUnavailable(f"{what}: AMI failure", detail=str(exc))
    raise exc

"""The `result` label of ivr_transfers_total: one vocabulary for Dial and Queue (docs/observability.md).

Rules for this file:
- No imports beyond the standard library: the flow engine names these results without importing
  prometheus_client (classic AGI, a process per call, exports nothing); `ivr.metrics` re-exports them.
- answered: an agent answered (DIALSTATUS ANSWER; a queue call answered, QUEUESTATUS CONTINUE with option c);
  abandoned: the caller hung up while it rang or waited (DIALSTATUS CANCEL, app_queue's ABANDONED); refused: the
  target failed the dial-string check, nothing was dialled; redirected: the HTTP API moved the call out of the
  IVR; else the DIALSTATUS/QUEUESTATUS in lower case; any other status: other (labels stay bounded).
"""

from __future__ import annotations

TRANSFER_RESULTS = (
    "answered",
    "abandoned",
    "busy",
    "noanswer",
    "chanunavail",
    "congestion",
    "timeout",
    "joinempty",
    "leaveempty",
    "joinunavail",
    "leaveunavail",
    "full",
    "refused",
    "redirected",
    "other",
)
# The results that count as a successful transfer in the KPIs (recording rules, dashboard).
TRANSFER_SUCCESS_RESULTS = ("answered",)
_TRANSFER_STATUS = {"ANSWER": "answered", "ANSWERED": "answered", "CONTINUE": "answered", "CANCEL": "abandoned"}


def transfer_result(status: str) -> str:
    """The `result` label for a DIALSTATUS/QUEUESTATUS (or the flow channel's ANSWERED/ABANDONED)."""
    upper = status.upper()
    result = _TRANSFER_STATUS.get(upper) or upper.lower()
    return result if result in TRANSFER_RESULTS else "other"

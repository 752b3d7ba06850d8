"""Progressive pacing and the abandon-rate guard: how many calls of a campaign may ring at once. Pure functions.

Rules for this file:
- Progressive: at most floor(ratio x available agents) ring at once, counted over every instance's leases by the
  storage. No available agent, no call.
- The guard looks at the abandon rate (abandoned / answered attempts) over the recent window:
  below `backoff_from` the configured ratio; from `backoff_from` to `pause_at` the ratio falls linearly to 1:1;
  at or over `pause_at` (kept below the legal `limit`) dialling pauses until old abandons leave the window.
  With fewer than `min_answered` answered calls in the window there is no evidence yet: 1:1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ivr.campaigns.model import AbandonGuard


@dataclass(frozen=True)
class Pace:
    ratio: float  # the ratio in force (0 = paused by the guard)
    slots: int  # calls that may ring at once
    reason: str  # configured | no_evidence | backing_off | paused | no_agents | asterisk_down (set by the dialer)


def guarded_ratio(ratio: float, answered: int, abandoned: int, guard: AbandonGuard) -> tuple[float, str]:
    """The ratio the guard allows for the campaign's configured `ratio`, and why."""
    if answered < guard.min_answered:
        return min(ratio, 1.0), "no_evidence"
    rate = abandoned / answered
    if rate >= guard.pause_at:
        return 0.0, "paused"
    if rate <= guard.backoff_from or ratio <= 1.0:
        return ratio, "configured" if rate <= guard.backoff_from else "backing_off"
    share = (guard.pause_at - rate) / (guard.pause_at - guard.backoff_from)  # 1 at backoff_from, 0 at pause_at
    return 1.0 + (ratio - 1.0) * share, "backing_off"


def pace(ratio: float, available_agents: int, answered: int, abandoned: int, guard: AbandonGuard) -> Pace:
    allowed, reason = guarded_ratio(ratio, answered, abandoned, guard)
    if available_agents <= 0:
        return Pace(allowed, 0, "no_agents" if allowed > 0 else reason)
    return Pace(allowed, math.floor(allowed * available_agents + 1e-9), reason)

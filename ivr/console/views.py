"""What the supervisor console shows, as compact JSON built from the call registry and the stored callbacks.

Rules for this file:
- Pure functions over the registry's model (no I/O, no asyncio): the feed calls them and diffs their output.
- One row per call, flat and small (2,000 of them go to every console in a snapshot): the caller, flow and node,
  queue (with its wait), agent, the marks (recording, parked, held). Times are epoch seconds of the registry clock;
  the page ticks durations itself, so a row changes only when the call does.
- Agents get the state the queue KPIs count (`QueueMember.state`, decided by `ivr.calls.queues.agent_state`):
  paused, unavailable, busy, available.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ivr.calls.model import Call
from ivr.calls.queues import Queue
from ivr.calls.registry import CallRegistry
from ivr.storage import CallbackRequest

Json = dict[str, Any]


def call_row(registry: CallRegistry, call: Call) -> Json:
    origin = call.origin
    rec = call.recording.recording if call.recording is not None else None
    parked = call.parked[0] if call.parked else None
    queue = call.queue
    queue_since: float | None = None
    position: int | None = None
    if queue is not None and queue in registry.queues:
        callers = registry.queues[queue].callers
        for ch in call.channels:
            waiting = callers.get(ch.uniqueid)
            if waiting is not None:
                queue_since, position = waiting.joined_at, waiting.position
                break
    return {
        "id": call.id,
        "state": call.state,
        "number": origin.caller_num,
        "name": origin.caller_name,
        "started_at": min(ch.created_at for ch in call.channels),
        "flow": call.flow,
        "node": next((ch.node for ch in call.channels if ch.node), None),
        "queue": queue,
        "queue_since": queue_since,
        "position": position,
        "agent": call.agent,
        "recording": None if rec is None else ("paused" if rec.muted else "on"),
        "lot": parked.lot if parked else None,
        "space": parked.space if parked else None,
        "held": call.state == "held",
        "legs": len(call.channels),
    }


def queue_view(queue: Queue) -> Json:
    """A queue's agents (waiting callers are calls: the page lists the calls in this queue)."""
    agents = []
    for m in sorted(queue.members.values(), key=lambda m: (m.name or m.interface, m.interface)):
        agents.append(
            {
                "interface": m.interface,
                "name": m.name or m.interface,
                "state": m.state,
                "reason": m.paused_reason if m.paused else "",
                "calls": m.calls_taken,
            }
        )
    return {"name": queue.name, "strategy": queue.strategy, "agents": agents}


def queues_view(queues: Mapping[str, Queue]) -> list[Json]:
    return [queue_view(queues[name]) for name in sorted(queues)]


def lots_view(registry: Any, configured: Iterable[str]) -> list[Json]:
    """Parking lots: the configured ones (even when empty) and any seen in events, with their parked calls.

    `registry` is anything with `parked_in()` (a CallRegistry, or one over several servers)."""
    parked = registry.parked_in()
    names = sorted(set(configured) | {p.lot for p in parked})
    return [
        {
            "name": lot,
            "calls": [
                {
                    "call_id": p.linkedid,
                    "space": p.space,
                    "number": p.caller_num,
                    "name": p.caller_name,
                    "parked_at": p.parked_at,
                    "timeout": p.timeout,
                }
                for p in parked
                if p.lot == lot
            ],
        }
        for lot in names
    ]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def callbacks_view(rows: Iterable[CallbackRequest]) -> list[Json]:
    return [
        {
            "id": r.id,
            "number": r.number,
            "name": r.caller_name,
            "queue": r.queue,
            "attempts": r.attempts,
            "max_attempts": r.max_attempts,
            "requested_at": _iso(r.requested_at),
            "due_at": _iso(r.next_attempt_at or r.not_before or r.requested_at),
            "last_result": r.last_result,
        }
        for r in rows
    ]

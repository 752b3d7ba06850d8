"""The callback scheduler: works off stored callback requests, calling customers back into the callback flow.

Rules for this file:
- Storage is the source of truth: a request is claimed (`mark_callback_dialing`) before it is dialled and every
  attempt is stored with its result, so a restart loses nothing (`requeue_stale_callbacks` at start).
- At most `limit_for(queue)` attempts run at once per queue (the agents of that queue take the calls); queues are
  served independently, so a queue with a long backlog never starves another.
- The backoff policy lives here (the storage only stores `retry_at`). Results are the fixed set
  `ivr.storage.CALLBACK_RESULTS`; metrics use the queue name (from configuration) and that set only.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ivr import metrics
from ivr.calls.errors import CallControlError
from ivr.storage import CallbackRequest, Storage

log = logging.getLogger(__name__)


@dataclass
class CallbackPolicy:
    poll_interval: float = 5.0
    per_queue_limit: int = 1
    queue_limits: dict[str, int] = field(default_factory=dict)      # queue -> limit, overrides per_queue_limit
    backoff: tuple[float, ...] = (120.0, 600.0, 1800.0)            # seconds before the 2nd, 3rd, ... attempt
    ring_timeout: float = 40.0                                     # how long the customer's phone rings
    result_grace: float = 15.0                                     # extra wait for Asterisk's OriginateResponse
    caller_id: str | None = None

    @classmethod
    def from_settings(cls, callbacks: Any) -> "CallbackPolicy":
        """From `ivr.settings.CallbackSettings` (interval, retry_after)."""
        return cls(poll_interval=float(getattr(callbacks, "interval", 5.0)),
                   backoff=(float(getattr(callbacks, "retry_after", 600.0)),))

    def limit_for(self, queue: str) -> int:
        return self.queue_limits.get(queue, self.per_queue_limit)

    def retry_delay(self, attempts_done: int) -> float:
        return self.backoff[min(max(attempts_done - 1, 0), len(self.backoff) - 1)] if self.backoff else 60.0


# OriginateResponse reason (ivr.ami.actions.ORIGINATE_REASONS text) -> stored attempt result.
_RESULTS = {"answered": "answered", "busy": "busy", "no_answer": "no_answer", "congestion": "busy",
            "failed": "failed", "hangup": "failed"}


class CallbackScheduler:
    def __init__(self, storage: Storage, operations: Any, policy: CallbackPolicy | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.storage = storage
        self.operations = operations
        self.policy = policy or CallbackPolicy()
        self.clock = clock
        self.active: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        requeued = await self.storage.requeue_stale_callbacks()
        if requeued:
            log.info("callbacks: %d request(s) left dialing by a previous run are pending again", requeued)
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="callback-scheduler")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        """A request was added: look now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("callback scheduler round failed; retrying at the next poll")
            try:
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- one round ---------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Start attempts for due requests within each queue's free slots. Returns how many started."""
        now = self.clock()
        started = 0
        for queue in await self.storage.due_callback_queues(now):
            free = self.policy.limit_for(queue) - self.active.get(queue, 0)
            if free <= 0:
                continue
            for req in await self.storage.due_callbacks(now, free, queue=queue):
                if req.id is None or not await self.storage.mark_callback_dialing(req.id, now):
                    continue    # cancelled or claimed meanwhile
                self.active[queue] = self.active.get(queue, 0) + 1
                task = asyncio.get_running_loop().create_task(self._attempt(req))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
        return started

    async def _attempt(self, req: CallbackRequest) -> None:
        assert req.id is not None
        metrics.CALLBACKS.labels(queue=req.queue, result="attempted").inc()
        call_id = ""
        try:
            result = await self._dial(req)
            call_id = result[1]
            outcome = result[0]
        except asyncio.CancelledError:
            self.active[req.queue] -= 1
            raise
        except Exception:
            log.exception("callback %s: attempt failed unexpectedly", req.id)
            outcome = "error"
        try:
            at = self.clock()
            attempts_done = req.attempts + 1
            retry_at = None if outcome == "answered" else at + timedelta(seconds=self.policy.retry_delay(attempts_done))
            updated = await self.storage.record_callback_attempt(req.id, outcome, at, retry_at=retry_at,
                                                                 call_id=call_id)
            if updated.state == "completed":
                metrics.CALLBACKS.labels(queue=req.queue, result="completed").inc()
            elif updated.state == "failed":
                metrics.CALLBACKS.labels(queue=req.queue, result="failed").inc()
            log.info("callback %s to queue %s: attempt %d %s -> %s", req.id, req.queue, updated.attempts, outcome,
                     updated.state)
        finally:
            self.active[req.queue] -= 1

    async def _dial(self, req: CallbackRequest) -> tuple[str, str]:
        variables = {"IVR_CALLBACK_ID": str(req.id), "IVR_CALLBACK_QUEUE": req.queue}
        if req.language:
            variables["IVR_LANG"] = req.language
        try:
            originated = await self.operations.originate_flow(
                req.number, req.flow, caller_id=self.policy.caller_id, variables=variables,
                timeout=self.policy.ring_timeout)
        except CallControlError as exc:
            log.warning("callback %s: originate refused: %s", req.id, exc)
            return ("error" if exc.status == 503 else "failed"), ""
        result = await self.operations.wait_originate(originated,
                                                      self.policy.ring_timeout + self.policy.result_grace)
        if result is None:
            return "error", originated.call_id        # no OriginateResponse: outcome unknown, try again later
        return _RESULTS.get(result.reason_text, "failed"), originated.call_id

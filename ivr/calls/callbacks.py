"""The callback scheduler: works off stored callback requests, calling customers back into the callback flow.

Rules for this file:
- Storage is the source of truth, shared by every service instance. Each round, per queue, due requests are
  *leased* in one transaction (`lease_due_callbacks`: row locks, SKIP LOCKED, the queue's limit counted over every
  instance's live leases), so no two instances ever dial the same request. The lease names this process
  (`owner`: instance name + pid) and expires; leases of running attempts are renewed every third of the lease.
  An instance that dies stops renewing, and once its leases expire another instance takes the requests over
  (they may ring a second time if the dead one had already dialled: at-least-once beats never).
- At most `limit_for(queue)` attempts ring at once per queue across all instances (the agents of that queue take
  the calls); queues are served independently, so a queue with a long backlog never starves another.
- A slot this instance frees is offered to every instance: it looks again only after a random moment of up to
  `share_delay` (at most the poll interval), so the instances polling meanwhile get a fair chance at it. Without
  that, the instance holding a busy queue's slots would refill each one at once and dial every request while the
  others only stand by.
- An answered call is not yet a completed callback: the request waits in `answered` until the callback flow's
  report (`on_flow_report`, wired as the FastAGI handler's on_report) says whether the customer was connected
  (outcome "transferred" -> completed), the customer declined (flow variable `callback_result` = "cancelled" ->
  cancelled, never dialled again) or neither (attempt result "no_agent" -> retried while attempts remain). The
  report may reach another instance than the one dialling, and before the attempt's result: it is then stored on
  the row (`defer_callback_verdict`) and applied when the result is.
- Only numbers matching `number_pattern` are dialled; a stored request with another number fails at once.
- The backoff policy lives here (the storage only stores `retry_at`). Results are the fixed set
  `ivr.storage.CALLBACK_RESULTS`; the queue label of metrics is a queue named in the configuration or the flows,
  anything else is "other" (requests come from the API and flows, so their queue names are unbounded).
- A lost database never stops the scheduler: the round is skipped (counted in ivr_storage_failures_total) and
  tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, Unpack

from ivr import dialplan, metrics
from ivr.ami.actions import OriginateResult
from ivr.calls import validate
from ivr.calls.errors import CallControlError
from ivr.calls.leasing import LeasedDialer
from ivr.calls.operations import FlowCallOptions, Originated
from ivr.flow.model import Flow, literal_queues
from ivr.flow.report import CallReport
from ivr.storage import CallbackRequest, NotFound, Storage

if TYPE_CHECKING:
    from ivr.settings import CallbackSettings

log = logging.getLogger(__name__)


@dataclass
class CallbackPolicy:
    poll_interval: float = 5.0
    share_delay: float = 1.0  # a freed slot: look again after a random moment up to this (and the poll interval)
    per_queue_limit: int = 1
    queue_limits: dict[str, int] = field(default_factory=dict)  # queue -> limit, overrides per_queue_limit
    backoff: tuple[float, ...] = (120.0, 600.0, 1800.0)  # seconds before the 2nd, 3rd, ... attempt
    ring_timeout: float = 40.0  # how long the customer's phone rings
    result_grace: float = 15.0  # extra wait for Asterisk's OriginateResponse
    caller_id: str | None = None
    max_attempts: int = 3  # cap per request, whatever the request asked for
    flow: str = "callback"  # the flow of requests that name none
    number_pattern: str = validate.DEFAULT_NUMBER_PATTERN
    answered_timeout: float = 4 * 3600.0  # an answered callback whose flow never reported is closed after this
    lease: float = 60.0  # a dialing request stays leased this long without renewal (renewed every third of it)

    @classmethod
    def from_settings(cls, callbacks: CallbackSettings) -> CallbackPolicy:
        """From the `callbacks:` settings (interval, retry_after, max_attempts, flow, number_pattern,
        per_queue_limit, queue_limits, lease)."""
        return cls(
            poll_interval=float(callbacks.interval),
            backoff=(float(callbacks.retry_after),),
            max_attempts=callbacks.max_attempts,
            flow=callbacks.flow,
            number_pattern=callbacks.number_pattern,
            per_queue_limit=callbacks.per_queue_limit,
            queue_limits=dict(callbacks.queue_limits),
            lease=float(callbacks.lease),
        )

    def limit_for(self, queue: str) -> int:
        return self.queue_limits.get(queue, self.per_queue_limit)

    def retry_delay(self, attempts_done: int) -> float:
        return self.backoff[min(max(attempts_done - 1, 0), len(self.backoff) - 1)] if self.backoff else 60.0

    def retry_at(self, at: datetime, attempts_done: int, max_attempts: int) -> datetime | None:
        """When to try again after `attempts_done` attempts, or None when no attempt is left."""
        if attempts_done >= min(max_attempts, self.max_attempts):
            return None
        return at + timedelta(seconds=self.retry_delay(attempts_done))


# OriginateResponse reason (ivr.ami.actions.ORIGINATE_REASONS text) -> stored attempt result (callbacks and
# campaigns: ivr.campaigns.dialer).
ORIGINATE_RESULTS = {
    "answered": "answered",
    "busy": "busy",
    "no_answer": "no_answer",
    "congestion": "busy",
    "failed": "failed",
    "hangup": "failed",
}
_CALLBACK_ID = re.compile(r"^[0-9]{1,18}$")

# What the callback flow's report says about its request.
FlowVerdict = Literal["connected", "cancelled", "not_connected"]
_VERDICT_TEXT = {
    "connected": "connected",
    "cancelled": "the customer no longer needs help (cancelled)",
    "not_connected": "answered but not connected (no_agent)",
}


class FlowVersions(Protocol):
    """`ivr.flow.repository.FlowRepository` as call control reads it: the flows of the running version (a
    Protocol: importing the repository would bring the flow engine's HTTP lookups into call control)."""

    @property
    def current(self) -> Mapping[str, Flow]: ...


Flows = FlowVersions | Mapping[str, Flow]  # the service's repository, or flows by name


class CallbackOperations(Protocol):
    """What the scheduler needs of call control: `CallOperations`, or `FleetOperations` with several servers (which
    sends a request's call to its queue's home server)."""

    async def originate_flow(self, number: str, flow: str, **options: Unpack[FlowCallOptions]) -> Originated: ...

    async def wait_originate(self, originated: Originated, timeout: float) -> OriginateResult | None: ...


def flow_verdict(report: CallReport) -> FlowVerdict:
    """ "connected" (outcome transferred: the customer reached the queue), "cancelled" (the flow set
    callback_result=cancelled: the customer no longer needs help) or "not_connected" (try again)."""
    if report.outcome == "transferred":
        return "connected"
    if str(report.variables.get("callback_result", "") or "").strip().lower() == "cancelled":
        return "cancelled"
    return "not_connected"


def flow_queues(flows: Flows) -> frozenset[str]:
    """Queue names the flows use (transfer and callback nodes, inline menu options included)."""
    current: Mapping[str, Flow] = flows if isinstance(flows, Mapping) else flows.current
    return frozenset(literal_queues(current[name] for name in list(current)))


def queue_label(queue: str, known: Iterable[str] = (), flows: Flows | None = None) -> str:
    """A bounded metric label: the queue if the configuration or the flows name it, else "other"."""
    if queue in known:
        return queue
    try:
        return queue if flows is not None and queue in flow_queues(flows) else "other"
    except Exception:  # a flow set being reloaded must never break counting
        log.debug("cannot list the queues of the flows", exc_info=True)
        return "other"


class CallbackScheduler(LeasedDialer):
    noun, task_name, runner_suffix = "callbacks", "callback", "scheduler"
    round_name, storage_action, resumed = "callback scheduler round", "callback_scheduler", "scheduling again"
    _inflight: set[int]

    def __init__(
        self,
        storage: Storage,
        operations: CallbackOperations,
        policy: CallbackPolicy | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        known_queues: Iterable[str] = (),
        flows: Flows | None = None,
        instance: str | None = None,
    ) -> None:
        """`instance`: this service instance's name (the `instance` setting; default the host name). Leases are
        held by `owner` = instance/pid, unique per process even when instances share a host name."""
        self.policy = policy or CallbackPolicy()
        super().__init__(self.policy, instance)
        self.storage = storage
        self.operations = operations
        self.clock = clock
        self.known_queues = frozenset(known_queues)  # metric labels: configured queues ...
        self.flows = flows  # ... and those in the flows (a FlowRepository)
        self.active: dict[str, int] = {}
        self._number_re = re.compile(self.policy.number_pattern)
        self._inflight = set()  # callback ids with an attempt running (leased by this process)

    def label(self, queue: str) -> str:
        return queue_label(queue, self.known_queues, self.flows)

    async def renew_leases(self) -> int:
        """Extend the leases of this process's running attempts; returns how many it still holds."""
        until = self.clock() + timedelta(seconds=self.policy.lease)
        return await self.storage.renew_callback_leases(self.owner, set(self._inflight), until)

    # --- one round ---------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Close stale answered rows, then lease and start attempts for due requests within each queue's free
        slots (counted across instances). Returns how many started."""
        now = self.clock()
        await self._sweep(now)
        started = 0
        until = now + timedelta(seconds=self.policy.lease)
        for queue in await self.storage.due_callback_queues(now):
            leased = await self.storage.lease_due_callbacks(
                now, queue=queue, limit=self.policy.limit_for(queue), owner=self.owner, lease_until=until
            )
            for req in leased:
                if req.id is None:
                    continue
                self.active[queue] = self.active.get(queue, 0) + 1
                self._inflight.add(req.id)
                self._spawn(self._attempt(req))
                started += 1
        return started

    async def _sweep(self, now: datetime) -> None:
        # Answered requests whose flow never reported (a lost AGI session, a crash) are closed as completed.
        closed = await self.storage.close_stale_answered_callbacks(
            now - timedelta(seconds=self.policy.answered_timeout)
        )
        if closed:
            log.warning(
                "callbacks: %d answered request(s) got no report from their flow in %.0f s; closed as completed",
                closed,
                self.policy.answered_timeout,
            )

    async def _attempt(self, req: CallbackRequest) -> None:
        cb_id = req.id if req.id is not None else -1
        label = self.label(req.queue)
        metrics.CALLBACKS.labels(queue=label, result="attempted").inc()
        try:
            try:
                outcome, call_id, retry = await self._dial(req)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("callback %s: attempt failed unexpectedly", cb_id)
                outcome, call_id, retry = "error", "", True
            at = self.clock()
            retry_at = self.policy.retry_at(at, req.attempts + 1, req.max_attempts) if retry else None
            try:
                updated = await self.storage.record_callback_attempt(
                    cb_id, outcome, at, retry_at=retry_at, call_id=call_id, owner=self.owner
                )
            except Exception as exc:
                # The row stays "dialing" under our lease, which is no longer renewed: it expires and the request
                # is tried again (by any instance).
                metrics.STORAGE_FAILURES.labels(action="callback_attempt").inc()
                log.error(
                    "callback %s: cannot store the attempt result %s (%s); it will be retried", cb_id, outcome, exc
                )
                return
            self._count(label, updated.state)
            log.info(
                "callback %s to queue %s: attempt %d %s -> %s",
                cb_id,
                req.queue,
                updated.attempts,
                outcome,
                updated.state,
            )
            if updated.state == "pending":
                self.wake()
        finally:
            self.active[req.queue] = self.active.get(req.queue, 1) - 1
            self._inflight.discard(cb_id)
            self._slot_freed()  # a slot of the queue is free: any instance may take it

    def _count(self, label: str, state: str) -> None:
        if state in ("completed", "failed", "cancelled"):
            metrics.CALLBACKS.labels(queue=label, result=state).inc()

    async def _dial(self, req: CallbackRequest) -> tuple[str, str, bool]:
        """(attempt result, call id, whether to retry)."""
        if not self._number_re.fullmatch(req.number or ""):
            log.warning(
                "callback %s: number %r does not match callbacks.number_pattern; not calling it", req.id, req.number
            )
            return "failed", "", False
        try:
            validate.name(req.queue, "queue")
        except CallControlError as exc:
            log.warning("callback %s: %s; not calling it", req.id, exc)
            return "failed", "", False
        variables = {dialplan.CALLBACK_ID: str(req.id), dialplan.CALLBACK_QUEUE: req.queue}
        if req.language:
            try:
                variables[dialplan.LANG] = validate.language(req.language)
            except CallControlError:
                log.warning(
                    "callback %s: language %r is not a language code; the flow's default is used", req.id, req.language
                )
        try:
            originated = await self.operations.originate_flow(
                req.number,
                req.flow or self.policy.flow,
                caller_id=self.policy.caller_id,
                service_variables=variables,
                timeout=self.policy.ring_timeout,
                queue=req.queue,  # with several Asterisk servers, the queue's home server calls
            )
        except CallControlError as exc:
            log.warning("callback %s: originate refused: %s", req.id, exc)
            if exc.status == 503:
                return "error", "", True
            return "failed", "", exc.status != 422  # a request we can never send is not retried
        result = await self.operations.wait_originate(originated, self.policy.ring_timeout + self.policy.result_grace)
        if result is None:
            return "error", originated.call_id, True  # no OriginateResponse: outcome unknown, try again later
        return ORIGINATE_RESULTS.get(result.reason_text, "failed"), originated.call_id, True

    # --- the callback flow's report ----------------------------------------------------------------------------

    def on_flow_report(self, report: CallReport) -> asyncio.Task[None] | None:
        """FastAGI `on_report` sink (called synchronously after each call): a callback call's report carries its
        request id as the `callback` query parameter (variable `param_callback`); see `flow_verdict` for what
        the report decides. Returns the task storing the result (None for calls that are not callbacks)."""
        raw = str(report.variables.get("param_callback", "") or "")
        if not _CALLBACK_ID.match(raw):
            return None
        return self._spawn(self._resolve(int(raw), flow_verdict(report)))

    async def _resolve(self, cb_id: int, verdict: FlowVerdict) -> None:
        try:
            req = await self.storage.get_callback(cb_id)
            if req.state == "dialing":
                # The flow ended before the attempt's result was stored (here or on another instance): leave the
                # verdict on the row; storing the result applies it.
                if await self.storage.defer_callback_verdict(cb_id, verdict):
                    log.info("callback %s: flow report (%s) kept until the attempt's result", cb_id, verdict)
                    return
                req = await self.storage.get_callback(cb_id)  # the result was stored meanwhile
            if req.state != "answered":
                log.info("callback %s: flow report ignored, the request is %s", cb_id, req.state)
                return
            if verdict == "cancelled":
                # Done: the customer said so on this (answered) call; cancel_callback moves it out of the
                # states the scheduler dials, and its attempt stays "answered" (they did pick up).
                cancelled = await self.storage.cancel_callback(cb_id)
                updated = await self.storage.get_callback(cb_id) if cancelled else None
            else:
                connected = verdict == "connected"
                at = self.clock()
                retry_at = None if connected else self.policy.retry_at(at, req.attempts, req.max_attempts)
                updated = await self.storage.resolve_answered_callback(cb_id, connected, at, retry_at=retry_at)
        except NotFound:
            log.warning("callback %s: a flow reported on a request that does not exist", cb_id)
            return
        except Exception as exc:
            log.error("callback %s: cannot store the flow's outcome (%s)", cb_id, exc)
            return
        if updated is None:
            return
        self._count(self.label(updated.queue), updated.state)
        log.info("callback %s to queue %s: %s -> %s", cb_id, updated.queue, _VERDICT_TEXT[verdict], updated.state)
        if updated.state == "pending":
            self.wake()

"""The loop both lease-based diallers run: the callback scheduler and the campaign dialer.

Rules for this file:
- One round (`run_once`) leases due rows from the storage and starts an attempt task for each; rounds run every
  `poll_interval`, or at once after `wake()`. A lost database skips the round (counted in
  ivr_storage_failures_total, logged once while it lasts) and never stops the loop.
- Every third of `lease` the leases of this process's running attempts (`_inflight`) are renewed, so an instance
  that dies stops renewing and another one takes its rows over once they expire.
- A slot an attempt frees is shared: the dialler looks again only after a random moment of up to `share_delay`
  (at most the poll interval), so instances polling meanwhile get a fair chance at it.
- What a round leases and how its attempts run are the subclass's; this file owns only the loop's lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Collection, Coroutine
from typing import Any, Protocol

from ivr import metrics
from ivr.storage import StorageError


class LeasePolicy(Protocol):
    poll_interval: float
    share_delay: float
    lease: float


class LeasedDialer:
    """The lifecycle of a lease-based dialler; subclasses name it and implement `run_once` and `renew_leases`."""

    noun = "dialler"  # in log lines: "callbacks", "campaigns"
    task_name = "dialler"  # its tasks are <task_name>-<runner_suffix> and <task_name>-leases
    runner_suffix = "dialler"
    round_name = "dialler round"  # "callback scheduler round", ...
    storage_action = "dialler"  # the action label of ivr_storage_failures_total
    resumed = "dialling again"  # logged when the database is back
    _inflight: Collection[int]  # ids with an attempt running (leased by this process); the subclass's own kind

    def __init__(self, policy: LeasePolicy, instance: str | None = None) -> None:
        """`instance`: this service instance's name (the `instance` setting; default the host name). Leases are
        held by `owner` = instance/pid, unique per process even when instances share a host name."""
        self.lease_policy = policy
        self.instance = instance or socket.gethostname()
        self.owner = f"{self.instance}/{os.getpid()}"
        self._log = logging.getLogger(type(self).__module__)  # lines keep the dialler's own logger
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._storage_down = False

    async def run_once(self) -> int:
        raise NotImplementedError

    async def renew_leases(self) -> int:
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._runner = loop.create_task(self._run(), name=f"{self.task_name}-{self.runner_suffix}")
        self._renewer = loop.create_task(self._renew_leases(), name=f"{self.task_name}-leases")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop leasing at once; let attempts already ringing finish for up to `grace` seconds (their leases
        renewed meanwhile), so a restart stores their results instead of leaving them to be dialled again after
        the lease expires; then cancel what is left."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if grace > 0 and self._tasks:
            self._log.info(
                "%s: waiting up to %.0f s for %d attempt(s) in progress", self.noun, grace, len(self._inflight)
            )
            await asyncio.wait(list(self._tasks), timeout=grace)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        """Something is due (added, or due again): look now rather than at the next poll."""
        self._wake.set()

    async def drain(self) -> None:
        """Wait for the attempts and report handlers in flight (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _slot_freed(self) -> None:
        """Look again after a random moment (see the rules above): the slot is shared, not kept."""
        policy = self.lease_policy
        delay = random.uniform(0.0, min(policy.share_delay, policy.poll_interval))
        asyncio.get_running_loop().call_later(delay, self.wake)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                self._storage_ok()
            except StorageError as exc:
                self._storage_failed(exc)
            except Exception:
                self._log.exception("%s failed; retrying at the next poll", self.round_name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.lease_policy.poll_interval)
            self._wake.clear()

    def _storage_failed(self, exc: Exception) -> None:
        metrics.STORAGE_FAILURES.labels(action=self.storage_action).inc()
        if not self._storage_down:
            self._log.warning("%s: the database is not available (%s); retrying every poll", self.noun, exc)
        self._storage_down = True

    def _storage_ok(self) -> None:
        if self._storage_down:
            self._log.info("%s: the database is back; %s", self.noun, self.resumed)
        self._storage_down = False

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_policy.lease / 3)
            if not self._inflight:
                continue
            try:
                await self.renew_leases()
            except StorageError as exc:
                self._storage_failed(exc)

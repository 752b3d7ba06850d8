"""The models, states and errors of durable data, and the `Storage` interface every backend implements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

# Callback request states. `dialing` is held only while an attempt rings, under a lease (owner + expiry) taken by
# one service instance; a lease that expires (its instance died) is taken over by any instance. `answered`: the
# customer answered and the callback flow runs; the flow's report decides between `completed` (connected to the
# queue) and another attempt (`resolve_answered_callback`).
CALLBACK_STATES = ("pending", "dialing", "answered", "completed", "failed", "cancelled")
# Attempt results (also the `result` label of ivr_callbacks, so the set is fixed). `no_agent`: answered, but the
# flow did not connect the customer to the queue (hung up in the flow, error, ...).
CALLBACK_RESULTS = ("answered", "busy", "no_answer", "no_agent", "failed", "error")
# What a callback flow's report says (stored by `defer_callback_verdict` when it overtakes the attempt's result).
CALLBACK_VERDICTS = ("connected", "cancelled", "not_connected")
RECORDING_STATES = ("recording", "paused", "finished")


class StorageError(Exception):
    """The database refused an operation or could not be opened; the message says which database and why."""


class StorageUnavailable(StorageError):
    """The database cannot be reached (down, network, refused login): retry later. The API answers 503."""


class NotFound(StorageError):
    """No row with that id."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Voicemail:
    mailbox: str
    caller: str
    path: str
    seconds: float
    flow: str = ""
    call_id: str = ""
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass
class CallbackRequest:
    """A caller asked to be called back. `flow` is the flow the answered callback runs (it offers the queue)."""

    number: str
    queue: str
    flow: str = "callback"
    caller_name: str = ""
    source_call_id: str = ""
    language: str = ""
    requested_at: datetime = field(default_factory=utcnow)
    not_before: datetime | None = None  # first attempt not before this time (default: requested_at)
    max_attempts: int = 3
    attempts: int = 0
    state: str = "pending"
    last_result: str | None = None
    next_attempt_at: datetime | None = None
    id: int | None = None


@dataclass
class CallbackAttempt:
    callback_id: int
    result: str
    at: datetime
    call_id: str = ""
    id: int | None = None


@dataclass
class Recording:
    call_id: str
    path: str
    caller: str = ""
    agent: str = ""
    flow: str = ""
    queue: str = ""
    channel: str = ""
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    seconds: float | None = None
    state: str = "recording"
    id: int | None = None


@dataclass
class SurveyAnswer:
    """One answer of a post-call survey: which call, flow, survey node and question, the digit, and who served
    the caller (queue and agent, "" when unknown)."""

    call_id: str
    flow: str
    survey: str
    question: str
    answer: str
    queue: str = ""
    agent: str = ""
    answered_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@runtime_checkable
class Storage(Protocol):
    async def open(self) -> None: ...
    async def add_voicemail(self, vm: Voicemail) -> int: ...
    async def list_voicemails(self, mailbox: str | None = None, limit: int = 100) -> list[Voicemail]: ...

    async def add_callback(self, req: CallbackRequest) -> int: ...
    async def get_callback(self, callback_id: int) -> CallbackRequest: ...
    async def list_callbacks(
        self, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[CallbackRequest]: ...
    async def due_callbacks(self, now: datetime, limit: int, queue: str | None = None) -> list[CallbackRequest]: ...
    async def due_callback_queues(self, now: datetime) -> list[str]: ...
    async def mark_callback_dialing(self, callback_id: int, at: datetime) -> bool: ...
    async def lease_due_callbacks(
        self, now: datetime, *, queue: str, limit: int, owner: str, lease_until: datetime
    ) -> list[CallbackRequest]: ...
    async def renew_callback_leases(self, owner: str, callback_ids: Iterable[int], lease_until: datetime) -> int: ...
    async def defer_callback_verdict(self, callback_id: int, verdict: str) -> bool: ...
    async def record_callback_attempt(
        self,
        callback_id: int,
        result: str,
        at: datetime,
        *,
        retry_at: datetime | None = None,
        call_id: str = "",
        owner: str | None = None,
    ) -> CallbackRequest: ...
    async def callback_attempts(self, callback_id: int) -> list[CallbackAttempt]: ...
    async def resolve_answered_callback(
        self, callback_id: int, connected: bool, at: datetime, *, retry_at: datetime | None = None
    ) -> CallbackRequest | None: ...
    async def cancel_callback(self, callback_id: int) -> bool: ...
    async def requeue_stale_callbacks(
        self, claimed_before: datetime | None = None, keep: Iterable[int] = ()
    ) -> int: ...
    async def close_stale_answered_callbacks(self, answered_before: datetime) -> int: ...

    async def add_recording(self, rec: Recording) -> int: ...
    async def set_recording_state(self, recording_id: int, state: str) -> None: ...
    async def finish_recording(self, recording_id: int, end: datetime, seconds: float) -> None: ...
    async def get_recording(self, recording_id: int) -> Recording: ...
    async def list_recordings(
        self,
        *,
        call_id: str | None = None,
        caller: str | None = None,
        agent: str | None = None,
        flow: str | None = None,
        queue: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Recording]: ...

    async def add_survey_answer(self, answer: SurveyAnswer) -> int: ...
    async def list_survey_answers(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
        queue: str | None = None,
        question: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[SurveyAnswer]: ...

    async def record_contact(
        self, caller_hash: str, call_id: str, flow: str, queue: str, at: datetime, *, lookback: datetime
    ) -> list[tuple[str, str, datetime]]: ...
    async def purge_contacts(self, before: datetime) -> int: ...

    async def close(self) -> None: ...

"""The models, states and errors of durable data, and the `Storage` interface every backend implements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

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
# Outbound campaigns (ivr.campaigns). A campaign is created `draft`, dials while `running`, keeps its place while
# `paused`; `stopped` is final (set by hand), `finished` when no contact is left to dial.
CAMPAIGN_STATES = ("draft", "running", "paused", "stopped", "finished")
# A contact waits `pending` (next_attempt_at), is leased while `dialing`, `answered` while its flow runs; then
# `connected` (an agent took the call), `declined` (answered, never asked for an agent), `abandoned` (waited for
# an agent who never came; retried while attempts remain), `failed` (attempts used up, or a number never to be
# dialled) or `dnc` (on the do-not-call list when its turn came).
CONTACT_STATES = ("pending", "dialing", "answered", "connected", "declined", "abandoned", "failed", "dnc")
# Attempt results (the `result` label of ivr_campaign_attempts_total, so the set is fixed).
CAMPAIGN_RESULTS = ("answered", "busy", "no_answer", "failed", "error")
# What the answered contact's flow report says (ivr.campaigns.dialer.contact_verdict).
CAMPAIGN_VERDICTS = ("connected", "declined", "abandoned")


class StorageError(Exception):
    """The database refused an operation or could not be opened; the message says which database and why."""


class StorageUnavailable(StorageError):
    """The database cannot be reached (down, network, refused login): retry later. The API answers 503."""


class NotFound(StorageError):
    """No row with that id."""


class Conflict(StorageError):
    """The row exists already (a campaign name): the API answers 409."""


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


@dataclass
class Campaign:
    """An outbound campaign: contacts answering run `flow`, which hands them to `queue`. `settings` holds the
    dialling policy as ivr.campaigns.model.CampaignSettings validates it (stored as JSON)."""

    name: str
    flow: str
    queue: str
    settings: dict[str, Any] = field(default_factory=dict)
    state: str = "draft"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass
class CampaignContact:
    """One person to call in a campaign. `line`: the CSV line it came from (reports point there); `timezone`: the
    contact's IANA zone ("" = the campaign schedule's); `variables`: set on the call's channel."""

    campaign_id: int
    number: str
    name: str = ""
    language: str = ""
    timezone: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    line: int = 0
    state: str = "pending"
    attempts: int = 0
    last_result: str | None = None
    next_attempt_at: datetime = field(default_factory=utcnow)
    answered_at: datetime | None = None
    verdict: str | None = None  # a flow report that came before the attempt's result
    id: int | None = None


@dataclass
class CampaignAttempt:
    campaign_id: int
    contact_id: int
    result: str
    at: datetime
    call_id: str = ""
    outcome: str | None = None  # answered attempts: connected, declined or abandoned once the flow reported
    id: int | None = None


@dataclass
class CampaignStats:
    """Counts of one campaign: contacts by state, attempts by result, answered attempts by outcome (all time, or
    since a moment: the abandon guard's window)."""

    contacts: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.attempts.get("answered", 0)

    @property
    def abandoned(self) -> int:
        return self.outcomes.get("abandoned", 0)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass
class DncEntry:
    number: str
    reason: str = ""
    added_at: datetime = field(default_factory=utcnow)


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

    # outbound campaigns (ivr.storage.campaigns)
    async def add_campaign(self, campaign: Campaign) -> int: ...
    async def get_campaign(self, campaign_id: int) -> Campaign: ...
    async def list_campaigns(self, state: str | None = None) -> list[Campaign]: ...
    async def set_campaign_state(
        self, campaign_id: int, state: str, at: datetime, *, from_states: Iterable[str]
    ) -> Campaign | None: ...
    async def add_campaign_contacts(
        self, campaign_id: int, contacts: list[CampaignContact]
    ) -> tuple[int, list[CampaignContact]]: ...
    async def get_campaign_contact(self, contact_id: int) -> CampaignContact: ...
    async def list_campaign_contacts(
        self, campaign_id: int, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[CampaignContact]: ...
    async def lease_campaign_contacts(
        self,
        campaign_id: int,
        now: datetime,
        *,
        limit: int,
        owner: str,
        lease_until: datetime,
        answered_since: datetime | None = None,
        queue: str | None = None,
    ) -> list[CampaignContact]: ...
    async def renew_campaign_leases(self, owner: str, contact_ids: Iterable[int], lease_until: datetime) -> int: ...
    async def release_campaign_contact(
        self, contact_id: int, owner: str, *, state: str = "pending", next_attempt_at: datetime | None = None
    ) -> bool: ...
    async def record_campaign_attempt(
        self,
        contact_id: int,
        result: str,
        at: datetime,
        *,
        retry_at: datetime | None = None,
        call_id: str = "",
        owner: str | None = None,
    ) -> CampaignContact: ...
    async def defer_campaign_verdict(self, contact_id: int, verdict: str) -> bool: ...
    async def resolve_campaign_contact(
        self, contact_id: int, verdict: str, at: datetime, *, retry_at: datetime | None = None
    ) -> CampaignContact | None: ...
    async def campaign_attempts(self, contact_id: int) -> list[CampaignAttempt]: ...
    async def campaign_done(self, campaign_id: int) -> bool: ...
    async def campaign_stats(self, campaign_id: int, since: datetime | None = None) -> CampaignStats: ...
    async def add_dnc(self, entries: list[DncEntry]) -> int: ...
    async def remove_dnc(self, number: str) -> bool: ...
    async def list_dnc(self, *, number: str | None = None, limit: int = 100, offset: int = 0) -> list[DncEntry]: ...
    async def is_dnc(self, number: str) -> bool: ...

    async def close(self) -> None: ...

"""The campaign dialer: calls the contacts of running campaigns into their flow, paced by the queue's agents.

Rules for this file:
- Storage is the source of truth, shared by every instance (the callback scheduler's pattern, ivr.calls.callbacks):
  each round, per running campaign, due contacts are *leased* (`lease_campaign_contacts`: the campaign's lock,
  every instance's live leases counted, SKIP LOCKED), so no contact rings twice at once; leases are renewed every
  third of the lease while the call rings and expire when an instance dies (its contacts are taken over).
- How many calls may be in progress at once: ivr.campaigns.pacing (ratio x available agents of the queue, their
  state over every queue they serve, held back by the abandon-rate guard), less the callers already waiting in
  that queue (they take the next free agents). In progress, over every instance and every running campaign on the
  same queue: contacts ringing (live leases) and contacts answered within their campaign's `flow_time` whose flow
  has not reported yet (in the greeting, about to want an agent).
- No round while the campaign's Asterisk is not logged in (`pbx_up`), and an Originate refused because Asterisk is
  unreachable hands the contact back without using an attempt: an outage never burns the contact list.
- Right before each attempt: the do-not-call list, then the calling hours in the contact's zone (outside them the
  contact goes back with its next opening), then the dial-out pattern. Then Originate through call control
  (`originate_flow`, the fleet's routing), the OriginateResponse mapped like callbacks' (`ORIGINATE_RESULTS`).
- An answered contact waits `answered` for its flow's report (`on_flow_report`; the report names the contact by
  the `contact` query parameter the dialplan passes): connected, declined or abandoned (`contact_verdict`).
- A lost database skips the round (counted), never stops the dialer. Metric labels: names in campaigns.names,
  else "other".
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ivr import dialplan, metrics
from ivr.calls import validate
from ivr.calls.callbacks import ORIGINATE_RESULTS
from ivr.calls.errors import CallControlError
from ivr.calls.leasing import LeasedDialer
from ivr.calls.queues import agent_states
from ivr.campaigns.hours import RETRY_CLOSED, next_call_time
from ivr.campaigns.model import CampaignSettings
from ivr.campaigns.pacing import Pace, pace
from ivr.flow.hours import HoursError
from ivr.storage import Campaign, CampaignContact, DncEntry, NotFound, Storage, StorageError

log = logging.getLogger(__name__)

_CONTACT_ID = re.compile(r"^[0-9]{1,18}$")
UNREACHABLE = "unreachable"  # _dial: Asterisk refused or could not take the Originate (503); no call was made


def contact_verdict(report: Any) -> str:
    """connected (the flow handed the contact to an agent who answered: outcome transferred), abandoned (the flow
    put the contact into a transfer -- the queue -- and no agent took the call: hung up waiting, queue timeout,
    queue empty) or declined (the contact never reached the transfer: hung up in the greeting, said no)."""
    if getattr(report, "outcome", "") == "transferred":
        return "connected"
    if any(getattr(visit, "kind", "") == "transfer" for visit in getattr(report, "visits", ()) or ()):
        return "abandoned"
    return "declined"


def available_agents(registry: Any, queue: str) -> int:
    """Members available in `queue` and not busy in any other (`agent_states`: one in a call of another queue
    cannot take this one; paused in another queue only does not matter here)."""
    queues = registry.queues  # the fleet's is merged on each read: once
    found = queues.get(queue)
    if found is None:
        return 0
    states = agent_states(q.members for q in list(queues.values()))
    return sum(
        1 for interface, m in list(found.members.items()) if m.state == "available" and states[interface] != "busy"
    )


def pbx_up(operations: Any, queue: str) -> bool:
    """Whether the Asterisk the campaign's calls go to is logged in: the fleet's choice for the queue (its home
    server, else any logged-in one), or the one server's AMI."""
    server_for = getattr(operations, "server_for", None)
    if server_for is not None:
        try:
            server_for(queue)
        except CallControlError:
            return False
        return True
    return bool(getattr(getattr(operations, "ami", None), "logged_in", True))


def waiting_callers(registry: Any, queue: str) -> int:
    found = registry.queues.get(queue)
    return 0 if found is None else len(found.callers)


@dataclass
class DialerPolicy:
    poll_interval: float = 5.0
    share_delay: float = 1.0  # a freed slot: look again after a random moment up to this
    lease: float = 60.0
    result_grace: float = 15.0  # extra wait for Asterisk's OriginateResponse after the ring timeout
    number_pattern: str = validate.DEFAULT_NUMBER_PATTERN
    flows_dir: Path | None = None  # where a schedule's holiday_calendar file lives
    names: frozenset[str] = field(default_factory=frozenset)  # metric labels: campaigns.names

    @classmethod
    def from_settings(cls, settings: Any) -> DialerPolicy:
        """From `ivr.settings.Settings` (campaigns.*, callbacks.number_pattern, flows_dir)."""
        c = settings.campaigns
        return cls(
            poll_interval=float(c.interval),
            lease=float(c.lease),
            number_pattern=str(settings.callbacks.number_pattern),
            flows_dir=Path(settings.flows_dir),
            names=frozenset(c.names),
        )


class CampaignDialer(LeasedDialer):
    noun, task_name, runner_suffix = "campaigns", "campaign", "dialer"
    round_name, storage_action, resumed = "campaign dialer round", "campaign_dialer", "dialling again"
    _inflight: dict[int, str]

    def __init__(
        self,
        storage: Storage,
        operations: Any,
        registry: Any,
        policy: DialerPolicy | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        instance: str | None = None,
    ) -> None:
        """`operations`: call control (CallOperations or the fleet's); `registry`: its call registry (queue members
        and waiting callers). `instance` names the leases' owner with the pid, like the callback scheduler."""
        self.policy = policy or DialerPolicy()
        super().__init__(self.policy, instance)
        self.storage = storage
        self.operations = operations
        self.registry = registry
        self.clock = clock
        self.paces: dict[int, Pace] = {}  # the last pacing decision per campaign id (API statistics)
        self._number_re = re.compile(self.policy.number_pattern)
        self._inflight = {}  # contact id -> metric label, attempts of this process
        self._pbx_down: set[int] = set()  # campaigns skipped while their Asterisk is not logged in (log once)
        self.pick_server_by_queue = hasattr(operations, "server_for")

    def label(self, name: str) -> str:
        return name if name in self.policy.names else "other"

    async def renew_leases(self) -> int:
        """Extend the leases of this process's running attempts; returns how many it still holds."""
        until = self.clock() + timedelta(seconds=self.policy.lease)
        return await self.storage.renew_campaign_leases(self.owner, set(self._inflight), until)

    # --- one round ---------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Lease and start attempts for every running campaign within its pace. Returns how many started."""
        started = 0
        for campaign in await self.storage.list_campaigns(state="running"):
            started += await self._campaign_round(campaign, self.clock())
        return started

    async def _campaign_round(self, campaign: Campaign, now: datetime) -> int:
        assert campaign.id is not None
        label = self.label(campaign.name)
        try:
            settings = CampaignSettings.model_validate(campaign.settings)
        except ValidationError as exc:  # written by an older release or by hand: say so, do not dial
            log.error("campaign %s: stored settings are not valid (%s); pause it and fix them", campaign.name, exc)
            return 0
        if not pbx_up(self.operations, campaign.queue):
            if campaign.id not in self._pbx_down:
                log.warning("campaign %s: Asterisk is not logged in; no calls until it is back", campaign.name)
                self._pbx_down.add(campaign.id)
            self.paces[campaign.id] = Pace(0.0, 0, "asterisk_down")
            return 0
        if campaign.id in self._pbx_down:
            self._pbx_down.discard(campaign.id)
            log.info("campaign %s: Asterisk is logged in again; dialling", campaign.name)
        # Answered contacts are not dialled again unless their report says abandoned (which reopens the campaign),
        # and one whose report never comes (the service was unreachable) must not keep the campaign open forever.
        if await self.storage.campaign_done(campaign.id):
            if await self.storage.set_campaign_state(campaign.id, "finished", now, from_states=("running",)):
                log.info("campaign %s: every contact is done; finished", campaign.name)
            return 0
        window = await self.storage.campaign_stats(campaign.id, since=now - timedelta(seconds=settings.abandon.window))
        decision = pace(
            settings.ratio,
            available_agents(self.registry, campaign.queue),
            window.answered,
            window.abandoned,
            settings.abandon,
        )
        self.paces[campaign.id] = decision
        if label != "other":  # a rate or ratio of several campaigns under one label would mean nothing
            metrics.CAMPAIGN_ABANDON_RATE.labels(campaign=label).set(window.abandon_rate)
            metrics.CAMPAIGN_PACING_RATIO.labels(campaign=label).set(decision.ratio)
        slots = decision.slots - waiting_callers(self.registry, campaign.queue)
        if slots <= 0:
            return 0
        leased = await self.storage.lease_campaign_contacts(
            campaign.id,
            now,
            limit=slots,
            owner=self.owner,
            lease_until=now + timedelta(seconds=self.policy.lease),
            answered_since=now - timedelta(seconds=settings.flow_time),
            queue=campaign.queue,
        )
        for contact in leased:
            if contact.id is not None:
                self._inflight[contact.id] = label
                self._spawn(self._attempt(campaign, settings, contact, label))
        metrics.CAMPAIGN_DIALING.labels(campaign=label).set(sum(1 for v in self._inflight.values() if v == label))
        return len(leased)

    async def _attempt(
        self, campaign: Campaign, settings: CampaignSettings, contact: CampaignContact, label: str
    ) -> None:
        contact_id = contact.id if contact.id is not None else -1
        try:
            await self._try(campaign, settings, contact, label)
        except asyncio.CancelledError:
            raise
        except StorageError as exc:  # the lease is no longer renewed: the contact is dialled again after it expires
            self._storage_failed(exc)
        except Exception:
            log.exception("campaign %s contact %s: attempt failed unexpectedly", campaign.name, contact_id)
        finally:
            self._inflight.pop(contact_id, None)
            metrics.CAMPAIGN_DIALING.labels(campaign=label).set(sum(1 for v in self._inflight.values() if v == label))
            self._slot_freed()  # the slot is shared: any instance may take it

    async def _try(self, campaign: Campaign, settings: CampaignSettings, contact: CampaignContact, label: str) -> None:
        assert contact.id is not None
        now = self.clock()
        if await self.storage.is_dnc(contact.number):
            await self.storage.release_campaign_contact(contact.id, self.owner, state="dnc")
            metrics.CAMPAIGN_ATTEMPTS.labels(campaign=label, result="dnc").inc()
            log.info("campaign %s contact %s: on the do-not-call list; skipped", campaign.name, contact.id)
            return
        try:
            when = next_call_time(settings.schedule, now, contact.timezone, self.policy.flows_dir)
        except HoursError as exc:  # the holiday calendar went missing or broken since the campaign was created
            log.error("campaign %s: calling hours cannot be read (%s); its contacts wait an hour", campaign.name, exc)
            when = now + RETRY_CLOSED
        if when > now:
            await self.storage.release_campaign_contact(contact.id, self.owner, next_attempt_at=when)
            log.debug("campaign %s contact %s: outside calling hours until %s", campaign.name, contact.id, when)
            return
        if not self._number_re.fullmatch(contact.number):
            await self.storage.release_campaign_contact(contact.id, self.owner, state="failed")
            log.warning(
                "campaign %s contact %s: the number no longer matches callbacks.number_pattern",
                campaign.name,
                contact.id,
            )
            return
        result, call_id = await self._dial(campaign, settings, contact)
        at = self.clock()
        if result == UNREACHABLE:  # not an attempt: the contact waits for Asterisk, its attempts untouched
            await self.storage.release_campaign_contact(
                contact.id, self.owner, next_attempt_at=at + timedelta(seconds=settings.retry.error)
            )
            return
        retry_at = None
        if result != "answered" and contact.attempts + 1 < settings.max_attempts:
            retry_at = at + timedelta(seconds=settings.retry.delay(result))
        metrics.CAMPAIGN_ATTEMPTS.labels(campaign=label, result=result).inc()
        updated = await self.storage.record_campaign_attempt(
            contact.id, result, at, retry_at=retry_at, call_id=call_id, owner=self.owner
        )
        log.info(
            "campaign %s contact %s: attempt %d %s -> %s",
            campaign.name,
            contact.id,
            updated.attempts,
            result,
            updated.state,
        )
        if updated.state == "answered" and updated.verdict:  # the flow reported before the result was stored
            await self._resolve(contact.id, updated.verdict)

    async def _dial(self, campaign: Campaign, settings: CampaignSettings, contact: CampaignContact) -> tuple[str, str]:
        assert contact.id is not None
        service_variables = {dialplan.CONTACT_ID: str(contact.id), dialplan.CALLBACK_QUEUE: campaign.queue}
        if contact.language:
            service_variables[dialplan.LANG] = contact.language
        try:
            originated = await self.operations.originate_flow(
                contact.number,
                campaign.flow,
                caller_id=settings.caller_id,
                variables=dict(contact.variables),
                service_variables=service_variables,
                timeout=settings.ring_timeout,
                **({"queue": campaign.queue} if self.pick_server_by_queue else {}),
            )
        except CallControlError as exc:
            log.warning("campaign %s contact %s: originate refused: %s", campaign.name, contact.id, exc)
            return (UNREACHABLE if exc.status == 503 else "failed"), ""
        result = await self.operations.wait_originate(originated, settings.ring_timeout + self.policy.result_grace)
        if result is None:
            return "error", originated.call_id  # no OriginateResponse: the outcome is unknown
        return ORIGINATE_RESULTS.get(result.reason_text, "failed"), originated.call_id

    # --- the campaign flow's report ----------------------------------------------------------------------------

    def on_flow_report(self, report: Any) -> asyncio.Task[None] | None:
        """FastAGI `on_report` sink: a campaign call's report carries its contact id (variable `param_contact`);
        the flow variable `campaign_result` = "dnc" (the contact asked not to be called again) lists the number on
        the do-not-call list."""
        variables = getattr(report, "variables", None) or {}
        raw = str(variables.get("param_contact", "") or "")
        if not _CONTACT_ID.match(raw):
            return None
        opted_out = str(variables.get("campaign_result", "") or "").strip().lower() == "dnc"
        return self._spawn(self._report(int(raw), contact_verdict(report), opted_out))

    async def _report(self, contact_id: int, verdict: str, opted_out: bool = False) -> None:
        try:
            contact = await self.storage.get_campaign_contact(contact_id)
            if opted_out:
                entry = DncEntry(contact.number, "asked during a campaign call", self.clock())
                if await self.storage.add_dnc([entry]):
                    log.info("campaigns: contact %s asked not to be called again; on the do-not-call list", contact_id)
            if contact.state == "dialing" and await self.storage.defer_campaign_verdict(contact_id, verdict):
                return  # the attempt's result is not stored yet: storing it applies the verdict
            await self._resolve(contact_id, verdict)
        except NotFound:
            log.warning("campaigns: a flow reported on contact %s, which does not exist", contact_id)
        except StorageError as exc:
            self._storage_failed(exc)

    async def _resolve(self, contact_id: int, verdict: str) -> None:
        contact = await self.storage.get_campaign_contact(contact_id)
        campaign = await self.storage.get_campaign(contact.campaign_id)
        at = self.clock()
        retry_at = None
        if verdict == "abandoned":
            try:
                settings = CampaignSettings.model_validate(campaign.settings)
            except ValidationError:
                settings = None
            if settings is not None and contact.attempts < settings.max_attempts:
                retry_at = at + timedelta(seconds=settings.retry.abandoned)
        updated = await self.storage.resolve_campaign_contact(contact_id, verdict, at, retry_at=retry_at)
        if updated is None:
            return  # reported twice, or not answered
        metrics.CAMPAIGN_OUTCOMES.labels(campaign=self.label(campaign.name), outcome=verdict).inc()
        log.info("campaign %s contact %s: %s -> %s", campaign.name, contact_id, verdict, updated.state)
        if updated.state == "pending":  # abandoned, to be called again: a finished campaign runs again
            if await self.storage.set_campaign_state(campaign.id or 0, "running", at, from_states=("finished",)):
                log.info("campaign %s: a contact to call again reopens it", campaign.name)
            self.wake()

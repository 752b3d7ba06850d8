"""Outbound campaigns: create, upload contacts (CSV), start / pause / resume / stop, statistics; the do-not-call
list (add, list, remove, CSV import).

Rules for this file:
- Campaign state lives in the storage (every instance sees it); a state change wakes this instance's dialer.
- New contacts reopen a finished campaign (it runs again); a stopped one takes none.
- A CSV upload is all or nothing: when any row is bad, nothing is stored and the 422 lists every problem with its
  line, column and what to do. Numbers the campaign has already are skipped and listed (re-uploading a file adds
  nothing twice). The body is read up to campaigns.max_upload_bytes (not the JSON body limit).
- Times of new rows come from the dialer's clock (the simulator's virtual clock in tests), else now.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ivr.api.deps import deps, parse_body, parse_query, path_id
from ivr.api.errors import JSONError
from ivr.api.schemas import CampaignBody, ContactsQuery, DncBody, DncQuery, EmptyBody
from ivr.calls import validate
from ivr.campaigns.contacts import CSVTooLarge, parse_contacts, parse_dnc
from ivr.campaigns.hours import check_calendar
from ivr.flow.hours import HoursError
from ivr.storage import CONTACT_STATES, Campaign, CampaignContact, Conflict, DncEntry

CSV_TYPES = ("text/csv", "text/plain", "application/csv")
# action -> (new state, states it may come from)
TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "start": ("running", ("draft",)),
    "pause": ("paused", ("running",)),
    "resume": ("running", ("paused",)),
    "stop": ("stopped", ("draft", "running", "paused")),
}
_UPLOAD_STATES = ("draft", "running", "paused", "finished")  # new contacts reopen a finished campaign


def _now(request: web.Request) -> datetime:
    dialer = deps(request).campaigns
    return dialer.clock() if dialer is not None else datetime.now(UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def campaign_json(c: Campaign) -> dict[str, Any]:
    return {k: _iso(v) for k, v in asdict(c).items()}


def contact_json(c: CampaignContact) -> dict[str, Any]:
    return {k: _iso(v) for k, v in asdict(c).items()}


async def read_csv(request: web.Request) -> bytes:
    """The raw CSV body, refused past the upload limit (413) or with another media type (415)."""
    if request.content_type not in CSV_TYPES:
        raise JSONError(
            415, "unsupported_media_type", "send the file as CSV with 'Content-Type: text/csv' (curl --data-binary)"
        )
    limit = deps(request).max_upload_bytes
    data = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        data += chunk
        if len(data) > limit:
            raise JSONError(413, "too_large", f"CSV uploads are limited to {limit} bytes; split the file")
    return bytes(data)


async def _stats(request: web.Request, campaign: Campaign) -> dict[str, Any]:
    assert campaign.id is not None
    storage, dialer = deps(request).storage, deps(request).campaigns
    totals = await storage.campaign_stats(campaign.id)
    pace = dialer.paces.get(campaign.id) if dialer is not None else None
    window = campaign.settings.get("abandon", {}).get("window", 3600.0)
    recent = await storage.campaign_stats(campaign.id, since=_now(request) - timedelta(seconds=float(window)))
    return {
        "contacts": {state: totals.contacts.get(state, 0) for state in CONTACT_STATES},
        "attempts": totals.attempts,
        "answered": totals.answered,
        "connected": totals.outcomes.get("connected", 0),
        "declined": totals.outcomes.get("declined", 0),
        "abandoned": totals.abandoned,
        "abandon_rate": round(totals.abandon_rate, 6),
        "abandon_rate_window": round(recent.abandon_rate, 6),
        "pacing": None if pace is None else {"ratio": pace.ratio, "slots": pace.slots, "reason": pace.reason},
    }


# --- campaigns -------------------------------------------------------------------------------------------------


async def list_campaigns(request: web.Request) -> web.Response:
    rows = await deps(request).storage.list_campaigns()
    return web.json_response({"campaigns": [campaign_json(c) for c in rows], "count": len(rows)})


async def create_campaign(request: web.Request) -> web.Response:
    body = await parse_body(request, CampaignBody)
    repo = deps(request).flows
    if repo is not None and repo.current is not None and repo.current.get(body.flow) is None:
        # An answered contact would reach no flow (the dialplan's NOROUTE fallback): refuse it now.
        raise JSONError(
            422,
            "invalid_request",
            [{"field": "flow", "message": f"no flow {body.flow!r}; GET /flows lists them (e.g. campaign)"}],
        )
    dialer = deps(request).campaigns
    if dialer is not None:  # it knows the flows directory, where a holiday calendar lives
        try:
            check_calendar(body.settings.schedule, dialer.policy.flows_dir)
        except HoursError as exc:
            detail = [{"field": "settings.schedule.holiday_calendar", "message": str(exc)}]
            raise JSONError(422, "invalid_request", detail) from None
    now = _now(request)
    campaign = Campaign(
        name=body.name,
        flow=body.flow,
        queue=body.queue,
        settings=body.settings.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    try:
        campaign.id = await deps(request).storage.add_campaign(campaign)
    except Conflict as exc:
        raise JSONError(409, "conflict", str(exc)) from None
    return web.json_response(campaign_json(campaign), status=201, headers={"Location": f"/campaigns/{campaign.id}"})


async def get_campaign(request: web.Request) -> web.Response:
    campaign = await deps(request).storage.get_campaign(path_id(request, "campaign_id", "campaign"))
    return web.json_response({**campaign_json(campaign), "stats": await _stats(request, campaign)})


async def campaign_stats(request: web.Request) -> web.Response:
    campaign = await deps(request).storage.get_campaign(path_id(request, "campaign_id", "campaign"))
    return web.json_response(await _stats(request, campaign))


def _transition(action: str) -> Any:
    state, sources = TRANSITIONS[action]

    async def handler(request: web.Request) -> web.Response:
        await parse_body(request, EmptyBody)
        d = deps(request)
        campaign_id = path_id(request, "campaign_id", "campaign")
        changed = await d.storage.set_campaign_state(campaign_id, state, _now(request), from_states=sources)
        if changed is None:
            current = (await d.storage.get_campaign(campaign_id)).state
            raise JSONError(
                409,
                "invalid_state",
                f"campaign {campaign_id} is {current}; {action} needs it {' or '.join(sources)}",
            )
        if d.campaigns is not None and state == "running":
            d.campaigns.wake()
        return web.json_response(campaign_json(changed))

    handler.__name__ = f"{action}_campaign"
    return handler


# --- contacts --------------------------------------------------------------------------------------------------


async def upload_contacts(request: web.Request) -> web.Response:
    d = deps(request)
    campaign_id = path_id(request, "campaign_id", "campaign")
    campaign = await d.storage.get_campaign(campaign_id)
    if campaign.state not in _UPLOAD_STATES:
        raise JSONError(
            409, "invalid_state", f"campaign {campaign_id} is {campaign.state}; create a new campaign for new contacts"
        )
    data = await read_csv(request)
    try:
        parsed = await asyncio.to_thread(  # up to 50,000 rows: off the event loop, calls go on meanwhile
            parse_contacts, data, number_pattern=d.settings.number_re, max_rows=d.max_upload_rows
        )
    except CSVTooLarge as exc:
        raise JSONError(413, "too_large", str(exc)) from None
    if parsed.problems:
        raise JSONError(422, "invalid_csv", [p.to_json() for p in parsed.problems])
    now = _now(request)
    contacts = [
        CampaignContact(
            campaign_id=campaign_id,
            number=row.number,
            name=row.name,
            language=row.language,
            timezone=row.timezone,
            variables=row.variables,
            line=row.line,
            next_attempt_at=now,
        )
        for row in parsed.rows
    ]
    added, skipped = await d.storage.add_campaign_contacts(campaign_id, contacts)
    if added and campaign.state == "finished":
        await d.storage.set_campaign_state(campaign_id, "running", now, from_states=("finished",))
    if d.campaigns is not None and campaign.state in ("running", "finished"):
        d.campaigns.wake()
    return web.json_response(
        {
            "added": added,
            "skipped": [
                {"line": c.line, "number": c.number, "message": "already in the campaign; not added again"}
                for c in skipped
            ],
        }
    )


async def list_contacts(request: web.Request) -> web.Response:
    q = parse_query(request, ContactsQuery)
    storage = deps(request).storage
    campaign_id = path_id(request, "campaign_id", "campaign")
    await storage.get_campaign(campaign_id)  # 404 for an unknown campaign
    rows = await storage.list_campaign_contacts(campaign_id, state=q.state, limit=q.limit, offset=q.offset)
    return web.json_response({"contacts": [contact_json(c) for c in rows], "count": len(rows)})


async def get_contact(request: web.Request) -> web.Response:
    storage = deps(request).storage
    campaign_id = path_id(request, "campaign_id", "campaign")
    contact = await storage.get_campaign_contact(path_id(request, "contact_id", "contact"))
    if contact.campaign_id != campaign_id:
        raise JSONError(404, "not_found", f"campaign {campaign_id} has no contact {contact.id}")
    attempts = [{k: _iso(v) for k, v in asdict(a).items()} for a in await storage.campaign_attempts(contact.id or 0)]
    return web.json_response({**contact_json(contact), "attempts_log": attempts})


# --- do-not-call list ------------------------------------------------------------------------------------------


def _dnc_json(entry: DncEntry) -> dict[str, Any]:
    return {"number": entry.number, "reason": entry.reason, "added_at": entry.added_at.isoformat()}


async def list_dnc(request: web.Request) -> web.Response:
    q = parse_query(request, DncQuery)
    rows = await deps(request).storage.list_dnc(number=q.number, limit=q.limit, offset=q.offset)
    return web.json_response({"numbers": [_dnc_json(e) for e in rows], "count": len(rows)})


async def add_dnc(request: web.Request) -> web.Response:
    body = await parse_body(request, DncBody)
    now = _now(request)
    added = await deps(request).storage.add_dnc([DncEntry(n, body.reason, now) for n in dict.fromkeys(body.numbers)])
    return web.json_response({"added": added}, status=201)


async def import_dnc(request: web.Request) -> web.Response:
    d = deps(request)
    data = await read_csv(request)
    try:
        rows, problems = await asyncio.to_thread(parse_dnc, data, max_rows=d.max_upload_rows)
    except CSVTooLarge as exc:
        raise JSONError(413, "too_large", str(exc)) from None
    if problems:
        raise JSONError(422, "invalid_csv", [p.to_json() for p in problems])
    now = _now(request)
    added = await d.storage.add_dnc([DncEntry(r.number, r.reason, now) for r in rows])
    return web.json_response({"added": added, "rows": len(rows)}, status=201)


async def remove_dnc(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    if not re.fullmatch(validate.NUMBER_PATTERN, number):
        raise JSONError(404, "not_found", f"{number[:40]!r} is not a phone number")
    if not await deps(request).storage.remove_dnc(number):
        raise JSONError(404, "not_found", f"{number} is not on the do-not-call list")
    return web.json_response({"removed": number})


ROUTES = [
    ("GET", "/campaigns", list_campaigns),
    ("POST", "/campaigns", create_campaign),
    ("GET", "/campaigns/{campaign_id}", get_campaign),
    ("GET", "/campaigns/{campaign_id}/stats", campaign_stats),
    ("POST", "/campaigns/{campaign_id}/contacts", upload_contacts),
    ("GET", "/campaigns/{campaign_id}/contacts", list_contacts),
    ("GET", "/campaigns/{campaign_id}/contacts/{contact_id}", get_contact),
    *[("POST", f"/campaigns/{{campaign_id}}/{action}", _transition(action)) for action in TRANSITIONS],
    ("GET", "/dnc", list_dnc),
    ("POST", "/dnc", add_dnc),
    ("POST", "/dnc/import", import_dnc),
    ("DELETE", "/dnc/numbers/{number}", remove_dnc),
]

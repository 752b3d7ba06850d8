"""Stored data: the recordings index (and file downloads), callback requests with their attempts, voicemail, and
post-call survey answers (JSON or a CSV export).

Rules for this file:
- A download serves only the file named by the index row, and only if it resolves inside the configured
  recordings directory: no path ever comes from the request, and a row pointing elsewhere is refused.
- Times in are RFC 3339 with an offset (ivr.api.schemas.utc_datetime), times out ISO-8601 in UTC; ids in paths
  are ASCII digits within 64 bits (`path_id`), else 404.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

from ivr import metrics
from ivr.api.deps import deps, parse_body, parse_query, path_id
from ivr.api.errors import JSONError
from ivr.api.schemas import CallbackBody, CallbacksQuery, RecordingsQuery, SurveysQuery, VoicemailQuery
from ivr.calls import validate
from ivr.calls.callbacks import queue_label
from ivr.flow.templates import safe_filename
from ivr.storage import CallbackRequest, Recording, SurveyAnswer


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


# --- recordings ------------------------------------------------------------------------------------------------


def _recording_json(request: web.Request, rec: Recording) -> dict:
    data = _jsonable(asdict(rec))
    data["download"] = f"/recordings/{rec.id}/file" if rec.state == "finished" else None
    return data


async def list_recordings(request: web.Request) -> web.Response:
    q = parse_query(request, RecordingsQuery)
    rows = await deps(request).storage.list_recordings(
        call_id=q.call_id,
        caller=q.caller,
        agent=q.agent,
        flow=q.flow,
        queue=q.queue,
        state=q.state,
        since=q.since,
        until=q.until,
        limit=q.limit,
        offset=q.offset,
    )
    return web.json_response({"recordings": [_recording_json(request, r) for r in rows], "count": len(rows)})


async def get_recording(request: web.Request) -> web.Response:
    rec = await deps(request).storage.get_recording(path_id(request, "recording_id", "recording"))
    return web.json_response(_recording_json(request, rec))


def reachable_file(recording_path: str, recordings_dir: str, download_dir: Path) -> Path | None:
    """Where this host sees the recording file, or None if it is not under the recordings directory."""
    path = PurePosixPath(recording_path)
    base = PurePosixPath(recordings_dir)
    try:
        relative = path.relative_to(base)
    except ValueError:
        return None
    if ".." in relative.parts or not relative.parts:
        return None
    root = download_dir.resolve()
    candidate = (root / Path(*relative.parts)).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


async def download_recording(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    rec = await d.storage.get_recording(path_id(request, "recording_id", "recording"))
    if rec.state != "finished":
        raise JSONError(409, "invalid_state", "the recording is still running; download it after it stopped")
    path = reachable_file(rec.path, d.settings.recordings_dir, d.settings.recordings_path())
    if path is None:
        raise JSONError(
            404,
            "not_found",
            "the recording file is not reachable from this host (it lives on the "
            "Asterisk host; set download_dir to a shared mount to serve it)",
        )
    return web.FileResponse(
        path, headers={"Content-Disposition": f'attachment; filename="{safe_filename(path.name, default="recording")}"'}
    )


# --- callbacks -------------------------------------------------------------------------------------------------


def _callback_json(req: CallbackRequest) -> dict:
    return _jsonable(asdict(req))


async def list_callbacks(request: web.Request) -> web.Response:
    q = parse_query(request, CallbacksQuery)
    rows = await deps(request).storage.list_callbacks(state=q.state, queue=q.queue, limit=q.limit)
    return web.json_response({"callbacks": [_callback_json(r) for r in rows], "count": len(rows)})


async def create_callback(request: web.Request) -> web.Response:
    body = await parse_body(request, CallbackBody)
    d = deps(request)
    validate.number(body.number, pattern=d.settings.number_re)
    validate.name(body.queue, "queue")
    flow = validate.name(body.flow or d.settings.callback_flow, "flow")
    if body.language:
        validate.language(body.language)
    if body.max_attempts is not None and body.max_attempts > d.settings.callback_max_attempts:
        raise JSONError(
            422,
            "invalid_request",
            f"max_attempts may be at most {d.settings.callback_max_attempts} (callbacks.max_attempts in the settings)",
        )
    now = datetime.now(UTC)
    not_before = body.not_before  # aware and in range: schemas.utc_datetime
    cb_id = await d.storage.add_callback(
        CallbackRequest(
            number=body.number,
            queue=body.queue,
            flow=flow,
            caller_name=body.caller_name,
            language=body.language,
            requested_at=now,
            not_before=not_before,
            max_attempts=body.max_attempts or d.settings.callback_max_attempts,
        )
    )
    # Bounded label: a queue the configuration or the flows name, else "other" (the request chooses the name).
    metrics.CALLBACKS.labels(queue=queue_label(body.queue, d.settings.known_queues, d.flows), result="requested").inc()
    if d.scheduler is not None:
        d.scheduler.wake()
    return web.json_response(
        _callback_json(await d.storage.get_callback(cb_id)), status=201, headers={"Location": f"/callbacks/{cb_id}"}
    )


async def get_callback(request: web.Request) -> web.Response:
    storage = deps(request).storage
    cb_id = path_id(request, "callback_id", "callback request")
    data = _callback_json(await storage.get_callback(cb_id))
    data["attempts_log"] = [_jsonable(asdict(a)) for a in await storage.callback_attempts(cb_id)]
    return web.json_response(data)


async def cancel_callback(request: web.Request) -> web.Response:
    storage = deps(request).storage
    cb_id = path_id(request, "callback_id", "callback request")
    if not await storage.cancel_callback(cb_id):
        state = (await storage.get_callback(cb_id)).state
        raise JSONError(
            409,
            "invalid_state",
            f"callback {cb_id} is {state}; only pending, dialing or answered requests can be cancelled",
        )
    return web.json_response(_callback_json(await storage.get_callback(cb_id)))


# --- voicemail -------------------------------------------------------------------------------------------------


async def list_voicemail(request: web.Request) -> web.Response:
    q = parse_query(request, VoicemailQuery)
    rows = await deps(request).storage.list_voicemails(q.mailbox, limit=q.limit)
    return web.json_response({"voicemail": [_jsonable(asdict(v)) for v in rows], "count": len(rows)})


# --- survey answers --------------------------------------------------------------------------------------------

SURVEY_COLUMNS = [f.name for f in fields(SurveyAnswer)]


def wants_csv(request: web.Request, fmt: str | None) -> bool:
    """?format= wins; else an Accept header that names text/csv (and not JSON first)."""
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("Accept", "").lower()
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


def _csv_cell(value: Any) -> Any:
    text = value.isoformat() if isinstance(value, datetime) else value
    # A spreadsheet runs a cell that starts with = + - @ as a formula: stored text (agent, queue) never does.
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def surveys_csv(rows: list[SurveyAnswer]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(SURVEY_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, name)) for name in SURVEY_COLUMNS])
    return out.getvalue()


async def list_surveys(request: web.Request) -> web.Response:
    q = parse_query(request, SurveysQuery)
    rows = await deps(request).storage.list_survey_answers(
        since=q.since, until=q.until, flow=q.flow, queue=q.queue, question=q.question, limit=q.limit, offset=q.offset
    )
    if wants_csv(request, q.format):
        return web.Response(
            text=surveys_csv(rows),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="surveys.csv"'},
        )
    return web.json_response({"answers": [_jsonable(asdict(r)) for r in rows], "count": len(rows)})


ROUTES = [
    ("GET", "/recordings", list_recordings),
    ("GET", "/recordings/{recording_id}", get_recording),
    ("GET", "/recordings/{recording_id}/file", download_recording),
    ("GET", "/callbacks", list_callbacks),
    ("POST", "/callbacks", create_callback),
    ("GET", "/callbacks/{callback_id}", get_callback),
    ("DELETE", "/callbacks/{callback_id}", cancel_callback),
    ("GET", "/voicemail", list_voicemail),
    ("GET", "/surveys", list_surveys),
]

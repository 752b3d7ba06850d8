"""The OpenAPI 3.1 document of the HTTP API, served at /openapi.json, generated from what the server validates with.

Rules for this file:
- Request bodies, query parameters and path parameters come from the pydantic models of ivr.api.schemas, the
  ones the handlers parse with (`parse_body`, `parse_query`, `path_id`): their JSON Schema is the document's, so
  it cannot be looser or stricter than the server. Stored rows (recordings, callbacks, voicemail) are described
  from the storage dataclasses the handlers serialise.
- `OPERATIONS` lists each route's summary, models and statuses; tests/api/test_openapi.py checks that it names
  exactly the app's (method, path) pairs, and tests/api/test_contract.py runs schemathesis against the document.
- Error responses share one `Error` schema; every operation with a body documents 413, 415 and 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from ivr.api import schemas
from ivr.storage import (
    CONTACT_STATES,
    CallbackAttempt,
    CallbackRequest,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    Recording,
    SurveyAnswer,
    Voicemail,
)

PUBLIC = {"/healthz", "/readyz", "/metrics", "/console", "/console/{asset}"}
REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _object(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def _list_of(key: str, item: dict[str, Any], count: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {key: {"type": "array", "items": item}}
    if count:
        props["count"] = {"type": "integer", "minimum": 0}
    return _object(tuple(props), **props)


_ANY = {"type": "object"}
_TEXT = {"type": "string"}
_CALL = _object(("id", "state"), id={"type": "string"}, state={"type": "string"})
_LOT = _object(("name", "calls"), name={"type": "string"}, calls={"type": "array", "items": _ANY})
_QUEUE = _object(("name",), name={"type": "string"})
_READY = _object(
    ("status", "checks"),
    status={"enum": ["ready", "not_ready"]},
    checks={"type": "object", "additionalProperties": {"type": "boolean"}},
)
_MEMBER = _object(("queue", "interface"), queue={"type": "string"}, interface={"type": "string"})
_STR = {"type": "string"}
# What the actions answer (ivr.calls.operations; tests/api/test_api.py checks the answers against these).
_TRANSFERRED = _object(
    ("mode", "context", "exten"),
    mode={"enum": ["blind", "attended", "redirect"]},
    context=_STR,
    exten=_STR,
    released={"type": "string", "description": "The partner released from the hold, for a held call."},
)
_PARKED = _object(("channel", "lot"), channel=_STR, lot=_STR, timeout={"type": ["number", "null"]})
_LEG = _object(("call_id", "agent_leg"), call_id=_STR, agent_leg=_STR)
_HELD = _object(("held", "partner", "moh_class"), held=_STR, partner=_STR, moh_class=_STR)
_RESUMED = _object(("resumed", "partner"), resumed=_STR, partner=_STR)
_RECORDING = _object(
    ("recording_id", "state"),
    recording_id={"type": "integer"},
    state={"enum": ["recording", "paused", "finished"]},
    seconds={"type": ["number", "null"]},
)
_STARTED = _object(("recording_id", "path", "channel"), recording_id={"type": "integer"}, path=_STR, channel=_STR)
_HUNG_UP = _object(("hung_up",), hung_up={"type": "array", "items": _STR})
_SPY = _object(
    ("call_id", "supervisor_leg", "mode"),
    call_id=_STR,
    supervisor_leg=_STR,
    mode={"enum": ["listen", "whisper", "barge"]},
)
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
_CAMPAIGN_STATS = _object(
    ("contacts", "attempts", "answered", "connected", "declined", "abandoned", "abandon_rate", "abandon_rate_window"),
    contacts=_object(CONTACT_STATES, **{state: {"type": "integer", "minimum": 0} for state in CONTACT_STATES}),
    attempts=_COUNTS,
    answered={"type": "integer", "minimum": 0},
    connected={"type": "integer", "minimum": 0},
    declined={"type": "integer", "minimum": 0},
    abandoned={"type": "integer", "minimum": 0},
    abandon_rate={"type": "number", "description": "Abandoned / answered, the whole campaign."},
    abandon_rate_window={"type": "number", "description": "The same over the abandon guard's window."},
    pacing={
        "anyOf": [
            {"type": "null"},
            _object(("ratio", "slots", "reason"), ratio={"type": "number"}, slots={"type": "integer"}, reason=_STR),
        ]
    },
)
_PROBLEMS = {"type": "array", "items": _object(("line", "column", "message"), line={"type": "integer"})}
_UPLOADED = _object(
    ("added", "skipped"),
    added={"type": "integer", "minimum": 0},
    skipped={"type": "array", "items": _object(("line", "number", "message"), line={"type": "integer"})},
)
_DNC = _object(("number", "reason", "added_at"), number=_STR, reason=_STR, added_at={"type": "string"})
_GRAPH_TYPES = tuple(dict.fromkeys(schemas.GRAPH_FORMATS.values()))


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    body: type[schemas.Body] | None = None
    ok: int = 200
    errors: tuple[int, ...] = ()
    query: type[schemas.Query] | None = None
    response: dict[str, Any] | None = None  # JSON Schema of the success body (application/json)
    media: tuple[str, ...] = ()  # non-JSON success media types (the body is then not described)
    ok_also_on: tuple[int, ...] = ()  # statuses answered with the success schema too (readyz: 503)
    also_media: tuple[str, ...] = ()  # other media types of the same data besides the JSON `response` (CSV)
    csv_body: bool = False  # the request body is a CSV file (text/csv), not JSON


_ACT = (404, 409, 422, 503)  # an action on a live call: unknown call, wrong state / refused, bad input, no AMI
_STORED = (503,)  # the database is not available (storage_unavailable)
OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/healthz"): Op("Process is alive", "system", response=_object(("status",), status={"const": "ok"})),
    ("GET", "/readyz"): Op("AMI logged in and FastAGI listening", "system", response=_READY, ok_also_on=(503,)),
    ("GET", "/metrics"): Op("Prometheus metrics (text exposition format)", "system", media=("text/plain",)),
    ("GET", "/openapi.json"): Op("This document", "system", response=_ANY),
    ("GET", "/console"): Op(
        "The supervisor console (HTML page; it signs in with the token)", "console", media=("text/html",)
    ),
    ("GET", "/console/{asset}"): Op(
        "A file of the console page (CSS, JavaScript)", "console", errors=(404,), media=("text/css", "text/javascript")
    ),
    ("GET", "/events"): Op(
        "Live calls, queues, parking lots and due callbacks as Server-Sent Events: a snapshot, then deltas",
        "console",
        media=("text/event-stream",),
    ),
    ("GET", "/calls"): Op(
        "Live calls (channels grouped by Linkedid) of every Asterisk server",
        "calls",
        errors=(422,),
        query=schemas.CallsQuery,
        response=_list_of("calls", _CALL),
    ),
    ("POST", "/calls/originate"): Op(
        "Click-to-call (agent first, then the customer) or a call into a flow",
        "calls",
        schemas.OriginateBody,
        202,
        _ACT,
        response=_object(("call_id", "type"), call_id={"type": "string"}, type={"enum": ["click_to_call", "flow"]}),
    ),
    # 405: the id `originate` names the path of another operation (POST /calls/originate), as for /flows/reload.
    ("GET", "/calls/{call_id}"): Op("One live call", "calls", errors=(404, 405), response=_CALL),
    ("POST", "/calls/{call_id}/transfer"): Op(
        "Blind or attended transfer to an extension, queue or flow",
        "calls",
        schemas.TransferBody,
        202,
        _ACT,
        None,
        _TRANSFERRED,
    ),
    ("POST", "/calls/{call_id}/park"): Op(
        "Park the caller in a parking lot", "calls", schemas.ParkBody, 202, _ACT, None, _PARKED
    ),
    ("POST", "/calls/{call_id}/retrieve"): Op(
        "Ring an agent who then picks the parked call up", "calls", schemas.RetrieveBody, 202, _ACT, None, _LEG
    ),
    ("POST", "/calls/{call_id}/hold"): Op(
        "Put the caller on hold with music", "calls", schemas.HoldBody, 202, _ACT, None, _HELD
    ),
    ("POST", "/calls/{call_id}/resume"): Op(
        "Bridge the held caller with the agent again", "calls", schemas.EmptyBody, 202, _ACT, None, _RESUMED
    ),
    ("POST", "/calls/{call_id}/recording/start"): Op(
        "Start recording (MixMonitor) and index it", "recording", schemas.RecordBody, 201, _ACT, None, _STARTED
    ),
    ("POST", "/calls/{call_id}/recording/pause"): Op(
        "Pause the recording (MixMonitorMute)", "recording", schemas.EmptyBody, 200, _ACT, None, _RECORDING
    ),
    ("POST", "/calls/{call_id}/recording/resume"): Op(
        "Resume the recording", "recording", schemas.EmptyBody, 200, _ACT, None, _RECORDING
    ),
    ("POST", "/calls/{call_id}/recording/stop"): Op(
        "Stop the recording and close its index row", "recording", schemas.EmptyBody, 200, _ACT, None, _RECORDING
    ),
    ("POST", "/calls/{call_id}/hangup"): Op("Hang the call up", "calls", schemas.EmptyBody, 202, _ACT, None, _HUNG_UP),
    ("POST", "/calls/{call_id}/spy"): Op(
        "Supervisor listen / whisper / barge (ChanSpy leg)", "calls", schemas.SpyBody, 202, _ACT, None, _SPY
    ),
    ("GET", "/parking"): Op(
        "Parking lots and the calls parked in them", "parking", response=_list_of("lots", _LOT, count=False)
    ),
    ("GET", "/parking/{lot}"): Op("One parking lot", "parking", errors=(404,), response=_LOT),
    ("GET", "/queues"): Op(
        "Queues, members and waiting callers", "queues", response=_list_of("queues", _QUEUE, count=False)
    ),
    ("GET", "/queues/{queue}"): Op("One queue", "queues", errors=(404,), response=_QUEUE),
    ("POST", "/queues/{queue}/members"): Op(
        "Log a member in (QueueAdd)", "queues", schemas.MemberLoginBody, 201, _ACT, None, _MEMBER
    ),
    ("POST", "/queues/{queue}/members/logout"): Op(
        "Log a member out (QueueRemove)", "queues", schemas.MemberBody, 200, _ACT, None, _MEMBER
    ),
    ("POST", "/queues/{queue}/members/pause"): Op(
        "Pause a member with a reason", "queues", schemas.MemberPauseBody, 200, _ACT, None, _MEMBER
    ),
    ("POST", "/queues/{queue}/members/unpause"): Op(
        "Unpause a member", "queues", schemas.MemberBody, 200, _ACT, None, _MEMBER
    ),
    ("GET", "/recordings"): Op(
        "Recordings index",
        "recording",
        errors=(422, *_STORED),
        query=schemas.RecordingsQuery,
        response=_list_of("recordings", _ref("Recording")),
    ),
    ("GET", "/recordings/{recording_id}"): Op(
        "One recording", "recording", errors=(404, *_STORED), response=_ref("Recording")
    ),
    ("GET", "/recordings/{recording_id}/file"): Op(
        "Download the recording file (when reachable)",
        "recording",
        errors=(404, 409, *_STORED),
        media=("audio/*", "application/octet-stream"),
    ),
    ("GET", "/callbacks"): Op(
        "Callback requests",
        "callbacks",
        errors=(422, *_STORED),
        query=schemas.CallbacksQuery,
        response=_list_of("callbacks", _ref("CallbackRequest")),
    ),
    ("POST", "/callbacks"): Op(
        "Request a callback", "callbacks", schemas.CallbackBody, 201, (422, *_STORED), None, _ref("CallbackRequest")
    ),
    ("GET", "/callbacks/{callback_id}"): Op(
        "One callback request with its attempts",
        "callbacks",
        errors=(404, *_STORED),
        response={
            "allOf": [
                _ref("CallbackRequest"),
                _object(("attempts_log",), attempts_log={"type": "array", "items": _ref("CallbackAttempt")}),
            ]
        },
    ),
    ("DELETE", "/callbacks/{callback_id}"): Op(
        "Cancel a pending callback request",
        "callbacks",
        errors=(404, 409, *_STORED),
        response=_ref("CallbackRequest"),
    ),
    ("GET", "/surveys"): Op(
        "Post-call survey answers, oldest first; CSV with Accept: text/csv or ?format=csv",
        "surveys",
        errors=(422, *_STORED),
        query=schemas.SurveysQuery,
        response=_list_of("answers", _ref("SurveyAnswer")),
        also_media=("text/csv",),
    ),
    ("GET", "/campaigns"): Op(
        "Outbound campaigns", "campaigns", errors=_STORED, response=_list_of("campaigns", _ref("Campaign"))
    ),
    ("POST", "/campaigns"): Op(
        "Create a campaign (draft)", "campaigns", schemas.CampaignBody, 201, (409, *_STORED), None, _ref("Campaign")
    ),
    ("GET", "/campaigns/{campaign_id}"): Op(
        "One campaign with its statistics",
        "campaigns",
        errors=(404, *_STORED),
        response={"allOf": [_ref("Campaign"), _object(("stats",), stats=_CAMPAIGN_STATS)]},
    ),
    ("GET", "/campaigns/{campaign_id}/stats"): Op(
        "Contacts by state, attempts by result, answered / connected / abandoned, abandon rate, pacing",
        "campaigns",
        errors=(404, *_STORED),
        response=_CAMPAIGN_STATS,
    ),
    ("POST", "/campaigns/{campaign_id}/contacts"): Op(
        "Upload contacts as CSV (number,name,language,timezone,<variables>); all or nothing, every bad row listed",
        "campaigns",
        errors=(404, 409, *_STORED),
        response=_UPLOADED,
        csv_body=True,
    ),
    ("GET", "/campaigns/{campaign_id}/contacts"): Op(
        "The contacts of a campaign",
        "campaigns",
        errors=(404, 422, *_STORED),
        query=schemas.ContactsQuery,
        response=_list_of("contacts", _ref("CampaignContact")),
    ),
    ("GET", "/campaigns/{campaign_id}/contacts/{contact_id}"): Op(
        "One contact with its attempts (result, time, call id, the flow's outcome)",
        "campaigns",
        errors=(404, *_STORED),
        response={
            "allOf": [
                _ref("CampaignContact"),
                _object(("attempts_log",), attempts_log={"type": "array", "items": _ref("CampaignAttempt")}),
            ]
        },
    ),
    ("POST", "/campaigns/{campaign_id}/start"): Op(
        "Start dialling (draft -> running)",
        "campaigns",
        schemas.EmptyBody,
        200,
        (404, 409, *_STORED),
        None,
        _ref("Campaign"),
    ),
    ("POST", "/campaigns/{campaign_id}/pause"): Op(
        "Pause (running -> paused; calls ringing finish)",
        "campaigns",
        schemas.EmptyBody,
        200,
        (404, 409, *_STORED),
        None,
        _ref("Campaign"),
    ),
    ("POST", "/campaigns/{campaign_id}/resume"): Op(
        "Resume (paused -> running)", "campaigns", schemas.EmptyBody, 200, (404, 409, *_STORED), None, _ref("Campaign")
    ),
    ("POST", "/campaigns/{campaign_id}/stop"): Op(
        "Stop for good (-> stopped)", "campaigns", schemas.EmptyBody, 200, (404, 409, *_STORED), None, _ref("Campaign")
    ),
    ("GET", "/dnc"): Op(
        "The do-not-call list",
        "campaigns",
        errors=(422, *_STORED),
        query=schemas.DncQuery,
        response=_list_of("numbers", _DNC),
    ),
    ("POST", "/dnc"): Op(
        "Add numbers to the do-not-call list",
        "campaigns",
        schemas.DncBody,
        201,
        _STORED,
        None,
        _object(("added",), added={"type": "integer", "minimum": 0}),
    ),
    ("POST", "/dnc/import"): Op(
        "Import a do-not-call CSV (number,reason); all or nothing, every bad row listed",
        "campaigns",
        ok=201,
        errors=_STORED,
        response=_object(("added", "rows"), added={"type": "integer"}, rows={"type": "integer"}),
        csv_body=True,
    ),
    ("DELETE", "/dnc/numbers/{number}"): Op(
        "Remove a number from the do-not-call list",
        "campaigns",
        errors=(404, *_STORED),
        response=_object(("removed",), removed=_STR),
    ),
    ("GET", "/voicemail"): Op(
        "Voicemail messages",
        "voicemail",
        errors=(422, *_STORED),
        query=schemas.VoicemailQuery,
        response=_list_of("voicemail", _ref("Voicemail")),
    ),
    ("GET", "/flows"): Op(
        "Flows with the running version and the validation state",
        "flows",
        errors=(503,),
        response=_object(("version", "valid", "flows"), flows={"type": "array", "items": _ANY}),
    ),
    ("POST", "/flows/reload"): Op(
        "Reload the flows (kept only if valid)", "flows", errors=(422, 503), response=_object(("ok",))
    ),
    ("GET", "/flows/{name}"): Op(
        "One flow as loaded", "flows", errors=(404, 405, 503), response=_object(("version", "flow"))
    ),
    ("GET", "/flows/{name}/graph"): Op(
        "Diagram of a flow (svg, png, dot or mermaid)",
        "flows",
        errors=(404, 422, 501, 503),
        query=schemas.GraphQuery,
        media=_GRAPH_TYPES,
    ),
}

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    401: "Missing bearer token",
    403: "Wrong token",
    404: "Not found",
    405: "Method not allowed on this path",
    409: "Not valid in the current state",
    413: "Body too large",
    415: "The body is not JSON (Content-Type: application/json)",
    422: "Invalid request",
    501: "Not available in this installation",
    503: "Asterisk, the database or the flows are unavailable",
}

# Stored rows as the handlers serialise them (dataclasses.asdict, datetimes in ISO-8601).
_STORED_ROWS = (
    Recording,
    CallbackRequest,
    CallbackAttempt,
    Voicemail,
    SurveyAnswer,
    Campaign,
    CampaignContact,
    CampaignAttempt,
)


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "Stable code (unknown_call, invalid_state, ...)."},
            "detail": {"description": "What happened and what to do (a string, or a list of field errors for 422)."},
        },
    }


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: `X | None` is documented as X (with its default)."""
    branches = schema.get("anyOf")
    if branches:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept[0]}
    if schema.get("default", 0) is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    return schema


def _parameter(name: str, where: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    schema = _without_null(dict(schema))
    schema.pop("title", None)
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if "description" in schema:
        param["description"] = schema.pop("description")
    return param


def _body_required(model: type[schemas.Body]) -> bool:
    """True when `{}` (what an empty body means) is not a valid body."""
    schema = model.model_json_schema()
    return bool(schema.get("required") or schema.get("oneOf"))


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


@cache
def document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _error_schema()}
    for model in schemas.ALL_BODIES:
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    for row in _STORED_ROWS:
        schema = TypeAdapter(row).json_schema(ref_template=REF, mode="serialization")
        components.update(schema.pop("$defs", {}))
        components[row.__name__] = schema
    path_schemas = schemas.PathParams.model_json_schema()["properties"]

    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.ok, "OK")}
        if op.media:
            ok["content"] = {media: {} for media in op.media}
        elif op.response is not None:
            ok["content"] = _content(op.response) | {media: {"schema": _TEXT} for media in op.also_media}
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()}{path}").strip("_"),
            "responses": {str(op.ok): ok},
        }
        params = [_parameter(p, "path", path_schemas[p], True) for p in re.findall(r"\{(\w+)\}", path)]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            required = set(query_schema.get("required", ()))
            params += [
                _parameter(name, "query", prop, name in required) for name, prop in query_schema["properties"].items()
            ]
        if params:
            entry["parameters"] = params
        errors = set(op.errors)
        if op.csv_body:
            entry["requestBody"] = {
                "required": True,
                "content": {media: {"schema": _TEXT} for media in ("text/csv", "text/plain")},
            }
            errors |= {413, 415, 422}
        if op.body is not None:
            entry["requestBody"] = {"required": _body_required(op.body), "content": _content(_ref(op.body.__name__))}
            errors |= {413, 415, 422}
        if path not in PUBLIC:
            entry["security"] = [{"bearer": []}]
            errors |= {401, 403}
        else:
            entry["security"] = []
        for status in op.ok_also_on:
            entry["responses"][str(status)] = {"description": "Not ready", "content": _content(op.response or _ANY)}
        for status in sorted(errors - set(op.ok_also_on)):
            entry["responses"][str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": _content(_ref("Error")),
            }
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ivr call control API",
            "version": "1",
            "description": "Live calls, parking, recordings, queues, callbacks, survey answers, outbound campaigns and "
            "flows of the ivr "
            "service. "
            "Bodies are JSON (Content-Type: application/json); errors are {error, detail}.",
        },
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }

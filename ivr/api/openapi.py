"""The OpenAPI 3.1 document of the HTTP API, served at /openapi.json.

Rules for this file:
- `OPERATIONS` is written by hand, next to but separate from the route tables; tests/api/test_openapi.py checks
  that both list exactly the same (method, path) pairs, so neither can drift.
- Request schemas come from the pydantic body models themselves; error responses share one `Error` schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ivr.api import schemas

PUBLIC = {"/healthz", "/readyz", "/metrics"}


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    body: type[schemas.Body] | None = None
    ok: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()


_CALL = (404, 409, 422, 503)
OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/healthz"): Op("Process is alive", "system"),
    ("GET", "/readyz"): Op("AMI logged in and FastAGI listening", "system", errors=(503,)),
    ("GET", "/metrics"): Op("Prometheus metrics (text exposition format)", "system"),
    ("GET", "/openapi.json"): Op("This document", "system"),
    ("GET", "/calls"): Op(
        "Live calls (channels grouped by Linkedid) of every Asterisk server",
        "calls",
        errors=(422,),
        query=("state", "pbx"),
    ),
    ("POST", "/calls/originate"): Op(
        "Click-to-call (agent first, then the customer) or a call into a flow",
        "calls",
        schemas.OriginateBody,
        202,
        (422, 409, 503),
    ),
    ("GET", "/calls/{call_id}"): Op("One live call", "calls", errors=(404,)),
    ("POST", "/calls/{call_id}/transfer"): Op(
        "Blind or attended transfer to an extension, queue or flow", "calls", schemas.TransferBody, 202, _CALL
    ),
    ("POST", "/calls/{call_id}/park"): Op("Park the caller in a parking lot", "calls", schemas.ParkBody, 202, _CALL),
    ("POST", "/calls/{call_id}/retrieve"): Op(
        "Ring an agent who then picks the parked call up", "calls", schemas.RetrieveBody, 202, _CALL
    ),
    ("POST", "/calls/{call_id}/hold"): Op("Put the caller on hold with music", "calls", schemas.HoldBody, 202, _CALL),
    ("POST", "/calls/{call_id}/resume"): Op(
        "Bridge the held caller with the agent again", "calls", schemas.EmptyBody, 202, _CALL
    ),
    ("POST", "/calls/{call_id}/recording/start"): Op(
        "Start recording (MixMonitor) and index it", "recording", schemas.RecordBody, 201, _CALL
    ),
    ("POST", "/calls/{call_id}/recording/pause"): Op(
        "Pause the recording (MixMonitorMute)", "recording", schemas.EmptyBody, errors=_CALL
    ),
    ("POST", "/calls/{call_id}/recording/resume"): Op(
        "Resume the recording", "recording", schemas.EmptyBody, errors=_CALL
    ),
    ("POST", "/calls/{call_id}/recording/stop"): Op(
        "Stop the recording and close its index row", "recording", schemas.EmptyBody, errors=_CALL
    ),
    ("POST", "/calls/{call_id}/hangup"): Op("Hang the call up", "calls", schemas.EmptyBody, 202, (404, 503)),
    ("POST", "/calls/{call_id}/spy"): Op(
        "Supervisor listen / whisper / barge (ChanSpy leg)", "calls", schemas.SpyBody, 202, _CALL
    ),
    ("GET", "/parking"): Op("Parking lots and the calls parked in them", "parking"),
    ("GET", "/parking/{lot}"): Op("One parking lot", "parking", errors=(404,)),
    ("GET", "/queues"): Op("Queues, members and waiting callers", "queues"),
    ("GET", "/queues/{queue}"): Op("One queue", "queues", errors=(404,)),
    ("POST", "/queues/{queue}/members"): Op(
        "Log a member in (QueueAdd)", "queues", schemas.MemberLoginBody, 201, (409, 422, 503)
    ),
    ("POST", "/queues/{queue}/members/logout"): Op(
        "Log a member out (QueueRemove)", "queues", schemas.MemberBody, 200, (404, 422, 503)
    ),
    ("POST", "/queues/{queue}/members/pause"): Op(
        "Pause a member with a reason", "queues", schemas.MemberPauseBody, 200, (404, 422, 503)
    ),
    ("POST", "/queues/{queue}/members/unpause"): Op(
        "Unpause a member", "queues", schemas.MemberBody, 200, (404, 422, 503)
    ),
    ("GET", "/recordings"): Op(
        "Recordings index",
        "recording",
        errors=(422,),
        query=("call_id", "caller", "agent", "flow", "queue", "state", "since", "until", "limit", "offset"),
    ),
    ("GET", "/recordings/{recording_id}"): Op("One recording", "recording", errors=(404,)),
    ("GET", "/recordings/{recording_id}/file"): Op(
        "Download the recording file (when reachable)", "recording", errors=(404, 409)
    ),
    ("GET", "/callbacks"): Op("Callback requests", "callbacks", errors=(422,), query=("state", "queue", "limit")),
    ("POST", "/callbacks"): Op("Request a callback", "callbacks", schemas.CallbackBody, 201, (422,)),
    ("GET", "/callbacks/{callback_id}"): Op("One callback request with its attempts", "callbacks", errors=(404,)),
    ("DELETE", "/callbacks/{callback_id}"): Op("Cancel a pending callback request", "callbacks", errors=(404, 409)),
    ("GET", "/voicemail"): Op("Voicemail messages", "voicemail", query=("mailbox", "limit")),
    ("GET", "/flows"): Op("Flows with the running version and the validation state", "flows", errors=(503,)),
    ("POST", "/flows/reload"): Op("Reload the flows (kept only if valid)", "flows", errors=(422, 503)),
    ("GET", "/flows/{name}"): Op("One flow as loaded", "flows", errors=(404,)),
    ("GET", "/flows/{name}/graph"): Op(
        "Diagram of a flow (svg, png, dot or mermaid)", "flows", errors=(404, 422, 501), query=("format",)
    ),
}

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    401: "Missing bearer token",
    403: "Wrong token",
    404: "Not found",
    409: "Not valid in the current state",
    422: "Invalid request",
    501: "Not available in this installation",
    503: "Asterisk or a dependency unavailable",
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "Stable code (unknown_call, invalid_state, ...)."},
            "detail": {"description": "What happened and what to do (a string, or a list of field errors for 422)."},
        },
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _error_schema()}
    for model in schemas.ALL_BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()}{path}").strip("_"),
            "responses": {str(op.ok): {"description": _STATUS_TEXT.get(op.ok, "OK")}},
        }
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"\{(\w+)\}", path)
        ]
        params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in op.query]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}},
            }
        errors = set(op.errors) | ({422} if op.body is not None else set())
        if path not in PUBLIC:
            entry["security"] = [{"bearer": []}]
            errors |= {401, 403}
        else:
            entry["security"] = []
        for status in sorted(errors):
            entry["responses"][str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ivr call control API",
            "version": "1",
            "description": "Live calls, parking, recordings, queues, callbacks and flows of the ivr service.",
        },
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }

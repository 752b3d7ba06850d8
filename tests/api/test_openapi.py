"""The OpenAPI document is kept true: it lists exactly the app's routes, its parameters and bodies are generated
from the models the server validates with, and a JSON Schema validator agrees with the server on bodies."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from pydantic import ValidationError

from ivr.api import schemas as api_schemas
from ivr.api.app import create_app
from ivr.api.openapi import OPERATIONS, PUBLIC, document
from ivr.api.schemas import ALL_BODIES


def app_routes(app) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue  # aiohttp adds HEAD for every GET
        pairs.add((route.method, route.resource.canonical))
    return pairs


async def test_document_lists_exactly_the_routes(api):
    served = await (await api.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in served["paths"].items() for method in ops}
    assert documented == app_routes(api.client.app)
    assert documented == set(OPERATIONS)


def test_a_new_route_without_documentation_is_caught():
    app = create_app(operations=None, registry=None, storage=None, token=None)

    async def handler(request):
        return None

    app.router.add_get("/undocumented", handler)
    assert app_routes(app) - set(OPERATIONS) == {("GET", "/undocumented")}


def test_bodies_security_and_path_parameters():
    doc = document()
    schemas = doc["components"]["schemas"]
    for model in ALL_BODIES:
        assert schemas[model.__name__]["properties"].keys() == model.model_json_schema()["properties"].keys()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}, (method, path)
            if path in PUBLIC:
                assert op["security"] == [] and "401" not in op["responses"]
            else:
                assert op["security"] == [{"bearer": []}] and {"401", "403"} <= op["responses"].keys()
            body = op.get("requestBody")
            if body is not None and "text/csv" in body["content"]:  # a CSV upload (campaign contacts, DNC)
                assert "422" in op["responses"] and "413" in op["responses"] and "415" in op["responses"]
            elif body is not None:
                ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                assert ref in schemas and "422" in op["responses"]
    assert doc["paths"]["/calls/{call_id}/transfer"]["post"]["responses"]["409"]


# --- generated from the models the server validates with -----------------------------------------------------------


def parameter(doc: dict, method: str, path: str, name: str) -> dict:
    return next(p for p in doc["paths"][path][method]["parameters"] if p["name"] == name)


def test_query_and_path_parameters_are_typed():
    doc = document()
    limit = parameter(doc, "get", "/recordings", "limit")["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 1000)
    assert parameter(doc, "get", "/recordings", "since")["schema"] == {"type": "string", "format": "date-time"}
    assert parameter(doc, "get", "/recordings", "state")["schema"]["enum"] == ["recording", "paused", "finished"]
    assert "parked" in parameter(doc, "get", "/calls", "state")["schema"]["enum"]
    assert parameter(doc, "get", "/flows/{name}/graph", "format")["schema"]["enum"] == ["svg", "mermaid", "dot", "png"]
    for path in ("/recordings/{recording_id}", "/recordings/{recording_id}/file", "/callbacks/{callback_id}"):
        name = path.split("{")[1].split("}")[0]
        schema = parameter(doc, "get", path, name)["schema"]
        assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 0, 2**63 - 1)
    assert parameter(doc, "post", "/queues/{queue}/members", "queue")["schema"]["pattern"].startswith("^")


def test_bodies_have_patterns_required_and_exactly_one_of():
    doc = document()
    schemas = doc["components"]["schemas"]
    originate = schemas["OriginateBody"]
    assert {"pattern"} <= originate["properties"]["number"].keys()
    assert [b["required"] for b in originate["oneOf"]] == [["agent"], ["flow"]]
    assert [b["required"] for b in schemas["TransferBody"]["oneOf"]] == [["extension"], ["queue"], ["flow"]]
    assert "control characters" in str(schemas["CallbackBody"]["properties"]["caller_name"])
    required = {
        path: op["requestBody"]["required"]
        for path, ops in doc["paths"].items()
        for op in ops.values()
        if "requestBody" in op
    }
    assert required["/calls/originate"] and required["/calls/{call_id}/transfer"] and required["/callbacks"]
    assert required["/queues/{queue}/members/pause"] and required["/calls/{call_id}/spy"]
    assert not required["/calls/{call_id}/hangup"] and not required["/calls/{call_id}/hold"]
    for ops in doc["paths"].values():
        for op in ops.values():
            if "requestBody" in op:
                assert list(op["requestBody"]["content"]) in (["application/json"], ["text/csv", "text/plain"])
                assert {"413", "415", "422"} <= op["responses"].keys()


BODIES = [
    ("OriginateBody", {"agent": "1001", "number": "+37060000001"}),
    ("OriginateBody", {"flow": "survey", "number": "+37060000001", "variables": {"order": "42"}}),
    ("OriginateBody", {"agent": "1001", "flow": "survey", "number": "+37060000001"}),
    ("OriginateBody", {"number": "+37060000001"}),
    ("OriginateBody", {"agent": None, "flow": "survey", "number": "1"}),
    ("OriginateBody", {"agent": "1001", "number": "1", "variables": {"a": "b"}}),
    ("OriginateBody", {"flow": "f", "number": "1", "variables": {"IVR_X": "1"}}),
    ("OriginateBody", {"flow": "f", "number": "1", "variables": {"ivr_x": "1"}}),
    ("OriginateBody", {"flow": "f", "number": "1", "variables": {"1x": "1"}}),
    ("OriginateBody", {"flow": "f", "number": "1", "variables": {"x": "a,b"}}),
    ("OriginateBody", {"agent": "1001", "number": "1", "timeout": 0}),
    ("OriginateBody", {"agent": "1001", "number": "1", "timeout": "5"}),
    ("TransferBody", {"queue": "sales"}),
    ("TransferBody", {"queue": "sales", "extension": "200"}),
    ("TransferBody", {"queue": "sales", "extension": None}),
    ("TransferBody", {}),
    ("TransferBody", {"flow": "main", "mode": "sideways"}),
    ("MemberLoginBody", {"interface": "PJSIP/1001", "name": "Ann", "paused": True}),
    ("MemberLoginBody", {"interface": "PJSIP/1001", "name": "Ann\x07"}),
    ("MemberLoginBody", {"interface": "PJSIP/1001\n"}),
    ("MemberLoginBody", {"interface": "PJSIP/1001", "paused": "yes"}),
    ("MemberLoginBody", {"interface": "PJSIP/1001", "penalty": 1001}),
    ("CallbackBody", {"number": "+37060000001", "queue": "support", "not_before": "2026-11-30T09:00:00Z"}),
    ("CallbackBody", {"number": "+37060000001", "queue": "support", "caller_name": "A\x85"}),
    ("CallbackBody", {"number": "+37060000001", "queue": "support", "language": "EN"}),
    ("CallbackBody", {"number": "+37060000001", "queue": "support", "x": 1}),
    ("EmptyBody", {}),
    ("EmptyBody", {"force": True}),
]


@pytest.mark.parametrize(("model", "body"), BODIES)
def test_the_document_and_the_server_agree_on_bodies(model, body):
    """The JSON Schema a client validates with accepts exactly what the server's model accepts."""
    doc = document()
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
    )
    try:
        getattr(api_schemas, model).model_validate_json(json.dumps(body))
        accepted = True
    except ValidationError:
        accepted = False
    assert validator.is_valid(body) == accepted, (model, body, accepted)

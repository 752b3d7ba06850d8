"""The OpenAPI document is kept true: it lists exactly the app's routes, and its schemas are the body models."""

from __future__ import annotations

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
            if body is not None:
                ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                assert ref in schemas and "422" in op["responses"]
    assert doc["paths"]["/calls/{call_id}/transfer"]["post"]["responses"]["409"]

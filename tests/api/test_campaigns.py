"""The campaign and do-not-call routes: validation, CSV uploads (all or nothing, every bad row named), state
changes, statistics. Every response is checked against the OpenAPI document (the `api` fixture)."""

from __future__ import annotations

import threading

from aiohttp.test_utils import TestClient

from ivr.api.app import create_app
from tests.api.conftest import AUTH, TOKEN
from tests.e2e.stack import ApiTestServer

CSV = {"Content-Type": "text/csv"}
HOURS = {"timezone": "Europe/Vilnius", "weekly": {"mon-fri": "09:00-20:00"}, "holidays": ["2026-12-24"]}


async def create(api, name: str = "renewals", **settings) -> dict:
    resp = await api.post(
        "/campaigns",
        json={"name": name, "flow": "campaign", "queue": "sales", "settings": {"schedule": HOURS, **settings}},
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_list_and_read_a_campaign(api):
    made = await create(api, ratio=2.0, retry={"busy": 600})
    assert made["state"] == "draft" and made["settings"]["ratio"] == 2.0
    assert made["settings"]["retry"]["busy"] == 600 and made["settings"]["retry"]["no_answer"] == 3600  # defaults
    assert made["settings"]["schedule"]["holidays"] == ["2026-12-24"]
    listed = await (await api.get("/campaigns")).json()
    assert [c["name"] for c in listed["campaigns"]] == ["renewals"]
    one = await (await api.get(f"/campaigns/{made['id']}")).json()
    assert one["stats"]["contacts"]["pending"] == 0 and one["stats"]["abandon_rate"] == 0.0
    assert one["stats"]["pacing"] is None  # no dialer in this API instance
    again = await api.post(
        "/campaigns", json={"name": "renewals", "flow": "f", "queue": "q", "settings": {"schedule": HOURS}}
    )
    assert again.status == 409 and "exists already" in (await again.json())["detail"]
    assert (await api.get("/campaigns/99")).status == 404


async def test_bad_settings_are_422_naming_the_field(api):
    bad = [
        ({"ratio": 9}, "ratio"),
        ({"schedule": {"timezone": "UTC", "weekly": {"mon-fri": "9-20"}}}, "weekly"),
        (
            {"schedule": {"timezone": "UTC", "weekly": {"mon": "09:00-17:00"}, "holiday_calendar": "/etc/x.ics"}},
            "schedule",
        ),
        ({"schedule": {"weekly": {"mon": "09:00-17:00"}}}, "schedule.timezone"),
        ({"abandon": {"backoff_from": 0.05, "pause_at": 0.02}}, "abandon"),
        ({"retry": {"busy": 1}}, "busy"),
    ]
    for settings, field in bad:
        body = {"name": "x", "flow": "campaign", "queue": "sales", "settings": {"schedule": HOURS, **settings}}
        resp = await api.post("/campaigns", json=body)
        assert resp.status == 422, (settings, await resp.text())
        assert field in str((await resp.json())["detail"]), settings
    assert (await api.post("/campaigns", json={"name": "x", "flow": "campaign", "queue": "sales"})).status == 422


async def test_an_upload_with_bad_rows_stores_nothing_and_names_every_row(api):
    campaign = (await create(api))["id"]
    data = "number,name,timezone\n+37060000001,Ona,\n+3706 bad,Jonas,\n+37060000003,Petras,Mars/Base\n"
    resp = await api.post(f"/campaigns/{campaign}/contacts", data=data.encode(), headers=CSV)
    assert resp.status == 422
    body = await resp.json()
    assert body["error"] == "invalid_csv"
    assert [(p["line"], p["column"]) for p in body["detail"]] == [(3, "number"), (4, "timezone")]
    assert await api.storage.list_campaign_contacts(campaign) == []  # all or nothing


async def test_csv_files_are_parsed_off_the_event_loop(api, monkeypatch):
    """A 1 MB quoted header answers (422, one problem) and both CSV parsers run in a worker thread, so a big
    upload never holds up the calls the loop serves."""
    from ivr.api import routes_campaigns

    threads: list[int] = []

    def spy(parse):
        def run(*args, **kwargs):
            threads.append(threading.get_ident())
            return parse(*args, **kwargs)

        return run

    monkeypatch.setattr(routes_campaigns, "parse_contacts", spy(routes_campaigns.parse_contacts))
    monkeypatch.setattr(routes_campaigns, "parse_dnc", spy(routes_campaigns.parse_dnc))
    campaign = (await create(api))["id"]
    header = ('a,"' + "x" * 10 + '"') * (1_000_000 // 14)
    resp = await api.post(f"/campaigns/{campaign}/contacts", data=(header + "\n").encode(), headers=CSV)
    assert resp.status == 422
    [problem] = (await resp.json())["detail"]
    assert "columns; at most 24" in problem["message"]
    resp = await api.post("/dnc/import", data=b"number,reason\n+37060000009,asked\n", headers=CSV)
    assert resp.status == 201
    assert len(threads) == 2 and threading.get_ident() not in threads


async def test_a_good_upload_and_its_repeat(api):
    campaign = (await create(api))["id"]
    data = b"number;name;language;plan\n+37060000001;Ona;lt;gold\n+37060000002;Jonas;;silver\n"
    resp = await api.post(f"/campaigns/{campaign}/contacts", data=data, headers=CSV)
    assert (resp.status, await resp.json()) == (200, {"added": 2, "skipped": []})
    resp = await api.post(f"/campaigns/{campaign}/contacts", data=data, headers=CSV)
    body = await resp.json()
    assert body["added"] == 0 and [s["line"] for s in body["skipped"]] == [2, 3]
    listed = await (await api.get(f"/campaigns/{campaign}/contacts?state=pending&limit=1")).json()
    assert listed["count"] == 1 and listed["contacts"][0]["variables"] == {"plan": "gold"}
    assert (await api.get(f"/campaigns/{campaign}/contacts?state=nope")).status == 422
    assert (await api.get("/campaigns/77/contacts")).status == 404


async def test_upload_media_type_size_and_row_limits(tmp_path, api):
    campaign = (await create(api))["id"]
    resp = await api.post(f"/campaigns/{campaign}/contacts", json={"number": "+37060000001"})
    assert resp.status == 415
    assert (await api.post("/campaigns/55/contacts", data=b"number\n+37060000001\n", headers=CSV)).status == 404
    # A service with small limits: bytes, then rows.
    app = create_app(
        operations=api.ops, registry=api.registry, storage=api.storage, token=TOKEN, upload_limits=(1000, 3)
    )
    client = TestClient(ApiTestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        big = b"number\n" + b"+37060000001\n" * 100
        resp = await client.post(f"/campaigns/{campaign}/contacts", data=big, headers={**AUTH, **CSV})
        assert resp.status == 413 and "1000 bytes" in (await resp.json())["detail"]
        rows = b"number\n+37060000001\n+37060000002\n+37060000003\n+37060000004\n"
        resp = await client.post(f"/campaigns/{campaign}/contacts", data=rows, headers={**AUTH, **CSV})
        assert resp.status == 413 and "more than 3 rows" in (await resp.json())["detail"]
    finally:
        await client.close()


async def test_state_changes(api):
    campaign = (await create(api))["id"]
    resp = await api.post(f"/campaigns/{campaign}/resume")
    assert resp.status == 409 and "is draft" in (await resp.json())["detail"]
    assert (await (await api.post(f"/campaigns/{campaign}/start")).json())["state"] == "running"
    assert (await (await api.post(f"/campaigns/{campaign}/pause")).json())["state"] == "paused"
    assert (await (await api.post(f"/campaigns/{campaign}/stop")).json())["state"] == "stopped"
    assert (await api.post(f"/campaigns/{campaign}/start")).status == 409
    resp = await api.post(f"/campaigns/{campaign}/contacts", data=b"number\n+37060000001\n", headers=CSV)
    assert resp.status == 409
    assert (await api.post("/campaigns/404/start")).status == 404


async def test_do_not_call_list(api):
    resp = await api.post("/dnc", json={"numbers": ["+37060000001", "+37060000001", "+37060000002"], "reason": "asked"})
    assert (resp.status, await resp.json()) == (201, {"added": 2})
    assert (await api.post("/dnc", json={"numbers": ["12;3"]})).status == 422
    resp = await api.get("/dnc?number=+37060000001")  # the + decodes to a space: never a silent "not listed"
    assert resp.status == 422 and "%2B" in str((await resp.json())["detail"])
    assert (await api.get("/dnc?number=abc")).status == 422
    listed = await (await api.get("/dnc?number=%2B37060000001")).json()
    assert [(n["number"], n["reason"]) for n in listed["numbers"]] == [("+37060000001", "asked")]
    resp = await api.post("/dnc/import", data=b"number,reason\n+370 600 00003,complaint\nnot a number,\n", headers=CSV)
    assert resp.status == 422 and (await resp.json())["detail"][0]["line"] == 3
    resp = await api.post("/dnc/import", data=b"number,reason\n+370 600 00003,complaint\n", headers=CSV)
    assert (resp.status, await resp.json()) == (201, {"added": 1, "rows": 1})
    assert (await (await api.get("/dnc")).json())["count"] == 3
    assert (await api.delete("/dnc/numbers/%2B37060000001")).status == 200
    assert (await api.delete("/dnc/numbers/%2B37060000001")).status == 404
    assert (await api.delete("/dnc/numbers/abc")).status == 404
    assert not await api.storage.is_dnc("+37060000001") and await api.storage.is_dnc("+37060000003")


async def test_garbage_csv_is_a_clear_422_never_a_500(api):
    campaign = (await create(api))["id"]
    bodies = [
        b"number\n+3706000\x000001\n",  # a NUL byte
        b"number\n" + b'"' + b"x" * 200_000 + b'"\n',  # a field beyond the csv module's limit
        b"\xff\xfe\x00n\x00u\x00m",  # UTF-16, not UTF-8
        b'number,name\n"+37060000001,Ona\n',  # an unclosed quote swallows the rest
    ]
    for body in bodies:
        resp = await api.post(f"/campaigns/{campaign}/contacts", data=body, headers=CSV)
        assert resp.status == 422, (body[:30], await resp.text())
        problems = (await resp.json())["detail"]
        assert problems and all(p["line"] >= 1 and p["message"] for p in problems)
    assert await api.storage.list_campaign_contacts(campaign) == []

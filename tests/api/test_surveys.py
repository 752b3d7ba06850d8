"""GET /surveys: filters, JSON and the CSV export (Accept: text/csv or ?format=csv)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from ivr.storage import SurveyAnswer

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def _answers(api) -> None:
    rows = [
        ("c1", "main", "csat", "5", "sales", "PJSIP/1001", 0),
        ("c1", "main", "resolved", "1", "sales", "PJSIP/1001", 1),
        ("c2", "main", "csat", "2", "support", "=HYPERLINK(1)", 60),
        ("c3", "other", "csat", "4", "sales", "", 120),
    ]
    for call_id, flow, question, answer, queue, agent, minutes in rows:
        await api.storage.add_survey_answer(
            SurveyAnswer(call_id, flow, "survey", question, answer, queue, agent, T0 + timedelta(minutes=minutes))
        )


async def test_filters_and_json(api):
    await _answers(api)
    body = await (await api.get("/surveys")).json()
    assert body["count"] == 4 and [a["call_id"] for a in body["answers"]] == ["c1", "c1", "c2", "c3"]
    assert body["answers"][0]["answered_at"] == "2026-12-01T09:00:00+00:00"
    q = "/surveys?queue=sales&question=csat"
    assert [a["call_id"] for a in (await (await api.get(q)).json())["answers"]] == ["c1", "c3"]
    assert [a["call_id"] for a in (await (await api.get("/surveys?flow=other")).json())["answers"]] == ["c3"]
    window = "/surveys?since=2026-12-01T09:01:00%2B00:00&until=2026-12-01T11:00:00%2B00:00"
    assert [a["question"] for a in (await (await api.get(window)).json())["answers"]] == ["resolved", "csat"]
    assert (await (await api.get("/surveys?limit=1&offset=3")).json())["answers"][0]["call_id"] == "c3"
    for bad in ("/surveys?since=monday", "/surveys?format=xml", "/surveys?limit=0", "/surveys?questoin=csat"):
        assert (await api.get(bad)).status == 422, bad


async def test_csv_export_by_accept_header_or_format(api):
    await _answers(api)
    resp = await api.get("/surveys?queue=support", headers={"Accept": "text/csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == ["call_id", "flow", "survey", "question", "answer", "queue", "agent", "answered_at", "id"]
    # a stored value that a spreadsheet would run as a formula is exported as text
    assert rows[1][:8] == [
        "c2",
        "main",
        "survey",
        "csat",
        "2",
        "support",
        "'=HYPERLINK(1)",
        "2026-12-01T10:00:00+00:00",
    ]
    by_param = await api.get("/surveys?format=csv&flow=other")
    assert len(list(csv.reader(io.StringIO(await by_param.text())))) == 2
    assert (await api.get("/surveys?format=json", headers={"Accept": "text/csv"})).content_type == "application/json"

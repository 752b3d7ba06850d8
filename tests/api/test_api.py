"""The HTTP API end to end over HTTP (127.0.0.1, ephemeral port), with a scripted AMI client behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.ami.errors import AMINotConnected
from ivr.api.auth import InsecureBind, check_bind, is_loopback, load_token
from ivr.calls.registry import CallRegistry
from ivr.flow.model import Flow
from ivr.storage import Recording
from tests.calls.fakes import error, msg
from tests.calls.transcripts import events_until, load

from .conftest import AUTH


def replay(registry: CallRegistry, name: str, until: str, start: str | None = None) -> None:
    for ev in events_until(load(name), until, start=start):
        registry.apply(ev)


async def expect_error(resp, status: int, error_code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == error_code
    return body


# --- auth, health, readiness, metrics ------------------------------------------------------------------------


async def test_auth_required_except_health_ready_metrics(api):
    c = api.client
    resp = await c.get("/calls")
    await expect_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    await expect_error(await c.get("/calls", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
    await expect_error(await c.get("/calls", headers={"Authorization": "Bearer wrong"}), 403, "forbidden")
    await expect_error(await c.get("/openapi.json"), 401, "unauthorized")
    assert (await c.get("/calls", headers=AUTH)).status == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await c.get(path)).status == 200, path


async def test_readyz_names_failing_checks(api):
    api.ready["ami"] = False
    resp = await api.client.get("/readyz")
    assert resp.status == 503
    assert await resp.json() == {"status": "not_ready", "checks": {"ami": False, "fastagi": True}}


async def test_metrics_exposition(api):
    resp = await api.client.get("/metrics")
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE ivr_parked_calls gauge" in text and "ivr_callbacks_total" in text


def test_check_bind_and_token_loading(tmp_path):
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "token")
    for host in ("0.0.0.0", "10.0.0.5", "::", "api.example.com"):
        with pytest.raises(InsecureBind, match="IVR_API_TOKEN"):
            check_bind(host, None)
    assert not is_loopback("0.0.0.0") and is_loopback("[::1]") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("::ffff:10.0.0.5")
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert load_token({"IVR_API_TOKEN_FILE": str(path), "IVR_API_TOKEN": "env"}) == "from-file"
    assert load_token({"IVR_API_TOKEN": " env "}) == "env"
    assert load_token({}) is None
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_token({"IVR_API_TOKEN_FILE": str(path)})


# --- errors --------------------------------------------------------------------------------------------------


async def test_error_shapes(api):
    await expect_error(await api.get("/calls/nope"), 404, "unknown_call")
    await expect_error(await api.get("/no/such/route"), 404, "not_found")
    await expect_error(await api.client.put("/calls", headers=AUTH), 405, "method_not_allowed")
    body = await expect_error(await api.post("/calls/originate", json={"number": "123"}), 422, "invalid_request")
    assert "exactly one of agent" in str(body["detail"])
    body = await expect_error(
        await api.post("/calls/originate", json={"agent": "1001", "number": "1", "x": 1}), 422, "invalid_request"
    )
    assert body["detail"][0]["field"] == "x"
    resp = await api.client.post(
        "/calls/originate", data=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    await expect_error(resp, 422, "invalid_request")
    await expect_error(await api.get("/calls?state=dancing"), 422, "invalid_request")
    await expect_error(await api.post("/calls/x/hangup", json={"force": True}), 422, "invalid_request")
    await expect_error(await api.post("/calls/x/hangup", json=[1]), 422, "invalid_request")


async def test_unexpected_error_is_json_500_without_traceback(api, monkeypatch, caplog):
    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.ops, "click_to_call", boom)
    resp = await api.post("/calls/originate", json={"agent": "1001", "number": "+37060000001"})
    body = await expect_error(resp, 500, "internal_error")
    assert "secret internals" not in body["detail"] and "Traceback" not in await resp.text()
    assert "incident" in body["detail"]
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)


# --- calls ---------------------------------------------------------------------------------------------------


async def test_list_and_get_calls(api):
    replay(api.registry, "ami-16-transfers.jsonl", "BlindTransfer Channel=")
    body = await (await api.get("/calls")).json()
    assert body["count"] == 1
    call = body["calls"][0]
    assert call["state"] == "talking" and call["caller"]["number"] == "201"
    one = await (await api.get(f"/calls/{call['id']}")).json()
    assert [ch["name"] for ch in one["channels"]][:1] == ["Local/alice@phones-0000003f;1"]
    assert (await (await api.get("/calls?state=parked")).json())["count"] == 0
    # One Asterisk server, named "default": every call carries it; ?pbx= keeps one server's calls.
    assert call["pbx"] == "default" and call["parked"] == []
    assert (await (await api.get("/calls?pbx=default")).json())["count"] == 1
    assert (await (await api.get("/calls?pbx=pbx2")).json())["count"] == 0
    await expect_error(await api.get("/calls?pbx=PBX-1"), 422, "invalid_request")


async def test_originate_both_kinds_and_503(api):
    resp = await api.post("/calls/originate", json={"agent": "1001", "number": "+37060000001"})
    assert resp.status == 202
    body = await resp.json()
    assert body["type"] == "click_to_call" and api.ami.headers()["ChannelId"] == body["call_id"]
    resp = await api.post(
        "/calls/originate", json={"flow": "survey", "number": "+37060000001", "variables": {"order": "42"}}
    )
    assert resp.status == 202 and api.ami.headers()["Exten"] == "survey"
    await expect_error(
        await api.post("/calls/originate", json={"agent": "1001", "number": "+3706&PJSIP/9"}), 422, "invalid_request"
    )
    api.ami.replies["Originate"] = AMINotConnected("down")
    await expect_error(
        await api.post("/calls/originate", json={"agent": "1001", "number": "+37060000001"}),
        503,
        "asterisk_unavailable",
    )


async def test_transfer_park_retrieve_hold_spy_hangup(api):
    replay(api.registry, "ami-16-transfers.jsonl", "BlindTransfer Channel=")
    call_id = api.registry.calls()[0].id
    resp = await api.post(f"/calls/{call_id}/transfer", json={"queue": "sales"})
    assert resp.status == 202 and (await resp.json())["mode"] == "blind"
    assert api.ami.names()[-1] == "BlindTransfer"
    await expect_error(
        await api.post(f"/calls/{call_id}/transfer", json={"queue": "a", "flow": "b"}), 422, "invalid_request"
    )
    api.ami.replies["BlindTransfer"] = error("Transfer invalid")
    await expect_error(await api.post(f"/calls/{call_id}/transfer", json={"extension": "200"}), 409, "invalid_state")
    assert (await api.post(f"/calls/{call_id}/hold", json={})).status == 202
    assert (await api.post(f"/calls/{call_id}/resume")).status == 202
    # MOH class and IVR_HELD_PARTNER, the dual Redirect; then Bridge and clearing IVR_HELD_PARTNER.
    assert api.ami.names()[-5:] == ["Setvar", "Setvar", "Redirect", "Bridge", "Setvar"]
    resp = await api.post(f"/calls/{call_id}/spy", json={"supervisor": "2000", "mode": "whisper"})
    assert resp.status == 202 and api.ami.headers()["Data"].endswith(",qwE")
    await expect_error(await api.post(f"/calls/{call_id}/retrieve", json={"agent": "1002"}), 409, "invalid_state")
    assert (await api.post(f"/calls/{call_id}/park", json={"timeout": 30})).status == 202
    assert api.ami.headers()["Timeout"] == "30000"
    resp = await api.post(f"/calls/{call_id}/hangup")
    assert resp.status == 202 and api.ami.names()[-1] == "Hangup"


async def test_parking_lots_and_queues(api):
    replay(api.registry, "ami-13-parking.jsonl", "ParkedCalls / Parkinglots")
    lots = (await (await api.get("/parking")).json())["lots"]
    assert [(lot["name"], [p["space"] for p in lot["calls"]]) for lot in lots] == [("default", ["701"])]
    assert (await (await api.get("/parking/default")).json())["calls"][0]["call_id"] == "1795909439.108"
    await expect_error(await api.get("/parking/vip"), 404, "not_found")
    replay(api.registry, "ami-15-queue.jsonl", "caller 1 enters")
    queues = (await (await api.get("/queues")).json())["queues"]
    assert queues[0]["name"] == "testq" and queues[0]["members"][0]["name"] == "Agent One"
    await expect_error(await api.get("/queues/nope"), 404, "not_found")


async def test_queue_member_routes(api):
    resp = await api.post(
        "/queues/testq/members",
        json={"interface": "Local/answer3s@agents", "name": "Agent One", "paused": True, "reason": "initial pause"},
    )
    assert resp.status == 201 and api.ami.names() == ["QueueAdd"]
    api.ami.replies["QueueAdd"] = error("Unable to add interface: Already there")
    await expect_error(
        await api.post("/queues/testq/members", json={"interface": "Local/answer3s@agents"}), 409, "invalid_state"
    )
    resp = await api.post(
        "/queues/testq/members/pause", json={"interface": "Local/answer3s@agents", "reason": "coffee break"}
    )
    assert resp.status == 200 and api.ami.headers()["Reason"] == "coffee break"
    assert (await api.post("/queues/testq/members/unpause", json={"interface": "Local/answer3s@agents"})).status == 200
    api.ami.replies["QueueRemove"] = error("Unable to remove interface: Not there")
    await expect_error(
        await api.post("/queues/testq/members/logout", json={"interface": "Local/answer3s@agents"}), 404, "not_found"
    )
    await expect_error(
        await api.post("/queues/testq/members/pause", json={"interface": "bad interface"}), 422, "invalid_request"
    )


# --- recordings ----------------------------------------------------------------------------------------------


async def test_recording_routes_and_download(api):
    replay(api.registry, "ami-13-parking.jsonl", "Park action on Local/p1")
    call_id = "1795909439.108"
    api.ami.replies["MixMonitor"] = msg(("Response", "Success"), ("MixMonitorID", "0x1"))
    resp = await api.post(f"/calls/{call_id}/recording/start")
    assert resp.status == 201
    started = await resp.json()
    await expect_error(await api.post(f"/calls/{call_id}/recording/start"), 409, "invalid_state")
    assert (await (await api.post(f"/calls/{call_id}/recording/pause")).json())["state"] == "paused"
    assert (await (await api.post(f"/calls/{call_id}/recording/resume")).json())["state"] == "recording"
    rec_id = started["recording_id"]
    await expect_error(await api.get(f"/recordings/{rec_id}/file"), 409, "invalid_state")
    assert (await (await api.post(f"/calls/{call_id}/recording/stop")).json())["state"] == "finished"

    listed = (await (await api.get(f"/recordings?call_id={call_id}")).json())["recordings"]
    assert [r["id"] for r in listed] == [rec_id] and listed[0]["download"] == f"/recordings/{rec_id}/file"
    # Not on this host yet: 404 with a hint.
    await expect_error(await api.get(f"/recordings/{rec_id}/file"), 404, "not_found")
    target = Path(api.settings.download_dir) / Path(started["path"]).name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"RIFF....WAVE")
    resp = await api.get(f"/recordings/{rec_id}/file")
    assert resp.status == 200 and await resp.read() == b"RIFF....WAVE"
    assert "attachment" in resp.headers["Content-Disposition"]
    await expect_error(await api.get("/recordings/999"), 404, "not_found")
    await expect_error(await api.get("/recordings/abc"), 404, "not_found")
    await expect_error(await api.get("/recordings?since=yesterday"), 422, "invalid_request")


async def test_download_refuses_rows_outside_the_recordings_dir(api, tmp_path):
    secret = tmp_path / "rec" / ".." / "secret.txt"
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "rec").mkdir()
    for path in ("/etc/passwd", "/var/spool/asterisk/monitor/../../../etc/passwd", str(secret)):
        rec_id = await api.storage.add_recording(
            Recording(call_id="x", path=path, state="finished", started_at=datetime.now(UTC))
        )
        await expect_error(await api.get(f"/recordings/{rec_id}/file"), 404, "not_found")


# --- callbacks, voicemail ------------------------------------------------------------------------------------


async def test_callbacks_routes(api):
    resp = await api.post("/callbacks", json={"number": "+37060000001", "queue": "support"})
    assert resp.status == 201
    created = await resp.json()
    assert resp.headers["Location"] == f"/callbacks/{created['id']}" and created["state"] == "pending"
    listed = (await (await api.get("/callbacks?state=pending")).json())["callbacks"]
    assert [c["id"] for c in listed] == [created["id"]]
    one = await (await api.get(f"/callbacks/{created['id']}")).json()
    assert one["attempts_log"] == []
    assert (await (await api.delete(f"/callbacks/{created['id']}")).json())["state"] == "cancelled"
    await expect_error(await api.delete(f"/callbacks/{created['id']}"), 409, "invalid_state")
    await expect_error(await api.delete("/callbacks/999"), 404, "not_found")
    await expect_error(await api.post("/callbacks", json={"number": "abc", "queue": "support"}), 422, "invalid_request")
    await expect_error(await api.get("/callbacks?state=weird"), 422, "invalid_request")
    assert (await (await api.get("/voicemail")).json()) == {"voicemail": [], "count": 0}


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"number": "+37060000001", "queue": "support", "language": "en,IVR_X=1"}, "language"),
        ({"number": "+37060000001", "queue": "support", "language": "en&x=1"}, "language"),
        ({"number": "+19005550100", "queue": "support"}, "number_pattern"),  # premium/foreign numbers
        ({"number": "90099", "queue": "support"}, "number_pattern"),
        ({"number": "+37060000001", "queue": "support", "max_attempts": 5}, "max_attempts"),
        ({"number": "+37060000001", "queue": "sup,port"}, "queue"),
    ],
)
async def test_callback_requests_are_checked(api, body, needle):
    api.settings.number_pattern = r"^(\+370|8)[0-9]{8}$"
    detail = (await expect_error(await api.post("/callbacks", json=body), 422, "invalid_request"))["detail"]
    assert needle in str(detail)
    assert await api.storage.list_callbacks() == []


async def test_callback_defaults_come_from_the_settings_and_labels_are_bounded(api):
    from ivr import metrics

    api.settings.callback_flow, api.settings.callback_max_attempts = "cb_flow", 4
    api.settings.known_queues = frozenset({"support"})

    def requested(queue):
        return metrics.REGISTRY.get_sample_value("ivr_callbacks_total", {"queue": queue, "result": "requested"}) or 0

    before_other, before_support = requested("other"), requested("support")
    resp = await api.post(
        "/callbacks",
        json={"number": "+37060000001", "queue": "support", "language": "lt", "not_before": "2026-11-30T09:00:00Z"},
    )
    created = await resp.json()
    assert (created["flow"], created["max_attempts"], created["language"]) == ("cb_flow", 4, "lt")
    assert created["not_before"] == "2026-11-30T09:00:00+00:00"
    await api.post("/callbacks", json={"number": "+37060000001", "queue": "random-name-123"})
    assert requested("support") == before_support + 1
    assert requested("other") == before_other + 1
    assert requested("random-name-123") == 0


@pytest.mark.parametrize("variables", [{"IVR_CALLBACK_ID": "1"}, {"order": "1,SHELL(id)=1"}, {"order": "x\ny"}])
async def test_originate_variables_are_checked(api, variables):
    body = await expect_error(
        await api.post("/calls/originate", json={"flow": "survey", "number": "+37060000001", "variables": variables}),
        422,
        "invalid_request",
    )
    assert body["detail"][0]["field"].startswith("variables"), body
    assert api.ami.sent == []


# --- flows ---------------------------------------------------------------------------------------------------


class FakeRepo:
    """The parts of FlowRepository the API uses."""

    def __init__(self) -> None:
        flow = Flow.model_validate({"name": "main", "start": "bye", "nodes": {"bye": {"type": "hangup"}}})

        class Current:
            version = "abc123"
            loaded_at = datetime(2026, 11, 29, tzinfo=UTC)
            warnings = ()

            def names(self):
                return ["main"]

            def __getitem__(self, name):
                return flow

            def get(self, name):
                return flow if name == "main" else None

        self.current = Current()
        self.last_errors = []
        self.failing = False
        self.reloads = []

    def reload(self, trigger):
        raise AssertionError("the blocking reload() ran on the event loop; the API must await reload_async()")

    async def reload_async(self, trigger):
        self.reloads.append(trigger)
        from ivr.flow.repository import ReloadResult

        return ReloadResult(
            ok=True,
            changed=False,
            version="abc123",
            previous_version="abc123",
            candidate_version="abc123",
            problems=(),
            trigger=trigger,
            at=datetime(2026, 11, 29, tzinfo=UTC),
        )


async def test_flow_routes(api):
    from ivr.api.deps import DEPS

    repo = FakeRepo()
    api.client.app[DEPS].flows = repo
    body = await (await api.get("/flows")).json()
    assert body["version"] == "abc123" and body["valid"] is True and body["flows"][0]["name"] == "main"
    assert (await (await api.get("/flows/main")).json())["flow"]["start"] == "bye"
    await expect_error(await api.get("/flows/none"), 404, "not_found")
    resp = await api.post("/flows/reload")
    assert resp.status == 200 and repo.reloads == ["api"]
    resp = await api.get("/flows/main/graph?format=mermaid")
    assert resp.status == 200 and "bye" in await resp.text()
    # Drawing may spawn Graphviz: it runs in a worker thread, never on the event loop's thread.
    import threading

    from ivr.service import draw_flow

    threads = []

    def spy(flow, fmt):
        threads.append(threading.current_thread())
        return draw_flow(flow, fmt)  # the service's drawer: ivr.flowgraph imported on first use

    api.client.app[DEPS].draw_flow = spy
    assert (await api.get("/flows/main/graph?format=mermaid")).status == 200
    assert threads and threads[0] is not threading.main_thread()
    await expect_error(await api.get("/flows/main/graph?format=gif"), 422, "invalid_request")
    api.client.app[DEPS].draw_flow = None  # an app built without a drawer
    await expect_error(await api.get("/flows/main/graph?format=mermaid"), 501, "not_implemented")


async def test_flows_without_repository_is_503(api):
    await expect_error(await api.get("/flows"), 503, "unavailable")

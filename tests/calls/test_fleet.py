"""Several Asterisk servers behind one registry/operations view (ivr.calls.fleet): the same real Asterisk
transcript replayed on two servers gives two calls with the same Linkedid, told apart by their `<pbx>:` ids; each
action goes to the AMI of the server holding the call; new calls go to the queue's home server or the first
logged-in one."""

from __future__ import annotations

import pytest

from ivr.calls.errors import AsteriskUnavailable, UnknownCall
from ivr.calls.settings import CallControlSettings
from ivr.calls.wiring import CallControl
from ivr.storage import open_storage

from .fakes import FakeAMI
from .transcripts import events_until, load


@pytest.fixture
async def fleet():
    amis = {"pbx1": FakeAMI(), "pbx2": FakeAMI()}
    storage = open_storage("memory:")
    control = CallControl.build_many(
        amis, storage, CallControlSettings(), run_callbacks=False, queue_homes={"support": "pbx2"}
    )
    for part in control.parts:  # the same bridged call on both servers (ami-16 call 1)
        for ev in events_until(load("ami-16-transfers.jsonl"), "BlindTransfer Channel="):
            part.registry.apply(ev)
    yield amis, control
    await storage.close()


async def test_calls_of_every_server_with_qualified_ids(fleet) -> None:
    _, control = fleet
    calls = control.registry.calls()
    assert [c.pbx for c in calls] == ["pbx1", "pbx2"]
    raw = calls[0].id.split(":", 1)[1]
    assert [c.id for c in calls] == [f"pbx1:{raw}", f"pbx2:{raw}"]
    assert control.registry.call(f"pbx2:{raw}").to_json()["pbx"] == "pbx2"
    with pytest.raises(UnknownCall, match="exists on pbx1, pbx2"):
        control.operations.call(raw)  # the bare id is ambiguous here
    with pytest.raises(UnknownCall):
        control.operations.call(f"pbx3:{raw}")


async def test_an_action_goes_to_the_server_holding_the_call(fleet) -> None:
    amis, control = fleet
    call_id = control.registry.calls()[1].id
    await control.operations.hangup(call_id)
    assert amis["pbx1"].sent == [] and {name for name, _ in amis["pbx2"].sent} == {"Hangup"}
    await control.operations.record_start(control.registry.calls()[0].id)
    assert [name for name, _ in amis["pbx1"].sent] == ["MixMonitor"]
    (row,) = await control.operations.storage.list_recordings()
    assert row.call_id == control.registry.calls()[0].id  # the index keeps the API's id


async def test_new_calls_go_to_the_queue_home_or_the_first_logged_in_server(fleet) -> None:
    amis, control = fleet
    ops = control.operations
    out = await ops.originate_flow("+37060000001", "callback", queue="support")
    assert out.pbx == "pbx2" and out.call_id.startswith("pbx2:")
    assert [n for n, _ in amis["pbx2"].sent] == ["Originate"]
    out = await ops.click_to_call("1001", "+37060000001")
    assert out.pbx == "pbx1"
    amis["pbx1"].logged_in = False
    assert (await ops.originate_flow("+37060000001", "callback", queue="sales")).pbx == "pbx2"
    amis["pbx2"].logged_in = False
    with pytest.raises(AsteriskUnavailable):
        await ops.click_to_call("1001", "+37060000001")
    amis["pbx1"].logged_in = True  # the home server is down: the first logged-in one takes its calls
    assert (await ops.originate_flow("+37060000001", "callback", queue="support")).pbx == "pbx1"


async def test_queue_member_actions_go_to_the_queue_home(fleet) -> None:
    amis, control = fleet
    await control.operations.queue_pause("PJSIP/1001", queue="support", reason="lunch")
    assert amis["pbx1"].sent == [] and [n for n, _ in amis["pbx2"].sent] == ["QueuePause"]

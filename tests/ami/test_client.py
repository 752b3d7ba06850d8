"""AMIClient against the fake AMI server: login, actions, lists, events, failures, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import pytest

from ivr import metrics
from ivr.ami.client import AMIClient
from ivr.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectionLost,
    AMIEncodingError,
    AMINotConnected,
    AMITimeout,
)
from ivr.ami.protocol import AMIParser, Message, Role, md5_key

from .fake_ami import CHALLENGE, FakeAMI, FakeConnection, replay, response
from .transcripts import TO_ASTERISK, stream_bytes

Make = Callable[..., AMIClient]


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def connected(make: Make, **kw: object) -> AMIClient:
    client = make(**kw)
    await client.start()
    await client.wait_logged_in(timeout=5)
    return client


def recorded_request(transcript: str, action_id: str) -> list[tuple[str, str]]:
    """The headers a real client sent to Asterisk in a transcript (ActionID removed)."""
    for msg in AMIParser(Role.SERVER).feed(stream_bytes(transcript, TO_ASTERISK)):
        if isinstance(msg, Message) and msg.action_id == action_id:
            return [(k, v) for k, v in msg.items() if k != "ActionID"]
    raise AssertionError(f"no request {action_id} in {transcript}")


def sent(fake: FakeAMI, action: str) -> list[tuple[str, str]]:
    [msg] = fake.received(action)
    return [(k, v) for k, v in msg.items() if k != "ActionID"]


# -- login ---------------------------------------------------------------------------------------------------


async def test_plain_login_up_and_fully_booted_event(fake: FakeAMI, make_client: Make) -> None:
    client = make_client()
    got: list[Message] = []
    await client.start()
    client.subscribe(got.append, {"FullyBooted"}, name="test-booted")
    await client.wait_logged_in(timeout=5)
    assert client.logged_in and client.state == "up"
    health = client.health()
    assert health.healthy and health.version == "11.0.0" and health.login_failures == 0
    assert sample("ivr_ami_up", pbx="default") == 1
    login = fake.received("Login")[0]
    assert [(k, v) for k, v in login.items() if k != "ActionID"] == [
        ("Action", "Login"),
        ("Username", "ivr"),
        ("Secret", "ivrsecret"),
        ("Events", "on"),
    ]
    await fake.wait_for(lambda: len(got) == 1)
    assert got[0]["Status"] == "Fully Booted"


async def test_md5_login(fake: FakeAMI, make_client: Make) -> None:
    await connected(make_client, auth="md5")
    assert [m.name for m in fake.actions[:2]] == ["Challenge", "Login"]
    login = fake.actions[1]
    assert login["AuthType"] == "MD5" and login["Key"] == md5_key(CHALLENGE, "ivrsecret")
    assert "Secret" not in login


async def test_wrong_secret_raises_auth_error_counts_and_backs_off(fake: FakeAMI, make_client: Make) -> None:
    before = sample("ivr_ami_login_failures_total")
    client = make_client(secret="wrongsecret", login_failure_backoff=30.0)
    await client.start()
    with pytest.raises(AMIAuthError, match="Authentication failed"):
        await client.wait_logged_in(timeout=5)
    health = client.health()
    assert health.state == "auth_failed" and not health.healthy and health.login_failures == 1
    assert "wrongsecret" not in (health.last_error or "")
    assert sample("ivr_ami_login_failures_total") == before + 1
    assert sample("ivr_ami_up", pbx="default") == 0
    # The long backoff: the client waits instead of hammering Asterisk, and says so again at once.
    with pytest.raises(AMIAuthError):
        await client.wait_logged_in(timeout=5)
    assert fake.failed_logins == 1


async def test_login_recovers_once_credentials_are_fixed(fake: FakeAMI, make_client: Make) -> None:
    fake.secret = "other"
    client = make_client(login_failure_backoff=0.02)
    await client.start()
    await fake.wait_for(lambda: fake.failed_logins >= 1)
    fake.secret = "ivrsecret"
    await fake.wait_for(lambda: client.logged_in)
    await client.wait_logged_in(timeout=5)
    assert client.health().login_failures >= 1


async def test_unreachable_port_retries_with_backoff_and_times_out(make_client: Make) -> None:
    client = make_client(port=1)  # nothing listens on port 1 of the loopback
    await client.start()
    with pytest.raises(AMITimeout, match="not logged in"):
        await client.wait_logged_in(timeout=0.3)
    health = client.health()
    assert health.state in ("down", "connecting") and health.last_error
    assert health.reconnects >= 1


async def test_not_an_ami_port_is_a_protocol_error(make_client: Make) -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1: 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    try:
        client = make_client(port=server.sockets[0].getsockname()[1])
        await client.start()
        with pytest.raises(AMITimeout):
            await client.wait_logged_in(timeout=0.3)
        assert "banner" in (client.health().last_error or "")
    finally:
        server.close()
        await server.wait_closed()


async def test_action_before_start_is_refused(make_client: Make) -> None:
    client = make_client()
    with pytest.raises(AMINotConnected, match="never queued"):
        await client.ping()


# -- actions -------------------------------------------------------------------------------------------------


async def test_ping_unique_action_ids_and_metric(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    before = sample("ivr_ami_action_seconds_count", action="ping")
    replies = await asyncio.gather(*(client.ping() for _ in range(20)))
    assert all(r["Ping"] == "Pong" for r in replies)
    ids = [m.action_id for m in fake.actions]
    assert len(set(ids)) == len(ids) == 21 and all(ids)
    assert {r.action_id for r in replies} == set(ids[1:])
    assert sample("ivr_ami_action_seconds_count", action="ping") == before + 20


async def test_responses_are_matched_by_action_id_out_of_order(fake: FakeAMI, make_client: Make) -> None:
    held: list[Message] = []
    fake.on("UserEvent", lambda conn, msg: held.append(msg) or [])  # type: ignore[func-returns-value]
    fake.on(
        "Status",
        lambda conn, msg: [
            response(msg.action_id, ("Message", "second")),
            response(held[0].action_id, ("Message", "first")),
        ],
    )
    client = await connected(make_client)
    first = asyncio.create_task(client.action("UserEvent", {"UserEvent": "x"}))
    await fake.wait_for(lambda: bool(held))
    second = await client.action("Status")
    assert second["Message"] == "second"
    assert (await first)["Message"] == "first"


async def test_error_response_raises_typed_error_or_returns_it(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    with pytest.raises(AMIActionError) as err:
        await client.action("NoSuchAction")
    assert err.value.reason == (
        "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands."
    )
    resp = await client.action("NoSuchAction", check=False)
    assert resp.name == "Error"


async def test_action_label_is_bounded(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    before = sample("ivr_ami_action_seconds_count", action="other")
    await client.action("Weird-Action-From-Somewhere", check=False)
    assert sample("ivr_ami_action_seconds_count", action="other") == before + 1


async def test_action_timeout_then_late_answer_is_dropped(fake: FakeAMI, make_client: Make) -> None:
    late: list[Message] = []
    fake.on("Getvar", lambda conn, msg: late.append(msg) or [])  # type: ignore[func-returns-value]
    client = await connected(make_client)
    with pytest.raises(AMITimeout, match="Getvar"):
        await client.action("Getvar", {"Variable": "X"}, timeout=0.05)
    await fake.connections[0].send(response(late[0].action_id, ("Variable", "X"), ("Value", "late")))
    assert (await client.ping())["Ping"] == "Pong"
    assert client.logged_in


async def test_injection_is_refused_and_nothing_is_sent(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    with pytest.raises(AMIEncodingError):
        await client.setvar("X", "a\r\nAction: Hangup\r\nChannel: /.*/")
    assert fake.received("Setvar") == [] and fake.received("Hangup") == []


# -- lists, command output, typed helpers with recorded answers -----------------------------------------------


async def test_core_show_channels_list(fake: FakeAMI, make_client: Make) -> None:
    fake.on("CoreShowChannels", replay("ami-12-status-getvar-command", "ami-4"))
    seen: list[Message] = []
    client = await connected(make_client)
    client.subscribe(seen.append, name="test-catch-all")
    response_, items = await client.list_action("CoreShowChannels")
    assert response_["EventList"] == "start"
    assert response_["Message"] == "Channels will follow"
    assert items and all(m.name == "CoreShowChannel" for m in items)
    assert items[0]["Channel"] == "Local/alice@phones-00000033;1"
    assert len(await client.core_show_channels()) == len(items)
    await client.ping()
    assert not [m for m in seen if m.name in ("CoreShowChannel", "CoreShowChannelsComplete")]


async def test_list_ended_at_once_by_error(fake: FakeAMI, make_client: Make) -> None:
    fake.on("QueueStatus", lambda conn, msg: [response(msg.action_id, ("Message", "No such queue"), status="Error")])
    client = await connected(make_client)
    with pytest.raises(AMIActionError, match="No such queue"):
        await client.queue_status("nosuchqueue")
    resp, items = await client.list_action("QueueStatus", {"Queue": "nosuchqueue"}, check=False)
    assert resp.name == "Error" and items == []


async def test_queue_status_and_summary_lists(fake: FakeAMI, make_client: Make) -> None:
    fake.on("QueueStatus", replay("ami-15-queue", "ami-9"))
    fake.on("QueueSummary", replay("ami-15-queue", "ami-2"))
    client = await connected(make_client)
    status = await client.queue_status("testq")
    assert status[0].name == "QueueParams" and status[0]["Queue"] == "testq"
    assert [m.name for m in await client.queue_summary("testq")] == ["QueueSummary"]


async def test_command_output(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Command", replay("ami-12-status-getvar-command", "ami-22"))
    client = await connected(make_client)
    result = await client.command("dialplan show parkedcallstimeout")
    assert result.ok
    assert result.output[0] == "[ Context 'parkedcallstimeout' created by 'pbx_config' ]"
    assert result.output[-1] == "-= 2 extensions (4 priorities) in 1 context. =-"
    fake.on("Command", replay("ami-12-status-getvar-command", "ami-21"))
    bad = await client.command("no such cli command")
    assert not bad.ok and bad.output[0].startswith("No such command 'no such cli command'")


async def test_originate_correlates_originate_response(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Originate", replay("ami-11-originate-event-stream", "ami-2"))
    client = await connected(make_client)
    result = await client.originate(
        "Local/s@dtmf-sender",
        context="ivr-test",
        exten="s",
        priority=1,
        caller_id='"DTMF Test" <5551000>',
        timeout_ms=30000,
        variables={"VAR1": "one", "VAR2": "two words"},
        channel_id="orig-11-chan1",
        other_channel_id="orig-11-chan2",
        account="acct42",
    )
    assert result.success and result.reason == 4 and result.reason_text == "answered"
    assert result.uniqueid == "orig-11-chan1"
    assert result.channel == "Local/s@dtmf-sender-0000002c;1"
    assert sent(fake, "Originate") == recorded_request("ami-11-originate-event-stream", "ami-2")


async def test_originate_busy(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Originate", replay("ami-11-originate-event-stream", "ami-3"))
    client = await connected(make_client)
    result = await client.originate("Local/busy@agents", application="Playback", data="beep", timeout_ms=10000)
    assert not result.success and result.reason == 5 and result.reason_text == "busy"
    assert result.uniqueid is None  # Asterisk says "Uniqueid: <unknown>" when no channel was made
    assert sorted(sent(fake, "Originate")) == sorted(recorded_request("ami-11-originate-event-stream", "ami-3"))


async def test_originate_response_also_reaches_subscribers(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Originate", replay("ami-11-originate-event-stream", "ami-3"))
    client = await connected(make_client)
    got: list[Message] = []
    client.subscribe(got.append, {"OriginateResponse"}, name="test-orig")
    await client.originate("Local/busy@agents", application="Playback", data="beep")
    await fake.wait_for(lambda: len(got) == 1)


@pytest.mark.parametrize(
    "transcript,action_id,call",
    [
        (
            "ami-16-transfers",
            "ami-11",
            lambda c: c.redirect(
                "Local/alice@phones-00000044;1", "redirect-target", "s", 1, extra_channel="Local/bob@phones-00000045;1"
            ),
        ),
        ("ami-16-transfers", "ami-3", lambda c: c.blind_transfer("Local/alice@phones-0000003f;1", "phones", "carol")),
        ("ami-16-transfers", "ami-6", lambda c: c.atxfer("Local/alice@phones-00000041;1", "300", "phones")),
        (
            "ami-13-parking",
            "ami-17",
            lambda c: c.park(
                "Local/bob@phones-0000003a;1", timeout_channel="Local/alice@phones-00000039;1", timeout_ms=4000
            ),
        ),
        (
            "ami-14-mixmonitor",
            "ami-3",
            lambda c: c.mixmonitor(
                "Local/s@idle-leg-0000003b;1", "/var/spool/asterisk/recordings/ami14-mixmon.wav", "i(MMID)v(1)"
            ),
        ),
        ("ami-14-mixmonitor", "ami-5", lambda c: c.mixmonitor_mute("Local/s@idle-leg-0000003b;1", True, "both")),
        ("ami-14-mixmonitor", "ami-7", lambda c: c.stop_mixmonitor("Local/s@idle-leg-0000003b;1", "0x7f8050009830")),
        (
            "ami-15-queue",
            "ami-3",
            lambda c: c.queue_add(
                "testq",
                "Local/answer3s@agents",
                penalty=0,
                paused=True,
                reason="initial pause",
                member_name="Agent One",
                state_interface="Custom:agent1",
            ),
        ),
        ("ami-15-queue", "ami-5", lambda c: c.queue_pause("Local/answer3s@agents", False, queue="testq")),
        ("ami-15-queue", "ami-16", lambda c: c.queue_remove("testq", "Local/answer3s@agents")),
        (
            "ami-12-status-getvar-command",
            "ami-10",
            lambda c: c.setvar("MYVAR", "hello world", "Local/s@idle-leg-00000032;1"),
        ),
        ("ami-12-status-getvar-command", "ami-8", lambda c: c.getvar("CHANNEL(state)", "Local/s@idle-leg-00000032;1")),
        ("ami-17-errors-and-hangup", "ami-3", lambda c: c.hangup("Local/s@idle-leg-00000046;1", cause=17)),
        ("ami-17-errors-and-hangup", "ami-4", lambda c: c.hangup("Local/nothing-here-00000000;1")),
    ],
)
async def test_typed_helpers_send_what_the_transcripts_sent(
    fake: FakeAMI, make_client: Make, transcript: str, action_id: str, call: Callable
) -> None:  # type: ignore[type-arg]
    request = recorded_request(transcript, action_id)
    action = request[0][1]
    fake.on(action, replay(transcript, action_id))
    client = await connected(make_client)
    with contextlib.suppress(AMIActionError):  # some recorded answers are errors; the point is the request bytes
        await call(client)
    assert sent(fake, action) == request


async def test_recorded_answers_of_helpers(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Park", replay("ami-13-parking", "ami-3"))
    fake.on("MixMonitor", replay("ami-14-mixmonitor", "ami-3"))
    fake.on("Getvar", replay("ami-12-status-getvar-command", "ami-8"))
    fake.on("ParkedCalls", replay("ami-13-parking", "ami-4"))
    client = await connected(make_client)
    park = await client.park("Local/p1@phones-00000035;1", timeout_ms=5000)
    assert park["Message"] == "Park successful\n"  # the bare LF Asterisk really sends
    assert await client.mixmonitor("Local/s@idle-leg-0000003b;1", "/tmp/x.wav") == "0x7f8050009830"
    assert await client.getvar("CHANNEL(state)", "Local/s@idle-leg-00000032;1") == "Up"
    parked = await client.parked_calls()
    assert all(m.name == "ParkedCall" for m in parked) and parked


# -- events ---------------------------------------------------------------------------------------------------


async def test_subscribers_by_name_catch_all_and_a_failing_one(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    named: list[Message] = []
    every: list[Message] = []

    async def broken(msg: Message) -> None:
        raise RuntimeError("subscriber bug")

    bad = client.subscribe(broken, {"Newexten"}, name="test-broken")
    client.subscribe(named.append, {"Newexten"}, name="test-named")
    client.subscribe(every.append, name="test-every")
    await fake.flood(3)
    await fake.broadcast(b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: x\r\n\r\n")
    await fake.wait_for(lambda: len(every) == 4 and len(named) == 3 and bad.failures == 3)
    assert [m.name for m in every] == ["Newexten"] * 3 + ["Hangup"]
    assert client.logged_in and (await client.ping())["Ping"] == "Pong"


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
async def test_overflow_policy_is_explicit_and_counted(fake: FakeAMI, make_client: Make, policy: str) -> None:
    client = await connected(make_client)
    gate = asyncio.Event()
    got: list[int] = []

    async def slow(msg: Message) -> None:
        await gate.wait()
        got.append(int(msg["Seq"]))

    name = f"test-overflow-{policy}"
    before = sample("ivr_ami_events_dropped_total", subscriber=name)
    sub = client.subscribe(slow, {"UserEvent"}, maxsize=10, overflow=policy, name=name)  # type: ignore[arg-type]
    events = b"".join(b"Event: UserEvent\r\nPrivilege: user,all\r\nSeq: %d\r\n\r\n" % i for i in range(50))
    await fake.broadcast(events)
    await fake.wait_for(lambda: sub.dropped + sub.pending >= 49)
    gate.set()
    await fake.wait_for(lambda: sub.pending == 0 and len(got) == 50 - sub.dropped)
    assert sub.dropped >= 39
    assert sample("ivr_ami_events_dropped_total", subscriber=name) == before + sub.dropped
    if policy == "drop_newest":
        assert got == list(range(len(got)))  # the first ones were kept
    else:
        assert got[-10:] == list(range(40, 50))  # the newest ones were kept
    assert got == sorted(got)


async def test_flood_is_delivered_in_order_and_counted(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    got: list[Message] = []
    client.subscribe(got.append, {"Newexten"}, maxsize=100_000, name="test-flood")
    before = sample("ivr_ami_events_total", event="Newexten")
    await fake.flood(20_000)
    await fake.wait_for(lambda: len(got) == 20_000, timeout=20)
    assert sample("ivr_ami_events_total", event="Newexten") == before + 20_000
    assert client.logged_in


async def test_unknown_event_names_are_counted_as_other(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    before = sample("ivr_ami_events_total", event="other")
    await fake.broadcast(b"Event: Caller-Chosen-Name-123\r\n\r\n")
    await fake.wait_for(lambda: sample("ivr_ami_events_total", event="other") == before + 1)
    assert client.logged_in


async def test_bytes_split_one_at_a_time(fake: FakeAMI, make_client: Make) -> None:
    fake.chunk = 1
    fake.on("CoreShowChannels", replay("ami-12-status-getvar-command", "ami-4"))
    client = await connected(make_client, auth="md5")
    assert (await client.ping())["Ping"] == "Pong"
    assert len(await client.core_show_channels()) == 6


# -- failures, reconnects, close ---------------------------------------------------------------------------


async def test_drop_fails_pending_and_never_replays(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Originate", lambda conn, msg: [])  # Asterisk dies before answering
    calls: list[int] = []
    reconnects = sample("ivr_ami_reconnects_total")
    client = await connected(make_client)
    client.on_connected(lambda: calls.append(1))
    task = asyncio.create_task(client.originate("Local/s@x", application="Wait", data="1"))
    await fake.wait_for(lambda: len(fake.received("Originate")) == 1)
    fake.drop()
    with pytest.raises(AMIConnectionLost, match="not retried"):
        await task
    await client.wait_logged_in(timeout=5)
    await fake.wait_for(lambda: len(calls) == 1)
    assert fake.logins == 2
    assert client.health().reconnects >= 1
    assert len(fake.received("Originate")) == 1  # sent once, never replayed
    assert sample("ivr_ami_reconnects_total") >= reconnects + 1
    assert (await client.ping())["Ping"] == "Pong"


async def test_drop_while_waiting_for_originate_response_fails_the_waiter(fake: FakeAMI, make_client: Make) -> None:
    # Asterisk accepted the Originate ("Originate successfully queued") and then died: the outcome is unknown.
    fake.on("Originate", lambda conn, msg: [response(msg.action_id, ("Message", "Originate successfully queued"))])
    client = await connected(make_client)
    task = asyncio.create_task(client.originate("Local/s@x", application="Wait", data="1"))
    await fake.wait_for(lambda: len(fake.received("Originate")) == 1)
    await fake.wait_for(lambda: bool(client.originates()._waiters))  # answered; now waiting for OriginateResponse
    fake.drop()
    with pytest.raises(AMIConnectionLost, match="OriginateResponse"):
        await task
    assert len(fake.received("Originate")) == 1


async def test_on_connected_after_every_login_and_failing_callback_is_isolated(
    fake: FakeAMI, make_client: Make
) -> None:
    client = make_client()
    seen: list[str] = []

    async def resync() -> None:
        seen.append((await client.ping())["Ping"])

    def broken() -> None:
        raise RuntimeError("callback bug")

    client.on_connected(broken)
    client.on_connected(resync)
    await client.start()
    await fake.wait_for(lambda: seen == ["Pong"])
    fake.drop()
    await fake.wait_for(lambda: seen == ["Pong", "Pong"])


async def test_half_open_connection_is_found_by_keepalive(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client, ping_interval=0.05, ping_timeout=0.3)
    await fake.wait_for(lambda: len(fake.received("Ping")) >= 1)
    logins = fake.logins
    fake.silent = True  # the peer still holds the socket but answers nothing
    await fake.wait_for(lambda: not client.logged_in)
    assert "keepalive" in (client.health().last_error or "")
    fake.silent = False
    await client.wait_logged_in(timeout=5)
    assert fake.logins == logins + 1


async def test_connection_lost_while_waiting_for_list(fake: FakeAMI, make_client: Make) -> None:
    def half_list(conn: FakeConnection, msg: Message) -> list[bytes]:
        asyncio.get_running_loop().call_later(0.01, conn.abort)
        return [response(msg.action_id, ("EventList", "start"), ("Message", "Channels will follow"))]

    fake.on("CoreShowChannels", half_list)
    client = await connected(make_client)
    with pytest.raises(AMIConnectionLost):
        await client.core_show_channels()


async def test_close_logs_off_and_cancels_everything(fake: FakeAMI, make_client: Make) -> None:
    fake.on("Getvar", lambda conn, msg: [])
    client = await connected(make_client)
    sub = client.subscribe(lambda m: None, name="test-close")
    pending = asyncio.create_task(client.getvar("X"))
    await fake.wait_for(lambda: len(fake.received("Getvar")) == 1)
    await client.close()
    with pytest.raises(AMIConnectionLost):
        await pending
    assert len(fake.received("Logoff")) == 1
    assert client.state == "closed" and not client.logged_in
    assert sub._task is None
    with pytest.raises(AMINotConnected):
        await client.ping()
    logins = fake.logins
    await asyncio.sleep(0.1)  # no reconnect after close (backoff_max is 0.05 s here)
    assert fake.logins == logins


async def test_close_during_reconnect_backoff(fake: FakeAMI, make_client: Make) -> None:
    client = make_client(port=1, backoff_min=10, backoff_max=10)
    await client.start()
    await asyncio.sleep(0.05)
    await client.close()
    assert client.state == "closed"


async def test_silent_server_gives_banner_timeout(make_client: Make) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # accepts, never sends the banner
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        client = make_client(port=server.sockets[0].getsockname()[1], connect_timeout=0.05)
        await client.start()
        with pytest.raises(AMITimeout):
            await client.wait_logged_in(timeout=0.3)
        assert "no AMI banner" in (client.health().last_error or "")
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def test_tcp_keepalive_is_enabled(fake: FakeAMI, make_client: Make) -> None:
    import socket

    client = await connected(make_client)
    assert client._conn is not None and client._conn.transport is not None
    sock = client._conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


async def test_shutdown_event_then_close_reconnects(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    got: list[Message] = []
    client.subscribe(got.append, {"Shutdown"}, name="test-shutdown")
    # ami-18: the last thing an event session sees before Asterisk closes every socket.
    await fake.broadcast(b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Uncleanly\r\nRestart: False\r\n\r\n")
    await fake.wait_for(lambda: len(got) == 1)
    fake.drop()
    await fake.wait_for(lambda: fake.logins == 2)
    await client.wait_logged_in(timeout=5)
    assert got[0]["Shutdown"] == "Uncleanly"


async def test_list_items_are_counted_as_events(fake: FakeAMI, make_client: Make) -> None:
    fake.on("CoreShowChannels", replay("ami-12-status-getvar-command", "ami-4"))
    client = await connected(make_client)
    before = sample("ivr_ami_events_total", event="CoreShowChannel")
    await client.core_show_channels()
    assert sample("ivr_ami_events_total", event="CoreShowChannel") == before + 6


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    import random

    client = AMIClient("127.0.0.1", 1, backoff_min=1.0, backoff_max=8.0, rng=random.Random(3))
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (20, 8.0)]:
        delays = {client._backoff(attempt) for _ in range(50)}
        assert all(base / 2 <= d <= base for d in delays)
        assert len(delays) > 40  # jittered, not in lockstep


async def test_subscription_drain_waits_for_the_handler(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    gate = asyncio.Event()
    handled: list[str] = []

    async def slow(msg: Message) -> None:
        await gate.wait()
        handled.append(msg["Seq"])

    sub = client.subscribe(slow, {"UserEvent"}, name="test-drain")
    await fake.broadcast(b"".join(b"Event: UserEvent\r\nSeq: %d\r\n\r\n" % i for i in range(5)))
    await fake.wait_for(lambda: sub.pending == 4)  # one is in the handler, four wait
    drain = asyncio.create_task(sub.drain())
    await asyncio.sleep(0.01)
    assert not drain.done()
    gate.set()
    await asyncio.wait_for(drain, 5)
    assert handled == ["0", "1", "2", "3", "4"] and sub.delivered == 5


async def test_crash_loop_after_login_keeps_backing_off(fake: FakeAMI) -> None:
    attempts: list[int] = []

    class Recording(AMIClient):
        def _backoff(self, attempt: int) -> float:
            attempts.append(attempt)
            return 0.001  # the delay itself does not matter here, the growing attempt number does

    fake.drop_after_login = True
    client = Recording("127.0.0.1", fake.port, "ivr", "ivrsecret", ping_interval=0, backoff_max=10.0)
    try:
        await client.start()
        await fake.wait_for(lambda: fake.logins >= 4)
        assert attempts[:3] == [1, 2, 3]  # sessions that die at once do not reset the backoff
    finally:
        await client.close()


async def test_runaway_message_drops_the_connection_and_reconnects(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client, max_message_size=4096)
    await fake.broadcast(b"Event: Runaway\r\n" + b"Junk: xxxxxxxxxxxxxxxxxxxxxxxx\r\n" * 500)  # no empty line, ever
    await fake.wait_for(lambda: fake.logins == 2)
    await client.wait_logged_in(timeout=5)
    health = client.health()
    assert health.reconnects >= 1 and "exceeds the limit" in (health.last_error or "")


async def test_async_context_manager(fake: FakeAMI) -> None:
    async with AMIClient("127.0.0.1", fake.port, "ivr", "ivrsecret", ping_interval=0) as client:
        assert (await client.ping())["Ping"] == "Pong"
    assert client.state == "closed" and len(fake.received("Logoff")) == 1
    with pytest.raises(AMIAuthError):
        async with AMIClient("127.0.0.1", fake.port, "ivr", "bad", ping_interval=0, login_failure_backoff=60):
            pass


async def test_a_subscriber_that_never_suspends_lets_the_loop_run(fake: FakeAMI, make_client: Make) -> None:
    client = await connected(make_client)
    got: list[int] = []
    seen_by_other_task: list[int] = []

    def blocking(msg: Message) -> None:
        time.sleep(0.001)  # a handler that blocks: the subscriber must still yield within its time slice
        got.append(int(msg["Seq"]))

    async def other_task() -> None:
        while not got:
            await asyncio.sleep(0)
        seen_by_other_task.append(len(got))

    client.subscribe(blocking, {"UserEvent"}, maxsize=1000, name="test-blocking")
    watcher = asyncio.get_running_loop().create_task(other_task())
    await fake.broadcast(b"".join(b"Event: UserEvent\r\nSeq: %d\r\n\r\n" % i for i in range(100)))
    await fake.wait_for(lambda: len(got) == 100)
    await watcher
    assert got == list(range(100))
    assert seen_by_other_task[0] < 100  # the loop ran while the backlog was being handled


async def test_a_server_without_banner_is_a_warning_and_a_retry_not_a_lost_future(
    fake: FakeAMI, make_client: Make, caplog: pytest.LogCaptureFixture
) -> None:
    """Something accepts on the manager port and never speaks: each attempt times out waiting for the banner,
    is logged as one WARNING and retried; no future is left holding an exception nobody reads (asyncio would log
    "Future exception was never retrieved" at ERROR when it is collected)."""
    import gc

    fake.mute = True
    caplog.set_level(logging.WARNING)
    client = make_client(connect_timeout=0.05)
    await client.start()
    await fake.wait_for(lambda: len(fake.connections) >= 3)
    await client.close()
    fake.drop()
    for _ in range(3):  # let the aborted transports call connection_lost, then collect what is left
        await asyncio.sleep(0)
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "no AMI banner" in r.getMessage()]
    assert len(retries) >= 2 and all("retrying in" in r.getMessage() for r in retries)
    assert client.state == "closed"

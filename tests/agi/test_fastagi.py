"""FastAGIServer over loopback: routing, NOROUTE, handler errors, bad peers, connection cap, graceful stop."""

from __future__ import annotations

import asyncio

from ivr import metrics
from ivr.agi import Router

from .conftest import Outcome, capture, running_server
from .fake_asterisk import ENV_AGI01, FakeAsterisk, env_for


def connections(result: str) -> float:
    return metrics.REGISTRY.get_sample_value("ivr_agi_connections_total", {"result": result}) or 0.0


def noop_router(outcome: Outcome | None = None, path: str = "agi-01") -> Router:
    async def body(s):
        await s.noop()
        return s.env.args

    router = Router()
    router.add(path, capture(body, outcome or Outcome()))
    return router


async def healthy_call(port: int) -> None:
    """A normal call must still work while bad peers are connected."""
    fake = await FakeAsterisk.connect(port, ENV_AGI01)
    await fake.expect(b"NOOP\n", b"200 result=0\n")
    assert await fake.closed_by_server()


async def test_route_by_script_path_with_query_and_args(outcome):
    before = connections("ok")
    async with running_server(noop_router(outcome)) as server:
        await healthy_call(server.port)
        assert await outcome.wait() == ["first arg", "second"]
    assert connections("ok") == before + 1


async def test_unknown_route_sets_noroute_and_closes(caplog):
    before = connections("noroute")
    async with running_server(noop_router()) as server:
        fake = await FakeAsterisk.connect(server.port, env_for("no-such-flow?x=1"))
        await fake.expect(b'SET VARIABLE IVR_STATUS "NOROUTE"\n', b"200 result=1\n")
        assert await fake.closed_by_server()
    assert connections("noroute") == before + 1
    assert "no AGI route for script 'no-such-flow'" in caplog.text


async def test_fallback_resolver_for_dynamic_flows(outcome):
    async def body(s):
        await s.noop()
        return s.env.script_path

    router = Router(fallback=lambda path: capture(body, outcome) if path.startswith("flow-") else None)
    async with running_server(router) as server:
        fake = await FakeAsterisk.connect(server.port, env_for("flow-sales"))
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() == "flow-sales"


async def test_handler_exception_sets_error_status_and_closes(caplog):
    async def handler(s):
        await s.noop()
        raise RuntimeError("flow bug")

    router = Router()
    router.add("agi-01", handler)
    before = connections("error")
    async with running_server(router) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        await fake.expect(b'SET VARIABLE IVR_STATUS "ERROR"\n', b"200 result=1\n")
        assert await fake.closed_by_server()
    assert connections("error") == before + 1
    assert "flow bug" in caplog.text


async def test_handler_exception_after_hangup_does_not_touch_the_dead_channel():
    async def handler(s):
        await s.noop()
        raise RuntimeError("late bug")

    router = Router()
    router.add("agi-01", handler)
    async with running_server(router) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"HANGUP\n200 result=0\n")
        assert await fake.closed_by_server()
        assert b"".join(fake.received) == b"NOOP\n"  # no SET VARIABLE on the dead channel


async def test_client_closes_mid_header_does_not_block_others():
    before = connections("bad_header")
    async with running_server(noop_router()) as server:
        broken = await FakeAsterisk.connect(server.port, ENV_AGI01[:60])
        await broken.aclose()
        await healthy_call(server.port)
        for _ in range(100):
            if connections("bad_header") == before + 1:
                break
            await asyncio.sleep(0.01)
    assert connections("bad_header") == before + 1


async def test_header_timeout_and_stalled_header_peer():
    async with running_server(noop_router(), header_timeout=0.3) as server:
        stalled = await FakeAsterisk.connect(server.port, ENV_AGI01[:60])  # never finishes its header
        silent = await FakeAsterisk.connect(server.port)  # never sends anything
        await healthy_call(server.port)  # others are not blocked
        assert await stalled.closed_by_server()
        assert await silent.closed_by_server()


async def test_byte_at_a_time_header_is_accepted(outcome):
    async with running_server(noop_router(outcome)) as server:
        fake = await FakeAsterisk.connect(server.port)
        for i in range(len(ENV_AGI01)):
            await fake.send(ENV_AGI01[i : i + 1])
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await outcome.wait() == ["first arg", "second"]


async def test_oversized_header_and_long_line_are_refused():
    async with running_server(noop_router(), header_limit=2048, line_limit=512) as server:
        big = await FakeAsterisk.connect(server.port, b"".join(b"agi_k%d: %s\n" % (i, b"v" * 100) for i in range(40)))
        long_line = await FakeAsterisk.connect(server.port, b"agi_network: " + b"x" * 5000)
        assert await big.closed_by_server()
        assert await long_line.closed_by_server()
        await healthy_call(server.port)


async def test_long_reply_line_during_a_call_closes_only_that_call():
    async def body(s):
        await s.get_variable("X")

    router = Router()
    router.add("agi-01", body)
    async with running_server(router, line_limit=512) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"GET VARIABLE X\n", b"200 result=1 (" + b"y" * 4000)
        assert await fake.closed_by_server()


async def test_stalled_peer_during_a_command_does_not_block_other_calls():
    async with running_server(noop_router(), command_timeout=0.3) as server:
        stalled = await FakeAsterisk.connect(server.port, ENV_AGI01)
        assert await stalled.read_command() == b"NOOP\n"  # and never reply
        await healthy_call(server.port)
        assert await stalled.closed_by_server()


async def test_connection_cap_rejects_at_once_and_counts():
    release = asyncio.Event()

    async def handler(s):
        await asyncio.wait_for(release.wait(), 5)
        await s.noop()

    router = Router()
    router.add("agi-01", handler)
    before = connections("rejected")
    async with running_server(router, max_connections=2) as server:
        first = await FakeAsterisk.connect(server.port, ENV_AGI01)
        second = await FakeAsterisk.connect(server.port, ENV_AGI01)
        for _ in range(200):
            if server.active == 2:
                break
            await asyncio.sleep(0.01)
        third = await FakeAsterisk.connect(server.port, ENV_AGI01)
        assert await third.closed_by_server()
        assert server.rejected == 1 and connections("rejected") == before + 1
        release.set()
        for fake in (first, second):
            await fake.expect(b"NOOP\n", b"200 result=0\n")
            assert await fake.closed_by_server()
        await healthy_call(server.port)  # capacity is back


async def test_graceful_stop_lets_running_calls_finish(outcome):
    async def body(s):
        return await s.get_variable("DIALSTATUS")

    router = Router()
    router.add("agi-01", capture(body, outcome))
    server_ctx = running_server(router, shutdown_deadline=5.0)
    server = await server_ctx.__aenter__()
    fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
    assert await fake.read_command() == b"GET VARIABLE DIALSTATUS\n"
    port = server.port
    stopping = asyncio.create_task(server.stop())
    await asyncio.sleep(0.05)
    try:  # no new calls once stopping
        late = await FakeAsterisk.connect(port, ENV_AGI01)
        assert await late.closed_by_server()
    except OSError:
        pass
    assert not stopping.done()
    await fake.send(b"200 result=1 (ANSWER)\n")
    assert await fake.closed_by_server()
    await asyncio.wait_for(stopping, 5)
    assert await outcome.wait() == "ANSWER"


async def test_stop_deadline_closes_calls_that_do_not_finish():
    async def handler(s):
        await s.command("EXEC", "Wait", "3600", timeout=None)

    router = Router()
    router.add("agi-01", handler)
    async with running_server(router, shutdown_deadline=0.2) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        assert await fake.read_command() == b"EXEC Wait 3600\n"
        await asyncio.wait_for(server.stop(), 5)
        assert await fake.closed_by_server()
        assert server.active == 0


async def test_many_concurrent_calls():
    before = metrics.REGISTRY.get_sample_value("ivr_agi_connections_active")
    async with running_server(noop_router()) as server:
        await asyncio.gather(*(healthy_call(server.port) for _ in range(200)))
        assert server.active == 0
        assert metrics.REGISTRY.get_sample_value("ivr_agi_connections_active") == before

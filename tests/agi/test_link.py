"""AGILink: the socket protocol under AGISession (shared read buffer, idle buffering bound, stream pump)."""

from __future__ import annotations

import asyncio

from ivr.agi import Router
from ivr.agi.link import AGILink, read_buffer
from ivr.agi.protocol import AGIConnection, AGIReply, HangupNotice
from ivr.agi.session import AGISession

from .conftest import Outcome, capture, running_server
from .fake_asterisk import ENV_AGI01, FakeAsterisk

# agi-03-hangup.txt: the notice, and agi-01: a variable read.
HANGUP = b"HANGUP\n"
GET_REPLY = b"200 result=1 (preset value)\n"


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.paused = False

    def write(self, data) -> None:
        self.sent.append(bytes(data))

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False


def recv_into(link: AGILink, data: bytes) -> None:
    """What asyncio's socket transport does for a BufferedProtocol: get_buffer, recv_into, buffer_updated
    (repeatedly: one recv_into fills at most the buffer)."""
    while data:
        buffer = link.get_buffer(-1)
        n = min(len(buffer), len(data))
        buffer[:n] = data[:n]
        link.buffer_updated(n)
        data = data[n:]


def connected(shared: memoryview | None = None) -> AGILink:
    link = AGILink(AGIConnection(), read_buffer=shared)
    link.connection_made(Transport())
    return link


async def test_links_sharing_a_read_buffer_keep_their_own_bytes():
    shared = read_buffer(64)
    a, b = connected(shared), connected(shared)
    for link in (a, b):
        recv_into(link, ENV_AGI01[:40])
    for link in (a, b):
        recv_into(link, ENV_AGI01[40:])
        assert (await link.wait()).script_path == "agi-01"
    for link in (a, b):
        link.conn.mark_sent()
    waiter_a = a.wait()
    recv_into(a, GET_REPLY[:9])  # half a line for a, then b's bytes overwrite the shared buffer
    recv_into(b, HANGUP + b"200 result=0\n")
    recv_into(a, GET_REPLY[9:])
    reply = await waiter_a
    assert type(reply) is AGIReply and (reply.result, reply.data) == ("1", "preset value")
    assert type(await b.wait()) is HangupNotice and b.conn.hung_up
    assert (await b.wait()).result == "0"


async def test_idle_link_pauses_reading_above_high_water_and_parses_in_order_later():
    link = AGILink(AGIConnection(), high_water=100)
    transport = Transport()
    link.connection_made(transport)
    recv_into(link, ENV_AGI01)
    await link.wait()
    recv_into(link, HANGUP * 10)  # idle: buffered, not parsed (a HANGUP is a notice, read before the next reply)
    assert not transport.paused and not link.conn.hung_up
    recv_into(link, HANGUP * 10 + GET_REPLY)
    assert transport.paused and link.conn.buffered_bytes == 20 * len(HANGUP) + len(GET_REPLY)
    link.conn.mark_sent()
    events = [await link.wait() for _ in range(21)]
    assert not transport.paused  # waiting for an event resumes reading
    assert all(type(e) is HangupNotice for e in events[:20]) and events[20].data == "preset value"


async def test_server_bounds_what_an_idle_peer_can_make_it_buffer():
    # A peer floods 1 MiB while the handler is idle between commands: reading pauses, memory stays bounded,
    # and the next command still gets the notices and its reply in order.
    idle, resume = asyncio.Event(), asyncio.Event()
    seen: dict[str, object] = {}

    async def body(s: AGISession):
        await s.noop()
        idle.set()
        await resume.wait()
        seen["buffered"] = s._link.conn.buffered_bytes
        seen["value"] = await s.get_variable("PRESET")
        return s.hung_up

    outcome = Outcome()
    router = Router()
    router.add("agi-01", capture(body, outcome))
    async with running_server(router, line_limit=1024) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        await asyncio.wait_for(idle.wait(), 5)
        fake.writer.write(HANGUP * ((1 << 20) // len(HANGUP)) + GET_REPLY)  # not drained: the server pauses
        await asyncio.sleep(0.2)
        resume.set()
        await fake.expect(b"GET VARIABLE PRESET\n")
        assert await outcome.wait() is True
        assert seen["value"] == "preset value"
        assert seen["buffered"] <= 2 * 1024 + 65536  # high water + one read
        assert await fake.closed_by_server()
        await fake.aclose()


async def test_streams_pump_feeds_the_same_link():
    # AGISession.start() over asyncio streams (pipes, start_server handlers) runs the same link via a pump task.
    result: dict[str, object] = {}

    async def handle(reader, writer):
        session = await AGISession.start(reader, writer)
        try:
            result["value"] = await session.get_variable("PRESET")
            result["hung_up"] = session.hung_up
        finally:
            await session.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        fake = await FakeAsterisk.connect(server.sockets[0].getsockname()[1], ENV_AGI01)
        await fake.send(HANGUP)  # idle notice first, then the reply to the command
        await fake.expect(b"GET VARIABLE PRESET\n", GET_REPLY)
        assert await fake.closed_by_server()
        await fake.aclose()
    finally:
        server.close()
        await server.wait_closed()
    assert result == {"value": "preset value", "hung_up": True}


async def test_peer_reset_during_a_command_is_connection_lost():
    import socket
    import struct

    from ivr.agi.errors import AGIConnectionLost

    async def body(s: AGISession):
        await s.get_variable("PRESET")

    outcome = Outcome()
    router = Router()
    router.add("agi-01", capture(body, outcome))
    async with running_server(router) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"GET VARIABLE PRESET\n")
        sock = fake.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST
        fake.writer.transport.abort()
        await outcome.wait()
    assert isinstance(outcome.error, AGIConnectionLost)
    assert "closed the connection while a reply was due" in str(outcome.error)

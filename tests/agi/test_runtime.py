"""The serve process's runtime (ivr/runtime.py): FastAGI calls on uvloop, the loop `ivr serve` runs by default, and
the garbage collector settings it takes after start-up (each in a fresh interpreter: they are process-wide)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivr import runtime
from ivr.agi import Router
from ivr.agi.session import AGISession
from tests.streams import client_connections

from .conftest import Outcome, capture, running_server
from .fake_asterisk import ENV_AGI01, FakeAsterisk

uvloop = pytest.importorskip("uvloop")
ROOT = Path(__file__).resolve().parents[2]


def test_loop_choice() -> None:
    assert runtime.loop_factory("asyncio") is None
    assert runtime.loop_factory("auto") is uvloop.new_event_loop
    assert runtime.loop_factory("uvloop") is uvloop.new_event_loop
    assert runtime.loop_name() == "none"


def test_a_fastagi_call_on_uvloop() -> None:
    """The link's BufferedProtocol reads, the session's timer, keepalive on the accepted socket and the close."""

    async def body(session: AGISession) -> tuple[str, int]:
        await session.answer()
        await session.set_variable("GREETING", 'say "hi"')
        sock = session._link.transport.get_extra_info("socket")  # type: ignore[union-attr]
        return runtime.loop_name(), sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)

    async def call() -> tuple[object, bool, list[bytes]]:
        outcome = Outcome()
        router = Router()
        router.add("agi-01", capture(body, outcome))
        async with running_server(router) as server:
            fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
            try:
                await fake.expect(b"ANSWER\n", b"200 result=0\n")
                await fake.expect(b'SET VARIABLE GREETING "say \\"hi\\""\n', b"200 result=1\n")
                closed = await fake.closed_by_server()
                value = await outcome.wait()
            finally:
                await fake.aclose()
                client_connections.remove(fake.writer)  # closed here, on this test's own loop
        return value, closed, fake.received

    value, closed, received = runtime.run(call(), runtime.loop_factory("uvloop"))
    assert value == ("uvloop", 1) and closed
    assert received == [b"ANSWER\n", b'SET VARIABLE GREETING "say \\"hi\\""\n']


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_settle_gc_freezes_start_up_and_still_collects_cycles() -> None:
    code = """
import gc, weakref
from ivr import runtime
import ivr.service  # what serve has imported when it settles

runtime.settle_gc()
print(gc.get_freeze_count() > 10000, gc.get_threshold()[0])

class Node:
    pass

a, b = Node(), Node()
a.peer, b.peer = b, a  # a reference cycle: only the collector frees it
gone = weakref.ref(a)
del a, b
keep = [[] for _ in range(runtime.YOUNG_THRESHOLD + 100)]  # enough new containers for a young collection
print(gone() is None)
"""
    assert python(code).split() == ["True", str(runtime.YOUNG_THRESHOLD), "True"]

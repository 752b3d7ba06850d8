"""BlockingSession on real pipes in one process (classic AGI's round trip, no event loop) and ivr.syncrun.drive().

The peer's replies are written into the pipe before the command: a blocking session reads them as they come."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator

import pytest

from ivr.agi.blocking import BlockingSession, PipeLink
from ivr.agi.errors import (
    AGIAppError,
    AGIConnectionLost,
    AGIDeadChannelError,
    AGIHangupError,
    AGIProtocolError,
    AGISessionClosed,
    AGITimeoutError,
)
from ivr.agi.protocol import AGIConnection
from ivr.syncrun import Suspended, drive

from .test_classic import classic_env


class Peer:
    """Asterisk's ends of the two pipes, and a wake-up pipe standing for signal.set_wakeup_fd()'s."""

    def __init__(self) -> None:
        self.to_script, self.script_in = os.pipe()[::-1]  # (write end, read end)
        self.script_out, self.from_script = os.pipe()[::-1]
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        self.link = PipeLink(self.script_in, self.script_out, AGIConnection(), wakeup_fd=self.wake_read)

    def send(self, data: bytes) -> None:
        os.write(self.to_script, data)

    def sent(self) -> bytes:
        os.set_blocking(self.from_script, False)
        try:
            return os.read(self.from_script, 65536)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self.link.close()
        for fd in (self.to_script, self.from_script, self.wake_read, self.wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def peer() -> Iterator[Peer]:
    peer = Peer()
    try:
        yield peer
    finally:
        peer.close()


def session(peer: Peer, **kwargs: float) -> BlockingSession:
    peer.send(classic_env("main"))
    return BlockingSession.open(peer.link, **kwargs)


def test_commands_and_replies_as_the_asyncio_session_maps_them(peer: Peer) -> None:
    s = session(peer)
    assert s.env.args == ["main"] and s.env.channel.startswith("Local/")
    peer.send(b"200 result=0\n200 result=35 (dtmf) endpos=18560\n200 result=1 (IVR Caller)\n200 result=0\n")
    drive(s.answer())
    assert drive(s.stream_file("hello", "#")) == ("#", 18560)
    assert drive(s.get_variable("CALLERID(name)")) == "IVR Caller"
    assert drive(s.get_variable("UNSET")) is None
    assert peer.sent() == (b'ANSWER\nSTREAM FILE hello "#"\nGET VARIABLE CALLERID(name)\nGET VARIABLE UNSET\n')
    peer.send(b"511 Command Not Permitted on a dead channel or intercepted channel\n")
    with pytest.raises(AGIDeadChannelError):
        drive(s.noop())
    drive(s.close())
    with pytest.raises(AGISessionClosed):
        drive(s.noop())


def test_minus_one_is_a_missing_file_unless_a_sighup_comes_within_the_grace(peer: Peer) -> None:
    s = session(peer, hangup_grace=0.05)
    peer.send(b"200 result=-1 endpos=0\n")
    with pytest.raises(AGIAppError):  # no hangup within the grace: the file is missing
        drive(s.stream_file("nosuchfile"))
    assert not s.hung_up
    s.hangup_grace = 30.0  # the wake-up pipe ends the wait as the signal comes, not after the grace

    def sighup() -> None:  # what the SIGHUP handler and signal.set_wakeup_fd() do, while the command runs
        s.notify_hangup()
        os.write(peer.wake_write, b"\x01")

    peer.send(b"200 result=-1 endpos=0\n")
    timer = threading.Timer(0.05, sighup)
    timer.start()
    try:
        with pytest.raises(AGIHangupError):
            drive(s.stream_file("hello"))
    finally:
        timer.join()
    assert s.hung_up
    with pytest.raises(AGIHangupError):  # dead mode: media commands are not sent
        drive(s.answer())
    peer.send(b"200 result=1 (x)\n")
    assert drive(s.get_variable("DIALSTATUS")) == "x"  # variables still work


def test_a_missing_reply_times_out_and_closes_the_session(peer: Peer) -> None:
    s = session(peer, command_timeout=0.05)
    with pytest.raises(AGITimeoutError):
        drive(s.noop())
    assert s.broken and s.closed


def test_eof_garbage_and_a_closed_pipe_end_the_session(peer: Peer) -> None:
    s = session(peer)
    peer.send(b"not a reply\n")
    with pytest.raises(AGIProtocolError):
        drive(s.noop())
    assert s.broken and s.closed
    other = Peer()
    try:
        s = session(other)
        os.close(other.to_script)
        other.to_script = -1
        with pytest.raises(AGIConnectionLost):  # EOF while a reply is due: the caller is gone
            drive(s.noop())
        assert s.closed
        third = Peer()
        try:
            s = session(third)
            os.close(third.from_script)  # Asterisk no longer reads: EPIPE
            third.from_script = -1
            with pytest.raises(AGIConnectionLost):
                drive(s.noop())
        finally:
            third.close()
    finally:
        other.close()


def test_a_bad_environment_is_refused(peer: Peer) -> None:
    peer.send(classic_env("main")[:40])
    os.close(peer.to_script)
    peer.to_script = -1
    with pytest.raises(AGIConnectionLost):
        BlockingSession.open(peer.link)


def test_drive_refuses_a_coroutine_that_suspends() -> None:
    loop = asyncio.new_event_loop()
    try:
        seen: list[BaseException] = []

        async def waits_on_the_loop() -> None:
            try:
                await loop.create_future()  # nothing would ever resolve it: there is no running loop
            except Suspended as exc:
                seen.append(exc)
                raise

        with pytest.raises(Suspended):
            drive(waits_on_the_loop())
        assert seen  # thrown into the coroutine: its handlers and finally blocks ran

        async def stubborn() -> None:
            while True:
                with contextlib.suppress(Suspended):
                    await loop.create_future()

        with pytest.raises(Suspended, match="kept suspending"):
            drive(stubborn())
    finally:
        loop.close()


def test_drive_returns_what_a_coroutine_that_never_suspends_returns() -> None:
    async def inner() -> int:
        return 41

    async def outer() -> int:
        return await inner() + 1

    assert drive(outer()) == 42

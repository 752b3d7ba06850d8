"""A scripted fake Asterisk FastAGI client for tests: it connects like Asterisk, sends an environment block and
answers commands from a script of exact wire lines (copied from the real Asterisk 22 transcripts).

Rules for this file:
- Only 127.0.0.1; every wait is bounded (`WAIT` seconds) so a broken server fails a test instead of hanging it.
- It checks the bytes the server sends exactly (including the "\\n"-only line ending).
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.streams import open_connection

WAIT = 5.0

# agi-01-env-and-basic-commands.txt, [agi1], the exact env lines (with "\n" endings).
ENV_AGI01 = (
    b"agi_network: yes\n"
    b"agi_network_script: agi-01?lang=en&mode=test\n"
    b"agi_request: agi://127.0.0.1:4573/agi-01?lang=en&mode=test\n"
    b"agi_channel: Local/agi-01@agi-scen-00000009;2\n"
    b"agi_language: en\n"
    b"agi_type: Local\n"
    b"agi_uniqueid: 1795909233.19\n"
    b"agi_version: 22.10.1\n"
    b"agi_callerid: 5551234\n"
    b"agi_calleridname: IVR Caller\n"
    b"agi_callingpres: 0\n"
    b"agi_callingani2: 0\n"
    b"agi_callington: 0\n"
    b"agi_callingtns: 0\n"
    b"agi_dnid: unknown\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: agi-scen\n"
    b"agi_extension: agi-01\n"
    b"agi_priority: 3\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: 140188048737984\n"
    b"agi_arg_1: first arg\n"
    b"agi_arg_2: second\n"
    b"\n"
)


def env_for(script: str, channel: str = "Local/agi-03a@agi-scen-0000000b;2") -> bytes:
    """An env block shaped like agi-03's (no args) for another script path."""
    return (
        b"agi_network: yes\n"
        + b"agi_network_script: "
        + script.encode()
        + b"\n"
        + b"agi_request: agi://127.0.0.1:4573/"
        + script.encode()
        + b"\n"
        + b"agi_channel: "
        + channel.encode()
        + b"\n"
        b"agi_language: en\n"
        b"agi_type: Local\n"
        b"agi_uniqueid: 1795909275.25\n"
        b"agi_version: 22.10.1\n"
        b"agi_callerid: 5551234\n"
        b"agi_calleridname: IVR Caller\n"
        b"agi_callingpres: 0\n"
        b"agi_callingani2: 0\n"
        b"agi_callington: 0\n"
        b"agi_callingtns: 0\n"
        b"agi_dnid: unknown\n"
        b"agi_rdnis: unknown\n"
        b"agi_context: agi-scen\n"
        b"agi_extension: agi-03a\n"
        b"agi_priority: 2\n"
        b"agi_enhanced: 0.0\n"
        b"agi_accountcode: \n"
        b"agi_threadid: 140188048737984\n"
        b"\n"
    )


class FakeAsterisk:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[bytes] = []

    @classmethod
    async def connect(cls, port: int, env: bytes | None = None) -> FakeAsterisk:
        reader, writer = await asyncio.wait_for(open_connection("127.0.0.1", port), WAIT)
        fake = cls(reader, writer)
        if env is not None:
            await fake.send(env)
        return fake

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_command(self) -> bytes:
        """One line sent by the server, with its terminator; b"" at EOF."""
        line = await asyncio.wait_for(self.reader.readline(), WAIT)
        if line:
            self.received.append(line)
        return line

    async def expect(self, command: bytes, *reply_lines: bytes) -> None:
        """Read one command, check it byte for byte, then send the reply lines."""
        line = await self.read_command()
        assert line == command, f"expected {command!r}, server sent {line!r}"
        if reply_lines:
            await self.send(b"".join(reply_lines))

    async def run_script(self, script: list[tuple[bytes, bytes]]) -> None:
        for command, reply in script:
            await self.expect(command, reply)

    async def closed_by_server(self) -> bool:
        """True when the server closes the socket (reads and drops anything before the EOF)."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), WAIT)
                if not data:
                    return True
                self.received.append(data)
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)

"""A tiny scripted FastAGI server for the simulator's own tests (the real service side is not needed).

Each accepted connection runs `handler(peer)`; `peer.cmd("ANSWER")` sends one line and returns the reply lines
(all lines of a 520 block).  `peer.line()` reads one unsolicited line (e.g. "HANGUP").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.env: dict[str, str] = {}
        self.env_lines: list[str] = []

    async def read_env(self) -> None:
        while True:
            raw = await self.reader.readline()
            if raw in (b"\n", b""):
                return
            line = raw.decode("latin-1")
            self.env_lines.append(line)
            key, _, value = line[:-1].partition(": ")
            self.env[key] = value

    async def line(self) -> str:
        raw = await self.reader.readline()
        return raw.decode("latin-1")

    async def cmd(self, text: str, raw: bool = False) -> list[str]:
        self.writer.write(text.encode("latin-1") + (b"" if raw else b"\n"))
        await self.writer.drain()
        first = await self.line()
        lines = [first]
        if first.startswith("520-"):
            while not lines[-1].startswith("520 "):
                lines.append(await self.line())
        return lines

    async def close(self) -> None:
        self.writer.close()


Handler = Callable[[Peer], Awaitable[None]]


class ScriptedAGIServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.errors: list[BaseException] = []
        self.peers: list[Peer] = []

    async def __aenter__(self) -> ScriptedAGIServer:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        self.peers.append(peer)
        try:
            await peer.read_env()
            await self.handler(peer)
        except BaseException as exc:  # surfaced by the test via .errors
            self.errors.append(exc)
        finally:
            writer.close()

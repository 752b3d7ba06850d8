"""A minimal AMI client for the simulator's tests, on ivr.ami.protocol's framing (client role)."""

from __future__ import annotations

import asyncio

from ivr.ami.protocol import AMIParser, Banner, Message, Role, encode_action
from tests.streams import open_connection


class AMIPeer:
    def __init__(self) -> None:
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.parser = AMIParser(Role.CLIENT)
        self.queue: list[Message] = []
        self.banner: Banner | None = None
        self._seq = 0

    @classmethod
    async def connect(cls, port: int, login: bool = True) -> AMIPeer:
        peer = cls()
        peer.reader, peer.writer = await open_connection("127.0.0.1", port)
        if login:
            resp = await peer.action("Login", [("Username", "ivr"), ("Secret", "ivrsecret")])
            assert resp["Message"] == "Authentication accepted", resp
        return peer

    async def _fill(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(65536), 10)
        if not data:
            return False
        for item in self.parser.feed(data):
            if isinstance(item, Banner):
                self.banner = item
            else:
                self.queue.append(item)
        return True

    async def next(self, pred) -> Message:  # type: ignore[no-untyped-def]
        while True:
            for i, m in enumerate(self.queue):
                if pred(m):
                    return self.queue.pop(i)
            if not await self._fill():
                raise EOFError("AMI connection closed")

    async def event(self, name: str, **match: str) -> Message:
        return await self.next(lambda m: m.get("Event") == name and all(m.get(k) == v for k, v in match.items()))

    async def action(self, name: str, headers: list[tuple[str, str]] | None = None) -> Message:
        self._seq += 1
        aid = f"t-{self._seq}"
        self.writer.write(encode_action(name, headers or [], action_id=aid))
        return await self.next(lambda m: m.get("Event") is None and m.get("ActionID") == aid)

    async def list_action(
        self, name: str, complete: str, headers: list[tuple[str, str]] | None = None
    ) -> tuple[Message, list[Message]]:
        resp = await self.action(name, headers)
        aid = resp["ActionID"]
        items = []
        while True:
            m = await self.next(lambda m: m.get("Event") is not None and m.get("ActionID") == aid)
            if m["Event"] == complete:
                return resp, items
            items.append(m)

    async def close(self) -> None:
        self.writer.close()

"""A fake Asterisk manager on 127.0.0.1 for the client tests: real transcript answers, and misbehaviour on purpose.

It parses client bytes with the package's own server-role parser and answers with the exact strings of a real
Asterisk 22 (ami-10): banner, `Authentication accepted` + FullyBooted, `Authentication failed` after a delay and a
close, `Permission denied` before login, Ping/Pong, Challenge, Goodbye. Other actions are answered by handlers that
tests register, typically `replay(...)` of a recorded answer with the ActionID rewritten.

Misbehaviour switches: `silent` (read but never answer: a half-open peer), `chunk` (write in pieces of n bytes),
`drop()` (abort every socket), `flood()` (many events at once), `refuse_connections`, `drop_after_login`,
`auth_fail_delay` (Asterisk answers a failed login after ~1 s, then closes), `mute` (accept and say nothing, not even
the banner: some other service on the manager port, or an Asterisk stuck at start-up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ivr.ami.protocol import AMIParser, Message, Role, encode_message, md5_key

from .transcripts import FROM_ASTERISK, stream_bytes

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHALLENGE = "125847296"  # the one Asterisk gave in ami-10
FULLY_BOOTED = (
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 288\r\nLastReload: 288\r\nStatus: Fully Booted\r\n\r\n"
)

Handler = Callable[["FakeConnection", Message], Awaitable[list[bytes]] | list[bytes]]


def response(action_id: str | None, *pairs: tuple[str, str], status: str = "Success", raw: bool = False) -> bytes:
    head = [("Response", status)] + ([("ActionID", action_id)] if action_id is not None else [])
    return encode_message(head + list(pairs), raw_values=raw)


def recorded_messages(transcript: str, stream: str | None = None) -> list[Message]:
    return [m for m in AMIParser().feed(stream_bytes(transcript, FROM_ASTERISK, stream)) if isinstance(m, Message)]


def replay(transcript: str, recorded_action_id: str) -> Handler:
    """Answer with every message the real Asterisk sent carrying `recorded_action_id` (response, list items,
    Complete), in recorded order, with the ActionID rewritten to the client's."""
    recorded = [m for m in recorded_messages(transcript) if m.action_id == recorded_action_id]
    assert recorded, f"{transcript} has no message with ActionID {recorded_action_id}"

    def handler(conn: FakeConnection, msg: Message) -> list[bytes]:
        out = []
        for rec in recorded:
            pairs = [(k, msg.action_id or "") if k.lower() == "actionid" else (k, v) for k, v in rec.items()]
            out.append(encode_message(pairs, raw_values=True))
        return out

    return handler


@dataclass
class FakeConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: FakeAMI
    logged_in: bool = False
    received: list[Message] = field(default_factory=list)
    events_on: bool = True

    async def send(self, *chunks: bytes) -> None:
        data = b"".join(chunks)
        step = self.server.chunk
        if not step:
            self.writer.write(data)
        else:
            for i in range(0, len(data), step):
                self.writer.write(data[i : i + step])
                await self.writer.drain()
                await asyncio.sleep(0)
        await self.writer.drain()

    def abort(self) -> None:
        self.writer.transport.abort()


class FakeAMI:
    def __init__(self, *, username: str = "ivr", secret: str = "ivrsecret", auth_fail_delay: float = 1.0) -> None:
        self.username = username
        self.secret = secret
        self.auth_fail_delay = auth_fail_delay  # a real Asterisk waits ~1 s; tests keep it short
        self.handlers: dict[str, Handler] = {}
        self.connections: list[FakeConnection] = []
        self.actions: list[Message] = []  # every action received, all connections
        self.logins = 0
        self.failed_logins = 0
        self.silent = False
        self.mute = False
        self.chunk = 0
        self.refuse_connections = False
        self.drop_after_login = False  # accept the login, then close at once (an Asterisk in a crash loop)
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop(self) -> None:
        """Abort every open connection (like a crashed Asterisk)."""
        for conn in self.connections:
            conn.abort()
        self.connections.clear()

    def on(self, action: str, handler: Handler) -> None:
        self.handlers[action.lower()] = handler

    def received(self, action: str) -> list[Message]:
        return [m for m in self.actions if (m.name or "").lower() == action.lower()]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def broadcast(self, *chunks: bytes) -> None:
        for conn in list(self.connections):
            if conn.logged_in and conn.events_on:
                await conn.send(*chunks)

    async def flood(self, count: int, event: bytes | None = None) -> None:
        event = event or (
            b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/s@x-00000001;1\r\n"
            b"Context: ivr\r\nExten: s\r\nPriority: 1\r\nUniqueid: 1.1\r\n\r\n"
        )
        await self.broadcast(event * count)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.refuse_connections:
                writer.transport.abort()
                return
            conn = FakeConnection(reader, writer, self)
            self.connections.append(conn)
            self.connected.set()
            if self.mute:
                while await reader.read(65536):
                    pass
                return
            await conn.send(BANNER)
            parser = AMIParser(Role.SERVER)
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for msg in parser.feed(data):
                    assert isinstance(msg, Message)
                    self.actions.append(msg)
                    conn.received.append(msg)
                    if self.silent:
                        continue
                    if not await self._answer(conn, msg):
                        writer.close()
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _answer(self, conn: FakeConnection, msg: Message) -> bool:
        """Answer one action; False means close the connection (as Asterisk does after these answers)."""
        name = (msg.name or "").lower()
        aid = msg.action_id
        if name == "login":
            if conn.logged_in:
                await conn.send(response(aid, ("Message", "Already authenticated")))
                return True
            if msg.get("AuthType", "").lower() == "md5":
                ok = msg.get("Username") == self.username and msg.get("Key") == md5_key(CHALLENGE, self.secret)
            else:
                ok = msg.get("Username") == self.username and msg.get("Secret") == self.secret
            if not ok:
                self.failed_logins += 1
                await asyncio.sleep(self.auth_fail_delay)
                await conn.send(response(aid, ("Message", "Authentication failed"), status="Error"))
                return False
            self.logins += 1
            conn.logged_in = True
            conn.events_on = (msg.get("Events") or "on").lower() != "off"
            await conn.send(
                response(aid, ("Message", "Authentication accepted")), FULLY_BOOTED if conn.events_on else b""
            )
            return not self.drop_after_login
        if name == "challenge":
            await conn.send(response(aid, ("Challenge", CHALLENGE)))
            return True
        if not conn.logged_in:
            await conn.send(response(aid, ("Message", "Permission denied"), status="Error"))
            return True
        if name == "ping":
            await conn.send(response(aid, ("Ping", "Pong"), ("Timestamp", "1795909409.461005")))
            return True
        if name == "logoff":
            await conn.send(response(aid, ("Message", "Thanks for all the fish."), status="Goodbye"))
            return False
        handler = self.handlers.get(name)
        if handler is None:
            await conn.send(
                response(
                    aid,
                    (
                        "Message",
                        f"Invalid/unknown command: {msg.name}. Use Action: ListCommands to show available commands.",
                    ),
                    status="Error",
                )
            )
            return True
        result = handler(conn, msg)
        chunks = await result if asyncio.iscoroutine(result) else result
        await conn.send(*chunks)  # type: ignore[misc]
        return True

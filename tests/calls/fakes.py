"""A scripted stand-in for `ivr.ami.client.AMIClient` (the contract in docs/architecture.md), for unit tests.

Built on `ivr.ami.typed.AMIActions` like the real client, so the typed actions (and the Originate result
matching) are the product's own code; only the connection is scripted. It records every action, answers with
scripted `Message`s (default: `Response: Success`), raises `AMIActionError` for `Response: Error` answers like the
real client, and delivers events to subscribers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ivr.ami.errors import AMIActionError
from ivr.ami.protocol import Message
from ivr.ami.typed import AMIActions


def msg(*pairs: tuple[str, str]) -> Message:
    return Message(list(pairs))


def error(text: str) -> Message:
    return msg(("Response", "Error"), ("Message", text))


class Subscription:
    def __init__(self, owner: FakeAMI, handler: Any) -> None:
        self.owner, self.handler = owner, handler

    def close(self) -> None:
        self.owner.handlers = [(h, e) for h, e in self.owner.handlers if h is not self.handler]


class FakeAMI(AMIActions):
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[str, str]]]] = []
        self.replies: dict[str, Any] = {}  # action name -> Message | Exception | callable(headers)
        self.lists: dict[str, list[Message]] = {}
        self.handlers: list[tuple[Callable[[Message], Any], set[str] | None]] = []
        self.connected: list[Callable[[], Any]] = []
        self.logged_in = True
        self._ids = 0

    async def action(
        self, name: str, headers: Any = None, *, timeout: float | None = None, check: bool = True
    ) -> Message:
        pairs = list(headers.items() if isinstance(headers, dict) else headers or [])
        self.sent.append((name, pairs))
        self._ids += 1
        reply = self.replies.get(name)
        if callable(reply) and not isinstance(reply, Message):
            reply = reply(pairs)
        if isinstance(reply, BaseException):
            raise reply
        if reply is None:
            reply = msg(("Response", "Success"), ("ActionID", f"fake-{self._ids}"))
        elif reply.get("ActionID") is None:
            reply = Message([*reply.items(), ("ActionID", f"fake-{self._ids}")])
        if check and reply.get("Response") == "Error":
            raise AMIActionError(name, reply)
        return reply

    async def list_action(self, name: str, headers: Any = None, *, timeout: float | None = None, check: bool = True):
        self.sent.append((name, list(headers or [])))
        reply = self.replies.get(name)
        if isinstance(reply, BaseException):
            raise reply
        return msg(("Response", "Success"), ("EventList", "start")), list(self.lists.get(name, []))

    def subscribe(
        self, handler, events=None, *, maxsize=10000, overflow="drop_oldest", name="", filters=(), inline=False
    ):
        self.handlers.append((handler, None if events is None else set(events)))
        return Subscription(self, handler)

    def on_connected(self, callback) -> None:
        self.connected.append(callback)

    async def emit(self, event: Message) -> None:
        for handler, events in list(self.handlers):
            if events is None or event.name in events:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result

    def headers(self, index: int = -1) -> dict[str, str]:
        """Headers of one sent action (last by default); repeated names keep the last value."""
        return dict(self.sent[index][1])

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

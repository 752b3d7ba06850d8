"""What call control needs from an AMI connection: the typed actions it sends (a Protocol, not `Any`).

`ivr.ami.client.AMIClient` provides all of it (through `ivr.ami.typed.AMIActions`); so does any test double built
on `AMIActions`. Call control never builds action names or headers itself. `AMIEvents` is the event side (events,
logins); `RegistryAMI` adds the list actions that keep the call registry in step (`ivr.calls.sync`);
`CallControlAMI` adds what the operations send, and is the one type of an Asterisk connection in `ivr.calls`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol, Unpack

from ivr.ami.actions import OriginateOptions, OriginateResult
from ivr.ami.filters import EventFilter
from ivr.ami.protocol import Message

if TYPE_CHECKING:
    from ivr.ami.client import AMIClient


class AMIEvents(Protocol):
    @property
    def logged_in(self) -> bool: ...

    def subscribe(
        self,
        handler: Callable[[Message], Awaitable[None] | None],
        events: Iterable[str] | None = None,
        *,
        name: str = "",
        filters: Iterable[EventFilter] = (),
        inline: bool = False,
    ) -> object: ...

    def on_connected(self, callback: Callable[[], Awaitable[None] | None]) -> None: ...


class RegistryAMI(AMIEvents, Protocol):
    async def core_show_channels(self, *, timeout: float | None = None) -> list[Message]: ...

    async def parked_calls(self, parkinglot: str | None = None, *, timeout: float | None = None) -> list[Message]: ...

    async def queue_status(
        self, queue: str | None = None, member: str | None = None, *, timeout: float | None = None
    ) -> list[Message]: ...


class CallControlAMI(RegistryAMI, Protocol):
    async def send_originate(self, channel: str, **options: Unpack[OriginateOptions]) -> str | None: ...

    async def originate_result(self, action_id: str, timeout: float) -> OriginateResult | None: ...

    async def redirect(
        self,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        *,
        extra_channel: str | None = None,
        extra_context: str | None = None,
        extra_exten: str | None = None,
        extra_priority: int | None = None,
    ) -> Message: ...

    async def blind_transfer(self, channel: str, context: str, exten: str) -> Message: ...

    async def atxfer(self, channel: str, exten: str, context: str | None = None) -> Message: ...

    async def park(
        self,
        channel: str,
        *,
        timeout_ms: int | None = None,
        timeout_channel: str | None = None,
        parkinglot: str | None = None,
    ) -> Message: ...

    async def bridge(self, channel1: str, channel2: str, tone: str = "no") -> Message: ...

    async def hangup(self, channel: str, cause: int | None = None) -> Message: ...

    async def getvar(self, variable: str, channel: str | None = None) -> str | None: ...

    async def setvar(self, variable: str, value: str, channel: str | None = None) -> None: ...

    async def mixmonitor(
        self, channel: str, file: str, options: str | None = None, command: str | None = None
    ) -> str | None: ...

    async def mixmonitor_mute(self, channel: str, mute: bool, direction: str = "both") -> Message: ...

    async def stop_mixmonitor(self, channel: str, mixmonitor_id: str | None = None) -> Message: ...

    async def queue_add(
        self,
        queue: str,
        interface: str,
        *,
        penalty: int | None = None,
        paused: bool | None = None,
        member_name: str | None = None,
        state_interface: str | None = None,
        reason: str | None = None,
    ) -> Message: ...

    async def queue_remove(self, queue: str, interface: str) -> Message: ...

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None
    ) -> Message: ...


if TYPE_CHECKING:

    def _the_client_conforms(client: AMIClient) -> CallControlAMI:
        return client  # mypy checks here that AMIClient gives call control everything it uses

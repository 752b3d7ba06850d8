"""The typed AMI actions the product sends, and the matching of Originate results, over any AMI connection.

Rules for this file:
- `AMIActions` is a base class: `AMIClient` supplies `action`, `list_action` and `subscribe`; a test double that
  supplies the same three sends exactly the same actions. Headers come from `ivr.ami.actions` (pure builders).
- `OriginateTracker` is the only place OriginateResponse events are matched to their Originate (by ActionID):
  `AMIActions.originate` waits through it, and call control (`ivr.calls.operations`) sends with `send_originate`
  and waits later with `originate_result`. Results that nobody waits for are kept (bounded) for a late waiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Literal, Unpack

from ivr.ami import actions as act
from ivr.ami.errors import AMIConnectionLost, AMITimeout
from ivr.ami.filters import EventFilter
from ivr.ami.protocol import Headers, Message, command_output


class OriginateTracker:
    """Correlates `OriginateResponse` events with the Originate that caused them (by ActionID)."""

    def __init__(self, ami: AMIActions, *, keep: int = 1000) -> None:
        self._results: dict[str, act.OriginateResult] = {}
        self._waiters: dict[str, asyncio.Future[act.OriginateResult]] = {}
        self._keep = keep
        # inline: a few dict operations, called by the AMI reader itself (no task per event, docs/decisions.md D4)
        self._subscription = ami.subscribe(self._on_event, {"OriginateResponse"}, name="originate", inline=True)

    def _on_event(self, msg: Message) -> None:
        action_id = msg.action_id
        if not action_id:
            return
        result = act.OriginateResult.from_event(msg)
        waiter = self._waiters.pop(action_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
            return
        self._results[action_id] = result  # the event overtook the caller (or nobody waits): keep it for `wait`
        while len(self._results) > self._keep:
            self._results.pop(next(iter(self._results)))

    async def wait(self, action_id: str, timeout: float) -> act.OriginateResult | None:
        if action_id in self._results:
            return self._results.pop(action_id)
        waiter = self._waiters.setdefault(action_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(action_id, None)

    def connection_lost(self, reason: str) -> None:
        """The results still awaited will never come over this connection: their waiters fail at once."""
        waiters, self._waiters = self._waiters, {}
        for future in waiters.values():
            if not future.done():
                future.set_exception(
                    AMIConnectionLost(
                        f"AMI connection lost while waiting for OriginateResponse ({reason}); the outcome is "
                        "unknown and nothing is retried"
                    )
                )


class AMIActions:
    """Typed helpers over `action`/`list_action`/`subscribe`, which a subclass (`AMIClient`) implements."""

    action_timeout: float = 10.0
    _originates: OriginateTracker | None = None

    async def action(
        self, name: str, headers: Headers | None = None, *, timeout: float | None = None, check: bool = True
    ) -> Message:
        raise NotImplementedError

    async def list_action(
        self, name: str, headers: Headers | None = None, *, timeout: float | None = None, check: bool = True
    ) -> tuple[Message, list[Message]]:
        raise NotImplementedError

    def subscribe(
        self,
        handler: Callable[[Message], Any],
        events: Iterable[str] | None = None,
        *,
        maxsize: int = 10000,
        overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
        name: str = "",
        filters: Iterable[EventFilter] = (),
        inline: bool = False,
    ) -> object:
        raise NotImplementedError

    async def ping(self, *, timeout: float | None = None) -> Message:
        return await self.action("Ping", timeout=timeout)

    async def originate(
        self,
        channel: str,
        *,
        result_timeout: float | None = None,
        **options: Unpack[act.OriginateOptions],
    ) -> act.OriginateResult:
        """Originate asynchronously and wait for its `OriginateResponse` (matched by ActionID).

        Sent exactly once: on a lost connection this raises AMIConnectionLost and the call may or may not exist.
        `result_timeout` defaults to the ring timeout (Asterisk's default 30 s) plus `action_timeout`.
        """
        aid = await self.send_originate(channel, **options)
        timeout_ms = options.get("timeout_ms")
        wait = result_timeout if result_timeout is not None else (timeout_ms or 30000) / 1000 + self.action_timeout
        result = await self.originate_result(aid, wait) if aid else None
        if result is None:
            raise AMITimeout(
                f"no OriginateResponse for {channel!r} (ActionID {aid}) within {wait}s; the call may still be ringing"
            )
        return result

    async def send_originate(self, channel: str, **options: Unpack[act.OriginateOptions]) -> str | None:
        """Send an asynchronous Originate and return its ActionID as soon as Asterisk accepted it (the call rings
        on); `originate_result(action_id, timeout)` waits for how it ended."""
        headers = act.originate(channel, **options)
        self.originates()  # subscribed before sending: the OriginateResponse may follow the response at once
        response = await self.action("Originate", headers)
        return response.action_id

    async def originate_result(self, action_id: str, timeout: float) -> act.OriginateResult | None:
        """The outcome of the Originate sent with `action_id`, or None when none came within `timeout` s.
        Raises AMIConnectionLost when the connection drops while waiting (the outcome is then unknown)."""
        return await self.originates().wait(action_id, timeout)

    def originates(self) -> OriginateTracker:
        """The one place OriginateResponse events are matched to their Originate (subscribed on first use)."""
        if self._originates is None:
            self._originates = OriginateTracker(self)
        return self._originates

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
    ) -> Message:
        return await self.action(
            "Redirect",
            act.redirect(
                channel,
                context,
                exten,
                priority,
                extra_channel=extra_channel,
                extra_context=extra_context,
                extra_exten=extra_exten,
                extra_priority=extra_priority,
            ),
        )

    async def blind_transfer(self, channel: str, context: str, exten: str) -> Message:
        return await self.action("BlindTransfer", act.blind_transfer(channel, context, exten))

    async def atxfer(self, channel: str, exten: str, context: str | None = None) -> Message:
        return await self.action("Atxfer", act.atxfer(channel, exten, context))

    async def park(
        self,
        channel: str,
        *,
        timeout_ms: int | None = None,
        timeout_channel: str | None = None,
        parkinglot: str | None = None,
        announce_channel: str | None = None,
        parking_space: str | None = None,
    ) -> Message:
        return await self.action(
            "Park",
            act.park(
                channel,
                timeout_ms=timeout_ms,
                timeout_channel=timeout_channel,
                parkinglot=parkinglot,
                announce_channel=announce_channel,
                parking_space=parking_space,
            ),
        )

    async def parked_calls(self, parkinglot: str | None = None, *, timeout: float | None = None) -> list[Message]:
        """ParkedCall events (ParkedCallsComplete excluded)."""
        return (await self.list_action("ParkedCalls", act.parked_calls(parkinglot), timeout=timeout))[1]

    async def hangup(self, channel: str, cause: int | None = None) -> Message:
        return await self.action("Hangup", act.hangup(channel, cause))

    async def mixmonitor(
        self, channel: str, file: str, options: str | None = None, command: str | None = None
    ) -> str | None:
        """Start recording; returns the `MixMonitorID` (for StopMixMonitor) when Asterisk reports one."""
        response = await self.action("MixMonitor", act.mixmonitor(channel, file, options, command))
        return response.get("MixMonitorID")

    async def mixmonitor_mute(self, channel: str, mute: bool, direction: str = "both") -> Message:
        return await self.action("MixMonitorMute", act.mixmonitor_mute(channel, mute, direction))

    async def stop_mixmonitor(self, channel: str, mixmonitor_id: str | None = None) -> Message:
        return await self.action("StopMixMonitor", act.stop_mixmonitor(channel, mixmonitor_id))

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
    ) -> Message:
        return await self.action(
            "QueueAdd",
            act.queue_add(
                queue,
                interface,
                penalty=penalty,
                paused=paused,
                member_name=member_name,
                state_interface=state_interface,
                reason=reason,
            ),
        )

    async def queue_remove(self, queue: str, interface: str) -> Message:
        return await self.action("QueueRemove", act.queue_remove(queue, interface))

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None
    ) -> Message:
        return await self.action("QueuePause", act.queue_pause(interface, paused, queue=queue, reason=reason))

    async def queue_status(
        self, queue: str | None = None, member: str | None = None, *, timeout: float | None = None
    ) -> list[Message]:
        """QueueParams, QueueMember and QueueEntry events (QueueStatusComplete excluded)."""
        return (await self.list_action("QueueStatus", act.queue_status(queue, member), timeout=timeout))[1]

    async def queue_summary(self, queue: str | None = None, *, timeout: float | None = None) -> list[Message]:
        """QueueSummary events (QueueSummaryComplete excluded)."""
        return (await self.list_action("QueueSummary", act.queue_summary(queue), timeout=timeout))[1]

    async def core_show_channels(self, *, timeout: float | None = None) -> list[Message]:
        """CoreShowChannel events (CoreShowChannelsComplete excluded)."""
        return (await self.list_action("CoreShowChannels", timeout=timeout))[1]

    async def getvar(self, variable: str, channel: str | None = None) -> str | None:
        """The value, or None when Asterisk reports it empty/unset (both look the same over AMI)."""
        response = await self.action("Getvar", act.getvar(variable, channel))
        value = response.get("Value")
        return value if value else None

    async def setvar(self, variable: str, value: str, channel: str | None = None) -> None:
        await self.action("Setvar", act.setvar(variable, value, channel))

    async def bridge(self, channel1: str, channel2: str, tone: str = "no") -> Message:
        return await self.action("Bridge", act.bridge(channel1, channel2, tone))

    async def command(self, cli: str, *, timeout: float | None = None) -> act.CommandResult:
        """Run a CLI command; an unknown CLI command gives ok=False with Asterisk's explanation as output."""
        response = await self.action("Command", act.command(cli), timeout=timeout, check=False)
        return act.CommandResult(
            ok=(response.name or "").lower() != "error", output=command_output(response), response=response
        )

"""A scripted caller on a `Channel`, in virtual time: the engine runs a real flow; nobody waits for real.

Rules for this file:
- This implements `ivr.flow.channel.Channel` directly (no AGI, no sockets): prompts, digit waits, ringing and
  hold music only move `elapsed` forward. A 10-minute call runs in microseconds with the same result.
- What the caller does comes from `Step`s (`caller.py`): a press is delivered at the next *fresh* listen (a
  prompt was played, or a digit wait timed out, since the previous entry began), so `1,2` is two menu choices
  and `12` is one two-digit entry.
  Plain presses wait for the digit wait after the prompts; barge-in and timed presses interrupt prompts.
- What the rest of the world does (agents busy, queues timing out, parked calls retrieved, voicemail length) comes
  from `World`; unknown extensions and queues answer.
- Every observable thing is appended to `events` (time, kind, data) for traces, diffs and JSON output.
- Interactive use (`ask`): when the IVR listens afresh and no step is left, the person at the keyboard is asked.
- A park that times out is the end of one IVR session, not of the call: `come_back` starts the next session on
  the same channel (the caller's script goes on; a half-typed entry is lost), `operator_fallback` plays what the
  dialplan's [ivr-enter,fallback] does: pls-hold-while-try, then Dial(${IVR_OPERATOR},60), whose behaviour is
  the World's agent `operator` (default: answers), then sorry-youre-having-problems if nobody answered.
- A call that neither ends nor has script left gives up after `max_seconds` of virtual time (the caller hangs up),
  so a flow that loops forever cannot hang a test run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.flow.channel import (
    CallerHangup,
    CallInfo,
    DialResult,
    ParkResult,
    QueueResult,
    RecordResult,
)
from ivr.flow.model import Flow
from ivr.flowtest.caller import Step

AGENT_BEHAVIOURS = ("answer", "busy", "no_answer", "unavailable", "congestion")
QUEUE_BEHAVIOURS = ("answer", "timeout", "empty", "full")
PARK_BEHAVIOURS = ("retrieved", "timeout")
_DIAL_STATUS = {
    "answer": "ANSWER",
    "busy": "BUSY",
    "no_answer": "NOANSWER",
    "unavailable": "CHANUNAVAIL",
    "congestion": "CONGESTION",
}
_QUEUE_STATUS = {"answer": "ANSWERED", "timeout": "TIMEOUT", "empty": "JOINEMPTY", "full": "FULL"}


@dataclass
class World:
    """How everyone but the caller behaves."""

    # extension (or dial string) -> behaviour, or a list of behaviours for successive calls (the last one repeats)
    agents: dict[str, str | list[str]] = field(default_factory=dict)
    queues: dict[str, str | list[str]] = field(default_factory=dict)  # queue -> behaviour(s), likewise
    parking: str = "timeout"  # PARK_BEHAVIOURS
    ring_seconds: float = 6.0  # until an agent answers or says busy
    talk_seconds: float = 60.0
    queue_wait_seconds: float = 20.0
    voicemail_seconds: float = 8.0

    def __post_init__(self) -> None:
        self._calls: dict[tuple[str, str], int] = {}

    def _next(self, table: str, key: str, behaviours: str | list[str]) -> str:
        if isinstance(behaviours, str):
            return behaviours
        count = self._calls.get((table, key), 0)
        self._calls[(table, key)] = count + 1
        return behaviours[min(count, len(behaviours) - 1)] if behaviours else "answer"

    def agent(self, destination: str) -> str:
        """Behaviour for a dial string: matched on the whole string, then its last part (PJSIP/1001 -> 1001)."""
        for key in (destination, destination.rsplit("/", 1)[-1], destination.split("@", 1)[0].rsplit("/", 1)[-1]):
            if key in self.agents:
                return self._next("agent", key, self.agents[key])
        return "answer"

    def queue(self, name: str) -> str:
        return self._next("queue", name, self.queues[name]) if name in self.queues else "answer"


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the call was answered
    kind: str  # prompt, digit, timeout, silence, say, dial, queue, park, hold, voicemail, recording, language,
    #            variable, answer, hangup, node (engine), info
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "kind": self.kind, **self.data}


class PromptBook:
    """Sound file -> (prompt id, language, text), over every flow, and a play length for each file."""

    def __init__(self, flows: Sequence[Flow], chars_per_second: float = 14.0, default_seconds: float = 2.0) -> None:
        self.by_file: dict[str, tuple[str, str, str]] = {}
        for flow in flows:
            for prompt_id, variants in flow.prompts.items():
                for language, variant in variants.items():
                    self.by_file.setdefault(variant.file, (prompt_id, language, variant.text))
        self.chars_per_second = chars_per_second
        self.default_seconds = default_seconds

    def describe(self, file: str) -> tuple[str, str]:
        """(prompt id, text); files that are no flow prompt (digits/5, beep) are named by themselves."""
        prompt_id, _, text = self.by_file.get(file, (file, "", ""))
        return prompt_id, text

    def seconds(self, file: str) -> float:
        # Same rule as the simulator's SoundCatalog: the text read at ~14 characters a second.
        if file.startswith("digits/") or file.startswith("letters/"):
            return 0.6
        _, text = self.describe(file)
        return max(len(text) / self.chars_per_second, 0.5) if text else self.default_seconds


class ScriptedChannel:
    """`Channel` driven by a caller script and a `World`, in virtual time."""

    def __init__(
        self,
        info: CallInfo,
        steps: Sequence[Step],
        world: World,
        prompts: PromptBook,
        *,
        max_seconds: float = 3600.0,
        on_event: Callable[[Event], None] | None = None,
        ask: Callable[[], Awaitable[Sequence[Step]]] | None = None,
    ) -> None:
        self._info = info
        self.steps = list(steps)
        self.world = world
        self.prompts = prompts
        self.max_seconds = max_seconds
        self.on_event = on_event
        self.ask = ask  # interactive: asked for the next step when the IVR listens and the script is empty
        self.elapsed = 0.0
        self.events: list[Event] = []
        self.variables: dict[str, str] = {}
        self.language = info.language
        self.heard: set[str] = set()  # prompt ids played to the end
        self.hung_up_by: str | None = None  # "caller" or "ivr"
        self._index = 0
        self._buffer = ""  # digits of the entry being delivered
        self._fresh = True  # since the last entry began, a prompt was played or a digit wait timed out

    # --- bookkeeping ----------------------------------------------------------------------------------

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def steps_left(self) -> list[Step]:
        return self.steps[self._index :]

    @property
    def steps_used(self) -> list[Step]:
        return self.steps[: self._index]

    def emit(self, kind: str, **data: Any) -> None:
        event = Event(self.elapsed, kind, data)
        self.events.append(event)
        if self.on_event:
            self.on_event(event)

    def _pending(self) -> Step | None:
        return self.steps[self._index] if self._index < len(self.steps) else None

    def _ready_at(self, step: Step) -> float | None:
        """When the step may happen, or None while it waits for a prompt not heard yet."""
        if step.after_prompt and step.after_prompt not in self.heard:
            return None
        return max(self.elapsed, step.at if step.at is not None else 0.0)

    def _gone(self, why: str) -> CallerHangup:
        self.hung_up_by = self.hung_up_by or "caller"
        self.emit("hangup", by="caller", why=why)
        return CallerHangup(why)

    def _check_alive(self) -> None:
        if self.hung_up_by:
            raise CallerHangup("the call has ended")

    def _advance(self, seconds: float) -> None:
        """Let `seconds` pass; the caller hangs up on the way if the script says so."""
        self._check_alive()
        step = self._pending()
        end = self.elapsed + seconds
        timed = step is not None and (step.at is not None or step.after_prompt is not None)
        if step and step.action == "hangup" and timed and not self._buffer:
            ready = self._ready_at(step)
            if ready is not None and ready <= end:
                self.elapsed = ready
                self._index += 1
                raise self._gone("script: hang up")
        if end > self.max_seconds:
            self.elapsed = self.max_seconds
            raise self._gone(f"caller gave up after {self.max_seconds:g}s of virtual time (does the flow loop?)")
        self.elapsed = end

    def _take(self, escape: str, window: float, prompt: bool = False) -> str | None:
        """A digit the caller presses within `window` seconds from now that `escape` accepts, advancing time to it;
        None when nothing comes (time is not advanced). During a prompt (`prompt`) only barge-in and timed steps
        press; the others wait until the IVR waits for a digit."""
        if self._buffer:
            if self._buffer[0] in escape:
                digit, self._buffer = self._buffer[0], self._buffer[1:]
                self._advance(0.25)  # digits of one entry come a quarter second apart
                return digit
            return None
        step = self._pending()
        if not self._fresh or step is None or step.action != "press":
            return None
        if prompt and not (step.barge_in or step.at is not None or step.after_prompt):
            return None
        ready = self._ready_at(step)
        if ready is None or ready > self.elapsed + window or step.digits[0] not in escape:
            return None
        self._advance(ready - self.elapsed)
        self._index += 1
        self._fresh = False
        self._buffer = step.digits[1:]
        return step.digits[0]

    # --- Channel --------------------------------------------------------------------------------------

    async def answer(self) -> None:
        self._check_alive()
        self.emit("answer")

    async def play(self, files: Sequence[str], escape_digits: str = "") -> str | None:
        self._advance(0.0)  # a pending hang-up happens before the next prompt
        if self._buffer and not escape_digits:
            # The rest of an entry lands while nothing listens: lost, as DTMF is on Asterisk.
            self.emit("lost", digits=self._buffer)
            self._buffer = ""
        for file in files:
            prompt_id, text = self.prompts.describe(file)
            length = self.prompts.seconds(file)
            start = self.elapsed
            digit = self._take(escape_digits, length, prompt=True) if escape_digits else None
            if digit is not None:
                self.emit(
                    "prompt",
                    prompt=prompt_id,
                    file=file,
                    text=text,
                    interrupted=True,
                    after=round(self.elapsed - start, 3),
                )
                self.emit("digit", digit=digit, during=prompt_id)
                return digit
            self.emit("prompt", prompt=prompt_id, file=file, text=text)
            self._advance(length)
            self.heard.add(prompt_id)
            self._fresh = self._fresh or not self._buffer
        return None

    async def wait_for_digit(self, timeout: float) -> str | None:
        self._advance(0.0)
        if self.ask is not None and self._fresh and not self._buffer and self._pending() is None:
            self.steps.extend(await self.ask())
        pending = self._pending()
        if pending is not None and pending.action == "hangup" and not self._buffer and self._fresh:
            # An untimed hang-up happens when it is the caller's turn: here, instead of answering.
            self._index += 1
            raise self._gone("script: hang up")
        step = self._pending()
        digit = self._take("0123456789*#", timeout)
        if digit is not None:
            self.emit("digit", digit=digit)
            return digit
        if self._fresh and not self._buffer and step is not None and step.action == "wait":
            self._index += 1
            self.emit("timeout", seconds=timeout, why="script: wait")
        elif step is None and self._fresh:
            self.emit("timeout", seconds=timeout, why="caller silent (script ended)")
        else:
            self.emit("timeout", seconds=timeout, why="end of entry" if not self._fresh else "caller silent")
        self._advance(timeout)
        # The entry ended with this time-out: whatever the IVR asks next is a fresh question, prompt or not.
        self._fresh = self._fresh or not self._buffer
        return None

    async def _say(self, kind: str, text: str, files: list[str], escape_digits: str) -> str | None:
        self._advance(0.0)
        for _file in files:
            digit = self._take(escape_digits, 0.6, prompt=True) if escape_digits else None
            if digit is not None:
                self.emit("say", mode=kind, value=text, interrupted=True)
                self.emit("digit", digit=digit)
                return digit
            self._advance(0.6)
        self.emit("say", mode=kind, value=text)
        self._fresh = self._fresh or not self._buffer
        return None

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        return await self._say("digits", digits, [f"digits/{d}" for d in digits], escape_digits)

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        return await self._say("number", str(number), [f"digits/{d}" for d in str(abs(number))], escape_digits)

    async def set_variable(self, name: str, value: str) -> None:
        self._check_alive()
        self.variables[name] = value
        self.emit("variable", name=name, value=value)

    async def get_variable(self, name: str) -> str | None:
        self._check_alive()
        return self.variables.get(name)

    async def set_language(self, language: str) -> None:
        self._check_alive()
        self.language = language
        self.emit("language", language=language)

    async def dial(self, destination: str, timeout: float, options: str = "") -> DialResult:
        behaviour = self.world.agent(destination)
        self.emit("dial", destination=destination, timeout=timeout, behaviour=behaviour)
        if behaviour == "answer":
            self._advance(min(self.world.ring_seconds, timeout) + self.world.talk_seconds)
            result = DialResult("ANSWER", self.world.talk_seconds)
        else:
            self._advance(timeout if behaviour == "no_answer" else min(2.0, timeout))
            result = DialResult(_DIAL_STATUS[behaviour])
        self.emit("dial_result", destination=destination, status=result.status)
        return result

    async def queue(self, queue: str, timeout: float, options: str = "") -> QueueResult:
        behaviour = self.world.queue(queue)
        self.emit("queue", queue=queue, timeout=timeout, behaviour=behaviour)
        if behaviour == "answer":
            wait = min(self.world.queue_wait_seconds, timeout) if timeout else self.world.queue_wait_seconds
            self._advance(wait + self.world.talk_seconds)
            result = QueueResult("ANSWERED", wait)
        elif behaviour == "timeout":
            self._advance(timeout)
            result = QueueResult("TIMEOUT", timeout)
        else:
            result = QueueResult(_QUEUE_STATUS[behaviour], 0.0)
        self.emit("queue_result", queue=queue, status=result.status)
        return result

    async def park(self, lot: str, timeout: float, comeback: str = "") -> ParkResult:
        self.emit("park", lot=lot, timeout=timeout, behaviour=self.world.parking)
        if self.world.parking == "retrieved":
            self._advance(min(20.0, timeout))
            return ParkResult("retrieved", "701")
        self._advance(timeout)
        return ParkResult("timeout", "701")

    def come_back(self, flow: str, node: str) -> None:
        """The dialplan's [ivr-park-comeback] starts a new FastAGI session on this channel at flow:node."""
        self._check_alive()
        self._info = self._info.replace(context="ivr-park-comeback", extension="s", params={"node": node})
        if self._buffer:
            self.emit("lost", digits=self._buffer)
        self._buffer, self._fresh = "", True
        self.emit("comeback", flow=flow, node=node)

    async def operator_fallback(self, why: str) -> None:
        """[ivr-enter,fallback]: Answer, Playback(pls-hold-while-try), Dial(${IVR_OPERATOR},60), Playback(sorry-
        youre-having-problems) when the Dial did not bridge, Hangup. The caller's script plays no part."""
        self._check_alive()
        self.emit("fallback", why=why)
        self._dialplan_playback("pls-hold-while-try")
        result = await self.dial("operator", 60.0)
        if result.status != "ANSWER":
            self._dialplan_playback("sorry-youre-having-problems")

    def _dialplan_playback(self, file: str) -> None:
        self.emit("prompt", prompt=file, file=file, text="")
        self._advance(self.prompts.seconds(file))

    async def music_on_hold(self, moh_class: str, seconds: float) -> None:
        self.emit("hold", music_class=moh_class, seconds=seconds)
        self._advance(seconds)

    async def record_file(
        self, path: str, fmt: str, escape_digits: str, max_seconds: float, silence_seconds: float, beep: bool
    ) -> RecordResult:
        self._advance(0.0)
        length = min(self.world.voicemail_seconds, max_seconds)
        step = self._pending()
        if step is not None and step.action == "hangup" and step.at is None and step.after_prompt is None:
            # The usual end of a voicemail: the caller says their piece and hangs up.
            self._advance(length)
            self.emit("record", path=path, seconds=length, reason="hangup")
            self._index += 1
            self.hung_up_by = "caller"
            self.emit("hangup", by="caller", why="script: hang up after the message")
            return RecordResult("hangup", length)
        self._advance(length + silence_seconds)
        self.emit("record", path=path, seconds=length, reason="silence")
        return RecordResult("silence", length)

    async def start_recording(self, path: str, append: bool = False) -> None:
        self._check_alive()
        self.emit("recording", action="resume" if append else "start", path=path)

    async def stop_recording(self) -> None:
        self._check_alive()
        self.emit("recording", action="stop")

    async def hangup(self) -> None:
        if not self.hung_up_by:
            self.hung_up_by = "ivr"
            self.emit("hangup", by="ivr")

"""What an AMI Originate does: dial the channel, report the outcome, then run the application or dialplan target.

Rules for this file:
- Outcomes as recorded (ami-11): OriginateResponse Reason 4 answered, 5 busy, 3 no answer within Timeout,
  0 failed (no such extension, unavailable, or a flow that never answered); ChannelId becomes the Uniqueid.
- The callee's behaviour is an `AgentSpec` (`SimConfig.callees` for scripted outside numbers, agents,
  `SimConfig.default_callee` for other outside numbers); a
  `Local/<space>@parkedcalls` callee retrieves the parked call; `Local/<did>@<route context>` runs the flow on
  its ;2 half, un-answered until the flow answers.
- After the answer the originated channel runs Application (Wait, Playback, ChanSpy, ParkedCall ...) or Context/Exten
  (a flow over FastAGI, an agent, or just stays up).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ivr.sim.appargs import parse_options, separate_args
from ivr.sim.bridging import ring_agent, talk
from ivr.sim.channel import SimChannel
from ivr.sim.dialplan import lookup
from ivr.sim.model import AgentSpec, Route
from ivr.sim.parking import parked_call

if TYPE_CHECKING:
    from ivr.sim.simulator import SimulatedAsterisk

Pairs = list[tuple[str, str]]


class Originate:
    """One Originate: dial the channel, then run the application or the dialplan target on it."""

    def __init__(
        self,
        sim: SimulatedAsterisk,
        target: str,
        context: str,
        exten: str,
        app: str,
        data: str,
        timeout: float,
        num: str,
        name: str,
        variables: dict[str, str],
        account: str,
        channel_id: str | None,
        action_id: str | None,
    ) -> None:
        self.sim = sim
        self.target, self.context, self.exten, self.app, self.data = target, context, exten, app, data
        self.timeout, self.num, self.name = timeout, num, name
        self.variables, self.account, self.channel_id, self.action_id = variables, account, channel_id, action_id

    def _response(self, ok: bool, reason: int, ch: SimChannel | None) -> None:
        pairs: Pairs = []
        if self.action_id is not None:
            pairs.append(("ActionID", self.action_id))
        pairs += [("Response", "Success" if ok else "Failure"), ("Channel", ch.name if ok and ch else self.target)]
        if self.app:
            pairs += [("Application", self.app), ("Data", self.data)]
        else:
            pairs += [("Context", self.context), ("Exten", self.exten)]
        pairs += [
            ("Reason", str(reason)),
            ("Uniqueid", ch.uniqueid if ok and ch else "<unknown>"),
            ("CallerIDNum", (self.num or "<unknown>") if ok else "<unknown>"),
            ("CallerIDName", (self.name or "<unknown>") if ok else "<unknown>"),
        ]
        self.sim.pbx.bus.emit("OriginateResponse", "call,all", pairs)

    def _dial_local(self, one: SimChannel, two: SimChannel, exten: str, context: str, *, copy_variables: bool) -> None:
        """What dialling a Local pair emits before the answer (agi-01, agi-10): the caller ID on each half
        (NewCallerid, NewConnectedLine), Originate's variables on ;2, LocalBridge, DialBegin."""
        for ch in (one, two):
            if ch is two and copy_variables:
                for k, v in self.variables.items():
                    two.set_var(k, v)
            if self.num or self.name:
                ch.emit("NewCallerid", "call,all", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
                ch.connected_num, ch.connected_name = self.num, self.name
                ch.emit("NewConnectedLine", "call,all")
        pairs = one.block("LocalOne") + two.block("LocalTwo")
        pairs += [("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")]
        self.sim.pbx.bus.emit("LocalBridge", "call,all", pairs)
        self.sim.pbx.bus.emit("DialBegin", "call,all", one.block("Dest") + [("DialString", f"{exten}@{context}")])

    def _dial_end(self, one: SimChannel, status: str) -> None:
        self.sim.pbx.bus.emit("DialEnd", "call,all", one.block("Dest") + [("DialStatus", status)])

    def _callee(self) -> tuple[AgentSpec | None, str, str, bool]:
        """(behaviour, exten, context, parked-call retrieval?)"""
        pbx = self.sim.pbx
        agent, exten, context = pbx.resolve_agent(self.target)
        tech = self.target.split("/", 1)[0].lower() if "/" in self.target else ""
        if tech == "local" and context == "parkedcalls" and exten.isdigit():
            return AgentSpec(exten, answer_after=0.0, talk=None), exten, context, True
        callee = self.sim.config.callees.get(exten)
        if callee is not None:  # a scripted outside number
            return callee, exten, context, False
        if agent is not None:
            return agent, exten, context, False
        if tech == "local":
            route = self.sim.config.routes.get(exten)
            if route is not None and route.context == context:  # Local/<did>@<ivr context>: ;2 runs the flow
                return AgentSpec(exten, answer_after=0.0, talk=None), exten, context, False
            return None, exten, context, False
        return self.sim.config.default_callee, exten, context, False

    async def run(self) -> bool:
        sim, pbx = self.sim, self.sim.pbx
        behaviour, exten, context, retrieval = self._callee()
        two: SimChannel | None
        if behaviour is None or behaviour.unavailable:
            if self.target.lower().startswith("local/"):
                one, two = pbx.local_pair(exten, context)
                two.hangup(0)
                one.hangup(0)
            self._response(False, 0, None)
            return False
        if "/" in self.target and self.target.split("/", 1)[0].lower() != "local":
            endpoint = self.target.split("/", 1)[1]
            one = pbx.pjsip_channel(
                endpoint.split("@")[0],
                context=self.context or context,
                exten=exten,
                caller_num=self.num,
                caller_name=self.name,
                language="en",
                accountcode=self.account,
                uniqueid=self.channel_id or None,
            )
            two = None
        else:
            one, two = pbx.local_pair(
                exten, context, caller_num=self.num, caller_name=self.name, uniqueid=self.channel_id or None
            )
            one.accountcode = self.account
        if two is not None:
            one.newexten("AppDial2", "(Outgoing Line)", priority=1)  # ;1 is the channel Asterisk dials
        for k, v in reversed(list(self.variables.items())):
            one.set_var(k, v)
        route = sim.config.routes.get(exten)
        runs_flow = two is not None and not retrieval and route is not None and route.context == context
        if two is not None:
            self._dial_local(one, two, exten, context, copy_variables=runs_flow)
        if runs_flow:
            assert two is not None and route is not None
            # Local/<did>@<ivr context>: the ;2 half runs the flow, un-answered (Ring) like an inbound call;
            # the originate succeeds only once the flow answers (ami-11 README note)
            sim.adopt_call(two, route, behaviour.script, exten=exten, sends_media=False)
            if not await two.wait_up(self.timeout):
                self._response(False, 0, None)
                if not two.hungup:
                    sim.hangup_channel(two, 0)
                return False
            one.set_state(6)
            self._dial_end(one, "ANSWER")
            self._response(True, 4, one)
            sim.spawn(self._after_answer(one, None, behaviour, False, exten))
            return True
        if behaviour.busy:
            await sim.clock.sleep(0.001)
            if two is not None:
                two.hangup(17)
            one.hangup(0)
            self._response(False, 5, None)
            return False
        answer_at = behaviour.answer_after
        if answer_at is None or answer_at >= self.timeout:
            await sim.clock.sleep(self.timeout)
            if two is not None:
                two.hangup(0)
            one.hangup(0)
            self._response(False, 3, None)
            return False
        if answer_at:
            await sim.clock.sleep(answer_at)
        one.set_state(6)
        if two is not None:
            two.set_state(6)
            self._dial_end(one, "ANSWER")
        self._response(True, 4, one)
        sim.spawn(self._after_answer(one, two, behaviour, retrieval, exten))
        return True

    async def _after_answer(
        self, one: SimChannel, two: SimChannel | None, behaviour: AgentSpec, retrieval: bool, exten: str
    ) -> None:
        sim = self.sim
        if retrieval and two is not None:
            sim.retrieve_parked(int(exten), talk=None, retriever=two)
        if self.app:
            await run_app_on(sim, one, self.app, self.data)
            if sim.runs_dialplan(one):  # a Redirect took it out of its application (hold after ParkedCall)
                return
        elif self.exten in sim.config.routes or lookup(self.context, self.exten, sim.config.dialplan_file) is not None:
            # a route (a flow named directly) wins; else the shipped dialplan runs <context>,<exten> (ivr-outbound)
            route = sim.config.routes.get(self.exten) or Route(flow="", context=self.context, dialplan=True)
            call = sim.adopt_call(one, route, behaviour.script, exten=self.exten, context=self.context)
            await call.finished()
            return
        elif self.exten in sim.config.agents:
            ring = await ring_agent(one, f"Local/{self.exten}@{self.context}", None)
            if ring.status == "ANSWER" and ring.leg is not None:
                await talk(one, ring.leg, ring.other, sim.config.agents[self.exten].talk)
        else:
            await one.pause(behaviour.talk) if behaviour.talk is not None else await one.next_event_kind("hangup")
        if not one.hungup:
            sim.hangup_channel(one, 16)
        if two is not None and not two.hungup:
            two.hangup(16)


async def run_app_on(sim: SimulatedAsterisk, ch: SimChannel, app: str, data: str) -> None:
    """Applications an originated channel can run: Wait, Playback, ChanSpy, ParkedCall, MusicOnHold, Echo."""
    ch.newexten(app, data)
    name = app.lower()
    if name == "wait":
        with contextlib.suppress(ValueError):
            await ch.pause(float(data or 0))
    elif name == "playback":
        from ivr.sim import media

        for f in (separate_args(data, max_args=2) or [""])[0].split("&"):  # filenames, options
            if (await media.play(ch, f, "")).kind == "hangup":
                return
    elif name == "chanspy":
        await chanspy(sim, ch, data)
    elif name == "parkedcall":
        await parked_call(sim, ch, data)
    else:
        await ch.next_event_kind("hangup")


async def chanspy(sim: SimulatedAsterisk, spyer: SimChannel, data: str) -> None:
    """ChanSpy(prefix[,options]): listen (q), whisper (w) or barge (B) on the first channel matching prefix."""
    prefix, options = (separate_args(data, max_args=2) + ["", ""])[:2]  # chanprefix, options
    spyee = None
    while spyee is None and not spyer.hungup:
        spyee = next(
            (
                c
                for c in sim.pbx.channels.values()
                if c is not spyer and c.peer is not spyer and c.name.startswith(prefix) and not c.hungup
            ),
            None,
        )
        if spyee is None:
            ev = await spyer.next_event(sim.clock.now() + 1.0)
            if ev is not None and ev.kind == "hangup":
                return
    if spyee is None:
        return
    flags = parse_options(options)
    mode = "barge" if "B" in flags else "whisper" if "w" in flags else "listen"
    spyer.set_var("SPYMODE", mode)
    pairs = spyer.block("Spyer") + spyee.block("Spyee")
    sim.pbx.bus.emit("ChanSpyStart", "call,all", pairs)
    spyee.on_hangup(spyer.wake)
    call = sim.calls_by_linkedid.get(spyee.linkedid)
    if call is not None:
        call.spied.append(mode)
    while not spyer.hungup and not spyee.hungup:
        await spyer.next_event(None)
    sim.pbx.bus.emit("ChanSpyStop", "call,all", spyer.block("Spyer") + spyee.block("Spyee"))

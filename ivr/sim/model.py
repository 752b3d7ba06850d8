"""Configuration of the simulated PBX: dialplan routes, agents, queues, parking, sounds, timings.

Rules for this file:
- Plain dataclasses with defaults that reproduce the recorded Asterisk (agents of the `agents` context,
  queues agiq/testq/emptyq, parking lot `default` 701-720, 45 s).
- No behaviour here beyond small lookups; the PBX model interprets these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr import dialplan
from ivr.sim.ami_filter import AMIUser
from ivr.sim.script import CallerScript, Step
from ivr.sim.sounds import SoundCatalog


@dataclass
class AgentSpec:
    """An extension that can be dialled (Local/<exten>@agents or PJSIP/<exten>).

    `answer_after` None = never answers (rings until the caller's Dial timeout).  `talk` seconds after answering
    the agent hangs up (None = stays until the other side hangs up).  `busy` -> BUSY, `unavailable` -> CHANUNAVAIL.
    """

    exten: str
    answer_after: float | None = 0.0
    talk: float | None = 2.5
    busy: bool = False
    unavailable: bool = False
    name: str = ""
    script: tuple = ()  # caller-script steps when this party, originated over AMI, is put into a flow


def default_agents() -> dict[str, AgentSpec]:
    return {
        "answer2s": AgentSpec("answer2s", answer_after=0.0, talk=2.5),
        "noanswer": AgentSpec("noanswer", answer_after=None),
        "busy": AgentSpec("busy", busy=True),
        "talk": AgentSpec("talk", answer_after=0.0, talk=None),
    }


@dataclass
class QueueSpec:
    name: str
    members: list[str] = field(default_factory=list)  # interfaces, e.g. "Local/answer2s@agents"
    strategy: str = "ringall"
    member_timeout: float = 10.0  # ring time per attempt
    retry: float = 5.0
    joinempty: bool = False
    setinterfacevar: bool = False  # queues.conf: MEMBERINTERFACE, MEMBERNAME ... on the caller when a member answers


def default_queues() -> dict[str, QueueSpec]:
    return {
        "agiq": QueueSpec("agiq", members=["Local/answer2s@agents"]),
        "testq": QueueSpec("testq", joinempty=True),
        "emptyq": QueueSpec("emptyq", joinempty=False),
    }


@dataclass
class ParkingLotSpec:
    name: str = "default"
    parkext: str = "700"
    first_space: int = 701
    last_space: int = 720
    parkingtime: float = 45.0
    comebackcontext: str = "parkedcallstimeout"
    announce_seconds: float = 2.6  # "says the parking space number" before hold music (no `s` option)
    retrieved_talk: float = 10.0  # how long a retrieval without a retriever channel lasts


@dataclass
class Route:
    """Dialplan: a DID/extension in a context that runs `AGI(agi://host:port/<flow>?<query>,<args>)`."""

    flow: str
    context: str = "ivr-inbound"
    query: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    preset: dict[str, str] = field(default_factory=dict)  # Set() before the AGI
    # True: no AGI of its own; the call runs dialplans/extensions_ivr.conf from <context>,<exten>,1 (ivr.sim.dialplan)
    dialplan: bool = False


@dataclass(frozen=True)
class OriginateLog:
    """One AMI Originate as the PBX received it (`SimulatedAsterisk.originates`): what was dialled, and with which
    channel variables (a callback's IVR_CALLBACK_ID, ...)."""

    at: float  # the simulator clock's time
    channel: str
    context: str
    exten: str
    application: str
    variables: dict[str, str]
    action_id: str | None


@dataclass
class SimConfig:
    routes: dict[str, Route] = field(default_factory=dict)  # DID/extension -> route
    agents: dict[str, AgentSpec] = field(default_factory=default_agents)
    queues: dict[str, QueueSpec] = field(default_factory=default_queues)
    parking: ParkingLotSpec = field(default_factory=ParkingLotSpec)
    sounds: SoundCatalog = field(default_factory=SoundCatalog)
    # user -> secret, or an AMIUser (read/write classes and eventfilter lines of manager.conf, e.g. from
    # ami_filter.load_manager_conf(dialplans/manager_ivr.conf)); a plain secret reads and writes everything
    ami_users: dict[str, str | AMIUser] = field(default_factory=lambda: {"ivr": "ivrsecret"})
    ami_auth_failure_delay: float = 1.0  # real seconds before "Authentication failed" + close
    answer_delay: float = 0.5  # ANSWER waits this long for the first media frame
    hangup_notice_delay: float = 0.04  # command reply -> unsolicited HANGUP
    usage_split_delay: float = 0.04  # 520 first line -> the rest
    monitor_dir: Path = Path("/var/spool/asterisk/monitor")  # relative MixMonitor file names
    record_dir: Path = Path("/var/lib/asterisk/sounds")  # relative RECORD FILE names
    path_map: dict[str, str] = field(default_factory=dict)  # prefix -> replacement for files the PBX writes
    shutdown_grace: float = 15.0  # `core stop now` waits this long (real s) for AGI sessions
    max_call_seconds: float = 3600.0  # the caller gives up after this long (safety for virtual time)
    epoch_start: float | None = None  # first uniqueid seconds (default: the clock at start)
    default_trunk: str = "trunk"
    moh_classes: set[str] = field(default_factory=lambda: {"default"})  # unknown classes fall back to default
    seed: int = 0  # ids that Asterisk draws at random (CommandId, bridges)
    default_callee: AgentSpec = field(default_factory=lambda: AgentSpec("callee", answer_after=1.0, talk=None))
    # Outside numbers by script (campaigns, callbacks): number -> how that phone behaves when originated --
    # answers after n s and follows `script` in the flow, `busy`, never answers (`answer_after=None`), or
    # `unavailable`. Looked up before agents; numbers not listed are agents or `default_callee`.
    callees: dict[str, AgentSpec] = field(default_factory=dict)
    # [globals] of extensions.conf that dialplans/extensions_ivr.conf reads: IVR_OPERATOR (ivr-enter,fallback's
    # Dial), IVR_SERVER (host:port of the FastAGI service; default: where sim.start() points calls)
    globals: dict[str, str] = field(default_factory=lambda: {dialplan.OPERATOR: "Local/answer2s@agents"})
    # The dialplan the PBX runs (ivr.sim.dialplan): None = the shipped dialplans/extensions_ivr.conf; a variant of it
    # (e.g. with hagi:// URLs) for tests of what an admin's documented edit does.
    dialplan_file: Path | None = None
    # DNS SRV answers for hagi://<name>/ (res_agi looks up _agi._tcp.<name>): name -> "host:port" targets in the
    # order the resolver hands them out (priority, then weight). Each is tried in turn until one accepts.
    srv: dict[str, list[str]] = field(default_factory=dict)

    def map_path(self, path: str) -> str:
        for prefix, repl in self.path_map.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return repl.rstrip("/") + path[len(prefix.rstrip("/")) :]
        return path


@dataclass
class CallSpec:
    """One simulated inbound call.

    Either `flow` (the dialplan runs AGI(agi://.../<flow>?<params>,<args>) directly) or `did` (looked up in
    `SimConfig.routes`; without a route, `context` + `did` name an extension of the shipped dialplan, e.g.
    `CallSpec(did="37052000000", context="ivr-inbound")`, and the call runs the file from there).
    `technology` "PJSIP" gives one channel PJSIP/<trunk>-<seq> like a SIP trunk call; "Local" gives the recorded
    Local pair, the ;2 half running the AGI.
    """

    flow: str | None = None
    did: str = "s"
    caller_id: str = "5551234"
    caller_name: str = ""
    language: str = "en"
    script: Sequence[Step] | CallerScript = ()
    params: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)  # set on the channel before the AGI runs
    technology: str = "PJSIP"
    trunk: str | None = None
    sends_media: bool = False  # True: ANSWER returns at once (media already flowing)
    record_speech: float | None = None  # the caller speaks this long whenever a RECORD FILE starts
    context: str | None = None
    accountcode: str = ""

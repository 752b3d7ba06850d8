"""Every Prometheus metric the service exports, in one place.

Rules for this file:
- Labels are bounded: only the names in `ALLOWED_LABELS` (flow, node, option, outcome, reason, queue, lot, command,
  result, event, target, state, subscriber, action, version, question, answer, window, instance, pbx, campaign).
  Their values come from the configuration or from fixed vocabularies, never from the network (no caller numbers,
  channel names, uniqueids, member interfaces):
  * flow/node/option/target/lot come from the loaded flow files; command/action/subscriber from our own code;
  * outcome/reason/result/state use the fixed tuples below (OUTCOMES, EXIT_REASONS, QUEUE_RESULTS, AGENT_STATES ...);
  * event goes through `bounded_event()` (unknown AMI event names become "other");
  * queue names are Asterisk configuration (queues.conf), and `ivr.queue_stats` caps how many it tracks;
  * version is the running flow-set / package version (one series at a time: Info replaces its labels);
  * question/answer are a survey question id and one of its answer digits (flow files); window is a configured
    repeat-caller window (settings);
  * instance is the `instance` setting (one per process), pbx an `ami.servers` name (configuration);
  * campaign is a name listed in `campaigns.names` (configuration), any other campaign "other".
  tests/observability asserts that no ivr_* metric carries a label outside ALLOWED_LABELS.
- Metrics live in `REGISTRY`, not the global default registry, so tests can build a fresh service without clashes
  and /metrics shows only what this service owns (plus process metrics).
- Gauges that age with time (longest queue wait) are refreshed just before each scrape by collect hooks
  (`add_collect_hook`); a hook must be cheap and must not block.
- Counter names are declared without `_total`; prometheus-client appends it in the exposition (ivr_calls_started
  -> ivr_calls_started_total). Histograms expose _bucket/_sum/_count; Info `ivr_config` exposes `ivr_config_info`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.metrics_core import Metric

from ivr.metric_batch import BATCH as _BATCH
from ivr.transfer_results import TRANSFER_RESULTS, TRANSFER_SUCCESS_RESULTS, transfer_result  # noqa: F401 (re-exported)

# The only label names any ivr_* metric may use (see the rules above).
ALLOWED_LABELS = frozenset(
    {
        "flow",
        "node",
        "option",
        "outcome",
        "reason",
        "queue",
        "lot",
        "command",
        "result",
        "event",
        "target",
        "state",
        "subscriber",
        "action",
        "version",
        "question",
        "answer",
        "window",
        "instance",
        "pbx",
        "campaign",
    }
)


class _CollectHooks:
    """Runs registered callbacks at the start of every collection (scrape). Registered first in REGISTRY so the
    callbacks update gauges before those gauges are read. Exports no metric of its own."""

    def __init__(self) -> None:
        self._hooks: list[Callable[[], None]] = []

    def add(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def remove(self, hook: Callable[[], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def describe(self) -> Iterable[Metric]:
        return []  # no metric names: registering never calls collect()

    def collect(self) -> Iterable[Metric]:
        for hook in list(self._hooks):  # a copy: a hook may remove itself
            try:
                hook()
            except Exception:  # a broken hook must not take /metrics down: the other series still matter
                log.exception("metrics collect hook %r failed; its gauges may be stale", hook)
        return []


# The *_created series double the exposition for no KPI; Prometheus does not need them.
disable_created_metrics()
log = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=True)
_HOOKS = _CollectHooks()
REGISTRY.register(_HOOKS)  # first, so hooks run before any gauge is read
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


def add_collect_hook(hook: Callable[[], None]) -> None:
    """Call `hook()` at the start of every scrape of REGISTRY (e.g. to age the longest-wait gauge)."""
    _HOOKS.add(hook)


def remove_collect_hook(hook: Callable[[], None]) -> None:
    _HOOKS.remove(hook)


# The flow engine's updates are batched (ivr/metric_batch.py): folded before every scrape, so scrapes are exact.
add_collect_hook(_BATCH.flush)


_CALL_BUCKETS = (1, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_NODE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Outcomes of a call in the IVR (label `outcome`).
OUTCOMES = ("transferred", "parked", "voicemail", "callback", "contained", "abandoned", "error")
# Why a node was left (label `reason`).
EXIT_REASONS = ("next", "valid", "invalid", "no_input", "exhausted", "hangup", "error", "closed", "open")
# Queue call results (label `result` of ivr_queue_calls): answered by an agent, caller hung up while waiting,
# caller left because the Queue() timeout expired (still on the line, QUEUESTATUS=TIMEOUT).
QUEUE_RESULTS = ("answered", "abandoned", "timeout")
# Queue member states (label `state` of ivr_queue_agents).
AGENT_STATES = ("available", "busy", "paused", "unavailable")
# Transfer results (label `result` of ivr_transfers): ivr/transfer_results.py (no prometheus_client there, so the
# flow engine can name them without importing this module).


# Config reload results (label `result` of ivr_config_reloads).
RELOAD_RESULTS = ("ok", "failed")
# FastAGI connection results (label `result` of ivr_agi_connections, see ivr/agi/fastagi.py).
AGI_CONNECTION_RESULTS = ("ok", "noroute", "rejected", "forbidden", "bad_header", "error")

# --- calls and flows ---------------------------------------------------------------------------------------
CALLS_STARTED = Counter("ivr_calls_started", "Calls that entered a flow.", ["flow"], registry=REGISTRY)
CALLS_ACTIVE = Gauge("ivr_calls_active", "Calls currently in a flow.", ["flow"], registry=REGISTRY)
CALL_OUTCOMES = Counter(
    "ivr_call_outcomes",
    "How calls left the IVR (transferred, parked, voicemail, callback, contained, abandoned, error).",
    ["flow", "outcome"],
    registry=REGISTRY,
)
IVR_SECONDS = Histogram(
    "ivr_time_in_ivr_seconds",
    "Time from entering a flow to leaving it.",
    ["flow"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)
NODE_VISITS = Counter("ivr_node_visits", "Node entries.", ["flow", "node"], registry=REGISTRY)
NODE_EXITS = Counter("ivr_node_exits", "Node exits by reason.", ["flow", "node", "reason"], registry=REGISTRY)
NODE_SECONDS = Histogram(
    "ivr_node_seconds", "Time spent in a node.", ["flow", "node"], buckets=_NODE_BUCKETS, registry=REGISTRY
)
MENU_CHOICES = Counter("ivr_menu_choices", "Menu options chosen.", ["flow", "node", "option"], registry=REGISTRY)
LOOKUPS = Counter(
    "ivr_lookups", "CRM/webhook lookups by result (ok, error, timeout).", ["flow", "node", "result"], registry=REGISTRY
)

# --- transfers, parking, recordings ------------------------------------------------------------------------
TRANSFERS = Counter(
    "ivr_transfers",
    "Transfers by target (extension or queue name from the flow) and result: answered, abandoned (the caller hung "
    "up while it rang or waited in the queue), refused, redirected, or DIALSTATUS/QUEUESTATUS in lower case.",
    ["flow", "target", "result"],
    registry=REGISTRY,
)
PARKED_NOW = Gauge("ivr_parked_calls", "Calls parked right now.", ["lot", "pbx"], registry=REGISTRY)
PARKED_SECONDS = Histogram(
    "ivr_parked_seconds", "How long calls stayed parked.", ["lot"], buckets=_CALL_BUCKETS, registry=REGISTRY
)
PARK_TIMEOUTS = Counter("ivr_park_timeouts", "Parked calls nobody retrieved in time.", ["lot"], registry=REGISTRY)
RECORDINGS_ACTIVE = Gauge("ivr_recordings_active", "Recordings running now.", ["pbx"], registry=REGISTRY)
RECORDINGS_FINISHED = Counter("ivr_recordings_finished", "Recordings finished.", registry=REGISTRY)
RECORDING_SECONDS = Counter("ivr_recording_seconds", "Seconds of audio recorded.", registry=REGISTRY)
VOICEMAILS = Counter("ivr_voicemails", "Voicemail messages stored.", ["flow"], registry=REGISTRY)
CALLBACKS = Counter(
    "ivr_callbacks",
    "Callback requests by result (requested, attempted, completed, failed, cancelled by the customer).",
    ["queue", "result"],
    registry=REGISTRY,
)
# Outbound campaigns (ivr.campaigns.dialer). `campaign` is a name listed in campaigns.names, else "other".
CAMPAIGN_ATTEMPTS = Counter(
    "ivr_campaign_attempts",
    "Campaign call attempts by result (answered, busy, no_answer, failed, error) and dnc (skipped: on the "
    "do-not-call list when its turn came).",
    ["campaign", "result"],
    registry=REGISTRY,
)
CAMPAIGN_OUTCOMES = Counter(
    "ivr_campaign_outcomes",
    "Answered campaign calls by what their flow reported: connected (an agent took the call), abandoned (the "
    "contact waited in the queue and no agent came), declined (never asked for an agent).",
    ["campaign", "outcome"],
    registry=REGISTRY,
)
CAMPAIGN_ABANDON_RATE = Gauge(
    "ivr_campaign_abandon_rate",
    "Abandoned / answered campaign calls over the abandon guard's window (the figure pacing backs off on); listed "
    "campaigns only.",
    ["campaign"],
    registry=REGISTRY,
)
CAMPAIGN_PACING_RATIO = Gauge(
    "ivr_campaign_pacing_ratio",
    "Calls per available agent the dialer allows now (the configured ratio, less when the guard backs off, 0 "
    "when it pauses); listed campaigns only.",
    ["campaign"],
    registry=REGISTRY,
)
CAMPAIGN_DIALING = Gauge(
    "ivr_campaign_dialing", "Campaign calls this instance has ringing now.", ["campaign"], registry=REGISTRY
)
STORAGE_FAILURES = Counter(
    "ivr_storage_failures",
    "Writes/reads the database refused or could not take (lost, down), by what was being done: voicemail, "
    "callback_request, callback_scheduler, callback_attempt, survey_answer, repeat_callers.",
    ["action"],
    registry=REGISTRY,
)

# Post-call surveys (ivr.flow.nodes.survey). `question` is a question id written in a flow, `answer` one of its
# digits, `queue` a queue some flow names ("other"/"none" else): all bounded by the configuration.
SURVEY_ANSWERS = Counter(
    "ivr_survey_answers",
    "Survey answers by flow, queue of the call, question id and answer digit.",
    ["flow", "queue", "question", "answer"],
    registry=REGISTRY,
)
SURVEYS = Counter(
    "ivr_surveys",
    "Surveys offered, by result: completed (every question answered), partial, unanswered. Response rate = "
    "(completed + partial) / all.",
    ["flow", "queue", "result"],
    registry=REGISTRY,
)

# Repeat callers, the first-contact resolution proxy (ivr.repeat_callers): `window` is a configured window label.
CALLER_CALLS = Counter(
    "ivr_caller_calls",
    "Finished inbound calls from a recognisable caller (withheld, anonymous and short numbers left out), by flow "
    "and queue of the call.",
    ["flow", "queue"],
    registry=REGISTRY,
)
REPEAT_CALLS = Counter(
    "ivr_repeat_calls",
    "Calls followed by another call from the same caller within the window, by flow and queue of the first "
    "call; counted when the repeat arrives.",
    ["flow", "queue", "window"],
    registry=REGISTRY,
)

# --- queues (from AMI) -------------------------------------------------------------------------------------
QUEUE_CALLERS = Gauge("ivr_queue_callers", "Callers waiting in the queue.", ["queue"], registry=REGISTRY)
QUEUE_LONGEST_WAIT = Gauge(
    "ivr_queue_longest_wait_seconds", "Wait of the longest-waiting caller.", ["queue"], registry=REGISTRY
)
QUEUE_AGENTS = Gauge(
    "ivr_queue_agents",
    "Queue members by state (available, busy, paused, unavailable).",
    ["queue", "state"],
    registry=REGISTRY,
)
AGENTS = Gauge(
    "ivr_agents",
    "Distinct agents (queue member interfaces) by state, whatever the number of queues each is a member of: "
    "busy if busy anywhere, else available if available in a queue, else paused, else unavailable.",
    ["state"],
    registry=REGISTRY,
)
QUEUE_CALLS = Counter(
    "ivr_queue_calls", "Queue calls by result (answered, abandoned, timeout).", ["queue", "result"], registry=REGISTRY
)
QUEUE_ANSWERED_IN_SL = Counter(
    "ivr_queue_answered_within_sl", "Calls answered within the service-level threshold.", ["queue"], registry=REGISTRY
)
QUEUE_WAIT_SECONDS = Histogram(
    "ivr_queue_wait_seconds",
    "Time callers waited before answer or abandon.",
    ["queue", "result"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)
QUEUE_TALK_SECONDS = Histogram(
    "ivr_queue_talk_seconds",
    "Talk time of answered queue calls (handle time).",
    ["queue"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)
QUEUE_SERVICE_LEVEL = Gauge(
    "ivr_queue_service_level_ratio",
    "Share of answered calls answered within the threshold, since start.",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_SL_THRESHOLD = Gauge(
    "ivr_queue_service_level_threshold_seconds", "Configured service-level threshold.", ["queue"], registry=REGISTRY
)
QUEUE_ABANDONED_IN_SL = Counter(
    "ivr_queue_abandoned_within_sl",
    "Callers who hung up before the service-level "
    "threshold (short abandons; some centres exclude them from the service level).",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_RING_NO_ANSWER = Counter(
    "ivr_queue_ring_no_answer",
    "Agents rung for a queue caller who did not answer (AgentRingNoAnswer).",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_RESYNCS = Counter(
    "ivr_queue_resyncs",
    "Queue state reloads from QueueStatus/QueueSummary by result (ok, failed).",
    ["result"],
    registry=REGISTRY,
)
QUEUE_TRACKED = Gauge(
    "ivr_queue_tracked", "Queues whose statistics are exported (capped, see docs).", registry=REGISTRY
)

# --- health ------------------------------------------------------------------------------------------------
AMI_UP = Gauge(
    "ivr_ami_up", "1 while the AMI connection to this Asterisk server is logged in.", ["pbx"], registry=REGISTRY
)
AMI_RECONNECTS = Counter("ivr_ami_reconnects", "AMI reconnect attempts.", registry=REGISTRY)
AMI_LOGIN_FAILURES = Counter("ivr_ami_login_failures", "AMI logins refused (wrong credentials).", registry=REGISTRY)
AMI_EVENTS = Counter(
    "ivr_ami_events", "AMI events received by name (unknown names as 'other').", ["event"], registry=REGISTRY
)
AMI_EVENTS_DROPPED = Counter(
    "ivr_ami_events_dropped",
    "AMI events dropped because a subscriber's queue was full.",
    ["subscriber"],
    registry=REGISTRY,
)
AMI_ACTION_SECONDS = Histogram(
    "ivr_ami_action_seconds", "AMI action round-trip time.", ["action"], buckets=_LATENCY_BUCKETS, registry=REGISTRY
)
AGI_CONNECTIONS_ACTIVE = Gauge("ivr_agi_connections_active", "FastAGI sessions open now.", registry=REGISTRY)
AGI_CONNECTIONS = Counter(
    "ivr_agi_connections",
    "FastAGI connections by result (ok, noroute, rejected: over "
    "the connection cap, forbidden: peer not in fastagi.allowed_peers, bad_header, error).",
    ["result"],
    registry=REGISTRY,
)
AGI_COMMAND_SECONDS = Histogram(
    "ivr_agi_command_seconds",
    "AGI command latency (until Asterisk's reply).",
    ["command"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
AGI_COMMAND_RESULTS = Counter(
    "ivr_agi_command_results",
    "AGI command results (ok, ended: EXEC Dial/Queue/Park over normally, hangup, failure, dead, invalid, usage, "
    "timeout).",
    ["command", "result"],
    registry=REGISTRY,
)
CONFIG_RELOADS = Counter("ivr_config_reloads", "Flow reloads by result (ok, failed).", ["result"], registry=REGISTRY)
CONFIG_RELOAD_FAILING = Gauge("ivr_config_reload_failing", "1 while the last reload attempt failed.", registry=REGISTRY)


class _BoundedInfo(Info):
    """An Info whose keys become labels: keys outside ALLOWED_LABELS are dropped (logged once per key) instead of
    exported, so a caller passing e.g. a timestamp cannot break the label rule. Use a gauge for timestamps."""

    _warned: set[str] = set()

    def info(self, val: dict[str, str]) -> None:
        extra = sorted(set(val) - ALLOWED_LABELS)
        for key in extra:
            if key not in self._warned:
                self._warned.add(key)
                log.warning(
                    "metric %s: key %r is not an allowed label (%s); not exported",
                    self._name,
                    key,
                    ", ".join(sorted(ALLOWED_LABELS)),
                )
        super().info({k: v for k, v in val.items() if k in ALLOWED_LABELS})


CONFIG_INFO = _BoundedInfo("ivr_config", "Version of the running flow set.", registry=REGISTRY)
CONFIG_LAST_RELOAD = Gauge(
    "ivr_config_last_reload_timestamp_seconds",
    "Unix time of the last reload attempt by result (ok, failed).",
    ["result"],
    registry=REGISTRY,
)
BUILD_INFO = _BoundedInfo("ivr_build", "Version of the ivr package serving the calls.", registry=REGISTRY)
INSTANCE_INFO = _BoundedInfo(
    "ivr_instance", "This service instance (the `instance` setting) and its package version.", registry=REGISTRY
)

# AMI event names we count by name; anything else is "other" so a peer cannot explode the label set. Every event
# the service subscribes to is here (tests/calls/test_queue_model.py checks ivr.calls.registry.REGISTRY_EVENTS).
KNOWN_EVENTS = frozenset(
    {
        "FullyBooted",
        "Newchannel",
        "Newstate",
        "Newexten",
        "NewCallerid",
        "NewConnectedLine",
        "NewAccountCode",
        "VarSet",
        "Hangup",
        "HangupRequest",
        "SoftHangupRequest",
        "DialBegin",
        "DialEnd",
        "DialState",
        "BridgeCreate",
        "BridgeDestroy",
        "BridgeEnter",
        "BridgeLeave",
        "ParkedCall",
        "ParkedCallTimeOut",
        "ParkedCallGiveUp",
        "UnParkedCall",
        "ParkedCallSwap",
        "MixMonitorStart",
        "MixMonitorStop",
        "MixMonitorMute",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberPause",
        "QueueMemberStatus",
        "QueueMemberPenalty",
        "QueueMemberRinginuse",
        "AgentCalled",
        "AgentConnect",
        "AgentComplete",
        "AgentRingNoAnswer",
        "AgentDump",
        "OriginateResponse",
        "AGIExecStart",
        "AGIExecEnd",
        "AsyncAGIStart",
        "AsyncAGIExec",
        "AsyncAGIEnd",
        "BlindTransfer",
        "AttendedTransfer",
        "DTMFBegin",
        "DTMFEnd",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "Hold",
        "Unhold",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        "Status",
        "StatusComplete",
        "QueueParams",
        "QueueMember",
        "QueueEntry",
        "QueueStatusComplete",
        "QueueSummary",
        "QueueSummaryComplete",
        "ParkedCallsComplete",
        "Shutdown",
        "Reload",
        "SuccessfulAuth",
        "InvalidPassword",
        "InvalidAccountID",
        "ChallengeSent",
        "RequestNotAllowed",
        "RequestBadFormat",
        "ChanSpyStart",
        "ChanSpyStop",
        "LocalBridge",
        "Cdr",
        "Cel",
    }
)


def bounded_event(name: str) -> str:
    return name if name in KNOWN_EVENTS else "other"


def record_config_reload(ok: bool, version: str | None = None) -> None:
    """Account for one flow reload attempt: the counter by result, the failing flag, the attempt's timestamp and,
    on success, the running version (`ivr_config_info{version=...}`). A failed reload keeps the old version."""
    result = "ok" if ok else "failed"
    CONFIG_RELOADS.labels(result=result).inc()
    CONFIG_LAST_RELOAD.labels(result=result).set(time.time())
    CONFIG_RELOAD_FAILING.set(0 if ok else 1)
    if ok and version is not None:
        CONFIG_INFO.info({"version": version})


def init_flow_series(flow: str) -> None:
    """Create a flow's call and outcome series at 0 (call it for every flow on each load). A counter series that
    appears only at its first increment loses that increment to rate()/increase(), and a ratio with a missing
    outcome series shows "No data" instead of 0 %."""
    CALLS_STARTED.labels(flow=flow)
    CALLS_ACTIVE.labels(flow=flow)
    VOICEMAILS.labels(flow=flow)
    for outcome in OUTCOMES:
        CALL_OUTCOMES.labels(flow=flow, outcome=outcome)


def init_queue_series(queue: str) -> None:
    """Create a queue's counters and histograms at 0 (ivr.queue_stats calls it when it starts tracking a queue)."""
    for result in QUEUE_RESULTS:
        QUEUE_CALLS.labels(queue=queue, result=result)
        QUEUE_WAIT_SECONDS.labels(queue=queue, result=result)
    QUEUE_TALK_SECONDS.labels(queue=queue)
    QUEUE_ANSWERED_IN_SL.labels(queue=queue)
    QUEUE_ABANDONED_IN_SL.labels(queue=queue)
    QUEUE_RING_NO_ANSWER.labels(queue=queue)


def _init_fixed_series() -> None:
    """Series whose label values are a fixed vocabulary exist from the start, at 0."""
    for result in AGI_CONNECTION_RESULTS:
        AGI_CONNECTIONS.labels(result=result)
    for result in RELOAD_RESULTS:
        CONFIG_RELOADS.labels(result=result)
        QUEUE_RESYNCS.labels(result=result)


def _package_version() -> str:
    try:
        return metadata.version("ivr")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


_init_fixed_series()
BUILD_INFO.info({"version": _package_version()})


def set_instance(instance: str) -> None:
    """Export `ivr_instance_info{instance, version}` (the service calls it once its settings are read)."""
    INSTANCE_INFO.info({"instance": instance, "version": _package_version()})

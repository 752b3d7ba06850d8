"""Every Prometheus metric the service exports, in one place.

Rules for this file:
- Labels are bounded: flow, node, option, outcome, reason, queue, lot, command, result, event, target, state.
  Their values come from the configuration or from fixed vocabularies, never from the network (no caller numbers,
  channel names, uniqueids). `bounded_event()` folds unknown AMI event names into "other".
- Metrics live in `REGISTRY`, not the global default registry, so tests can build a fresh service without clashes
  and /metrics shows only what this service owns (plus process metrics).
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import ProcessCollector, PlatformCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_CALL_BUCKETS = (1, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_NODE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Outcomes of a call in the IVR (label `outcome`).
OUTCOMES = ("transferred", "parked", "voicemail", "callback", "contained", "abandoned", "error")
# Why a node was left (label `reason`).
EXIT_REASONS = ("next", "valid", "invalid", "no_input", "exhausted", "hangup", "error", "closed", "open")

# --- calls and flows ---------------------------------------------------------------------------------------
CALLS_STARTED = Counter("ivr_calls_started", "Calls that entered a flow.", ["flow"], registry=REGISTRY)
CALLS_ACTIVE = Gauge("ivr_calls_active", "Calls currently in a flow.", ["flow"], registry=REGISTRY)
CALL_OUTCOMES = Counter(
    "ivr_call_outcomes", "How calls left the IVR (transferred, parked, voicemail, callback, contained, abandoned, "
    "error).", ["flow", "outcome"], registry=REGISTRY,
)
IVR_SECONDS = Histogram(
    "ivr_time_in_ivr_seconds", "Time from entering a flow to leaving it.", ["flow"], buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)
NODE_VISITS = Counter("ivr_node_visits", "Node entries.", ["flow", "node"], registry=REGISTRY)
NODE_EXITS = Counter("ivr_node_exits", "Node exits by reason.", ["flow", "node", "reason"], registry=REGISTRY)
NODE_SECONDS = Histogram(
    "ivr_node_seconds", "Time spent in a node.", ["flow", "node"], buckets=_NODE_BUCKETS, registry=REGISTRY
)
MENU_CHOICES = Counter("ivr_menu_choices", "Menu options chosen.", ["flow", "node", "option"], registry=REGISTRY)
LOOKUPS = Counter("ivr_lookups", "CRM/webhook lookups by result (ok, error, timeout).", ["flow", "node", "result"],
                  registry=REGISTRY)

# --- transfers, parking, recordings ------------------------------------------------------------------------
TRANSFERS = Counter(
    "ivr_transfers", "Transfers by target (extension or queue name from the flow) and result (DIALSTATUS/QUEUESTATUS "
    "in lower case).", ["flow", "target", "result"], registry=REGISTRY,
)
PARKED_NOW = Gauge("ivr_parked_calls", "Calls parked right now.", ["lot"], registry=REGISTRY)
PARKED_SECONDS = Histogram("ivr_parked_seconds", "How long calls stayed parked.", ["lot"], buckets=_CALL_BUCKETS,
                           registry=REGISTRY)
PARK_TIMEOUTS = Counter("ivr_park_timeouts", "Parked calls nobody retrieved in time.", ["lot"], registry=REGISTRY)
RECORDINGS_ACTIVE = Gauge("ivr_recordings_active", "Recordings running now.", registry=REGISTRY)
RECORDINGS_FINISHED = Counter("ivr_recordings_finished", "Recordings finished.", registry=REGISTRY)
RECORDING_SECONDS = Counter("ivr_recording_seconds", "Seconds of audio recorded.", registry=REGISTRY)
VOICEMAILS = Counter("ivr_voicemails", "Voicemail messages stored.", ["flow"], registry=REGISTRY)
CALLBACKS = Counter("ivr_callbacks", "Callback requests by result (requested, attempted, completed, failed).",
                    ["queue", "result"], registry=REGISTRY)

# --- queues (from AMI) -------------------------------------------------------------------------------------
QUEUE_CALLERS = Gauge("ivr_queue_callers", "Callers waiting in the queue.", ["queue"], registry=REGISTRY)
QUEUE_LONGEST_WAIT = Gauge("ivr_queue_longest_wait_seconds", "Wait of the longest-waiting caller.", ["queue"],
                           registry=REGISTRY)
QUEUE_AGENTS = Gauge("ivr_queue_agents", "Queue members by state (available, busy, paused, unavailable).",
                     ["queue", "state"], registry=REGISTRY)
QUEUE_CALLS = Counter("ivr_queue_calls", "Queue calls by result (answered, abandoned, timeout).", ["queue", "result"],
                      registry=REGISTRY)
QUEUE_ANSWERED_IN_SL = Counter("ivr_queue_answered_within_sl", "Calls answered within the service-level threshold.",
                               ["queue"], registry=REGISTRY)
QUEUE_WAIT_SECONDS = Histogram("ivr_queue_wait_seconds", "Time callers waited before answer or abandon.",
                               ["queue", "result"], buckets=_CALL_BUCKETS, registry=REGISTRY)
QUEUE_TALK_SECONDS = Histogram("ivr_queue_talk_seconds", "Talk time of answered queue calls (handle time).",
                               ["queue"], buckets=_CALL_BUCKETS, registry=REGISTRY)
QUEUE_SERVICE_LEVEL = Gauge("ivr_queue_service_level_ratio", "Share of answered calls answered within the "
                            "threshold, since start.", ["queue"], registry=REGISTRY)
QUEUE_SL_THRESHOLD = Gauge("ivr_queue_service_level_threshold_seconds", "Configured service-level threshold.",
                           ["queue"], registry=REGISTRY)

# --- health ------------------------------------------------------------------------------------------------
AMI_UP = Gauge("ivr_ami_up", "1 while the AMI connection is logged in.", registry=REGISTRY)
AMI_RECONNECTS = Counter("ivr_ami_reconnects", "AMI reconnect attempts.", registry=REGISTRY)
AMI_LOGIN_FAILURES = Counter("ivr_ami_login_failures", "AMI logins refused (wrong credentials).", registry=REGISTRY)
AMI_EVENTS = Counter("ivr_ami_events", "AMI events received by name (unknown names as 'other').", ["event"],
                     registry=REGISTRY)
AMI_EVENTS_DROPPED = Counter("ivr_ami_events_dropped", "AMI events dropped because a subscriber's queue was full.",
                             ["subscriber"], registry=REGISTRY)
AMI_ACTION_SECONDS = Histogram("ivr_ami_action_seconds", "AMI action round-trip time.", ["action"],
                               buckets=_LATENCY_BUCKETS, registry=REGISTRY)
AGI_CONNECTIONS_ACTIVE = Gauge("ivr_agi_connections_active", "FastAGI sessions open now.", registry=REGISTRY)
AGI_CONNECTIONS = Counter("ivr_agi_connections", "FastAGI connections by result (ok, noroute, rejected, "
                          "bad_header, error).", ["result"], registry=REGISTRY)
AGI_COMMAND_SECONDS = Histogram("ivr_agi_command_seconds", "AGI command latency (until Asterisk's reply).",
                                ["command"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
AGI_COMMAND_RESULTS = Counter("ivr_agi_command_results", "AGI command results (ok, failure, hangup, dead, invalid, "
                              "usage, timeout).", ["command", "result"], registry=REGISTRY)
CONFIG_RELOADS = Counter("ivr_config_reloads", "Flow reloads by result (ok, failed).", ["result"], registry=REGISTRY)
CONFIG_RELOAD_FAILING = Gauge("ivr_config_reload_failing", "1 while the last reload attempt failed.",
                              registry=REGISTRY)
CONFIG_INFO = Info("ivr_config", "Version of the running flow set.", registry=REGISTRY)

# AMI event names we count by name; anything else is "other" so a peer cannot explode the label set.
KNOWN_EVENTS = frozenset({
    "FullyBooted", "Newchannel", "Newstate", "Newexten", "NewCallerid", "NewConnectedLine", "VarSet", "Hangup",
    "HangupRequest", "SoftHangupRequest", "DialBegin", "DialEnd", "DialState", "BridgeCreate", "BridgeDestroy",
    "BridgeEnter", "BridgeLeave", "ParkedCall", "ParkedCallTimeOut", "ParkedCallGiveUp", "UnParkedCall",
    "ParkedCallSwap", "MixMonitorStart", "MixMonitorStop", "MixMonitorMute", "QueueCallerJoin", "QueueCallerLeave",
    "QueueCallerAbandon", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
    "AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "AgentDump", "OriginateResponse",
    "AGIExecStart", "AGIExecEnd", "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "BlindTransfer",
    "AttendedTransfer", "DTMFBegin", "DTMFEnd", "MusicOnHoldStart", "MusicOnHoldStop", "Hold", "Unhold",
    "CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete", "QueueParams", "QueueMember",
    "QueueEntry", "QueueStatusComplete", "QueueSummary", "QueueSummaryComplete", "ParkedCallsComplete",
    "Shutdown", "Reload", "SuccessfulAuth", "InvalidPassword", "InvalidAccountID", "ChallengeSent",
    "RequestNotAllowed", "RequestBadFormat", "ChanSpyStart", "ChanSpyStop", "LocalBridge", "Cdr", "Cel",
})


def bounded_event(name: str) -> str:
    return name if name in KNOWN_EVENTS else "other"

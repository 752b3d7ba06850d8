"""The dialplan contract: every channel variable, value and context name the service shares with Asterisk's
dialplan (`dialplans/extensions_ivr.conf`), defined once.

Rules for this file:
- No I/O and no imports from the rest of ivr: the AGI router, the flow engine, call control, the simulator and the
  admin tools all import it (like ivr.telephony), so a name cannot differ between the service and its dialplan.
- `IVR_STATUS` is the report the dialplan tests after `AGI()`. The dialplan clears it before every `AGI()`; the
  service sets it. Only a *positive* report ends the call there (`ENDS_CALL`): the flow finished (`OK`), the caller
  is parked (`PARKED`) or was handed to an agent (`AGENT`) whose Dial/Queue connected (the app left
  `ANSWEREDTIME_MS` > 0). Anything else -- empty (the service never reported: unreachable, or it died or lost its
  connection mid-call), `RUNNING`, `NOROUTE`, `ERROR`, `AGENT` without an answer -- sends the caller to a person.
  Default-deny: a value added later that the dialplan does not know also reaches a person, never a hang-up.
- Why markers: an application the service EXECs (Dial, Queue, Park) keeps running inside `AGI()` even when the
  service dies (res_agi runs it to its end and only then sees the closed socket; AGISTATUS is then SUCCESS), so the
  service says what it handed the caller to *before* the EXEC (`AGENT`, `PARKED`) and says `RUNNING` again when the
  caller is back in the flow. docs/dialplan.md has the whole table.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "STATUS",
    "OUTCOME",
    "COMEBACK",
    "TRANSFERRED",
    "RUNNING",
    "AGENT",
    "PARKED",
    "OK",
    "ERROR",
    "NOROUTE",
    "ENDS_CALL",
    "ANSWERED_EVIDENCE",
    "FLOW",
    "NODE",
    "LANG",
    "DID",
    "CALLBACK_QUEUE",
    "CALLBACK_ID",
    "CONTACT_ID",
    "MOH_CLASS",
    "HELD_PARTNER",
    "AGENT_NAME",
    "RECORDING_STATE",
    "RECORDING_FILE",
    "RECORDING_ID",
    "RECORDING_CONSENT",
    "MIXMONITOR_ID",
    "SERVER",
    "OPERATOR",
    "ENTER_CONTEXT",
    "FALLBACK_EXTEN",
    "PARK_COMEBACK_CONTEXT",
    "OUTBOUND_CONTEXT",
    "OUTBOUND_FALLBACK_CONTEXT",
    "QUEUE_CONTEXT",
    "HOLD_CONTEXT",
    "HOLD_WAIT_CONTEXT",
    "DIAL_OUT_CONTEXT",
    "ended_with_report",
]

# -- the report (set by the service, read by the dialplan after AGI()) -----------------------------------------
STATUS: Final = "IVR_STATUS"
OUTCOME: Final = "IVR_OUTCOME"  # transferred | parked | voicemail | callback | contained | abandoned | error

RUNNING: Final = "RUNNING"  # the caller is back in the flow after a Dial/Queue/Park returned
AGENT: Final = "AGENT"  # set right before EXEC Dial/Queue: the caller is handed to an agent
PARKED: Final = "PARKED"  # set right before EXEC Park: the caller waits in a parking lot
OK: Final = "OK"  # the flow finished and reported
ERROR: Final = "ERROR"  # the flow failed
NOROUTE: Final = "NOROUTE"  # no flow for this script path

ENDS_CALL: Final = frozenset({OK, PARKED})  # plus AGENT with ANSWERED_EVIDENCE
# Dial and Queue both clear ANSWEREDTIME_MS when they start and set it (> 0) only after a connected call
# (recorded on Asterisk 22: agi-06/agi-07 .ami; a Queue timeout leaves "0").
ANSWERED_EVIDENCE: Final = "ANSWEREDTIME_MS"

# -- other channel variables -------------------------------------------------------------------------------------
COMEBACK: Final = "IVR_COMEBACK"  # <flow>:<node>, set before Park: where a timed-out parked caller returns
TRANSFERRED: Final = "IVR_TRANSFERRED"  # <kind>:<target>, set by call control before it moves a call out of a flow
FLOW: Final = "IVR_FLOW"  # the flow the dialplan runs (script path)
NODE: Final = "IVR_NODE"  # the node a call is at (live view)
LANG: Final = "IVR_LANG"  # a per-DID or per-callback language
DID: Final = "IVR_DID"  # the dialled number, inherited (__IVR_DID)
CALLBACK_QUEUE: Final = "IVR_CALLBACK_QUEUE"  # on an outbound callback: the queue the request was made for
CALLBACK_ID: Final = "IVR_CALLBACK_ID"  # on an outbound callback: the request's id
CONTACT_ID: Final = "IVR_CONTACT_ID"  # on an outbound campaign call: the contact's id (the flow's ?contact=)
MOH_CLASS: Final = "IVR_MOH_CLASS"  # the music class ivr-hold plays
HELD_PARTNER: Final = "IVR_HELD_PARTNER"  # on a held channel: the channel waiting for it in ivr-hold-wait
AGENT_NAME: Final = "IVR_AGENT"  # on a click-to-call agent leg: the agent
# The flow's recording state travels with the channel (a park comeback's new session reads it back)
RECORDING_STATE: Final = "IVR_RECORDING_STATE"
RECORDING_FILE: Final = "IVR_RECORDING_FILE"
RECORDING_ID: Final = "IVR_RECORDING_ID"
RECORDING_CONSENT: Final = "IVR_RECORDING_CONSENT"
MIXMONITOR_ID: Final = "IVR_MIXMONITOR_ID"  # MixMonitor's i() option: the id StopMixMonitor needs

# [globals] the dialplan reads
SERVER: Final = "IVR_SERVER"  # host:port of the FastAGI service (or an SRV name with hagi://)
OPERATOR: Final = "IVR_OPERATOR"  # the dial string of the operator fallback

# -- contexts and extensions of dialplans/extensions_ivr.conf ---------------------------------------------------
ENTER_CONTEXT: Final = "ivr-enter"
FALLBACK_EXTEN: Final = "fallback"  # ivr-enter,fallback,1: the operator
PARK_COMEBACK_CONTEXT: Final = "ivr-park-comeback"
OUTBOUND_CONTEXT: Final = "ivr-outbound"
OUTBOUND_FALLBACK_CONTEXT: Final = "ivr-outbound-fallback"  # the callback's queue, else the operator
QUEUE_CONTEXT: Final = "ivr-queue"
HOLD_CONTEXT: Final = "ivr-hold"
HOLD_WAIT_CONTEXT: Final = "ivr-hold-wait"
DIAL_OUT_CONTEXT: Final = "ivr-dial-out"


def ended_with_report(status: str, answered_ms: str = "") -> bool:
    """What the dialplan decides after AGI(): True = the call ends there, False = the caller goes to a person.

    `status` is IVR_STATUS, `answered_ms` ANSWEREDTIME_MS (both "" when unset). The dialplan's GotoIf lines say the
    same (tests/sim/test_dialplan_contract.py runs both on the same cases)."""
    if status in ENDS_CALL:
        return True
    return status == AGENT and answered_ms not in ("", "0")

"""Dial() as Asterisk 22's app_dial: the channel variables and Dial events of agi-06, in the recorded order.

agi-06's session (answered and hung up by the agent, no answer in 3 s, busy, no such extension, the caller
hanging up while bridged) is replayed as in test_conformance.py and the simulator's DialBegin/DialEnd, bridge
events and Dial variables of the AGI channel are compared, in order, with the recorded `.ami` companion.
"""

from __future__ import annotations

from .test_queue_fidelity import recorded, simulated

SCENARIO = "agi-06-exec-dial"
DIAL_VARS = {
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
}
KEPT = {"DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave"}


async def test_dial_events_and_variables_as_recorded() -> None:
    """Quoted from agi-06-exec-dial.ami.txt: each Dial starts with "Variable: DIALSTATUS / Value: " ...
    "Variable: PROGRESSTIME_MS / Value: "; the answered one sets "DIALSTATUS / Value: ANSWER", "DIALEDPEERNAME /
    Value: Local/answer2s@agents-00000013;1", "DIALEDPEERNUMBER / Value: answer2s@agents", and after the bridge
    "ANSWEREDTIME / Value: 3", "ANSWEREDTIME_MS / Value: 3005", "DIALEDTIME / Value: 3", "DIALEDTIME_MS / Value:
    3006", "DIALSTATUS / Value: ANSWER"; the agent that does not answer rings: "RINGTIME / Value: 0"; the call the
    caller ends: "ANSWEREDTIME_MS / Value: 9027" -- the calling channel's up time, not the 3 s of talk."""
    want = recorded(0, KEPT, SCENARIO, DIAL_VARS)
    got, variables = await simulated(0, KEPT, SCENARIO, DIAL_VARS)
    assert ("VarSet", "ANSWEREDTIME_MS", "~9000") in want and ("VarSet", "RINGTIME", "0") in want
    assert got == want
    assert variables["DIALSTATUS"] == "ANSWER" and variables["DIALEDPEERNUMBER"] == "talk@agents"

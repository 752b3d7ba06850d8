"""Simulated Asterisk 22 for tests, benchmarks and the demo: FastAGI client, AMI server, PBX model, clocks.

Only tests, bench/, the demo and admin tools import this package; the service's runtime never does.
"""

from ivr.sim.call import AgiRun
from ivr.sim.clock import Clock, RealClock, VirtualClock
from ivr.sim.model import AgentSpec, CallSpec, ParkingLotSpec, QueueSpec, Route, SimConfig
from ivr.sim.script import (
    At,
    CallerScript,
    Hangup,
    NextPrompt,
    OnCommand,
    Press,
    Sleep,
    Speak,
    WhenIdle,
    hangup_during,
    press_on_prompt,
)
from ivr.sim.simulator import Call, CallRecord, Ending, RecordingInfo, SimError, SimulatedAsterisk, TranscriptLine
from ivr.sim.sounds import SoundCatalog

__all__ = [
    "AgentSpec",
    "AgiRun",
    "At",
    "Call",
    "CallRecord",
    "CallSpec",
    "CallerScript",
    "Clock",
    "Ending",
    "Hangup",
    "NextPrompt",
    "OnCommand",
    "ParkingLotSpec",
    "Press",
    "QueueSpec",
    "RealClock",
    "RecordingInfo",
    "Route",
    "SimConfig",
    "SimError",
    "SimulatedAsterisk",
    "Sleep",
    "SoundCatalog",
    "Speak",
    "TranscriptLine",
    "VirtualClock",
    "WhenIdle",
    "hangup_during",
    "press_on_prompt",
]

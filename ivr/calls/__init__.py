"""Call control: the live call registry (from AMI events), operations on calls, and the callback scheduler.

Public names are re-exported here; each lives in its own module (registry, sync, operations, callbacks, ...).
"""

from ivr.calls.callbacks import CallbackPolicy, CallbackScheduler
from ivr.calls.errors import AsteriskUnavailable, CallControlError, InvalidRequest, InvalidState, NotFound, UnknownCall
from ivr.calls.operations import CallOperations, Originated, TransferTarget
from ivr.calls.registry import CallRegistry
from ivr.calls.settings import CallControlSettings
from ivr.calls.sync import RegistrySync
from ivr.calls.wiring import CallControl

__all__ = [
    "AsteriskUnavailable",
    "CallControl",
    "CallControlError",
    "CallControlSettings",
    "CallOperations",
    "CallRegistry",
    "CallbackPolicy",
    "CallbackScheduler",
    "InvalidRequest",
    "InvalidState",
    "NotFound",
    "Originated",
    "RegistrySync",
    "TransferTarget",
    "UnknownCall",
]

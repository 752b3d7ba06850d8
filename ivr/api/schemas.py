"""Request bodies of the HTTP API (pydantic): shapes and simple bounds; deeper checks live in ivr.calls.validate.

Rules for this file:
- Unknown fields are errors (a typo must not be silently ignored), so every model forbids extras.
- These models are also the OpenAPI request schemas (`model_json_schema`), so the document cannot drift from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmptyBody(Body):
    """Actions without parameters accept no body, `{}`, and nothing else."""


class OriginateBody(Body):
    """Click-to-call (`agent` + `number`) or an outbound call into a flow (`flow` + `number`)."""

    number: str = Field(
        description="Customer number to call, digits with an optional leading +.", examples=["+37060000001"]
    )
    agent: str | None = Field(None, description="Agent extension rung first (click-to-call).")
    flow: str | None = Field(None, description="Flow the answered call runs (outbound into a flow).")
    caller_id: str | None = Field(None, max_length=80, description="Caller ID shown to the called party.")
    timeout: float | None = Field(None, gt=0, le=300, description="Ring time in seconds.")
    variables: dict[str, str] = Field(
        default_factory=dict,
        max_length=20,
        description="Channel variables for the flow (flow calls only): names of letters, digits and _ not "
        "starting with IVR_; values without commas, backslashes, double quotes or control characters.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> OriginateBody:
        if (self.agent is None) == (self.flow is None):
            raise ValueError("give exactly one of agent (click-to-call) or flow (outbound into a flow)")
        if self.agent is not None and self.variables:
            raise ValueError("variables only go with flow calls")
        return self


class TransferBody(Body):
    extension: str | None = None
    queue: str | None = None
    flow: str | None = None
    mode: Literal["blind", "attended"] = "blind"
    channel: str | None = Field(
        None,
        description="Channel that performs the transfer (default: chosen by role); "
        "on a held call only the held caller, whose waiting partner is released.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> TransferBody:
        if sum(x is not None for x in (self.extension, self.queue, self.flow)) != 1:
            raise ValueError("give exactly one target: extension, queue or flow")
        return self


class ParkBody(Body):
    lot: str = "default"
    timeout: float | None = Field(None, ge=1, le=3600, description="Seconds before the call comes back.")
    channel: str | None = None


class RetrieveBody(Body):
    agent: str = Field(description="Extension that picks the parked call up.")
    timeout: float | None = Field(None, gt=0, le=300)


class HoldBody(Body):
    moh_class: str | None = Field(None, description="Music on hold class (default from the settings).")


class RecordBody(Body):
    channel: str | None = Field(None, description="Channel to record (default: the caller's).")


class SpyBody(Body):
    supervisor: str = Field(description="Supervisor extension that is rung and then listens.")
    mode: Literal["listen", "whisper", "barge"] = "listen"
    channel: str | None = Field(None, description="Channel to spy on (default: the agent's).")


class MemberLoginBody(Body):
    interface: str = Field(examples=["PJSIP/1001"])
    name: str | None = Field(None, max_length=80)
    penalty: int | None = Field(None, ge=0, le=1000)
    paused: bool = False
    reason: str | None = Field(None, max_length=80)
    state_interface: str | None = None


class MemberBody(Body):
    interface: str = Field(examples=["PJSIP/1001"])


class MemberPauseBody(Body):
    interface: str
    reason: str | None = Field(None, max_length=80)


class CallbackBody(Body):
    number: str = Field(examples=["+37060000001"], description="Must match callbacks.number_pattern.")
    queue: str
    flow: str | None = Field(None, description="Flow the answered call runs (default: callbacks.flow).")
    caller_name: str = Field("", max_length=80)
    language: str = Field(
        "",
        pattern=r"^([a-z]{2,3}(_[A-Za-z]{2})?)?$",
        examples=["lt", "en_GB"],
        description="Language the callback flow speaks (default: the flow's).",
    )
    not_before: datetime | None = None
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="At most callbacks.max_attempts (also the default)."
    )


ALL_BODIES: tuple[type[Body], ...] = (
    EmptyBody,
    OriginateBody,
    TransferBody,
    ParkBody,
    RetrieveBody,
    HoldBody,
    RecordBody,
    SpyBody,
    MemberLoginBody,
    MemberBody,
    MemberPauseBody,
    CallbackBody,
)

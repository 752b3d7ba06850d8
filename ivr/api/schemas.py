"""What the HTTP API accepts (pydantic): request bodies, query parameters and path parameters, with their rules.

Rules for this file:
- These models are what the server validates with AND what the OpenAPI document is generated from
  (ivr.api.openapi): a rule written here is enforced and documented at once, so the two cannot drift.
- Unknown body fields are errors (a typo must not be silently ignored): every body model forbids extras, and is
  strict (no "30" for 30, no "yes" for true, no NaN), as its JSON Schema says.
- Names, extensions, numbers, interfaces and channels carry the same patterns as ivr.telephony /
  ivr.calls.validate (which call control still applies); free text refuses control characters.
- "Exactly one of" rules are model validators AND `oneOf` in the model's JSON Schema, next to each other.
- Integers in paths and queries are ASCII digits only (no `1_0`, `+1`, ` 1` or non-ASCII digits); date-times are
  RFC 3339 with an offset, and must stay in range once converted to UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict, JsonValue

from ivr import telephony
from ivr.calls import validate
from ivr.calls.model import CALL_STATES
from ivr.campaigns.model import CampaignSettings
from ivr.storage import CALLBACK_STATES, CONTACT_STATES, RECORDING_STATES

# --- field types -------------------------------------------------------------------------------------------------

# What each pattern means, in words: a 422 says this instead of the regular expression.
PATTERN_HINTS: dict[str, str] = {}


def _pattern(pattern: str, hint: str, **field: Any) -> Any:
    PATTERN_HINTS[pattern] = hint
    return Field(pattern=pattern, **field)


Extension = Annotated[
    str,
    _pattern(f"^{telephony.EXTENSION_RE.pattern}$", "use letters, digits and _-+*# (at most 40)", examples=["1001"]),
]
Name = Annotated[
    str, _pattern(f"^{telephony.QUEUE_RE.pattern}$", "use letters, digits, _ and - (at most 64)", examples=["sales"])
]
Number = Annotated[
    str,
    _pattern(validate.NUMBER_PATTERN, "use digits with an optional leading + (at most 32)", examples=["+37060000001"]),
]
Interface = Annotated[
    str,
    _pattern(validate.INTERFACE_PATTERN, "write it like PJSIP/1001 or Local/1001@agents", examples=["PJSIP/1001"]),
]
Channel = Annotated[
    str,
    _pattern(validate.CHANNEL_PATTERN, "a channel name such as PJSIP/1001-00000001", examples=["PJSIP/1001-00000001"]),
]
Text = Annotated[
    str,
    _pattern(
        validate.TEXT_PATTERN,
        "at most 80 characters without control characters",
        description="At most 80 characters, no control characters.",
    ),
]
VariableName = Annotated[
    str, _pattern(validate.VARIABLE_NAME_PATTERN, "use a letter, then letters, digits and _ (at most 64)")
]
VariableValue = Annotated[
    str,
    _pattern(
        r'^[^,\\"\x00-\x1f\x7f]{0,256}$',
        "at most 256 characters without commas, backslashes, double quotes or control characters "
        "(Asterisk would split the variable)",
    ),
]
LANGUAGE_PATTERN = r"^([a-z]{2,3}(_[A-Za-z]{2})?)?$"
PATTERN_HINTS[LANGUAGE_PATTERN] = "write a language code like en, lt or en_GB"
FLOW_NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"  # the `name` rule of ivr.flow.model.Flow
RESERVED_VARIABLE_PREFIX = "^[Ii][Vv][Rr]_"

MAX_ROW_ID = 2**63 - 1  # ids are signed 64-bit in every database the storage uses
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def ascii_int(value: Any) -> Any:
    """A query or path integer as ASCII digits only: int() alone would take `1_0`, ` 1`, `+1` and `١`."""
    if isinstance(value, str):
        if not _ASCII_DIGITS.fullmatch(value):
            raise ValueError("must be a whole number written with the digits 0-9 (at most 19 of them)")
        return int(value)
    return value


def utc_datetime(value: Any) -> datetime:
    """An RFC 3339 date-time with an offset (`2026-11-30T09:00:00Z`, `...+02:00`), returned in UTC.

    A time without an offset is refused (whose time zone would it be?); a time that leaves the range of
    `datetime` once converted to UTC (`0001-01-01T00:00:00+01:00`) is refused instead of failing later.
    Hand-written rather than pydantic's datetime: that one also takes Unix timestamps, dates alone, a space for
    the `T` and naive times, none of which is the `format: date-time` the document promises."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string like 2026-11-30T09:00:00Z")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-11-30T09:00:00Z or +02:00")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")  # datetime keeps microseconds
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date-time, or is out of range once converted to UTC") from None


UtcDateTime = Annotated[
    datetime,
    PlainValidator(utc_datetime),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
QueryInt = Annotated[int, BeforeValidator(ascii_int)]
RowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID), BeforeValidator(ascii_int)]


def _exactly_one(*fields: str, empty: dict[str, list[str]] | None = None) -> list[JsonValue]:
    """`oneOf` branches: field given as a string; `empty[field]` lists objects that must then stay empty."""
    branches: list[JsonValue] = []
    for name in fields:
        properties: JsonDict = {name: {"type": "string"}}
        for other in (empty or {}).get(name, []):
            properties[other] = {"maxProperties": 0}
        branches.append({"required": [name], "properties": properties})
    return branches


# --- request bodies ----------------------------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class EmptyBody(Body):
    """Actions without parameters accept no body, `{}`, and nothing else."""


class OriginateBody(Body):
    """Click-to-call (`agent` + `number`) or an outbound call into a flow (`flow` + `number`)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": _exactly_one("agent", "flow", empty={"agent": ["variables"]})}
    )

    number: Number = Field(description="Customer number to call, digits with an optional leading +.")
    agent: Extension | None = Field(None, description="Agent extension rung first (click-to-call).")
    flow: Name | None = Field(None, description="Flow the answered call runs (outbound into a flow).")
    caller_id: Text | None = Field(None, description="Caller ID shown to the called party.")
    timeout: float | None = Field(None, gt=0, le=300, description="Ring time in seconds.")
    variables: dict[VariableName, VariableValue] = Field(
        default_factory=dict,
        max_length=20,
        description="Channel variables for the flow (flow calls only): names of letters, digits and _ not "
        "starting with IVR_; values without commas, backslashes, double quotes or control characters.",
        json_schema_extra={
            "additionalProperties": False,
            "propertyNames": {"not": {"pattern": RESERVED_VARIABLE_PREFIX}},
        },
    )

    @field_validator("variables")
    @classmethod
    def _not_reserved(cls, variables: dict[str, str]) -> dict[str, str]:
        for key in variables:
            if re.match(RESERVED_VARIABLE_PREFIX, key):
                raise ValueError(f"variable name {key!r} is reserved: IVR_* variables are set by this service")
        return variables

    @model_validator(mode="after")
    def _one_kind(self) -> OriginateBody:
        if (self.agent is None) == (self.flow is None):
            raise ValueError("give exactly one of agent (click-to-call) or flow (outbound into a flow)")
        if self.agent is not None and self.variables:
            raise ValueError("variables only go with flow calls")
        return self


class TransferBody(Body):
    model_config = ConfigDict(json_schema_extra={"oneOf": _exactly_one("extension", "queue", "flow")})

    extension: Extension | None = None
    queue: Name | None = None
    flow: Name | None = None
    mode: Literal["blind", "attended"] = "blind"
    channel: Channel | None = Field(
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
    lot: Name = "default"
    timeout: float | None = Field(None, ge=1, le=3600, description="Seconds before the call comes back.")
    channel: Channel | None = None


class RetrieveBody(Body):
    agent: Extension = Field(description="Extension that picks the parked call up.")
    timeout: float | None = Field(None, gt=0, le=300)


class HoldBody(Body):
    moh_class: Name | None = Field(None, description="Music on hold class (default from the settings).")


class RecordBody(Body):
    channel: Channel | None = Field(None, description="Channel to record (default: the caller's).")


class SpyBody(Body):
    supervisor: Extension = Field(description="Supervisor extension that is rung and then listens.")
    mode: Literal["listen", "whisper", "barge"] = "listen"
    channel: Channel | None = Field(None, description="Channel to spy on (default: the agent's).")


class MemberLoginBody(Body):
    interface: Interface
    name: Text | None = Field(None, description="Member name shown in the queue (no control characters).")
    penalty: int | None = Field(None, ge=0, le=1000)
    paused: bool = False
    reason: Text | None = Field(None, description="Pause reason when logging in paused.")
    state_interface: Interface | None = None


class MemberBody(Body):
    interface: Interface


class MemberPauseBody(Body):
    interface: Interface
    reason: Text | None = None


class CallbackBody(Body):
    number: Number = Field(description="Must match callbacks.number_pattern.")
    queue: Name
    flow: Name | None = Field(None, description="Flow the answered call runs (default: callbacks.flow).")
    caller_name: Text = Field("", description="Name of the customer; control characters are refused.")
    language: str = Field(
        "",
        pattern=LANGUAGE_PATTERN,
        examples=["lt", "en_GB"],
        description="Language the callback flow speaks (default: the flow's).",
    )
    not_before: UtcDateTime | None = Field(None, description="First attempt not before (RFC 3339, with an offset).")
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="At most callbacks.max_attempts (also the default)."
    )


class CampaignBody(Body):
    """A new campaign (created `draft`: upload contacts, then start it)."""

    name: Name = Field(description="Unique; list it in campaigns.names to give it its own metric series.")
    flow: Name = Field(description="The flow an answered contact runs (it hands the contact to the queue).")
    queue: Name = Field(description="The queue whose available agents pace the campaign and take its calls.")
    settings: CampaignSettings


class DncBody(Body):
    numbers: list[Number] = Field(min_length=1, max_length=1000, description="Numbers never to be called.")
    reason: Text = Field("", description="Why (the customer asked, a complaint, ...).")


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
    CampaignBody,
    DncBody,
)


# --- query parameters --------------------------------------------------------------------------------------------


class Query(BaseModel):
    """Query parameters: each field is one parameter. An unknown parameter is an error, as in bodies: a typo
    (`?stat=parked`) must not silently list everything."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CallsQuery(Query):
    state: Literal[CALL_STATES] | None = None  # type: ignore[valid-type]
    pbx: str | None = Field(
        None,
        pattern=telephony.PBX_NAME_PATTERN,
        description="An Asterisk server's name (ami.servers): only its calls. An unknown name matches no call.",
    )


class RecordingsQuery(Query):
    call_id: str | None = None
    caller: str | None = None
    agent: str | None = None
    flow: str | None = None
    queue: str | None = None
    state: Literal[RECORDING_STATES] | None = None  # type: ignore[valid-type]
    since: UtcDateTime | None = Field(None, description="Recordings started at or after (RFC 3339, with an offset).")
    until: UtcDateTime | None = Field(None, description="Recordings started before (RFC 3339, with an offset).")
    limit: QueryInt = Field(100, ge=1, le=1000)
    offset: QueryInt = Field(0, ge=0, le=10_000_000)


class CallbacksQuery(Query):
    state: Literal[CALLBACK_STATES] | None = None  # type: ignore[valid-type]
    queue: str | None = None
    limit: QueryInt = Field(100, ge=1, le=1000)


class SurveysQuery(Query):
    since: UtcDateTime | None = Field(None, description="Answers given at or after (RFC 3339, with an offset).")
    until: UtcDateTime | None = Field(None, description="Answers given before (RFC 3339, with an offset).")
    flow: str | None = None
    queue: str | None = None
    question: str | None = Field(None, description="A question id of a survey node.")
    format: Literal["json", "csv"] | None = Field(
        None, description="csv: a CSV export (as with Accept: text/csv); default JSON."
    )
    limit: QueryInt = Field(1000, ge=1, le=100_000)
    offset: QueryInt = Field(0, ge=0, le=10_000_000)


class ContactsQuery(Query):
    state: Literal[CONTACT_STATES] | None = None  # type: ignore[valid-type]
    limit: QueryInt = Field(100, ge=1, le=1000)
    offset: QueryInt = Field(0, ge=0, le=10_000_000)


class DncQuery(Query):
    number: Number | None = Field(
        None, description="Only this number (is it listed?). Write its + as %2B: ?number=%2B37060000001."
    )

    @field_validator("number", mode="before")
    @classmethod
    def _plus_written_as_2b(cls, value: object) -> object:
        if isinstance(value, str) and value.startswith(" "):  # a bare + in a query string decodes to a space
            raise ValueError("a + in a query string reads as a space; write it %2B: ?number=%2B37060000001")
        return value

    limit: QueryInt = Field(100, ge=1, le=1000)
    offset: QueryInt = Field(0, ge=0, le=10_000_000)


class VoicemailQuery(Query):
    mailbox: str | None = None
    limit: QueryInt = Field(100, ge=1, le=1000)


GRAPH_FORMATS = {"svg": "image/svg+xml", "mermaid": "text/plain", "dot": "text/vnd.graphviz", "png": "image/png"}


class GraphQuery(Query):
    format: Literal["svg", "mermaid", "dot", "png"] = "svg"


# --- path parameters ---------------------------------------------------------------------------------------------


class PathParams(BaseModel):
    """Every `{name}` of the routes, with its rule. A value that breaks the rule names nothing: 404."""

    # `not`: the concrete paths /calls/originate and /flows/reload are other operations (the routes say the same).
    call_id: str = Field(
        min_length=1,
        description="The call's Linkedid (or our own ChannelId, ivr-...).",
        json_schema_extra={"not": {"const": "originate"}},
    )
    lot: Name
    queue: Name
    name: str = Field(
        pattern=FLOW_NAME_PATTERN, description="Flow name.", json_schema_extra={"not": {"const": "reload"}}
    )
    recording_id: RowId
    callback_id: RowId
    campaign_id: RowId
    contact_id: RowId
    number: Number
    asset: str = Field(pattern=r"^[A-Za-z0-9_-]+\.(html|css|js)$", description="A file of the supervisor console.")

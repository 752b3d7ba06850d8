"""The flow test-case language (`config/flows/<flow>.test.yaml`): one typed model, errors at file:line:column.

Rules for this file:
- Shape only: what a case says about the caller, the world and the expected result. Running a case lives in
  `runner.py`, checking a result against `Expect` in `verdict.py`.
- Every model forbids unknown keys (a typo is an error with "did you mean", never a silently ignored check).
- Times: `at: 2026-12-24T19:30` is local time in the flow's time zone (an explicit offset wins), the same rule
  as `simulate --at`.
- Caller actions reuse `caller.Step`, so `digits: "1,2w3"` here means what `--digits 1,2w3` means in simulate.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ivr.flow.model import Digits, Duration
from ivr.flowtest.caller import ScriptSyntaxError, Step, parse_digits
from ivr.yamlsource import ConfigError, load_yaml, problems_from_validation

AgentBehaviour = Literal["answer", "busy", "no_answer", "unavailable", "congestion"]
QueueBehaviour = Literal["answer", "timeout", "empty", "full"]
Outcome = Literal["transferred", "parked", "voicemail", "callback", "contained", "abandoned", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


def _action_shorthand(value: Any) -> Any:
    # `- wait` and `- hangup` stand for `{wait: true}` / `{hangup: true}`.
    if value in ("wait", "hangup"):
        return {value: True}
    return value


class Action(_Strict):
    """One thing the caller does. Exactly one of press / wait / hangup; optionally when."""

    press: Digits | None = Field(None, description="Digits pressed together (e.g. '1' or '123456#').")
    wait: bool = Field(False, description="Let one listen time out (no input).")
    hangup: bool = Field(False, description="Hang up.")
    at: Duration | None = Field(None, description="Not before this long after the answer (e.g. 12s).")
    after_prompt: str | None = Field(None, description="Not before this prompt id has been heard.")
    barge_in: bool = Field(False, description="Press during the prompt instead of after it.")

    @model_validator(mode="after")
    def _one(self) -> Action:
        chosen = [k for k, v in (("press", self.press is not None), ("wait", self.wait), ("hangup", self.hangup)) if v]
        if len(chosen) != 1:
            raise ValueError("an action is exactly one of: press, wait, hangup")
        return self

    def step(self) -> Step:
        action = "press" if self.press is not None else ("wait" if self.wait else "hangup")
        return Step(action, self.press or "", self.at, self.after_prompt, self.barge_in)  # type: ignore[arg-type]


ActionItem = Annotated[Action, BeforeValidator(_action_shorthand)]


class Caller(_Strict):
    number: str = Field("+37060000001", description="Caller ID number.")
    name: str = ""
    language: str | None = Field(None, description="Channel language when the call arrives (default: the flow's).")
    at: datetime | None = Field(
        None,
        description="When the call happens (flow's local time unless an offset is given); default: a Monday 10:00.",
    )
    digits: str | None = Field(None, description="Shorthand script: '1,2w3', see docs/admin-tools.md.")
    actions: list[ActionItem] = Field(default_factory=list)
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters of the AGI URL.")

    @model_validator(mode="after")
    def _script(self) -> Caller:
        if self.digits is not None and self.actions:
            raise ValueError("give either digits or actions, not both")
        if self.digits is not None:
            try:
                parse_digits(self.digits)
            except ScriptSyntaxError as exc:
                raise ValueError(str(exc)) from None
        return self

    def steps(self) -> list[Step]:
        if self.digits is not None:
            return parse_digits(self.digits)
        return [a.step() for a in self.actions]


class Ends(_Strict):
    """Where the call leaves the IVR. Give one key."""

    transfer: str | None = Field(None, description="Extension (or dial string) the call was put through to.")
    queue: str | None = None
    park: str | None = Field(None, description="Parking lot.")
    voicemail: str | None = Field(None, description="Mailbox.")
    callback: str | None = Field(None, description="Queue of the callback request.")
    hangup: str | None = Field(None, description="The IVR hung up at this node (id).")
    caller_hangup: str | None = Field(None, description="The caller hung up at this node (id).")

    @model_validator(mode="after")
    def _one(self) -> Ends:
        if len(self.given()) != 1:
            raise ValueError(
                "ends needs exactly one of: transfer, queue, park, voicemail, callback, hangup, caller_hangup"
            )
        return self

    def given(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Expect(_Strict):
    path: list[str] | None = Field(None, description="Nodes visited in this order (others may come between).")
    exact_path: list[str] | None = Field(None, description="Exactly these nodes, in this order.")
    not_visited: list[str] = Field(default_factory=list)
    prompts: list[str] | None = Field(None, description="Prompt ids heard in this order (others may come between).")
    variables: dict[str, str] = Field(default_factory=dict)
    language: str | None = None
    outcome: Outcome | None = None
    ends: Ends | None = None
    recorded: bool | None = Field(None, description="Whether the call was recorded (recording policy, consent).")
    callback_number: str | None = Field(None, description="Number stored with the callback request.")
    voicemail_from: str | None = Field(None, description="Caller stored with the voicemail message.")

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.path is not None and self.exact_path is not None:
            raise ValueError("give path (a subsequence) or exact_path, not both")
        if not any(
            (
                self.path,
                self.exact_path,
                self.not_visited,
                self.prompts,
                self.variables,
                self.language,
                self.outcome,
                self.ends,
                self.recorded is not None,
                self.callback_number,
                self.voicemail_from,
            )
        ):
            raise ValueError("expect says nothing; give path, exact_path, ends, outcome, variables ...")
        return self


class Case(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    start: str | None = Field(None, description="Start at this node instead of the flow's start.")
    caller: Caller = Field(default_factory=Caller)
    lookups: dict[str, Any] = Field(
        default_factory=dict,
        description="Answers by URL, flow:node or node id; "
        "{$error: timeout|status|bad_json|connection} makes the lookup fail.",
    )
    agents: dict[str, AgentBehaviour | list[AgentBehaviour]] = Field(
        default_factory=dict, description="Extension -> behaviour, or a list for successive calls (last repeats)."
    )
    queues: dict[str, QueueBehaviour | list[QueueBehaviour]] = Field(
        default_factory=dict, description="Queue -> behaviour, or a list for successive calls (last repeats)."
    )
    parking: Literal["retrieved", "timeout"] = "timeout"
    expect: Expect


class TestFile(_Strict):
    flow: str | None = Field(None, description="Flow under test (default: the file name before .test.yaml).")
    caller: Caller | None = Field(None, description="Defaults for every case's caller.")
    cases: list[Case] = Field(min_length=1)

    def case_callers(self) -> list[Caller]:
        """Each case's caller with the file's defaults filled in for what the case does not say."""
        if self.caller is None:
            return [case.caller for case in self.cases]
        result = []
        for case in self.cases:
            update = {key: getattr(case.caller, key) for key in case.caller.model_fields_set}
            result.append(self.caller.model_copy(update=update))
        return result


TEST_SUFFIXES = (".test.yaml", ".test.yml")


def flow_name_of(path: Path) -> str:
    for suffix in TEST_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def load_test_file(path: Path) -> TestFile:
    """Parse and check one test file; `ConfigError` lists every problem at file:line:column."""
    document = load_yaml(path)
    try:
        spec = TestFile.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, TestFile, document.positions, data=document.data)) from None
    if spec.flow is None:
        spec = spec.model_copy(update={"flow": flow_name_of(path)})
    names = [case.name for case in spec.cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        index = names.index(duplicates[0], names.index(duplicates[0]) + 1)
        raise ConfigError(
            [
                document.positions.problem(
                    ("cases", index, "name"),
                    f"duplicate case name {duplicates[0]!r}",
                    "give every case its own name",
                    at_key=False,
                    code="duplicate-case",
                )
            ]
        )
    return spec


def find_test_files(target: Path) -> list[Path]:
    """A test file, or every *.test.yaml in a directory."""
    if target.is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.is_file() and p.name.endswith(TEST_SUFFIXES))


def json_schema() -> dict[str, Any]:
    """JSON Schema of test files (for editors: `# yaml-language-server: $schema=...`)."""
    schema = TestFile.model_json_schema()
    # An action may also be one of the words `wait` / `hangup` (the validator's shorthand).
    actions = schema["$defs"]["Caller"]["properties"]["actions"]
    actions["items"] = {"anyOf": [{"enum": ["wait", "hangup"]}, actions["items"]]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ivr flow test cases (config/flows/<flow>.test.yaml)"
    return schema

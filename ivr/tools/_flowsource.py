"""Find and load the flows an admin tool works on: by name from the flows directory, or by file path.

Rules for this file:
- Parsing goes through `ivr.yamlsource` (positions) and the model, so errors are file:line:column; this file
  only resolves what the admin typed (`main`, `config/flows/main.yaml`) into flows.
- The whole directory is loaded even when one flow is asked for: cross-flow links (`flow:node`) need the others.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ivr.flow.model import Flow
from ivr.yamlsource import ConfigError, Problem, load_yaml, problems_from_validation

DEFAULT_FLOWS_DIR = Path("config/flows")


class FlowSourceError(Exception):
    """A flow could not be found or loaded; the message says which and why."""


def _is_flow_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and not path.name.endswith((".test.yaml", ".test.yml"))


def load_directory(directory: Path) -> dict[str, Flow]:
    """Every flow of a directory, by name, with located errors."""
    if not directory.is_dir():
        raise FlowSourceError(f"{directory} is not a directory of flows (expected config/flows/*.yaml)")
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in sorted(p for p in directory.iterdir() if _is_flow_file(p)):
        try:
            flow = load_flow_file(path)
        except ConfigError as exc:
            problems += exc.errors
            continue
        flows[flow.name] = flow
    if problems:
        raise FlowSourceError(f"the flows in {directory} do not load:\n" + "\n".join(p.format() for p in problems))
    return flows


def load_flow_file(path: Path) -> Flow:
    """One flow file -> Flow; `ConfigError` with file:line:column problems when it does not fit the language."""
    document = load_yaml(path)
    try:
        return Flow.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, Flow, document.positions, data=document.data)) from None


def resolve(spec: str, flows_dir: Path | None = None) -> tuple[Flow, dict[str, Flow]]:
    """`spec` is a flow name (looked up in `flows_dir`) or a path to a flow file. Returns the flow and all flows
    of its directory (for cross-flow links)."""
    path = Path(spec)
    if _is_flow_file(path) and path.is_file():
        flows = load_directory(path.parent)
        try:
            name = load_flow_file(path).name
        except ConfigError as exc:
            raise FlowSourceError(str(exc)) from None
        return flows[name], flows
    directory = flows_dir or DEFAULT_FLOWS_DIR
    flows = load_directory(directory)
    if spec not in flows:
        known = ", ".join(sorted(flows)) or "none"
        raise FlowSourceError(f"no flow named {spec!r} in {directory} (flows: {known}); give a name or a .yaml path")
    return flows[spec], flows

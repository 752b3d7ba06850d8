"""Find and load the flows an admin tool works on: by name from the flows directory, or by file path.

Rules for this file:
- Loading and validation belong to `ivr.flow.loader` (located file:line:column problems); this file only resolves
  what the admin typed (`main`, `config/flows/main.yaml`) and turns loader errors into one `FlowSourceError`.
- The whole directory is loaded even when one flow is asked for: cross-flow links (`flow:node`) need the others.
"""

from __future__ import annotations

from pathlib import Path

from ivr.flow.loader import FlowSet, load_flows
from ivr.flow.model import Flow
from ivr.yamlsource import ConfigError

DEFAULT_FLOWS_DIR = Path("config/flows")


class FlowSourceError(Exception):
    """A flow could not be found or loaded; the message says which and why."""


def load_flow_set(directory: Path, *, check: bool = True) -> FlowSet:
    """Every flow of a directory. `check` runs the graph checks too (the engine should only run checked flows;
    a picture of a broken flow is still useful, so `graph` passes False)."""
    try:
        return load_flows(directory, check=check)
    except ConfigError as exc:
        raise FlowSourceError(f"the flows in {directory} do not load:\n{exc}") from None


def resolve(spec: str, flows_dir: Path | None = None, *, check: bool = True) -> tuple[Flow, FlowSet]:
    """`spec` is a flow name (looked up in `flows_dir`, default config/flows) or a path to a flow file.
    Returns the flow and the set of its directory (for cross-flow links)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        flow_set = load_flow_set(path.parent, check=check)
        for name, source in flow_set.sources.items():
            if source.file.resolve() == path.resolve():
                return flow_set[name], flow_set
        raise FlowSourceError(f"{path} is not a flow file (test cases end in .test.yaml)")
    directory = flows_dir or DEFAULT_FLOWS_DIR
    flow_set = load_flow_set(directory, check=check)
    if spec not in flow_set:
        known = ", ".join(flow_set.names()) or "none"
        raise FlowSourceError(f"no flow named {spec!r} in {directory} (flows: {known}); give a name or a .yaml path")
    return flow_set[spec], flow_set

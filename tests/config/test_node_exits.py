"""Each node kind lists its own exits (`ivr.flow.model`); validation and the flow graph read only that list.

These tests keep the list honest: every node reference a node holds, in whatever field, must be one of its written
exits, so a new branch field cannot be validated or drawn without being described.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ivr.flow.loader import load_flows
from ivr.flow.model import Flow, NodeBase, NodeRef
from ivr.flow.validate import node_refs, with_inline
from ivr.flowgraph.graph import build_graph

ROOT = Path(__file__).resolve().parents[2]
NODE_REF_PATTERN = repr(NodeRef.__metadata__[0].metadata[0].pattern)[1:-1]  # as it shows in a repr


def _flows() -> list[Flow]:
    flows: list[Flow] = []
    for folder in (ROOT / "config" / "flows", ROOT / "tests" / "tools" / "fixtures"):
        flows.extend(load_flows(folder).flows.values())
    return flows


def _held_refs(model: BaseModel, path: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    """Paths of every node reference a node holds, found from the model's field types (inline nodes excluded)."""
    found: set[tuple[Any, ...]] = set()
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = info.alias or name
        holds_ref = NODE_REF_PATTERN in repr(info.annotation) + repr(info.metadata)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
        if items is None:
            items = [(None, value)]
        for sub, item in items:
            where = path + (key,) + (() if sub is None else (sub,))
            if isinstance(item, str) and holds_ref:
                found.add(where)
            elif isinstance(item, BaseModel) and not isinstance(item, NodeBase):
                found |= _held_refs(item, where)
    return found


def test_shipped_flows_use_every_node_kind() -> None:
    kinds = {inner.type for flow in _flows() for node in flow.nodes.values() for inner, _ in with_inline(node, ())}
    assert kinds >= {"play", "menu", "input", "route", "transfer", "voicemail", "callback", "hangup", "goto"}


@pytest.mark.parametrize("flow", _flows(), ids=lambda flow: flow.name)
def test_every_held_reference_is_a_written_exit(flow: Flow) -> None:
    for node_id, node in flow.nodes.items():
        for inner, path in with_inline(node, ("nodes", node_id)):
            written = {exit_.path for exit_ in inner.exits(flow.language) if exit_.written and exit_.inline is None}
            assert _held_refs(inner) == written, (node_id, path)
        assert {ref.path for ref in node_refs(node_id, node)} >= {("nodes", node_id) + p for p in _held_refs(node)}


@pytest.mark.parametrize("flow", _flows(), ids=lambda flow: flow.name)
def test_graph_draws_one_arrow_per_exit(flow: Flow) -> None:
    graph = build_graph(flow)
    exits = [
        (nid, exit_.key)
        for node_id, node in flow.nodes.items()
        for inner, path in with_inline(node, ())
        for nid in [".".join([node_id, *(str(p) for p in path[1::2])])]
        for exit_ in inner.exits(flow.language)
    ]
    assert sorted((edge.src, edge.key) for edge in graph.edges) == sorted(exits)

"""The compiled flow (ivr/flow/compiled.py): generated from the models, equal to them field by field, read-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ivr.flow import codegen, compiled
from ivr.flow.engine import FlowEngine
from ivr.flow.loader import load_flows

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_in_module_is_what_the_models_generate() -> None:
    assert codegen.TARGET.read_text() == codegen.generate(), "run: python -m ivr.flow.codegen"


def _same(model: Any, plain: Any, path: str) -> None:
    """`plain` holds exactly what `model` holds: same fields in the same order, same values and value types."""
    if isinstance(model, BaseModel):
        assert type(plain).__name__ == type(model).__name__, path
        assert tuple(type(model).model_fields) == type(plain).__slots__, path
        for name in type(model).model_fields:
            _same(getattr(model, name), getattr(plain, name), f"{path}.{name}")
    elif isinstance(model, dict):
        assert type(plain) is dict and list(model) == list(plain), path
        for key in model:
            _same(model[key], plain[key], f"{path}[{key}]")
    elif isinstance(model, list):
        assert type(plain) is list and len(model) == len(plain), path
        for index, (a, b) in enumerate(zip(model, plain, strict=True)):
            _same(a, b, f"{path}[{index}]")
    else:
        assert type(plain) is type(model) and plain == model, (path, model, plain)


def test_compiled_flows_hold_what_the_validated_models_hold() -> None:
    from ivr.flow.model import NODE_KINDS, all_nodes

    flow_set = load_flows(ROOT / "config" / "flows")
    # the sample flows use every node kind (inline menu options, rules with `in`, `else` included)
    assert {node.type for flow in flow_set.flows.values() for node in all_nodes(flow)} == set(NODE_KINDS)
    for name, flow in flow_set.flows.items():
        plain = compiled.compile_flow(flow)
        _same(flow, plain, name)
        # classic AGI decodes the JSON text of the same form: the very same objects
        text = json.dumps(flow.model_dump(mode="json", by_alias=True))
        assert compiled.decode_flow(json.loads(text)) == plain


def test_every_node_kind_has_a_compiled_class() -> None:
    from ivr.flow.model import NODE_KINDS

    assert sorted(compiled.NODE_CLASSES) == sorted(NODE_KINDS)


def test_compiled_objects_are_read_only() -> None:
    flow = compiled.compile_flow(load_flows(ROOT / "config" / "flows").flows["main"])
    with pytest.raises(AttributeError):
        flow.start = "elsewhere"  # type: ignore[misc]
    node = flow.nodes[flow.start]
    with pytest.raises(AttributeError):
        node.description = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del node.description  # type: ignore[misc]


def test_the_engine_runs_compiled_flows_and_keeps_the_set_s_version_and_sources() -> None:
    flow_set = load_flows(ROOT / "config" / "flows")
    engine = FlowEngine(flow_set)
    assert all(type(flow) is compiled.Flow for flow in engine.flows.values())
    assert engine.version == flow_set.version and set(engine.base_dirs) == set(flow_set.flows)
    again = FlowEngine(engine.flows, version="v")  # compiled flows are taken as they are
    assert again.flows is engine.flows

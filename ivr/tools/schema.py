"""`python main.py schema`: the JSON Schema of the flow language, derived from the pydantic model.

Rules for this file:
- The schema is generated, never written by hand: `ivr.flow.model` is the only definition of the language.
  docs/flow.schema.json is this command's output, committed so editors (yaml-language-server) can use it; a test
  fails when it is out of date (`python main.py schema --write docs/flow.schema.json` refreshes it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from ivr.flow.model import Flow

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_OUTPUT = Path("docs/flow.schema.json")


class _FlowSchemaGenerator(GenerateJsonSchema):
    """Describe what the loader accepts, so editors do not flag valid files."""

    def str_schema(self, schema: core_schema.StringSchema) -> dict[str, Any]:
        # Numbers are accepted where text is expected (`extension: 6000`); see ivr.flow.model.Strict.
        result = super().str_schema(schema)
        result["type"] = ["string", "number"]
        return result


def flow_schema() -> dict[str, Any]:
    """The JSON Schema of one flow file."""
    schema = Flow.model_json_schema(by_alias=True, mode="validation", schema_generator=_FlowSchemaGenerator)
    # `welcome: {en: en/welcome}` is shorthand for `{en: {file: en/welcome}}` (ivr.flow.model._prompt_shorthand).
    variants = schema["properties"]["prompts"]["additionalProperties"]
    variants["additionalProperties"] = {
        "anyOf": [
            variants["additionalProperties"],
            {"type": "string", "description": "Shorthand for {file: <this>}."},
        ]
    }
    schema["title"] = "ivr flow"
    schema["description"] = (
        "One IVR flow (one YAML file in config/flows/), routed by the FastAGI path agi://host/<name>. "
        "Reference: docs/flows.md."
    )
    return {"$schema": SCHEMA_DIALECT, **schema}


def render() -> str:
    return json.dumps(flow_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write",
        metavar="FILE",
        nargs="?",
        const=str(DEFAULT_OUTPUT),
        help=f"write the schema to FILE (default {DEFAULT_OUTPUT}) instead of printing it",
    )
    parser.add_argument(
        "--check",
        metavar="FILE",
        nargs="?",
        const=str(DEFAULT_OUTPUT),
        help="exit 1 if FILE differs from the generated schema",
    )


def run(args: argparse.Namespace) -> int:
    text = render()
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is out of date; run: python main.py schema --write {path}", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
        return 0
    sys.stdout.write(text)
    return 0

"""The `ivr` command line (also `python main.py`).

Each sub-command lives in its own module, imported only when that command runs (so `ivr check` does not pay for
aiohttp, and the simulator is never imported by `serve`). A command module offers:

    def configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    def run(args: argparse.Namespace) -> int                 # do the work, return the exit code
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("ivr.service", "run the service against a real Asterisk (FastAGI server, AMI client, HTTP API)"),
    "demo": ("ivr.demo", "run the service with the simulated Asterisk and a stream of sample calls"),
    "check": ("ivr.tools.check", "validate the service settings and every flow; non-zero exit on errors"),
    "schema": ("ivr.tools.schema", "print the JSON Schema of the flow language"),
    "prompts": ("ivr.tools.prompts", "prompt files: `prompts build` generates missing ones with espeak-ng and sox"),
    "simulate": ("ivr.tools.simulate", "try a flow as a caller, interactively or scripted, on a virtual clock"),
    "test-flows": ("ivr.tools.flowtest", "run the flow test cases beside the flows; JUnit XML and coverage"),
    "graph": ("ivr.tools.graph", "draw a flow as SVG, PNG or Mermaid"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="IVR service for Asterisk (FastAGI + AMI).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        # Arguments are added lazily in main() for the chosen command only; --help of one command imports it.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Find the chosen command before parsing, so only its module is imported to add its arguments.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen in COMMANDS:
        module = importlib.import_module(COMMANDS[chosen][0])
        sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        module.configure(sub_action.choices[chosen])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

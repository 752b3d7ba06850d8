"""`python main.py check [PATH]`: validate the service settings and every flow; non-zero exit on errors.

Rules for this file:
- PATH may be the settings file, a flows directory or one flow file; without PATH the default settings file and
  its flows directory are checked. A flow file is checked together with its directory (cross-flow links need the
  other flows) and only its own problems are shown.
- Output is one line per problem, `file:line:col: error|warning: message (hint)`, like a compiler, or JSON.
- Exit status: 0 when there are no errors (warnings allowed unless --strict), 1 on errors, 2 when PATH is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.agi.peers import PeerAllowList
from ivr.flow.loader import FlowSet, display_name, load_flows
from ivr.flow.model import LookupNode, VoicemailNode, all_nodes, literal_queues
from ivr.netutil import is_loopback
from ivr.settings import Settings, default_settings_path, load_settings
from ivr.writedirs import inspect as inspect_write_dirs
from ivr.writedirs import write_dirs
from ivr.yamlsource import ConfigError, PositionMap, Problem, load_yaml, suggest


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="settings file (config/ivr.yaml), flows directory or flow file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--no-warnings", action="store_true", help="show errors only")


def run(args: argparse.Namespace) -> int:
    result = check(getattr(args, "path", None))
    problems = result["problems"]
    if args.no_warnings:
        problems = [p for p in problems if p.severity == "error"]
    errors = sum(p.severity == "error" for p in result["problems"])
    warnings = sum(p.severity == "warning" for p in result["problems"])
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not failed,
                    "errors": errors,
                    "warnings": warnings,
                    "settings": result["settings"],
                    "flows": result["flows"],
                    "version": result["version"],
                    "problems": [p.to_dict() for p in problems],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for problem in problems:
            print(problem.format(), file=sys.stdout)
        summary = f"{errors} error(s), {warnings} warning(s)"
        if result["flows"]:
            summary += f"; flows: {', '.join(result['flows'])}"
        if result["version"]:
            summary += f" (version {result['version']})"
        print(("FAILED: " if failed else "OK: ") + summary)
    if result["missing"]:
        return 2
    return 1 if failed else 0


def check(path: str | None) -> dict[str, Any]:
    """Run every check. Returns {problems, settings (file or None), flows (names), version, missing}."""
    problems: list[Problem] = []
    settings: Settings | None = None
    settings_file: Path | None = None
    flows_target: Path | None = None
    only_file: Path | None = None
    target = Path(path) if path else None
    if target is not None and not target.exists():
        problems.append(
            Problem(
                str(target),
                0,
                0,
                "no such file or directory",
                "give the settings file, a flows directory or a flow file",
                code="io",
            )
        )
        return {"problems": problems, "settings": None, "flows": [], "version": None, "missing": True}

    if target is None or (target.is_file() and not _is_flow_file(target)):
        settings_file = target if target is not None else default_settings_path()
        try:
            settings = load_settings(settings_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
        if settings is not None:
            flows_target = settings.flows_dir
        elif settings_file is not None:
            # Broken settings: still check the flows where the default layout puts them.
            fallback = Path(settings_file).resolve().parent.parent / "config" / "flows"
            flows_target = fallback if fallback.is_dir() else None
    elif target.is_dir():
        flows_target = target
        settings = _quiet_settings()
    else:
        flows_target, only_file = target.parent, target.resolve()
        settings = _quiet_settings()

    flow_set: FlowSet | None = None
    if flows_target is not None:
        try:
            flow_set = load_flows(flows_target, prompts_dir=settings.prompts_dir if settings else None)
            problems.extend(flow_set.warnings)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if settings is not None and flow_set is not None and settings_file is not None:
        problems.extend(_cross_checks(settings, flow_set))
    if only_file is not None:
        shown = display_name(only_file)
        problems = [p for p in problems if p.file == shown]
    problems.sort(key=lambda p: (p.file, p.line, p.column))
    return {
        "problems": problems,
        "settings": str(settings.source) if settings and settings.source else None,
        "flows": flow_set.names() if flow_set else [],
        "version": flow_set.version if flow_set else None,
        "missing": False,
    }


def _is_flow_file(path: Path) -> bool:
    """A flow file has `nodes:` at the top level; the settings file does not."""
    try:
        data = load_yaml(path).data
    except ConfigError:
        return path.parent.name == "flows"
    return isinstance(data, dict) and ("nodes" in data or "start" in data)


def _quiet_settings() -> Settings | None:
    """The default settings, only to find the prompts directory; their own problems are not this check's."""
    try:
        return load_settings()
    except ConfigError:
        return None


def _fastagi_peer_checks(settings: Settings, positions: PositionMap | None) -> list[Problem]:
    """Listening beyond loopback while only loopback peers are allowed: every remote Asterisk would be refused."""
    fa = settings.fastagi
    if positions is None or is_loopback(fa.host):
        return []
    if not all(ipaddress.ip_network(p, strict=False).is_loopback for p in fa.allowed_peers):
        return []
    return [
        positions.problem(
            ("fastagi", "host"),
            f"FastAGI listens on {fa.host} but fastagi.allowed_peers allows only this host: an "
            "Asterisk on another host would be refused",
            "add its address to fastagi.allowed_peers, or listen on 127.0.0.1",
            at_key=False,
            severity="warning",
            code="fastagi-peers",
        )
    ]


def _write_dir_checks(settings: Settings, flow_set: FlowSet, positions: PositionMap | None) -> list[Problem]:
    """The directories Asterisk is asked to write into on this host (ivr.writedirs, what `serve` creates): one
    that cannot be created or written is an error, a missing one a warning. The voicemail directory matters only
    when a flow takes voicemail."""
    if positions is None:
        return []
    voicemail = any(isinstance(node, VoicemailNode) for flow in flow_set.flows.values() for node in all_nodes(flow))
    dirs = write_dirs(settings)
    if not voicemail:
        dirs = [d for d in dirs if d.kind != "voicemail"]
    return [
        positions.problem(
            (d.directory.setting,), d.message, d.hint, at_key=False, severity=d.severity, code="write-dir"
        )
        for d in inspect_write_dirs(dirs)
    ]


def _ami_peer_checks(settings: Settings, positions: PositionMap | None) -> list[Problem]:
    """An Asterisk server given by address (ami.servers) that fastagi.allowed_peers does not allow: its calls would be
    refused by the FastAGI port. Host names are not resolved here (a check must not depend on DNS)."""
    if positions is None or not settings.ami.enabled or not settings.ami.servers:
        return []
    allowed = PeerAllowList(settings.fastagi.allowed_peers)
    problems = []
    for index, server in enumerate(settings.ami.servers):
        try:
            ipaddress.ip_address(server.host)
        except ValueError:
            continue
        if not allowed.allows((server.host, 0)):
            problems.append(
                positions.problem(
                    ("ami", "servers", index, "host"),
                    f"Asterisk server {server.name!r} ({server.host}) is not in fastagi.allowed_peers: the calls it "
                    "hands over by FastAGI would be refused",
                    f"add {server.host} to fastagi.allowed_peers (IVR_FASTAGI_ALLOWED_PEERS)",
                    at_key=False,
                    severity="warning",
                    code="fastagi-peers",
                )
            )
    return problems


def _cross_checks(settings: Settings, flow_set: FlowSet) -> list[Problem]:
    """Checks that need both the settings and the flows."""
    problems: list[Problem] = []
    positions = PositionMap(display_name(settings.source)) if settings.source else None
    if settings.source is not None:
        with contextlib.suppress(ConfigError):
            positions = load_yaml(settings.source, display_name(settings.source)).positions
    if settings.callbacks.enabled and settings.callbacks.flow not in flow_set and positions is not None:
        problems.append(
            positions.problem(
                ("callbacks", "flow"),
                f"callbacks.flow {settings.callbacks.flow!r} is not a flow",
                "flows: " + ", ".join(flow_set.names()),
                at_key=False,
                code="undefined-flow",
            )
        )
    queues = literal_queues(flow_set.flows.values())
    if positions is not None:
        for queue in settings.queues.overrides:
            if queue not in queues:
                problems.append(
                    positions.problem(
                        ("queues", "overrides", queue),
                        f"queues.overrides: no flow transfers to queue {queue!r}",
                        suggest(queue, queues) or "queues used by the flows: " + (", ".join(sorted(queues)) or "none"),
                        severity="warning",
                        code="unused-queue",
                    )
                )
    problems.extend(_fastagi_peer_checks(settings, positions))
    problems.extend(_write_dir_checks(settings, flow_set, positions))
    problems.extend(_ami_peer_checks(settings, positions))
    allowed = {host.lower() for host in settings.lookups.allowed_hosts}
    if allowed:
        for name, flow in flow_set.flows.items():
            for node_id, node in flow.nodes.items():
                if not isinstance(node, LookupNode):
                    continue
                host = urlsplit(node.url).hostname or ""
                if "${" not in host and host not in allowed:
                    problems.append(
                        flow_set.sources[name].problem(
                            ("nodes", node_id, "url"),
                            f"lookup host {host!r} is not in lookups.allowed_hosts",
                            "add it to lookups.allowed_hosts in "
                            f"{display_name(settings.source) if settings.source else 'the settings'}"
                            "; until then the lookup always takes on_error",
                            severity="warning",
                            code="lookup-host",
                            at_key=False,
                        )
                    )
    return problems

"""Graph checks over a loaded `FlowSet`: what the schema alone cannot see.

Rules for this file:
- Input is a FlowSet whose flows already passed the schema (`ivr.flow.model`); output is a list of located
  `Problem`s. Nothing here runs a flow or touches the network; the only I/O is looking for prompt files.
- Errors are things that would misroute or strand a caller (undefined targets, loops with no way out, digit
  collisions, retries with nowhere to go). Warnings are things worth a look that still work (unreachable nodes,
  missing translations or sound files, transfers without failure branches).
- Which field of which node kind leads where, plays which prompts and holds which templates, each node kind says
  itself (`exits()`, `prompt_lists()`, `templates()` in `ivr.flow.model`); `node_refs` and friends read that, and
  every check walks them. Only the rules (what is an error, what a warning) live here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Set
from dataclasses import dataclass
from pathlib import Path

from ivr.flow.flowset import FlowSet, FlowSource
from ivr.flow.model import (
    MENU_VERBS,
    CallbackNode,
    Flow,
    LanguageNode,
    LookupNode,
    MenuNode,
    NodeBase,
    ParkNode,
    RouteNode,
    TransferNode,
    dial_pattern_tokens,
)
from ivr.yamlsource import PathKey, Problem, suggest

# Variables every call has, or that nodes set without naming them in the flow (see docs/flows.md, Templates).
BUILTIN_VARIABLES = frozenset(
    {
        "caller_id",
        "caller_name",
        "dnid",
        "uniqueid",
        "channel",
        "context",
        "extension",
        "flow",
        "language",
        "dialed",
        "lookup_error",
        "voicemail_id",
        "callback_id",
        "recording_consent",
    }
)
PROMPT_EXTENSIONS = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".WAV")


@dataclass(frozen=True)
class Ref:
    """One edge of the flow graph: `owner` (a top-level node id) leads to `target` via the field at `path`."""

    owner: str
    path: PathKey
    target: str
    verbs: tuple[str, ...] = ()  # menu verbs allowed here


@dataclass(frozen=True)
class PromptRef:
    path: PathKey
    prompt: str


def with_inline(node: NodeBase, path: PathKey) -> Iterator[tuple[NodeBase, PathKey]]:
    """A node and the nodes written inline in it (menu options), each with its path."""
    yield node, path
    for exit_ in node.exits(""):
        if exit_.inline is not None:
            yield from with_inline(exit_.inline, path + exit_.path)


def node_refs(node_id: str, node: NodeBase, path: PathKey | None = None) -> list[Ref]:
    """Every target written in a node (and, in place, its inline option nodes): the exits each node kind lists."""
    path = path if path is not None else ("nodes", node_id)
    refs: dict[Ref, None] = {}  # ordered and without repeats (every language choice leads to the same `next`)
    for exit_ in node.exits(""):
        if exit_.inline is not None:
            refs.update(dict.fromkeys(node_refs(node_id, exit_.inline, path + exit_.path)))
        elif exit_.written:
            refs[Ref(node_id, path + exit_.path, exit_.target, exit_.verbs)] = None
    return list(refs)


def prompt_refs(node: NodeBase, path: PathKey) -> list[PromptRef]:
    """Every prompt id a node (and its inline option nodes) plays."""
    return [
        PromptRef(inner_path + field + (index,), prompt)
        for inner, inner_path in with_inline(node, path)
        for field, ids in inner.prompt_lists()
        for index, prompt in enumerate(ids)
    ]


def template_fields(node: NodeBase, path: PathKey) -> list[tuple[PathKey, str]]:
    """Every template text of a node (and its inline option nodes), with its path."""
    return [
        (inner_path + field, text) for inner, inner_path in with_inline(node, path) for field, text in inner.templates()
    ]


def assigned_variables(flow: Flow) -> set[str]:
    """Variables a flow sets somewhere (initial variables, set, input, lookup maps, inline nodes included)."""
    names = set(flow.variables)
    for node_id, node in flow.nodes.items():
        for inner, _path in with_inline(node, ("nodes", node_id)):
            names |= inner.assigned()
    return names


def check_flow_set(flow_set: FlowSet, prompts_dir: Path | None = None) -> list[Problem]:
    """Run every graph check on every flow. `prompts_dir` enables the missing-sound-file warnings."""
    problems: list[Problem] = []
    entries = _cross_flow_entries(flow_set)
    # A call keeps its variables across flows (flow:node), so names set in any flow count as known.
    known = BUILTIN_VARIABLES.union(*(assigned_variables(flow) for flow in flow_set.flows.values()))
    for name, flow in flow_set.flows.items():
        checker = _FlowChecker(flow_set, flow, flow_set.sources[name], entries.get(name, set()), prompts_dir)
        problems.extend(checker.run())
        problems.extend(checker.check_templates(known))
    return problems


def _cross_flow_entries(flow_set: FlowSet) -> dict[str, set[str]]:
    """flow -> node ids other flows jump to (they count as reachable)."""
    entries: dict[str, set[str]] = {}
    for _name, flow in flow_set.flows.items():
        for node_id, node in flow.nodes.items():
            for ref in node_refs(node_id, node):
                if ":" in ref.target:
                    other, target = ref.target.split(":", 1)
                    entries.setdefault(other, set()).add(target)
    return entries


class _FlowChecker:
    def __init__(
        self, flow_set: FlowSet, flow: Flow, source: FlowSource, entries: set[str], prompts_dir: Path | None
    ) -> None:
        self.flow_set = flow_set
        self.flow = flow
        self.source = source
        self.entries = entries
        self.prompts_dir = prompts_dir
        self.problems: list[Problem] = []
        self.refs = [ref for node_id, node in flow.nodes.items() for ref in node_refs(node_id, node)]

    def error(self, path: PathKey, message: str, hint: str, code: str, at_key: bool = False) -> None:
        self.problems.append(self.source.problem(path, message, hint, code=code, at_key=at_key))

    def warn(self, path: PathKey, message: str, hint: str, code: str, at_key: bool = False) -> None:
        self.problems.append(self.source.problem(path, message, hint, severity="warning", code=code, at_key=at_key))

    def run(self) -> list[Problem]:
        self.check_start_and_ids()
        self.check_targets()
        self.check_reachability()
        self.check_loops()
        self.check_menus()
        self.check_dead_ends()
        self.check_transfer_targets()
        self.check_prompts()
        self.check_schedules_and_languages()
        return self.problems

    # --- targets ---------------------------------------------------------------------------------------

    def check_start_and_ids(self) -> None:
        flow = self.flow
        if flow.start not in flow.nodes:
            self.error(
                ("start",),
                f"start node {flow.start!r} is not defined",
                suggest(flow.start, flow.nodes) or "name one of the nodes under `nodes:`",
                "undefined-target",
            )
        for node_id in flow.nodes:
            if node_id in MENU_VERBS:
                self.error(
                    ("nodes", node_id),
                    f"node id {node_id!r} is a menu verb",
                    "rename the node; repeat, back and top are reserved for menus",
                    "reserved-id",
                    True,
                )

    def check_targets(self) -> None:
        for ref in self.refs:
            target = ref.target
            if target in MENU_VERBS:
                if target not in ref.verbs:
                    where = (
                        "only in menu options"
                        if not ref.verbs
                        else "not here: 'repeat' as an exhaustion target would offer the menu forever"
                    )
                    self.error(
                        ref.path,
                        f"menu verb {target!r} {where}",
                        "point to a node id instead (or use back/top)"
                        if ref.verbs
                        else "repeat, back and top work in menu options; use a node id here",
                        "menu-verb",
                    )
                continue
            if ":" in target:
                other, node_id = target.split(":", 1)
                other_flow = self.flow_set.get(other)
                if other_flow is None:
                    self.error(
                        ref.path,
                        f"target {target!r}: there is no flow {other!r}",
                        suggest(other, self.flow_set.names()) or "flows: " + ", ".join(self.flow_set.names()),
                        "undefined-target",
                    )
                elif node_id not in other_flow.nodes:
                    self.error(
                        ref.path,
                        f"target {target!r}: flow {other!r} has no node {node_id!r}",
                        suggest(node_id, other_flow.nodes) or f"nodes of {other}: see its file",
                        "undefined-target",
                    )
                continue
            if target not in self.flow.nodes:
                self.error(
                    ref.path,
                    f"target {target!r} is not a node of flow {self.flow.name!r}",
                    suggest(target, self.flow.nodes) or "define it under `nodes:` or fix the name",
                    "undefined-target",
                )

    # --- graph shape -----------------------------------------------------------------------------------

    def successors(self) -> dict[str, set[str]]:
        """node -> local successor ids; "" stands for "leaves this flow" (other flow, back/top)."""
        graph: dict[str, set[str]] = {node_id: set() for node_id in self.flow.nodes}
        for ref in self.refs:
            if ref.target == "repeat":
                graph[ref.owner].add(ref.owner)
            elif ref.target in ("back", "top") or ":" in ref.target:
                graph[ref.owner].add("")
            elif ref.target in self.flow.nodes:
                graph[ref.owner].add(ref.target)
        return graph

    def check_reachability(self) -> None:
        graph = self.successors()
        seen: set[str] = set()
        stack = [n for n in {self.flow.start, *self.entries} if n in graph]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            stack.extend(n for n in graph[node] if n and n not in seen)
        for node_id in self.flow.nodes:
            if node_id not in seen:
                self.warn(
                    ("nodes", node_id),
                    f"node {node_id!r} is unreachable from start {self.flow.start!r}",
                    "link it from a menu or route, or delete it",
                    "unreachable",
                    True,
                )

    def check_loops(self) -> None:
        graph = self.successors()
        for component in _strongly_connected(graph):
            cyclic = len(component) > 1 or any(n in graph[n] for n in component)
            if not cyclic:
                continue
            names = ", ".join(sorted(component))
            first = min(component, key=lambda n: self.source.positions.key(("nodes", n)))
            leaves = any(succ not in component for n in component for succ in graph[n])
            ends = any(self.flow.nodes[n].may_end_call() for n in component)
            if not leaves and not ends:
                self.error(
                    ("nodes", first),
                    f"nodes {names} form a loop with no way out",
                    "give one of them a branch that leaves the loop (a transfer, voicemail or hangup)",
                    "endless-loop",
                    True,
                )
                continue
            instant = {n for n in component if self.flow.nodes[n].instant}
            for inner in _strongly_connected({n: {s for s in graph[n] if s in instant} for n in instant}):
                if len(inner) > 1 or any(n in graph[n] for n in inner):
                    self.error(
                        ("nodes", min(inner, key=lambda n: self.source.positions.key(("nodes", n)))),
                        f"nodes {', '.join(sorted(inner))} loop without playing or waiting for anything",
                        "put a play, hold or menu node in the loop, or let it end",
                        "busy-loop",
                        True,
                    )

    def check_dead_ends(self) -> None:
        for node_id, node in self.flow.nodes.items():
            path = ("nodes", node_id)
            if isinstance(node, MenuNode):
                for field in ("no_input", "invalid"):
                    retry = getattr(node, field)
                    if retry.exhausted is None:
                        self.error(
                            path + (field,),
                            f"menu {node_id!r}: {field} has {retry.retries} retries but no exhaustion target",
                            f"add `{field}: {{exhausted: <node>}}` (e.g. the operator or "
                            "a goodbye hangup) so callers are never dropped silently",
                            "no-exhausted",
                            True,
                        )
            elif isinstance(node, TransferNode):
                if node.queue:
                    if node.on_timeout is None and node.next is None:
                        self.warn(
                            path,
                            f"queue transfer {node_id!r} has no on_timeout",
                            "add on_timeout (e.g. voicemail or callback): otherwise the call ends when the "
                            "queue gives up",
                            "dead-end",
                            True,
                        )
                else:
                    missing = [f for f in ("on_busy", "on_no_answer", "on_unavailable") if getattr(node, f) is None]
                    if missing and node.next is None:
                        self.warn(
                            path,
                            f"transfer {node_id!r} has no {', '.join(missing)}",
                            "add the missing branches (e.g. voicemail) or `next`: otherwise the call ends "
                            "when the agent does not answer",
                            "dead-end",
                            True,
                        )
            elif isinstance(node, ParkNode) and node.comeback is None:
                self.warn(
                    path,
                    f"park {node_id!r} has no comeback",
                    "add `comeback:` so a caller nobody picks up is not dropped",
                    "dead-end",
                    True,
                )
            elif isinstance(node, CallbackNode) and node.on_failure is None:
                self.warn(
                    path,
                    f"callback {node_id!r} has no on_failure",
                    "add `on_failure:` for callers who never enter a valid number",
                    "dead-end",
                    True,
                )

    # --- menus -----------------------------------------------------------------------------------------

    def check_transfer_targets(self) -> None:
        """A transfer target whose own text can never pass the run-time check (a plain extension or queue name,
        or dial-string characters) would refuse every call: report it now."""
        from ivr.flow.nodes.transfer import target_problem
        from ivr.flow.templates import TemplateError

        for node_id, node in self.flow.nodes.items():
            if not isinstance(node, TransferNode):
                continue
            for field in ("extension", "dial"):
                template = getattr(node, field)
                if not template:
                    continue
                try:
                    problem = target_problem(field, template)
                except TemplateError:
                    continue  # reported as bad-template
                if problem:
                    self.error(
                        ("nodes", node_id, field),
                        f"transfer {node_id!r}: {field} {template!r} {problem}",
                        "write the flow's own part as plain text (letters, digits, *#+_-) and leave "
                        "placeholders for the values",
                        "bad-value",
                    )

    def check_menus(self) -> None:
        for node_id, node in self.flow.nodes.items():
            if not isinstance(node, MenuNode):
                continue
            path = ("nodes", node_id, "options")
            keys = sorted(node.options, key=lambda k: (len(k), k))
            for i, short in enumerate(keys):
                for long in keys[i + 1 :]:
                    if long.startswith(short):
                        self.error(
                            path + (long,),
                            f"menu {node_id!r}: option {short!r} is a prefix of option {long!r}",
                            "a caller pressing " + short + " would have to wait to be understood; "
                            "use digits that do not start one another",
                            "digit-collision",
                            True,
                        )
            if node.direct_dial is None:
                continue
            tokens = dial_pattern_tokens(node.direct_dial.pattern)
            for digits in keys:
                if _overlaps(digits, tokens):
                    kind = "shadows" if len(digits) < len(tokens) else "collides with"
                    self.error(
                        path + (digits,),
                        f"menu {node_id!r}: option {digits!r} {kind} direct dial {node.direct_dial.pattern!r}",
                        "change the option digit or narrow the pattern (e.g. 2XXX) so no option starts an extension",
                        "digit-collision",
                        True,
                    )

    # --- prompts ---------------------------------------------------------------------------------------

    def check_prompts(self) -> None:
        flow = self.flow
        refs: list[PromptRef] = []
        for node_id, node in flow.nodes.items():
            refs.extend(prompt_refs(node, ("nodes", node_id)))
        for index, prompt in enumerate(flow.recording.consent_prompts):
            refs.append(PromptRef(("recording", "consent_prompts", index), prompt))
        for ref in refs:
            if ref.prompt not in flow.prompts:
                self.error(
                    ref.path,
                    f"unknown prompt {ref.prompt!r}",
                    suggest(ref.prompt, flow.prompts) or "define it under `prompts:`",
                    "unknown-prompt",
                )
        if flow.recording.policy == "consent" and not flow.recording.consent_prompts:
            self.error(
                ("recording", "policy"),
                "recording policy 'consent' without consent_prompts",
                "add `consent_prompts:` telling the caller about the recording and the opt-out key",
                "recording",
            )
        for prompt_id, variants in flow.prompts.items():
            missing = [lang for lang in flow.languages if lang not in variants]
            if missing:
                self.warn(
                    ("prompts", prompt_id),
                    f"prompt {prompt_id!r} has no {', '.join(missing)} version",
                    f"add `{missing[0]}: {{file: {missing[0]}/{prompt_id}, text: ...}}`; callers hear the "
                    f"{flow.language} version meanwhile",
                    "missing-translation",
                    True,
                )
            if self.prompts_dir is None:
                continue
            for lang, variant in variants.items():
                if not any((self.prompts_dir / (variant.file + ext)).is_file() for ext in PROMPT_EXTENSIONS):
                    self.warn(
                        ("prompts", prompt_id, lang, "file"),
                        f"prompt file {variant.file!r} not found in {self.prompts_dir}",
                        "record it, or run `python main.py prompts build`",
                        "missing-file",
                    )

    # --- templates and lookups -------------------------------------------------------------------------

    def check_templates(self, known: Set[str]) -> list[Problem]:
        from ivr.flow.templates import TemplateError, template_names

        fields = [(("variables", k), v) for k, v in self.flow.variables.items()]
        fields.append((("recording", "file"), self.flow.recording.file))
        for node_id, node in self.flow.nodes.items():
            fields.extend(template_fields(node, ("nodes", node_id)))
        problems: list[Problem] = []
        for path, text in fields:
            try:
                names = template_names(text)
            except TemplateError as exc:
                problems.append(
                    self.source.problem(
                        path, f"bad template {text!r}", str(exc).split(": ", 1)[-1], code="bad-template", at_key=False
                    )
                )
                continue
            for name in sorted(names):
                if name not in known and not name.startswith("param_"):
                    problems.append(
                        self.source.problem(
                            path,
                            f"variable {name!r} is never set",
                            suggest(name, known) or "set it with a set, input or lookup node (it would be empty)",
                            severity="warning",
                            code="unknown-variable",
                            at_key=False,
                        )
                    )
        for node_id, node in self.flow.nodes.items():
            if isinstance(node, LookupNode):
                scheme = node.url.split(":", 1)[0].lower() if ":" in node.url else ""
                if scheme not in ("http", "https"):
                    problems.append(
                        self.source.problem(
                            ("nodes", node_id, "url"),
                            f"lookup url {node.url!r} is not http(s)",
                            "write it like https://crm.example.com/accounts/${account}",
                            code="bad-value",
                            at_key=False,
                        )
                    )
        return problems

    # --- schedules and languages -----------------------------------------------------------------------

    def check_schedules_and_languages(self) -> None:
        flow = self.flow
        if flow.language not in flow.languages:
            self.error(
                ("language",),
                f"default language {flow.language!r} is not in languages",
                f"add it: languages: [{', '.join([flow.language, *flow.languages])}]",
                "language",
            )
        for node_id, node in flow.nodes.items():
            path = ("nodes", node_id)
            if isinstance(node, RouteNode):
                for index, rule in enumerate(node.rules):
                    for field in ("open", "closed", "holiday"):
                        name = getattr(rule, field)
                        if name is not None and name not in flow.schedules:
                            self.error(
                                path + ("rules", index, field),
                                f"unknown schedule {name!r}",
                                suggest(name, flow.schedules) or "define it under `schedules:`",
                                "unknown-schedule",
                            )
                    if rule.language is not None and rule.language not in flow.languages:
                        self.warn(
                            path + ("rules", index, "language"),
                            f"language {rule.language!r} is not one of the flow's languages",
                            "this rule can never match; check `languages:`",
                            "language",
                        )
            elif isinstance(node, LanguageNode):
                for digit, lang in node.options.items():
                    if lang not in flow.languages:
                        self.error(
                            path + ("options", digit),
                            f"language {lang!r} is offered but not declared",
                            f"add {lang!r} to the flow's `languages:` and give every prompt a {lang} version",
                            "language",
                        )
                if node.default is not None and node.default not in flow.languages:
                    self.error(
                        path + ("default",),
                        f"default language {node.default!r} is not declared",
                        "use one of: " + ", ".join(flow.languages),
                        "language",
                    )


def _overlaps(digits: str, tokens: list[str]) -> bool:
    """True when `digits` and some extension matching `tokens` start one another."""
    return all(re.fullmatch(token, ch) for token, ch in zip(tokens, digits, strict=False))


def _strongly_connected(graph: dict[str, set[str]]) -> Iterator[set[str]]:
    """Tarjan's algorithm, iterative (flows can be long chains). Ignores successors not in `graph`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(s for s in graph[root] if s in graph)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(s for s in graph[child] if s in graph))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.add(item)
                    if item == node:
                        break
                yield component

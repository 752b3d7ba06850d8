"""Helpers for the configuration tests: write flow files and find the line of a snippet in them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ivr.yamlsource import Problem

# A small valid flow; tests replace one snippet to produce exactly one mistake.
BASE_FLOW = textwrap.dedent("""\
    name: main
    languages: [en, lt]
    timezone: Europe/Vilnius
    prompts:
      welcome:
        en: {file: en/welcome, text: Welcome}
        lt: {file: lt/welcome, text: Sveiki}
      menu:
        en: {file: en/menu, text: Press 1 for sales}
        lt: {file: lt/menu, text: Pardavimai spauskite 1}
      bye:
        en: {file: en/bye, text: Goodbye}
        lt: {file: lt/bye, text: Viso gero}
    schedules:
      office:
        weekly: {mon-fri: "08:00-18:00"}
    start: hours
    nodes:
      hours:
        type: route
        rules:
          - {closed: office, goto: goodbye}
        else: welcome
      welcome:
        type: play
        prompts: [welcome]
        next: main_menu
      main_menu:
        type: menu
        greeting: [menu]
        options:
          1: sales
          0: goodbye
        direct_dial: {pattern: 6XXX, target: sales}
        no_input: {retries: 2, exhausted: goodbye}
        invalid: {retries: 2, exhausted: goodbye}
      sales:
        type: transfer
        queue: sales
        on_timeout: goodbye
      goodbye:
        type: hangup
        prompts: [bye]
    """)


def write_flow(directory: Path, text: str, name: str = "main.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def mutate(old: str, new: str, text: str = BASE_FLOW) -> str:
    assert old in text, f"snippet {old!r} not in the base flow"
    return text.replace(old, new, 1)


def line_of(text: str, snippet: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `snippet`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if snippet in line]
    assert len(hits) >= nth, f"{snippet!r} not found"
    return hits[nth - 1]


def column_of(text: str, snippet: str) -> int:
    line = text.splitlines()[line_of(text, snippet) - 1]
    return line.index(snippet) + 1


def only(problems: list[Problem], code: str, severity: str | None = None) -> Problem:
    found = [p for p in problems if p.code == code and (severity is None or p.severity == severity)]
    assert len(found) == 1, f"expected one {code!r} problem, got: " + "\n".join(p.format() for p in problems)
    return found[0]

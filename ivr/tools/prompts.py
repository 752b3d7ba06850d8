"""`python main.py prompts build|list`: prompt sound files from each prompt's text (espeak-ng + sox).

Rules for this file:
- Files are 8 kHz mono 16-bit WAV (what Asterisk plays without transcoding on a slin/ulaw channel), written to
  <prompts_dir>/<file>.wav; the prompt's `file` is already restricted by the model to safe path parts, and the
  target is checked to stay inside the prompts directory anyway.
- Text goes to espeak-ng on stdin, never on a command line (a text starting with '-' is not an option) and never
  through a shell.
- The voice is the first part of the file path when it is a language (en/welcome -> en), else the variant's
  language: one recording shared by several languages is spoken once, in its own language.
- Existing recordings (in any format Asterisk plays) are kept unless --force: a human prompt is never replaced
  or shadowed by a robot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ivr.flow.loader import load_flows
from ivr.flow.validate import PROMPT_EXTENSIONS
from ivr.settings import load_settings
from ivr.yamlsource import ConfigError

# Language code in a flow -> espeak-ng voice.
VOICES = {
    "en": "en-gb",
    "lt": "lt",
    "lv": "lv",
    "et": "et",
    "pl": "pl",
    "ru": "ru",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "fi": "fi",
    "sv": "sv",
    "no": "nb",
    "nb": "nb",
    "da": "da",
    "uk": "uk",
}
TOOLS = ("espeak-ng", "sox")
DEBIAN_HINT = "install them with: apt-get install espeak-ng sox (Debian/Ubuntu packages `espeak-ng` and `sox`)"


class PromptToolsMissing(Exception):
    """espeak-ng or sox is not installed."""


class PromptBuildError(Exception):
    """A tool failed on one prompt."""


@dataclass(frozen=True)
class PromptJob:
    file: str  # relative, without extension (en/welcome)
    language: str  # voice language
    text: str
    flows: tuple[str, ...]  # where it is used (for messages)

    def target(self, prompts_dir: Path) -> Path:
        return prompts_dir / (self.file + ".wav")

    def exists(self, prompts_dir: Path) -> bool:
        """A recording in any format Asterisk plays counts: a studio .gsm is never joined by a robot .wav."""
        return any((prompts_dir / (self.file + ext)).is_file() for ext in PROMPT_EXTENSIONS)


def find_tools(path: str | None = None) -> dict[str, str]:
    """Absolute paths of espeak-ng and sox; raises PromptToolsMissing naming what is missing."""
    search = os.environ.get("PATH", "") if path is None else path
    found = {tool: shutil.which(tool, path=search) for tool in TOOLS}
    missing = [tool for tool, where in found.items() if where is None]
    if missing:
        raise PromptToolsMissing(f"{' and '.join(missing)} not found on PATH; {DEBIAN_HINT}")
    return {tool: str(where) for tool, where in found.items()}


def collect_jobs(flows_dir: Path, only: str | None = None) -> list[PromptJob]:
    """Every distinct prompt file the flows use, with the text to speak."""
    flow_set = load_flows(flows_dir, check=False)
    jobs: dict[str, PromptJob] = {}
    for name in flow_set.names():
        flow = flow_set[name]
        for variants in flow.prompts.values():
            for lang, variant in variants.items():
                first = variant.file.split("/", 1)[0]
                voice_lang = first if first in VOICES or first in flow.languages else lang
                if only and voice_lang != only:
                    continue
                known = jobs.get(variant.file)
                if known is None:
                    jobs[variant.file] = PromptJob(variant.file, voice_lang, variant.text.strip(), (name,))
                elif name not in known.flows:
                    jobs[variant.file] = PromptJob(
                        known.file, known.language, known.text or variant.text.strip(), known.flows + (name,)
                    )
    return sorted(jobs.values(), key=lambda j: j.file)


def synthesize(job: PromptJob, target: Path, tools: dict[str, str]) -> None:
    """Speak `job.text` into `target` as 8 kHz mono 16-bit WAV."""
    voice = VOICES.get(job.language, job.language)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ivr-prompt-") as tmp:
        raw = Path(tmp) / "speech.wav"
        speak = subprocess.run(
            [tools["espeak-ng"], "-v", voice, "-s", "150", "-w", str(raw)],
            input=job.text.encode("utf-8"),
            capture_output=True,
            timeout=60,
        )
        if speak.returncode != 0 or not raw.is_file():
            raise PromptBuildError(
                f"espeak-ng failed for {job.file} (voice {voice}): "
                f"{speak.stderr.decode(errors='replace').strip() or speak.returncode}"
            )
        partial = target.with_suffix(".wav.part")
        convert = subprocess.run(
            [
                tools["sox"],
                str(raw),
                "-t",
                "wav",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(partial),
            ],
            capture_output=True,
            timeout=60,
        )
        if convert.returncode != 0:
            partial.unlink(missing_ok=True)
            raise PromptBuildError(f"sox failed for {job.file}: {convert.stderr.decode(errors='replace').strip()}")
        partial.replace(target)  # atomic: Asterisk never plays a half-written file


def build(
    jobs: list[PromptJob],
    prompts_dir: Path,
    *,
    force: bool = False,
    tools: dict[str, str] | None = None,
    out: TextIO | None = None,
) -> tuple[int, int]:
    """Generate missing (or, with force, all) files. Returns (written, skipped). Prints `[n/N] file` progress."""
    out = out or sys.stdout
    root = prompts_dir.resolve()
    todo = [job for job in jobs if force or not job.exists(prompts_dir)]
    skipped_text = [job for job in todo if not job.text]
    todo = [job for job in todo if job.text]
    for job in skipped_text:
        print(f"skip {job.file}: the prompt has no text (add `text:` in {', '.join(job.flows)})", file=out)
    if not todo:
        return 0, len(jobs)
    tools = tools or find_tools()
    for index, job in enumerate(todo, 1):
        target = job.target(prompts_dir)
        if root not in target.resolve().parents:
            raise PromptBuildError(f"{job.file} would be written outside {prompts_dir}")
        print(f"[{index}/{len(todo)}] {target} ({job.language})", file=out, flush=True)
        synthesize(job, target, tools)
    return len(todo), len(jobs) - len(todo)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (
        ("build", "generate missing prompt files"),
        ("list", "show prompt files and which are missing"),
    ):
        action = sub.add_parser(name, help=help_text, description=help_text)
        action.add_argument("--config", help="settings file (default config/ivr.yaml)")
        action.add_argument("--flows", help="flows directory (default: from the settings)")
        action.add_argument("--out", help="prompts directory (default: prompts_dir from the settings)")
        action.add_argument("--only", metavar="LANG", help="only this language (e.g. lt)")
        if name == "build":
            action.add_argument("--force", action="store_true", help="regenerate existing files too")
        else:
            action.add_argument("--missing", action="store_true", help="list missing files only")


def run(args: argparse.Namespace) -> int:
    try:
        flows_dir, prompts_dir = _dirs(args)
        jobs = collect_jobs(flows_dir, args.only)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.action == "list":
        missing = 0
        for job in jobs:
            exists = job.exists(prompts_dir)
            missing += not exists
            if exists and args.missing:
                continue
            print(f"{'ok     ' if exists else 'MISSING'} {job.target(prompts_dir)}  [{job.language}] {job.text[:60]}")
        print(f"{len(jobs)} prompt file(s), {missing} missing")
        return 0
    try:
        written, kept = build(jobs, prompts_dir, force=args.force)
    except PromptToolsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PromptBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{written} prompt file(s) written, {kept} already present, in {prompts_dir}")
    return 0


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.flows and args.out:
        return Path(args.flows), Path(args.out)
    settings = load_settings(args.config)
    return (
        Path(args.flows) if args.flows else settings.flows_dir,
        Path(args.out) if args.out else settings.prompts_dir,
    )

"""Read the real Asterisk 22 AMI transcripts (tests/data/asterisk) as event dicts, for replay into QueueStats.

Rules: the .jsonl holds the exact bytes; we split Asterisk's stream on the blank line that ends each AMI message
(`\\r\\n\\r\\n`) and keep `Header: value` pairs. Recorder notes (`### ...`) become {"Event": "#note", "Text": ...}
markers so a test can stop at a scenario boundary. Each dict also carries "_t", the recording time in seconds
(the time the bytes arrived), so a replay can drive a fake clock. No network text is interpreted beyond that.
"""

from __future__ import annotations

import json

from tests.asterisk_data import ASTERISK_DATA

ASTERISK_DIR = ASTERISK_DATA


def parse_block(text: str) -> dict[str, str]:
    """`Header: value` lines (a quoted transcript excerpt, or one raw AMI message) -> dict."""
    headers: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value
    return headers


def ami_messages(name: str) -> list[dict[str, str]]:
    """Every message Asterisk sent in transcript `name` (e.g. "ami-15-queue"), in order, with note markers."""
    out: list[dict[str, str]] = []
    buffer = ""
    for line in (ASTERISK_DIR / f"{name}.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("stream", "ami") not in ("ami", "note"):  # agi-* .jsonl files also hold the AGI stream
            continue
        if record["dir"] == "asterisk->app":
            buffer += record["data"]
            *complete, buffer = buffer.split("\r\n\r\n")
            for chunk in complete:
                if chunk.startswith("Asterisk Call Manager/"):
                    chunk = chunk.split("\r\n", 1)[1] if "\r\n" in chunk else ""
                if chunk:
                    out.append({**parse_block(chunk), "_t": str(record["t"])})
        elif record["dir"] == "note":
            out.append({"Event": "#note", "Text": record["data"], "_t": str(record["t"])})
    return out


def quoted(name: str, excerpt: str) -> dict[str, str]:
    """Parse an excerpt of one AMI message quoted in a test, after checking that it is verbatim what Asterisk sent in
    transcript `name`: runs of lines must match exactly and in order; a line `...` stands for lines left out (within
    the same message)."""
    wire = [
        line.split(" <<< ", 1)[1].removesuffix("\\r\\n").rstrip()
        for line in (ASTERISK_DIR / f"{name}.txt").read_text().splitlines()
        if " <<< " in line
    ]
    runs: list[list[str]] = [[]]
    for line in (line.strip() for line in excerpt.strip().splitlines()):
        if line == "...":
            runs.append([])
        else:
            runs[-1].append(line)
    for start in range(len(wire)):
        if _matches_from(wire, start, runs):
            return parse_block("\n".join(line for run in runs for line in run))
    raise AssertionError(f"excerpt not found verbatim in {name}.txt: {runs[0][:3]}...")


def _matches_from(wire: list[str], start: int, runs: list[list[str]]) -> bool:
    pos = start
    for index, run in enumerate(runs):
        if index == 0:
            if wire[pos : pos + len(run)] != run:
                return False
        else:  # find the run later in the same message (before the blank line that ends it)
            while pos < len(wire) and wire[pos] != "" and wire[pos : pos + len(run)] != run:
                pos += 1
            if pos >= len(wire) or wire[pos : pos + len(run)] != run:
                return False
        pos += len(run)
    return True

"""Replay the real Asterisk 22 AMI transcripts as parsed messages (tests/data/asterisk).

The .jsonl files hold the exact bytes of every socket read; the AMI parser of the project frames them, so the
registry is tested on what a real Asterisk sent, byte for byte. Recorder annotations ("### ..." in the .txt)
come through as `Note`s so a test can stop at a point of the scenario.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ivr.ami.protocol import AMIParser, Banner, Message
from tests.asterisk_data import ASTERISK_DATA

TRANSCRIPTS = ASTERISK_DATA


@dataclass(frozen=True)
class Note:
    text: str


def load(name: str, stream: str = "ami") -> list[Message | Note]:
    path = TRANSCRIPTS / name
    parser = AMIParser()
    out: list[Message | Note] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["dir"] == "note":
            out.append(Note(record["data"]))
        elif record["dir"] == "asterisk->app" and record.get("stream", stream) == stream:
            out.extend(m for m in parser.feed(record["data"].encode("latin-1")) if not isinstance(m, Banner))
    return out


def events_until(items: list[Message | Note], note_prefix: str | None, start: str | None = None) -> list[Message]:
    """Events after the note starting with `start` (or the beginning) up to the note starting with `note_prefix`."""
    out: list[Message] = []
    started = start is None
    for item in items:
        if isinstance(item, Note):
            if started and note_prefix is not None and item.text.startswith(note_prefix):
                return out
            if not started and item.text.startswith(start):
                started = True
            continue
        if started and item.is_event:
            out.append(item)
    if note_prefix is not None:
        raise AssertionError(f"no note starting with {note_prefix!r}")
    return out


def list_items(items: list[Message | Note], action_id: str) -> list[Message]:
    """The items of a list answer (events carrying the action's ActionID), without the ...Complete event."""
    return [
        m
        for m in items
        if isinstance(m, Message) and m.is_event and m.action_id == action_id and m.get("EventList") != "Complete"
    ]

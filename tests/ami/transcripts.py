"""Load the real Asterisk 22 AMI recordings (tests/data/asterisk).

Each .jsonl line is one socket read or write: {"t", "dir", "data" (latin-1 text of the exact bytes), "stream"}.
Concatenating the chunks of one stream and direction gives the exact byte stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from tests.asterisk_data import ASTERISK_DATA

DATA = ASTERISK_DATA
FROM_ASTERISK = "asterisk->app"
TO_ASTERISK = "app->asterisk"


@dataclass(frozen=True)
class Chunk:
    t: float
    direction: str
    data: bytes
    stream: str


@cache
def chunks(name: str) -> tuple[Chunk, ...]:
    out = []
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["dir"] == "note":
                continue
            out.append(Chunk(rec["t"], rec["dir"], rec["data"].encode("latin-1"), rec.get("stream", "")))
    return tuple(out)


def stream_chunks(name: str, direction: str = FROM_ASTERISK, stream: str | None = None) -> list[bytes]:
    return [c.data for c in chunks(name) if c.direction == direction and (stream is None or c.stream == stream)]


def stream_bytes(name: str, direction: str = FROM_ASTERISK, stream: str | None = None) -> bytes:
    return b"".join(stream_chunks(name, direction, stream))


def all_names() -> list[str]:
    """The AMI recordings: `ami-*` scenarios and the AMI side of the `agi-*` ones (not the AGI streams)."""
    names = (p.name[: -len(".jsonl")] for p in DATA.glob("*.jsonl"))
    return sorted(n for n in names if n.endswith(".ami") or (n.startswith("ami-") and not n.endswith(".agi")))

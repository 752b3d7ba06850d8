"""Read the real Asterisk 22 recordings in tests/data/asterisk/ and turn an AGI stream into a replay plan.

A plan is the ordered list of what happened on one FastAGI connection:
  ("send", line)            the FastAGI server sent a command line (bytes incl. terminator)
  ("recv", line)            Asterisk sent one line (incl. "\\n")
  ("dtmf", digit, delay)    the caller pressed a key `delay` s after the last command was sent (in flight)
  ("hangup", delay)         the caller hung up `delay` s after the last command was sent (in flight)
  ("hangup_idle",)          the caller hung up while no command was in flight
  ("retrieve", delay, talk) someone retrieved the parked call after `delay`, and hung up `talk` s later
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from tests.asterisk_data import ASTERISK_DATA

ROOT = ASTERISK_DATA


@dataclass
class Stream:
    name: str
    env: list[str] = field(default_factory=list)
    plan: list[tuple] = field(default_factory=list)
    start: float = 0.0
    end: float = 1e9


def load_records(name: str) -> list[dict]:
    with open(ROOT / (name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def index_names() -> list[str]:
    """Scenario names listed in the README's index table."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M)


def agi_streams(name: str) -> list[Stream]:
    recs = load_records(name)
    streams: dict[str, Stream] = {}
    order: list[str] = []
    for r in recs:
        sname = r.get("stream", "agi1") if r["dir"] != "note" else r.get("stream", "note")
        if r["dir"] == "note" and sname != "note":
            st = streams.setdefault(sname, Stream(sname))
            if sname not in order:
                order.append(sname)
            if r["data"].startswith("Asterisk connected"):
                st.start = r["t"]
            if r["data"].startswith("EOF") or r["data"].startswith("FastAGI server closes"):
                st.end = min(st.end, r["t"])
    # second pass: bytes and global notes in file order
    pending: dict[str, str] = {}
    last_send: dict[str, float] = {}
    in_flight: dict[str, bool] = {}
    retrieve_at: float | None = None
    for r in recs:
        t = r["t"]
        if r["dir"] == "note":
            if r.get("stream", "note") != "note":
                continue
            st = _active(streams, t)
            if st is None:
                continue
            text = r["data"]
            m = re.match(r"inject DTMF '(.)'", text)
            if m:
                st.plan.append(("dtmf", m.group(1), round(t - last_send[st.name], 4)))
            elif text.startswith("caller hangs up"):
                if in_flight.get(st.name):
                    st.plan.append(("hangup", round(t - last_send[st.name], 4)))
                else:
                    st.plan.append(("hangup_idle",))
            elif "parkedcalls" in text and text.startswith("AMI Originate"):
                retrieve_at = t
            elif text.startswith("retriever hangs up") and retrieve_at is not None:
                st.plan.append(("retrieve", round(retrieve_at - last_send[st.name], 4), round(t - retrieve_at, 4)))
            continue
        sname = r.get("stream", "agi1")
        st = streams.setdefault(sname, Stream(sname))
        if r["dir"] == "app->asterisk":
            st.plan.append(("send", r["data"]))
            last_send[sname] = t
            in_flight[sname] = True
            continue
        buf = pending.get(sname, "") + r["data"]
        lines = buf.split("\n")
        pending[sname] = lines.pop()
        for line in lines:
            line += "\n"
            if not st.env or st.env[-1] != "\n":
                st.env.append(line)
                continue
            st.plan.append(("recv", line))
            if not line.startswith("520-") and not line.startswith("HANGUP"):
                in_flight[sname] = False
    return [streams[n] for n in order if streams[n].env]


def _active(streams: dict[str, Stream], t: float) -> Stream | None:
    for st in streams.values():
        if st.start <= t <= st.end + 0.5:
            return st
    return None


def env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for line in env[:-1]:
        k, _, v = line[:-1].partition(": ")
        out[k] = v
    return out


def normalise(line: str) -> str:
    """Replace what differs between runs: ids, pointers, thread ids, ports, channel sequence numbers."""
    line = re.sub(r"agi_uniqueid: \d+\.\d+", "agi_uniqueid: <UID>", line)
    line = re.sub(r"agi_threadid: \d+", "agi_threadid: <TID>", line)
    line = re.sub(r"agi://127\.0\.0\.1:\d+/", "agi://127.0.0.1:<PORT>/", line)
    line = re.sub(r"-[0-9a-f]{8}(;[12])?\b", r"-<SEQ>\1", line)
    line = re.sub(r"0x[0-9a-f]{6,}", "<PTR>", line)
    return line

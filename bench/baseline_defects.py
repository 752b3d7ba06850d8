#!/usr/bin/env python3
"""Reproduce, with numbers, the defects of the AGI baselines (panoramisk 1.4 FastAGI, pyst2 0.5 classic AGI) that
rule them out as runtime dependencies, and run the same scenarios against ivr.agi for comparison.

Dev-only: needs the `bench` extra (panoramisk, pyst2). Every scenario runs in a child process killed after a hard
deadline, so a baseline that freezes or loops forever cannot hang this script. Wire lines are the exact ones from
the Asterisk 22.10.1 transcripts (agi-03 hangup ordering, agi-05 520 usage block).

    .venv/bin/python bench/baseline_defects.py          # prints a table; results go into docs/decisions.md
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
TICK = 0.01  # heartbeat period of the server process (s)
WINDOW = 1.0  # observation window after the bad client leaves (s)
HARD_DEADLINE = 3.0  # a child still running after this is killed and reported as hung

ENV = (
    b"agi_network: yes\nagi_network_script: bench\nagi_request: agi://127.0.0.1/bench\n"
    b"agi_channel: Local/agi-03a@agi-scen-0000000b;2\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795909275.25\nagi_version: 22.10.1\nagi_callerid: 5551234\nagi_calleridname: IVR Caller\n"
    b"agi_accountcode: \n\n"
)
HANGUP_REPLY = b"200 result=-1 endpos=12160\n"  # agi-03 [agi1], then ~40 ms later:
HANGUP_LINE = b"HANGUP\n"
USAGE_BLOCK = (  # agi-05, reply to "STREAM FILE" without arguments
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Send the given file, allowing playback to be interrupted by the given digits, if any. Returns"
    b" <literal>0</literal>"
    b" if playback completes without a digit being pressed, or the ASCII numerical value of the digit if one was"
    b" pressed, or <literal>-1</literal> on error or if the channel was disconnected. If musiconhold is playing before"
    b" calling stream file it will be automatically stopped and will not be restarted after completion.\n"
    b"It sets the following channel variables upon completion:\n"
    b"<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
    b"    <value>SUCCESS</value>\n"
    b"    <value>FAILED</value>\n"
    b"520 End of proper usage.\n"
)


# ---------------------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------------------


def child_server(kind: str) -> None:
    """A FastAGI server (ours or panoramisk) plus a heartbeat that prints a tick every TICK seconds.

    Route "bench": STREAM FILE, GET VARIABLE CALLERID(num), GET VARIABLE AGISTATUS; each result is printed as
    a JSON line, so the parent sees what the library returned for each reply.
    """
    sys.path.insert(0, str(REPO))

    def report(obj) -> None:
        sys.stdout.write("R " + json.dumps(obj) + "\n")
        sys.stdout.flush()

    async def heartbeat() -> None:
        while True:
            sys.stdout.write("T\n")
            sys.stdout.flush()
            await asyncio.sleep(TICK)

    async def main() -> None:
        if kind == "panoramisk":
            from panoramisk.fast_agi import Application

            async def bench(request) -> None:
                for cmd in ("STREAM FILE demo-congrats \"#\"", "GET VARIABLE CALLERID(num)", "GET VARIABLE AGISTATUS"):
                    try:
                        report({"cmd": cmd, "got": repr(await request.send_command(cmd))})
                    except Exception as exc:  # noqa: BLE001 - we report whatever the library does
                        report({"cmd": cmd, "got": f"raised {type(exc).__name__}: {exc}"})

            app = Application(loop=asyncio.get_running_loop())
            app.add_route("bench", bench)
            server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        else:
            from ivr.agi import FastAGIServer, Router
            from ivr.agi.errors import AGIError

            async def bench(session) -> None:
                for words in (
                    ("STREAM", "FILE", "demo-congrats", "#"),
                    ("GET", "VARIABLE", "CALLERID(num)"),
                    ("GET", "VARIABLE", "AGISTATUS"),
                ):
                    try:
                        reply = await session.command(*words)
                        report({"cmd": " ".join(words), "got": f"{reply.lines[0]!r} hung_up={session.hung_up}"})
                    except AGIError as exc:
                        report({"cmd": " ".join(words), "got": f"raised {type(exc).__name__}: {exc}"})

            router = Router()
            router.add("bench", bench)
            ours = FastAGIServer(router, "127.0.0.1", 0, header_timeout=5.0, command_timeout=5.0)
            await ours.start()
            server = ours._server
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        await heartbeat()

    asyncio.run(main())


def child_classic(kind: str) -> None:
    """A classic AGI script (ours or pyst2) over stdin/stdout: STREAM FILE, GET VARIABLE x2. Results on stderr."""

    def report(obj) -> None:
        sys.stderr.write("R " + json.dumps(obj) + "\n")
        sys.stderr.flush()

    if kind == "pyst2":
        import asterisk.agi as pyst

        agi = pyst.AGI()
        for name, call in (
            ("STREAM FILE", lambda: agi.stream_file("demo-congrats", "#")),
            ("GET VARIABLE CALLERID(num)", lambda: agi.get_variable("CALLERID(num)")),
            ("GET VARIABLE AGISTATUS", lambda: agi.get_variable("AGISTATUS")),
        ):
            try:
                report({"cmd": name, "got": repr(call())})
            except Exception as exc:  # noqa: BLE001
                report({"cmd": name, "got": f"raised {type(exc).__name__}: {exc}"})
        return
    sys.path.insert(0, str(REPO))
    from ivr.agi import Router
    from ivr.agi.classic import main as classic_main
    from ivr.agi.errors import AGIError

    async def bench(session) -> None:
        for words in (
            ("STREAM", "FILE", "demo-congrats", "#"),
            ("GET", "VARIABLE", "CALLERID(num)"),
            ("GET", "VARIABLE", "AGISTATUS"),
        ):
            try:
                reply = await session.command(*words)
                report({"cmd": " ".join(words), "got": f"{reply.lines[0]!r} hung_up={session.hung_up}"})
            except AGIError as exc:
                report({"cmd": " ".join(words), "got": f"raised {type(exc).__name__}: {exc}"})

    def factory() -> Router:
        router = Router()
        router.add("bench", bench)
        return router

    classic_main(factory)


# ---------------------------------------------------------------------------------------------------------
# Parent: scenarios
# ---------------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return float("nan")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


class Child:
    def __init__(self, args: list[str], stdin_pipe: bool = False) -> None:
        self.proc = subprocess.Popen(
            [PY, __file__, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
        )
        self.buf = b""
        self.lines: list[str] = []

    def pump(self, timeout: float) -> None:
        """Read whatever the child printed within `timeout` seconds."""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode() for d in done]

    def wait_line(self, prefix: str, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            self.pump(0.05)
        return None

    def ticks(self) -> int:
        return sum(1 for line in self.lines if line == "T")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


def scenario_mid_header(kind: str) -> dict:
    """A client sends half an environment block and disconnects. Does the server's event loop keep running?"""
    child = Child(["--child-server", kind])
    try:
        port = int(child.wait_line("PORT", 10).split()[1])
        child.pump(0.2)
        before_ticks, cpu0 = child.ticks(), cpu_seconds(child.proc.pid)
        with socket.create_connection(("127.0.0.1", port)) as bad:
            bad.sendall(ENV[:40])
        t0 = time.monotonic()
        # A healthy call arrives right after: is it served (does the server send its first command)?
        good = socket.create_connection(("127.0.0.1", port))
        good.sendall(ENV)
        good.settimeout(WINDOW)
        try:
            served = good.recv(100).startswith(b"STREAM FILE")
        except TimeoutError:
            served = False
        good.close()
        child.pump(max(0.0, WINDOW - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
        ticks = child.ticks() - before_ticks
        cpu = cpu_seconds(child.proc.pid) - cpu0
        return {
            "scenario": "client disconnects mid-header",
            "library": kind,
            "heartbeats": f"{ticks} in {elapsed:.1f} s (expected ~{int(elapsed / TICK)})",
            "next call served": served,
            "server CPU": f"{cpu / elapsed * 100:.0f}%",
            "verdict": "OK" if ticks > elapsed / TICK / 3 and served else "DEFECT: event loop frozen",
        }
    finally:
        child.kill()


async def _fake_asterisk(port: int, replies: list[tuple[bytes, float, bytes]], close_after: bool) -> list[bytes]:
    """Connect like Asterisk; for each command received send `reply`, then after `delay` s send `late`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV)
    got = []
    for reply, delay, late in replies:
        line = await asyncio.wait_for(reader.readline(), 2)
        got.append(line)
        writer.write(reply)
        await writer.drain()
        if late:
            await asyncio.sleep(delay)
            writer.write(late)
            await writer.drain()
    if close_after:
        writer.close()
    else:
        try:
            while await asyncio.wait_for(reader.readline(), 1.0):
                pass
        except (TimeoutError, ConnectionError):
            pass
        writer.close()
    return got


def run_fastagi_script(kind: str, replies, close_after=False) -> list[dict]:
    child = Child(["--child-server", kind])
    try:
        port = int(child.wait_line("PORT", 10).split()[1])
        with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            asyncio.run(asyncio.wait_for(_fake_asterisk(port, replies, close_after), HARD_DEADLINE))
        child.pump(0.5)
        return [json.loads(line[2:]) for line in child.lines if line.startswith("R ")]
    finally:
        child.kill()


def run_classic_script(kind: str, replies, close_after=False) -> tuple[list[dict], str, int]:
    """Play Asterisk over pipes to a classic AGI child; returns results, how it ended, peak RSS (KiB)."""
    env = ENV.replace(b"agi_network: yes\n", b"").replace(b"agi_network_script: bench\n", b"") + b""
    env = env[:-1] + b"agi_arg_1: bench\n\n"
    child = subprocess.Popen(
        [PY, __file__, "--child-classic", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdin.write(env)
    child.stdin.flush()
    ended = "exited"
    rss = -1
    try:
        for reply, delay, late in replies:
            ready, _, _ = select.select([child.stdout], [], [], 2)
            if not ready:
                break
            child.stdout.readline()
            child.stdin.write(reply)
            child.stdin.flush()
            if late:
                time.sleep(delay)
                child.stdin.write(late)
                child.stdin.flush()
        if close_after:
            child.stdin.close()
        else:
            time.sleep(0.3)
            child.stdin.close()
        try:
            child.wait(HARD_DEADLINE)
        except subprocess.TimeoutExpired:
            rss = rss_kib(child.pid)
            cpu = cpu_seconds(child.pid)
            ended = f"still running after {HARD_DEADLINE:.0f} s (killed; CPU {cpu:.1f} s, RSS {rss // 1024} MiB)"
            child.kill()
            child.wait(5)
    except BrokenPipeError:
        pass
    err = child.stderr.read().decode(errors="replace")
    results = [json.loads(line[2:]) for line in err.splitlines() if line.startswith("R ")]
    return results, ended, rss


HANGUP_SCRIPT = [(HANGUP_REPLY, 0.04, HANGUP_LINE), (b"200 result=1 (5551234)\n", 0, b""), (b"200 result=0\n", 0, b"")]
EOF_IN_USAGE = [(USAGE_BLOCK[: USAGE_BLOCK.index(b"\n") + 1] + b"Send the given file\n", 0, b"")]


def fmt(results: list[dict]) -> str:
    return "; ".join(f"{r['cmd'].split(' (')[0]} -> {r['got'][:70]}" for r in results) or "(no result)"


def main() -> int:
    rows: list[tuple[str, str, str]] = []
    print("1) FastAGI client disconnects in the middle of the environment block", flush=True)
    for kind in ("panoramisk", "ivr"):
        r = scenario_mid_header(kind)
        print(
            f"   {kind:10} heartbeats {r['heartbeats']}, next call served: {r['next call served']}, "
            f"server CPU {r['server CPU']} -> {r['verdict']}",
            flush=True,
        )
        rows.append(("mid-header disconnect", kind, r["verdict"]))

    print(
        "2) Caller hangs up during STREAM FILE: '200 result=-1 endpos=12160', 40 ms later 'HANGUP', then the "
        "next commands get '200 result=1 (5551234)' and '200 result=0'",
        flush=True,
    )
    for kind in ("panoramisk", "ivr"):
        res = run_fastagi_script(kind, HANGUP_SCRIPT)
        print(f"   {kind:10} {fmt(res)}", flush=True)
        ok = len(res) == 3 and "5551234" in res[1]["got"] and "result=0" in res[2]["got"]
        rows.append(("replies after HANGUP (FastAGI)", kind, "OK" if ok else "DEFECT: replies shifted"))
    for kind in ("pyst2", "ivr"):
        res, ended, _ = run_classic_script(kind, HANGUP_SCRIPT)
        print(f"   {kind:10} (classic) {fmt(res)}; {ended}", flush=True)
        ok = len(res) == 3 and "5551234" in res[1]["got"] and "result=0" in res[2]["got"]
        rows.append(("replies after HANGUP (classic)", kind, "OK" if ok else "DEFECT: replies shifted"))

    print(
        "3) The full 6-line 520 usage block of agi-05, then GET VARIABLE CALLERID(num) -> '200 result=1 (5551234)'",
        flush=True,
    )
    usage_script = [(USAGE_BLOCK, 0, b""), (b"200 result=1 (5551234)\n", 0, b""), (b"200 result=0\n", 0, b"")]
    for kind in ("panoramisk", "ivr"):
        res = run_fastagi_script(kind, usage_script)
        print(f"   {kind:10} {fmt(res)}", flush=True)
        ok = len(res) == 3 and "5551234" in res[1]["got"]
        rows.append(("multi-line 520 block (FastAGI)", kind, "OK" if ok else "DEFECT: replies shifted"))

    print("4) EOF inside a 520 usage block (Asterisk stops mid-reply)", flush=True)
    for kind in ("pyst2", "ivr"):
        res, ended, rss = run_classic_script(kind, EOF_IN_USAGE, close_after=True)
        print(f"   {kind:10} (classic) {fmt(res)}; {ended}", flush=True)
        rows.append(("EOF inside 520 block (classic)", kind, "OK" if ended == "exited" else "DEFECT: loops forever"))
    for kind in ("panoramisk", "ivr"):
        res = run_fastagi_script(kind, EOF_IN_USAGE, close_after=True)
        print(f"   {kind:10} {fmt(res)}", flush=True)

    print("\n| scenario | library | result |\n|---|---|---|")
    for scenario, kind, verdict in rows:
        print(f"| {scenario} | {kind} | {verdict} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-server":
        child_server(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--child-classic":
        child_classic(sys.argv[2])
    else:
        sys.exit(main())

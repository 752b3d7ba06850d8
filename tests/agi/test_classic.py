"""Classic AGI: agi/ivr_agi.py as a subprocess fed over pipes, like Asterisk's AGI() application does."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "agi" / "ivr_agi.py"
WAIT = 10.0


def classic_env(*args: str, name: bytes = b"IVR Caller") -> bytes:
    # The classic env has no agi_network lines; agi_request is the script. Args as AGI(script,hello,x).
    lines = [
        b"agi_request: ivr_agi.py",
        b"agi_channel: Local/agi-01@agi-scen-00000009;2",
        b"agi_language: en",
        b"agi_type: Local",
        b"agi_uniqueid: 1795909233.19",
        b"agi_version: 22.10.1",
        b"agi_callerid: 5551234",
        b"agi_calleridname: " + name,
        b"agi_callingpres: 0",
        b"agi_callingani2: 0",
        b"agi_callington: 0",
        b"agi_callingtns: 0",
        b"agi_dnid: unknown",
        b"agi_rdnis: unknown",
        b"agi_context: agi-scen",
        b"agi_extension: agi-01",
        b"agi_priority: 3",
        b"agi_enhanced: 0.0",
        b"agi_accountcode: ",
        b"agi_threadid: 140188048737984",
    ] + [b"agi_arg_%d: %s" % (i + 1, a.encode()) for i, a in enumerate(args)]
    return b"\n".join(lines) + b"\n\n"


async def start(env: bytes) -> asyncio.subprocess.Process:
    environ = dict(
        os.environ,
        IVR_AGI_ROUTER="classic_router:build_router",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), str(REPO)]),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    proc.stdin.write(env)
    await proc.stdin.drain()
    return proc


async def expect(proc, command: bytes, reply: bytes) -> None:
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    assert line == command, (line, (await proc.stderr.read()).decode(errors="replace"))
    proc.stdin.write(reply)
    await proc.stdin.drain()


async def finish(proc) -> tuple[int, bytes, bytes]:
    rest = await asyncio.wait_for(proc.stdout.read(), WAIT)
    proc.stdin.close()
    err = await asyncio.wait_for(proc.stderr.read(), WAIT)
    return await asyncio.wait_for(proc.wait(), WAIT), rest, err


async def test_classic_runs_the_route_named_by_the_first_argument():
    proc = await start(classic_env("hello", "x", name=b"J\xf6rg"))  # Latin-1 caller name must not break the call
    await expect(proc, b"ANSWER\n", b"200 result=0\n")
    await expect(proc, b"GET VARIABLE CALLERID(name)\n", b"200 result=1 (IVR Caller)\n")
    await expect(proc, 'SET VARIABLE GREETED "IVR Caller|Jörg|hello,x"\n'.encode(), b"200 result=1\n")
    code, rest, err = await finish(proc)
    assert code == 0 and rest == b""
    assert b"a stray print must not reach Asterisk" in err


async def test_classic_unknown_flow_sets_noroute():
    proc = await start(classic_env("nosuchflow"))
    await expect(proc, b'SET VARIABLE IVR_STATUS "NOROUTE"\n', b"200 result=1\n")
    code, rest, _ = await finish(proc)
    assert code == 0 and rest == b""


async def test_classic_handler_error_sets_error_status():
    proc = await start(classic_env("fail"))
    await expect(proc, b'SET VARIABLE IVR_STATUS "ERROR"\n', b"200 result=1\n")
    code, _, err = await finish(proc)
    assert code == 1 and b"handler bug" in err


async def test_classic_sighup_marks_the_session_dead_instead_of_killing_it():
    proc = await start(classic_env("hangup"))
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    assert line == b'STREAM FILE demo-congrats "#"\n'
    proc.send_signal(signal.SIGHUP)  # classic AGI learns of a hangup by SIGHUP, not a HANGUP line
    await asyncio.sleep(0.2)
    proc.stdin.write(b"200 result=-1 endpos=12160\n")
    await proc.stdin.drain()
    await expect(proc, b'SET VARIABLE SAW_HANGUP "yes"\n', b"200 result=1\n")
    code, rest, _ = await finish(proc)
    assert code == 0 and rest == b""


async def test_classic_eof_in_header_exits():
    proc = await start(classic_env("hello")[:50])
    proc.stdin.close()
    code = await asyncio.wait_for(proc.wait(), WAIT)
    assert code == 1

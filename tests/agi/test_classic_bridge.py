"""Whole classic AGI calls (agi/ivr_agi.py over real pipes) that reach the services needing an event loop: a CRM
lookup over HTTP and a voicemail stored, through ivr.syncrun's bridge, after the first command went out without
asyncio; and the call's end by SIGHUP, by `result=-1` + EOF, and by garbage on stdin, at any point."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web

from ivr.storage import open_storage

from .test_classic import REPO, SCRIPT, WAIT, classic_env
from .test_classic_call import MAX_COMMANDS, reply

FLOW = """
name: bridge
language: en
prompts:
  hello: {en: {file: en/hello, text: "Hello."}}
  beep_here: {en: {file: en/beep_here, text: "Leave a message."}}
start: hello
nodes:
  hello:
    type: play
    prompts: [hello]
    next: crm
  crm:
    type: lookup
    url: "http://127.0.0.1:{port}/crm/${caller_id}"
    method: GET
    timeout: 5s
    map: {customer: name}
    next: tell
    on_error: message
  tell:
    type: set
    variables: {IVR_CUSTOMER: "${customer}"}
    channel: true
    next: message
  message:
    type: voicemail
    mailbox: "1000"
    greeting: [beep_here]
    beep: true
    max_length: 30s
    silence: 5s
    next: bye
  bye:
    type: hangup
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IVR_AGI_ROUTER"}
    env.update(
        IVR_CONFIG=str(REPO / "config" / "ivr.yaml"),
        IVR_FLOWS_DIR=str(tmp_path / "flows"),
        IVR_STORAGE_URL=f"sqlite:///{tmp_path / 'ivr.db'}",
        IVR_RECORDINGS_DIR=str(tmp_path / "recordings"),
        IVR_AGI_CACHE_DIR=str(tmp_path / "cache"),
        IVR_AGI_LOG_LEVEL="DEBUG",
        PYTHONWARNINGS="always::ResourceWarning",  # printed to stderr if the call leaves a socket or loop open
    )
    return env


async def _spawn(env: dict[str, str], flow: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(classic_env(flow))
    await proc.stdin.drain()
    return proc


async def _end(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    assert proc.stdin is not None and proc.stderr is not None
    if not proc.stdin.is_closing():
        proc.stdin.close()
    err = (await asyncio.wait_for(proc.stderr.read(), WAIT)).decode(errors="replace")
    return await asyncio.wait_for(proc.wait(), WAIT), err


async def _converse(proc: asyncio.subprocess.Process) -> list[bytes]:
    """Answer every command as the caller of test_classic_call does, until the script closes its side."""
    assert proc.stdin is not None and proc.stdout is not None
    commands: list[bytes] = []
    while len(commands) < MAX_COMMANDS:
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        if not line:
            break
        commands.append(line.rstrip(b"\n"))
        # A 5 s message ended by the time limit (agi-04); anything else as the caller of test_classic_call.
        proc.stdin.write(b"200 result=0 (timeout) endpos=40000\n" if line.startswith(b"RECORD FILE") else reply(line))
        await proc.stdin.drain()
    return commands


@pytest.fixture
async def crm(tmp_path: Path):  # an HTTP CRM on an ephemeral loopback port; writes the flow that asks it
    asked: list[str] = []

    async def account(request: web.Request) -> web.Response:
        asked.append(request.match_info["number"])
        return web.json_response({"name": "Ona Onaite"})

    app = web.Application()
    app.router.add_get("/crm/{number}", account)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        (tmp_path / "flows").mkdir()
        (tmp_path / "flows" / "bridge.yaml").write_text(FLOW.replace("{port}", str(port)))
        yield asked
    finally:
        await runner.cleanup()


async def test_a_lookup_and_a_voicemail_run_through_the_bridge_after_the_first_command(
    tmp_path: Path, crm: list[str]
) -> None:
    env = _env(tmp_path)
    for _ in range(2):  # the first call builds the cache, the second reads it
        proc = await _spawn(env, "bridge")
        commands = await _converse(proc)
        code, err = await _end(proc)
        assert code == 0, err
        assert "Suspended" not in err and "Traceback" not in err, err
        assert "Unclosed" not in err and "ResourceWarning" not in err, err  # the bridge closed what it opened
    assert crm == ["5551234", "5551234"]  # the caller ID went to the CRM, URL-encoded by the lookup node
    assert commands[0] == b"ANSWER"
    assert b'SET VARIABLE IVR_CUSTOMER "Ona Onaite"' in commands  # the CRM's answer reached the call
    assert any(c.startswith(b"RECORD FILE") for c in commands)
    assert commands[-2:] == [b'SET VARIABLE IVR_STATUS "OK"', b'SET VARIABLE IVR_OUTCOME "voicemail"'] or (
        b"HANGUP" in commands
    )
    storage = open_storage(f"sqlite:///{tmp_path / 'ivr.db'}")
    try:
        voicemails = await storage.list_voicemails()
    finally:
        await storage.close()
    assert len(voicemails) == 2 and {(v.caller, v.mailbox, v.flow) for v in voicemails} == {
        ("5551234", "1000", "bridge")
    }


async def _first_commands(proc: asyncio.subprocess.Process, n: int) -> None:
    """Answer the first `n` commands (the call goes on), leave the next one unanswered."""
    assert proc.stdin is not None and proc.stdout is not None
    for _ in range(n):
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert line, "the script ended early"
        proc.stdin.write(reply(line))
        await proc.stdin.drain()
    assert await asyncio.wait_for(proc.stdout.readline(), WAIT)  # command n+1 is in flight


@pytest.mark.parametrize("answered", [0, 1, 3])
async def test_sighup_at_any_point_ends_the_call_cleanly(tmp_path: Path, crm: list[str], answered: int) -> None:
    proc = await _spawn(_env(tmp_path), "bridge")
    await _first_commands(proc, answered)
    proc.send_signal(signal.SIGHUP)  # the caller hangs up while a command runs: Asterisk answers it with -1
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"200 result=-1\n")
    await proc.stdin.drain()
    # Dead mode from here: no media command, at most variable reads/writes (answered), then the script closes.
    rest = []
    while line := await asyncio.wait_for(proc.stdout.readline(), WAIT):
        assert line.startswith((b"GET VARIABLE", b"SET VARIABLE")), line
        rest.append(line)
        proc.stdin.write(b"200 result=0\n")
        await proc.stdin.drain()
    code, err = await _end(proc)
    assert code == 0, err
    assert rest == [b"GET VARIABLE IVR_TRANSFERRED\n"]  # moved by the API? (engine); no IVR_STATUS once hung up
    assert "Traceback" not in err, err


@pytest.mark.parametrize("answered", [0, 2])
async def test_result_minus_one_then_eof_ends_the_call_cleanly(tmp_path: Path, crm: list[str], answered: int) -> None:
    proc = await _spawn(_env(tmp_path), "bridge")
    await _first_commands(proc, answered)
    assert proc.stdin is not None
    proc.stdin.write(b"200 result=-1\n")
    proc.stdin.close()  # Asterisk closes the pipe as the channel goes away
    code, err = await _end(proc)
    assert code == 0, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize(
    ("garbage", "broken"),
    [(b"\xff\xfe garbage\n", True), (b"x" * 20000, True), (b"200 result=0\n200 result=0\n", False)],
)
async def test_garbage_on_stdin_ends_the_call_cleanly(
    tmp_path: Path, crm: list[str], garbage: bytes, broken: bool
) -> None:
    proc = await _spawn(_env(tmp_path), "bridge")
    await _first_commands(proc, 1)
    assert proc.stdin is not None
    proc.stdin.write(garbage)  # the reply to the command in flight (the first prompt)
    await proc.stdin.drain()
    proc.stdin.close()
    code, err = await _end(proc)
    assert code == 0 and "Traceback" not in err, err
    # Not a reply: the session is broken and the flow ends as an error (logged). Extra replies are read as the
    # replies of the next commands, then EOF ends the call as a hangup.
    assert ("ended with an error" in err) == broken, err

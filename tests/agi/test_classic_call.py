"""A whole classic AGI call on the cache (agi/ivr_agi.py as Asterisk runs it) sends exactly the commands the same
call sends over FastAGI to the service's routes, and stores what it stores (the storage opened on first use)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from ivr.agi import FastAGIServer
from ivr.flow.routing import service_router
from ivr.settings import load_settings
from ivr.storage import open_storage

from .test_classic import REPO, SCRIPT, WAIT, classic_env

MAX_COMMANDS = 200


def reply(command: bytes) -> bytes:
    """A caller who presses 1 whenever asked and listens to every prompt to the end."""
    words = command.split()
    if command.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=8000\n"
    if command.startswith(b"GET DATA"):
        return b"200 result=1\n"
    if command.startswith(b"WAIT FOR DIGIT"):
        return b"200 result=49\n"
    if words[:1] == [b"HANGUP"]:
        return b"200 result=1\n"
    return b"200 result=0\n"  # ANSWER, SET VARIABLE, EXEC, VERBOSE; GET VARIABLE: not set


async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: bytes) -> list[bytes]:
    """Play Asterisk: send the environment, answer every command until the script closes; the commands seen."""
    writer.write(env)
    await writer.drain()
    commands: list[bytes] = []
    while len(commands) < MAX_COMMANDS:
        line = await asyncio.wait_for(reader.readline(), WAIT)
        if not line:
            break
        commands.append(line.rstrip(b"\n"))
        writer.write(reply(line))
        await writer.drain()
    return commands


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    return {
        "IVR_CONFIG": str(REPO / "config" / "ivr.yaml"),
        "IVR_STORAGE_URL": f"sqlite:///{tmp_path / name}",
        "IVR_AGI_CACHE_DIR": str(tmp_path / "cache"),
    }


async def classic_call(tmp_path: Path, flow: str) -> list[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "IVR_AGI_ROUTER"}
    env.update(_env(tmp_path, "classic.db"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    class PipeWriter:  # the subprocess' stdin as converse() writes it
        def write(self, data: bytes) -> None:
            proc.stdin.write(data)  # type: ignore[union-attr]

        async def drain(self) -> None:
            await proc.stdin.drain()  # type: ignore[union-attr]

    try:
        commands = await converse(proc.stdout, PipeWriter(), classic_env(flow))  # type: ignore[arg-type]
    finally:
        proc.stdin.close()
        err = await asyncio.wait_for(proc.stderr.read(), WAIT)
        await asyncio.wait_for(proc.wait(), WAIT)
    assert proc.returncode == 0, err.decode(errors="replace")
    return commands


async def fastagi_call(tmp_path: Path, flow: str) -> list[bytes]:
    settings = load_settings(env=_env(tmp_path, "fastagi.db"))
    storage = open_storage(settings.storage.url)
    server = FastAGIServer(service_router(settings, storage=storage), "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            head = f"agi_network: yes\nagi_network_script: {flow}\nagi_request: agi://127.0.0.1/{flow}\n".encode()
            lines = [line for line in classic_env().split(b"\n") if not line.startswith(b"agi_request")]
            return await converse(reader, writer, head + b"\n".join(lines))
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        await server.stop()
        await storage.close()


async def test_a_classic_call_sends_what_the_fastagi_call_sends_and_stores_its_answers(tmp_path: Path) -> None:
    classic = await classic_call(tmp_path, "survey")  # builds the cache
    assert await classic_call(tmp_path, "survey") == classic  # from the cache
    assert classic == await fastagi_call(tmp_path, "survey")
    assert classic[0] == b"ANSWER" and classic[-2:] == [
        b'SET VARIABLE IVR_STATUS "OK"',
        b'SET VARIABLE IVR_OUTCOME "contained"',
    ]
    assert sum(c.startswith(b"WAIT FOR DIGIT") for c in classic) == 2  # both questions asked, answered at once
    storage = open_storage(f"sqlite:///{tmp_path / 'classic.db'}")
    try:
        answers = await storage.list_survey_answers()
    finally:
        await storage.close()
    # two classic calls, each answering both questions with 1
    assert sorted((a.question, a.answer) for a in answers) == [("csat", "1")] * 2 + [("resolved", "1")] * 2


async def test_a_classic_outbound_callback_call_is_the_fastagi_one(tmp_path: Path) -> None:
    """The callback flow (the customer called back, presses 1, joins the queue) over both modes."""
    classic = await classic_call(tmp_path, "callback")
    assert classic == await fastagi_call(tmp_path, "callback")
    assert any(c.startswith(b"EXEC Queue") for c in classic), classic


async def test_a_classic_call_of_the_main_flow_is_the_fastagi_one(tmp_path: Path) -> None:
    """The front door (language, hours, menus, voicemail or a transfer) over both modes: the same commands."""
    classic = _unstamped(await classic_call(tmp_path, "main"))
    assert classic == _unstamped(await fastagi_call(tmp_path, "main"))
    assert classic[0] == b"ANSWER" and len(classic) > 5


def _unstamped(commands: list[bytes]) -> list[bytes]:
    """A voicemail's file name carries the second it was recorded in; the two calls may straddle one."""
    return [re.sub(rb"-\d{8}T\d{6}", b"-<stamp>", c) for c in commands]

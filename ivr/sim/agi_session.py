"""The FastAGI client of one simulated call: Asterisk connecting to the service and running its commands.

Rules for this file:
- Connect, send the env block, then strictly one command at a time: read a line, run it, write the reply.
  Asterisk does not read the socket while a command runs; neither do we.
- The session holds the virtual clock except while a command waits on media/timers (see clock.py).
- Hangup rules (agi-03): a hangup during a command ends it with its `-1` form, and `HANGUP\\n` follows 40 ms
  later; a hangup while idle sends `HANGUP\\n` at once; after that the session is in dead mode (511 for
  commands that need a live channel) and stays open until the service closes.
- Exception, as res_agi has it: STREAM FILE, GET OPTION, WAIT FOR DIGIT, SAY DIGITS/NUMBER/ALPHA and GET DATA
  watch the socket (they pass agi->ctrl to ast_waitstream_full / ast_waitfordigit_full): when the service sends
  something or closes while one runs, it stops at once without a reply; a close then ends the AGI. Every other
  command, EXEC'd applications (Dial, Queue, Park, MusicOnHold) included, runs to its end whatever the service
  does: a service that dies during a bridged Dial leaves the conversation undisturbed, and AGI() then ends with
  AGISTATUS=SUCCESS (run_agi's "AGI Script ... completed"), keeping the variables set so far.
- Each command emits AMI AGIExecStart/AGIExecEnd with the raw command text (a stray "\\r" included).
- AGISTATUS: HANGUP if the channel hung up (or left through a park comeback), FAILURE after a missing-file
  STREAM FILE or an unwritable RECORD FILE, else SUCCESS.
- Async AGI (`AGI(agi:async)`, agi-09): no socket.  AsyncAGIStart carries the URL-encoded env; commands come
  from AMI `Action: AGI`, run one at a time after a 100 ms poll, and each reply (all its lines) is the
  URL-encoded `Result` of AsyncAGIExec.  There is no HANGUP line; ASYNCAGI BREAK or a hangup ends with
  AsyncAGIEnd.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import zlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ivr.sim.agi_codec import (
    ASYNC_ENV_ORDER,
    DEAD,
    HANGUP_LINE,
    INVALID,
    URI_SAFE,
    LineBuffer,
    LineTooLong,
    env_block,
    parse_command,
    usage_block,
)
from ivr.sim.agi_commands import HANDLERS, Done, Handler, Usage
from ivr.sim.channel import SimChannel

if TYPE_CHECKING:
    from ivr.sim.call import Call
    from ivr.sim.model import SimConfig
    from ivr.sim.simulator import SimulatedAsterisk

# res_agi commands that pass agi->ctrl to the media wait: readable socket (data or EOF) = "a new command", stop
WATCHES_SOCKET = frozenset(
    {"STREAM FILE", "GET OPTION", "WAIT FOR DIGIT", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "GET DATA"}
)
RESULT_TEXT = {"ok": ("200", "Success"), "failure": ("-1", "Failure"), "unknown": ("200", "Unknown Result")}


class AGISession:
    def __init__(
        self,
        sim: SimulatedAsterisk,
        call: Call,
        channel: SimChannel,
        host: str,
        port: int,
        env: dict[str, str],
        args: tuple[str, ...],
        async_mode: bool = False,
        also: list[tuple[str, int]] | None = None,
    ) -> None:
        self.sim = sim
        self.async_mode = async_mode
        self.async_open = False
        self.break_requested = False
        self._capture: list[bytes] = []
        self._async_queue: asyncio.Queue[tuple[str, str | None] | None] = asyncio.Queue()
        self.call = call
        self.channel = channel
        self.config: SimConfig = sim.config
        self.host, self.port = host, port
        self.also = list(also or ())  # hagi://: the next SRV targets, tried when a connect fails
        self.env = env
        self.args = args
        self.failed = False
        self.dead = False
        self.in_command = False
        self.current = ""  # title of the running command ("" when idle)
        self.comeback_context: str | None = None
        self.comeback_exten, self.comeback_priority = "s", 1  # where in comeback_context (Park's c() option)
        self.comeback_app = ("", "")  # the app running when the async goto happened (for Newexten)
        self.by_service = False
        self.commands = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._buf = LineBuffer()
        self._eof = False
        self.service_closed = asyncio.Event()  # the service closed its side (or died: the kernel closed it)
        self._idle_waiters: list[asyncio.Future[None]] = []
        # CommandIds are random on Asterisk; here they are reproducible (seed + uniqueid, not Python's hash())
        self._rng = random.Random(zlib.crc32(channel.uniqueid.encode()) ^ sim.config.seed)
        channel.on_hangup(self._on_hangup)

    # -- helpers used by command handlers ----------------------------------------------------------------------
    def log(self, kind: str, text: str) -> None:
        self.call.log.append((kind, text))

    def hangup_by_service(self) -> None:
        self.by_service = True
        self.call.note_end("service", "HANGUP")
        # Asterisk soft-hangs-up the channel at once (SoftHangupRequest, Cause 32) and ends it when the AGI is
        # over (agi-03d); the model ends it now, with the same events (the AGISTATUS VarSet comes after them).
        self.channel.emit("SoftHangupRequest", "call,all", [("Cause", "32")])
        self.channel.dialplan_hangup(16)
        self.call.hangup_caller_leg(16)

    def comeback(self, context: str, exten: str = "s", priority: int = 1) -> None:
        """Park timed out (or a redirect): the channel leaves for context,exten,priority; the AGI sees a hangup."""
        self.comeback_context = context
        self.comeback_exten, self.comeback_priority = exten, priority
        self.comeback_app = (self.channel.app, self.channel.appdata)

    def writable_path(self, name: str) -> Path | None:
        """Where a file named by the service may be written; None = Asterisk's "cannot create" case."""
        if "\x00" in name or ".." in Path(name).parts:
            return None
        mapped = self.config.map_path(name if os.path.isabs(name) else str(self.config.record_dir / name))
        path = Path(mapped)
        return path if path.parent.is_dir() else None

    def abort(self) -> None:
        """Close the FastAGI socket from Asterisk's side (shutdown of a session the service never closed)."""
        if self._writer is not None:
            self._writer.close()

    def wait_idle(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if (self._writer is not None or self.async_open) and not self.in_command:
            fut.set_result(None)
        else:
            self._idle_waiters.append(fut)
        return fut

    # -- I/O ---------------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self.async_mode:
            if data != HANGUP_LINE:
                self._capture.append(data)
            return
        if self._writer is None or self._writer.is_closing():
            return
        self._writer.write(data)
        self.call.add_line("<<<", data)

    def _on_hangup(self) -> None:
        if self.async_mode:
            if self.async_open and not self.in_command:
                self._async_queue.put_nowait(None)
            return
        if self._writer is not None and not self.in_command and not self.dead:
            self._send_notice()

    def _send_notice(self) -> None:
        self.dead = True
        self._send(HANGUP_LINE)

    async def _unheld_sleep(self, seconds: float) -> None:
        clock = self.sim.clock
        self.channel.holding_clock = False
        clock.release()
        try:
            await clock.sleep(seconds)
        finally:
            clock.acquire()
            self.channel.holding_clock = True

    # -- Async AGI ---------------------------------------------------------------------------------------------
    def queue_command(self, line: str, command_id: str | None) -> bool:
        """AMI `Action: AGI`: queue a command; False if this session does not take commands (any more)."""
        if not (self.async_mode and self.async_open):
            return False
        self._async_queue.put_nowait((line, command_id))
        return True

    async def _run_async(self) -> str:
        ch = self.channel
        env = env_block(self.env, self.args, ASYNC_ENV_ORDER).decode("latin-1")
        ch.emit("AsyncAGIStart", "agi,all", [("Env", quote(env, safe=URI_SAFE))])
        self.async_open = True
        self._writer = None
        self._notify_idle()
        while not ch.hungup and not self.break_requested:
            item = await self._async_queue.get()
            if item is None:
                break
            line, command_id = item
            await self._unheld_sleep(0.1)  # Asterisk polls the queue every 100 ms
            if ch.hungup:
                break
            self._capture = []
            self.call.add_line(">>>", line.encode("latin-1") + b"\n")
            await self._execute(line)
            result = b"".join(self._capture).decode("latin-1")
            self.call.add_line("<<<", result.encode("latin-1"))
            self._notify_idle()
            ch.emit(
                "AsyncAGIExec",
                "agi,all",
                [("Result", quote(result, safe=URI_SAFE))]
                + ([("CommandId", command_id)] if command_id is not None else []),
            )
        self.async_open = False
        self._notify_idle()
        ch.emit("AsyncAGIEnd", "agi,all")
        return "HANGUP" if ch.hungup else ("FAILURE" if self.failed else "SUCCESS")

    # -- main loop ---------------------------------------------------------------------------------------------
    async def run(self) -> str:
        """Run the AGI until the service closes (or, Async AGI, until ASYNCAGI BREAK/hangup); returns AGISTATUS."""
        if self.async_mode:
            return await self._run_async()
        for host, port in [(self.host, self.port), *self.also]:
            if not host:
                continue
            try:
                reader, writer = await asyncio.open_connection(host, port)
                break
            except OSError as exc:
                self.log("AGI", f"connect to {host}:{port} failed: {exc}")
        else:
            return "FAILURE"
        self._writer, self._reader = writer, reader
        buf = self._buf
        try:
            self._send(env_block(self.env, self.args))
            self._notify_idle()
            while True:
                line = buf.next_line()
                if line is None:
                    if self._eof or not await self._read_more():
                        break
                    continue
                self.call.add_line(">>>", line.encode("latin-1") + b"\n")
                await self._execute(line)
                self._notify_idle()
        except LineTooLong as exc:  # absurd line length: Asterisk would drop the session too (only this: a
            # simulator bug raising ValueError inside a command must fail the call, not pass for a dropped session)
            self.log("AGI", str(exc))
        except BaseException:  # a simulator bug (or cancellation) fails the call: its socket goes with it
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
            raise
        finally:
            for f in self._idle_waiters:
                if not f.done():
                    f.set_result(None)
            self._idle_waiters.clear()
        gone = self.channel.hungup or self.comeback_context is not None
        if gone:
            self._send(HANGUP_LINE)  # Asterisk sends it once more when the session ends
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()
        return "HANGUP" if gone else ("FAILURE" if self.failed else "SUCCESS")

    async def _read_more(self) -> bool:
        """Read from the service into the line buffer; False (and `service_closed`) at EOF or a reset."""
        assert self._reader is not None
        try:
            data = await self._reader.read(65536)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self._eof = True
            self.service_closed.set()
            return False
        self._buf.feed(data)
        return True

    async def _run_watching(self, handler: Handler, args: tuple[str, ...]) -> tuple[bool, Done | None]:
        """Run a socket-watching command: (stopped, its result); stopped when the service sent something or closed
        first (then there is no reply)."""
        if self.async_mode or self._reader is None:
            return False, await handler(self, args)
        if self._eof:
            return True, None  # a closed socket stays readable: the command stops at once
        command = asyncio.ensure_future(handler(self, args))
        watch = asyncio.ensure_future(self._read_more())
        try:
            await asyncio.wait({command, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            command.cancel()
            watch.cancel()
            raise
        if command.done():
            if not watch.done():
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            return False, command.result()
        command.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await command
        return True, None

    def _notify_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def _execute(self, line: str) -> None:
        cmd = parse_command(line)
        ch = self.channel
        self.commands += 1
        command_id = str(self._rng.randrange(1, 2**31))
        ch.emit("AGIExecStart", "agi,all", [("CommandId", command_id), ("Command", line)])
        if cmd.name is None:
            self._send(INVALID)
            code, text = "510", "Invalid or unknown command"
        elif self.dead and not cmd.dead_ok:
            self._send(DEAD)
            code, text = "511", "Command Not Permitted on a dead channel or intercept routine"
        else:
            handler = HANDLERS[cmd.title]
            self.in_command = True
            self.current = cmd.title if cmd.title != "EXEC" or not cmd.args else "EXEC " + cmd.args[0]
            ch.listening = not self.dead
            speech = self.call.spec.record_speech
            if speech and cmd.title == "RECORD FILE":
                now = self.sim.clock.now() + (0.5 if any(w.upper() == "BEEP" for w in cmd.args) else 0.0)
                ch.voice.append((now, now + speech))
            ch.notify_command(line)
            interrupted = False
            try:
                if cmd.title in WATCHES_SOCKET:
                    interrupted, done = await self._run_watching(handler, cmd.args)
                else:
                    done = await handler(self, cmd.args)
            except Usage:
                done = None
            finally:
                self.in_command = False
                ch.listening = False
            if interrupted:  # res_agi: "Stop this command, don't print a result line, as there is a new command"
                code, text = "200", "Success"
            elif done is None:
                head, body = usage_block(cmd.name)
                self._send(head)
                if not self.async_mode:
                    await self._unheld_sleep(self.config.usage_split_delay)
                self._send(body)
                code, text = "520", "Usage"
            else:
                self._send(done.data)
                code, text = RESULT_TEXT[done.status]
            self.current = ""
        ch.emit(
            "AGIExecEnd",
            "agi,all",
            [("CommandId", command_id), ("Command", line), ("ResultCode", code), ("Result", text)],
        )
        if (ch.hungup or self.comeback_context is not None) and not self.dead and not self.async_mode:
            await self._unheld_sleep(self.config.hangup_notice_delay)
            if not self.dead:
                self._send_notice()

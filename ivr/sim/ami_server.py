"""The simulated Asterisk's AMI server: sessions, login, event delivery (ami-10), action dispatch.

Rules for this file:
- Framing is `ivr.ami.protocol` (server role: CRLF or bare LF, case-insensitive names); we only add sockets.
- On connect: `Asterisk Call Manager/11.0.0\\r\\n` at once, no empty line after it.
- Before login every action but Login/Challenge gets `Permission denied` (+ RequestNotAllowed to observers);
  a failed login is answered after `SimConfig.ami_auth_failure_delay` *real* seconds, then the socket closes.
- Responses: `Response` first, `ActionID` second (only if given), then the rest.  Events go to sessions that
  are logged in with events on and whose EventMask admits the event's privilege class.
- Writes never block the PBX: events go into the session's transport buffer; a client that stops reading is
  disconnected once `MAX_BACKLOG` bytes wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ivr.ami.errors import AMIProtocolError
from ivr.ami.protocol import AMIParser, Message, Role, encode_message, md5_key
from ivr.sim.ami_filter import ALL_CLASSES, AMIUser, EventFilter, FilterError, Filters, event_classes
from ivr.sim.events import Event

if TYPE_CHECKING:
    from ivr.sim.simulator import SimulatedAsterisk

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_BACKLOG = 32 * 1024 * 1024  # bytes queued for one AMI client before it is disconnected
Pairs = list[tuple[str, str]]


def event_tv(ts: float) -> str:
    d = datetime.fromtimestamp(ts, tz=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


class AMISession:
    def __init__(self, server: AMIServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.sim = server.sim
        self.reader, self.writer = reader, writer
        self.parser = AMIParser(Role.SERVER)
        self.authenticated = False
        self.username = ""
        self.events_on = True
        self.mask: set[str] | None = None  # None = all classes
        self.read_classes: frozenset[str] = ALL_CLASSES  # the user's read classes (manager.conf), set at login
        self.write_classes: frozenset[str] = ALL_CLASSES
        self.filters = Filters()  # the user's eventfilter lines, then the session's Filter actions
        self.challenge: str | None = None
        self.session_id = "0x%x" % (0x7F8040000000 + next(server.ids) * 0x1A0)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"
        self.closed = False
        self.events_sent = 0  # events delivered to this session and their bytes (benchmarks read these)
        self.event_bytes = 0

    # -- output ------------------------------------------------------------------------------------------------
    def send(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.write(encode_message(list(pairs), raw_values=True))

    def write(self, data: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            self.close()  # a client that stopped reading: drop it rather than buffer without end

    def respond(self, msg: Message, response: str, rest: Pairs) -> None:
        pairs: Pairs = [("Response", response)]
        aid = msg.get("ActionID")
        if aid is not None:
            pairs.append(("ActionID", aid))
        self.send(pairs + rest)

    def deliver(self, ev: Event, *, filtered: bool = True) -> None:
        """An event for this session; `filtered=False` for what manager.c writes straight to the session
        (FullyBooted after the login) instead of queueing it as an event, so that filters do not apply."""
        if self.closed or not (self.authenticated and self.events_on):
            return
        # manager.c: every class of the event must be readable by the user and wanted by the session's mask
        for c in event_classes(ev.privilege):
            if c not in self.read_classes or (self.mask is not None and c not in self.mask):
                return
        data = encode_message(list(ev.pairs), raw_values=True)
        if filtered and self.filters and not self.filters.should_send(ev.name, data.decode("utf-8", "replace")):
            return
        self.events_sent += 1
        self.event_bytes += len(data)
        self.write(data)

    # -- input -------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        self.writer.write(BANNER)
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    messages = self.parser.feed(data)
                except AMIProtocolError:
                    break
                for msg in messages:
                    if isinstance(msg, Message):
                        await self.handle(msg)
                    if self.closed:
                        break
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.sessions.discard(self)
            with contextlib.suppress(ConnectionError, OSError):
                self.writer.close()

    async def handle(self, msg: Message) -> None:
        action = (msg.get("Action") or "").strip()
        if not action:
            self.respond(msg, "Error", [("Message", "Missing action in request")])
            self.security(
                "RequestBadFormat", "Error", self.username, [("RequestType", "Action: NONE")], session_tv=True
            )
            return
        name = action.lower()
        if name == "login":
            await self.login(msg)
            return
        if name == "challenge":
            self.challenge = str(random.randrange(100000000, 999999999))
            self.respond(msg, "Success", [("Challenge", self.challenge)])
            return
        if not self.authenticated:
            self.respond(msg, "Error", [("Message", "Permission denied")])
            self.security("RequestNotAllowed", "Error", "", [("RequestType", f"Action: {action}")], session_tv=False)
            return
        if name == "logoff":
            self.respond(msg, "Goodbye", [("Message", "Thanks for all the fish.")])
            self.close()
            return
        if name == "events":
            self.set_events(msg)
            return
        if name == "filter":
            self.add_filter(msg)
            return
        from ivr.sim.ami_actions import ACTIONS

        handler = ACTIONS.get(name)
        if handler is None:
            self.respond(
                msg,
                "Error",
                [
                    (
                        "Message",
                        f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
                    )
                ],
            )
            self.security(
                "RequestBadFormat", "Error", self.username, [("RequestType", f"Action: {action}")], session_tv=True
            )
            return
        try:
            await handler(self, msg)
        except Exception as exc:  # a simulator bug must not look like a dead Asterisk: answer and keep going
            self.sim.errors.append(exc)
            self.respond(msg, "Error", [("Message", f"Simulated {action} failed: {exc}")])

    async def login(self, msg: Message) -> None:
        if self.authenticated:
            self.respond(msg, "Success", [("Message", "Already authenticated")])
            return
        user = msg.get("Username") or ""
        users = self.sim.config.ami_users
        ok = False
        if user in users:
            entry = users[user]
            account = entry if isinstance(entry, AMIUser) else AMIUser(entry)
            if (msg.get("AuthType") or "").lower() == "md5":
                ok = self.challenge is not None and (msg.get("Key") or "").lower() == md5_key(
                    self.challenge, account.secret
                )
            else:
                ok = msg.get("Secret") == account.secret
        if not ok:
            if user in users:
                self.security("InvalidPassword", "Error", user, [], session_tv=False, version="2")
            else:
                self.security("InvalidAccountID", "Error", user, [], session_tv=False)
            await asyncio.sleep(self.sim.config.ami_auth_failure_delay)
            self.respond(msg, "Error", [("Message", "Authentication failed")])
            self.close()
            return
        self.authenticated = True
        self.username = user
        # the user's settings are copied into the session at login (a later reload does not change it)
        self.read_classes, self.write_classes, self.filters = account.read, account.write, account.filters()
        events = (msg.get("Events") or "on").strip().lower()
        self.apply_mask(events)
        self.respond(msg, "Success", [("Message", "Authentication accepted")])
        if self.events_on:
            uptime = str(int(self.sim.clock.now() - self.sim.pbx.started))
            self.deliver(
                Event(
                    self.sim.clock.now(),
                    (
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ),
                ),
                filtered=False,
            )
        self.security("SuccessfulAuth", "Informational", user, [("UsingPassword", "0")], session_tv=True)

    def apply_mask(self, value: str) -> None:
        if value in ("on", "yes", "true", "all", ""):
            self.events_on, self.mask = True, None
        elif value in ("off", "no", "false", "none"):
            self.events_on, self.mask = False, None
        else:
            self.events_on = True
            self.mask = {c.strip().lower() for c in value.split(",") if c.strip()}

    def add_filter(self, msg: Message) -> None:
        """`Filter` (manager.c action_filter): needs the `system` write class; adds to this session's filters."""
        if "system" not in self.write_classes:
            self.respond(msg, "Error", [("Message", "Permission denied")])
            return
        if (msg.get("Operation") or "").lower() != "add":
            self.respond(msg, "Error", [("Message", "Unknown operation")])
            return
        criteria = msg.get("MatchCriteria") or ""
        try:
            f = EventFilter.parse(f"eventfilter({criteria})" if criteria else "eventfilter", msg.get("Filter") or "")
        except FilterError as exc:
            text = (
                "Filter did not compile.  Check the syntax of the filter given."
                if exc.kind == "compile"
                else "Filter was formatted incorrectly.  Check the syntax of the filter given."
            )
            self.respond(msg, "Error", [("Message", text)])
            return
        self.filters.add(f)
        self.respond(msg, "Success", [("Message", "Success")])

    def set_events(self, msg: Message) -> None:
        self.apply_mask((msg.get("EventMask") or "").strip().lower())
        self.respond(msg, "Success", [("Events", "On" if self.events_on else "Off")])

    def security(
        self, name: str, severity: str, account: str, extra: Pairs, *, session_tv: bool, version: str = "1"
    ) -> None:
        now = self.sim.clock.now()
        pairs: Pairs = [
            ("EventTV", event_tv(now)),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", version),
            ("AccountID", account),
            ("SessionID", self.session_id),
            ("LocalAddress", self.local),
            ("RemoteAddress", self.remote),
        ]
        pairs += extra
        pairs.append(("SessionTV", event_tv(now) if session_tv else "1970-01-01T00:00:00.000+0000"))
        self.sim.pbx.bus.emit(name, "security,all", pairs)


class AMIServer:
    def __init__(self, sim: SimulatedAsterisk, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host, self.port = host, port
        self.sessions: set[AMISession] = set()
        self.ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = sim.pbx.bus.subscribe(self._fanout)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._unsubscribe()
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.close()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AMISession(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        except asyncio.CancelledError:
            pass  # stop(): the connection is closed; nothing to report
        finally:
            if task is not None:
                self._tasks.discard(task)

    def broadcast_shutdown(self, clean: bool) -> None:
        """The last message of an event-enabled session before Asterisk closes it (ami-18)."""
        ev = Event(
            self.sim.clock.now(),
            (
                ("Event", "Shutdown"),
                ("Privilege", "system,all"),
                ("Shutdown", "Cleanly" if clean else "Uncleanly"),
                ("Restart", "False"),
            ),
        )
        for s in list(self.sessions):
            s.deliver(ev)

    def _fanout(self, ev: Event) -> None:
        for s in list(self.sessions):
            s.deliver(ev)

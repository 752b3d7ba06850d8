"""FastAGI hardening from the security review: peer allow-list, TCP keepalive, EXEC upper bound."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import pytest

from ivr import metrics
from ivr.agi import Router
from ivr.agi.errors import AGISessionClosed, AGITimeoutError
from ivr.agi.peers import PeerAllowList, RateLimitedWarning, parse_networks, peer_address
from ivr.settings import load_settings
from ivr.yamlsource import ConfigError

from .conftest import Outcome, capture, running_server
from .fake_asterisk import ENV_AGI01, FakeAsterisk, env_for

# agi-06 shows EXEC Dial in its quoted argument form; the stalled fake never sends the "200 result=..." reply.
EXEC_DIAL = b'EXEC Dial "Local/talk@agents,10"\n'


def connections(result: str) -> float:
    return metrics.REGISTRY.get_sample_value("ivr_agi_connections_total", {"result": result}) or 0.0


def noop_router(outcome: Outcome) -> Router:
    async def body(s):
        await s.noop()
        return s.env.script_path

    router = Router()
    router.add("agi-01", capture(body, outcome))
    return router


# -- allow-list -------------------------------------------------------------------------------------------------
def test_allow_list_matches_addresses_ranges_and_mapped_ipv4():
    allow = PeerAllowList(["127.0.0.1/32", "::1/128", "192.0.2.0/28", "198.51.100.7"])
    assert allow.allows(("127.0.0.1", 40000))
    assert allow.allows(("::1", 40000, 0, 0))
    assert allow.allows(("::ffff:192.0.2.9", 40000, 0, 0))  # IPv4 peer on a dual-stack socket
    assert allow.allows(("198.51.100.7", 1))
    assert not allow.allows(("192.0.2.16", 1))  # just outside the /28
    assert not allow.allows(("127.0.0.2", 1))  # loopback default is one address, not 127/8
    assert not allow.allows(("10.0.0.1", 1))
    for odd in (None, (), "127.0.0.1", ("not-an-ip", 1), (b"127.0.0.1", 1)):
        assert not allow.allows(odd)  # no IP address: refused
    assert peer_address(("fe80::1%eth0", 1, 0, 2)) is not None  # zone id stripped


def test_allow_list_default_is_loopback_only_and_bad_entries_are_named():
    assert [str(n) for n in PeerAllowList().networks] == ["127.0.0.1/32", "::1/128"]
    for bad in ("10.0.0.5/24", "asterisk.example.com", "300.1.1.1", ""):
        with pytest.raises(ValueError, match="not an IP address or CIDR range"):
            parse_networks([bad])


def test_rate_limited_warning_logs_once_per_interval_and_counts_the_rest(caplog):
    now = [100.0]
    limiter = RateLimitedWarning(logging.getLogger("test.peers"), interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.peers"):
        assert limiter.warning("refused %s", "a")
        for _ in range(500):  # a port scan
            assert not limiter.warning("refused %s", "b")
        now[0] += 10.0
        assert limiter.warning("refused %s", "c")
    assert [r.getMessage() for r in caplog.records] == ["refused a", "refused c (500 more since the last such message)"]


async def test_peer_outside_allow_list_is_closed_before_the_header_is_read(caplog):
    outcome = Outcome()
    before = connections("forbidden")
    # header_timeout far above the fake's wait: only the allow-list can close these connections in time.
    async with running_server(noop_router(outcome), allowed_peers=["192.0.2.0/24"], header_timeout=60.0) as server:
        silent = await FakeAsterisk.connect(server.port)  # sends nothing at all
        assert await silent.closed_by_server()
        for _ in range(5):
            fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
            assert await fake.closed_by_server()
            assert fake.received == []  # not one command was sent to it
        assert server.forbidden == 6 and server.active == 0
    assert not outcome.done.is_set()  # the handler never ran
    assert connections("forbidden") == before + 6
    refusals = [r for r in caplog.records if "not in fastagi.allowed_peers" in r.getMessage()]
    assert len(refusals) == 1  # six refusals, one log line
    assert "127.0.0.1" in refusals[0].getMessage()


async def test_a_flood_of_half_sent_headers_logs_one_warning_and_counts_every_connection(caplog):
    """A flood (a scanner, a broken proxy) of connections that send half an AGI header and go away: each one is
    counted as bad_header, but the log gets one WARNING for the burst, not one per connection."""
    outcome = Outcome()
    before = connections("bad_header")
    flood = 40
    caplog.set_level(logging.WARNING, logger="ivr.agi.fastagi")
    async with running_server(noop_router(outcome)) as server:
        for _ in range(flood):
            broken = await FakeAsterisk.connect(server.port, ENV_AGI01[:60])  # half a header, then EOF
            await broken.aclose()
        for _ in range(200):
            if connections("bad_header") == before + flood:
                break
            await asyncio.sleep(0.01)
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)  # and real calls are still served
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await outcome.wait() == "agi-01"
        await fake.aclose()
    assert connections("bad_header") == before + flood
    warnings = [r for r in caplog.records if "bad FastAGI header" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_allowed_loopback_peer_is_served(outcome):
    before = connections("forbidden")
    async with running_server(noop_router(outcome), allowed_peers=["10.0.0.0/8", "127.0.0.1"]) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await fake.closed_by_server()
        assert await outcome.wait() == "agi-01"
        assert server.forbidden == 0
    assert connections("forbidden") == before


def test_settings_allowed_peers_file_default_env_override_and_errors(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "ivr.yaml").write_text(
        "fastagi:\n  allowed_peers:\n    - 192.0.2.10\n    - 192.0.2.0/28\n  exec_timeout: 2h\n"
    )
    settings = load_settings(config / "ivr.yaml", env={})
    assert settings.fastagi.allowed_peers == ["192.0.2.10/32", "192.0.2.0/28"]
    assert settings.fastagi.exec_timeout == 7200.0
    env = {"IVR_FASTAGI_ALLOWED_PEERS": " 10.0.0.5 , 10.0.1.0/24,::1 "}
    assert load_settings(config / "ivr.yaml", env=env).fastagi.allowed_peers == [
        "10.0.0.5/32",
        "10.0.1.0/24",
        "::1/128",
    ]
    (config / "empty.yaml").write_text("fastagi: {}\n")
    defaults = load_settings(config / "empty.yaml", env={}).fastagi
    assert defaults.allowed_peers == ["127.0.0.1/32", "::1/128"] and defaults.exec_timeout == 4 * 3600.0
    with pytest.raises(ConfigError, match="IVR_FASTAGI_ALLOWED_PEERS.*'10.0.0.5/8' is not an IP address"):
        load_settings(config / "ivr.yaml", env={"IVR_FASTAGI_ALLOWED_PEERS": "10.0.0.5/8"})
    (config / "bad.yaml").write_text("fastagi:\n  allowed_peers:\n    - asterisk.example.com\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3.*'asterisk.example.com' is not an IP address"):
        load_settings(config / "bad.yaml", env={})


def test_allow_list_remembers_verdicts_within_a_bound():
    allow = PeerAllowList(["192.0.2.0/28"])
    for _ in range(2):  # the second pass answers from the remembered verdicts, the same way
        assert allow.allows(("192.0.2.1", 40000)) and not allow.allows(("192.0.2.16", 40000))
        assert allow.allows(("::ffff:192.0.2.9", 1, 0, 0)) and not allow.allows(("::1", 1, 0, 0))
    for i in range(3 * PeerAllowList.MAX_REMEMBERED):  # many hosts (a scan): the memory stays bounded
        assert not allow.allows((f"10.{i // 256}.{i % 256}.1", 1))
    assert len(allow._verdicts) <= PeerAllowList.MAX_REMEMBERED
    assert allow.allows(("192.0.2.1", 40000)) and not allow.allows(("not an address", 1)) and not allow.allows(None)


# -- TCP keepalive ------------------------------------------------------------------------------------------------
async def test_accepted_sockets_have_tcp_keepalive(outcome):
    async def body(s):
        sock = s._link.transport.get_extra_info("socket")
        got = {"keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)}
        for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
            if hasattr(socket, name):
                got[name] = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name))
        await s.noop()
        return got

    router = Router()
    router.add("agi-01", capture(body, outcome))
    async with running_server(router, keepalive_idle=45, keepalive_interval=7, keepalive_count=4) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await fake.closed_by_server()
    got = await outcome.wait()
    assert got["keepalive"] == 1
    expected = {"TCP_KEEPIDLE": 45, "TCP_KEEPINTVL": 7, "TCP_KEEPCNT": 4}
    assert {k: v for k, v in got.items() if k != "keepalive"} == {k: v for k, v in expected.items() if k in got}


async def test_keepalive_can_be_turned_off(outcome):
    async def body(s):
        value = s._link.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        await s.noop()
        return value

    router = Router()
    router.add("agi-01", capture(body, outcome))
    async with running_server(router, keepalive_idle=None) as server:
        fake = await FakeAsterisk.connect(server.port, ENV_AGI01)
        await fake.expect(b"NOOP\n", b"200 result=0\n")
        assert await fake.closed_by_server()
    assert await outcome.wait() == 0


# -- EXEC upper bound ---------------------------------------------------------------------------------------------
def exec_router(outcome: Outcome, **exec_kwargs) -> Router:
    async def body(s):
        try:
            await s.exec("Dial", "Local/talk@agents", "10", **exec_kwargs)
        except AGITimeoutError as exc:
            with pytest.raises(AGISessionClosed):
                await s.noop()  # the session is gone for good
            return ("timeout", s.broken, str(exc))
        return ("returned",)

    router = Router()
    router.add("agi-06", capture(body, outcome))
    return router


async def test_exec_timeout_closes_a_stalled_exec(outcome):
    # command_timeout is far above the wait: only exec_timeout can end this EXEC.
    async with running_server(exec_router(outcome), exec_timeout=0.3, command_timeout=60.0) as server:
        stalled = await FakeAsterisk.connect(server.port, env_for("agi-06"))
        assert await stalled.read_command() == EXEC_DIAL  # and never reply
        assert await stalled.closed_by_server()
        assert stalled.received == [EXEC_DIAL]  # no IVR_STATUS write into a broken stream
    kind, broken, message = await outcome.wait()
    assert (kind, broken) == ("timeout", True)
    assert "EXEC Dial" in message and "0.3 s" in message


async def test_exec_timeout_per_call_overrides_the_session_default(outcome):
    async with running_server(exec_router(outcome, timeout=0.2), exec_timeout=None) as server:
        stalled = await FakeAsterisk.connect(server.port, env_for("agi-06"))
        assert await stalled.read_command() == EXEC_DIAL
        assert await stalled.closed_by_server()
    assert (await outcome.wait())[:2] == ("timeout", True)


async def test_exec_within_its_timeout_is_untouched_by_command_timeout(outcome):
    # A Dial longer than command_timeout but inside exec_timeout returns normally.
    async with running_server(exec_router(outcome), exec_timeout=30.0, command_timeout=0.1) as server:
        fake = await FakeAsterisk.connect(server.port, env_for("agi-06"))
        assert await fake.read_command() == EXEC_DIAL
        await asyncio.sleep(0.3)  # past command_timeout
        await fake.send(b"200 result=0\n")
        assert await fake.closed_by_server()
    assert await outcome.wait() == ("returned",)


async def test_keepalive_falls_back_to_each_socket_when_the_listener_does_not_pass_it_on():
    """The first accepted socket is checked; one without the listener's keepalive (a platform that does not copy
    it) turns the per-connection setting back on."""
    async with running_server(Router(), keepalive_idle=45) as server:
        inherits = sys.platform == "linux"
        assert server._keepalive_inherited is inherits  # set once on the listening socket
        with socket.socket() as plain:  # a real TCP socket without keepalive, as such a platform would accept
            server._keepalive_checked = False
            server._keepalive_check(plain)
        assert server._keepalive_checked and server._keepalive_inherited is False

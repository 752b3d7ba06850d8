"""The simulated AMI server filters events as Asterisk 22's manager.c does: manager.conf users (read/write classes,
`eventfilter` lines copied into each session at login) and the `Filter` action (per session, needs `system`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.ami.protocol import Message
from ivr.sim import SimConfig, SimulatedAsterisk, VirtualClock
from ivr.sim.ami_filter import AMIUser, EventFilter, FilterError, classes, load_manager_conf

from .ami_peer import AMIPeer

ROOT = Path(__file__).resolve().parents[2]


async def _sim(users: dict[str, str | AMIUser] | None = None) -> SimulatedAsterisk:
    config = SimConfig(ami_users=users or {"ivr": "ivrsecret"})
    sim = SimulatedAsterisk(config, clock=VirtualClock())
    await sim.start(("127.0.0.1", 9), ami=True)
    return sim


async def _login(port: int, user: str = "ivr", secret: str = "ivrsecret") -> AMIPeer:
    peer = await AMIPeer.connect(port, login=False)
    r = await peer.action("Login", [("Username", user), ("Secret", secret)])
    assert r["Message"] == "Authentication accepted", r
    return peer


async def _kinds(peer: AMIPeer, marker: str) -> list[str]:
    """The Kind of every UserEvent this session got up to the UserEvent named `marker` (sent unfiltered by the
    test: its kind is `end`)."""
    out: list[str] = []
    while True:
        m: Message = await peer.next(lambda m: m.get("Event") == "UserEvent")
        if m.get("UserEvent") == marker:
            return out
        out.append(m.get("Kind") or "")


async def _send(peer: AMIPeer, *kinds: str) -> None:
    for kind in kinds:
        r = await peer.action("UserEvent", [("UserEvent", "Test"), ("Kind", kind)])
        assert r["Response"] == "Success"


async def test_filter_action_is_per_session_and_include_then_exclude() -> None:
    sim = await _sim()
    a, b, driver = [await _login(sim.ami_port) for _ in range(3)]
    try:
        # include: UserEvent whose Kind is keep or other; then exclude: Kind other; plus the marker event
        for criteria, pattern in (
            ("action(include),name(UserEvent),header(Kind),method(regex)", "^(keep|other)$"),
            ("action(exclude),name(UserEvent),header(Kind),method(exact)", "other"),
            ("name(UserEvent),header(UserEvent),method(starts_with)", "End"),
        ):
            r = await a.action("Filter", [("Operation", "Add"), ("MatchCriteria", criteria), ("Filter", pattern)])
            assert (r["Response"], r["Message"]) == ("Success", "Success")
        await _send(driver, "keep", "drop", "other", "keep")
        await driver.action("UserEvent", [("UserEvent", "End")])
        assert await _kinds(a, "End") == ["keep", "keep"]
        assert await _kinds(b, "End") == ["keep", "drop", "other", "keep"]  # no filters of its own
        # The legacy form: a regular expression over the whole event, '!' excludes.
        r = await b.action("Filter", [("Operation", "Add"), ("Filter", "!Kind: drop")])
        assert r["Response"] == "Success"
        await _send(driver, "drop", "keep")
        await driver.action("UserEvent", [("UserEvent", "End")])
        assert await _kinds(b, "End") == ["keep"]
    finally:
        for p in (a, b, driver):
            await p.close()
        await sim.stop()


async def test_filter_action_errors_as_asterisk_answers() -> None:
    sim = await _sim({"ivr": "ivrsecret", "reader": AMIUser("pw", write=classes("call,originate"))})
    peer = await _login(sim.ami_port)
    limited = await _login(sim.ami_port, "reader", "pw")
    bad_format = "Filter was formatted incorrectly.  Check the syntax of the filter given."
    bad_regex = "Filter did not compile.  Check the syntax of the filter given."
    try:
        cases = [
            ([("Operation", "Add"), ("MatchCriteria", "action(maybe)"), ("Filter", "")], bad_format),
            ([("Operation", "Add"), ("MatchCriteria", "name(VarSet),method(regex)"), ("Filter", "")], bad_format),
            ([("Operation", "Add"), ("Filter", "")], bad_format),  # legacy form without a pattern
            ([("Operation", "Add"), ("Filter", "Kind: [")], bad_regex),
            ([("Operation", "Remove"), ("Filter", "x")], "Unknown operation"),
        ]  # fmt: skip
        for headers, message in cases:
            r = await peer.action("Filter", headers)
            assert (r["Response"], r["Message"]) == ("Error", message), headers
        r = await limited.action("Filter", [("Operation", "Add"), ("Filter", "x")])
        assert (r["Response"], r["Message"]) == ("Error", "Permission denied")  # needs write class `system`
    finally:
        await peer.close()
        await limited.close()
        await sim.stop()


async def test_manager_conf_user_read_classes_and_eventfilter_lines(tmp_path: Path) -> None:
    conf = tmp_path / "manager.conf"
    conf.write_text(
        "[general]\nenabled = yes\n\n[watcher]\nsecret = pw ; a comment\nread = user\nwrite = system\n"
        "eventfilter(action(include),name(UserEvent),header(Kind),method(exact)) = keep\n"
        "eventfilter(name(UserEvent),header(UserEvent),method(exact)) = End\n"
    )
    users = load_manager_conf(conf)
    assert set(users) == {"watcher"} and users["watcher"].read == {"user"}
    sim = await _sim({**users, "ivr": "ivrsecret"})
    watcher = await _login(sim.ami_port, "watcher", "pw")
    driver = await _login(sim.ami_port)
    try:
        await _send(driver, "keep", "drop")
        await driver.action("Originate", [("Channel", "Local/nobody@nowhere"), ("Application", "Wait")])
        await driver.action("UserEvent", [("UserEvent", "End")])
        assert await _kinds(watcher, "End") == ["keep"]
        # read = user: no call-class event (the failed Originate's Newchannel, Hangup ...) reached it
        assert not [m for m in watcher.queue if m.get("Event") in ("Newchannel", "Hangup", "OriginateResponse")]
    finally:
        await watcher.close()
        await driver.close()
        await sim.stop()


async def test_fully_booted_is_not_filtered() -> None:
    user = AMIUser("pw", eventfilters=[("eventfilter(name(UserEvent))", "")])
    sim = await _sim({"u": user})
    peer = await _login(sim.ami_port, "u", "pw")
    try:
        booted = await asyncio.wait_for(peer.event("FullyBooted"), 5)
        assert booted["Status"] == "Fully Booted"  # written straight to the session by manager.c, not filtered
    finally:
        await peer.close()
        await sim.stop()


def test_shipped_manager_conf_user() -> None:
    users = load_manager_conf(ROOT / "dialplans" / "manager_ivr.conf")
    user = users["ivr"]
    assert user.read == {"system", "call", "agent", "dialplan", "reporting"}
    assert "system" in user.write  # the Filter action the service sends after login needs it
    assert "agi" not in user.read  # AGIExecStart/End (two per AGI command) never reach the service
    user.filters()  # every eventfilter line there parses


@pytest.mark.parametrize(
    ("criteria", "pattern", "event", "text", "expected"),
    [
        ("eventfilter(name(VarSet),header(Variable),method(regex))", "^IVR_(FLOW|NODE)$", "VarSet",
         "Event: VarSet\r\nVariable: IVR_FLOW\r\n\r\n", True),
        ("eventfilter(name(VarSet),header(Variable),method(regex))", "^IVR_(FLOW|NODE)$", "VarSet",
         "Event: VarSet\r\nVariable: AGISTATUS\r\n\r\n", False),
        ("eventfilter(name(VarSet))", "", "Newexten", "Event: Newexten\r\n\r\n", False),
        ("eventfilter(header(Channel),method(starts_with))", "Local/", "Hangup",
         "Event: Hangup\r\nChannel:   Local/x-1;2\r\n\r\n", True),  # blanks after the colon are skipped
        ("eventfilter(header(Channel),method(ends_with))", ";2", "H", "Event: Hangup\r\nChannel: L;2\r\n\r\n", True),
        ("eventfilter(header(Channel),method(contains))", "x-1", "H", "Event: Hangup\r\nChannel: x-1\r\n\r\n", True),
        ("eventfilter", "Event: Hangup", "Hangup", "Event: Hangup\r\n\r\n", True),
    ],
)  # fmt: skip
def test_filter_matching(criteria: str, pattern: str, event: str, text: str, expected: bool) -> None:
    assert EventFilter.parse(criteria, pattern).matches(event, text) is expected


def test_bad_filters_are_refused() -> None:
    for criteria, pattern in (
        ("eventfilter(action(include", ""),
        ("eventfilter(colour(red))", "x"),
        ("eventfilter(method(fuzzy))", "x"),
        ("eventfilter(header(Channel),method(regex))", ""),
    ):
        with pytest.raises(FilterError):
            EventFilter.parse(criteria, pattern)

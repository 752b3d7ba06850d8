import logging
import shutil
from pathlib import Path

from ivr.agi.router import Router
from ivr.flow.engine import FlowEngine
from ivr.flow.repository import FlowRepository
from ivr.flow.routing import FlowRoutes, fixed_flow_router, flow_router, run_flow

from .conftest import make_flow
from .fakes import FakeChannel

ROOT = Path(__file__).resolve().parents[2]


def test_resolver_follows_repository_versions(tmp_path):
    flows_dir = tmp_path / "flows"
    shutil.copytree(ROOT / "config" / "flows", flows_dir)
    repo = FlowRepository(flows_dir)
    repo.load()
    made = []

    def factory(flows):
        made.append(flows.version)
        return FlowEngine(flows)

    router = flow_router(lambda: repo.current, factory)
    assert isinstance(router, Router) and isinstance(router.fallback, FlowRoutes)
    assert router.resolve("main") is not None
    assert router.resolve("/callback/") is not None
    assert router.resolve("nosuch") is None
    resolver = router.fallback
    first = resolver.engine_for(repo.current)
    assert resolver.engine_for(repo.current) is first and made == [repo.version]
    # a valid edit -> new version -> a new engine for new calls; the old one keeps its own flows
    main = flows_dir / "main.yaml"
    main.write_text(main.read_text().replace("description: Call-center front door", "description: Front door v2"))
    result = repo.reload("manual")
    assert result.ok and result.changed
    second = resolver.engine_for(repo.current)
    assert second is not first and second.version == repo.version != first.version
    assert first.flows["main"].description != second.flows["main"].description


def test_fixed_engine_serves_its_own_flows():
    from ivr.flow.loader import load_flows

    flows = load_flows(ROOT / "config" / "flows")
    engine = FlowEngine(flows)
    router = fixed_flow_router(engine)
    assert router.resolve("main") is not None and router.resolve("other") is None


# --- run_flow hooks: on_node (live call registry), channel_factory ------------------------------------------


class FakeSession:
    """What run_flow uses of an AGISession once the engine is done: the state and SET VARIABLE."""

    def __init__(self) -> None:
        self.hung_up = False
        self.closed = False
        self.variables: dict[str, str] = {}

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value


def two_flows():
    main = make_flow(
        {
            "menu": {
                "type": "menu",
                "greeting": ["menu"],
                "options": {"1": "other:hello", "2": {"type": "hangup"}},
                "timeout": "3s",
            },
        }
    )
    other = make_flow(
        {
            "hello": {"type": "play", "prompts": ["welcome"], "next": "bye"},
            "bye": {"type": "hangup", "prompts": ["bye"]},
        },
        name="other",
    )
    return {"main": main, "other": other}


async def run_with(channel, *, engine=None, **hooks):
    session = FakeSession()
    engine = engine or FlowEngine(two_flows(), clock=channel.clock, prompts_dir="/p")
    report = await run_flow(engine, session, "main", channel_factory=lambda s: channel, **hooks)
    return report, session


async def test_on_node_follows_the_call_across_flows_then_says_it_left():
    seen = []
    report, session = await run_with(FakeChannel(presses=[(2.5, "1")]), on_node=lambda *args: seen.append(args))
    uid = "1795909322.39"
    assert seen == [(uid, "main", "menu"), (uid, "other", "hello"), (uid, "other", "bye"), (uid, "other", None)]
    assert report.path == ["main:menu", "other:hello", "other:bye"]
    assert session.variables == {"IVR_STATUS": "OK", "IVR_OUTCOME": "contained"}


async def test_on_node_says_the_call_left_after_a_hangup_too():
    seen = []
    report, session = await run_with(FakeChannel(hangup_at=1.0), on_node=lambda *args: seen.append(args))
    assert report.outcome == "abandoned"
    assert [args[1:] for args in seen] == [("main", "menu"), ("main", None)]
    assert session.variables == {"IVR_STATUS": "OK", "IVR_OUTCOME": "abandoned"}


async def test_a_raising_on_node_never_breaks_the_call(caplog):
    def broken(uniqueid, flow, node):
        raise RuntimeError("registry is gone")

    baseline, _ = await run_with(FakeChannel(presses=[(2.5, "1")]))
    with caplog.at_level(logging.ERROR, logger="ivr.flow.routing"):
        report, session = await run_with(FakeChannel(presses=[(2.5, "1")]), on_node=broken)
    assert report.path == baseline.path and report.outcome == baseline.outcome == "contained"
    assert session.variables["IVR_STATUS"] == "OK"
    failures = [r for r in caplog.records if "on_node failed" in r.getMessage()]
    assert len(failures) == 4 and "registry is gone" in failures[0].exc_text


async def test_on_node_is_chained_after_the_engines_own_observer():
    channel = FakeChannel(presses=[(2.5, "2")])
    order = []
    engine = FlowEngine(
        two_flows(),
        clock=channel.clock,
        prompts_dir="/p",
        observer=lambda event: order.append(("trace", event.kind, event.node)),
    )
    await run_with(channel, engine=engine, on_node=lambda uid, flow, node: order.append(("node", node)))
    enters = [i for i, item in enumerate(order) if item[:2] == ("trace", "enter")]
    assert [order[i + 1] for i in enters] == [("node", "menu"), ("node", "menu.2")]
    assert order[-1] == ("node", None) and ("trace", "end", "menu.2") in order


async def test_without_on_node_the_engine_observer_is_untouched():
    channel = FakeChannel(presses=[(2.5, "2")])
    events = []
    engine = FlowEngine(two_flows(), clock=channel.clock, prompts_dir="/p", observer=events.append)
    await run_with(channel, engine=engine)
    assert [e.kind for e in events][0] == "call" and events[-1].kind == "end"


async def test_channel_factory_gets_the_session():
    got = []
    channel = FakeChannel(presses=[(2.5, "2")])
    session = FakeSession()

    def factory(s):
        got.append(s)
        return channel

    report = await run_flow(FlowEngine(two_flows(), clock=channel.clock), session, "main", channel_factory=factory)
    assert got == [session] and channel.played() == ["en/menu"] and report.end_node == "main:menu.2"


async def test_start_node_may_be_an_inline_option_and_a_stale_one_falls_back(caplog):
    report, _ = await run_with(FakeChannel(params={"node": "menu.2"}))
    assert report.path == ["main:menu.2"]
    with caplog.at_level(logging.WARNING, logger="ivr.flow.routing"):
        report, _ = await run_with(FakeChannel(params={"node": "gone"}, hangup_at=1.0))
    assert report.start_node == "menu" and report.path == ["main:menu"]
    assert "does not have" in caplog.text


async def test_no_dialplan_variables_once_the_caller_is_gone():
    session = FakeSession()
    session.hung_up = True
    channel = FakeChannel(hangup_at=1.0)
    await run_flow(FlowEngine(two_flows(), clock=channel.clock), session, "main", channel_factory=lambda s: channel)
    assert session.variables == {}


async def test_call_registry_note_flow_is_an_on_node_hook():
    from ivr.ami.protocol import Message
    from ivr.calls.registry import CallRegistry

    uid = "1795909322.39"
    registry = CallRegistry(clock=lambda: 0.0)
    registry.apply(
        Message(
            [
                ("Event", "Newchannel"),
                ("Channel", "PJSIP/trunk-00000001"),
                ("ChannelState", "6"),
                ("ChannelStateDesc", "Up"),
                ("CallerIDNum", "+37060000001"),
                ("Uniqueid", uid),
                ("Linkedid", uid),
            ]
        )
    )
    live = []

    def snapshot(event):  # what an API client would see while each prompt plays
        if event.kind == "prompt":
            live.append((registry.call(uid).flow, registry.call(uid).to_json()["node"]))

    channel = FakeChannel(presses=[(2.5, "1")])
    engine = FlowEngine(two_flows(), clock=channel.clock, prompts_dir="/p", observer=snapshot)
    await run_with(channel, engine=engine, on_node=registry.note_flow)
    assert live == [("main", "menu"), ("other", "hello"), ("other", "bye")]
    assert (registry.call(uid).flow, registry.call(uid).to_json()["node"]) == ("other", None)


async def test_router_handler_uses_the_hooks_and_survives_a_raising_on_report(caplog):
    channel = FakeChannel(presses=[(2.5, "2")])
    seen = []

    def sink(report):
        seen.append(report.end_node)
        raise ValueError("dashboard down")

    router = fixed_flow_router(
        FlowEngine(two_flows(), clock=channel.clock),
        on_report=sink,
        on_node=lambda *args: seen.append(args[2]),
        channel_factory=lambda s: channel,
    )
    session = FakeSession()
    with caplog.at_level(logging.ERROR, logger="ivr.flow.routing"):
        await router.resolve("main")(session)
    assert seen == ["menu", "menu.2", None, "main:menu.2"]
    assert session.variables["IVR_OUTCOME"] == "contained"
    assert "on_report failed" in caplog.text

"""Query parameters of the AGI URL (`agi://host/flow?key=value`) as `param_<key>` variables."""

from .conftest import make_flow
from .fakes import FakeChannel


def flow_with_default():
    return make_flow({"bye": {"type": "hangup"}}, variables={"param_queue": "support", "q": "${param_queue}"})


async def test_params_become_variables(run):
    ch = FakeChannel(params={"outbound": "1", "queue": "billing", "callback": "42", "node": "x", "bad-key": "1"})
    report = await run(flow_with_default(), ch)
    v = report.variables
    assert (v["param_outbound"], v["param_queue"], v["param_callback"], v["q"]) == ("1", "billing", "42", "billing")
    assert "param_node" not in v and "param_bad-key" not in v


async def test_an_empty_param_leaves_the_flow_default(run):
    report = await run(flow_with_default(), FakeChannel(params={"queue": ""}))
    assert report.variables["param_queue"] == "support" and report.variables["q"] == "support"


async def test_param_values_lose_control_characters_and_are_clamped(run):
    report = await run(flow_with_default(), FakeChannel(params={"queue": "a\x00b\r\nc", "long": "x" * 5000}))
    assert report.variables["param_queue"] == "a b  c"
    assert len(report.variables["param_long"]) == 1024

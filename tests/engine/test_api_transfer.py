"""A call the API transfers while it is still in the IVR: the AMI Redirect ends the AGI like a hangup, and the
engine must count it as transferred (IVR_TRANSFERRED, read in dead mode), not as abandoned."""

from ivr.flow.channel import CallerHangup, ChannelError
from ivr.metrics import REGISTRY

from .conftest import make_flow
from .fakes import FakeChannel


def menu_flow():
    return make_flow(
        {
            "m": {"type": "menu", "greeting": ["menu"], "options": {"1": "bye"}, "timeout": "10s"},
            "bye": {"type": "hangup"},
        }
    )


def value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_redirect_by_the_api_is_a_transfer(run):
    ch = FakeChannel(hangup_at=4.0)
    ch.variables["IVR_TRANSFERRED"] = "queue:billing"  # what call control sets before its Redirect
    before = (
        value("ivr_call_outcomes_total", {"flow": "main", "outcome": "transferred"}),
        value("ivr_transfers_total", {"flow": "main", "target": "api", "result": "redirected"}),
    )
    report = await run(menu_flow(), ch)
    assert (report.outcome, report.end_target, report.end_node) == ("transferred", "api:queue:billing", "main:m")
    assert report.visits[-1].reason == "transferred"
    assert ("get", "IVR_TRANSFERRED") in ch.log
    after = (
        value("ivr_call_outcomes_total", {"flow": "main", "outcome": "transferred"}),
        value("ivr_transfers_total", {"flow": "main", "target": "api", "result": "redirected"}),
    )
    assert after == (before[0] + 1, before[1] + 1)


async def test_a_hangup_without_the_variable_is_still_abandoned(run):
    report = await run(menu_flow(), FakeChannel(hangup_at=4.0))
    assert (report.outcome, report.end_target) == ("abandoned", "hangup:caller")
    assert report.visits[-1].reason == "hangup"


async def test_the_target_is_sanitised(run):
    ch = FakeChannel(hangup_at=4.0)
    ch.variables["IVR_TRANSFERRED"] = "PJSIP/1001&x\n" + "9" * 200
    report = await run(menu_flow(), ch)
    assert report.end_target.startswith("api:PJSIP/1001_x_99")
    assert len(report.end_target) == len("api:") + 80


class GoneChannel(FakeChannel):
    """The FastAGI connection is gone: even GET VARIABLE fails."""

    def __init__(self, error: Exception, **kw):
        super().__init__(**kw)
        self.error = error

    async def get_variable(self, name: str) -> str | None:
        raise self.error


async def test_no_answer_to_get_variable_counts_as_a_hangup(run):
    for error in (CallerHangup("EOF"), ChannelError("closed")):
        report = await run(menu_flow(), GoneChannel(error, hangup_at=4.0))
        assert report.outcome == "abandoned"

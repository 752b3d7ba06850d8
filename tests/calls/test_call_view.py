"""`Call.to_json()` (GET /calls builds it for every live call) gathers everything in one pass over the channels: it
must give exactly what the one-property-at-a-time form gives, on calls of every shape."""

from __future__ import annotations

import random

import pytest

from ivr.calls.model import Bridge, Call, Channel, ParkedCall, Recording


def random_call(rng: random.Random, n: int) -> Call:
    linkedid = "1700.1"
    bridges = {"b1": Bridge("b1", "basic"), "p1": Bridge("p1", "parking")}
    channels = []
    for i in range(n):
        uid = linkedid if i == 0 and rng.random() < 0.7 else f"1700.{i + 2}"
        ch = Channel(
            name=f"PJSIP/{i}",
            uniqueid=uid,
            linkedid=linkedid,
            state=rng.choice([0, 4, 5, 6]),
            caller_num=rng.choice(["", "+37060000001", "1001"]),
            caller_name=rng.choice(["", "Ona"]),
            created_at=rng.choice([1.0, 2.0, 2.0, 3.0]),  # ties: the uniqueid decides the order
            bridge_id=rng.choice([None, "b1", "p1", "gone"]),
            moh_class=rng.choice([None, None, "default"]),
            queue=rng.choice([None, None, "", "sales"]),
            flow=rng.choice([None, "", "main", "support"]),
            node=rng.choice([None, "", "menu", "bye"]),
            recording=rng.choice([None, Recording("MIX-1", started_at=5.0)]),
            agent=rng.choice([None, "", "1001", "1002"]),
        )
        if ch.bridge_id in bridges:
            bridges[ch.bridge_id].channels.add(uid)
        channels.append(ch)
    rng.shuffle(channels)
    parked = (
        [ParkedCall("default", "701", channels[0].uniqueid, channels[0].name, linkedid)] if rng.random() < 0.2 else []
    )
    return Call(id=linkedid, channels=channels, parked=parked, bridges=bridges)


@pytest.mark.parametrize("seed", range(4))
def test_one_pass_view_equals_the_property_by_property_view(seed: int) -> None:
    rng = random.Random(seed)
    states = set()
    for _ in range(500):
        call = random_call(rng, rng.choice([1, 1, 2, 2, 3, 4]))
        view = call.to_json()
        assert view == call._to_json_scanning()
        states.add(view["state"])
    assert states == {"parked", "queued", "held", "talking", "ivr", "up", "ringing"}


def test_a_call_without_channels_raises_as_before() -> None:
    with pytest.raises(ValueError):
        Call(id="1", channels=[], parked=[], bridges={}).to_json()

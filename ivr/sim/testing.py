"""Helpers for tests that run the service against the simulated Asterisk.

Rules for this file:
- Only conveniences over the public API (`SimulatedAsterisk`, `SimConfig`, clocks); no behaviour of its own.
- `simulated_asterisk()` is an async context manager: started on loopback ephemeral ports, always stopped.
- `prompt_texts()` reads prompt texts from flow objects (duck-typed: `.prompts[id][lang].file/.text`), so prompt
  lengths follow the words even when no WAV files exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from ivr.sim.clock import Clock, VirtualClock
from ivr.sim.model import SimConfig
from ivr.sim.simulator import SimulatedAsterisk


@asynccontextmanager
async def simulated_asterisk(
    fastagi_port: int,
    config: SimConfig | None = None,
    *,
    clock: Clock | None = None,
    start: datetime | None = None,
    host: str = "127.0.0.1",
    ami: bool = True,
) -> AsyncIterator[SimulatedAsterisk]:
    """`async with simulated_asterisk(service_port) as sim:` -- VirtualClock(start) unless a clock is given."""
    sim = SimulatedAsterisk(config or SimConfig(), clock=clock or VirtualClock(start=start))
    await sim.start((host, fastagi_port), ami=ami)
    try:
        yield sim
    finally:
        await sim.stop()


def prompt_texts(flows: Iterable[Any]) -> dict[str, str]:
    """{sound file: text} of every prompt variant in `flows` (objects with a `.prompts` mapping)."""
    out: dict[str, str] = {}
    for flow in flows:
        for variants in getattr(flow, "prompts", {}).values():
            for variant in variants.values():
                text = getattr(variant, "text", "")
                if text:
                    out[variant.file] = text
    return out

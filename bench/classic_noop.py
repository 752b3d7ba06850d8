"""The trivial router of `bench/agi_bench.py --classic` (IVR_AGI_ROUTER=classic_noop:noop_router): one ANSWER, so
the row times the AGI layer alone, not the bench's own imports (asyncio, subprocess, argparse, ...)."""

from __future__ import annotations

from ivr.agi import AGICommands, Router


def noop_router() -> Router:
    async def bench(session: AGICommands) -> None:
        await session.answer()

    router = Router()
    router.add("bench", bench)
    return router

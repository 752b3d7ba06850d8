"""Router factory for the classic-AGI subprocess tests (loaded through IVR_AGI_ROUTER=classic_router:build_router)."""

from __future__ import annotations

from ivr.agi import Router
from ivr.agi.errors import AGIHangupError


def build_router() -> Router:
    router = Router()

    @router.route("hello")
    async def hello(session) -> None:
        print("a stray print must not reach Asterisk")  # goes to stderr, not into the protocol
        await session.answer()
        name = await session.get_variable("CALLERID(name)")
        await session.set_variable("GREETED", f"{name}|{session.env.calleridname}|{','.join(session.env.args)}")

    @router.route("hangup")
    async def hangup(session) -> None:
        try:
            await session.stream_file("demo-congrats", "#")
        except AGIHangupError:
            await session.set_variable("SAW_HANGUP", "yes" if session.hung_up else "no")
            raise

    @router.route("fail")
    async def fail(session) -> None:
        raise RuntimeError("handler bug")

    return router

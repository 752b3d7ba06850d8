"""Node kinds: one module per kind, each registering its handler here by the kind's name.

Rules for this package:
- A handler is `async def handler(node, ctx: CallContext) -> Goto | Finish`. It does one node's work through the
  context's channel and helpers and says where the call goes next; the engine does the bookkeeping (visits,
  metrics, loop guard, hangups).
- Handlers never import AGI, AMI or the simulator, and never sleep.
- Modules are named after their kind (`input_node`/`set_node` avoid shadowing builtins).
- `handler_for(kind)` is the only lookup; importing this package registers every built-in kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ivr.flow.context import CallContext, EngineError, Step

NodeHandler = Callable[[Any, CallContext], Awaitable[Step]]

_HANDLERS: dict[str, NodeHandler] = {}


def register(kind: str) -> Callable[[NodeHandler], NodeHandler]:
    def add(handler: NodeHandler) -> NodeHandler:
        if kind in _HANDLERS:
            raise ValueError(f"node kind {kind!r} already has a handler")
        _HANDLERS[kind] = handler
        return handler

    return add


def handler_for(kind: str) -> NodeHandler:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise EngineError(f"no handler for node kind {kind!r}; known: {', '.join(sorted(_HANDLERS))}") from None


def kinds() -> list[str]:
    return sorted(_HANDLERS)


# Importing the modules registers their handlers.
from ivr.flow.nodes import (  # noqa: E402,F401
    callback,
    goto,
    hangup,
    hold,
    input_node,
    language,
    lookup,
    menu,
    park,
    play,
    record,
    route,
    say,
    set_node,
    survey,
    transfer,
    voicemail,
)

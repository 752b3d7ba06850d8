"""Client connections the tests' peers open, closed by the autouse fixture in tests/conftest.py."""

from __future__ import annotations

import asyncio

client_connections: list[asyncio.StreamWriter] = []


async def open_connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """`asyncio.open_connection`, with the writer closed at the end of the test if the test did not close it."""
    reader, writer = await asyncio.open_connection(host, port)
    client_connections.append(writer)
    return reader, writer

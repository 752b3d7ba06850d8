"""PeerAllowList: which hosts may speak FastAGI to us; RateLimitedWarning: log refusals without flooding.

Rules for this file:
- Anyone who reaches the FastAGI port can pretend to be Asterisk (choose the caller ID and the flow, run lookups,
  store callback requests), so the server checks the peer's address against this list before it reads a byte.
- Entries are addresses or CIDR ranges (`ipaddress`); a bad entry is a ValueError naming it. An IPv4 peer seen
  on a dual-stack socket as `::ffff:a.b.c.d` is checked as `a.b.c.d`. A peer without an IP address (a Unix socket,
  a transport without `peername`) is refused.
- No asyncio, no socket: the caller passes `transport.get_extra_info("peername")`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_ONLY: tuple[str, ...] = ("127.0.0.1/32", "::1/128")


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`["10.0.0.5", "192.0.2.0/24", "::1/128"]` -> networks. Host bits set (`10.0.0.5/24`) are an error."""
    networks: list[IPNetwork] = []
    for entry in entries:
        text = str(entry).strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is not an IP address or CIDR range ({exc}); write e.g. 192.0.2.10 or 192.0.2.0/24"
            ) from None
    return tuple(networks)


def peer_address(peername: Any) -> IPAddress | None:
    """The IP address in a transport's `peername` (a (host, port[, flow, scope]) tuple), or None."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return None
    host = peername[0].split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) is not part of the address
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class PeerAllowList:
    """`allow = PeerAllowList(["127.0.0.1/32", "192.0.2.0/24"]); allow.allows(("192.0.2.7", 40000)) -> True`."""

    __slots__ = ("networks", "_verdicts")

    MAX_REMEMBERED = 256  # peer hosts whose verdict is kept (a port scan from many hosts just evicts them)

    def __init__(self, entries: Iterable[str] = LOOPBACK_ONLY) -> None:
        self.networks = parse_networks(entries)
        # host string -> allowed: every call of one Asterisk comes from the same few addresses, and parsing the
        # address (ipaddress) cost more than the rest of the accept path (bench/call_cpu.py).
        self._verdicts: dict[str, bool] = {}

    def allows(self, peername: Any) -> bool:
        host = peername[0] if isinstance(peername, tuple) and peername else None
        if type(host) is str:
            verdict = self._verdicts.get(host)
            if verdict is None:
                verdict = self._check(peername)
                if len(self._verdicts) >= self.MAX_REMEMBERED:
                    self._verdicts.clear()
                self._verdicts[host] = verdict
            return verdict
        return self._check(peername)

    def _check(self, peername: Any) -> bool:
        address = peer_address(peername)
        if address is None:
            return False
        return any(address in network for network in self.networks)  # mixed versions are simply False

    def __repr__(self) -> str:
        return f"PeerAllowList({[str(n) for n in self.networks]!r})"


@dataclass
class RateLimitedWarning:
    """Log at most one warning per `interval` seconds; the next one says how many were suppressed meanwhile.

    A port scan or a misconfigured host retrying in a loop must not fill the log."""

    logger: logging.Logger
    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    suppressed: int = 0
    _last: float | None = field(default=None, repr=False)

    def warning(self, message: str, *args: object) -> bool:
        """Log `message % args` unless one was logged less than `interval` s ago. True if it was logged."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        self._last = now
        if self.suppressed:
            message += " (%d more since the last such message)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self.logger.warning(message, *args)
        return True

"""Small socket and address helpers shared by the AMI client, the FastAGI server, the API and `check`.

Rules for this file:
- Only socket options and address checks, no I/O and no asyncio: callers pass the socket from
  `transport.get_extra_info("socket")`.
- Failing to set an option is never fatal (the callers have their own timeouts): it is logged at debug level
  and reported by the return value.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def set_tcp_keepalive(sock: Any, idle: float, interval: float, count: int = 3) -> bool:
    """Turn on TCP keepalive: first probe after `idle` s of silence, then every `interval` s, `count` probes.

    A peer that is powered off or unplugged never sends a FIN or RST, so without this a socket waiting for it
    stays open forever. TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT are set where the platform has them (Linux has
    all three); where one is missing the system default applies (often 2 h idle). Returns False if the socket
    is missing or refused an option.
    """
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), max(1, int(value)))
    except OSError as exc:
        log.debug("could not set TCP keepalive: %s", exc)
        return False
    return True


def is_loopback(host: str) -> bool:
    """True for an address (or `localhost`) that only this host can reach; any other host name may resolve anywhere."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)

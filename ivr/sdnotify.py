"""systemd's readiness protocol (`Type=notify`): one datagram to the socket named by $NOTIFY_SOCKET.

Written here rather than taken from a library: the protocol is one `sendto()` of "READY=1" (or "STOPPING=1",
"STATUS=...") on a unix datagram socket, the path beginning with "@" meaning the abstract namespace. The
packages that wrap it (sdnotify, systemd-python) would add a dependency, and systemd-python a C build, for
those few lines (docs/decisions.md). Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1", "STOPPING=1", "STATUS=serving") to systemd. Returns whether it was sent; a
    failure is logged, never raised: readiness reporting must not stop the service."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("cannot notify systemd at %s (%s): %s", address.lstrip("\0"), state, exc)
        return False
    return True

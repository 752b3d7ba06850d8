"""This service instance's identity in the logs: every log line names the instance (`instance` setting).

Rules for this file:
- A `logging.Filter` on the root handlers sets `record.instance`, so records of every logger (ours, aiohttp's,
  asyncio's) carry it; the format puts it after the level. Nothing else reads the host name.
- The metric (`ivr_instance_info`) is `ivr.metrics.set_instance`; /readyz shows it through the API's deps.
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s [%(instance)s] %(name)s: %(message)s"


class InstanceFilter(logging.Filter):
    """Adds `instance` to every record passing the handler (never drops one)."""

    def __init__(self, instance: str) -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance
        return True


def tag_logs(instance: str, logger: logging.Logger | None = None) -> None:
    """Name `instance` in every line the handlers of `logger` (default: the root logger) write."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        for old in [f for f in handler.filters if isinstance(f, InstanceFilter)]:
            handler.removeFilter(old)
        handler.addFilter(InstanceFilter(instance))
        handler.setFormatter(logging.Formatter(LOG_FORMAT))

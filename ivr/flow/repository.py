"""The running flow set and its hot reload (SIGHUP, file change, API).

Rules for this file:
- `current` is swapped in one assignment, only after the candidate set loaded *and* passed every check. A broken
  edit never reaches callers: the running version keeps serving and the errors are kept in `last_errors` (API),
  logged, and shown by the metrics CONFIG_RELOADS{result="failed"} and CONFIG_RELOAD_FAILING=1.
- A call takes `current` once when it starts and keeps that FlowSet object to the end; `FlowSet.version` tells
  which version it ran. Nothing here mutates a FlowSet.
- File watching is polling (names, sizes, mtimes of the flow files and their calendars): no extra dependency and
  it works on network file systems and in containers, where inotify often does not.
- Loading is synchronous and a few milliseconds for normal sets; `watch` runs it in a worker thread so the event
  loop never stalls, and a lock keeps two reloads (SIGHUP during a watch reload) from interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ivr.flow.loader import FlowSet, flow_files, load_flows
from ivr.yamlsource import ConfigError, Problem

if TYPE_CHECKING:
    from ivr.settings import Settings

log = logging.getLogger("ivr.flow.repository")

Trigger = Literal["startup", "sighup", "watch", "api", "manual"]
Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class ReloadResult:
    """What one reload attempt did. `version` is the version running afterwards."""

    ok: bool
    changed: bool
    version: str
    previous_version: str | None
    candidate_version: str | None  # version of the files read (also when they failed)
    problems: tuple[Problem, ...]  # errors when failed; warnings otherwise
    trigger: str
    at: datetime

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "version": self.version,
            "previous_version": self.previous_version,
            "candidate_version": self.candidate_version,
            "trigger": self.trigger,
            "at": self.at.isoformat(),
            "errors": [p.to_dict() for p in self.problems if p.severity == "error"],
            "warnings": [p.to_dict() for p in self.problems if p.severity == "warning"],
        }


class FlowRepository:
    """Holds the running `FlowSet` and replaces it when a reload produces a valid new one."""

    def __init__(
        self,
        flows_dir: str | Path,
        *,
        prompts_dir: str | Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        history: int = 20,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.prompts_dir = Path(prompts_dir) if prompts_dir is not None else None
        self._clock = clock
        self._current: FlowSet | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[FlowSet], None]] = []
        self._signature: Signature = ()
        self.last_result: ReloadResult | None = None
        self.history: deque[ReloadResult] = deque(maxlen=history)

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowRepository:
        return cls(settings.flows_dir, prompts_dir=settings.prompts_dir)

    # --- reading -------------------------------------------------------------------------------------------

    @property
    def current(self) -> FlowSet:
        """The running version. Take it once per call and keep it."""
        if self._current is None:
            raise RuntimeError("no flows loaded yet; call FlowRepository.load() at start-up")
        return self._current

    @property
    def version(self) -> str | None:
        return self._current.version if self._current is not None else None

    @property
    def last_errors(self) -> list[Problem]:
        """Errors of the last reload attempt if it failed (empty while the running version is the latest)."""
        if self.last_result is None or self.last_result.ok:
            return []
        return self.last_result.errors

    @property
    def failing(self) -> bool:
        return bool(self.last_errors)

    def on_swap(self, listener: Callable[[FlowSet], None]) -> None:
        """Call `listener(new_set)` after every successful swap (e.g. to reset per-version caches)."""
        self._listeners.append(listener)

    # --- loading -------------------------------------------------------------------------------------------

    def load(self) -> FlowSet:
        """Initial load at start-up: raises ConfigError (the service must not start without valid flows)."""
        result = self.reload("startup")
        if not result.ok:
            raise ConfigError(list(result.problems))
        return self.current

    def reload(self, trigger: Trigger = "manual") -> ReloadResult:
        """Load and check the whole set; swap it in if valid, else keep the running one."""
        with self._lock:
            signature = self._scan()
            previous = self._current
            now = self._clock()
            try:
                candidate = load_flows(self.flows_dir, prompts_dir=self.prompts_dir, now=now)
            except ConfigError as exc:
                result = ReloadResult(
                    ok=False,
                    changed=False,
                    version=previous.version if previous else "",
                    previous_version=previous.version if previous else None,
                    candidate_version=None,
                    problems=tuple(exc.problems),
                    trigger=trigger,
                    at=now,
                )
                self._signature = signature
                self._record(result)
                return result
            changed = previous is None or candidate.version != previous.version
            if changed:
                self._current = candidate
            self._signature = signature
            result = ReloadResult(
                ok=True,
                changed=changed,
                version=self.current.version,
                previous_version=previous.version if previous else None,
                candidate_version=candidate.version,
                problems=candidate.warnings,
                trigger=trigger,
                at=now,
            )
            self._record(result)
        if changed:
            for listener in list(self._listeners):
                try:
                    listener(candidate)
                except Exception:  # a listener's bug must not undo a good reload
                    log.exception("flow reload listener failed")
        return result

    async def reload_async(self, trigger: Trigger = "api") -> ReloadResult:
        """`reload` in a worker thread, for callers on the event loop (the API) with large flow sets."""
        return await asyncio.to_thread(self.reload, trigger)

    def _record(self, result: ReloadResult) -> None:
        from ivr import metrics  # here, not at the top: classic AGI (a process per call) never reloads

        self.last_result = result
        self.history.append(result)
        if result.ok:
            metrics.CONFIG_RELOADS.labels(result="ok").inc()
            metrics.CONFIG_RELOAD_FAILING.set(0)
            metrics.CONFIG_INFO.info({"version": self.current.version})  # only bounded labels are exported
            if result.changed:
                log.info(
                    "flows %s: version %s (was %s), %d warning(s)",
                    "loaded" if result.trigger == "startup" else f"reloaded ({result.trigger})",
                    result.version,
                    result.previous_version or "-",
                    len(result.problems),
                )
        else:
            metrics.CONFIG_RELOADS.labels(result="failed").inc()
            metrics.CONFIG_RELOAD_FAILING.set(1)
            errors = result.errors
            log.error(
                "flow reload (%s) failed with %d error(s); still serving version %s:\n%s",
                result.trigger,
                len(errors),
                result.version or "none",
                "\n".join(p.format() for p in errors),
            )

    # --- watching ------------------------------------------------------------------------------------------

    def _scan(self) -> Signature:
        """Names, sizes and modification times of every file the set depends on."""
        paths: set[Path] = set()
        with contextlib.suppress(OSError):
            paths.update(flow_files(self.flows_dir))
        if self._current is not None:
            paths.update(self._current.files)
        entries = []
        for path in sorted(paths):
            try:
                stat = path.stat()
            except OSError:
                continue  # a deleted file changes the signature by its absence
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def changed_on_disk(self) -> bool:
        return self._scan() != self._signature

    async def watch(self, interval: float = 2.0) -> None:
        """Poll the files every `interval` seconds and reload when they change. Runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if await asyncio.to_thread(self.changed_on_disk):
                await asyncio.to_thread(self.reload, "watch")

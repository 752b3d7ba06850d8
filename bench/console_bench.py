"""Frame times of the supervisor console with 2,000 live calls, measured in headless Chromium.

The service's API app (with the console and its /events feed) runs on 127.0.0.1; its call registry is fed AMI
events (`ivr.ami.protocol.Message`, the headers Asterisk 22 sends) for `--calls` live calls in every state: in the
IVR, queued, talking (bridged with an agent leg), on hold, parked, recorded; plus queue members, some paused.
Then it keeps changing: `--churn` events per second (a caller moves to another node, a call ends and a new one
starts, a queue caller is answered), as a busy call center would.

In the browser (Selenium + Debian's chromium/chromedriver): sign in, wait until all calls are in the list, then
measure for `--seconds` in three phases: idle (only the durations tick), churn (deltas arriving), and churn while
scrolling the call list. The page's own code is unchanged; the bench injects a requestAnimationFrame loop (frame
intervals) and a PerformanceObserver for long tasks (> 50 ms).

Prints: time from sign-in to 2,000 rendered calls, snapshot size, rows in the DOM (virtualisation), per phase
frames per second, frame interval median / p95 / p99 / max, and long tasks (count, total ms); and the service
side: how long the feed's full rebuild and its flushes hold the event loop.

    .venv/bin/python bench/console_bench.py            # 2,000 calls, 200 events/s, 8 s per phase
    .venv/bin/python bench/console_bench.py --quick    # 500 calls, 3 s per phase
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from ivr.ami.protocol import Message  # noqa: E402
from ivr.api.app import create_app  # noqa: E402
from ivr.calls.registry import CallRegistry  # noqa: E402
from ivr.calls.settings import CallControlSettings  # noqa: E402
from ivr.console.web import FEED  # noqa: E402
from ivr.storage import open_storage  # noqa: E402
from ivr.tools import _chromium  # noqa: E402

TOKEN = "bench-token"
QUEUES = ("sales", "support", "billing")
NODES = ("language", "welcome", "menu", "support_menu", "billing_account", "crm_lookup")
NAMES = ("Ona", "Jonas", "Ann", "Peter", "Rūta", "Tomas", "")

MEASURE_JS = """
const bench = window.__bench = {frames: [], longtasks: [], running: true};
let last = performance.now();
function loop(now) {
  if (!bench.running) return;
  bench.frames.push(now - last); last = now;
  requestAnimationFrame(loop);
}
requestAnimationFrame(loop);
try {
  bench.observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) bench.longtasks.push(e.duration);
  });
  bench.observer.observe({type: "longtask", buffered: false});
} catch (err) { bench.noLongtask = String(err); }
"""
STOP_JS = """
const bench = window.__bench; bench.running = false;
if (bench.observer) bench.observer.disconnect();
return {frames: bench.frames, longtasks: bench.longtasks, noLongtask: bench.noLongtask || ""};
"""
SCROLL_JS = """
const list = document.getElementById('call-list');
window.__scroll = setInterval(() => {
  list.scrollTop = (list.scrollTop + 157) % Math.max(1, list.scrollHeight - list.clientHeight);
}, 16);
"""
UNSCROLL_JS = "clearInterval(window.__scroll);"


def msg(name: str, **headers: str) -> Message:
    return Message([("Event", name), *headers.items()])


class CallCenter:
    """Live calls as AMI events, applied to the registry."""

    def __init__(self, registry: CallRegistry, rng: random.Random) -> None:
        self.registry = registry
        self.rng = rng
        self.seq = 0
        self.calls: dict[str, list[str]] = {}  # linkedid -> uniqueids
        self.space = 700

    def _uid(self) -> str:
        self.seq += 1
        return f"1733580000.{self.seq}"

    def _channel(
        self, name: str, uid: str, linkedid: str, number: str, caller: str, state: str = "6"
    ) -> dict[str, str]:
        return {
            "Channel": name,
            "ChannelState": state,
            "ChannelStateDesc": "Up" if state == "6" else "Ring",
            "CallerIDNum": number,
            "CallerIDName": caller,
            "Uniqueid": uid,
            "Linkedid": linkedid,
            "Context": "ivr-inbound",
            "Exten": "s",
            "Priority": "1",
        }

    def new_call(self) -> None:
        apply = self.registry.apply
        uid = self._uid()
        number = f"+3706{self.rng.randrange(10**7):07d}"
        caller = self.rng.choice(NAMES)
        ch = self._channel(f"PJSIP/trunk-{uid}", uid, uid, number, caller)
        apply(msg("Newchannel", **ch))
        self.calls[uid] = [uid]
        self.registry.note_flow(uid, "main", self.rng.choice(NODES))
        kind = self.rng.random()
        if kind < 0.30:
            return  # in the IVR
        if kind < 0.55:
            queue = self.rng.choice(QUEUES)
            apply(msg("QueueCallerJoin", **ch, Queue=queue, Position=str(self.rng.randint(1, 30))))
            return
        agent_uid = self._uid()
        agent = self._channel(f"Local/agent{self.rng.randrange(20)}@agents-{agent_uid};1", agent_uid, uid, "", "")
        apply(msg("Newchannel", **agent))
        self.calls[uid].append(agent_uid)
        bridge = f"bridge-{uid}"
        apply(msg("BridgeCreate", BridgeUniqueid=bridge, BridgeType="basic", BridgeTechnology="simple_bridge"))
        apply(msg("BridgeEnter", **ch, BridgeUniqueid=bridge, BridgeType="basic"))
        apply(msg("BridgeEnter", **agent, BridgeUniqueid=bridge, BridgeType="basic"))
        apply(msg("AgentConnect", **ch, DestUniqueid=agent_uid, Queue="sales", MemberName=f"Agent {uid[-3:]}"))
        if kind < 0.65:
            apply(msg("MixMonitorStart", **ch, MixMonitorID=f"mm{uid}"))
        elif kind < 0.72:
            apply(msg("MusicOnHoldStart", **ch, Class="default"))
        elif kind < 0.78:
            self.space = 701 + (self.space - 700) % 99
            apply(
                msg(
                    "ParkedCall",
                    **{f"Parkee{k}": v for k, v in ch.items()},
                    Parkinglot="default",
                    ParkingSpace=str(self.space),
                    ParkingTimeout="45",
                    ParkingDuration="0",
                )
            )

    def end_call(self) -> None:
        linkedid = self.rng.choice(list(self.calls))
        for uid in self.calls.pop(linkedid):
            ch = self.registry.channels.get(uid)
            if ch is not None:
                self.registry.apply(msg("Hangup", Channel=ch.name, Uniqueid=uid, Linkedid=linkedid, Cause="16"))

    def move(self) -> None:
        linkedid = self.rng.choice(list(self.calls))
        self.registry.note_flow(linkedid, "main", self.rng.choice(NODES))

    def members(self) -> None:
        for i in range(20):
            paused = i % 5 == 0
            self.registry.apply(
                msg(
                    "QueueMemberAdded",
                    Queue=QUEUES[i % len(QUEUES)],
                    Interface=f"PJSIP/10{i:02d}",
                    MemberName=f"Agent {i}",
                    Status=str(1 + i % 2),
                    Paused="1" if paused else "0",
                    PausedReason="lunch" if paused else "",
                )
            )

    def churn_step(self) -> None:
        r = self.rng.random()
        if r < 0.25:
            self.end_call()
            self.new_call()
        else:
            self.move()


class Server:
    """The API app in a background event loop (the browser is driven synchronously from the main thread)."""

    def __init__(self, calls: int, churn: float, seed: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.calls, self.churn, self.seed = calls, churn, seed
        self.churning = False
        self.events_applied = 0

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def start(self) -> str:
        self.thread.start()
        return self.run(self._start())

    async def _start(self) -> str:
        self.registry = CallRegistry()
        self.storage = open_storage("memory:")
        self.center = CallCenter(self.registry, random.Random(self.seed))
        self.center.members()
        for _ in range(self.calls):
            self.center.new_call()
        app = create_app(
            operations=None, registry=self.registry, storage=self.storage, token=TOKEN, settings=CallControlSettings()
        )
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.task = asyncio.create_task(self._churn())
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def time_flushes(self) -> None:
        """Measure the feed's flushes (service-side cost of the console) without changing what they do."""
        feed = self.runner.app[FEED]
        original = feed._flush
        self.flush_ms: list[float] = []

        def timed() -> None:
            started = time.perf_counter()
            original()
            self.flush_ms.append((time.perf_counter() - started) * 1000)

        feed._flush = timed  # type: ignore[method-assign]

    async def full_rebuild_ms(self) -> float:
        feed = self.runner.app[FEED]
        feed._all = True
        started = time.perf_counter()
        feed._flush()
        return (time.perf_counter() - started) * 1000

    async def snapshot_size(self) -> int:
        feed = self.runner.app[FEED]
        return len(json.dumps(feed.snapshot(), separators=(",", ":")))

    async def _churn(self) -> None:
        step = 0.05
        while True:
            await asyncio.sleep(step)
            if self.churning:
                for _ in range(max(1, round(self.churn * step))):
                    self.center.churn_step()
                    self.events_applied += 1

    def stop(self) -> None:
        async def _stop() -> None:
            self.task.cancel()
            await self.runner.cleanup()
            await self.storage.close()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(driver: Any, seconds: float) -> dict[str, Any]:
    driver.execute_script(MEASURE_JS)
    time.sleep(seconds)
    data = driver.execute_script(STOP_JS)
    frames = [f for f in data["frames"][1:]]
    return {
        "fps": len(frames) / seconds,
        "median": pct(frames, 0.5),
        "p95": pct(frames, 0.95),
        "p99": pct(frames, 0.99),
        "max": max(frames, default=float("nan")),
        "longtasks": len(data["longtasks"]),
        "longtask_ms": sum(data["longtasks"]),
        "note": data.get("noLongtask", ""),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--churn", type=float, default=200.0, help="registry changes per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="500 calls, 3 s per phase")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.seconds = 500, 3.0
    reason = _chromium.missing()
    if reason is not None:
        print(f"console bench: cannot run: {reason}")
        return 2
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = Server(args.calls, args.churn, args.seed)
    url = server.start()
    try:
        with _chromium.Browser(width=1440, height=900) as browser:
            d = browser.driver
            d.get(url + "/console")
            WebDriverWait(d, 20).until(lambda _: d.find_element(By.ID, "token").is_displayed())
            d.find_element(By.ID, "token").send_keys(TOKEN)
            started = time.perf_counter()
            d.find_element(By.ID, "sign-in").click()
            total = str(len(server.registry.calls()))
            WebDriverWait(d, 60, poll_frequency=0.02).until(
                lambda _: d.find_element(By.ID, "calls-panel").get_attribute("data-total") == total
            )
            first = time.perf_counter() - started
            size = server.run(server.snapshot_size())
            rows = d.execute_script("return document.querySelectorAll('#call-list .row').length")
            print(
                f"console bench: {total} live calls, churn {args.churn:g} registry changes/s, "
                f"{args.seconds:g} s per phase, headless Chromium {d.capabilities.get('browserVersion', '?')}"
            )
            print(f"  sign-in to {total} calls listed: {first * 1000:.0f} ms (fetch, snapshot, first render)")
            print(f"  snapshot: {size / 1024:.0f} KiB of JSON (then deltas of the changed rows only)")
            print(f"  call rows in the DOM: {rows} (of {total}: only the visible ones, virtualised)")
            rebuild = server.run(server.full_rebuild_ms())
            server.time_flushes()
            phases = {}
            time.sleep(1.0)
            phases["idle (durations tick)"] = measure(d, args.seconds)
            server.churning = True
            time.sleep(0.5)
            phases["churn (deltas arriving)"] = measure(d, args.seconds)
            d.execute_script(SCROLL_JS)
            phases["churn + scrolling the list"] = measure(d, args.seconds)
            d.execute_script(UNSCROLL_JS)
            server.churning = False
            print(f"  {'phase':30s} {'fps':>5s} {'median':>7s} {'p95':>6s} {'p99':>6s} {'max':>6s}  long tasks")
            for name, m in phases.items():
                print(
                    f"  {name:30s} {m['fps']:5.1f} {m['median']:6.1f}ms {m['p95']:5.1f}ms {m['p99']:5.1f}ms "
                    f"{m['max']:5.0f}ms  {m['longtasks']} ({m['longtask_ms']:.0f} ms)"
                    + (f" [{m['note']}]" if m["note"] else "")
                )
            rows = d.execute_script("return document.querySelectorAll('#call-list .row').length")
            print(f"  call rows in the DOM after scrolling: {rows}; registry changes applied: {server.events_applied}")
            flushes = server.flush_ms
            print(
                f"  service side: a full rebuild of the {total} rows takes {rebuild:.0f} ms (a resync, the first "
                f"console); {len(flushes)} flushes (deltas, reconcile slices), median {pct(flushes, 0.5):.1f} ms, "
                f"p99 {pct(flushes, 0.99):.1f} ms"
            )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

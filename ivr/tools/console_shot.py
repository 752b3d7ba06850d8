"""Screenshot of the supervisor console with live calls: `python -m ivr.tools.console_shot -o docs/console.png`.

The service runs exactly as `ivr demo` builds it (`ivr.service.Service`), on the simulated Asterisk with a stream of
sample callers through the sample flows; after a warm-up the tool makes the board show each kind of thing once
through the HTTP API (a call parked, one recorded, an agent paused for lunch, callbacks due), signs in with
headless Chromium (Selenium, Debian's chromium and chromium-driver), selects a call and saves the page as PNG.
Files it writes besides the PNG go to a temporary directory. Needs the `dev` extra (selenium).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ivr.tools import _chromium

TOKEN = "console-screenshot"


def _api(base: str, method: str, path: str, body: Any = None) -> Any:
    """A blocking call to the service's API (run in a thread)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        exc.close()
        return None


def _stage(base: str) -> None:
    """Make the board show one of everything: a parked call, a recording, a paused agent, callbacks due."""
    calls = _api(base, "GET", "/calls")["calls"]
    talking = [c for c in calls if c["state"] == "talking"]
    if talking:
        _api(base, "POST", f"/calls/{talking[0]['id']}/recording/start", {})
    if len(talking) > 1:
        _api(base, "POST", f"/calls/{talking[-1]['id']}/park", {"lot": "default", "timeout": 300})
    queues = _api(base, "GET", "/queues")["queues"]
    for queue in queues[:1]:
        for member in queue["members"][:1]:
            _api(
                base,
                "POST",
                f"/queues/{queue['name']}/members/pause",
                {"interface": member["interface"], "reason": "lunch"},
            )
    for number, name in (("+37060012345", "Ona Petraitė"), ("+37061198765", "Jonas K.")):
        queue = queues[0]["name"] if queues else "sales"
        _api(base, "POST", "/callbacks", {"number": number, "queue": queue, "caller_name": name})


def _shoot(base: str, out: Path, language: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with _chromium.Browser(width=1440, height=900, language=language) as browser:
        d = browser.driver
        d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        d.get(base + "/console")
        WebDriverWait(d, 20).until(lambda _: d.find_element(By.ID, "token").is_displayed())
        d.find_element(By.ID, "token").send_keys(TOKEN)
        d.find_element(By.ID, "sign-in").click()
        WebDriverWait(d, 20).until(lambda _: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
        ext = d.find_element(By.ID, "my-ext")
        ext.send_keys("2000")
        WebDriverWait(d, 20).until(lambda _: d.find_elements(By.CSS_SELECTOR, '#call-list .row[data-state="talking"]'))
        rows = d.find_elements(By.CSS_SELECTOR, '#call-list .row[data-state="talking"]')
        (rows[1] if len(rows) > 1 else rows[0]).click()
        WebDriverWait(d, 10).until(lambda _: d.find_element(By.ID, "actions").is_displayed())
        d.find_element(By.CSS_SELECTOR, 'button[data-act="whisper"]').click()  # rings 2000: "Whisper: sent"
        WebDriverWait(d, 10).until(lambda _: d.find_element(By.ID, "sel-msg").text)
        d.execute_script("document.activeElement && document.activeElement.blur()")
        asyncio.run(asyncio.sleep(1.2))  # a tick of the durations, the last deltas
        out.parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(out))


async def run(out: Path, *, warmup: float, rate: float, agents: int, seed: int, language: str) -> int:
    from ivr.demo import business_day_clock, sim_config, start_demo_crm, traffic_plan
    from ivr.flow.loader import load_flows
    from ivr.service import Service
    from ivr.settings import load_settings
    from ivr.sim import RealClock, SimulatedAsterisk
    from ivr.sim.traffic import TrafficGenerator

    settings = load_settings(None)
    with tempfile.TemporaryDirectory(prefix="ivr-console-shot-") as tmp:
        work = Path(tmp)
        settings.http.host, settings.http.port = "127.0.0.1", 0
        settings.http.token = SecretStr(TOKEN)
        settings.fastagi.host, settings.fastagi.port = "127.0.0.1", 0
        settings.recordings_dir = work / "recordings"
        settings.storage.url = f"sqlite:///{work / 'ivr.db'}"
        settings.callbacks.enabled = False  # requests stay due, as when every agent is busy
        flows = load_flows(settings.flows_dir, prompts_dir=settings.prompts_dir)
        sim = SimulatedAsterisk(
            sim_config(settings, dict(flows.flows), work, agents=agents, seed=seed), clock=RealClock()
        )
        await sim.start(ami=True)
        settings.ami.enabled = True
        settings.ami.host, settings.ami.port = "127.0.0.1", sim.ami_port
        settings.ami.secret = SecretStr("demo-secret")
        main = flows.flows.get("main") or next(iter(flows.flows.values()))
        _, flow_clock = business_day_clock(main.timezone)
        service = Service.from_settings(settings, clock=flow_clock)
        crm = await start_demo_crm()
        traffic = None
        try:
            await service.start()
            sim.fastagi = ("127.0.0.1", service.fastagi.port)
            base = f"http://127.0.0.1:{service.http_port}"
            traffic = TrafficGenerator(sim, rate=rate / 60.0, plan=traffic_plan(dict(flows.flows)), seed=seed)
            runner = asyncio.create_task(traffic.run())
            print(f"console_shot: {rate:g} sample calls/min for {warmup:g} s ...", flush=True)
            await asyncio.sleep(warmup)
            await asyncio.to_thread(_stage, base)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(_shoot, base, out, language)
            traffic.stop()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        finally:
            await service.ami.close()
            await sim.stop()
            if traffic is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(traffic.drain(), 10)
            await service.stop()
            if crm is not None:
                await crm.cleanup()
    print(f"console_shot: wrote {out}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/console.png"))
    parser.add_argument("--warmup", type=float, default=40.0, help="seconds of sample calls before the shot")
    parser.add_argument("--rate", type=float, default=80.0, help="sample calls per minute")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--language", default="en-US", help="browser language (lt for Lithuanian texts)")
    args = parser.parse_args(argv)
    reason = _chromium.missing()
    if reason is not None:
        print(f"console_shot: cannot take a screenshot: {reason}", file=sys.stderr)
        return 2
    return asyncio.run(
        run(args.output, warmup=args.warmup, rate=args.rate, agents=args.agents, seed=args.seed, language=args.language)
    )


if __name__ == "__main__":
    sys.exit(main())

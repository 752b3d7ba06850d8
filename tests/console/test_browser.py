"""The console in a real browser (headless Chromium through Selenium) against the service on the simulated Asterisk:
sign in, see a new call appear, an API refusal in words next to it, park it, see it parked, retrieve it, hold and
resume it, record it (pause, stop), hang it up (confirmed), pause an agent with a reason, switch to Lithuanian, and
follow a restart of the service.

Skipped only where Selenium, chromium or chromedriver is absent (Debian: chromium, chromium-driver).
"""

from __future__ import annotations

import pytest

from ivr.sim import CallSpec
from ivr.tools import _chromium
from tests.console.live import LiveService

REASON = _chromium.missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no browser to test the console in: {REASON}")
WAIT = 15  # seconds; generous for a shared 2-core machine, never reached when things work


@pytest.fixture
def live(tmp_path):
    service = LiveService(tmp_path).start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def browser():
    with _chromium.Browser(width=1400, height=900, language="en-US") as b:
        yield b


def test_supervisor_signs_in_and_handles_a_call(live, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = browser.driver
    # The side panels are rebuilt when what they show changes: an element found a moment ago may be replaced.
    wait = WebDriverWait(d, WAIT, ignored_exceptions=(StaleElementReferenceException,))

    def css(selector):
        return d.find_element(By.CSS_SELECTOR, selector)

    def present(selector):
        return bool(d.find_elements(By.CSS_SELECTOR, selector))

    d.get(live.url + "/console")
    wait.until(lambda _: css("#login").is_displayed())
    css("#token").send_keys("wrong-token")
    css("#sign-in").click()
    wait.until(lambda _: "not valid" in css("#login-error").text)
    css("#token").clear()
    css("#token").send_keys(live.token)
    css("#sign-in").click()
    wait.until(lambda _: css("#conn").get_attribute("data-state") == "live")
    assert "token" not in d.current_url and live.token not in d.current_url
    assert d.execute_script("return sessionStorage.getItem('ivr.console.token')") == live.token

    # A new call appears, pushed by the service.
    call = live.run(live.sim.place_call(CallSpec(flow="agent", caller_id="37060000001", caller_name="Ona")))
    row = f'#call-list .row[data-id="{call.uniqueid}"]'
    wait.until(lambda _: present(row) and css(row).get_attribute("data-state") == "talking")
    assert "37060000001 · Ona" in css(row).text
    css(row).click()
    wait.until(lambda _: css("#actions").is_displayed())
    css("#call-list").send_keys(Keys.ESCAPE)  # the keyboard: Escape closes the bar, down selects the first call
    wait.until(lambda _: not css("#actions").is_displayed())
    css("#call-list").send_keys(Keys.ARROW_DOWN)
    wait.until(lambda _: css("#actions").is_displayed() and "selected" in css(row).get_attribute("class"))

    # The API refuses a transfer to a queue name Asterisk could not take: the reason is shown next to the call.
    Select(css("#xfer-kind")).select_by_value("queue")
    css("#xfer-target").send_keys("no such queue!")
    css('button[data-act="transfer"]').click()
    wait.until(lambda _: css("#confirm").is_displayed())
    css("#confirm-ok").click()
    wait.until(lambda _: "failed" in css(row + " .c-note").text)
    assert "Transfer failed: the request is not valid" in css(row + " .c-note").text
    assert css(row + " .c-note").get_attribute("class") == "c-note err"

    # Hold and resume; record, pause the recording, stop it (confirmed): the marks follow.
    css('button[data-act="hold"]').click()
    wait.until(lambda _: css(row).get_attribute("data-state") == "held" and present(row + " .mark-held"))
    css('button[data-act="resume"]').click()
    wait.until(lambda _: css(row).get_attribute("data-state") == "talking" and not present(row + " .mark-held"))
    css('button[data-act="rec-start"]').click()
    wait.until(lambda _: present(row + " .mark-rec") and css(row + " .mark-rec").text == "REC")
    css('button[data-act="rec-pause"]').click()
    wait.until(lambda _: css(row + " .mark-rec").text == "REC paused")
    css('button[data-act="rec-stop"]').click()
    wait.until(lambda _: css("#confirm").is_displayed())
    css("#confirm-ok").click()
    wait.until(lambda _: not present(row + " .mark-rec"))

    # Park it: the row says parked with its space, and the parking lot lists it.
    css('button[data-act="park"]').click()
    wait.until(lambda _: css(row).get_attribute("data-state") == "parked")
    wait.until(lambda _: present(f'#lots [data-lot="default"] [data-call="{call.uniqueid}"]'))
    assert css(row + " .mark-parked").text == "P 701"
    assert [p.linkedid for p in live.control.registry.parked_in("default")] == [call.uniqueid]

    # Retrieve it to extension 1009, which answers: talking again, the lot is empty.
    css("#retrieve-agent").send_keys("1009")
    css('button[data-act="retrieve"]').click()
    wait.until(lambda _: css(row).get_attribute("data-state") == "talking")
    wait.until(lambda _: not present(f'#lots [data-call="{call.uniqueid}"]'))

    # Hang it up, after confirming: the row goes away.
    css('button[data-act="hangup"]').click()
    wait.until(lambda _: css("#confirm").is_displayed())
    assert "Hang up the call from 37060000001 · Ona?" in css("#confirm-text").text
    css("#confirm-ok").click()
    wait.until(lambda _: not present(row))
    live.run(call.finished(timeout=10))

    # Pause an agent with a reason: the queue panel shows it paused, and so does Asterisk.
    agent = '#queues .queue[data-queue="sales"] li.agent[data-interface="Local/1001@agents"]'
    wait.until(lambda _: present(agent))
    css(agent + ' button[data-agent-action="pause"]').click()
    wait.until(lambda _: css("#pause-dialog").is_displayed())
    css("#pause-reason").send_keys("lunch")
    css("#pause-ok").click()
    wait.until(lambda _: "st-paused" in css(agent).get_attribute("class"))
    wait.until(lambda _: "paused · lunch" in css(agent + " .a-state").text)
    member = live.control.registry.queues["sales"].members["Local/1001@agents"]
    assert member.paused and member.paused_reason == "lunch"

    # Lithuanian texts.
    Select(css("#lang")).select_by_value("lt")
    wait.until(lambda _: css("#calls-panel h2").get_attribute("textContent") == "Skambučiai")
    wait.until(lambda _: "pertrauka · lunch" in css(agent + " .a-state").text)
    assert d.execute_script("return document.documentElement.lang") == "lt"

    # The service restarts (new AMI login, registry and feed on the same port): the page reconnects, resyncs
    # from a new snapshot, and shows calls placed meanwhile.
    live.restart_api()
    second = live.run(live.sim.place_call(CallSpec(flow="queue", caller_id="37060000002", caller_name="Jonas")))
    row2 = f'#call-list .row[data-id="{second.uniqueid}"]'
    wait.until(lambda _: present(row2) and css(row2).get_attribute("data-state") == "queued")
    wait.until(lambda _: css("#conn").get_attribute("data-state") == "live")
    assert css("#banner").is_displayed()
    assert css("#calls-panel").get_attribute("data-total") == "1"
    assert browser.page_errors() == []

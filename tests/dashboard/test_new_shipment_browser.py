"""Issue 13's Done-when in a real headless Chromium against the real web process: an operator
books a shipment on the "New shipment" form, assigns a logger by typing its serial, and sees
the shipment on the fleet page; on its page, the lifecycle panel starts it and the timeline
shows the move. A viewer sees the same page without the buttons and without the form.

Screenshots of the form and of the shipment page (as operator and as viewer) go to
artifacts/screenshots/ (:func:`tests.fixtures.web.screenshot`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard import ids
from dashboard.pages import new_shipment as ns
from dashboard.pages import shipment_href
from tests.dashboard.masterdata import MasterData, register
from tests.dashboard.test_browser import _attr_of, _console_errors, _login_as, _open, _text_of
from tests.dashboard.test_browser import _wait as wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, screenshot
from tests.services.test_lifecycle import _profile

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REFERENCE = "SHP-BROWSER-1"
# The elements wider than the page (a form that scrolls sideways is a broken form).
OVERFLOW = """
const w = document.documentElement.clientWidth;
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > w + 1)
  .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className);
"""


def _type(driver: WebDriver, element_id: str, text: str) -> None:
    driver.find_element(By.ID, element_id).send_keys(text)


def _pick(driver: WebDriver, element_id: str, text: str) -> None:
    """Choose the option of a dropdown whose label contains ``text``, as a person does: open
    it, type to search, press Enter."""
    driver.find_element(By.ID, element_id).click()
    wait(driver).until(
        lambda d: d.execute_script("return document.activeElement.tagName") == "INPUT"
    )
    active = driver.switch_to.active_element
    active.send_keys(text)
    active.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: text in (_text_of(d, f"#{element_id}") or ""))


def test_an_operator_books_on_the_form_and_sees_the_shipment_on_the_fleet_page(
    browser: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    data: MasterData = register(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:  # two bands
        _profile(conn, data.gtin, budget_s=3600, created_at=datetime.now(UTC) - timedelta(hours=1))
    _login_as(browser, web_server, session_cookie(people["operator"]))
    _open(browser, web_server.url + "/")
    wait(browser).until(lambda d: _text_of(d, f"#{ns.NAV_NEW}") == "New shipment")
    browser.find_element(By.ID, ns.NAV_NEW).click()
    wait(browser).until(lambda d: _text_of(d, f"#{ns.NS_LANE}") is not None)

    # Booking an empty form: each mistake under its field, nothing booked.
    browser.find_element(By.ID, ns.NS_SUBMIT).click()
    wait(browser).until(lambda d: _text_of(d, f"#{ns.error_id('reference')}"))
    assert _text_of(browser, f"#{ns.error_id('lane')}")
    assert _attr_of(browser, f"#{ns.NS_FEEDBACK}", "class") == "feedback error"
    screenshot(browser, "new-shipment-errors-operator")

    _type(browser, ns.NS_REFERENCE, REFERENCE)
    _type(browser, ns.NS_PO, "PO-88001")
    _pick(browser, ns.item_id("product", 0), data.gtin)
    _type(browser, ns.item_id("lot", 0), "L2026-12")
    _type(browser, ns.item_id("qty", 0), "120")
    _pick(browser, ns.NS_LANE, "BSL-MIL")
    wait(browser).until(lambda d: data.origin in (_text_of(d, f"#{ns.NS_LANE_ENDS}") or ""))
    _pick(browser, ns.NS_CARRIER, data.carrier)
    _type(browser, ns.NS_ARRIVAL, "2026-12-20 16:00")
    # The logger by its serial, as a scanner types it (Enter at the end).
    _type(browser, ns.NS_LOGGERS, data.loggers[0] + "\n")
    assert browser.execute_script(OVERFLOW) == []
    screenshot(browser, "new-shipment-form-operator")
    browser.find_element(By.ID, ns.NS_SUBMIT).click()
    wait(browser).until(lambda d: _attr_of(d, f"#{ns.NS_FEEDBACK}", "class") == "feedback ok")
    assert REFERENCE in (_text_of(browser, f"#{ns.NS_FEEDBACK}") or "")
    assert data.loggers[0] in (_text_of(browser, f"#{ns.NS_FEEDBACK}") or "")
    screenshot(browser, "new-shipment-booked-operator")

    # The fleet page lists it, with its logger.
    browser.find_element(By.ID, ids.NAV_FLEET).click()
    row = f'#fleet-table tr.fleet-row[data-reference="{REFERENCE}"]'
    wait(browser).until(lambda d: _text_of(d, row) is not None)

    # Its page: planned, Start shown; starting it puts the move on the timeline.
    _open(browser, web_server.url + shipment_href(REFERENCE))
    state = f"#{ids.SHIPMENT_STATE} .badge-state"
    wait(browser).until(lambda d: _attr_of(d, state, "data-state") == "planned")
    wait(browser).until(lambda d: browser.find_element(By.ID, ids.SHIPMENT_START).is_displayed())
    assert not browser.find_element(By.ID, ids.SHIPMENT_ARRIVE).is_displayed()
    browser.find_element(By.ID, ids.SHIPMENT_START).click()
    wait(browser).until(lambda d: _attr_of(d, state, "data-state") == "in_transit")
    wait(browser).until(
        lambda d: _text_of(d, f'#{ids.SHIPMENT_TIMELINE} tr.timeline-row[data-kind="started"]')
    )
    # Arrival: every product judged; the verdict shows with its reasons and bands.
    browser.find_element(By.ID, ids.SHIPMENT_ARRIVE).click()
    wait(browser).until(lambda d: _attr_of(d, state, "data-state") == "under_review")
    verdict = f"#{ids.SHIPMENT_VERDICTS} .verdict[data-gtin='{data.gtin}']"
    wait(browser).until(lambda d: _attr_of(d, verdict, "data-verdict") is not None)
    assert not browser.find_element(By.ID, ids.SHIPMENT_ARRIVE).is_displayed()
    bands = (_text_of(browser, verdict) or "").replace("–", "-")
    assert "8-25" in bands and "0-2" in bands, bands
    screenshot(browser, "shipment-lifecycle-operator")
    assert _console_errors(browser) == []

    # A viewer: the same page without the buttons; the form is not offered.
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + shipment_href(REFERENCE))
    wait(browser).until(lambda d: _attr_of(d, state, "data-state") == "under_review")
    wait(browser).until(lambda d: _text_of(d, f"#{ids.SHIPMENT_TIMELINE} tr.timeline-row"))
    assert not browser.find_element(By.ID, ids.SHIPMENT_ACTIONS).is_displayed()
    assert _text_of(browser, f"#{ns.NAV_NEW}") is None
    screenshot(browser, "shipment-lifecycle-viewer")
    _open(browser, web_server.url + ns.PATH)
    wait(browser).until(lambda d: "operator or admin" in (_text_of(d, ".page-new-shipment") or ""))
    assert not browser.find_element(By.ID, ns.NS_FORM).is_displayed()
    screenshot(browser, "new-shipment-form-viewer")

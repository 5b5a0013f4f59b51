"""The passport page in a real headless Chromium: paste what a barcode scanner types, see the
unit's verdict, its temperature across both pallets and its custody (screenshot saved)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from dashboard import ids
from dashboard.pages.login import COOKIE
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, screenshot
from tests.trace.scenario import TM, scenario_document, seed_rows
from traceability.epcis_import import import_document

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Paste into a React-controlled input: set the value through the native setter, then tell React.
PASTE = """
const input = document.getElementById(arguments[0]);
const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
setter.call(input, arguments[1]);
input.dispatchEvent(new Event('input', {bubbles: true}));
input.focus();
"""

STATE = """
const status = document.querySelector('#passport-status');
const rows = [...document.querySelectorAll('#passport-custody tr.custody-row')];
const graph = document.querySelector('#passport-temp-graph .js-plotly-plot');
const traces = graph && graph.data ? graph.data.map(t => t.name) : [];
return {
  status: status ? status.getAttribute('data-status') : null,
  custody: rows.map(r => r.getAttribute('data-shipment')),
  traces: traces,
  title: (document.querySelector('.passport-verdict h1') || {}).innerText || null,
};
"""


def _wait(driver: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(
        driver, 20, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )


def test_passport_page_shows_a_pasted_scan(
    web_server: LiveServer,
    browser: webdriver.Chrome,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    s = seed_rows(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        import_document(conn, scenario_document(s), source="test", today=TM.date())
    # The dashboard needs a session: a viewer's, set as the login would.
    browser.get(web_server.url + "/healthz")
    browser.add_cookie({"name": COOKIE, "value": session_cookie(people["viewer"]), "path": "/"})
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get(web_server.url + "/passport")
    field = _wait(browser).until(lambda d: d.find_element(By.ID, ids.PASSPORT_INPUT))

    # A GS1 DataMatrix as a scanner sends it: symbology id, GTIN, expiry, lot, GS, serial.
    scan = f"]d201{s.gtin}17301231" + "10LOT-A\x1d21S1"
    browser.execute_script(PASTE, ids.PASSPORT_INPUT, scan)
    field.send_keys(Keys.ENTER)  # a keyboard-wedge scanner ends with Enter

    state: dict[str, Any] = _wait(browser).until(
        lambda d: (st := d.execute_script(STATE))["status"] and st["traces"] and st
    )
    assert state["status"] == "exposed"  # two excursions QA has not released
    assert state["title"] == s.epc("S1")
    assert state["custody"] == ["SHP-1", "SHP-2"]
    assert {"L1", "L2"} <= set(state["traces"])
    screenshot(browser, "passport")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []

    # Opening a unit by link fills the box and shows it too.
    browser.get(web_server.url + "/passport?id=" + s.epc("S4").replace(":", "%3A"))
    state = _wait(browser).until(lambda d: (st := d.execute_script(STATE))["status"] and st)
    assert state["status"] == "ok" and state["custody"] == []

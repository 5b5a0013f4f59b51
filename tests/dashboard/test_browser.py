"""The dashboard in a real headless Chromium against the real app (uvicorn) and TimescaleDB.

Each test waits for what a person would see (explicit waits, 20 s at most); a screenshot of each
page goes to artifacts/screenshots/. Every page needs a login: most tests start with a session
cookie of the right person (:func:`_login_as`); one logs in through the form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from coldchain.telemetry import Reading
from tests.fixtures.auth import PASSWORD, Person
from tests.fixtures.web import (
    LiveServer,
    add_alert,
    add_device,
    add_excursion,
    add_product,
    add_shipment,
    assign,
    ingest,
    screenshot,
)

# The fixtures, until tests/conftest.py lists "tests.fixtures.web" in pytest_plugins.

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WAIT_S = 20

# How many markers MapLibre actually rendered inside the fleet map's viewport.
RENDERED_MARKERS = """
const g = document.querySelector('#fleet-map .js-plotly-plot');
const sub = g && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot;
if (!sub || !sub.map || !sub.map.loaded()) return -1;
const circles = sub.map.getStyle().layers.filter(l => l.type === 'circle').map(l => l.id);
return sub.map.queryRenderedFeatures({layers: circles}).length;
"""


def _wait(driver: WebDriver, seconds: float = WAIT_S) -> WebDriverWait[WebDriver]:
    # The pages re-render their tables on every refresh: an element found a moment ago may be
    # gone, so reads go through JavaScript in one step, and stale elements are retried.
    return WebDriverWait(
        driver, seconds, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )


#: MapLibre renders with WebGL in software here (no GPU) and loads the basemap (1.4 MB of
#: GeoJSON) before the map reports itself loaded: on a loaded 2-core machine that took over 20 s
#: once (a whole-suite run), while the same test alone takes about 2 s. The markers must appear;
#: this only bounds how long we wait for them.
MAP_WAIT_S = 60


def wait_for_markers(driver: WebDriver, count: int) -> None:
    """Until MapLibre has rendered ``count`` markers in the fleet map's viewport."""
    _wait(driver, MAP_WAIT_S).until(lambda d: d.execute_script(RENDERED_MARKERS) == count)


def _text_of(driver: WebDriver, css: str) -> str | None:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;",
        css,
    )


def _attr_of(driver: WebDriver, css: str, name: str) -> str | None:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;",
        css,
        name,
    )


def _click(driver: WebDriver, css: str) -> bool:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return false;"
        "e.click(); return true;",
        css,
    )


def _open(driver: WebDriver, url: str) -> None:
    """Load a page with a clean console (the previous test's page may have logged errors
    while its server was stopping)."""
    driver.get("about:blank")
    driver.get_log("browser")  # type: ignore[attr-defined]  # Chrome-only API
    driver.get(url)


def _login_as(driver: WebDriver, server: LiveServer, session: str) -> None:
    """Start a browser session as a person: their dashboard session in the cookie. The browser
    is shared by the session's tests, and cookies do not tell ports apart: clear them first."""
    driver.get("about:blank")
    driver.delete_all_cookies()
    driver.get(server.url + "/_dash-dependencies")  # any page of the site, to set its cookie
    driver.add_cookie({"name": "coldchain_session", "value": session, "path": "/"})


def _console_errors(driver: WebDriver) -> list[str]:
    """Errors the page logged (failed callbacks, JavaScript exceptions, failed fetches). None is
    excused for being offline: the maps draw the app's own basemap (dashboard/maps.py)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")  # type: ignore[attr-defined]  # Chrome-only API
        if entry["level"] == "SEVERE"
    ]


def _seed(dsn: str) -> dict[str, Any]:
    """Two shipments in transit, one of them hot with a critical alert and an excursion."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=6)
    out: dict[str, Any] = {"now": now}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-HOT", interval_s=300)
        add_device(conn, "LOG-COOL", interval_s=300)
        out["hot"] = add_shipment(conn, "SHP-HOT", product=product)
        out["cool"] = add_shipment(
            conn, "SHP-COOL", product=product, origin="Lyon", destination="Milan"
        )
        assign(conn, "LOG-HOT", out["hot"], start)
        assign(conn, "LOG-COOL", out["cool"], start)
        out["alert"] = add_alert(
            conn, out["hot"], triggered_at=now - timedelta(hours=2), device_id="LOG-HOT"
        )
        out["excursion"] = add_excursion(
            conn,
            out["hot"],
            "LOG-HOT",
            start=now - timedelta(hours=2, minutes=30),
            end=now - timedelta(hours=1, minutes=30),
            last_out=now - timedelta(hours=1, minutes=31),
        )
    readings = []
    for m in range(0, 6 * 60, 5):
        ts = start + timedelta(minutes=m)
        if timedelta(hours=1) <= now - ts < timedelta(hours=1, minutes=40):
            continue  # a data gap: the chart must show it as a gap
        hot = (
            9.4
            if timedelta(hours=1, minutes=30) < now - ts <= timedelta(hours=2, minutes=30)
            else 5.0
        )
        readings.append(Reading("LOG-HOT", ts, hot, 55.0, 51.9 - m / 1000, 4.5 + m / 500))
        readings.append(Reading("LOG-COOL", ts, 4.5, 48.0, 45.7, 4.8 + m / 400))
    ingest(dsn, readings)
    return out


def test_fleet_row_updates_live_without_a_reload(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/")
    row = '#fleet-table tr.fleet-row[data-reference="SHP-COOL"]'
    _wait(browser).until(lambda d: _text_of(d, f"{row} td.cell-temp") == "4.5 °C")
    # needs-action first: the hot shipment with a critical alert is the first row
    first = "#fleet-table tr.fleet-row"
    assert _attr_of(browser, first, "data-reference") == "SHP-HOT"
    assert _attr_of(browser, first, "data-condition") == "alarm"
    # the map draws a marker per located shipment, in view, on its own basemap (no network here)
    wait_for_markers(browser, 2)
    screenshot(browser, "fleet")

    browser.execute_script("window.__not_reloaded = true;")
    ingest(db_dsn, [Reading("LOG-COOL", seeded["now"] + timedelta(seconds=30), 6.4, 47.0)])
    _wait(browser).until(lambda d: _text_of(d, f"{row} td.cell-temp") == "6.4 °C")
    assert browser.execute_script("return window.__not_reloaded === true;")

    # sortable: by shipment reference, ascending
    assert _click(browser, """#fleet-table th button[id*='"col":"reference"']""")
    _wait(browser).until(lambda d: _attr_of(d, first, "data-reference") == "SHP-COOL")
    # filterable: a search narrows the table to the matching shipment
    browser.find_element(By.CSS_SELECTOR, "#fleet-search").send_keys("lyon")
    _wait(browser).until(
        lambda d: (
            d.execute_script(
                "return [...document.querySelectorAll('#fleet-table tr.fleet-row')]"
                ".map(r => r.dataset.reference).join(',');"
            )
            == "SHP-COOL"
        )
    )


def test_acknowledging_on_the_alerts_page_reaches_the_api(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    alert = seeded["alert"]
    row = f'#alerts-table tr.alert-row[data-alert-id="{alert}"]'
    # A viewer follows alerts but has no buttons to act on them.
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/alerts")
    _wait(browser).until(lambda d: _attr_of(d, row, "data-state") == "open")
    assert not browser.find_elements(By.CSS_SELECTOR, f"{row} button.btn-ack")
    assert "operators and administrators" in (_text_of(browser, ".action-panel") or "")

    # The on-call operator acts as themself: no name to type, the session says who.
    _login_as(browser, web_server, session_cookie(people["operator"]))
    _open(browser, web_server.url + "/alerts")
    _wait(browser).until(lambda d: _text_of(d, f"{row} button.btn-ack") == "Acknowledge")
    assert _text_of(browser, "#alerts-actor") == "Ana Ruiz"
    # the comment goes in the alert's own row (tests/dashboard/test_alerts_browser.py)
    _wait(browser).until(
        lambda d: d.execute_script(
            "const e = document.querySelector(arguments[0]); if (!e) return false;"
            "e.focus(); return document.activeElement === e;",
            f"{row} textarea.alert-comment",
        )
    )
    ActionChains(browser).send_keys("Reefer door closed, cooling").perform()
    screenshot(browser, "alerts")
    assert _click(browser, f"{row} button.btn-ack")

    _wait(browser).until(
        lambda d: "acknowledged by Ana Ruiz" in (_text_of(d, "#alerts-feedback") or "")
    )
    _wait(browser).until(lambda d: _attr_of(d, row, "data-state") == "acknowledged")
    body = httpx.get(
        f"{web_server.url}/api/v1/alerts/{alert}", headers=people["viewer"].headers, timeout=10
    ).json()
    assert body["state"] == "acknowledged"
    assert body["acked_by"] == "ana.ruiz"
    assert body["ack_comment"] == "Reefer door closed, cooling"
    assert body["events"][-1]["kind"] == "acknowledged"
    screenshot(browser, "alerts-acknowledged")
    assert _console_errors(browser) == []


def test_logging_in_through_the_form_and_out(
    web_server: LiveServer, browser: WebDriver, people: dict[str, Person], session_cookie: Any
) -> None:
    browser.get("about:blank")
    browser.delete_all_cookies()
    _open(browser, web_server.url + "/alerts")
    _wait(browser).until(lambda d: "/login" in d.current_url)
    assert "next=/alerts" in browser.current_url
    # no data for a browser that has not logged in
    r = httpx.post(
        f"{web_server.url}/_dash-update-component",
        json={"output": "alerts-tbody.children", "outputs": {}, "inputs": [], "changedPropIds": []},
        timeout=10,
    )
    assert r.status_code == 401
    # A forged request from another origin is refused even with a session cookie.
    forged = httpx.post(
        f"{web_server.url}/_dash-update-component",
        json={"output": "alerts-tbody.children", "outputs": {}, "inputs": [], "changedPropIds": []},
        headers={"Origin": "http://evil.example"},
        cookies={"coldchain_session": session_cookie(people["operator"])},
        timeout=10,
    )
    assert forged.status_code == 403 and "cross-origin" in forged.text

    def submit(user: str, password: str) -> None:
        _wait(browser).until(lambda d: d.find_elements(By.ID, "login-username"))
        browser.find_element(By.ID, "login-username").send_keys(user)
        browser.find_element(By.ID, "login-password").send_keys(password)
        browser.find_element(By.ID, "login-submit").click()

    submit("quinn.qa", "not-the-password")
    _wait(browser).until(
        lambda d: "Wrong user name or password" in (_text_of(d, "#login-message") or "")
    )
    screenshot(browser, "login")
    submit("quinn.qa", PASSWORD)
    _wait(browser).until(lambda d: d.current_url.endswith("/alerts"))
    _wait(browser).until(lambda d: _attr_of(d, "#nav-user", "data-role") == "qa")
    assert "Quinn Quality" in (_text_of(browser, "#nav-user") or "")
    cookie = browser.get_cookie("coldchain_session")
    assert cookie is not None and cookie["httpOnly"] is True
    browser.find_element(By.ID, "nav-logout").click()
    _wait(browser).until(lambda d: d.current_url.endswith("/login"))
    assert browser.get_cookie("coldchain_session") is None
    _open(browser, web_server.url + "/")
    _wait(browser).until(lambda d: "/login" in d.current_url)


def test_qa_signs_a_disposition_on_the_review_page(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    with psycopg.connect(db_dsn) as conn:  # a release is signed once the goods have arrived
        conn.execute("UPDATE shipments SET status = 'arrived' WHERE shipment_id = %s",
                     (seeded["hot"],))  # fmt: skip
    # A viewer reads the review but has no signature form.
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/qa/SHP-HOT")
    _wait(browser).until(lambda d: len(_text_of(d, "#qa-content-hash") or "") == 64)
    assert not browser.find_element(By.ID, "qa-sign-panel").is_displayed()

    _login_as(browser, web_server, session_cookie(people["qa"]))
    _open(browser, web_server.url + "/qa/SHP-HOT")
    _wait(browser).until(lambda d: len(_text_of(d, "#qa-content-hash") or "") == 64)
    shown = _text_of(browser, "#qa-content-hash")
    assert "excursions: 1 (1 alarmed)" in (_text_of(browser, "#qa-summary") or "").lower()
    assert browser.find_element(By.ID, "qa-sign-panel").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#qa-decision input[value='release']").click()
    browser.find_element(By.ID, "qa-reason").send_keys(
        "Within the stability data for 1 h at 9.4 °C"
    )
    browser.find_element(By.ID, "qa-password").send_keys("not-my-password")
    browser.find_element(By.ID, "qa-sign").click()
    _wait(browser).until(lambda d: "Wrong password" in (_text_of(d, "#qa-feedback") or ""))
    browser.find_element(By.ID, "qa-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "qa-sign").click()
    _wait(browser).until(lambda d: "Signed #1" in (_text_of(d, "#qa-feedback") or ""))
    feedback = _text_of(browser, "#qa-feedback") or ""
    assert "Signed by Quinn Quality (quinn.qa, qa) on " in feedback
    assert "Approval: the product is released for sale or use" in feedback
    _wait(browser).until(
        lambda d: _attr_of(d, '.disposition[data-disposition-id="1"]', "data-current") == "true"
    )
    assert _text_of(browser, "#qa-content-hash") == shown  # the report signed is the one shown
    screenshot(browser, "qa-review")
    listed = httpx.get(
        f"{web_server.url}/api/v1/shipments/SHP-HOT/dispositions",
        headers=people["viewer"].headers,
        timeout=10,
    ).json()
    (record,) = listed["items"]
    assert record["report_hash"] == shown and record["signer_name"] == "Quinn Quality"
    assert _console_errors(browser) == []


def test_shipment_page_shades_the_excursion_and_shows_the_gap(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/shipments/SHP-HOT")
    plot = "document.querySelector('#shipment-temp-graph .js-plotly-plot')"
    _wait(browser).until(
        lambda d: d.execute_script(
            f"const g = {plot}; return !!(g && g.layout && g.layout.shapes && g.data.length);"
        )
    )
    names = browser.execute_script(f"return {plot}.layout.shapes.map(s => s.name);")
    assert f"excursion-{seeded['excursion']}" in names
    assert "range" in names
    # drawn, not only declared: the shapes are paths in the plot's shape layers
    assert browser.find_elements(By.CSS_SELECTOR, "#shipment-temp-graph .shapelayer path")
    # the data gap is a gap in the line
    assert browser.execute_script(f"return {plot}.data.some(t => t.y.includes(null));")
    _wait(browser).until(lambda d: _text_of(d, "#shipment-header h1") == "SHP-HOT")
    assert browser.find_elements(By.CSS_SELECTOR, '#shipment-devices tr[data-device-id="LOG-HOT"]')
    assert browser.find_elements(
        By.CSS_SELECTOR, f'#shipment-alerts tr.alert-row[data-alert-id="{seeded["alert"]}"]'
    )
    screenshot(browser, "shipment")
    assert _console_errors(browser) == []

    browser.get(web_server.url + "/shipments/SHP-NOPE")
    _wait(browser).until(lambda d: _text_of(d, ".not-found h1") == "No shipment SHP-NOPE")


def test_shipment_page_shows_mkt_and_budget_used_as_the_report_computes_them(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    # A known series: 30 h at one reading per 5 min, the first hour at 12 °C, then 5 °C. Over
    # the 24 h MKT window (a 2–8 °C product) everything is 5 °C: MKT 5.00 °C. Against a 72 h
    # stability budget the hour out of range is 1/72 = 1.4 %.
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=30)
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        conn.execute(
            "UPDATE products SET stability_budget_s = 72 * 3600, mkt_limit_c = 8 WHERE gtin = %s",
            (product,),
        )
        add_device(conn, "LOG-MKT", interval_s=300)
        shipment_id = add_shipment(conn, "SHP-MKT", product=product)
        assign(conn, "LOG-MKT", shipment_id, start - timedelta(minutes=1))
    ingest(
        db_dsn,
        [
            Reading("LOG-MKT", start + timedelta(minutes=5 * i), 12.0 if i < 12 else 5.0, 50.0)
            for i in range(30 * 12)
        ],
    )
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/shipments/SHP-MKT")
    _wait(browser).until(lambda d: _text_of(d, "#shipment-mkt") == "5.00 °C")
    assert _text_of(browser, "#shipment-budget") == "1.4 %"
    assert "1 h of 3 d" in (_text_of(browser, ".fact-budget") or "")
    # the gauges are drawn: two dials
    _wait(browser).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shipment-stability-graph .angular")) == 2
    )
    # the same figures as the excursion report's (the QA review signs those)
    report = httpx.get(
        f"{web_server.url}/api/v1/shipments/SHP-MKT/report.json",
        headers=people["viewer"].headers,
        timeout=30,
    ).json()
    (logger,) = report["evidence"]["loggers"]
    assert f"{logger['mkt']['window']['mkt_c']:.2f} °C" == "5.00 °C"
    assert f"{logger['budget']['share_used'] * 100:.1f} %" == "1.4 %"
    row = '#shipment-stability tr.stability-row[data-device-id="LOG-MKT"]'
    assert (
        _text_of(browser, f"{row} td:nth-child(3)")
        == f"{logger['mkt']['whole_trip']['mkt_c']:.2f} °C"
    )
    screenshot(browser, "shipment-stability")
    assert _console_errors(browser) == []


def test_fleet_table_pages_through_a_large_fleet(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        for i in range(30):
            add_shipment(conn, f"SHP-{i:02d}", product=product, status="planned")
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/")
    rows = (
        "return [...document.querySelectorAll('#fleet-table tr.fleet-row')]"
        ".map(r => r.dataset.reference);"
    )
    _wait(browser).until(lambda d: len(d.execute_script(rows)) == 25)
    assert browser.execute_script(rows)[0] == "SHP-00"
    assert _text_of(browser, "#fleet-count") == "30 shipments · rows 1–25"
    assert _attr_of(browser, "#fleet-prev", "disabled") is not None
    # every shipment is counted, not only the page shown
    assert _text_of(browser, "#fleet-count-ok") == "30"

    assert _click(browser, "#fleet-next")
    _wait(browser).until(lambda d: d.execute_script(rows) == [f"SHP-{i}" for i in range(25, 30)])
    assert _text_of(browser, "#fleet-count") == "30 shipments · rows 26–30"
    assert _attr_of(browser, "#fleet-next", "disabled") is not None
    # a search starts again from the first page
    browser.find_element(By.CSS_SELECTOR, "#fleet-search").send_keys("SHP-1")
    _wait(browser).until(lambda d: _text_of(d, "#fleet-count") == "10 shipments match")
    assert browser.execute_script(rows)[0] == "SHP-10"
    assert _console_errors(browser) == []

"""The dashboard in a real headless Chromium against the real app (uvicorn) and TimescaleDB.

Each test waits for what a person would see (explicit waits, 20 s at most); a screenshot of each
page goes to artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from coldchain.telemetry import Reading
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


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # The pages re-render their tables on every refresh: an element found a moment ago may be
    # gone, so reads go through JavaScript in one step, and stale elements are retried.
    return WebDriverWait(
        driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )


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


# Without a network the map tiles fail to load; MapLibre reports each as a "Map error".
_OFFLINE_NOISE = ("tile.openstreetmap.org", "Map error")


def _console_errors(driver: WebDriver) -> list[str]:
    """Errors the page logged (failed callbacks, JavaScript exceptions), minus offline noise."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")  # type: ignore[attr-defined]  # Chrome-only API
        if entry["level"] == "SEVERE"
        and not any(noise in entry["message"] for noise in _OFFLINE_NOISE)
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
) -> None:
    seeded = _seed(db_dsn)
    _open(browser, web_server.url + "/")
    row = '#fleet-table tr.fleet-row[data-reference="SHP-COOL"]'
    _wait(browser).until(lambda d: _text_of(d, f"{row} td.cell-temp") == "4.5 °C")
    # needs-action first: the hot shipment with a critical alert is the first row
    first = "#fleet-table tr.fleet-row"
    assert _attr_of(browser, first, "data-reference") == "SHP-HOT"
    assert _attr_of(browser, first, "data-condition") == "alarm"
    # the map draws a marker per located shipment, in view (no tiles here: no network)
    _wait(browser).until(lambda d: d.execute_script(RENDERED_MARKERS) == 2)
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
) -> None:
    seeded = _seed(db_dsn)
    alert = seeded["alert"]
    _open(browser, web_server.url + "/alerts")
    row = f'#alerts-table tr.alert-row[data-alert-id="{alert}"]'
    _wait(browser).until(lambda d: _text_of(d, f"{row} button.btn-ack") == "Acknowledge")
    name = browser.find_element(By.ID, "alerts-actor")
    name.clear()
    name.send_keys("Ana Ruiz")
    browser.find_element(By.ID, "alerts-comment").send_keys("Reefer door closed, cooling")
    screenshot(browser, "alerts")
    assert _click(browser, f"{row} button.btn-ack")

    _wait(browser).until(
        lambda d: "acknowledged by Ana Ruiz" in (_text_of(d, "#alerts-feedback") or "")
    )
    _wait(browser).until(lambda d: _attr_of(d, row, "data-state") == "acknowledged")
    body = httpx.get(f"{web_server.url}/api/v1/alerts/{alert}", timeout=10).json()
    assert body["state"] == "acknowledged"
    assert body["acked_by"] == "Ana Ruiz"
    assert body["ack_comment"] == "Reefer door closed, cooling"
    assert body["events"][-1]["kind"] == "acknowledged"
    screenshot(browser, "alerts-acknowledged")
    assert _console_errors(browser) == []


def test_shipment_page_shades_the_excursion_and_shows_the_gap(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
) -> None:
    seeded = _seed(db_dsn)
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
    _wait(browser).until(lambda d: _text_of(d, "#shipment-header h1") == "Shipment not found")

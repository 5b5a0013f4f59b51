"""The master-data editors in a real headless Chromium against the real app and TimescaleDB: an
administrator registers a product with a two-band stability profile on the form and finds it in
the list, then registers a logger and reads its MQTT password once; a viewer sees the lists and
no form. Screenshots of both pages as both go to artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard.pages import loggers, products, sites
from security.mosquitto import verify_mosquitto_hash
from services import locations
from services.caller import Caller
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, gtin, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _type(driver: WebDriver, component_id: str, text: str) -> None:
    driver.find_element(By.ID, component_id).send_keys(text)


def _shown(driver: WebDriver, component_id: str) -> bool:
    return bool(
        driver.execute_script(
            "const e = document.getElementById(arguments[0]); return !!e && e.offsetParent !== null;",
            component_id,
        )
    )


def test_an_admin_registers_a_product_and_a_logger_a_viewer_only_reads(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    code = gtin()
    _login_as(browser, web_server, session_cookie(people["admin"]))
    _open(browser, web_server.url + products.PATH)
    _wait(browser).until(lambda d: _shown(d, products.FORM))
    assert browser.find_elements(By.ID, products.NAV) and browser.find_elements(By.ID, loggers.NAV)
    for key, text in [
        ("gtin", code),
        ("name", "Insulin pen 3 ml"),
        ("temp_min_c", "2"),
        ("temp_max_c", "8"),
        ("freeze_limit_c", "0"),
        ("max_freeze_thaw_cycles", "3"),
    ]:
        _type(browser, products.field_id(key), text)
    for band, cells in enumerate([("8", "25", "72"), ("", "2", "12")]):
        for column, text in zip(products.BAND_COLUMNS, cells, strict=True):
            if text:
                _type(browser, products.band_id(band, column), text)
    browser.find_element(By.ID, products.SAVE).click()
    _wait(browser).until(
        lambda d: (_text_of(d, f"#{products.FEEDBACK}") or "").startswith("Registered")
    )
    row = f'#products-list tr.product-row[data-gtin="{code}"]'
    _wait(browser).until(
        lambda d: (
            _text_of(d, f"{row} td.cell-bands") == "8–25 °C 72 h · ≤ 2 °C 12 h · 3 freeze–thaw"
        )
    )
    assert _text_of(browser, f"{row} td.cell-range") == "2–8 °C"
    assert _text_of(browser, f"{row} td.cell-profile") == "v1"
    screenshot(browser, "products-admin")

    _open(browser, web_server.url + loggers.PATH)
    _wait(browser).until(lambda d: _shown(d, loggers.REGISTER_PANEL))
    for key, text in [
        ("device_id", "TT4-000777"),
        ("model", "TempTrace 4"),
        ("interval_s", "60"),
        ("calibration_cert", "CAL-2026-0042"),
        ("calibration_due", "2027-06-30"),
    ]:
        _type(browser, loggers.new_id(key), text)
    browser.find_element(By.ID, loggers.REGISTER).click()
    _wait(browser).until(lambda d: _text_of(d, f"#{loggers.PASSWORD}"))
    password = _text_of(browser, f"#{loggers.PASSWORD}") or ""
    with psycopg.connect(db_dsn) as conn:
        [(stored,)] = conn.execute("SELECT password_hash FROM device_credentials").fetchall()
    assert verify_mosquitto_hash(stored, password)
    assert "only this once" in (_text_of(browser, f"#{loggers.CREDENTIALS}") or "")
    _wait(browser).until(
        lambda d: (
            _text_of(d, '#loggers-list tr.logger-row[data-device-id="TT4-000777"] td')
            == "TT4-000777"
        )
    )
    screenshot(browser, "loggers-admin")
    # Once: after a reload the password is nowhere on the page.
    _open(browser, web_server.url + loggers.PATH)
    _wait(browser).until(lambda d: _text_of(d, "#loggers-list tr.logger-row td") == "TT4-000777")
    assert password not in browser.page_source
    assert not browser.find_elements(By.ID, loggers.PASSWORD)
    assert _console_errors(browser) == []

    # The sites page, with a site registered elsewhere (the CLI).
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        site = locations.LocationIn(
            gln="4098765000010", name="DC Basel", lat=47.56, lon=7.59, geofence_m=250
        )
        locations.create_record(conn, Caller.console(), "locations", record=site)
    site_row = '#sites-locations-table tr.record-row[data-key="4098765000010"]'
    _open(browser, web_server.url + sites.PATH)
    _wait(browser).until(lambda d: _text_of(d, f"{site_row} td") == "4098765000010")
    assert _shown(browser, sites.BY_TABLE["lanes"].id("forms"))
    screenshot(browser, "sites-admin")

    # A viewer reads both lists, without a form or a link to them.
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + products.PATH)
    _wait(browser).until(lambda d: _text_of(d, f"{row} td.cell-profile") == "v1")
    assert not _shown(browser, products.FORM)
    assert not browser.find_elements(By.ID, products.NAV)
    screenshot(browser, "products-viewer")
    _open(browser, web_server.url + loggers.PATH)
    _wait(browser).until(lambda d: _text_of(d, "#loggers-list tr.logger-row td") == "TT4-000777")
    assert not _shown(browser, loggers.REGISTER_PANEL) and not _shown(browser, loggers.EDIT_PANEL)
    assert not browser.find_elements(By.ID, loggers.NAV)
    screenshot(browser, "loggers-viewer")
    _open(browser, web_server.url + sites.PATH)
    _wait(browser).until(lambda d: _text_of(d, f"{site_row} td") == "4098765000010")
    assert not _shown(browser, sites.BY_TABLE["lanes"].id("forms"))
    screenshot(browser, "sites-viewer")
    assert _console_errors(browser) == []

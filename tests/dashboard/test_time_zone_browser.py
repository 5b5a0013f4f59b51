"""The time zone setting in a real headless Chromium (no internet) against the real app and
TimescaleDB: times are labelled UTC by default; picking a zone in the navigation bar redraws
every time on the page in it, labelled; "my browser's zone" takes the zone the browser is in;
a site's local time stays beside the person's where it matters (the planned arrival); the
choice survives a reload (cookie); no console error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.gs1 import check_digit
from dashboard.pages import ZONE_COOKIE, shipment_href, zone_picker
from services import locations
from services.caller import Caller
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, add_product, add_shipment, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REFERENCE = "SHP-TZ-1"
ARRIVAL = datetime(2026, 12, 5, 14, 5, tzinfo=UTC)  # winter: Basel on CET (UTC+1)
DEPARTURE = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser at 1600×1000 (the screenshots' size), in UTC, then as it was."""
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        yield browser
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
        browser.set_window_size(size["width"], size["height"])


def _seed(dsn: str) -> None:
    """A site in Basel (Europe/Zurich) and a shipment arriving there, with one leg."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        body = "409876500001"
        site = locations.LocationIn(
            gln=body + str(check_digit(body)),
            name="DC Basel",
            lat=47.56,
            lon=7.59,
            geofence_m=250,
            time_zone="Europe/Zurich",
        )
        locations.create_record(conn, Caller.console(), "locations", record=site)
    with psycopg.connect(dsn, autocommit=True) as conn:
        product = add_product(conn)
        shipment_id = add_shipment(conn, REFERENCE, product=product, destination="DC Basel")
        conn.execute(
            "UPDATE shipments SET planned_departure = %s, planned_arrival = %s"
            " WHERE shipment_id = %s",
            (DEPARTURE, ARRIVAL, shipment_id),
        )
        conn.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination,"
            " planned_departure, planned_arrival) VALUES (%s, 1, 'road', 'Rotterdam', 'DC Basel',"
            " %s, %s)",
            (shipment_id, DEPARTURE, ARRIVAL),
        )


def _cookie(driver: WebDriver) -> str | None:
    cookie = driver.get_cookie(ZONE_COOKIE)
    return None if cookie is None else str(cookie["value"])


def _page_text(driver: WebDriver) -> str:
    return str(driver.execute_script("return document.body.innerText"))


def _choose_zone(driver: WebDriver, text: str) -> None:
    """Pick a zone in the navigation bar as a person does: open the list, type in its search
    box, click the option."""
    driver.find_element(By.ID, zone_picker.PICKER).click()
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input.dash-dropdown-search"))
    driver.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search").send_keys(text)
    option = f"//*[@role='option'][contains(normalize-space(.), {text!r})]"
    _wait(driver).until(lambda d: d.find_elements(By.XPATH, option))
    driver.find_element(By.XPATH, option).click()


def test_choosing_a_zone_changes_the_times_shown_and_labels_them(
    wide: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    driver = wide
    _seed(db_dsn)
    _login_as(driver, web_server, session_cookie(people["viewer"]))
    _open(driver, web_server.url + shipment_href(REFERENCE))

    # By default: UTC, labelled, with the site's own time beside the arrival.
    arrival_utc = "2026-12-05 14:05 UTC (15:05 DC Basel, CET)"
    _wait(driver).until(lambda d: arrival_utc in _page_text(d))
    assert "2026-12-05 06:00 UTC" in _page_text(driver)  # the leg's departure (Rotterdam: no site)
    _wait(driver).until(lambda d: "UTC" in (_text_of(d, "#shipment-updated") or ""))
    screenshot(driver, "shipment-times-utc-viewer")

    # New York: every time redrawn in EST, the site's local time unchanged beside it.
    _choose_zone(driver, "New York")
    arrival_ny = "2026-12-05 09:05 EST (15:05 DC Basel, CET)"
    _wait(driver).until(lambda d: arrival_ny in _page_text(d))
    assert "2026-12-05 01:00 EST" in _page_text(driver)
    assert arrival_utc not in _page_text(driver)
    _wait(driver).until(lambda d: (_text_of(d, "#shipment-updated") or "").endswith("EST"))
    assert _cookie(driver) == "America%2FNew_York"
    screenshot(driver, "shipment-times-new-york-viewer")

    # Remembered: a new visit shows the same zone.
    _open(driver, web_server.url + shipment_href(REFERENCE))
    _wait(driver).until(lambda d: arrival_ny in _page_text(d))

    # "My browser's zone": the zone the browser is in (here Tokyo, JST = UTC+9).
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    _choose_zone(driver, "My browser")
    _wait(driver).until(lambda d: "2026-12-05 23:05 JST (15:05 DC Basel, CET)" in _page_text(d))
    assert _cookie(driver) == "browser%3AAsia%2FTokyo"
    assert _console_errors(driver) == []

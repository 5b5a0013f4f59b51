"""The fleet table and the unacknowledged-alert count in a real headless Chromium (no internet),
against the real app and TimescaleDB.

* A shipment in excursion shows since when it is out of range (the excursion's start, not its
  alarm), for how long, its peak and °C·min, its budget used, carriers and planned arrival; a
  shipment QA quarantined after an excursion shows it, in its condition and its QA state.
* The lane, carrier and QA filters narrow the table, chosen as a person does.
* The count of open, unacknowledged alerts in the navigation bar and the tab title goes up when
  an alert opens and down when it is acknowledged; the opt-in bell is remembered by the browser.

Screenshots (1600×1000) of the fleet page as each role go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.telemetry import Reading
from dashboard import ids
from dashboard.pages import fmt_duration, fmt_temp, fmt_ts, fmt_ts_short
from tests.dashboard.test_browser import (
    _attr_of,
    _click,
    _console_errors,
    _login_as,
    _open,
    _text_of,
    _wait,
)
from tests.fixtures.auth import Person
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

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROW = '#fleet-table tr.fleet-row[data-reference="{}"]'
ROWS = (
    "return [...document.querySelectorAll('#fleet-table tr.fleet-row')]"
    ".map(r => r.dataset.reference).join(',');"
)


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser at 1600×1000 for one test (the screenshots' size)."""
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        yield browser
    finally:
        browser.set_window_size(size["width"], size["height"])


def _seed(dsn: str, now: datetime) -> dict[str, Any]:
    """SHP-HOT: out of range for 28 min (alarm after 20), peak 12.8 °C, carried by two carriers;
    SHP-HELD: quarantined by QA after an excursion two days ago; SHP-COOL: fine, Lyon → Milan."""
    start = now - timedelta(hours=6)
    out: dict[str, Any] = {"since": now - timedelta(minutes=28), "eta": now + timedelta(hours=5)}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        for ref, origin, destination in (
            ("SHP-HOT", "Rotterdam", "Basel"),
            ("SHP-HELD", "Antwerp", "Basel"),
            ("SHP-COOL", "Lyon", "Milan"),
        ):
            add_device(conn, f"LOG-{ref}", interval_s=300)
            out[ref] = add_shipment(
                conn, ref, product=product, origin=origin, destination=destination
            )
            assign(conn, f"LOG-{ref}", out[ref], start)
        conn.execute("UPDATE shipments SET status = 'quarantined' WHERE reference = 'SHP-HELD'")
        conn.execute(
            "UPDATE shipments SET planned_arrival = %s WHERE shipment_id = %s",
            (out["eta"], out["SHP-HOT"]),
        )
        conn.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier)"
            " VALUES (%s, 1, 'road', 'Rotterdam', 'Venlo', 'Frigo Express'),"
            " (%s, 2, 'air', 'Venlo', 'Basel', 'Polar Air')",
            (out["SHP-HOT"], out["SHP-HOT"]),
        )
        out["alert"] = add_alert(
            conn, out["SHP-HOT"], triggered_at=now - timedelta(minutes=8), device_id="LOG-SHP-HOT"
        )
        add_excursion(
            conn,
            out["SHP-HOT"],
            "LOG-SHP-HOT",
            start=out["since"],
            end=None,
            last_out=now - timedelta(minutes=1),
            max_c=12.8,
            alarm_at=now - timedelta(minutes=8),
        )
        add_excursion(
            conn,
            out["SHP-HELD"],
            "LOG-SHP-HELD",
            start=now - timedelta(days=2, minutes=30),
            end=now - timedelta(days=2),
            last_out=now - timedelta(days=2, minutes=1),
            max_c=11.5,
        )
        conn.execute(
            "INSERT INTO rule_states (shipment_id, device_id, rule_key, holding, as_of, details)"
            " VALUES (%s, 'LOG-SHP-HOT', 'budget', true, %s, %s)",
            (out["SHP-HOT"], now, Jsonb({"share_used": 0.37, "status": "ok"})),
        )
    ingest(
        dsn,
        [
            Reading("LOG-SHP-HOT", now - timedelta(minutes=1), 12.8, 55.0, 51.9, 4.5),
            Reading("LOG-SHP-HELD", now - timedelta(minutes=1), 5.0, 55.0, 51.2, 4.4),
            Reading("LOG-SHP-COOL", now - timedelta(minutes=1), 4.5, 48.0, 45.7, 4.8),
        ],
    )
    return out


def _pick(driver: WebDriver, element_id: str, text: str) -> None:
    """Choose a dropdown's option as a person does: open it, type, press Enter."""
    driver.find_element(By.ID, element_id).click()
    _wait(driver).until(
        lambda d: d.execute_script("return document.activeElement.tagName") == "INPUT"
    )
    active = driver.switch_to.active_element
    active.send_keys(text)
    active.send_keys(Keys.ENTER)
    _wait(driver).until(lambda d: text in (_text_of(d, f"#{element_id}") or ""))


def _clear(driver: WebDriver, element_id: str) -> None:
    assert _click(driver, f"#{element_id} .dash-dropdown-clear")


def _rows(driver: WebDriver, expected: str) -> bool:
    return bool(driver.execute_script(ROWS) == expected)


def test_the_fleet_table_says_since_when_how_long_how_bad_and_what_qa_decided(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = _seed(db_dsn, now)
    hot, held = ROW.format("SHP-HOT"), ROW.format("SHP-HELD")
    _login_as(wide, web_server, session_cookie(people["viewer"]))
    _open(wide, web_server.url + "/")
    _wait(wide).until(lambda d: _text_of(d, f"{hot} td.{ids.CELL_OUT_OF_RANGE}") is not None)

    # in excursion: for how long, and since the product left its range (not the alarm 8 min
    # ago): the time of day when it is today, the full time in the title
    out = f"{hot} td.{ids.CELL_OUT_OF_RANGE}"
    shown, since = (_text_of(wide, out) or "").split("\n")
    elapsed = datetime.now(UTC) - seeded["since"]
    assert shown in {fmt_duration(elapsed.total_seconds() - s) for s in (0, 60)}
    assert fmt_duration(elapsed.total_seconds()) != fmt_duration(8 * 60)  # not the alarm's age
    then = (now, datetime.now(UTC))  # a day may end between the page's clock and this one
    assert since in {"since " + fmt_ts_short(seeded["since"], t) for t in then}
    assert _attr_of(wide, f"{out} .sub", "title") == fmt_ts(seeded["since"])
    # how bad: the peak and its °C·min (add_excursion records 42), the budget used
    assert _text_of(wide, f"{hot} td.{ids.CELL_PEAK}") == f"{fmt_temp(12.8)}\n42 °C·min"
    assert _text_of(wide, f"{hot} td.{ids.CELL_BUDGET}") == "37 %"
    assert _text_of(wide, f"{hot} td.{ids.CELL_CARRIER}") == "Frigo Express, Polar Air"
    assert _text_of(wide, f"{hot} td.{ids.CELL_ETA}") in {
        fmt_ts_short(seeded["eta"], t) for t in then
    }
    assert _attr_of(wide, f"{hot} td.{ids.CELL_ETA}", "title") == fmt_ts(seeded["eta"])
    assert _text_of(wide, f"{hot} td.{ids.CELL_QA}") == "—"  # in transit: not QA's yet

    # quarantined after an excursion: not a plain "OK", the excursion and QA's decision show
    assert _text_of(wide, f"{held} td.cell-condition") == "OK\nquarantined · 1 excursion"
    assert _attr_of(wide, f"{held} td.{ids.CELL_QA} .badge", "data-state") == "quarantined"
    assert _text_of(wide, f"{held} td.{ids.CELL_QA}") == "quarantined"
    assert _text_of(wide, f"{held} td.{ids.CELL_PEAK}") == f"{fmt_temp(11.5)}\n42 °C·min · ended"
    assert _text_of(wide, f"{held} td.{ids.CELL_OUT_OF_RANGE}") == "back in range"

    # worst first: the alarm, then the one with an excursion on record, then the clean one
    assert wide.execute_script(ROWS) == "SHP-HOT,SHP-HELD,SHP-COOL"
    screenshot(wide, "fleet-table-viewer")
    # every column in view at 1600 px, the last (open alerts) not behind a sideways scroll
    overflow = wide.execute_script(
        "const w = document.querySelector('.page-fleet .table-wrap');"
        "return w.scrollWidth - w.clientWidth;"
    )
    assert overflow <= 0, f"the fleet table is {overflow} px wider than its card at 1600 px"

    # the filters narrow the table, one at a time and together with the search
    _pick(wide, ids.FLEET_CARRIER, "Polar Air")
    _wait(wide).until(lambda d: _rows(d, "SHP-HOT"))
    _clear(wide, ids.FLEET_CARRIER)
    _wait(wide).until(lambda d: _rows(d, "SHP-HOT,SHP-HELD,SHP-COOL"))
    _pick(wide, ids.FLEET_QA, "quarantined")
    _wait(wide).until(lambda d: _rows(d, "SHP-HELD"))
    assert "1 shipment match" in (_text_of(wide, f"#{ids.FLEET_COUNT}") or "")
    _clear(wide, ids.FLEET_QA)
    _pick(wide, ids.FLEET_LANE, "Lyon → Milan")
    _wait(wide).until(lambda d: _rows(d, "SHP-COOL"))
    wide.find_element(By.ID, ids.FLEET_SEARCH).send_keys("HOT")
    _wait(wide).until(lambda d: "No shipments match." in (_text_of(d, "#fleet-table") or ""))
    assert _console_errors(wide) == []

    for role in ("operator", "qa", "admin"):
        _login_as(wide, web_server, session_cookie(people[role]))
        _open(wide, web_server.url + "/")
        _wait(wide).until(lambda d: _rows(d, "SHP-HOT,SHP-HELD,SHP-COOL"))
        _wait(wide).until(lambda d: _text_of(d, f"#{ids.NAV_ALERT_COUNT}") == "1")
        screenshot(wide, f"fleet-table-{role}")
        assert _console_errors(wide) == []


def _acknowledge(server: LiveServer, person: Person, alert_id: int) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/alerts/{alert_id}/acknowledge",
        json={"comment": "Seen, calling the driver"},
        headers=person.headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_the_unacknowledged_count_in_the_nav_and_the_title_follows_the_alerts(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = _seed(db_dsn, now)
    count = f"#{ids.NAV_ALERT_COUNT}"
    bell = f"#{ids.NAV_ALERT_BELL}"
    _login_as(wide, web_server, session_cookie(people["operator"]))
    _open(wide, web_server.url + "/")
    _wait(wide).until(lambda d: _text_of(d, count) == "1")
    _wait(wide).until(lambda d: d.title == "(1) Fleet · Cold chain")

    # the opt-in: off until asked for, then remembered by this browser across page loads
    assert _attr_of(wide, bell, "aria-pressed") == "false"
    assert _click(wide, bell)
    _wait(wide).until(lambda d: _attr_of(d, bell, "aria-pressed") == "true")
    assert wide.execute_script("return localStorage.getItem('coldchain.alertNotify');") == "on"
    _open(wide, web_server.url + "/")
    _wait(wide).until(lambda d: _text_of(d, count) == "1")
    _wait(wide).until(lambda d: _attr_of(d, bell, "aria-pressed") == "true")
    assert _attr_of(wide, "html", "data-alerts-announced") is None  # the first count is not news

    # a new alert: the count goes up in the nav and the title, and is announced once
    with psycopg.connect(db_dsn) as conn:
        second = add_alert(
            conn,
            seeded["SHP-HELD"],
            rule_key="no-data",
            severity="warning",
            title="No data for 1 h",
            triggered_at=now,
        )
    _wait(wide).until(lambda d: _text_of(d, count) == "2")
    _wait(wide).until(lambda d: d.title == "(2) Fleet · Cold chain")
    _wait(wide).until(lambda d: _attr_of(d, "html", "data-alerts-announced") == "1")
    screenshot(wide, "fleet-alert-count")

    # on another page too, with that page's name in the title
    _open(wide, web_server.url + "/alerts")
    _wait(wide).until(lambda d: d.title == "(2) Alerts · Cold chain")

    # acknowledged (through the API): the count goes down; none left, no count at all
    _acknowledge(web_server, people["operator"], seeded["alert"])
    _wait(wide).until(lambda d: _text_of(d, count) == "1")
    _wait(wide).until(lambda d: d.title == "(1) Alerts · Cold chain")
    _acknowledge(web_server, people["operator"], second)
    _wait(wide).until(lambda d: d.title == "Alerts · Cold chain")
    assert _text_of(wide, count) == ""
    assert not wide.execute_script(f"return document.querySelector('{count}').offsetParent;")
    # going down is not news
    assert _attr_of(wide, "html", "data-alerts-announced") is None
    assert _console_errors(wide) == []

    # switched off again: remembered as off
    assert _click(wide, bell)
    _wait(wide).until(lambda d: _attr_of(d, bell, "aria-pressed") == "false")
    assert wide.execute_script("return localStorage.getItem('coldchain.alertNotify');") == "off"

"""The alerts page for on-call, in a real headless Chromium (no internet) against the real app:
acknowledge refused without a comment (the row says why), accepted with one typed in the row
(and landing on that alert only), assign from the row, the condition (still out of range or
cleared) with start, current and peak temperature and who was notified, and severities in
distinct, readable colours. Screenshots at 1600×1000 as each role go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.telemetry import Reading
from tests.dashboard.test_browser import (
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
    add_notification,
    add_product,
    add_shipment,
    ingest,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _row(alert_id: int) -> str:
    return f'#alerts-table tr.alert-row[data-alert-id="{alert_id}"]'


def _js(driver: WebDriver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def _type_in(driver: WebDriver, css: str, text: str) -> None:
    """Focus a box and type into it key by key, as a person does: the keys go wherever the focus
    is, so a row re-rendered mid-word must give the focus back to its box (assets/actions.js)."""
    _wait(driver).until(
        lambda d: _js(
            d,
            "const e = document.querySelector(arguments[0]); if (!e) return false;"
            "e.focus(); return document.activeElement === e;",
            css,
        )
    )
    ActionChains(driver).send_keys(text).perform()


def _press(driver: WebDriver, css: str) -> None:
    _wait(driver).until(lambda d: _click(d, css))


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser at 1600×1000 for this test (the size of the screenshots)."""
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    yield browser
    browser.set_window_size(size["width"], size["height"])


def _seed(dsn: str) -> dict[str, Any]:
    """Four open alerts, one per severity: critical still out of range (with readings and
    notifications), major cleared, warning an offline logger, info with nothing linked."""
    now = datetime.now(UTC).replace(microsecond=0)
    out: dict[str, Any] = {"now": now}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        for device in ("LOG-HOT", "LOG-WAS", "LOG-OFF"):
            add_device(conn, device)
        hot = add_shipment(conn, "SHP-HOT", product=product)
        was = add_shipment(conn, "SHP-WAS", product=product, origin="Lyon", destination="Milan")
        off = add_shipment(conn, "SHP-OFF", product=product, origin="Porto", destination="Graz")
        out["critical"] = add_alert(
            conn, hot, triggered_at=now - timedelta(minutes=40), device_id="LOG-HOT"
        )
        out["hot_start"] = now - timedelta(minutes=55)
        add_excursion(
            conn,
            hot,
            "LOG-HOT",
            start=out["hot_start"],
            end=None,
            last_out=now - timedelta(minutes=1),
            max_c=12.8,
            alert_id=out["critical"],
        )
        add_notification(
            conn,
            out["critical"],
            "oncall@example.org",
            tier=0,
            at=now - timedelta(minutes=39),
            status="delivered",
        )
        add_notification(
            conn,
            out["critical"],
            "manager@example.org",
            tier=1,
            at=now - timedelta(minutes=20),
            status="failed",
            error="connection refused",
        )
        conn.execute(
            "UPDATE alerts SET escalation_level = 1 WHERE alert_id = %s", (out["critical"],)
        )
        out["major"] = add_alert(
            conn,
            was,
            severity="major",
            title="Temperature above 8 °C for 20 min",
            triggered_at=now - timedelta(hours=3),
            device_id="LOG-WAS",
        )
        out["was_end"] = now - timedelta(minutes=30)
        add_excursion(
            conn,
            was,
            "LOG-WAS",
            start=now - timedelta(hours=3, minutes=20),
            end=out["was_end"],
            last_out=out["was_end"] - timedelta(minutes=1),
            alert_id=out["major"],
        )
        conn.execute("UPDATE alerts SET cleared_at = now() WHERE alert_id = %s", (out["major"],))
        out["warning"] = add_alert(
            conn,
            off,
            rule_key="device_offline",
            severity="warning",
            title="Logger LOG-OFF silent for 25 min",
            triggered_at=now - timedelta(minutes=10),
            device_id="LOG-OFF",
        )
        conn.execute(
            "INSERT INTO rule_states (shipment_id, device_id, rule_key, holding, as_of, since,"
            " alert_id, thresholds) VALUES (%s, 'LOG-OFF', 'device_offline', true, %s, %s, %s,"
            " %s)",
            (off, now, now - timedelta(minutes=25), out["warning"], Jsonb({})),
        )
        out["info"] = add_alert(
            conn,
            off,
            rule_key="battery_low",
            severity="info",
            title="Logger LOG-OFF battery at 15 %",
            triggered_at=now - timedelta(minutes=5),
            device_id="LOG-OFF",
        )
    ingest(
        dsn,
        [
            Reading("LOG-HOT", now - timedelta(minutes=1), 11.4, 50.0),
            Reading("LOG-WAS", now - timedelta(minutes=1), 5.1, 50.0),
        ],
    )
    return out


def _api_alert(server: LiveServer, person: Person, alert_id: int) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/v1/alerts/{alert_id}", headers=person.headers, timeout=10)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def _updated(driver: WebDriver) -> str:
    return _text_of(driver, "#alerts-updated") or ""


def test_acknowledge_needs_a_comment_typed_in_the_alerts_own_row(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    critical, major = _row(seeded["critical"]), _row(seeded["major"])
    _login_as(wide, web_server, session_cookie(people["operator"]))
    _open(wide, web_server.url + "/alerts")
    _wait(wide).until(lambda d: _text_of(d, f"{critical} button.btn-ack") == "Acknowledge")
    # There is no comment box away from the rows: each open alert has its own.
    assert not wide.find_elements(By.ID, "alerts-comment")
    assert len(wide.find_elements(By.CSS_SELECTOR, "#alerts-table textarea.alert-comment")) == 4

    # Without a comment: refused, and the row itself says why.
    _press(wide, f"{critical} button.btn-ack")
    _wait(wide).until(
        lambda d: "type a comment in this row" in (_text_of(d, f"{critical} .alert-feedback") or "")
    )
    assert "error" in (
        _js(
            wide,
            "return document.querySelector(arguments[0]).className;",
            f"{critical} .alert-feedback",
        )
    )
    assert _api_alert(web_server, people["viewer"], seeded["critical"])["state"] == "open"
    screenshot(wide, "alerts-ack-refused-operator")

    # A comment typed in another row stays there, across refreshes, and is not sent with
    # this one.
    _type_in(wide, f"{major} textarea.alert-comment", "Looking at the reefer log")
    before = _updated(wide)
    _wait(wide).until(lambda d: _updated(d) != before)  # the table re-rendered at least once
    _type_in(wide, f"{critical} textarea.alert-comment", "Called the driver: door closed")
    before = _updated(wide)
    _wait(wide).until(lambda d: _updated(d) != before)
    assert (
        _js(wide, "return document.querySelector(arguments[0]).value;", f"{critical} textarea")
        == "Called the driver: door closed"
    )
    _press(wide, f"{critical} button.btn-ack")
    _wait(wide).until(
        lambda d: (
            _js(
                d,
                "const e = document.querySelector(arguments[0]);return e && e.dataset.state;",
                critical,
            )
            == "acknowledged"
        )
    )
    acked = _api_alert(web_server, people["viewer"], seeded["critical"])
    assert (acked["acked_by"], acked["ack_comment"]) == (
        "ana.ruiz",
        "Called the driver: door closed",
    )
    other = _api_alert(web_server, people["viewer"], seeded["major"])
    assert (other["state"], other["ack_comment"]) == ("open", None)
    assert [e["kind"] for e in other["events"]] == ["opened"]
    assert (
        _js(wide, "return document.querySelector(arguments[0]).value;", f"{major} textarea")
        == "Looking at the reefer log"
    )
    _wait(wide).until(
        lambda d: (
            "Called the driver: door closed" in (_text_of(d, f"{critical} .cell-people") or "")
        )
    )
    screenshot(wide, "alerts-acknowledged-operator")
    assert _console_errors(wide) == []


def test_assign_from_the_alerts_row(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    row = _row(seeded["warning"])
    _login_as(wide, web_server, session_cookie(people["admin"]))
    _open(wide, web_server.url + "/alerts")
    _wait(wide).until(lambda d: _text_of(d, f"{row} button.btn-assign") == "Assign")
    options = _js(
        wide,
        "return [...document.querySelectorAll(arguments[0] + ' select.alert-assignee option')]"
        ".map(o => o.value);",
        row,
    )
    # the people who act on alerts: operators and admins, not viewers or QA
    assert sorted(options) == ["", "adam.admin", "ana.ruiz"]
    # nobody picked: refused in the row
    _press(wide, f"{row} button.btn-assign")
    _wait(wide).until(lambda d: "Pick a person" in (_text_of(d, f"{row} .alert-feedback") or ""))
    _js(
        wide,
        "const s = document.querySelector(arguments[0] + ' select.alert-assignee');"
        "s.value = 'ana.ruiz'; s.dispatchEvent(new Event('change', {bubbles: true}));",
        row,
    )
    _press(wide, f"{row} button.btn-assign")
    _wait(wide).until(
        lambda d: "assigned to Ana Ruiz" in (_text_of(d, f"{row} .cell-people") or "")
    )
    body = _api_alert(web_server, people["viewer"], seeded["warning"])
    assert body["assignee"] == "ana.ruiz"
    assert (body["events"][-1]["kind"], body["events"][-1]["actor"]) == ("assigned", "adam.admin")
    screenshot(wide, "alerts-admin")
    assert _console_errors(wide) == []


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_each_row_shows_condition_start_temperatures_and_who_was_notified(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    role: str,
) -> None:
    seeded = _seed(db_dsn)
    critical, major, warning = (_row(seeded[k]) for k in ("critical", "major", "warning"))
    _login_as(wide, web_server, session_cookie(people[role]))
    _open(wide, web_server.url + "/alerts")
    _wait(wide).until(lambda d: _text_of(d, f"{critical} .cell-condition") is not None)
    condition = _text_of(wide, f"{critical} .cell-condition") or ""
    assert "open · still out of range" in condition
    start = seeded["hot_start"].strftime("%Y-%m-%d %H:%M")
    assert f"out of range since {start}" in condition
    temps = _text_of(wide, f"{critical} .cell-temps") or ""
    assert "now 11.4 °C" in temps and "peak 12.8 °C" in temps
    escalation = _text_of(wide, f"{critical} .cell-escalation") or ""
    assert "escalated to tier 1" in escalation
    assert "oncall@example.org · tier 0 · delivered" in escalation
    assert "manager@example.org · tier 1 · failed" in escalation
    cleared = _text_of(wide, f"{major} .cell-condition") or ""
    assert f"open · condition cleared {seeded['was_end']:%Y-%m-%d %H:%M}" in cleared
    assert _js(wide, "return document.querySelector(arguments[0]).dataset.condition;", major) == (
        "cleared"
    )
    assert "condition still holds" in (_text_of(wide, f"{warning} .cell-condition") or "")
    # who follows alerts has no actions
    assert not wide.find_elements(By.CSS_SELECTOR, "#alerts-table textarea, #alerts-table button")
    screenshot(wide, f"alerts-{role}")
    assert _console_errors(wide) == []


#: WCAG relative luminance contrast of an element's text on its background (both computed).
_CONTRAST = """
const e = document.querySelector(arguments[0]);
const s = getComputedStyle(e);
const rgb = c => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
const lum = c => {
  const [r, g, b] = rgb(c).map(v => v / 255).map(
    v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const [a, b] = [lum(s.color), lum(s.backgroundColor)];
return [s.backgroundColor, s.color, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
"""


def test_severities_have_distinct_readable_colours_and_their_names(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    _login_as(wide, web_server, session_cookie(people["operator"]))
    _open(wide, web_server.url + "/alerts")
    names = ("critical", "major", "warning", "info")
    every_badge = ", ".join(f"{_row(seeded[n])} .cell-severity .badge" for n in names)
    _wait(wide).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, every_badge)) == len(names))
    styles = {n: _js(wide, _CONTRAST, f"{_row(seeded[n])} .cell-severity .badge") for n in names}
    backgrounds = {n: styles[n][0] for n in names}
    assert len(set(backgrounds.values())) == 4, backgrounds  # major ≠ warning, and the others
    for name in names:
        assert styles[name][2] >= 4.5, (name, styles[name])  # WCAG AA for small text
        # the severity in words, not colour alone
        assert _text_of(wide, f"{_row(seeded[name])} .cell-severity") == name.capitalize()
    assert _console_errors(wide) == []

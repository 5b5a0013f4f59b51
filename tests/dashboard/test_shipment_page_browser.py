"""The shipment page for QA and logistics, in a real headless Chromium (no internet) against the
real app and TimescaleDB, at 1600×1000: the status banner of a shipment in excursion, the MKT
judged against the label range with ΔH, window and coverage, the event timeline in order, the
page of an unknown shipment, and tables that are not clipped. Screenshots of the page as each
role go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.telemetry import Reading
from dashboard.figures import CONDITION_COLORS
from dashboard.pages import fmt_ts
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import (
    LiveServer,
    add_alert,
    add_device,
    add_product,
    add_shipment,
    assign,
    ingest,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROLES = ("viewer", "operator", "qa", "admin")
PEAK_C = 12.8
ACK_COMMENT = "Driver called: reefer door left open at the cross-dock, closed now"


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser at 1600×1000 for one test (the issue's size), then back."""
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        yield browser
    finally:
        browser.set_window_size(size["width"], size["height"])


def _seed_excursion(dsn: str, people: dict[str, Person]) -> dict[str, Any]:
    """A 2–8 °C shipment (no MKT limit) in transit: an hour of readings, the first half at
    5 °C, the second out of range up to the peak; an open excursion that alarmed, its critical
    alert acknowledged by the operator with a comment; two legs with long names."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=1)
    out_since = now - timedelta(minutes=28)
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-EXC-000123456789", interval_s=60)
        shipment_id = add_shipment(
            conn,
            "SHP-EXC",
            product=product,
            origin="Rotterdam Europoort Cold Store 4",
            destination="Basel Pharma Distribution Centre Nord",
        )
        conn.execute(  # booked the day before
            "UPDATE shipments SET created_at = %s WHERE shipment_id = %s",
            (start - timedelta(days=1), shipment_id),
        )
        assign(conn, "LOG-EXC-000123456789", shipment_id, start - timedelta(minutes=1))
        alarm_at = out_since + timedelta(minutes=10)
        alert = add_alert(
            conn,
            shipment_id,
            triggered_at=alarm_at,
            device_id="LOG-EXC-000123456789",
            title="Temperature above 8 °C for 10 min on LOG-EXC-000123456789",
        )
        acked_at = alarm_at + timedelta(minutes=4)
        conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acked_by = %s, acked_at = %s,"
            " ack_comment = %s WHERE alert_id = %s",
            (people["operator"].username, acked_at, ACK_COMMENT, alert),
        )
        conn.execute(
            "INSERT INTO alert_events (alert_id, kind, actor, comment, at)"
            " VALUES (%s, 'acknowledged', %s, %s, %s)",
            (alert, people["operator"].username, ACK_COMMENT, acked_at),
        )
        # as the rules engine records it: alarmed after the delay, joined to its alert
        row = conn.execute(
            "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
            " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, alarm_at, alert_id,"
            " rule_key, thresholds) VALUES (%s, %s, 'high', %s, NULL, %s, 8.5, %s, 60.0, 28,"
            " true, %s, %s, 'temp-high', '{\"max\": 8}') RETURNING excursion_id",
            (shipment_id, "LOG-EXC-000123456789", out_since, now - timedelta(minutes=1),
             PEAK_C, alarm_at, alert),
        ).fetchone()  # fmt: skip
        assert row is not None
        excursion = int(row[0])
        for seq, (origin, destination, mode) in enumerate(
            [
                ("Rotterdam Europoort Cold Store 4", "Venlo Cross-Dock Temperature Hub", "road"),
                (
                    "Venlo Cross-Dock Temperature Hub",
                    "Basel Pharma Distribution Centre Nord",
                    "rail",
                ),
            ],
            start=1,
        ):
            conn.execute(
                "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier,"
                " planned_departure, planned_arrival) VALUES (%s, %s, %s, %s, %s,"
                " 'Frigo Express Intermodal Europe GmbH', %s, %s)",
                (shipment_id, seq, mode, origin, destination, start, now + timedelta(hours=9)),
            )
    readings = []
    for i in range(61):
        ts = start + timedelta(minutes=i)
        temp = 5.0 if ts < out_since else min(PEAK_C, 8.5 + 0.3 * ((ts - out_since).seconds // 60))
        readings.append(Reading("LOG-EXC-000123456789", ts, temp, 50.0))
    ingest(dsn, readings)
    return {"now": now, "out_since": out_since, "alert": alert, "excursion": excursion}


def _content(driver: WebDriver, css: str) -> str:
    """The text of an element as written (``innerText`` would apply CSS text-transform)."""
    return driver.execute_script(
        "return [...document.querySelector(arguments[0]).children]"
        ".map(e => e.textContent.trim()).join('\\n');",
        css,
    )


def test_shipment_in_excursion_banner_mkt_and_timeline(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed_excursion(db_dsn, people)
    browser = wide
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/shipments/SHP-EXC")

    # The banner: since when, how long, how bad; red (a critical alert).
    banner = "#shipment-banner .status-banner"
    _wait(browser).until(lambda d: (_text_of(d, banner) or "").startswith("Out of range"))
    text = _text_of(browser, banner) or ""
    assert f"since {fmt_ts(seeded['out_since'])}" in text
    assert f"peak {PEAK_C:.1f} °C" in text
    minutes = int(re.search(r"· (\d+) min ·", text).group(1))  # type: ignore[union-attr]
    assert 28 <= minutes <= 30
    assert (
        browser.execute_script(f"return document.querySelector('{banner}').dataset.tone;")
        == "alarm"
    )
    # The header badge agrees; the current temperature is red (outside 2–8 °C).
    assert _text_of(browser, "#shipment-header .title-row .badge") == "Out of range"
    assert browser.execute_script(
        "const f = document.querySelector('#shipment-header .fact-now');"
        "return [f.dataset.outside, f.querySelector('dd').className];"
    ) == ["high", "text-alarm"]

    # MKT: judged against the label range's upper limit (no MKT limit), with ΔH, the window
    # actually covered and its coverage of the 24 h window, the same figures as the report's.
    fact = "#shipment-stability .fact-mkt"
    _wait(browser).until(lambda d: _text_of(d, "#shipment-mkt") not in (None, "—"))
    report = httpx.get(
        f"{web_server.url}/api/v1/shipments/SHP-EXC/report.json",
        headers=people["viewer"].headers,
        timeout=30,
    ).json()
    (logger,) = report["evidence"]["loggers"]
    window = logger["mkt"]["window"]
    assert window["mkt_c"] > 8.0  # the seeded series makes it so: the test would be vacuous
    assert _text_of(browser, "#shipment-mkt") == f"{window['mkt_c']:.2f} °C"
    shown = _content(browser, fact)
    hours = (
        datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"])
    ).total_seconds() / 3600
    assert f"MKT (over {hours:.1f} h)" in shown
    assert "above the label range's upper limit of 8 °C" in shown
    assert "ΔH 83.144 kJ/mol" in shown
    assert (
        f"window {fmt_ts(datetime.fromisoformat(window['start']))} → "
        f"{fmt_ts(datetime.fromisoformat(window['end']))} ({hours:.1f} h)"
    ) in shown
    coverage = window["duration_covered_s"] / (24 * 3600)
    assert f"coverage {coverage * 100:.0f} % of the 24 h window" in shown
    assert browser.execute_script(
        f"const f = document.querySelector('{fact}'); return [f.dataset.verdict, f.dataset.basis,"
        " document.querySelector('#shipment-mkt').className];"
    ) == ["above", "label_range", "text-alarm"]
    # the gauge: red bar, titled with the real window
    plot = "document.querySelector('#shipment-stability-graph .js-plotly-plot')"
    _wait(browser).until(lambda d: d.execute_script(f"const g = {plot}; return !!(g && g.data);"))
    gauge = browser.execute_script(
        f"const t = {plot}.data.find(t => t.name === 'mkt'); return [t.gauge.bar.color, t.title.text];"
    )
    assert gauge == [CONDITION_COLORS["alarm"], f"MKT (over {hours:.1f} h)"]

    # The timeline, in order: the excursion began, it alarmed, the operator acknowledged it
    # with their comment.
    rows = "#shipment-timeline tr.timeline-row"
    _wait(browser).until(lambda d: "acknowledged" in d.execute_script(
        f"return [...document.querySelectorAll('{rows}')].map(r => r.dataset.kind);"))  # fmt: skip
    kinds = browser.execute_script(
        f"return [...document.querySelectorAll('{rows}')].map(r => r.dataset.kind);"
    )
    story = [
        k for k in kinds if k in ("created", "excursion_start", "alarm_raised", "acknowledged")
    ]
    assert story == ["created", "excursion_start", "alarm_raised", "acknowledged"]
    ack = _text_of(browser, f'{rows}[data-kind="acknowledged"]') or ""
    assert people["operator"].username in ack and ACK_COMMENT in ack

    screenshot(browser, "shipment-excursion-viewer")
    # No clipped table at 1600 px: the legs and the open alerts fit their cards, and their
    # cards the page's column.
    for table in ("#shipment-legs", "#shipment-alerts"):
        fits = browser.execute_script(
            "const w = document.querySelector(arguments[0] + ' .table-wrap');"
            "const t = w.querySelector('table');"
            "const page = document.querySelector('.page-shipment').getBoundingClientRect();"
            "return [w.scrollWidth <= w.clientWidth,"
            " t.getBoundingClientRect().right <= window.innerWidth,"
            " w.closest('.card').getBoundingClientRect().right <= page.right + 0.5];",
            table,
        )
        assert fits == [True, True, True], table
    screenshot(browser, "shipment-excursion-viewer")
    assert _console_errors(browser) == []

    for role in ROLES[1:]:
        _login_as(browser, web_server, session_cookie(people[role]))
        _open(browser, web_server.url + "/shipments/SHP-EXC")
        _wait(browser).until(lambda d: (_text_of(d, banner) or "").startswith("Out of range"))
        _wait(browser).until(lambda d: _text_of(d, "#shipment-mkt") not in (None, "—"))
        screenshot(browser, f"shipment-excursion-{role}")
        assert _console_errors(browser) == []


def test_an_unknown_shipment_has_a_page_of_its_own(
    web_server: LiveServer,
    wide: WebDriver,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    browser = wide
    _login_as(browser, web_server, session_cookie(people["viewer"]))
    _open(browser, web_server.url + "/shipments/SHP-NOPE")
    _wait(browser).until(lambda d: _text_of(d, ".not-found h1") == "No shipment SHP-NOPE")
    assert browser.execute_script(
        "return [document.querySelectorAll('.card').length,"
        " document.querySelectorAll('.js-plotly-plot').length,"
        " new URL(document.querySelector('.not-found a').href).pathname];"
    ) == [0, 0, "/"]
    screenshot(browser, "shipment-unknown")
    assert _console_errors(browser) == []


def test_a_shipment_under_review_shows_its_verdict_not_ok(
    web_server: LiveServer,
    wide: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    """The issue's case: under QA review with an exception verdict, the header said "OK". The
    banner and the badge say the verdict; the budget shown is the profile's, and says so."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    reason = "8–25 °C band: 1 h 10 min used of 1 h"
    with psycopg.connect(db_dsn) as conn:
        product = add_product(conn)
        add_device(conn, "LOG-REV", interval_s=300)
        shipment_id = add_shipment(conn, "SHP-REVIEW", product=product, status="under_review")
        assign(conn, "LOG-REV", shipment_id, start - timedelta(minutes=1), now)
        conn.execute(
            "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
            " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, rule_key, thresholds)"
            " VALUES (%s, 'LOG-REV', 'high', %s, %s, %s, 8.2, 11.5, 150, 14, false, 'temp-high',"
            " '{}')",
            (shipment_id, start + timedelta(minutes=30), start + timedelta(minutes=100),
             start + timedelta(minutes=95)),
        )  # fmt: skip
        figures = {
            "bands": [
                {"key": "8-25", "label": "8–25 °C", "low_c": 8.0, "high_c": 25.0,
                 "budget_s": 3600.0, "used_s": 4200.0, "share": 4200 / 3600, "exceeded": True}
            ]
        }  # fmt: skip
        conn.execute(
            "INSERT INTO shipment_verdicts (shipment_id, gtin, verdict, reasons, figures,"
            " profile_version, evaluated_at, evaluated_by)"
            " VALUES (%s, %s, 'exception', %s, %s, 2, %s, 'ana.ruiz')",
            (shipment_id, product,
             Jsonb([{"code": "band_budget_exceeded", "message": reason, "band": "8-25"}]),
             Jsonb(figures), now - timedelta(minutes=5)),
        )  # fmt: skip
    ingest(
        db_dsn,
        [
            Reading("LOG-REV", start + timedelta(minutes=5 * i), 10.0 if 6 <= i < 20 else 5.0, 50.0)
            for i in range(36)
        ],
    )
    _login_as(wide, web_server, session_cookie(people["qa"]))
    _open(wide, web_server.url + "/shipments/SHP-REVIEW")
    banner = "#shipment-banner .status-banner"
    _wait(wide).until(lambda d: _text_of(d, banner) is not None)
    assert _text_of(wide, banner) == f"Under QA review · arrival verdict: exception: {reason}"
    assert _text_of(wide, "#shipment-header .title-row .badge") == "Exception"
    assert (
        wide.execute_script(f"return document.querySelector('{banner}').dataset.tone;") == "warning"
    )
    _wait(wide).until(lambda d: _text_of(d, "#shipment-budget") == f"{4200 / 3600 * 100:.1f} %")
    assert "8–25 °C band of the stability profile v2" in _content(
        wide, "#shipment-stability .fact-budget"
    )
    screenshot(wide, "shipment-under-review-qa")
    assert _console_errors(wide) == []

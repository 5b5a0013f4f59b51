"""The Insight page in a real headless Chromium against the real app and TimescaleDB: every
lane with its score (or why it has none), a lane's months and carriers, a subscription made by a
viewer and seen by the admin. Screenshots (1600 px wide) go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard.pages import insight as page
from db.types import Conn
from services import insight
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, screenshot
from tests.insight.history import LANE_A, LANE_B, LANE_B_SHIPMENTS, seed_history

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _lane_rows(driver: WebDriver) -> list[tuple[str, str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{page.LANES} tr.{page.LANE_ROW}")
    return [(r.get_attribute("data-lane") or "", r.get_attribute("data-score") or "") for r in rows]


def test_the_insight_page_as_viewer_and_admin(
    browser: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    conn: Conn,
    people: dict[str, Person],
    session_cookie: Callable[[Person], str],
) -> None:
    seed_history(db_dsn)
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        want = [
            (r.lane, "" if r.score is None else f"{r.score:.1f}") for r in insight.lane_risk(conn)
        ]
        _login_as(browser, web_server, session_cookie(people["viewer"]))
        _open(browser, web_server.url + page.PATH)
        _wait(browser).until(lambda d: len(_lane_rows(d)) == len(want))
        assert _lane_rows(browser) == want
        b_row = f"tr.{page.LANE_ROW}[data-lane='{LANE_B}']"
        n_b = len(LANE_B_SHIPMENTS)
        assert f"{n_b} of 5 needed" in (_text_of(browser, b_row) or "")
        note = browser.find_element(By.CSS_SELECTOR, f"{b_row} span[title]").get_attribute("title")
        assert note == f"lane {LANE_B} has {n_b} finished shipments; a risk score needs 5"
        # the riskiest lane's months and carriers, by default
        _wait(browser).until(lambda d: (_text_of(d, f"#{page.CARRIERS}") or "").count("SkyCargo"))
        assert LANE_A in (_text_of(browser, f"#{page.DETAIL}") or "")
        assert "1 of 5 legs needed" in (_text_of(browser, f"#{page.CARRIERS}") or "")  # SlowAir
        browser.find_element(By.ID, page.EMAIL).send_keys("viewer@example.org")
        browser.find_element(By.ID, page.SUBSCRIBE).click()
        _wait(browser).until(
            lambda d: (_text_of(d, f"#{page.FEEDBACK}") or "").startswith("Subscribed")
        )
        assert "viewer@example.org" in (_text_of(browser, f"#{page.SUBSCRIPTIONS}") or "")
        screenshot(browser, "insight-viewer")
        # every column of the lane tables in view at 1600 px, none behind a sideways scroll
        overflow = browser.execute_script(
            "return [...document.querySelectorAll('.page-insight .table-wrap')]"
            ".map(w => w.scrollWidth - w.clientWidth);"
        )
        assert overflow and max(overflow) <= 0, f"tables wider than their cards by {overflow} px"
        assert _console_errors(browser) == []

        _login_as(browser, web_server, session_cookie(people["admin"]))
        _open(browser, web_server.url + page.PATH)
        _wait(browser).until(lambda d: len(_lane_rows(d)) == len(want))
        _wait(browser).until(
            lambda d: people["viewer"].username in (_text_of(d, f"#{page.SUBSCRIPTIONS}") or "")
        )
        screenshot(browser, "insight-admin")
        assert _console_errors(browser) == []
    finally:
        browser.set_window_size(size["width"], size["height"])

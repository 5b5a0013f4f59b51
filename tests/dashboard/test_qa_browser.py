"""The QA index in a real Chromium (offline: this machine has no internet): the exceptions queue
in order of risk, states in plain words, the fleet's condition, as every role sees it; no console
error; a screenshot per role at 1600×1000."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.test_browser import _console_errors, _login_as, _open, _seed, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, screenshot
from tests.services.test_qa_index import EXPECTED_QUEUE, seed_qa_queue

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROWS = """
return Array.from(document.querySelectorAll(arguments[0])).map(tr => ({
    reference: tr.dataset.reference,
    cells: Array.from(tr.cells).map(td => td.textContent.trim()),
}));
"""


def _rows(driver: WebDriver, css: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = driver.execute_script(ROWS, css)
    return rows


def test_the_exceptions_queue_by_risk_for_every_role(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seed_qa_queue(db_dsn)
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        for role in ("viewer", "operator", "qa", "admin"):
            _login_as(browser, web_server, session_cookie(people[role]))
            _open(browser, web_server.url + "/qa")
            _wait(browser).until(lambda d: len(_rows(d, "tr.qa-queue-row")) == len(EXPECTED_QUEUE))
            queue = _rows(browser, "tr.qa-queue-row")
            assert [r["reference"] for r in queue] == EXPECTED_QUEUE, role
            header = browser.execute_script(
                "return Array.from(document.querySelectorAll('#qa-queue th'))"
                ".map(th => th.textContent.trim());"
            )
            col = {name: i for i, name in enumerate(header)}
            first = dict(zip(header, queue[0]["cells"], strict=True))
            assert (first["Status"], first["Severity"], first["Verdict"]) == (
                "Quarantined", "Critical", "Not judged"
            )  # fmt: skip
            exc = queue[EXPECTED_QUEUE.index("QA-EXC")]["cells"]
            assert exc[col["Status"]] == "Under QA review"
            assert exc[col["Verdict"]] == "Exception" and exc[col["Peak"]] == "12.5 °C"
            assert exc[col["Out of range"]] == "1 h" and exc[col["Budget"]] == "150 %"
            assert exc[col["Excursions"]] == "1 (1 alarmed)"
            assert exc[col["Disposition"]] == "not signed"
            rest = {r["reference"]: r["cells"] for r in _rows(browser, "tr.qa-rest-row")}
            # in alarm on the fleet, in alarm here; its state in words, not `in_transit`
            assert "In transit" in rest["SHP-MOVING"] and "Alarm" in rest["SHP-MOVING"]
            assert "Quarantined" in rest["QA-HELD"]
            page = browser.execute_script("return document.body.innerText;")
            assert "in_transit" not in page and "under_review" not in page
            assert _console_errors(browser) == [], role
            screenshot(browser, f"qa-index-{role}")
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_the_review_page_in_plain_words_with_both_csv_downloads(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    _seed(db_dsn)
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        for role in ("viewer", "qa"):
            _login_as(browser, web_server, session_cookie(people[role]))
            _open(browser, web_server.url + "/qa/SHP-HOT")
            _wait(browser).until(lambda d: len(_text_of(d, "#qa-content-hash") or "") == 64)
            summary = _text_of(browser, "#qa-summary") or ""
            assert "Rotterdam → Basel · In transit · carrier Frigo Express" in summary
            buttons = browser.execute_script(
                "return Array.from(document.querySelectorAll('button[data-fmt]'))"
                ".map(b => [b.dataset.fmt, b.textContent.trim()]);"
            )
            assert buttons == [
                ["pdf", "Download PDF"],
                ["csv", "Download readings (CSV)"],
                ["summary.csv", "Download summary (CSV)"],
                ["json", "Download JSON"],
            ]
            assert _console_errors(browser) == [], role
            screenshot(browser, f"qa-review-{role}")
    finally:
        browser.set_window_size(size["width"], size["height"])

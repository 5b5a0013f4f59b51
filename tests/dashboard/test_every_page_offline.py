"""Every dashboard page, opened offline in the real headless Chromium as each role, logs no error
in the browser's console (issue 14: "no console error on any page offline").

This machine has no internet access, so the test is the offline case itself. The pages are the
ones ``bench/screenshots.py`` shows (the README's pictures) plus every ``PATH`` a module of
``dashboard.pages`` declares, so a page added later is checked without being listed here.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from bench.screenshots import SETTLED, all_pages
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _seed, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROLES = ("viewer", "operator", "qa", "admin")


def test_no_page_logs_a_console_error_offline_for_any_role(
    browser: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    _seed(db_dsn)
    pages, _undescribed = all_pages()
    paths = sorted(
        {p.path.format(shipment="SHP-HOT") for p in pages if "anonymous" not in p.roles}
        | {"/shipments/SHP-NO-SUCH", "/no-such-page"}
    )
    assert "/admin/people" in paths and "/shipments/SHP-HOT" in paths  # discovery works
    errors: dict[str, list[str]] = {}
    for role in ROLES:
        _login_as(browser, web_server, session_cookie(people[role]))
        for path in paths:
            _open(browser, web_server.url + path)
            _wait(browser, 30).until(lambda d: d.execute_script(SETTLED))
            time.sleep(0.5)  # a first refresh, and the maps' styles, after the data arrives
            _wait(browser, 30).until(lambda d: d.execute_script(SETTLED))
            found = _console_errors(browser)
            if found:
                errors[f"{role} {path}"] = found
    assert errors == {}

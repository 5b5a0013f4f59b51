"""The System screen in a real headless Chromium against the real app and TimescaleDB: an
administrator sees the pipeline's figures and sends a test notification to a configured e-mail
target (a real SMTP server receives it) and to a person, and sees each result; the attempts are
recorded as theirs."""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.settings import Settings
from dashboard.pages import admin, admin_system
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.mail import Mailbox
from tests.fixtures.web import LiveServer, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def settings(settings: Settings, smtp: tuple[Mailbox, int]) -> Settings:
    """The test's settings (so the live server's) with an SMTP server and one configured
    e-mail target."""
    _box, port = smtp
    alerts = settings.alerts.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_to": ["oncall@example.com"]}
    )
    return settings.model_copy(update={"alerts": alerts})


def test_an_admin_sees_the_figures_and_sends_test_notifications(
    browser: WebDriver,
    web_server: LiveServer,
    people: dict[str, Person],
    session_cookie: object,
    smtp: tuple[Mailbox, int],
    db_dsn: str,
) -> None:
    box, _port = smtp
    admin_person, qa = people["admin"], people["qa"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE app_users SET email = 'qa.person@example.com' WHERE username = %s",
            (qa.username,),
        )
    driver = browser
    _login_as(driver, web_server, session_cookie(admin_person))  # type: ignore[operator]
    _open(driver, web_server.url + admin.SYSTEM_PATH)
    lag = "[data-figure='engine-lag'] .value"
    _wait(driver).until(lambda d: bool(_text_of(d, lag)))
    assert _text_of(driver, "[data-figure='engines'] .value") == "0"

    # The configured target, then the person: each result shown, each message received.
    for key, rcpt in (
        ("target:0", "oncall@example.com"),
        (f"person:{qa.username}", "qa.person@example.com"),
    ):
        driver.find_element(By.CSS_SELECTOR, f"tr[data-key='{key}'] button").click()

        def shown(d: WebDriver, rcpt: str = rcpt) -> bool:
            return rcpt in (_text_of(d, f"#{admin_system.RESULT}") or "")

        _wait(driver).until(shown)
        assert (_text_of(driver, f"#{admin_system.RESULT}") or "").startswith("delivered email")
    assert [m[1] for m in box.messages] == [["oncall@example.com"], ["qa.person@example.com"]]
    screenshot(driver, "admin-system")
    with psycopg.connect(db_dsn) as conn:
        audited = conn.execute(
            "SELECT actor, after->>'target' FROM audit_log"
            " WHERE action = 'notification_test' ORDER BY seq"
        ).fetchall()
    assert [a[1] for a in audited] == ["oncall@example.com", "qa.person@example.com"]
    assert all(admin_person.username in a[0] for a in audited)
    assert _console_errors(driver) == []

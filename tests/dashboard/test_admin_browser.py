"""The administration screens in a real headless Chromium (no internet) against the real app and
TimescaleDB: an administrator manages people (add with a password shown once, change a role,
deactivate, reactivate, reset a password), API keys (the key shown once, then only its first
characters; revoke) and stored rules (versions, which is in force, the diff, a refused
definition naming its field, a new version); QA reads the rules and nothing else; a viewer and
an operator see no Admin link and get "Not allowed" by address. Every change is in the audit
trail as the administrator's. Screenshots at 1600×1000 go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard.pages import admin, admin_keys, admin_people, admin_rules
from security import passwords
from services import rules
from services.caller import Caller
from services.shipments import rule_sources
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, add_product, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser at 1600×1000 (the screenshots' size), then as it was."""
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        yield browser
    finally:
        browser.set_window_size(size["width"], size["height"])


def _type(driver: WebDriver, element_id: str, text: str) -> None:
    """Replace a field's text as a person does (select all, type): React keeps its own value,
    so ``clear()`` alone would be undone."""
    element = driver.find_element(By.ID, element_id)
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def _titles(driver: WebDriver) -> list[str]:
    return [
        e.find_element(By.TAG_NAME, "h2").get_attribute("textContent") or ""
        for e in driver.find_elements(By.CSS_SELECTOR, ".admin-screen")
    ]


def _pick(driver: WebDriver, element_id: str, text: str) -> None:
    """Choose the option whose label contains ``text`` in a dropdown, as a person does."""
    driver.find_element(By.ID, element_id).click()
    search = "input.dash-dropdown-search"
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, search))
    driver.find_element(By.CSS_SELECTOR, search).send_keys(text)
    option = f"//*[@role='option'][contains(normalize-space(.), {text!r})]"
    _wait(driver).until(lambda d: d.find_elements(By.XPATH, option))
    driver.find_element(By.XPATH, option).click()
    _wait(driver).until(lambda d: text in (_text_of(d, f"#{element_id}") or ""))


def _feedback(driver: WebDriver, element_id: str, starts: str) -> str:
    _wait(driver).until(lambda d: (_text_of(d, f"#{element_id}") or "").startswith(starts))
    return _text_of(driver, f"#{element_id}") or ""


def _row_attr(driver: WebDriver, css: str, name: str) -> str | None:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        " return e ? e.getAttribute(arguments[1]) : null;",
        css,
        name,
    )


def _audit(dsn: str, entity: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT actor, action, reason FROM audit_log WHERE entity = %s ORDER BY seq", (entity,)
        ).fetchall()


def test_an_admin_manages_people_on_the_people_screen(
    wide: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    driver, adam = wide, people["admin"]
    _login_as(driver, web_server, session_cookie(adam))
    _open(driver, web_server.url + "/")
    _wait(driver).until(lambda d: _text_of(d, f"#{admin.NAV}") == "Admin")
    # The link leads to the admin page; it is opened afresh rather than by a click: Dash's graph
    # component logs a TypeError when the fleet page (its map refreshing every few seconds) is
    # left mid-refresh, which a person never sees but this test's console check would.
    assert (driver.find_element(By.ID, admin.NAV).get_attribute("href") or "").endswith(admin.PATH)
    _open(driver, web_server.url + admin.PATH)
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".admin-screen"))
    assert _titles(driver) == [
        "People",
        "API keys",
        "Stored rules",
        "System",
        "Products",
        "Questions asked",
    ]
    screenshot(driver, "admin-admin")

    driver.find_element(By.ID, "admin-link-people").click()
    row = '#people-table tr.person-row[data-username="{}"]'
    _wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.person-row")) == 4)
    assert _text_of(driver, row.format(adam.username) + " td.cell-last-login") != "never"

    # Add a person without a password: one is generated and shown once.
    _type(driver, admin_people.NEW_USERNAME, "nina.night")
    _type(driver, admin_people.NEW_NAME, "Nina Night")
    _pick(driver, admin_people.NEW_ROLE, "operator —")
    driver.find_element(By.ID, admin_people.ADD).click()
    _feedback(driver, admin_people.FEEDBACK, "Added Nina Night (nina.night) as operator.")
    secret = _text_of(driver, f"#{admin_people.SECRET}") or ""
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, row.format("nina.night")))
    assert _text_of(driver, row.format("nina.night") + " td.cell-last-login") == "never"
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        stored = conn.execute(
            "SELECT password_hash FROM app_users WHERE username = 'nina.night'"
        ).fetchone()
    assert stored is not None and passwords.verify_password(stored["password_hash"], secret)
    screenshot(driver, "admin-people-admin")

    # Change Vera's role, then deactivate and reactivate her, then reset her password.
    vera = people["viewer"].username
    _pick(driver, admin_people.PICK, vera)
    _pick(driver, admin_people.ROLE, "operator —")
    _type(driver, admin_people.REASON, "joins the on-call rota")
    driver.find_element(By.ID, admin_people.SET_ROLE).click()
    _feedback(driver, admin_people.FEEDBACK, f"{vera} is now operator.")
    _wait(driver).until(lambda d: _row_attr(d, row.format(vera), "data-role") == "operator")
    driver.find_element(By.ID, admin_people.DEACTIVATE).click()
    _feedback(driver, admin_people.FEEDBACK, f"{vera} is deactivated")
    _wait(driver).until(lambda d: _row_attr(d, row.format(vera), "data-active") == "false")
    driver.find_element(By.ID, admin_people.REACTIVATE).click()
    _feedback(driver, admin_people.FEEDBACK, f"{vera} is active again")
    _wait(driver).until(lambda d: _row_attr(d, row.format(vera), "data-active") == "true")
    driver.find_element(By.ID, admin_people.RESET).click()
    _feedback(driver, admin_people.FEEDBACK, f"New password for {vera}")
    assert _text_of(driver, f"#{admin_people.SECRET}")

    # An administrator cannot take their own rights away.
    _pick(driver, admin_people.PICK, adam.username)
    _pick(driver, admin_people.ROLE, "viewer —")
    driver.find_element(By.ID, admin_people.SET_ROLE).click()
    _feedback(driver, admin_people.FEEDBACK, "Not done: you cannot change your own role")

    assert [(actor, why) for actor, _, why in _audit(db_dsn, "app_users")][-5:] == [
        (adam.username, "user created"),
        (adam.username, "joins the on-call rota"),
        (adam.username, "joins the on-call rota"),
        (adam.username, "joins the on-call rota"),
        (adam.username, "joins the on-call rota"),
    ]
    assert _console_errors(driver) == []


def test_an_admin_creates_and_revokes_an_api_key_seen_once(
    wide: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    driver = wide
    _login_as(driver, web_server, session_cookie(people["admin"]))
    _open(driver, web_server.url + admin.KEYS_PATH)
    _wait(driver).until(lambda d: "No API keys yet." in (_text_of(d, f"#{admin_keys.LIST}") or ""))
    _type(driver, admin_keys.NAME, "erp-feed")
    _pick(driver, admin_keys.ROLE, "operator —")
    driver.find_element(By.ID, admin_keys.CREATE).click()
    _feedback(driver, admin_keys.FEEDBACK, "Created the key erp-feed (operator).")
    secret = _text_of(driver, f"#{admin_people.SECRET}") or ""
    row = '#keys-table tr.key-row[data-name="erp-feed"]'
    _wait(driver).until(lambda d: _row_attr(d, row, "data-state") == "live")
    # The key works for the API, in its role.
    me = httpx.get(web_server.url + "/api/v1/auth/me", headers={"X-API-Key": secret})
    assert me.status_code == 200 and me.json()["role"] == "operator"
    screenshot(driver, "admin-keys-admin")

    # Shown once: opened again, the page has its first characters only.
    _open(driver, web_server.url + admin.KEYS_PATH)
    _wait(driver).until(lambda d: _row_attr(d, row, "data-state") == "live")
    assert secret not in str(driver.page_source)
    assert _text_of(driver, row + " td.cell-last-used") != "never"

    _pick(driver, admin_keys.PICK, "erp-feed")
    driver.find_element(By.ID, admin_keys.REVOKE).click()
    _feedback(driver, admin_keys.FEEDBACK, "Revoked the key erp-feed")
    _wait(driver).until(lambda d: _row_attr(d, row, "data-state") == "revoked")
    me = httpx.get(web_server.url + "/api/v1/auth/me", headers={"X-API-Key": secret})
    assert me.status_code == 401
    # Created and revoked by the administrator (the key's own use is recorded by the database).
    adam = people["admin"].username
    assert [act for a, act, _ in _audit(db_dsn, "api_keys") if a == adam] == ["insert", "update"]
    assert _console_errors(driver) == []


def test_stored_rules_admin_stores_a_version_qa_only_reads(
    wide: WebDriver,
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    driver = wide
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        gtin = add_product(conn)
    cfg = rule_sources(web_server.settings)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        for delay, why in ((30, "first rules"), (20, "shorter alarm delay")):
            rules.add_product_version(
                conn,
                Caller.console(),
                cfg,
                gtin=gtin,
                definition={"temperature": {"alarm_delay_min": delay}},
                reason=why,
            )

    _login_as(driver, web_server, session_cookie(people["admin"]))
    _open(driver, web_server.url + admin.RULES_PATH)
    in_force = '#rules-table tr.rule-version-row[data-in-force="true"]'
    _wait(driver).until(lambda d: _row_attr(d, in_force, "data-version") == "2")
    assert "shorter alarm delay" in (_text_of(driver, in_force) or "")
    _wait(driver).until(lambda d: "+" in (_text_of(d, "#rules-diff") or ""))
    diff = _text_of(driver, "#rules-diff") or ""
    assert '-    "alarm_delay_min": 30' in diff and '+    "alarm_delay_min": 20' in diff

    # A misspelt field is refused, named, and nothing is stored.
    _type(driver, admin_rules.DEFINITION, '{"temperature": {"alarm_delay_mins": 5}}')
    _type(driver, admin_rules.REASON, "faster alarms")
    driver.find_element(By.ID, admin_rules.STORE).click()
    refused = _feedback(driver, admin_rules.FEEDBACK, "Not stored")
    assert "alarm_delay_mins" in refused
    _type(driver, admin_rules.DEFINITION, '{"temperature": {"alarm_delay_min": 5}}')
    driver.find_element(By.ID, admin_rules.STORE).click()
    _feedback(driver, admin_rules.FEEDBACK, "Stored v3")
    _wait(driver).until(lambda d: _row_attr(d, in_force, "data-version") == "3")
    screenshot(driver, "admin-rules-admin")
    assert _audit(db_dsn, "rule_definitions")[-1] == (
        people["admin"].username,
        "insert",
        "faster alarms",
    )
    assert _console_errors(driver) == []

    # QA: the Admin link shows the rules and products only; the versions, no editor.
    _login_as(driver, web_server, session_cookie(people["qa"]))
    _open(driver, web_server.url + admin.PATH)
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".admin-screen"))
    assert _titles(driver) == ["Stored rules", "Products"]
    _open(driver, web_server.url + admin.RULES_PATH)
    _wait(driver).until(lambda d: _row_attr(d, in_force, "data-version") == "3")
    assert not driver.find_element(By.ID, admin_rules.EDITOR).is_displayed()
    screenshot(driver, "admin-rules-qa")
    _open(driver, web_server.url + admin.PEOPLE_PATH)
    _wait(driver).until(lambda d: _text_of(d, "#not-allowed h1") == "Not allowed")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_neither_see_nor_reach_the_admin_screens(
    wide: WebDriver,
    web_server: LiveServer,
    people: dict[str, Person],
    session_cookie: Any,
    role: str,
) -> None:
    driver = wide
    _login_as(driver, web_server, session_cookie(people[role]))
    _open(driver, web_server.url + "/")
    _wait(driver).until(lambda d: _text_of(d, "#nav-alerts") == "Alerts")
    assert driver.find_elements(By.ID, admin.NAV) == []
    for path in (
        admin.PATH,
        admin.PEOPLE_PATH,
        admin.KEYS_PATH,
        admin.RULES_PATH,
        admin.SYSTEM_PATH,
    ):
        _open(driver, web_server.url + path)
        _wait(driver).until(lambda d: _text_of(d, "#not-allowed h1") == "Not allowed")
        assert f"Your role ({role}) cannot open" in (_text_of(driver, "#not-allowed") or "")
        assert not driver.find_elements(By.ID, admin_people.ADD)
        assert not driver.find_elements(By.ID, admin_keys.CREATE)
    screenshot(driver, f"admin-not-allowed-{role}")
    assert _console_errors(driver) == []

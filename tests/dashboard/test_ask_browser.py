"""The Ask box in a real headless Chromium against the real app, TimescaleDB and the local
chat-completions stub (the language model enabled): every role asks from the navigation bar
(Enter submits), the answer shows with its figures from the database and an in-app link that
opens the shipment; an empty question is refused in words; an administrator finds every
question in Admin › Questions asked. Screenshots per role go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.settings import AskSettings, Settings
from dashboard import ids
from dashboard.pages import admin, admin_ask
from tests.dashboard.test_browser import _console_errors, _login_as, _open, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.data import seed_shipment
from tests.fixtures.llm_stub import KEY, MODEL, LlmStub, call_tool, summarise_tool_result
from tests.fixtures.llm_stub import llm_stub as llm_stub  # the fixture, registered here
from tests.fixtures.web import LiveServer, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REFERENCE = "SHP-ASK-B1"
#: Where each role asks from: the box is on every page.
PAGES = {"viewer": "/alerts", "operator": "/passport", "qa": "/qa", "admin": "/admin"}


@pytest.fixture
def stub(llm_stub: Callable[..., LlmStub]) -> LlmStub:
    """One tool call and one answer per role's question."""
    said = summarise_tool_result(
        "{reference} is {status}, from {origin} to {destination}, with {n_excursions} "
        "excursion(s) and {open_alerts} open alert(s)."
    )
    steps = [call_tool("shipment_status", reference=REFERENCE), said]
    return llm_stub(*(steps * len(PAGES)))


@pytest.fixture
def settings(settings: Settings, stub: LlmStub) -> Settings:
    """This test's settings with the language model pointed at the stub."""
    ask = AskSettings(
        llm_enabled=True, llm_url=stub.url, llm_model=MODEL, llm_api_key=SecretStr(KEY)
    )
    return settings.model_copy(update={"ask": ask})


@pytest.fixture
def wide(browser: WebDriver) -> Iterator[WebDriver]:
    size = browser.get_window_size()
    browser.set_window_size(1600, 1000)
    try:
        yield browser
    finally:
        browser.set_window_size(size["width"], size["height"])


def _ask(driver: WebDriver, question: str) -> str:
    """Type a question in the navigation bar's box and press Enter; the answer's text."""
    before = _text_of(driver, f"#{ids.ASK_TEXT}")  # before typing: the answer may be quick
    field = driver.find_element(By.ID, ids.ASK_INPUT)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(question + Keys.ENTER)
    _wait(driver).until(
        lambda d: (t := _text_of(d, f"#{ids.ASK_TEXT}")) and t != before
        and not d.find_element(By.ID, ids.ASK_PANEL).get_attribute("hidden")
    )  # fmt: skip
    return _text_of(driver, f"#{ids.ASK_TEXT}") or ""


def test_every_role_asks_from_the_navigation_bar(
    wide: WebDriver,
    web_server: LiveServer,
    people: dict[str, Person],
    session_cookie: Callable[[Person], str],
    db_dsn: str,
    stub: LlmStub,
) -> None:
    driver = wide
    seed_shipment(db_dsn, reference=REFERENCE, start=datetime.now(UTC) - timedelta(hours=2))
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT status FROM shipments WHERE reference = %s", (REFERENCE,))
        (status,) = row.fetchone() or ("?",)

    for role, path in PAGES.items():
        _login_as(driver, web_server, session_cookie(people[role]))
        _open(driver, web_server.url + path)
        _wait(driver).until(lambda d: d.find_elements(By.ID, ids.ASK_INPUT))
        text = _ask(driver, f"how is {REFERENCE} doing? ({role})")
        assert text.startswith(f"{REFERENCE} is {status}, from ")
        figures = driver.execute_script(
            "return [...document.querySelectorAll('.ask-figures dt')].map(e => e.innerText);"
        )
        assert f"{REFERENCE} status" in figures
        assert "services.shipments.shipment_detail" in (_text_of(driver, ".ask-from") or "")
        screenshot(driver, f"ask-{role}")
        assert _console_errors(driver) == []
    assert stub.problems == [] and len(stub.requests) == 2 * len(PAGES)

    # The link opens the shipment in the app (no reload) and the panel closes.
    link = driver.find_element(By.CSS_SELECTOR, ".ask-links a")
    assert (link.get_attribute("href") or "").endswith(f"/shipments/{REFERENCE}")
    link.click()
    _wait(driver).until(lambda d: d.current_url.endswith(f"/shipments/{REFERENCE}"))
    _wait(driver).until(lambda d: d.find_element(By.ID, ids.ASK_PANEL).get_attribute("hidden"))

    # An empty question: refused in words, nothing sent to the model, nothing logged.
    _open(driver, web_server.url + admin.PATH)
    _wait(driver).until(lambda d: d.find_elements(By.ID, ids.ASK_INPUT))
    assert _ask(driver, "   ") == "Ask something: the question is empty"

    # The administrator reads every question, newest first.
    _open(driver, web_server.url + admin.QUESTIONS_PATH)
    rows = f"#ask-log-table tr.{admin_ask.ROW}"
    _wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == len(PAGES))
    actors = [r.get_attribute("data-actor") for r in driver.find_elements(By.CSS_SELECTOR, rows)]
    assert actors == [people[role].username for role in reversed(PAGES)]
    screenshot(driver, "admin-questions")
    assert _console_errors(driver) == []

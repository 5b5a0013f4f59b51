"""The acknowledgement page over HTTP (the whole app, as a browser reaches it): open without a
session, shows the alert and asks to confirm; a GET acknowledges nothing; a POST with the PIN
acknowledges; the same link again is refused in words; a logged-in person confirms as
themselves, and is refused for a link sent to someone else."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.escalation import Target
from api.app import create_app
from coldchain.settings import Settings
from dashboard.pages.ack import redact_access_log
from dashboard.pages.login import COOKIE
from security.roles import Role
from tests.fixtures.auth import Person, issue_token
from tests.services.test_ack import ANA_MAIL, HOOK, PIN, links, seed_alerts

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def state(dsn: str, alert_id: int) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_the_page_shows_the_alert_and_acknowledges_only_on_confirmation(
    client: TestClient, people: dict[Role, Person], db_dsn: str
) -> None:
    first, second = seed_alerts(db_dsn, people)
    ana, adam = people["operator"], people["admin"]
    (token,) = links(db_dsn, first, Target("email", ANA_MAIL, 0))
    page = client.get(f"/ack/{token}", follow_redirects=False)
    assert page.status_code == 200  # no session: not sent to the login page
    assert page.headers["cache-control"] == "no-store"
    assert "Temperature above 8 °C for 30 min" in page.text
    assert "SHP-ACK" in page.text and f"to {ana.username}" in page.text
    assert "Acknowledged from email" in page.text  # the comment, prefilled
    assert state(db_dsn, first) == "open"  # looking is not acknowledging

    form = {"username": ana.username, "pin": PIN, "comment": "on my way", "alert_id": str(first)}
    done = client.post(f"/ack/{token}", data=form)
    assert done.status_code == 200 and f"Acknowledged by <b>{ana.username}</b>" in done.text
    assert state(db_dsn, first) == "acknowledged"
    again = client.get(f"/ack/{token}")
    assert again.status_code == 403 and f"already used by {ana.username}" in again.text

    # Logged in as Adam: a link sent to Ana is refused, a shared address's link is his to use.
    (for_ana,) = links(db_dsn, second, Target("email", ANA_MAIL, 0))
    (shared,) = links(db_dsn, second, Target("webhook", HOOK, 0))
    client.cookies.set(COOKIE, issue_token(db_dsn, adam.user_id, kind="dashboard"))
    form = {"comment": "Acknowledged from webhook", "alert_id": str(second)}
    refused = client.post(f"/ack/{for_ana}", data=form)
    assert refused.status_code == 403 and f"this link was sent to {ana.username}" in refused.text
    assert "logged in as" in client.get(f"/ack/{shared}").text
    assert client.post(f"/ack/{shared}", data=form).status_code == 200
    assert state(db_dsn, second) == "acknowledged"


def test_the_access_log_never_shows_a_link_s_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5", "GET", "/ack/abcDEF123", "1.1", 200), None,
    )  # fmt: skip
    logger = logging.getLogger("test.access")
    redact_access_log(logger)
    redact_access_log(logger)  # once
    assert len(logger.filters) == 1
    (only,) = logger.filters
    assert isinstance(only, logging.Filter) and only.filter(record)
    assert record.getMessage() == '10.0.0.1:5 - "GET /ack/<token> HTTP/1.1" 200'

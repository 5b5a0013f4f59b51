"""The acknowledgement routes over HTTP: a link with a PIN, a refusal as a 403 with its reason,
the SMS gateway's inbound webhook with its signature, and setting a PIN."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from alerts.escalation import Target
from api.app import create_app
from coldchain.settings import AlertsSettings, Settings
from security.roles import Role
from services.ack import twilio_signature
from tests.fixtures.auth import Person
from tests.services.test_ack import ANA_MAIL, ANA_PHONE, PIN, links, seed_alerts, sms_link

pytestmark = pytest.mark.integration

GATEWAY_TOKEN = "gateway-token-for-tests"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    a = AlertsSettings.model_validate(
        {**settings.alerts.model_dump(), "sms_inbound_token": SecretStr(GATEWAY_TOKEN)}
    )
    with TestClient(create_app(settings.model_copy(update={"alerts": a}))) as c:
        yield c


@pytest.fixture
def alerts(db_dsn: str, people: dict[Role, Person]) -> tuple[int, int]:
    """Two open alerts; Ana and Adam with contacts and a PIN each."""
    return seed_alerts(db_dsn, people)


def test_a_link_acknowledges_with_the_pin_and_a_refusal_says_why(
    client: TestClient,
    alerts: tuple[int, int],
    people: dict[str, Person],
    db_dsn: str,
) -> None:
    ana = people["operator"]
    (token,) = links(db_dsn, alerts[0], Target("email", ANA_MAIL, 0))
    body = {"username": ana.username, "pin": PIN, "comment": "on it", "alert_id": alerts[0]}
    wrong = client.post(f"/api/v1/ack/{token}", json={**body, "pin": "000000"})
    assert wrong.status_code == 403
    assert wrong.json()["reason"] == "wrong_pin"
    ok = client.post(f"/api/v1/ack/{token}", json=body)
    assert ok.status_code == 200, ok.text
    assert (ok.json()["state"], ok.json()["acked_by"]) == ("acknowledged", ana.username)
    again = client.post(f"/api/v1/ack/{token}", json=body)
    assert (again.status_code, again.json()["reason"]) == (403, "used")
    missing = client.post(f"/api/v1/ack/{token}", json={"username": ana.username, "pin": PIN})
    assert missing.status_code == 422 and "comment" in missing.text


def test_an_sms_reply_through_the_gateway_is_signed_and_answered_in_twiml(
    client: TestClient,
    alerts: tuple[int, int],
    people: dict[str, Person],
    db_dsn: str,
) -> None:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        code = sms_link(conn, alerts[0], ANA_PHONE)
    form = {"From": ANA_PHONE, "Body": f"ACK {code}", "MessageSid": "SM123"}
    url = "http://127.0.0.1:8050/api/v1/sms/inbound"  # settings.web.base_url() + the path
    forged = client.post(
        "/api/v1/sms/inbound",
        content=urlencode(form),
        headers={**FORM, "X-Twilio-Signature": twilio_signature("not-the-token", url, form)},
    )
    assert forged.status_code == 403
    signed = client.post(
        "/api/v1/sms/inbound",
        content=urlencode(form),
        headers={**FORM, "X-Twilio-Signature": twilio_signature(GATEWAY_TOKEN, url, form)},
    )
    assert signed.status_code == 200
    assert signed.headers["content-type"].startswith("application/xml")
    assert f"acknowledged as {people['operator'].username}" in signed.text
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT state FROM alerts WHERE alert_id = %s", (alerts[0],)
        ).fetchone() == ("acknowledged",)


def test_a_person_sets_their_pin(client: TestClient, people: dict[str, Person]) -> None:
    ana = people["operator"]
    path = f"/api/v1/users/{ana.username}/ack-pin"
    assert client.put(path, json={"pin": "135791"}, headers=ana.headers).status_code == 204
    assert client.put(path, json={"pin": "1"}, headers=ana.headers).status_code == 422
    other = f"/api/v1/users/{people['admin'].username}/ack-pin"
    assert client.put(other, json={"pin": "135791"}, headers=ana.headers).status_code == 403
    assert client.put(path, json={"pin": "135791"}).status_code == 401

"""``/api/v1/notifications``: an administrator sends a test notification to a real webhook
receiver and sees the result; other roles are refused; a bad channel is a 422 naming it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from coldchain.settings import Settings
from tests.fixtures.auth import Person
from tests.fixtures.webhooks import SECRET, WebhookReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    alerts = settings.alerts.model_copy(
        update={
            "webhook_secret": SecretStr(SECRET.decode()),
            "webhook_urls": ["https://hooks.example/T0/s3cret-part"],
        }
    )
    with TestClient(create_app(settings.model_copy(update={"alerts": alerts}))) as c:
        yield c


async def test_an_administrator_sends_a_test_and_sees_the_result(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin = people["admin"].headers
    async with WebhookReceiver() as hook:
        r = await asyncio.to_thread(
            client.post,
            "/api/v1/notifications/test",
            json={"channel": "webhook", "to": hook.url},
            headers=admin,
        )
    assert r.status_code == 200, r.text
    host = hook.url.split("/hooks")[0]
    assert r.json() == [
        {
            "channel": "webhook",
            "target": f"{host}/…",
            "ok": True,
            "response": "HTTP 200 ok",
            "person": None,
        }
    ]
    assert len(hook.received) == 1

    targets = client.get("/api/v1/notifications/targets", headers=admin)
    assert targets.json() == [
        {"channel": "webhook", "target": "https://hooks.example/…", "where": "settings"}
    ]
    assert "s3cret" not in targets.text


def test_other_roles_are_refused_and_a_bad_channel_is_a_422_naming_it(
    client: TestClient, people: dict[str, Person]
) -> None:
    for role in ("viewer", "operator", "qa"):
        for r in (
            client.post(
                "/api/v1/notifications/test",
                json={"channel": "webhook", "to": "http://127.0.0.1:9/x"},
                headers=people[role].headers,
            ),
            client.get("/api/v1/notifications/targets", headers=people[role].headers),
        ):
            assert r.status_code == 403 and "'admin' permission" in r.json()["detail"]
    r = client.post(
        "/api/v1/notifications/test",
        json={"channel": "pigeon", "to": "coop 7"},
        headers=people["admin"].headers,
    )
    assert r.status_code == 422
    assert r.json()["detail"].startswith("channel:")

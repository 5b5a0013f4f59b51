"""Logging in and out of the API, token life, rate limiting, and refused input."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coldchain.settings import Settings
from tests.fixtures.auth import PASSWORD, Person, issue_token

pytestmark = pytest.mark.integration


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_gives_a_token_that_works_until_logout(
    client: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    r = _login(client, " Ana.Ruiz ", PASSWORD)  # user names are case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("cct_")
    assert body["user"] == {
        "kind": "user",
        "name": "ana.ruiz",
        "display_name": "Ana Ruiz",
        "role": "operator",
    }
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).json()["name"] == "ana.ruiz"
    assert client.get("/api/v1/shipments", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/shipments", headers=headers).status_code == 401
    with psycopg.connect(db_dsn) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE entity = 'auth' ORDER BY seq"
            ).fetchall()
        ]
    assert actions == ["login", "logout"]


def test_a_wrong_password_and_an_unknown_user_look_the_same(
    client: TestClient, people: dict[str, Person]
) -> None:
    wrong = _login(client, "ana.ruiz", "not-the-password")
    unknown = _login(client, "nobody.here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "token" not in wrong.text


def test_failed_logins_are_rate_limited(client: TestClient, people: dict[str, Person]) -> None:
    limit = 5  # COLDCHAIN_SECURITY__LOGIN_MAX_FAILURES's default
    for _ in range(limit):
        assert _login(client, "ana.ruiz", "guess").status_code == 401
    r = _login(client, "ana.ruiz", PASSWORD)  # even the right password waits now
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert _login(client, "quinn.qa", PASSWORD).status_code == 200  # other names are not locked


def test_deactivating_a_person_revokes_their_tokens(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin, vera = people["admin"].headers, people["viewer"]
    assert client.get("/api/v1/shipments", headers=vera.headers).status_code == 200
    r = client.post(f"/api/v1/users/{vera.username}/deactivate", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/shipments", headers=vera.headers).status_code == 401
    assert _login(client, vera.username, PASSWORD).status_code == 401
    r = client.post(f"/api/v1/users/{people['admin'].username}/deactivate", headers=admin)
    assert r.status_code == 409  # not yourself


def test_admins_create_people_with_a_generated_password(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin = people["admin"].headers
    r = client.post(
        "/api/v1/users",
        json={"username": "Zoe.Q", "full_name": "Zoé Quality", "role": "qa"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["user"]["username"] == "zoe.q" and len(created["password"]) >= 20
    assert _login(client, "zoe.q", created["password"]).status_code == 200
    again = client.post(
        "/api/v1/users", json={"username": "zoe.q", "full_name": "Z", "role": "qa"}, headers=admin
    )
    assert again.status_code == 409
    weak = client.post(
        "/api/v1/users",
        json={"username": "weak", "full_name": "W", "role": "viewer", "password": "short"},
        headers=admin,
    )
    assert weak.status_code == 422 and "12 characters" in weak.json()["detail"]
    users = client.get("/api/v1/users", headers=admin).json()
    assert "password_hash" not in str(users)


def test_expired_tokens_and_dashboard_sessions_are_not_bearer_tokens(
    client: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    expired = issue_token(db_dsn, people["viewer"].user_id, hours=-1)
    assert (
        client.get("/api/v1/shipments", headers={"Authorization": f"Bearer {expired}"}).status_code
        == 401
    )
    session = issue_token(db_dsn, people["viewer"].user_id, kind="dashboard")
    assert (
        client.get("/api/v1/shipments", headers={"Authorization": f"Bearer {session}"}).status_code
        == 401
    )


def test_oversized_bodies_are_refused_before_anyone_reads_them(
    client: TestClient, people: dict[str, Person], settings: Settings
) -> None:
    big = b'{"comment": "' + b"x" * settings.security.max_body_bytes + b'"}'
    headers = {**people["operator"].headers, "Content-Type": "application/json"}
    r = client.post("/api/v1/alerts/1/acknowledge", content=big, headers=headers)
    assert r.status_code == 413

    def chunks():  # no Content-Length: refused while it streams in
        for _ in range(settings.security.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    r = client.post("/api/v1/alerts/1/acknowledge", content=chunks(), headers=headers)
    assert r.status_code == 413
    r = client.post("/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_values_the_database_cannot_take_are_a_422_not_a_500(
    client: TestClient, people: dict[str, Person]
) -> None:
    headers = people["viewer"].headers
    assert client.get("/api/v1/shipments/SHP%00X", headers=headers).status_code == 422
    assert (
        client.get("/api/v1/alerts", params={"offset": 2**70}, headers=headers).status_code == 422
    )
    assert (
        client.get("/api/v1/shipments", params={"q": "a\x00b"}, headers=headers).status_code == 422
    )

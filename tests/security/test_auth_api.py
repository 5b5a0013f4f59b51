"""Logging in and out of the API, token life, rate limiting, and refused input."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.settings import Settings
from tests.fixtures.auth import PASSWORD, Person, issue_token
from tests.fixtures.web import LiveServer

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


def test_forty_parallel_wrong_passwords_check_at_most_the_limit(
    web_server: LiveServer, people: dict[str, Person], db_dsn: str
) -> None:
    # Issue 11 point 10: the check came before the count, so 12 of 40 were checked (limit 5).
    limit = web_server.settings.security.login_max_failures
    start = threading.Barrier(40)

    def guess(i: int) -> int:
        start.wait()
        for _ in range(20):
            r = httpx.post(
                f"{web_server.url}/api/v1/auth/login",
                json={"username": "ana.ruiz", "password": f"guess-{i}"},
                timeout=60,
            )
            if r.status_code != 503:
                return r.status_code
            # On a loaded machine the checked attempts' password hashing holds the admission
            # slots past the queue's timeout: the others are turned away before the login is
            # counted, and a client comes back after Retry-After, as this one does.
            time.sleep(float(r.headers["Retry-After"]))
        raise AssertionError(f"guess {i}: still 503 after 20 tries")

    with ThreadPoolExecutor(40) as pool:
        codes = Counter(pool.map(guess, range(40)))
    assert codes == {401: limit, 429: 40 - limit}
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'login_failed'"
        ).fetchone()
    assert row is not None and row[0] == limit  # only those were checked (and audited)


def test_failures_from_a_shared_address_do_not_lock_the_admin_out(
    settings: Settings, people: dict[str, Person]
) -> None:
    # Issue 11 point 15: 20 failures from one address locked out everyone behind it for the
    # whole window. Now the address is throttled (one attempt per window / 20) and only the
    # account attacked is locked, at that address.
    window = 20.0  # so a turn comes every second (20 s / (5 × 4))
    quick = settings.model_copy(
        update={"security": settings.security.model_copy(update={"login_window_s": window})}
    )
    with TestClient(create_app(quick)) as nat:  # every request from the same address
        for i in range(20):  # credential stuffing: one guess at each of 20 accounts
            assert _login(nat, f"someone{i}", "guess").status_code == 401
        for _ in range(5):
            assert _login(nat, "ana.ruiz", "guess").status_code in (401, 429)
        admin = people["admin"].username
        r = _login(nat, admin, PASSWORD)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) <= 1  # a turn in a second, not in 20 s
        time.sleep(1.1)
        assert _login(nat, admin, PASSWORD).status_code == 200
        time.sleep(1.1)
        # ana.ruiz had failures at this address, below her lock: the right password works.
        assert _login(nat, "ana.ruiz", PASSWORD).status_code == 200


def test_an_admin_changes_a_role_reactivates_and_resets_a_password(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin = people["admin"].headers
    vera = people["viewer"]
    r = client.post(f"/api/v1/users/{vera.username}/role", json={"role": "operator"},
                    params={"reason": "on call now"}, headers=admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["role"] == "operator", r.text
    me = client.get("/api/v1/auth/me", headers=vera.headers).json()
    assert me["role"] == "operator"
    r = client.post(f"/api/v1/users/{vera.username}/reactivate", headers=admin)
    assert r.status_code == 409 and "active already" in r.json()["detail"]
    r = client.post(f"/api/v1/users/{vera.username}/password", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["password"], r.text
    assert client.get("/api/v1/auth/me", headers=vera.headers).status_code == 401
    assert _login(client, vera.username, r.json()["password"]).status_code == 200
    users = {u["username"]: u for u in client.get("/api/v1/users", headers=admin).json()}
    assert users[vera.username]["last_login_at"] is not None
    assert users[people["qa"].username]["last_login_at"] is not None  # the fixture's token

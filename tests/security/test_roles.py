"""Who may call what: every endpoint tried with every role, an API key, and no credentials.

The table below is the specification (README "Security", roles matrix); it is written out here
rather than derived from security.roles, so a change of the code's matrix shows up as a failing
row. Routes not in the table (added later by other features) are checked against the default:
authentication always; GET for every role; anything else for admins only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.auth import PASSWORD, Person, add_api_key

pytestmark = pytest.mark.integration

ALL = {"viewer", "operator", "qa", "admin"}
WHO: dict[str, set[str]] = {
    "read": ALL,
    "alerts.act": {"operator", "admin"},
    "dispositions.sign": {"qa"},
    "recalls.record": {"qa"},
    "audit.read": {"qa", "admin"},
    "admin": {"admin"},
    "shipments.manage": {"operator", "admin"},
}

# method, path (with {placeholders} filled from the fleet), permission, JSON body
MATRIX: list[tuple[str, str, str, Any]] = [
    ("GET", "/api/v1/shipments", "read", None),
    ("GET", "/api/v1/shipments/{shipment}", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/readings", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/excursions", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/report.json", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/report.csv", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/report.pdf", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/dispositions", "read", None),
    (
        "POST",
        "/api/v1/shipments/{shipment}/dispositions",
        "dispositions.sign",
        {
            "decision": "release",
            "reason": "ok",
            "as_of": "2026-01-01T00:00:00Z",
            "report_hash": "0" * 64,
            "password": PASSWORD,
        },
    ),
    ("GET", "/api/v1/excursions?shipment={shipment}", "read", None),
    ("GET", "/api/v1/recalls", "read", None),
    ("GET", "/api/v1/recalls?gtin={gtin}&lot=L1", "read", None),
    (
        "POST",
        "/api/v1/recalls",
        "recalls.record",
        {"gtin": "{gtin}", "lot": "L-{role}", "reason": "stability failure"},
    ),
    (
        "POST",
        "/api/v1/shipments",
        "shipments.manage",
        {"reference": "BOOK-{role}", "origin": "Basel", "destination": "Milan"},
    ),
    ("GET", "/api/v1/shipments/{shipment}/booking", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/timeline", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/verdicts", "read", None),
    ("POST", "/api/v1/shipments/{shipment}/loggers", "shipments.manage", {"device_id": "{device}"}),
    ("POST", "/api/v1/shipments/{shipment}/cancel", "shipments.manage", {"reason": "test"}),
    (
        "POST",
        "/api/v1/shipments/arrivals",
        "shipments.manage",
        {"scan": "(00)037612345000000090", "gln": "8000000000019"},
    ),
    ("GET", "/api/v1/qa/queue", "read", None),
    ("GET", "/api/v1/devices", "read", None),
    ("GET", "/api/v1/devices/{device}", "read", None),
    ("GET", "/api/v1/devices/{device}/readings", "read", None),
    ("GET", "/api/v1/products", "read", None),
    ("GET", "/api/v1/products/{gtin}", "read", None),
    ("GET", "/api/v1/products/{gtin}/rules", "read", None),
    ("GET", "/api/v1/products/{gtin}/rules/versions", "read", None),
    ("PUT", "/api/v1/products/{gtin}/rules?reason=why", "admin", {"temperature": {}}),
    ("GET", "/api/v1/shipments/{shipment}/rules", "read", None),
    ("GET", "/api/v1/shipments/{shipment}/rules/versions", "read", None),
    ("PUT", "/api/v1/shipments/{shipment}/rules?reason=why", "admin", {"temperature": {}}),
    ("GET", "/api/v1/alerts", "read", None),
    ("GET", "/api/v1/alerts/{alert}", "read", None),
    ("POST", "/api/v1/alerts/{alert}/acknowledge", "alerts.act", {"comment": "on it"}),
    ("POST", "/api/v1/alerts/{alert}/assign", "alerts.act", {"assignee": "ana.ruiz"}),
    ("POST", "/api/v1/alerts/{alert}/resolve", "alerts.act", {"comment": "done"}),
    ("GET", "/api/v1/users", "admin", None),
    (
        "POST",
        "/api/v1/users",
        "admin",
        {"username": "new.{role}", "full_name": "New Person", "role": "viewer"},
    ),
    ("POST", "/api/v1/users/nobody/deactivate", "admin", None),
    ("POST", "/api/v1/users/nobody/reactivate", "admin", None),
    ("POST", "/api/v1/users/nobody/role", "admin", {"role": "viewer"}),
    ("POST", "/api/v1/users/nobody/password", "admin", {}),
    ("GET", "/api/v1/api-keys", "admin", None),
    ("POST", "/api/v1/api-keys", "admin", {"name": "feed-{role}", "role": "viewer"}),
    ("POST", "/api/v1/api-keys/none/revoke", "admin", None),
    ("GET", "/api/v1/audit", "audit.read", None),
    ("GET", "/api/v1/audit/verify", "audit.read", None),
    ("POST", "/api/v1/ask", "read", {"question": "status of {shipment}?"}),
    ("GET", "/api/v1/ask/log", "admin", None),
]


def _call(client: TestClient, method: str, url: str, body: Any, headers: dict[str, str]) -> int:
    return client.request(method, url, json=body, headers=headers).status_code


def _fill(template: str, fleet: dict[str, Any], role: str) -> str:
    return template.format(role=role, **{k: v for k, v in fleet.items() if k != "role"})


@pytest.mark.parametrize(
    ("method", "path", "permission", "body"), MATRIX, ids=lambda v: str(v)[:60]
)
def test_each_role_against_each_endpoint(
    client: TestClient,
    fleet: dict[str, Any],
    people: dict[str, Person],
    method: str,
    path: str,
    permission: str,
    body: Any,
) -> None:
    url = _fill(path, fleet, "anon")
    assert _call(client, method, url, body, {}) == 401, "no credentials must be refused"
    bad = {"Authorization": "Bearer cct_not-a-real-token"}
    assert _call(client, method, url, body, bad) == 401, "an unknown token must be refused"
    wrong = []
    for role, person in people.items():
        url = _fill(path, fleet, role)
        filled = (
            None
            if body is None
            else {k: _fill(v, fleet, role) if isinstance(v, str) else v for k, v in body.items()}
        )
        status = _call(client, method, url, filled, person.headers)
        allowed = role in WHO[permission]
        if allowed and status in (401, 403):
            wrong.append(f"{role}: refused with {status}, should be allowed")
        if not allowed and status != 403:
            wrong.append(f"{role}: got {status}, should be 403")
        if not allowed and 200 <= status < 300:
            wrong.append(f"{role}: a refused role got a 2xx")
    assert wrong == [], f"{method} {path}: " + "; ".join(wrong)


def _template(path: str) -> str:
    """A MATRIX path as its OpenAPI path template."""
    path = re.sub(r"\?.*", "", path)
    path = re.sub(r"report\.(json|csv|pdf)$", "report.{fmt}", path)
    for name, param in (("shipment", "key"), ("alert", "alert_id"), ("device", "device_id")):
        path = path.replace("{" + name + "}", "{" + param + "}")
    return path.replace("/users/nobody/", "/users/{username}/").replace(
        "/api-keys/none/", "/api-keys/{name}/"
    )


def test_every_protected_route_is_closed_by_default(
    client: TestClient, fleet: dict[str, Any], people: dict[str, Person]
) -> None:
    """Every route under /api/v1 (including ones other features add) needs credentials and
    documents who may call it; the routes outside the table follow the default rule."""
    paths = client.get("/api/openapi.json").json()["paths"]
    in_table = {(m, _template(p)) for m, p, _, _ in MATRIX}
    # Login, and what carries its own proof: a one-time link's token with a PIN, the SMS
    # gateway's signature (tests/api/test_ack_api.py).
    public = {
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/ack/{token}"),
        ("POST", "/api/v1/sms/inbound"),
    }
    seen = set()
    for path, operations in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in operations.items():
            method = method.upper()
            seen.add((method, path))
            if (method, path) in public:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            assert client.request(method, url).status_code == 401, f"{method} {path}"
            if path.startswith("/api/v1/auth/") or (method, path) in in_table:
                continue
            assert op.get("x-permission") and op.get("x-roles"), f"{method} {path} undocumented"
            viewer = client.request(method, url, headers=people["viewer"].headers).status_code
            if "viewer" in op["x-roles"]:
                assert viewer not in (401, 403), f"{method} {path}: viewer got {viewer}"
            else:
                assert viewer == 403, f"{method} {path}: viewer got {viewer}"
            if method != "GET" and op["x-permission"] == "admin":
                assert op["x-roles"] == ["admin"]
    # the table names real routes only (a stale row would test nothing)
    assert in_table - seen == set()


def test_api_keys_carry_their_role_and_die_when_revoked(
    client: TestClient, db_dsn: str, fleet: dict[str, Any], people: dict[str, Person]
) -> None:
    key = add_api_key(db_dsn, "wms-feed", "viewer")
    headers = {"X-API-Key": key}
    assert client.get("/api/v1/shipments", headers=headers).status_code == 200
    # also as a bearer token
    assert (
        client.get("/api/v1/shipments", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    r = client.post(f"/api/v1/alerts/{fleet['alert']}/acknowledge", json={}, headers=headers)
    assert r.status_code == 403
    assert client.get("/api/v1/auth/me", headers=headers).json() == {
        "kind": "api_key",
        "name": "wms-feed",
        "display_name": "API key wms-feed",
        "role": "viewer",
    }
    admin = people["admin"].headers
    assert client.post("/api/v1/api-keys/wms-feed/revoke", headers=admin).status_code == 200
    assert client.get("/api/v1/shipments", headers=headers).status_code == 401
    # a new key through the API: shown once, works at once
    r = client.post("/api/v1/api-keys", json={"name": "robot", "role": "operator"}, headers=admin)
    assert r.status_code == 201, r.text
    robot = {"X-API-Key": r.json()["key"]}
    ack = client.post(
        f"/api/v1/alerts/{fleet['alert']}/acknowledge", json={"comment": "auto"}, headers=robot
    )
    assert ack.status_code == 200 and ack.json()["acked_by"] == "apikey:robot"
    keys = client.get("/api/v1/api-keys", headers=admin).json()
    assert all("key" not in k and "key_hash" not in k for k in keys)
    r = client.post("/api/v1/api-keys", json={"name": "signer", "role": "qa"}, headers=admin)
    assert r.status_code == 422  # machines never sign

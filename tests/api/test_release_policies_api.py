"""``/release-policies`` over HTTP on the real database: only QA signs, with their password;
creation is idempotent by scope (the same reason: 200, another: 409); revocation needs
``If-Match`` (428 without, 412 stale) and is signed too; every step is in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from tests.fixtures.auth import Person
from tests.fixtures.web import gtin

pytestmark = pytest.mark.integration

API = "/api/v1"
PRODUCT = gtin("0950600077001")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def lane_id(client: TestClient, people: dict[str, Person]) -> int:
    """A product and a lane between two sites, registered through the API as an admin."""
    admin = people["admin"].headers
    r = client.post(f"{API}/products", json={"gtin": PRODUCT, "name": "Vaxigrip",
                    "temp_min_c": 2, "temp_max_c": 8}, headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    ends = []
    for body, name in (("409876500011", "DC Basel"), ("409876500012", "Hospital Bern")):
        site = {"gln": body + str(check_digit(body)), "name": name, "lat": 47.0, "lon": 7.5,
                "geofence_m": 200}  # fmt: skip
        r = client.post(f"{API}/locations", json=site, headers=admin)
        assert r.status_code == 201, r.text
        ends.append(r.json()["location_id"])
    r = client.post(f"{API}/lanes", json={"code": "BSL-BRN", "origin_location_id": ends[0],
                    "destination_location_id": ends[1], "mode": "road"}, headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["lane_id"])


def sign(qa: Person, **scope: Any) -> dict[str, Any]:
    return {**scope, "reason": "stability study QS-12", "password": qa.password}


def test_qa_signs_a_policy_and_a_retry_returns_it(
    client: TestClient, people: dict[str, Person], lane_id: int
) -> None:
    qa = people["qa"]
    r = client.post(f"{API}/release-policies", json=sign(qa, gtin=PRODUCT), headers=qa.headers)
    assert r.status_code == 201, r.text
    policy = r.json()
    assert r.headers["ETag"] == f'"{policy["version"]}"'
    assert (policy["gtin"], policy["lane_id"], policy["active"]) == (PRODUCT, None, True)
    assert (policy["signer_username"], policy["signer_name"], policy["signer_role"]) == (
        qa.username,
        qa.full_name,
        "qa",
    )
    assert policy["reason"] == "stability study QS-12" and policy["releases"] == 0
    assert len(policy["signature_hash"]) == 64
    assert [e["event"] for e in policy["events"]] == ["created"]

    again = client.post(f"{API}/release-policies", json=sign(qa, gtin=PRODUCT), headers=qa.headers)
    assert again.status_code == 200, again.text
    assert again.json()["policy_id"] == policy["policy_id"]
    assert again.json()["signature_hash"] == policy["signature_hash"]  # not signed twice

    other = {**sign(qa, gtin=PRODUCT), "reason": "another study"}
    occupied = client.post(f"{API}/release-policies", json=other, headers=qa.headers)
    assert occupied.status_code == 409, occupied.text
    assert str(policy["policy_id"]) in occupied.json()["detail"]

    # A lane is another scope: its own policy.
    by_lane = client.post(
        f"{API}/release-policies", json=sign(qa, lane_id=lane_id), headers=qa.headers
    )
    assert by_lane.status_code == 201, by_lane.text
    listed = client.get(f"{API}/release-policies", params={"active": "true"}, headers=qa.headers)
    assert [p["policy_id"] for p in listed.json()] == [
        policy["policy_id"],
        by_lane.json()["policy_id"],
    ]
    viewer = people["viewer"].headers
    got = client.get(f"{API}/release-policies/{policy['policy_id']}", headers=viewer)
    assert got.status_code == 200 and got.headers["ETag"] == f'"{policy["version"]}"'

    trail = client.get(f"{API}/audit", params={"entity": "release_policies"}, headers=qa.headers)
    inserts = [e for e in trail.json()["items"] if e["action"] == "insert"]
    assert sorted(e["entity_id"] for e in inserts) == sorted(
        str(p) for p in (policy["policy_id"], by_lane.json()["policy_id"])
    )
    assert all(e["actor"] == qa.username and "QS-12" in e["reason"] for e in inserts)


def test_a_scope_names_one_existing_product_or_lane(
    client: TestClient, people: dict[str, Person], lane_id: int
) -> None:
    qa = people["qa"]
    cases: list[tuple[dict[str, Any], str]] = [
        (sign(qa, gtin=PRODUCT, lane_id=lane_id), "gtin"),  # both
        (sign(qa), "gtin"),  # neither
        (sign(qa, gtin=gtin("0950600077999")), "gtin"),  # no such product
        (sign(qa, lane_id=lane_id + 100), "lane_id"),  # no such lane
        (sign(qa, gtin="123"), "gtin"),  # not a GTIN-14
        ({**sign(qa, gtin=PRODUCT), "reason": "   "}, "reason"),
    ]
    for body, field in cases:
        r = client.post(f"{API}/release-policies", json=body, headers=qa.headers)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (body, r.text)
    assert client.get(f"{API}/release-policies", headers=qa.headers).json() == []


def test_revoking_needs_if_match_and_is_signed(
    client: TestClient, people: dict[str, Person], lane_id: int
) -> None:
    qa = people["qa"]
    policy = client.post(
        f"{API}/release-policies", json=sign(qa, gtin=PRODUCT), headers=qa.headers
    ).json()
    url = f"{API}/release-policies/{policy['policy_id']}/revoke"
    body = {"reason": "study QS-12 superseded", "password": qa.password}

    assert client.post(url, json=body, headers=qa.headers).status_code == 428
    stale = client.post(url, json=body, headers={**qa.headers, "If-Match": '"7"'})
    assert stale.status_code == 412, stale.text
    wrong = {**body, "password": "not-the-password"}
    refused = client.post(url, json=wrong, headers={**qa.headers, "If-Match": '"1"'})
    assert refused.status_code == 401, refused.text
    assert client.get(f"{API}/release-policies/{policy['policy_id']}", headers=qa.headers).json()[
        "active"
    ]

    r = client.post(url, json=body, headers={**qa.headers, "If-Match": f'"{policy["version"]}"'})
    assert r.status_code == 200, r.text
    revoked = r.json()
    assert revoked["active"] is False and revoked["version"] == policy["version"] + 1
    assert r.headers["ETag"] == f'"{revoked["version"]}"'
    assert (revoked["revoked_by_username"], revoked["revoke_reason"]) == (
        qa.username,
        "study QS-12 superseded",
    )
    assert revoked["revoke_signature_hash"] not in (None, revoked["signature_hash"])
    assert [e["event"] for e in revoked["events"]] == ["created", "revoked"]

    twice = client.post(
        url, json=body, headers={**qa.headers, "If-Match": f'"{revoked["version"]}"'}
    )
    assert twice.status_code == 409, twice.text
    # The scope is free again: a new policy, not the old one brought back.
    fresh = client.post(f"{API}/release-policies", json=sign(qa, gtin=PRODUCT), headers=qa.headers)
    assert fresh.status_code == 201 and fresh.json()["policy_id"] != policy["policy_id"]
    assert (
        client.get(
            f"{API}/release-policies", params={"active": "false"}, headers=qa.headers
        ).json()[0]["policy_id"]
        == policy["policy_id"]
    )


def test_only_qa_signs_and_only_with_their_password(
    client: TestClient, people: dict[str, Person], lane_id: int
) -> None:
    qa = people["qa"]
    for role in ("viewer", "operator", "admin"):
        person = people[role]
        r = client.post(
            f"{API}/release-policies", json=sign(person, gtin=PRODUCT), headers=person.headers
        )
        assert r.status_code == 403, (role, r.text)
    assert client.post(f"{API}/release-policies", json=sign(qa, gtin=PRODUCT)).status_code == 401

    wrong = {**sign(qa, gtin=PRODUCT), "password": "not-the-password"}
    r = client.post(f"{API}/release-policies", json=wrong, headers=qa.headers)
    assert r.status_code == 401, r.text
    empty = {**sign(qa, gtin=PRODUCT), "password": ""}
    r = client.post(f"{API}/release-policies", json=empty, headers=qa.headers)
    assert r.status_code == 422 and "password" in r.text
    assert client.get(f"{API}/release-policies", headers=qa.headers).json() == []

    policy = client.post(
        f"{API}/release-policies", json=sign(qa, gtin=PRODUCT), headers=qa.headers
    ).json()
    url = f"{API}/release-policies/{policy['policy_id']}/revoke"
    for role in ("viewer", "operator", "admin"):
        person = people[role]
        r = client.post(
            url,
            json={"reason": "not mine to revoke", "password": person.password},
            headers={**person.headers, "If-Match": '"1"'},
        )
        assert r.status_code == 403, (role, r.text)
    assert client.get(f"{API}/release-policies/{policy['policy_id']}", headers=qa.headers).json()[
        "active"
    ]
    missing = client.post(
        f"{API}/release-policies/999999/revoke",
        json={"reason": "x", "password": qa.password},
        headers={**qa.headers, "If-Match": '"1"'},
    )
    assert missing.status_code == 404, missing.text

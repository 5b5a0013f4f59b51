"""The issue's rule through the API (issue 11, point 9): 422 naming the field, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_rules_api import WHY, _audit, _stored, client, scopes  # noqa: F401  # fixtures, registered here

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("definition", "says"),
    [
        ({"offline": {"minutes": 52447204075659910}}, "offline.minutes: Input should be less"),
        ({"budget": {"hours": 1e13}}, "budget.hours: Input should be less"),
        ({"temperature": {"high_c": 1e300}}, "temperature.high_c: Input should be less"),
        ({"offline": {"factor": 1e20}}, "offline.factor: Input should be less"),
    ],
)
def test_a_rule_the_engine_cannot_compute_with_is_a_422_naming_the_field(
    client: TestClient,  # noqa: F811
    db_dsn: str,
    scopes: dict[str, Any],  # noqa: F811
    definition: dict[str, Any],
    says: str,
) -> None:
    for url in (
        f"/api/v1/products/{scopes['gtin']}/rules",
        f"/api/v1/shipments/{scopes['shipment']}/rules",
    ):
        r = client.put(url, params={"reason": WHY}, json=definition)
        assert r.status_code == 422, r.text
        assert says in r.json()["detail"], r.json()["detail"]
    assert _stored(db_dsn) == [] and _audit(db_dsn) == []

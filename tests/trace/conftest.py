"""The track-and-trace API with our multi-leg scenario imported through it (tests/trace/scenario.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.settings import Settings
from tests.fixtures.auth import Person
from tests.trace.scenario import Scenario, scenario_document, seed_rows


@pytest.fixture
def client(settings: Settings, people: dict[str, Person]) -> Iterator[TestClient]:
    """The API as a viewer (logistics, a pharmacy's scanner): reads and verifies."""
    with TestClient(create_app(settings)) as c:
        c.headers.update(people["viewer"].headers)
        yield c


@pytest.fixture
def admin(people: dict[str, Person]) -> dict[str, str]:
    """Headers of the administrator, who may import EPCIS documents."""
    return people["admin"].headers


@pytest.fixture
def seeded(db_dsn: str, client: TestClient, admin: dict[str, str]) -> Scenario:
    """The scenario's rows, and its EPCIS document imported through the API."""
    s = seed_rows(db_dsn)
    r = client.post(
        "/api/v1/epcis/events",
        content=json.dumps(scenario_document(s)),
        headers={"content-type": "application/ld+json"} | admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["n_new"] == 11
    return s

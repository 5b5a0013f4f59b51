"""GET /api/v1/insight/… say what the services compute, to every role; the weekly report
downloads; subscriptions keep to their person."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.settings import Settings
from db.types import Conn
from security.roles import ROLES
from services import insight
from tests.fixtures.auth import Person
from tests.insight.history import LANE_A, LANE_A_SHIPMENTS, LANE_B, seed_history

API = "/api/v1/insight"


@pytest.fixture
def app(settings: Settings, db_dsn: str) -> Iterator[TestClient]:
    seed_history(db_dsn)
    with TestClient(create_app(settings)) as c:
        yield c


def test_every_role_reads_what_the_service_computes(
    app: TestClient, people: dict[str, Person], conn: Conn
) -> None:
    want = [r.to_dict() for r in insight.lane_risk(conn)]
    for role in ROLES:
        got = app.get(f"{API}/lanes", headers=people[role].headers)
        assert got.status_code == 200, role
        assert [r["lane"] for r in got.json()] == [r["lane"] for r in want]
    body = app.get(f"{API}/lanes", headers=people["viewer"].headers).json()
    for got_lane, want_lane in zip(body, want, strict=True):
        assert got_lane["score"] == pytest.approx(want_lane["score"])
        assert got_lane["note"] == want_lane["note"]
    one = app.get(f"{API}/lanes/{LANE_B}", headers=people["viewer"].headers).json()
    assert one["score"] is None and "needs 5" in one["note"]
    months = app.get(f"{API}/lanes/{LANE_A}/months", headers=people["viewer"].headers).json()
    assert sum(m["shipments"] for m in months) == len(LANE_A_SHIPMENTS)
    cards = app.get(f"{API}/carriers", params={"lane": LANE_A}, headers=people["qa"].headers)
    assert {c["carrier"] for c in cards.json()} == {
        c.carrier for c in insight.carrier_scores(conn, lane=LANE_A)
    }


def test_errors_name_what_was_wrong(app: TestClient, people: dict[str, Person]) -> None:
    h = people["viewer"].headers
    assert app.get(f"{API}/lanes/NOPE", headers=h).status_code == 404
    bad = app.get(
        f"{API}/lanes",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=h,
    )
    assert bad.status_code == 422 and "until" in bad.json()["detail"]
    week = app.get(f"{API}/report.csv", params={"lane": LANE_A, "week": "soon"}, headers=h)
    assert week.status_code == 422 and "week" in week.json()["detail"]
    assert app.get(f"{API}/lanes").status_code == 401


def test_the_report_downloads_and_subscriptions_keep_to_their_person(
    app: TestClient, people: dict[str, Person]
) -> None:
    viewer, admin = people["viewer"].headers, people["admin"].headers
    first = LANE_A_SHIPMENTS[0].arrived_at
    assert first is not None
    got = app.get(
        f"{API}/report.csv",
        params={"lane": LANE_A, "week": first.date().isoformat()},
        headers=viewer,
    )
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert {r["section"] for r in rows} == {"lane", "carrier"}
    pdf = app.get(f"{API}/report.pdf", params={"carrier": "SkyCargo"}, headers=viewer)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    made = app.post(
        f"{API}/subscriptions", json={"lane": LANE_A, "email": "v@example.org"}, headers=viewer
    )
    assert made.status_code == 200 and made.json()["username"] == people["viewer"].username
    other = app.post(
        f"{API}/subscriptions",
        json={"carrier": "SkyCargo", "email": "x@example.org", "username": "nobody"},
        headers=viewer,
    )
    assert other.status_code == 403
    both = app.post(
        f"{API}/subscriptions",
        json={"lane": LANE_A, "carrier": "SkyCargo", "email": "v@example.org"},
        headers=viewer,
    )
    assert both.status_code == 422
    assert app.get(f"{API}/subscriptions", params={"all": True}, headers=viewer).status_code == 403
    assert len(app.get(f"{API}/subscriptions", params={"all": True}, headers=admin).json()) == 1
    sid = made.json()["subscription_id"]
    ended = app.delete(f"{API}/subscriptions/{sid}", headers=admin)
    assert ended.status_code == 200 and ended.json()["active"] is False

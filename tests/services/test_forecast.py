"""Forecasts of shipments in transit against the real database (services/forecast.py) and
through the API (GET /api/v1/shipments/{key}/forecast): the figures match a hand computation
over the seeded history."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.forecast.model import MIN_HISTORY
from coldchain.settings import Settings
from db.types import Conn
from services import forecast as forecast_s
from tests.fixtures.auth import Person
from tests.fixtures.forecast import NOW, PAST, H, seed_lane_history


def test_forecast_from_the_lane_history_matches_a_hand_computation(conn: Conn) -> None:
    ids = seed_lane_history(conn, n_past=len(PAST))
    sid, f = forecast_s.forecast(conn, key="LIVE", now=NOW, trend_weight=0.5)
    assert sid == ids["LIVE"] and f is not None
    assert f.basis == "history" and f.history_n == len(PAST) and f.lane == "L-HIST"
    # No position: by elapsed time (5 h); every past trip was longer than 5 h.
    remaining = [h - 5 for h, _ in PAST]
    assert f.eta == NOW + statistics.median(remaining) * H
    progress = 5 / (5 + statistics.median(remaining))
    assert f.progress == pytest.approx(progress)
    # Comparable: no excursion starting by this progress; a hit: one starting after it.
    clean = [(h, ex) for h, ex in PAST if not any(a / h <= progress for a, _ in ex)]
    hits = [1 for h, ex in clean if any(progress < a / h < 1 for a, _ in ex)]
    assert f.excursion_chance == pytest.approx(len(hits) / len(clean))
    # Budget 2 h, nothing used: no past trip spent 2 h out of range after this point.
    assert f.budget_left_s == 7200 and f.budget_chance == 0.0


def test_the_engine_s_predicted_breach_and_a_position_count(conn: Conn) -> None:
    ids = seed_lane_history(conn, n_past=len(PAST))
    params = {"id": ids["LIVE"], "t": NOW - 5 * H, "now": NOW, "breach": NOW + H}
    for statement in (
        "INSERT INTO devices (device_id) VALUES ('LOG-LIVE')",
        "INSERT INTO device_assignments (device_id, shipment_id, during)"
        " VALUES ('LOG-LIVE', %(id)s, tstzrange(%(t)s, NULL))",
        "INSERT INTO device_state (device_id, ts, temp_c, lat, lon, received_at)"
        " VALUES ('LOG-LIVE', %(now)s, 7.5, 0, 1.5, %(now)s)",
        "INSERT INTO alerts (shipment_id, rule_key, severity, title, triggered_at, details)"
        " VALUES (%(id)s, 'predicted_breach', 'warning', 'trend', %(now)s,"
        "         jsonb_build_object('predicted_breach_at', %(breach)s::timestamptz))",
    ):
        conn.execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})
    f = forecast_s.fleet_forecasts(conn, now=NOW, trend_weight=0.5)[ids["LIVE"]]
    assert f.progress_basis == "position" and f.progress == pytest.approx(0.75, abs=1e-6)
    assert f.eta == NOW + statistics.median(h * 0.25 for h, _ in PAST) * H
    assert f.trend_breach_at == NOW + H and f.trend_counts
    assert f.excursion_history is not None and f.excursion_chance is not None
    assert f.excursion_chance == pytest.approx(1 - (1 - f.excursion_history) * 0.5)


def test_too_little_history_says_so(conn: Conn) -> None:
    seed_lane_history(conn, n_past=MIN_HISTORY - 1)
    _, f = forecast_s.forecast(conn, key="LIVE", now=NOW, trend_weight=0.5)
    assert f is not None and f.basis == "plan" and f.eta == NOW + 6 * H
    assert f.excursion_chance is None
    assert f"has {MIN_HISTORY - 1} finished shipments" in f.notes[0]


@pytest.fixture
def client(settings: Settings, people: dict[str, Person]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        c.headers.update(people["viewer"].headers)
        yield c


def test_the_api_answers_the_same_forecast_to_a_viewer(conn: Conn, client: TestClient) -> None:
    ids = seed_lane_history(conn, n_past=len(PAST))
    body = client.get("/api/v1/shipments/LIVE/forecast").json()
    assert body["shipment_id"] == ids["LIVE"]
    assert body["forecast"]["history_n"] == len(PAST)
    assert body["forecast"]["min_history"] == MIN_HISTORY
    assert body["forecast"]["basis"] == "history"
    arrived = client.get("/api/v1/shipments/PAST-0/forecast").json()
    assert arrived["forecast"] is None and "not in transit" in arrived["reason"]
    assert client.get("/api/v1/shipments/NOPE/forecast").status_code == 404

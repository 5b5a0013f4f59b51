"""Forecasts of shipments in transit against the real database (services/forecast.py) and
through the API (GET /api/v1/shipments/{key}/forecast): the figures match a hand computation
over the seeded history."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.forecast.model import MIN_HISTORY
from coldchain.settings import Settings
from db.types import Conn
from services import forecast as forecast_s
from tests.fixtures.auth import Person
from tests.fixtures.data import VACCINE_GTIN

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)
# Past trips of lane L-HIST: hours in transit and excursions (start, end) in hours from start.
PAST = [
    (10.0, [(2.0, 3.0)]),
    (11.0, [(7.0, 8.5)]),
    (12.0, []),
    (9.0, [(6.0, 6.5), (8.0, 8.5)]),
    (13.0, []),
    (10.5, []),
]


def _seed(conn: Conn, *, n_past: int) -> dict[str, int]:
    conn.execute(
        "INSERT INTO products (gtin, name, temp_min_c, temp_max_c, stability_budget_s)"
        " VALUES (%s, 'Vaccine', 2, 8, 7200)",
        (VACCINE_GTIN,),
    )
    conn.execute(
        "INSERT INTO locations (location_id, name, lat, lon) VALUES"
        " ('O', 'Origin', 0, 0), ('D', 'Destination', 0, 2)"
    )
    lane = conn.execute(
        "INSERT INTO lanes (code, origin_location_id, destination_location_id, mode)"
        " VALUES ('L-HIST', 'O', 'D', 'road') RETURNING lane_id"
    ).fetchone()
    assert lane is not None
    ids: dict[str, int] = {}
    for i, (hours, excursions) in enumerate(PAST[:n_past]):
        start = NOW - timedelta(days=10 - i)
        row = conn.execute(
            "INSERT INTO shipments (reference, product_gtin, origin, destination, status, lane_id,"
            " started_at, arrived_at) VALUES (%s, %s, 'O', 'D', 'released', %s, %s, %s)"
            " RETURNING shipment_id",
            (f"PAST-{i}", VACCINE_GTIN, lane["lane_id"], start, start + hours * H),
        ).fetchone()
        assert row is not None
        for a, b in excursions:
            conn.execute(
                "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
                " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, rule_key,"
                " thresholds) VALUES (%s, 'X', 'high', %s, %s, %s, 9, 9, 60, 3, true,"
                " 'temperature', '{}')",
                (row["shipment_id"], start + a * H, start + b * H, start + b * H),
            )
    row = conn.execute(
        "INSERT INTO shipments (reference, product_gtin, origin, destination, status, lane_id,"
        " started_at, planned_arrival) VALUES ('LIVE', %s, 'O', 'D', 'in_transit', %s, %s, %s)"
        " RETURNING shipment_id",
        (VACCINE_GTIN, lane["lane_id"], NOW - 5 * H, NOW + 6 * H),
    ).fetchone()
    assert row is not None
    ids["LIVE"] = row["shipment_id"]
    return ids


def test_forecast_from_the_lane_history_matches_a_hand_computation(conn: Conn) -> None:
    ids = _seed(conn, n_past=len(PAST))
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
    ids = _seed(conn, n_past=len(PAST))
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
    _seed(conn, n_past=MIN_HISTORY - 1)
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
    ids = _seed(conn, n_past=len(PAST))
    body = client.get("/api/v1/shipments/LIVE/forecast").json()
    assert body["shipment_id"] == ids["LIVE"]
    assert body["forecast"]["history_n"] == len(PAST)
    assert body["forecast"]["min_history"] == MIN_HISTORY
    assert body["forecast"]["basis"] == "history"
    arrived = client.get("/api/v1/shipments/PAST-0/forecast").json()
    assert arrived["forecast"] is None and "not in transit" in arrived["reason"]
    assert client.get("/api/v1/shipments/NOPE/forecast").status_code == 404

"""Lane risk and carrier scores against a hand computation over the seeded history.

The platform computes from the database (SQL aggregates, percentile_cont, the leg windows in
SQL); the expected figures here are computed again from the seeded values in
:mod:`tests.insight.history` by plain Python: the readings regenerated and filtered to the
transit, ``statistics.quantiles`` for the percentiles, each excursion placed in its leg by its
start time.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import pytest

from coldchain.errors import InvalidRecordError, NotFoundError
from db.types import Conn
from services import insight
from tests.insight.history import (
    LANE_A,
    LANE_A_SHIPMENTS,
    LANE_B,
    LANE_B_SHIPMENTS,
    LEG1_H,
    Exc,
    Ship,
    seed_history,
)


@pytest.fixture
def history(db_dsn: str) -> dict[str, int]:
    return seed_history(db_dsn)


def counted(ship: Ship) -> list[float]:
    """The durations (s) of the shipment's excursions that count (current versions)."""
    return [
        3600.0 * (e.hours if e.hours is not None else e.hours_out)
        for e in ship.excursions
        if not e.superseded
    ]


def transit_temperatures(ships: tuple[Ship, ...]) -> list[float]:
    return [
        t
        for s in ships
        for ts, t in s.temperatures()
        if s.arrived_at is not None and s.start <= ts <= s.arrived_at
    ]


def expected_lane(ships: tuple[Ship, ...]) -> dict[str, float | None]:
    n = len(ships)
    outs = [sum(counted(s)) for s in ships]
    delays = [(s.arrived_at - s.planned_arrival).total_seconds() for s in ships if s.arrived_at]
    temps = transit_temperatures(ships)
    cuts = statistics.quantiles(temps, n=20, method="inclusive")
    rate = sum(1 for s in ships if counted(s)) / n
    mean_out = sum(outs) / n
    late = sum(1 for d in delays if d > 0) / len(delays)
    alarms = sum(s.alerts for s in ships) / n
    return {
        "shipments": n,
        "excursion_rate": rate,
        "time_out_mean_s": mean_out,
        "time_out_p90_s": statistics.quantiles(outs, n=10, method="inclusive")[8],
        "band_low_c": cuts[0],
        "band_high_c": cuts[18],
        "band_readings": len(temps),
        "delay_median_s": statistics.median(delays),
        "late_share": late,
        "alarm_rate": alarms,
        "score": 40 * rate
        + 20 * min(1.0, mean_out / (4 * 3600))
        + 20 * late
        + 20 * min(1.0, alarms),
    }


def test_lane_risk_matches_a_hand_computation(conn: Conn, history: dict[str, int]) -> None:
    lanes = {r.lane: r for r in insight.lane_risk(conn)}
    a = lanes[LANE_A]
    want = expected_lane(LANE_A_SHIPMENTS)
    got = a.to_dict()
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name
    assert a.mode == "air" and a.note is None
    assert {p.name: p.weight for p in a.parts} == {
        "excursions": 40,
        "time_out": 20,
        "late": 20,
        "alarms": 20,
    }
    assert sum(p.points for p in a.parts) == pytest.approx(want["score"])


def test_a_lane_below_the_minimum_has_figures_but_no_score(
    conn: Conn, history: dict[str, int]
) -> None:
    b = next(r for r in insight.lane_risk(conn) if r.lane == LANE_B)
    assert b.shipments == len(LANE_B_SHIPMENTS) < 5
    assert b.score is None and b.parts == ()
    assert (
        b.note
        == f"lane {LANE_B} has {len(LANE_B_SHIPMENTS)} finished shipments; a risk score needs 5"
    )
    assert b.excursion_rate == pytest.approx(expected_lane(LANE_B_SHIPMENTS)["excursion_rate"])
    # with a lower minimum it gets one
    (scored,) = insight.lane_risk(conn, lane=LANE_B, minimum=2)
    assert scored.score == pytest.approx(expected_lane(LANE_B_SHIPMENTS)["score"])


def test_seasonality_is_the_same_figures_by_month(conn: Conn, history: dict[str, int]) -> None:
    months = insight.lane_months(conn, lane=LANE_A, minimum=3)
    by_month: dict[str, list[Ship]] = {}
    for s in LANE_A_SHIPMENTS:
        assert s.arrived_at is not None
        by_month.setdefault(s.arrived_at.strftime("%Y-%m"), []).append(s)
    assert [m.month for m in months] == sorted(by_month)
    for m in months:
        want = expected_lane(tuple(by_month[m.month or ""]))
        got = m.to_dict()
        for name, value in want.items():
            assert got[name] == pytest.approx(value), (m.month, name)


def expected_legs(ships: tuple[Ship, ...], lane: str) -> dict[tuple[str, str], dict[str, float]]:
    """Per (lane, carrier): legs, shipments, on-time legs / timed legs, excursions, time out."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for s in ships:
        carriers = s.legs or (s.carrier,)
        for seq, name in enumerate(carriers, start=1):
            last = seq == len(carriers)

            def leg_of(e: Exc, n: int = len(carriers)) -> int:
                # seeded legs: the first ends LEG1_H after the start; one leg takes them all
                return 1 if n == 1 or e.start_h < LEG1_H else 2

            mine = [e for e in s.excursions if not e.superseded and leg_of(e) == seq]
            row = out.setdefault(
                (lane, name),
                dict.fromkeys(
                    ("legs", "timed", "on_time", "excursions", "time_out", "shipments"), 0.0
                ),
            )
            row["legs"] += 1
            row["shipments"] += 1  # no carrier has two legs of one shipment here
            if last and s.arrived_at is not None:
                row["timed"] += 1
                row["on_time"] += s.arrived_at <= s.planned_arrival
            row["excursions"] += len(mine)
            row["time_out"] += sum(
                3600.0 * (e.hours if e.hours is not None else e.hours_out) for e in mine
            )
    return out


def test_carrier_scores_match_a_hand_computation(conn: Conn, history: dict[str, int]) -> None:
    want = {**expected_legs(LANE_A_SHIPMENTS, LANE_A), **expected_legs(LANE_B_SHIPMENTS, LANE_B)}
    cards = insight.carrier_scores(conn)
    assert {(c.lane, c.carrier) for c in cards} == set(want)
    for c in cards:
        w = want[(c.lane, c.carrier)]
        assert c.legs == w["legs"] and c.shipments == w["shipments"]
        assert c.timed_legs == w["timed"]
        assert c.on_time_share == (w["on_time"] / w["timed"] if w["timed"] else None)
        assert c.excursions == w["excursions"]
        assert c.excursions_per_100 == pytest.approx(100 * w["excursions"] / w["shipments"])
        assert c.time_out_per_shipment_s == pytest.approx(w["time_out"] / w["shipments"])
        # the minimum volume: 5 legs
        assert c.enough == (w["legs"] >= 5)
        if not c.enough:
            assert c.note is not None and f"has {c.legs} leg" in c.note and "needs 5" in c.note


def test_scores_filter_by_lane_carrier_and_window(conn: Conn, history: dict[str, int]) -> None:
    assert {c.lane for c in insight.carrier_scores(conn, lane=LANE_B)} == {LANE_B}
    assert {c.carrier for c in insight.carrier_scores(conn, carrier="SkyCargo")} == {"SkyCargo"}
    # only the arrivals of February
    since = datetime.fromisoformat("2026-02-01T00:00:00+00:00")
    until = since + timedelta(days=28)
    (a,) = insight.lane_risk(conn, lane=LANE_A, since=since, until=until)
    feb = [s for s in LANE_A_SHIPMENTS if s.arrived_at and since <= s.arrived_at < until]
    assert a.shipments == len(feb)


def test_bad_questions_get_clear_errors(conn: Conn, history: dict[str, int]) -> None:
    with pytest.raises(NotFoundError, match="no lane 'XXX'"):
        insight.lane_risk(conn, lane="XXX")
    with pytest.raises(InvalidRecordError, match="until"):
        t = datetime.fromisoformat("2026-02-01T00:00:00+00:00")
        insight.carrier_scores(conn, since=t, until=t)
    with pytest.raises(InvalidRecordError, match="since"):
        insight.lane_risk(conn, since=datetime(2026, 1, 1))

"""coldchain.insight with numbers: percentiles, the score's parts and caps, lanes without plans,
carriers without a recorded arrival, the minimum volumes."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.insight.carriers import LegFigures, scorecards
from coldchain.insight.lanes import (
    ALARMS_FULL,
    TIME_OUT_FULL_S,
    WEIGHTS,
    ShipmentFigures,
    by_month,
    lane_risk,
    percentile,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def ship(i: int, *, delay_h: float | None = 0.0, excursions: int = 0, out_s: float = 0.0,
         alerts: int = 0, plan: bool = True) -> ShipmentFigures:  # fmt: skip
    planned = T0 + timedelta(days=i)
    return ShipmentFigures(
        shipment_id=i,
        reference=f"S-{i}",
        lane="L",
        arrived_at=None if delay_h is None else planned + timedelta(hours=delay_h),
        planned_arrival=planned if plan else None,
        excursions=excursions,
        time_out_s=out_s,
        alerts=alerts,
    )


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=60), st.floats(0, 1))
def test_percentile_is_the_linear_interpolation_of_statistics(
    values: list[float], q: float
) -> None:
    got = percentile(values, q)
    assert min(values) <= got <= max(values)
    if len(values) >= 2 and q in (0.05, 0.9, 0.95):
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        assert got == pytest.approx(cuts[round(q * 100) - 1], abs=1e-9)


def test_the_score_caps_time_out_and_alarms_at_their_full_marks() -> None:
    rows = [ship(i, excursions=1, out_s=10 * TIME_OUT_FULL_S, alerts=5) for i in range(5)]
    risk = lane_risk("L", "air", rows, None, minimum=5)
    points = {p.name: p.points for p in risk.parts}
    assert points == {
        "excursions": WEIGHTS["excursions"],
        "time_out": WEIGHTS["time_out"],
        "late": 0.0,  # every one on plan
        "alarms": WEIGHTS["alarms"],
    }
    assert risk.score == sum(points.values())
    assert risk.alarm_rate == 5 > ALARMS_FULL


def test_a_lane_without_plans_gets_no_points_for_lateness_and_says_so_in_its_count() -> None:
    rows = [ship(i, plan=False) for i in range(6)]
    risk = lane_risk("L", "road", rows, None, minimum=5)
    assert risk.with_plan == 0 and risk.late_share is None and risk.delay_median_s is None
    assert {p.name: p.points for p in risk.parts}["late"] == 0.0
    assert risk.score == 0.0


def test_below_the_minimum_the_note_names_the_lane_its_count_and_the_minimum() -> None:
    risk = lane_risk("L", "sea", [ship(1)], None, minimum=5)
    assert risk.score is None and risk.parts == ()
    assert risk.note == "lane L has 1 finished shipment; a risk score needs 5"
    empty = lane_risk("L", "sea", [], None, minimum=5)
    assert empty.excursion_rate is None and empty.note is not None and "has 0" in empty.note


def test_months_follow_the_arrival_and_skip_shipments_without_one() -> None:
    rows = [ship(0), ship(40), ship(41), ship(2, delay_h=None)]
    months = by_month("L", "air", rows, {}, minimum=2)
    assert [(m.month, m.shipments) for m in months] == [("2026-03", 1), ("2026-04", 2)]
    assert months[0].note is not None and months[1].score is not None


def leg(shipment: int, carrier: str, *, last: bool, late: bool | None, exc: int = 0) -> LegFigures:
    planned = T0 + timedelta(days=shipment)
    arrived = None if late is None else planned + timedelta(hours=1 if late else -1)
    return LegFigures("L", shipment, 2 if last else 1, carrier, planned, arrived, exc, 60.0 * exc)


def test_carriers_are_timed_only_on_legs_with_an_arrival_and_need_the_minimum() -> None:
    legs = [leg(i, "Road", last=False, late=None, exc=1) for i in range(5)]
    legs += [leg(i, "Air", last=True, late=i % 2 == 0) for i in range(5)]
    legs += [leg(9, "Rare", last=True, late=False)]
    cards = {c.carrier: c for c in scorecards(legs, minimum=5)}
    assert cards["Road"].on_time_share is None and cards["Road"].timed_legs == 0
    assert cards["Road"].excursions_per_100 == 100.0 and cards["Road"].enough
    assert cards["Air"].on_time_share == pytest.approx(2 / 5)
    assert not cards["Rare"].enough
    assert cards["Rare"].note == "Rare has 1 leg on lane L; a score needs 5"
    assert [c.carrier for c in scorecards(legs, minimum=5)][-1] == "Rare"

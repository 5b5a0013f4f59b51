"""The forecast of a shipment in transit (coldchain/forecast/model.py): hand-computed cases and
properties."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.forecast.model import (
    MIN_HISTORY,
    InTransit,
    LaneHistory,
    PastShipment,
    forecast_shipment,
    progress_by_position,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)


def past(day: int, hours: float, *excursions: tuple[float, float]) -> PastShipment:
    """A past shipment started ``day`` days after T0, ``hours`` long, excursions in hours."""
    start = T0 + timedelta(days=day)
    return PastShipment(
        start, start + hours * H, tuple((start + a * H, start + b * H) for a, b in excursions)
    )


def test_too_little_history_says_so_and_falls_back_to_the_plan() -> None:
    history = LaneHistory("BSL-JFK", tuple(past(d, 10) for d in range(MIN_HISTORY - 2)))
    state = InTransit(started_at=T0, planned_arrival=T0 + 9 * H)
    f = forecast_shipment(state, history, now=T0 + 2 * H, trend_weight=0.5)
    assert f.basis == "plan"
    assert f.eta == T0 + 9 * H
    assert f.excursion_chance is None
    assert f.notes[0] == (
        f"lane BSL-JFK has {MIN_HISTORY - 2} finished shipments; a forecast from history needs "
        f"{MIN_HISTORY}"
    )


def test_eta_by_elapsed_time_is_the_median_of_the_longer_trips() -> None:
    hours = [8.0, 9.0, 10.0, 11.0, 12.0, 20.0]
    history = LaneHistory("L1", tuple(past(d, h) for d, h in enumerate(hours)))
    now = T0 + 8.5 * H
    f = forecast_shipment(InTransit(started_at=T0), history, now=now, trend_weight=0.0)
    # Still travelling after 8.5 h: the trips of 9, 10, 11, 12 and 20 h; 0.5..11.5 h to go.
    remaining = [h - 8.5 for h in hours if h > 8.5]
    assert f.basis == "history" and f.progress_basis == "elapsed"
    assert f.eta == now + statistics.median(remaining) * H
    assert f.eta_low is not None and f.eta_high is not None
    assert f.eta_low < f.eta < f.eta_high
    assert f.progress == pytest.approx(8.5 / (8.5 + statistics.median(remaining)))


def test_overdue_when_longer_than_every_past_trip() -> None:
    history = LaneHistory("L1", tuple(past(d, 5) for d in range(6)))
    f = forecast_shipment(InTransit(started_at=T0), history, now=T0 + 6 * H, trend_weight=0.0)
    assert f.eta == T0 + 6 * H and f.eta_low is None
    assert any(n.startswith("overdue") for n in f.notes)


def test_eta_by_position_scales_each_trip_by_the_share_left() -> None:
    # Halfway along the meridian from (0, 0) to (0, 2): half of each trip is left.
    state = InTransit(started_at=T0, position=(0.0, 1.0), origin=(0.0, 0.0), destination=(0.0, 2.0))
    assert progress_by_position(state) == pytest.approx(0.5)
    hours = [6.0, 8.0, 10.0, 12.0, 14.0]
    history = LaneHistory("L1", tuple(past(d, h) for d, h in enumerate(hours)))
    now = T0 + 3 * H
    f = forecast_shipment(state, history, now=now, trend_weight=0.0)
    assert f.progress_basis == "position"
    assert f.eta is not None
    assert (f.eta - now) / H == pytest.approx(statistics.median(hours) * 0.5)


def test_excursion_chance_is_the_share_of_clean_comparable_trips_with_one_later() -> None:
    trips = [
        past(0, 10, (1, 2)),  # an excursion before 50 %: not comparable to a clean shipment
        past(1, 10, (6, 7)),  # after: counts
        past(2, 10, (8, 8.5)),  # after: counts
        past(3, 10),
        past(4, 10),
        past(5, 10),
    ]
    history = LaneHistory("L1", tuple(trips))
    state = InTransit(started_at=T0)
    f = forecast_shipment(state, history, now=T0 + 5 * H, trend_weight=0.0)
    assert f.progress == pytest.approx(0.5)
    assert f.excursion_chance == pytest.approx(2 / 5)
    # A shipment that has had one is compared with all the trips.
    had = forecast_shipment(
        InTransit(started_at=T0, had_excursion=True), history, now=T0 + 5 * H, trend_weight=0.0
    )
    assert had.excursion_chance == pytest.approx(2 / 6)


def test_a_trend_breach_before_arrival_adds_its_weight() -> None:
    history = LaneHistory(
        "L1", tuple(past(d, 10, (6, 7)) if d < 1 else past(d, 10) for d in range(5))
    )
    now = T0 + 5 * H
    soon = InTransit(started_at=T0, trend_breach_at=now + H)
    late = InTransit(started_at=T0, trend_breach_at=now + 30 * H)
    f_soon = forecast_shipment(soon, history, now=now, trend_weight=0.5)
    f_late = forecast_shipment(late, history, now=now, trend_weight=0.5)
    assert f_soon.trend_counts and not f_late.trend_counts
    assert f_late.excursion_chance == pytest.approx(1 / 5)
    assert f_soon.excursion_chance == pytest.approx(1 - (1 - 1 / 5) * (1 - 0.5))


def test_an_open_excursion_is_certain() -> None:
    history = LaneHistory("L1", tuple(past(d, 10) for d in range(5)))
    state = InTransit(started_at=T0, had_excursion=True, excursion_open=True)
    f = forecast_shipment(state, history, now=T0 + 2 * H, trend_weight=0.0)
    assert f.excursion_chance == 1.0


def test_budget_chance_is_the_share_of_trips_using_more_than_what_is_left_later() -> None:
    trips = [past(0, 10, (6, 9)), past(1, 10, (7, 8)), past(2, 10), past(3, 10), past(4, 10)]
    history = LaneHistory("L1", tuple(trips))
    # 2 h budget, 30 min used: 1.5 h left; after 50 % only the first trip spends 3 h out.
    state = InTransit(started_at=T0, budget_s=7200, out_of_range_s=1800)
    f = forecast_shipment(state, history, now=T0 + 5 * H, trend_weight=0.0)
    assert f.budget_left_s == 5400
    assert f.budget_chance == pytest.approx(1 / 5)
    no_budget = forecast_shipment(
        InTransit(started_at=T0), history, now=T0 + 5 * H, trend_weight=0.0
    )
    assert no_budget.budget_chance is None


def test_bad_input_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="arrived_at"):
        PastShipment(T0, T0)
    with pytest.raises(ValueError, match="trend_weight"):
        forecast_shipment(InTransit(started_at=T0), None, now=T0, trend_weight=2.0)
    with pytest.raises(ValueError, match="now"):
        forecast_shipment(InTransit(started_at=T0), None, now=T0.replace(tzinfo=None),
                          trend_weight=0.0)  # fmt: skip


@given(
    hours=st.lists(st.floats(min_value=1, max_value=100), min_size=MIN_HISTORY, max_size=30),
    elapsed=st.floats(min_value=0, max_value=120),
    spans=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 0.2)), max_size=30),
)
def test_chances_are_probabilities_and_the_interval_holds_the_eta(
    hours: list[float], elapsed: float, spans: list[tuple[float, float]]
) -> None:
    trips = []
    for d, h in enumerate(hours):
        exc = [(a * h, min(1.0, a + w) * h) for a, w in spans[d : d + 1]]
        trips.append(past(d, h, *exc))
    history = LaneHistory("L1", tuple(trips))
    state = InTransit(started_at=T0, budget_s=3600.0)
    f = forecast_shipment(state, history, now=T0 + elapsed * H, trend_weight=0.3)
    assert f.excursion_chance is not None and 0.0 <= f.excursion_chance <= 1.0
    assert f.budget_chance is not None and 0.0 <= f.budget_chance <= 1.0
    assert f.eta is not None and f.eta >= T0 + elapsed * H
    if f.eta_low is not None and f.eta_high is not None:
        assert f.eta_low <= f.eta <= f.eta_high

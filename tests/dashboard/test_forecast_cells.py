"""The fleet table's Risk cell and the shipment page's Forecast card (pure: a forecast in,
components out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coldchain.forecast.model import (
    MIN_HISTORY,
    InTransit,
    LaneHistory,
    PastShipment,
    forecast_shipment,
)
from dashboard.pages import fmt_ts, fmt_ts_short
from dashboard.pages.fleet_table import risk_cell
from dashboard.pages.shipment_forecast import forecast_panel

T0 = datetime(2026, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _text(component: Any) -> str:
    """Every string under a component, in order."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def _history(n: int, *, with_excursion: int) -> LaneHistory:
    trips = []
    for d in range(n):
        start = T0 - timedelta(days=d + 1)
        exc = ((start + 7 * H, start + 8 * H),) if d < with_excursion else ()
        trips.append(PastShipment(start, start + 10 * H, exc))
    return LaneHistory("L-1", tuple(trips))


def test_risk_cell_shows_the_chance_and_the_expected_arrival() -> None:
    f = forecast_shipment(
        InTransit(started_at=T0), _history(8, with_excursion=2), now=T0 + 2 * H, trend_weight=0.5
    )
    assert f.excursion_chance == 2 / 8 and f.eta is not None
    cell = risk_cell(f, now=T0 + 2 * H)
    assert _text(cell) == f"25 % ETA {fmt_ts_short(f.eta, T0 + 2 * H)}"
    assert fmt_ts_short(f.eta, T0 + 2 * H) == f"{f.eta:%H:%M} UTC"  # today: the time of day
    assert str(cell[1].title).startswith(fmt_ts(f.eta))  # the full time on hovering
    assert risk_cell(None, now=T0) == "—"


def test_risk_cell_and_card_say_when_history_is_too_short() -> None:
    state = InTransit(started_at=T0, planned_arrival=T0 + 9 * H)
    f = forecast_shipment(state, _history(MIN_HISTORY - 1, with_excursion=0), now=T0 + H,
                          trend_weight=0.5)  # fmt: skip
    cell = _text(risk_cell(f, now=T0 - 24 * H))  # the day before: the date is shown
    assert cell == "too little history ETA 1 Jun 09:00 UTC (planned)"
    card = _text(forecast_panel(f))
    assert f"lane L-1 has {MIN_HISTORY - 1} finished shipments" in card
    assert "the plan's arrival" in card


def test_the_card_names_what_each_figure_rests_on() -> None:
    state = InTransit(started_at=T0, budget_s=3600, out_of_range_s=600)
    f = forecast_shipment(state, _history(6, with_excursion=3), now=T0 + 2 * H, trend_weight=0.5)
    card = _text(forecast_panel(f))
    assert "6 finished shipments of lane L-1" in card
    assert f.excursion_chance is not None
    assert f"{f.excursion_chance * 100:.0f} %" in card
    assert "50 min of the budget left" in card
    assert "Forecasts are for shipments in transit." in _text(forecast_panel(None))

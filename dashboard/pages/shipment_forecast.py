"""The shipment page's "Forecast" card: when it should arrive, and how likely an excursion or an
exhausted stability budget is before then, with the lane's history it rests on (README
"Forecast"; the model: :mod:`coldchain.forecast.model`, the data: :mod:`services.forecast`).

:func:`forecast_panel` is pure (a forecast in, components out); :func:`register_forecast` adds the
card's own refresh, so the rest of the page does not wait for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, html

from coldchain.errors import NotFoundError
from coldchain.forecast.model import INTERVAL_PERCENTILES, ShipmentForecast
from dashboard import ids
from dashboard.pages import PageContext, data_attrs, fmt_duration, fmt_ts
from services import forecast as forecast_s


def forecast_card() -> html.Div:
    """The empty card; the callback fills it."""
    return html.Div(
        className="card card-forecast",
        children=[html.H2("Forecast"), html.Div(id=ids.SHIPMENT_FORECAST)],
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _row(label: str, value: Any, detail: str, key: str) -> html.Tr:
    return html.Tr(
        **data_attrs(figure=key),
        children=[
            html.Th(label),
            html.Td(value, className="figure"),
            html.Td(detail, className="sub wrap"),
        ],
    )


def forecast_panel(forecast: ShipmentForecast | None) -> html.Div:
    """The figures of a forecast, each with where it comes from; a line when there is none."""
    if forecast is None:
        return html.Div(html.P("Forecasts are for shipments in transit.", className="muted"))
    f = forecast
    low, high = INTERVAL_PERCENTILES
    if f.basis == "history" and f.eta_low is not None and f.eta_high is not None:
        eta_detail = (
            f"between {fmt_ts(f.eta_low)} and {fmt_ts(f.eta_high)} "
            f"({low:.0f}th–{high:.0f}th percentile of the lane's past trips)"
        )
    elif f.basis == "history":
        eta_detail = "later than every past trip of the lane"
    else:
        eta_detail = "the plan's arrival (too little history for a forecast)"
    trend = (
        f"the trend predicts a breach at {fmt_ts(f.trend_breach_at)}"
        if f.trend_breach_at is not None
        else "no breach predicted by the trend"
    )
    if f.excursion_history is not None:
        exc_detail = f"{_pct(f.excursion_history)} from the lane's history; {trend}"
    else:
        exc_detail = trend
    if f.budget_left_s is None:
        budget_value, budget_detail = "—", "no stability budget set for the product"
    else:
        budget_value = _pct(f.budget_chance)
        budget_detail = f"{fmt_duration(max(0.0, f.budget_left_s))} of the budget left"
    progress = (
        "—"
        if f.progress is None
        else f"{f.progress * 100:.0f} % of the way (by {f.progress_basis})"
    )
    rests_on = (
        f"{f.history_n} finished shipment{'s' if f.history_n != 1 else ''} of lane {f.lane}"
        if f.lane is not None
        else "no lane"
    )
    rows = [
        _row("Expected arrival", fmt_ts(f.eta), eta_detail, "eta"),
        _row(
            "Chance of an excursion before arrival",
            _pct(f.excursion_chance),
            exc_detail,
            "excursion",
        ),
        _row("Chance of exhausting the stability budget", budget_value, budget_detail, "budget"),
        _row("Rests on", rests_on, progress, "history"),
    ]
    notes = [html.Li(n) for n in f.notes]
    return html.Div(
        **data_attrs(basis=f.basis),
        children=[
            html.Table(html.Tbody(rows), className="data-table forecast-table"),
            html.Ul(notes, className="notes") if notes else None,
        ],
    )


def register_forecast(app: Dash, page: PageContext) -> None:
    """The card's refresh, with the page's interval."""

    @app.callback(
        Output(ids.SHIPMENT_FORECAST, "children"),
        Input(ids.SHIPMENT_INTERVAL, "n_intervals"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def refresh_forecast(_n: int | None, reference: str) -> Any:
        with page.connection() as conn:
            try:
                _, found = forecast_s.forecast(
                    conn,
                    key=reference,
                    now=datetime.now(UTC),
                    trend_weight=page.settings.forecast.trend_weight,
                )
            except NotFoundError:
                return html.P("—", className="muted")
        return forecast_panel(found)

"""The fleet table's rows and the choices of its QA filter (pure: rows in, components out).

A row answers, for logistics, on-call and QA alike: is it in trouble now (the condition), for how
long the product has been out of its range and since when (the open excursion's start, not the
alarm, which comes after the rule's delay), how bad (the peak and its °C·min), how much of the
stability budget is used, what QA has decided, who carries it, when it is planned to arrive,
and, in transit, the forecast's chance of an excursion before arrival with the expected arrival
(:mod:`services.forecast`).
A shipment that is fine now but had an excursion keeps a trace of it: its condition cell says
how many excursions are on record and its QA state (e.g. "quarantined"), and the peak column
shows the worst one, marked "ended".

:mod:`dashboard.pages.fleet` lays out the page and runs its callbacks; the data is
:func:`services.shipments.list_shipments`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import dcc, html

from coldchain import lifecycle
from coldchain.forecast.model import ShipmentForecast
from dashboard import figures, ids
from dashboard.pages import (
    badge,
    data_attrs,
    fmt_age,
    fmt_duration,
    fmt_range,
    fmt_temp,
    fmt_ts,
    fmt_ts_short,
    shipment_href,
)
from dashboard.pages.shipment_life import STATE_BADGE

#: The QA filter: each choice and the shipment states it keeps. One per QA state
#: (:data:`coldchain.lifecycle.QA_STATES`), plus the shipments QA has nothing to decide on yet.
QA_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{state: (label, (state,)) for state, label in lifecycle.QA_STATES.items()},
    "not-arrived": ("not arrived yet", ("planned", "in_transit")),
    "cancelled": (lifecycle.STATE_LABELS["cancelled"], ("cancelled",)),
}
QA_FILTER_OPTIONS = [{"label": label, "value": key} for key, (label, _) in QA_FILTERS.items()]


def qa_filter_statuses(choice: str | None) -> list[str] | None:
    """The shipment states a QA filter choice keeps (None: no filter, or an unknown choice)."""
    if choice is None or choice not in QA_FILTERS:
        return None
    return list(QA_FILTERS[choice][1])


def _out_of_range(row: dict[str, Any]) -> bool:
    t, p = row["current_temp_c"], row["product"] or {}
    if t is None:
        return False
    lo, hi = p.get("temp_min_c"), p.get("temp_max_c")
    return (lo is not None and t < lo) or (hi is not None and t > hi)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def condition_cell(row: dict[str, Any]) -> list[Any]:
    """The live condition, and under it the QA state and the excursions on record."""
    cond = row["condition"]
    trace = [row["qa_state"]] if row.get("qa_state") else []
    if row["n_excursions"]:
        trace.append(_plural(row["n_excursions"], "excursion"))
    cell: list[Any] = [badge(figures.CONDITION_LABELS[cond], cond)]
    if trace:
        cell.append(html.Span(" · ".join(trace), className="sub"))
    return cell


def out_of_range_cell(row: dict[str, Any], now: datetime) -> list[Any] | str:
    """How long the product has been out of its range and, under it, since when (the open
    excursion's start, not the alarm); "back in range" after an excursion, else a dash."""
    since = row["out_of_range_since"]
    if since is None:
        return "back in range" if row["n_excursions"] else "—"
    return [
        html.Strong(fmt_duration((now - since).total_seconds())),
        html.Span("since " + fmt_ts_short(since, now), className="sub", title=fmt_ts(since)),
    ]


def peak_cell(row: dict[str, Any]) -> list[Any] | str:
    """The worst excursion's peak, its °C·min, and "ended" when it is over."""
    if row["peak_c"] is None:
        return "—"
    detail = f"{row['peak_degree_minutes']:.0f} °C·min"
    if not row["peak_open"]:
        detail += " · ended"
    return [fmt_temp(row["peak_c"]), html.Span(detail, className="sub")]


def budget_text(share: float | None) -> str:
    """The share of the stability budget used, as a percentage."""
    return "—" if share is None else f"{share * 100:.0f} %"


def qa_cell(row: dict[str, Any]) -> Any:
    """The QA state as a badge coloured like the lifecycle state, or a dash before arrival."""
    if not row.get("qa_state"):
        return "—"
    return html.Span(
        row["qa_state"],
        className=f"badge badge-{STATE_BADGE.get(row['status'], 'info')}",
        **data_attrs(state=row["status"]),
    )


def risk_cell(forecast: ShipmentForecast | None, now: datetime) -> list[Any] | str:
    """The forecast's chance of an excursion before arrival and its expected arrival (README
    "Forecast"); a dash when not in transit, "too little history" with the plan's arrival."""
    if forecast is None:
        return "—"
    chance = forecast.excursion_chance
    text = "too little history" if chance is None else f"{chance * 100:.0f} %"
    eta = "ETA " + fmt_ts_short(forecast.eta, now) if forecast.eta is not None else "no ETA"
    if forecast.basis == "plan" and forecast.eta is not None:
        eta += " (planned)"
    notes = [fmt_ts(forecast.eta)] if forecast.eta is not None else []
    title = "; ".join([*notes, *forecast.notes])
    return [text, html.Span(eta, className="sub", title=title)]


def table_row(
    row: dict[str, Any], now: datetime, forecast: ShipmentForecast | None = None
) -> html.Tr:
    """One shipment as a table row; ``data-reference`` and the ``cell-*`` classes are stable.

    Text goes in as plain strings wherever it can: the Dash renderer's cost is per component
    (see :mod:`dashboard.pages.fleet`), and a page of rows is drawn on every refresh.
    """
    cond = row["condition"]
    product = row["product"] or {}
    alerts_cell: list[Any] = [str(row["open_alerts"])]
    if row["worst_severity"]:
        alerts_cell.append(badge(row["worst_severity"], row["worst_severity"]))
    if row["unacknowledged_alerts"]:
        alerts_cell.append(html.Span(f"{row['unacknowledged_alerts']} new", className="sub"))
    temp_class = ids.CELL_TEMP + (" out-of-range" if _out_of_range(row) else "")
    return html.Tr(
        className=f"{ids.FLEET_ROW} condition-{cond}",
        **data_attrs(reference=row["reference"], condition=cond),
        children=[
            html.Td(condition_cell(row), className="cell-condition"),
            html.Td(
                [
                    dcc.Link(row["reference"], href=shipment_href(row["reference"])),
                    html.Span(
                        lifecycle.STATE_LABELS.get(row["status"], row["status"]), className="sub"
                    ),
                ],
                className=ids.CELL_REFERENCE,
            ),
            html.Td(row["lane"], className="cell-lane"),
            html.Td(
                [
                    product.get("name") or "—",
                    html.Span(
                        fmt_range(product.get("temp_min_c"), product.get("temp_max_c")),
                        className="sub",
                    ),
                ],
                className="cell-product wrap",
            ),
            html.Td(fmt_temp(row["current_temp_c"]), className=temp_class),
            html.Td(out_of_range_cell(row, now), className=ids.CELL_OUT_OF_RANGE),
            html.Td(peak_cell(row), className=ids.CELL_PEAK),
            html.Td(budget_text(row["budget_used"]), className=ids.CELL_BUDGET),
            html.Td(qa_cell(row), className=ids.CELL_QA),
            html.Td(", ".join(row["carriers"]) or "—", className=ids.CELL_CARRIER),
            html.Td(
                fmt_ts_short(row["eta_planned"], now),
                className=ids.CELL_ETA,
                title=fmt_ts(row["eta_planned"]) if row["eta_planned"] else None,
            ),
            html.Td(risk_cell(forecast, now), className=ids.CELL_RISK),
            html.Td(
                fmt_age(row["last_seen"], now),
                className=ids.CELL_LAST_SEEN,
                title=fmt_ts(row["last_seen"]),
            ),
            html.Td(alerts_cell, className=ids.CELL_ALERTS),
        ],
    )

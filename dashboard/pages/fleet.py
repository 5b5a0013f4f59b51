"""Fleet page ("/"): every shipment on a map and in a table, the ones that need action first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures, ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_age,
    fmt_range,
    fmt_temp,
    fmt_ts,
    shipment_href,
)
from db.queries import web

#: Sortable columns: (key, header). "attention" is the default order: alarm, warning, offline, ok.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("attention", "Condition"),
    ("reference", "Shipment"),
    ("lane", "Lane"),
    ("product", "Product"),
    ("temp", "Temperature"),
    ("last_seen", "Last seen"),
    ("alerts", "Open alerts"),
)
DEFAULT_SORT = {"col": "attention", "desc": True}
_DESC_FIRST = {"attention", "temp", "last_seen", "alerts"}
CONDITION_FILTERS = [
    {"label": "All", "value": "all"},
    {"label": "Alarm", "value": "alarm"},
    {"label": "Warning", "value": "warning"},
    {"label": "Offline", "value": "offline"},
    {"label": "OK", "value": "ok"},
]
MAX_SHIPMENTS = 1000


def _sort_key(col: str) -> Any:
    def key(row: dict[str, Any]) -> Any:
        if col == "attention":
            return (row["attention"], row.get("worst_rank") or 0, row["unacknowledged_alerts"])
        if col == "product":
            return (row["product"] or {}).get("name") or ""
        if col == "temp":
            return row["current_temp_c"]
        if col == "alerts":
            return row["open_alerts"]
        return row.get(col)

    return key


def sort_rows(rows: list[dict[str, Any]], *, col: str, desc: bool) -> list[dict[str, Any]]:
    """Rows ordered by a column; rows without a value go last whichever the direction."""
    if col == "attention" and desc:
        return list(rows)  # the query's own order: needs-action first, then severity, reference
    key = _sort_key(col)
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    return sorted(present, key=key, reverse=desc) + missing


def next_sort(current: dict[str, Any] | None, clicked: str) -> dict[str, Any]:
    """Clicking the sorted column flips its direction; another column starts in its natural one."""
    current = current or DEFAULT_SORT
    if current.get("col") == clicked:
        return {"col": clicked, "desc": not current.get("desc", False)}
    return {"col": clicked, "desc": clicked in _DESC_FIRST}


def _header_class(col: str, sort: dict[str, Any]) -> str:
    if sort.get("col") != col:
        return "sort-btn"
    return "sort-btn sorted-desc" if sort.get("desc") else "sort-btn sorted-asc"


def layout(page: PageContext) -> html.Div:
    """The fleet page's components; the callbacks fill them and refresh them live."""
    header = html.Tr(
        [
            html.Th(
                html.Button(
                    label,
                    id={"type": ids.FLEET_SORT_BUTTON, "col": key},
                    className=_header_class(key, DEFAULT_SORT),
                    n_clicks=0,
                    title=f"Sort by {label.lower()}",
                )
            )
            for key, label in COLUMNS
        ]
    )
    return html.Div(
        className="page page-fleet",
        children=[
            dcc.Interval(id=ids.FLEET_INTERVAL, interval=page.refresh_ms),
            dcc.Store(id=ids.FLEET_SORT, data=DEFAULT_SORT),
            html.Div(
                className="page-header",
                children=[
                    html.H1("Fleet"),
                    html.Span(id=ids.FLEET_UPDATED, className="updated"),
                ],
            ),
            html.Div(id=ids.FLEET_SUMMARY, className="summary-cards"),
            html.Div(
                className="card card-map",
                children=dcc.Graph(
                    id=ids.FLEET_MAP,
                    config={"displayModeBar": False, "scrollZoom": True},
                    figure=figures.fleet_map(pd.DataFrame()),
                ),
            ),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="toolbar",
                        children=[
                            dcc.Input(
                                id=ids.FLEET_SEARCH,
                                type="search",
                                placeholder="Search reference, origin or destination",
                                debounce=0.3,
                                className="search",
                            ),
                            dcc.RadioItems(
                                id=ids.FLEET_CONDITION,
                                options=CONDITION_FILTERS,
                                value="all",
                                inline=True,
                                className="segmented",
                            ),
                            html.Span(id=ids.FLEET_COUNT, className="muted"),
                        ],
                    ),
                    html.Div(
                        className="table-wrap",
                        children=html.Table(
                            id=ids.FLEET_TABLE,
                            className="data-table fleet-table",
                            children=[html.Thead(header), html.Tbody(id=ids.FLEET_TBODY)],
                        ),
                    ),
                ],
            ),
        ],
    )


def summary_cards(rows: list[dict[str, Any]]) -> list[html.Div]:
    """One card per condition with its count of shipments."""
    counts = {c: 0 for c in figures.CONDITION_ORDER}
    for r in rows:
        counts[r["condition"]] += 1
    return [
        html.Div(
            className=f"summary-card summary-{c}",
            children=[
                html.Div(str(counts[c]), className="summary-value", id=f"fleet-count-{c}"),
                html.Div(figures.CONDITION_LABELS[c], className="summary-label"),
            ],
        )
        for c in figures.CONDITION_ORDER
    ]


def _out_of_range(row: dict[str, Any]) -> bool:
    t, p = row["current_temp_c"], row["product"] or {}
    if t is None:
        return False
    lo, hi = p.get("temp_min_c"), p.get("temp_max_c")
    return (lo is not None and t < lo) or (hi is not None and t > hi)


def table_row(row: dict[str, Any], now: datetime) -> html.Tr:
    """One shipment as a table row; ``data-reference`` and the ``cell-*`` classes are stable."""
    cond = row["condition"]
    product = row["product"] or {}
    alerts_cell: list[Any] = [html.Span(str(row["open_alerts"]), className="alert-count")]
    if row["worst_severity"]:
        alerts_cell.append(badge(row["worst_severity"], row["worst_severity"]))
    if row["unacknowledged_alerts"]:
        alerts_cell.append(html.Span(f"{row['unacknowledged_alerts']} new", className="sub"))
    temp_class = ids.CELL_TEMP + (" out-of-range" if _out_of_range(row) else "")
    return html.Tr(
        className=f"{ids.FLEET_ROW} condition-{cond}",
        **data_attrs(reference=row["reference"], condition=cond),
        children=[
            html.Td(badge(figures.CONDITION_LABELS[cond], cond), className="cell-condition"),
            html.Td(
                [
                    dcc.Link(row["reference"], href=shipment_href(row["reference"])),
                    html.Div(row["status"].replace("_", " "), className="sub"),
                ],
                className=ids.CELL_REFERENCE,
            ),
            html.Td(row["lane"], className="cell-lane"),
            html.Td(
                [
                    html.Div(product.get("name") or "—"),
                    html.Div(
                        fmt_range(product.get("temp_min_c"), product.get("temp_max_c")),
                        className="sub",
                    ),
                ],
                className="cell-product wrap",
            ),
            html.Td(fmt_temp(row["current_temp_c"]), className=temp_class),
            html.Td(
                fmt_age(row["last_seen"], now),
                className=ids.CELL_LAST_SEEN,
                title=fmt_ts(row["last_seen"]),
            ),
            html.Td(alerts_cell, className=ids.CELL_ALERTS),
        ],
    )


def register(app: Dash, page: PageContext) -> None:
    """The fleet page's callbacks: sorting, and the live data refresh."""

    @app.callback(
        Output(ids.FLEET_SORT, "data"),
        Output({"type": ids.FLEET_SORT_BUTTON, "col": ALL}, "className"),
        Input({"type": ids.FLEET_SORT_BUTTON, "col": ALL}, "n_clicks"),
        State(ids.FLEET_SORT, "data"),
        prevent_initial_call=True,
    )
    def sort_by(_clicks: list[int | None], current: dict[str, Any] | None) -> tuple[Any, ...]:
        clicked = ctx.triggered_id
        if not isinstance(clicked, dict) or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        sort = next_sort(current, str(clicked["col"]))
        return sort, [_header_class(key, sort) for key, _ in COLUMNS]

    @app.callback(
        Output(ids.FLEET_SUMMARY, "children"),
        Output(ids.FLEET_MAP, "figure"),
        Output(ids.FLEET_TBODY, "children"),
        Output(ids.FLEET_COUNT, "children"),
        Output(ids.FLEET_UPDATED, "children"),
        Input(ids.FLEET_INTERVAL, "n_intervals"),
        Input(ids.FLEET_SEARCH, "value"),
        Input(ids.FLEET_CONDITION, "value"),
        Input(ids.FLEET_SORT, "data"),
    )
    def refresh(
        _n: int | None, search: str | None, condition: str | None, sort: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        condition = None if condition in (None, "all") else condition
        with page.connection() as conn:
            fleet = web.list_shipments(
                conn=conn, offline_factor=page.offline_factor, limit=MAX_SHIPMENTS
            )
            matching = fleet
            if search or condition:
                matching = web.list_shipments(
                    conn=conn,
                    offline_factor=page.offline_factor,
                    q=search,
                    condition=condition,
                    limit=MAX_SHIPMENTS,
                )
        everything, shown = fleet.items, matching.items
        sort = sort or DEFAULT_SORT
        shown = sort_rows(shown, col=str(sort["col"]), desc=bool(sort["desc"]))
        body: list[html.Tr] | html.Tr = [table_row(r, now) for r in shown] or html.Tr(
            html.Td("No shipments match.", colSpan=len(COLUMNS), className="muted")
        )
        frame = pd.DataFrame(
            [
                {
                    "reference": r["reference"],
                    "lane": r["lane"],
                    "condition": r["condition"],
                    "current_temp_c": r["current_temp_c"],
                    "lat": r["lat"],
                    "lon": r["lon"],
                }
                for r in everything
            ],
            columns=["reference", "lane", "condition", "current_temp_c", "lat", "lon"],
        )
        count = f"{matching.total} of {fleet.total} shipments"
        if matching.total > len(shown):
            count += f" (first {len(shown)} shown)"
        return (
            summary_cards(everything),
            figures.fleet_map(frame),
            body,
            count,
            f"Updated {now:%H:%M:%S} UTC",
        )

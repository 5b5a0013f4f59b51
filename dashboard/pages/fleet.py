"""Fleet page ("/"): every shipment on a map and in a table, the ones that need action first
(alarm, then the longest out of range). The table's rows: :mod:`dashboard.pages.fleet_table`.

The summary cards and the map show the whole fleet (:func:`db.queries.shipments.fleet_overview`, a
few columns per shipment); the table shows one page of :data:`PAGE_SIZE` rows of the shipments
that match the search and the condition filter, sorted and paged by the database. Each has its
own callback, so turning a page or sorting does not send the map again. A fleet of
thousands is never sent to the browser as table rows: the Dash renderer's cost grows faster
than linearly with the number of components it inserts at once (bench/web_pages.py: 100 rows
of this table took over 4 s to draw in headless Chromium, 25 rows a few hundred ms).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import figures, ids, maps
from dashboard.pages import PageContext, fmt_clock
from dashboard.pages.fleet_table import QA_FILTER_OPTIONS, qa_filter_statuses, table_row
from db.types import Conn, Page
from services import forecast as forecast_s
from services import shipments as shipment_s

#: Sortable columns: (key, header). "attention" is the default order: alarm, warning, offline, ok.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("attention", "Condition"),
    ("reference", "Shipment"),
    ("lane", "Lane"),
    ("product", "Product"),
    ("temp", "Temperature"),
    ("duration", "Out of range"),
    ("peak", "Peak"),
    ("budget", "Budget used"),
    ("qa", "QA state"),
    ("carrier", "Carrier"),
    ("eta", "ETA (planned)"),
    ("risk", "Risk"),
    ("last_seen", "Last seen"),
    ("alerts", "Open alerts"),
)
#: Columns not sorted by (the forecast is computed per page, not in the query).
UNSORTED = frozenset({"risk"})
DEFAULT_SORT = {"col": "attention", "desc": True}
_DESC_FIRST = {"attention", "temp", "duration", "peak", "budget", "last_seen", "alerts"}
CONDITION_FILTERS = [
    {"label": "All", "value": "all"},
    {"label": "Alarm", "value": "alarm"},
    {"label": "Warning", "value": "warning"},
    {"label": "Offline", "value": "offline"},
    {"label": "OK", "value": "ok"},
]
#: Rows in one page of the table.
PAGE_SIZE = 25


def next_sort(current: dict[str, Any] | None, clicked: str) -> dict[str, Any]:
    """Clicking the sorted column flips its direction; another column starts in its natural one."""
    current = current or DEFAULT_SORT
    if current.get("col") == clicked:
        return {"col": clicked, "desc": not current.get("desc", False)}
    return {"col": clicked, "desc": clicked in _DESC_FIRST}


def page_bounds(n_rows: int, page: int | None, size: int = PAGE_SIZE) -> tuple[int, int, int]:
    """``(page, start, end)``: the page (from 0) clamped to the rows there are, and the slice
    ``rows[start:end]`` it shows."""
    last = max(0, (n_rows - 1) // size)
    page = min(max(0, page or 0), last)
    return page, page * size, min(n_rows, (page + 1) * size)


def next_page(current: int | None, trigger: str | None) -> int:
    """The page after a click on Previous or Next; any other change (search, filter, sort)
    goes back to the first page. The refresh clamps a page past the end."""
    current = current or 0
    if trigger == ids.FLEET_PREV:
        return max(0, current - 1)
    if trigger == ids.FLEET_NEXT:
        return current + 1
    return 0


def _header_class(col: str, sort: dict[str, Any]) -> str:
    if sort.get("col") != col:
        return "sort-btn"
    return "sort-btn sorted-desc" if sort.get("desc") else "sort-btn sorted-asc"


def layout(page: PageContext) -> html.Div:
    """The fleet page's components; the callbacks fill them and refresh them live."""
    header = html.Tr(
        [
            html.Th(
                label
                if key in UNSORTED
                else html.Button(
                    label,
                    id={"type": ids.FLEET_SORT_BUTTON, "col": key},
                    className=_header_class(key, DEFAULT_SORT),
                    n_clicks=0,
                    title=f"Sort by {label.lower()}",
                ),
                title="Chance of an excursion before arrival, and the expected arrival"
                if key == "risk"
                else None,
            )
            for key, label in COLUMNS
        ]
    )
    return html.Div(
        className="page page-fleet",
        children=[
            dcc.Interval(id=ids.FLEET_INTERVAL, interval=page.refresh_ms),
            dcc.Store(id=ids.FLEET_SORT, data=DEFAULT_SORT),
            dcc.Store(id=ids.FLEET_PAGE, data=0),
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
                    figure=maps.placeholder(height=360),
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
                            *_filter(ids.FLEET_LANE, "All lanes"),
                            *_filter(ids.FLEET_CARRIER, "All carriers"),
                            *_filter(ids.FLEET_QA, "Any QA state", options=QA_FILTER_OPTIONS),
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
                    html.Div(
                        className="pager",
                        children=[
                            html.Button(
                                "‹ Previous",
                                id=ids.FLEET_PREV,
                                className="btn",
                                n_clicks=0,
                                disabled=True,
                            ),
                            html.Button("Next ›", id=ids.FLEET_NEXT, className="btn", n_clicks=0),
                        ],
                    ),
                ],
            ),
        ],
    )


def _filter(id: str, placeholder: str, *, options: list[dict[str, str]] | None = None) -> list[Any]:
    """A filter of the table: a dropdown to type in, empty for "all", labelled for screen
    readers."""
    return [
        html.Label(placeholder, htmlFor=id, className="visually-hidden"),
        dcc.Dropdown(
            id=id,
            options=options or [],
            placeholder=placeholder,
            clearable=True,
            searchable=True,
            className="filter",
        ),
    ]


def choices_options(values: list[str]) -> list[dict[str, str]]:
    """Dropdown options whose labels are their values."""
    return [{"label": v, "value": v} for v in values]


def summary_cards(conditions: Iterable[str]) -> list[html.Div]:
    """One card per condition with its count of shipments (``conditions``: one per shipment)."""
    counts = {c: 0 for c in figures.CONDITION_ORDER}
    for condition in conditions:
        counts[condition] += 1
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


def register(app: Dash, page: PageContext) -> None:
    """The fleet page's callbacks: sorting, paging, and the live data refresh."""

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
        return sort, [_header_class(key, sort) for key, _ in COLUMNS if key not in UNSORTED]

    @app.callback(
        Output(ids.FLEET_PAGE, "data"),
        Input(ids.FLEET_PREV, "n_clicks"),
        Input(ids.FLEET_NEXT, "n_clicks"),
        Input(ids.FLEET_SEARCH, "value"),
        Input(ids.FLEET_CONDITION, "value"),
        Input(ids.FLEET_LANE, "value"),
        Input(ids.FLEET_CARRIER, "value"),
        Input(ids.FLEET_QA, "value"),
        Input(ids.FLEET_SORT, "data"),
        State(ids.FLEET_PAGE, "data"),
        prevent_initial_call=True,
    )
    def turn_page(*args: Any) -> int:
        trigger = ctx.triggered_id if isinstance(ctx.triggered_id, str) else None
        return next_page(args[-1], trigger)

    @app.callback(
        Output(ids.FLEET_SUMMARY, "children"),
        Output(ids.FLEET_MAP, "figure"),
        Input(ids.FLEET_INTERVAL, "n_intervals"),
    )
    def overview(_n: int | None) -> tuple[Any, ...]:
        # The whole fleet, apart from the table: paging, sorting or searching the table does
        # not send the map again (hundreds of KB for thousands of shipments).
        with page.connection() as conn:
            everyone = shipment_s.fleet_overview(conn, offline_factor=page.offline_factor)
        frame = pd.DataFrame(everyone.rows, columns=list(everyone.columns))
        tiles = page.settings.web.map_tiles
        return summary_cards(frame["condition"]), maps.fleet_map(frame, tiles=tiles)

    @app.callback(
        Output(ids.FLEET_LANE, "options"),
        Output(ids.FLEET_CARRIER, "options"),
        Input(ids.FLEET_INTERVAL, "n_intervals"),
        State(ids.FLEET_LANE, "options"),
        State(ids.FLEET_CARRIER, "options"),
    )
    def filter_choices(_n: int | None, lanes: Any, carriers: Any) -> tuple[Any, ...]:
        # Sent again only when they changed: an open dropdown is left alone.
        with page.connection() as conn:
            choices = shipment_s.fleet_filter_choices(conn)
        new_lanes = choices_options(choices["lane"])
        new_carriers = choices_options(choices["carrier"])
        return (
            no_update if new_lanes == lanes else new_lanes,
            no_update if new_carriers == carriers else new_carriers,
        )

    @app.callback(
        Output(ids.FLEET_TBODY, "children"),
        Output(ids.FLEET_COUNT, "children"),
        Output(ids.FLEET_UPDATED, "children"),
        Output(ids.FLEET_PREV, "disabled"),
        Output(ids.FLEET_NEXT, "disabled"),
        Input(ids.FLEET_INTERVAL, "n_intervals"),
        Input(ids.FLEET_PAGE, "data"),
        # Also inputs (not only state): a page already at 0 may not change, and the renderer
        # holds this callback back until turn_page has answered, so it still runs once.
        Input(ids.FLEET_SEARCH, "value"),
        Input(ids.FLEET_CONDITION, "value"),
        Input(ids.FLEET_LANE, "value"),
        Input(ids.FLEET_CARRIER, "value"),
        Input(ids.FLEET_QA, "value"),
        Input(ids.FLEET_SORT, "data"),
    )
    def refresh(
        _n: int | None,
        page_no: int | None,
        search: str | None,
        condition: str | None,
        lane: str | None,
        carrier: str | None,
        qa: str | None,
        sort: dict[str, Any] | None,
    ) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        condition = None if condition in (None, "all") else condition
        sort = sort or DEFAULT_SORT
        page_no = page_no or 0

        def rows_page(conn: Conn, number: int) -> Page:
            return shipment_s.list_shipments(
                conn,
                offline_factor=page.offline_factor,
                q=search,
                condition=condition,
                lane=lane or None,
                carrier=carrier or None,
                statuses=qa_filter_statuses(qa),
                sort=str(sort["col"]),
                descending=bool(sort["desc"]),
                limit=PAGE_SIZE,
                offset=number * PAGE_SIZE,
            )

        with page.connection() as conn:
            matching = rows_page(conn, page_no)
            if not matching.items and matching.total:  # past the end: the fleet shrank
                page_no, _, _ = page_bounds(matching.total, page_no)
                matching = rows_page(conn, page_no)
            # Two queries for the whole page (services.forecast), not one per row.
            forecasts = forecast_s.fleet_forecasts(
                conn,
                now=now,
                trend_weight=page.settings.forecast.trend_weight,
                shipment_ids=[r["id"] for r in matching.items if r["status"] == "in_transit"],
            )
        page_no, start, end = page_bounds(matching.total, page_no)
        body: list[html.Tr] | html.Tr = [
            table_row(r, now, forecasts.get(r["id"])) for r in matching.items
        ] or html.Tr(html.Td("No shipments match.", colSpan=len(COLUMNS), className="muted"))
        count = f"{matching.total:,} shipment{'' if matching.total == 1 else 's'}"
        if search or condition or lane or carrier or qa:
            count += " match"
        if matching.total > len(matching.items):
            count += f" · rows {start + 1:,}–{end:,}"
        return (
            body,
            count,
            f"Updated {fmt_clock(now)}",
            page_no == 0,
            end >= matching.total,
        )

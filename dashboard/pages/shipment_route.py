"""The shipment page's route map card: where the shipment's loggers have been, coloured by
temperature against the range the rules engine judges by, where each excursion began, and the
lane's origin and destination (:func:`dashboard.maps.route_map`).

It has its own callback and a slower refresh than the chart (:data:`ROUTE_REFRESH_MS`): a
position moves little between two readings, and the map keeps the user's zoom across refreshes.
:mod:`dashboard.pages.shipment` places the card (:func:`route_card`) and registers its callback
(:func:`register_route_map`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html

from coldchain.errors import NotFoundError
from dashboard import ids, maps
from dashboard.pages import PageContext, fmt_range
from db.types import Row
from services import shipments as shipment_s

#: How often the route map is redrawn (at least).
ROUTE_REFRESH_MS = 15_000
#: Track points sent to the browser (down-sampled above that).
ROUTE_MAX_POINTS = 300

_TRACK_COLUMNS = ["device_id", "ts", "temp_c", "temp_min_c", "temp_max_c", "lat", "lon"]


def route_card(page: PageContext) -> html.Div:
    """The card: the map, and a line saying what it shows."""
    return html.Div(
        className="card card-route",
        children=[
            html.H2("Route"),
            dcc.Interval(
                id=ids.SHIPMENT_ROUTE_INTERVAL, interval=max(page.refresh_ms, ROUTE_REFRESH_MS)
            ),
            dcc.Graph(
                id=ids.SHIPMENT_ROUTE_MAP,
                config={"displayModeBar": False, "scrollZoom": True},
                figure=maps.placeholder(height=420),
            ),
            html.P(id=ids.SHIPMENT_ROUTE_NOTE, className="muted route-note"),
        ],
    )


def _place(ends: Row | None, which: str) -> maps.Place | None:
    if ends is None or ends[f"{which}_lat"] is None:
        return None
    return maps.Place(
        name=str(ends[f"{which}_name"]),
        lat=float(ends[f"{which}_lat"]),
        lon=float(ends[f"{which}_lon"]),
    )


def route_note(n_positions: int, n_readings: int, low: float | None, high: float | None) -> str:
    """What the map shows, in a sentence."""
    if n_positions == 0:
        return "No logger of this shipment has reported a position yet."
    drawn = (
        f"{n_readings} positions"
        if n_positions == n_readings
        else f"{n_readings} positions, drawn as {n_positions} points"
    )
    if low is None and high is None:
        return f"{drawn}. No temperature range is set for this shipment."
    return f"{drawn}, red where the temperature was outside {fmt_range(low, high)}."


def register_route_map(app: Dash, page: PageContext) -> None:
    """The route map's refresh."""
    rules = shipment_s.rule_sources(page.settings)

    @app.callback(
        Output(ids.SHIPMENT_ROUTE_MAP, "figure"),
        Output(ids.SHIPMENT_ROUTE_NOTE, "children"),
        Input(ids.SHIPMENT_ROUTE_INTERVAL, "n_intervals"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def refresh_route(_n: int | None, reference: str) -> tuple[go.Figure, str]:
        tiles = page.settings.web.map_tiles
        with page.connection() as conn:
            try:
                shipment_id = shipment_s.find_shipment(conn, key=reference)
            except NotFoundError:
                empty = maps.route_map(
                    pd.DataFrame(columns=_TRACK_COLUMNS), limits=None, tiles=tiles
                )
                return empty, "—"
            track = shipment_s.shipment_track(
                conn, shipment_id=shipment_id, max_points=ROUTE_MAX_POINTS
            )
            excursions = shipment_s.excursions(conn, shipment_id=shipment_id)
            limits = shipment_s.limits(conn, rules, shipment_id=shipment_id)
        points = pd.DataFrame(
            [{k: p[k] for k in _TRACK_COLUMNS} for p in track.positions.points],
            columns=_TRACK_COLUMNS,
        )
        fig = maps.route_map(
            points,
            limits=limits,
            excursions=pd.DataFrame(
                excursions, columns=["id", "device_id", "direction", "start_ts"]
            ),
            origin=_place(track.ends, "origin"),
            destination=_place(track.ends, "destination"),
            tiles=tiles,
            uirevision=reference,
        )
        note = route_note(
            len(points),
            track.positions.total_readings,
            None if limits is None else limits.low_c,
            None if limits is None else limits.high_c,
        )
        return fig, note

"""Shipment page ("/shipments/<reference>"): its temperature and humidity over the journey,
its excursions and alerts, the loggers and units on board."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pandas as pd
from dash import Dash, Input, Output, State, dcc, html

from coldchain.errors import NotFoundError
from dashboard import figures, ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_age,
    fmt_duration,
    fmt_range,
    fmt_temp,
    fmt_ts,
    table,
)
from db.queries import web

PATH_PREFIX = "/shipments/"
MAX_POINTS = 2000


def reference_from_path(pathname: str) -> str | None:
    """The shipment reference in ``/shipments/<reference>``, percent-decoded, or None."""
    if not pathname.startswith(PATH_PREFIX):
        return None
    ref = unquote(pathname[len(PATH_PREFIX) :].strip("/"))
    return ref or None


def _card(title: str, body: Any, *, className: str = "") -> html.Div:
    return html.Div(className=f"card {className}".strip(), children=[html.H2(title), body])


def layout(page: PageContext, reference: str) -> html.Div:
    """The shipment page's components for one shipment; the callback fills them live."""
    graph_config: Any = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
    return html.Div(
        className="page page-shipment",
        children=[
            dcc.Interval(id=ids.SHIPMENT_INTERVAL, interval=page.refresh_ms),
            dcc.Store(id=ids.SHIPMENT_KEY, data=reference),
            html.Div(
                className="breadcrumb",
                children=[dcc.Link("Fleet", href="/"), html.Span(" / "), html.Span(reference)],
            ),
            html.Div(id=ids.SHIPMENT_HEADER, className="shipment-header"),
            _card(
                "Temperature",
                dcc.Graph(id=ids.SHIPMENT_TEMP_GRAPH, config=graph_config),
                className="card-chart",
            ),
            _card(
                "Humidity",
                dcc.Graph(id=ids.SHIPMENT_RH_GRAPH, config=graph_config),
                className="card-chart",
            ),
            _card("Excursions", html.Div(id=ids.SHIPMENT_EXCURSIONS)),
            html.Div(
                className="grid-2",
                children=[
                    _card("Open alerts", html.Div(id=ids.SHIPMENT_ALERTS)),
                    _card("Legs", html.Div(id=ids.SHIPMENT_LEGS)),
                ],
            ),
            _card("Loggers", html.Div(id=ids.SHIPMENT_DEVICES)),
            _card("Units on board", html.Div(id=ids.SHIPMENT_UNITS)),
            html.Div(id=ids.SHIPMENT_UPDATED, className="updated"),
        ],
    )


def header(detail: dict[str, Any], now: datetime) -> list[Any]:
    """Title, condition and the key facts of a shipment."""
    product = detail["product"] or {}
    facts = [
        ("Lane", detail["lane"]),
        ("Status", detail["status"].replace("_", " ")),
        ("Carrier", detail["carrier"] or "—"),
        ("Product", product.get("name") or "—"),
        ("Range", fmt_range(product.get("temp_min_c"), product.get("temp_max_c"))),
        ("Now", fmt_temp(detail["current_temp_c"])),
        ("Last seen", fmt_age(detail["last_seen"], now)),
        ("Planned arrival", fmt_ts(detail["planned_arrival"])),
    ]
    return [
        html.Div(
            className="title-row",
            children=[
                html.H1(detail["reference"]),
                badge(figures.CONDITION_LABELS[detail["condition"]], detail["condition"]),
            ],
        ),
        html.Dl(
            className="facts",
            children=[
                html.Div(
                    [html.Dt(k), html.Dd(v)], className=f"fact fact-{k.lower().replace(' ', '-')}"
                )
                for k, v in facts
            ],
        ),
    ]


def excursions_table(rows: list[dict[str, Any]]) -> html.Div:
    """The current excursions, oldest first."""
    body = [
        html.Tr(
            className="excursion-row",
            **data_attrs(excursion_id=str(r["id"])),
            children=[
                html.Td(badge(r["direction"], "alarm" if r["direction"] == "high" else "info")),
                html.Td(r["device_id"]),
                html.Td(fmt_ts(r["start_ts"])),
                html.Td("open" if r["open"] else fmt_ts(r["end_ts"])),
                html.Td(fmt_duration(r["duration_s"])),
                html.Td(f"{r['min_c']:.1f} / {r['max_c']:.1f} °C"),
                html.Td(f"{r['degree_minutes']:.0f}"),
                html.Td("yes" if r["alarm"] else "no"),
            ],
        )
        for r in rows
    ]
    return table(
        ["", "Logger", "Start", "End", "Duration", "Min / max", "°C·min", "Alarm"],
        body,
        empty="No excursions.",
    )


def alerts_table(rows: list[dict[str, Any]], now: datetime) -> html.Div:
    """The shipment's unresolved alerts."""
    body = [
        html.Tr(
            className=ids.ALERT_ROW,
            **data_attrs(alert_id=str(r["id"]), state=r["state"]),
            children=[
                html.Td(badge(r["severity"], r["severity"])),
                html.Td(r["title"], className="wrap"),
                html.Td(fmt_age(r["triggered_at"], now), title=fmt_ts(r["triggered_at"])),
                html.Td(badge(r["state"], r["state"])),
                html.Td(r["acked_by"] or "—"),
            ],
        )
        for r in rows
    ]
    return table(
        ["Severity", "Alert", "Since", "State", "Acknowledged by"], body, empty="No open alerts."
    )


def devices_table(rows: list[dict[str, Any]], now: datetime) -> html.Div:
    """The loggers assigned to the shipment, with calibration and latest state."""
    body = []
    for r in rows:
        due = r["calibration_due"]
        overdue = due is not None and due < now.date()
        body.append(
            html.Tr(
                className="device-row" + ("" if r["current"] else " past"),
                **data_attrs(device_id=r["device_id"]),
                children=[
                    html.Td([html.Div(r["device_id"]), html.Div(r["model"], className="sub")]),
                    html.Td(
                        [
                            html.Div(r["calibration_cert"] or "—"),
                            html.Div(
                                ("overdue " if overdue else "due ") + fmt_ts(due),
                                className="sub" + (" text-alarm" if overdue else ""),
                            ),
                        ]
                    ),
                    html.Td(
                        f"{r['interval_s'] // 60} min"
                        if r["interval_s"] >= 60
                        else f"{r['interval_s']} s"
                    ),
                    html.Td(fmt_temp(r["temp_c"])),
                    html.Td(fmt_age(r["last_seen"], now), title=fmt_ts(r["last_seen"])),
                    html.Td(
                        f"{fmt_ts(r['assigned_from'])} → "
                        + ("now" if r["assigned_to"] is None else fmt_ts(r["assigned_to"]))
                    ),
                ],
            )
        )
    return table(
        ["Logger", "Calibration", "Interval", "Temperature", "Last seen", "Assigned"],
        body,
        empty="No logger assigned.",
    )


def legs_table(rows: list[dict[str, Any]]) -> html.Div:
    """The shipment's legs in order."""
    body = [
        html.Tr(
            [
                html.Td(str(r["seq"])),
                html.Td(r["mode"]),
                html.Td(f"{r['origin']} → {r['destination']}"),
                html.Td(r["carrier"] or "—"),
                html.Td(fmt_ts(r["planned_departure"])),
                html.Td(fmt_ts(r["planned_arrival"])),
            ]
        )
        for r in rows
    ]
    return table(
        ["#", "Mode", "Route", "Carrier", "Departure", "Arrival"], body, empty="No legs recorded."
    )


def units_table(rows: list[dict[str, Any]]) -> html.Div:
    """The serialised units (SSCC, SGTIN) that rode in the shipment."""
    body = [
        html.Tr(
            className="unit-row",
            children=[
                html.Td(html.Code(r["epc"])),
                html.Td(r["kind"].upper()),
                html.Td(r["lot"] or "—"),
                html.Td(fmt_ts(r["expiry"])),
                html.Td(
                    f"{fmt_ts(r['on_board_from'])} → "
                    + ("now" if r["on_board_to"] is None else fmt_ts(r["on_board_to"]))
                ),
            ],
        )
        for r in rows
    ]
    return table(["EPC", "Kind", "Lot", "Expiry", "On board"], body, empty="No units recorded.")


def max_gaps(
    devices: list[dict[str, Any]], *, gap_factor: float, bucket_s: int | None
) -> dict[str, float]:
    """Per logger, the distance between points beyond which the chart shows a gap."""
    return {
        d["device_id"]: gap_factor * max(float(d["interval_s"]), float(bucket_s or 0))
        for d in devices
    }


def _not_found(reference: str) -> tuple[Any, ...]:
    message = html.Div(
        className="not-found",
        children=[
            html.H1("Shipment not found"),
            html.P(f"There is no shipment with reference or id {reference!r}."),
            dcc.Link("Back to the fleet", href="/"),
        ],
    )
    empty = figures.temperature_figure(pd.DataFrame(), temp_min_c=None, temp_max_c=None)
    nothing = html.P("—", className="muted")
    return message, empty, empty, nothing, nothing, nothing, nothing, nothing, ""


def register(app: Dash, page: PageContext) -> None:
    """The shipment page's live refresh."""

    @app.callback(
        Output(ids.SHIPMENT_HEADER, "children"),
        Output(ids.SHIPMENT_TEMP_GRAPH, "figure"),
        Output(ids.SHIPMENT_RH_GRAPH, "figure"),
        Output(ids.SHIPMENT_EXCURSIONS, "children"),
        Output(ids.SHIPMENT_ALERTS, "children"),
        Output(ids.SHIPMENT_DEVICES, "children"),
        Output(ids.SHIPMENT_LEGS, "children"),
        Output(ids.SHIPMENT_UNITS, "children"),
        Output(ids.SHIPMENT_UPDATED, "children"),
        Input(ids.SHIPMENT_INTERVAL, "n_intervals"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def refresh(_n: int | None, reference: str) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        with page.connection() as conn:
            try:
                detail = web.get_shipment_detail(
                    conn=conn, key=reference, offline_factor=page.offline_factor
                )
            except NotFoundError:
                return _not_found(reference)
            series = web.shipment_readings(
                conn=conn, shipment_id=detail["shipment_id"], max_points=MAX_POINTS
            )
            excursions = web.list_excursions(conn=conn, shipment_id=detail["shipment_id"])
        product = detail["product"] or {}
        readings = pd.DataFrame(
            series.points,
            columns=["device_id", "ts", "n", "temp_c", "temp_min_c", "temp_max_c", "rh"],
        )
        gaps = max_gaps(detail["devices"], gap_factor=page.offline_factor, bucket_s=series.bucket_s)
        temp = figures.temperature_figure(
            readings,
            temp_min_c=product.get("temp_min_c"),
            temp_max_c=product.get("temp_max_c"),
            freeze_limit_c=product.get("freeze_limit_c"),
            excursions=pd.DataFrame(
                excursions, columns=["id", "direction", "start_ts", "end_ts", "last_out_ts"]
            ),
            max_gap_s=gaps,
            uirevision=reference,
        )
        rh = figures.humidity_figure(
            readings,
            rh_min=product.get("rh_min"),
            rh_max=product.get("rh_max"),
            max_gap_s=gaps,
            uirevision=reference,
        )
        resolution = (
            f"{series.total_readings} readings"
            if series.resolution == "raw"
            else f"{series.total_readings} readings in {series.bucket_s} s buckets (min/mean/max)"
        )
        return (
            header(detail, now),
            temp,
            rh,
            excursions_table(excursions),
            alerts_table(detail["alerts"], now),
            devices_table(detail["devices"], now),
            legs_table(detail["legs"]),
            units_table(detail["units"]),
            f"{resolution} · updated {now:%H:%M:%S} UTC",
        )

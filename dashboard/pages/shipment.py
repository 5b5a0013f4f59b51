"""Shipment page ("/shipments/<reference>"): a status banner (where the shipment stands, in a
line: :mod:`dashboard.pages.shipment_banner`), its temperature and humidity over the journey,
its MKT and stability budget use (:mod:`dashboard.pages.shipment_stability`), its excursions and
alerts, the loggers and units on board, the event timeline
(:mod:`dashboard.pages.shipment_timeline`); and its life (the state, the buttons that move it,
the arrival verdict: :mod:`dashboard.pages.shipment_life`).

The MKT and budget figures are the excursion report's own (:func:`services.shipments.stability`,
as of now): the numbers on this page are the ones
the QA review signs. They come from a callback of their own, refreshed less often than the
chart (:data:`STABILITY_REFRESH_MS`): they are computed over every reading of the trip.

An unknown reference or id gets a page of its own ("No shipment SHP-9", with a link back to the
fleet: :func:`page_layout`), not the cards empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from coldchain.errors import (
    NotFoundError,
)
from coldchain.thermal.limits import Limits, is_offline
from coldchain.timeline import latest
from dashboard import figures, ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_age,
    fmt_clock,
    fmt_duration,
    fmt_range,
    fmt_site_ts,
    fmt_temp,
    fmt_ts,
    table,
)
from dashboard.pages.shipment_banner import Banner, banner_view, out_of_range, status_banner
from dashboard.pages.shipment_forecast import forecast_card, register_forecast
from dashboard.pages.shipment_life import lifecycle_card, register_lifecycle
from dashboard.pages.shipment_route import register_route_map, route_card
from dashboard.pages.shipment_stability import stability_panel
from dashboard.pages.shipment_timeline import timeline_table
from db.types import Conn
from services import lifecycle as lifecycle_s
from services import locations as locations_s
from services import shipments as shipment_s
from services import timeline as timeline_s

PATH_PREFIX = "/shipments/"
MAX_POINTS = 2000
#: How often the MKT and budget figures are recomputed (at least).
STABILITY_REFRESH_MS = 30_000


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
            lifecycle_card(),
            forecast_card(),  # dashboard/pages/shipment_forecast.py
            _card("Arrival verdict", html.Div(id=ids.SHIPMENT_VERDICTS), className="card-verdict"),
            dcc.Interval(
                id=ids.SHIPMENT_STABILITY_INTERVAL,
                interval=max(page.refresh_ms, STABILITY_REFRESH_MS),
            ),
            _card(
                "MKT and stability budget",
                html.Div(
                    className="grid-2 grid-stability",
                    children=[
                        html.Div(id=ids.SHIPMENT_STABILITY),
                        dcc.Graph(
                            id=ids.SHIPMENT_STABILITY_GRAPH,
                            config={"displayModeBar": False},
                            style={"height": "210px"},
                        ),
                    ],
                ),
                className="card-stability",
            ),
            _card(
                "Temperature",
                dcc.Graph(id=ids.SHIPMENT_TEMP_GRAPH, config=graph_config),
                className="card-chart",
            ),
            route_card(page),  # the route map: dashboard/pages/shipment_route.py
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
            _card("Timeline", html.Div(id=ids.SHIPMENT_TIMELINE)),
            html.Div(id=ids.SHIPMENT_UPDATED, className="updated"),
        ],
    )


def header(
    detail: dict[str, Any],
    now: datetime,
    limits: Limits | None = None,
    banner: Banner | None = None,
) -> list[Any]:
    """Title, badge and the key facts of a shipment; "Range" is ``limits``, the range the
    rules engine judges the shipment by (None: no temperature rule in force, shown as "—"),
    and "Now" is red when the current temperature is outside it. The badge is the banner's
    (:func:`dashboard.pages.shipment_banner.status_banner`, drawn under the title), else the
    fleet's condition."""
    product = detail["product"] or {}
    low, high = (None, None) if limits is None else (limits.low_c, limits.high_c)
    outside = out_of_range(limits, detail["current_temp_c"])
    facts = [
        ("Lane", detail["lane"], ""),
        ("Status", detail["status"].replace("_", " "), ""),
        ("Carrier", detail["carrier"] or "—", ""),
        ("Product", product.get("name") or "—", ""),
        ("Range", fmt_range(low, high), ""),
        ("Now", fmt_temp(detail["current_temp_c"]), "text-alarm" if outside else ""),
        ("Last seen", fmt_age(detail["last_seen"], now), ""),
        (
            "Planned arrival",
            fmt_site_ts(detail["planned_arrival"], *_site(detail, "destination")),
            "",
        ),
    ]
    label, kind = (
        (figures.CONDITION_LABELS[detail["condition"]], detail["condition"])
        if banner is None
        else (banner.label, banner.tone)
    )
    return [
        html.Div(
            className="title-row",
            children=[html.H1(detail["reference"]), badge(label, kind)],
        ),
        html.Div(id=ids.SHIPMENT_BANNER, children=None if banner is None else banner_view(banner)),
        html.Dl(
            className="facts",
            children=[
                html.Div(
                    [html.Dt(k), html.Dd(v, className=cls)],
                    className=f"fact fact-{k.lower().replace(' ', '-')}",
                    **({} if k != "Now" else data_attrs(outside=outside or "no")),
                )
                for k, v, cls in facts
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


def devices_table(
    rows: list[dict[str, Any]], now: datetime, *, offline_factor: float = 10.0
) -> html.Div:
    """The loggers assigned to the shipment, with calibration and latest state; a current
    logger silent for ``offline_factor`` × its interval is marked offline
    (:func:`coldchain.thermal.limits.is_offline`, the rules engine's "no data")."""
    body = []
    for r in rows:
        due = r["calibration_due"]
        overdue = due is not None and due < now.date()
        offline = r["current"] and is_offline(
            r["last_seen"],
            since=r["assigned_from"],
            interval_s=r["interval_s"],
            factor=offline_factor,
            now=now,
        )
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
                    html.Td(
                        [fmt_age(r["last_seen"], now)]
                        + ([" ", badge("Offline", "offline")] if offline else []),
                        title=fmt_ts(r["last_seen"]),
                        className="device-offline" if offline else "",
                    ),
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


def _site(row: Mapping[str, Any], end: str) -> tuple[str | None, str]:
    """(time zone, name) of a shipment's or leg's ``end`` ("origin", "destination"), from the
    ``site_zones`` the refresh looked up (absent: the person's zone only)."""
    zones = row.get("site_zones") or {}
    return zones.get(row[end]), row[end]


def with_site_zones(conn: Conn, detail: dict[str, Any]) -> None:
    """Put the time zones of the sites the shipment and its legs name into ``detail`` and each
    leg (``site_zones``), for :func:`_site`."""
    ends = [detail, *detail["legs"]]
    zones = locations_s.site_time_zones(conn, [e[end] for e in ends for end in _ENDS])
    for row in ends:
        row["site_zones"] = zones


_ENDS = ("origin", "destination")


def legs_table(rows: list[dict[str, Any]]) -> html.Div:
    """The shipment's legs in order (departure and arrival also in the sites' local time)."""
    body = [
        html.Tr(
            [
                html.Td(str(r["seq"])),
                html.Td(r["mode"]),
                html.Td(f"{r['origin']} → {r['destination']}", className="wrap"),
                html.Td(r["carrier"] or "—", className="wrap"),
                html.Td(fmt_site_ts(r["planned_departure"], *_site(r, "origin"))),
                html.Td(fmt_site_ts(r["planned_arrival"], *_site(r, "destination"))),
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


def not_found(reference: str) -> html.Div:
    """The page of a reference or id that names no shipment."""
    return html.Div(
        className="page page-shipment",
        children=[
            html.Div(
                className="not-found",
                children=[
                    html.H1(f"No shipment {reference}"),
                    html.P(
                        f"There is no shipment with the reference or id {reference!r}. "
                        "Check the reference, or find the shipment on the fleet page "
                        "(its search also looks in purchase orders and other references)."
                    ),
                    dcc.Link("← Back to the fleet", href="/", className="btn"),
                ],
            )
        ],
    )


def page_layout(page: PageContext, reference: str) -> html.Div:
    """The shipment's page, or :func:`not_found` when ``reference`` names no shipment."""
    with page.connection() as conn:
        try:
            shipment_s.find_shipment(conn, key=reference)
        except NotFoundError:
            return not_found(reference)
    return layout(page, reference)


def register(app: Dash, page: PageContext) -> None:
    """The shipment page's live refresh, its MKT and budget figures, and its life."""
    rules = shipment_s.rule_sources(page.settings)
    register_lifecycle(app, page)
    register_route_map(app, page)
    register_forecast(app, page)

    @app.callback(
        Output(ids.SHIPMENT_STABILITY, "children"),
        Output(ids.SHIPMENT_STABILITY_GRAPH, "figure"),
        Input(ids.SHIPMENT_STABILITY_INTERVAL, "n_intervals"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def stability(_n: int | None, reference: str) -> tuple[Any, ...]:
        as_of = datetime.now(UTC).replace(microsecond=0)  # as the QA review's report
        with page.connection() as conn:
            try:
                shipment_id = shipment_s.find_shipment(conn, key=reference)
            except NotFoundError:
                nothing = figures.stability_gauges(mkt_c=None, mkt_limit_c=None, share_used=None)
                return html.P("—", className="muted"), nothing
            figures_now = shipment_s.stability(conn, rules, shipment_id=shipment_id, as_of=as_of)
            verdicts = lifecycle_s.verdicts(conn, shipment_id=shipment_id)
        return stability_panel(
            figures_now.loggers,
            figures_now.mkt,
            figures_now.product,
            warning_share=figures_now.warning_share,
            verdicts=verdicts,
        )

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
        Output(ids.SHIPMENT_TIMELINE, "children"),
        Input(ids.SHIPMENT_INTERVAL, "n_intervals"),
        Input(ids.SHIPMENT_CHANGED, "data"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def refresh(_n: int | None, _changed: int | None, reference: str) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        with page.connection() as conn:
            try:
                detail = shipment_s.shipment_detail(
                    conn, key=reference, offline_factor=page.offline_factor
                )
            except NotFoundError:
                return (not_found(reference), *[no_update] * 9)
            series = shipment_s.shipment_readings(
                conn, shipment_id=detail["shipment_id"], max_points=MAX_POINTS
            )
            excursions = shipment_s.excursions(conn, shipment_id=detail["shipment_id"])
            # The band is the range the rules engine judges by (rules file and stored rule
            # versions on top of the product row), not the product row alone.
            limits = shipment_s.limits(conn, rules, shipment_id=detail["shipment_id"])
            with_site_zones(conn, detail)
            verdicts = lifecycle_s.verdicts(conn, shipment_id=detail["shipment_id"])
            events = timeline_s.shipment_timeline(conn, shipment_id=detail["shipment_id"])
        banner = status_banner(
            status=detail["status"],
            condition=detail["condition"],
            excursions=excursions,
            alerts=detail["alerts"],
            verdicts=verdicts,
            decision=latest(events, "signed"),
            current_temp_c=detail["current_temp_c"],
            limits=limits,
            now=now,
        )
        product = detail["product"] or {}
        readings = pd.DataFrame(
            series.points,
            columns=["device_id", "ts", "n", "temp_c", "temp_min_c", "temp_max_c", "rh"],
        )
        gaps = max_gaps(detail["devices"], gap_factor=page.gap_factor, bucket_s=series.bucket_s)
        temp = figures.temperature_figure(
            readings,
            temp_min_c=None if limits is None else limits.low_c,
            temp_max_c=None if limits is None else limits.high_c,
            freeze_limit_c=None if limits is None else limits.freeze_c,
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
            header(detail, now, limits, banner),
            temp,
            rh,
            excursions_table(excursions),
            alerts_table(detail["alerts"], now),
            devices_table(detail["devices"], now, offline_factor=page.offline_factor),
            legs_table(detail["legs"]),
            units_table(detail["units"]),
            f"{resolution} · updated {fmt_clock(now)}",
            timeline_table(events),
        )

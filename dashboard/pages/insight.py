"""Insight ("/insight", every role): lane risk, a lane's months, carriers leg by leg, and the
weekly lane report with its e-mail subscription (README "Insight").

* **Lanes**: every lane's figures from its finished shipments, the riskiest first, the score
  with its parts (points of each), or the note saying how many shipments a score still needs.
* **A lane** (the pick list; by default the riskiest): its figures per calendar month
  (seasonality, a Plotly chart built by :func:`monthly_figure` from plain values) and its
  carriers compared leg by leg, each below the minimum volume marked with its note.
* **Weekly report**: the last complete week's report of the lane, PDF or CSV; subscribe to it
  by e-mail (your address on file, or the one you type), see your subscriptions (an admin sees
  everyone's) and end one.

The figures come from :mod:`services.insight`, the report and subscriptions from
:mod:`services.lane_reports`: the same calls as the API's ``/insight`` routes and
``coldchain insight``. Ids are this page's own (``insight-*``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from coldchain.errors import ColdchainError
from coldchain.insight.carriers import CarrierScore
from coldchain.insight.lanes import LaneRisk
from coldchain.insight.weeks import last_complete_week
from dashboard.pages import PageContext, badge, data_attrs, fmt_duration, table
from dashboard.pages.forms import SESSION_ENDED, caller, labelled, text_input
from db.types import Row
from security.accounts import Principal
from services import insight, lane_reports

PATH = "/insight"
NAV = "nav-insight"
LANE = "insight-lane"
LANES = "insight-lanes"
DETAIL = "insight-detail"
CHART = "insight-months"
CARRIERS = "insight-carriers"
LANE_ROW = "insight-lane-row"
DOWNLOAD = "insight-download"
DOWNLOAD_PDF = "insight-download-pdf"
DOWNLOAD_CSV = "insight-download-csv"
EMAIL = "insight-email"
SUBSCRIBE = "insight-subscribe"
SUBSCRIPTIONS = "insight-subscriptions"
END_PICK = "insight-end-pick"
END = "insight-end"
FEEDBACK = "insight-feedback"


def nav_link() -> dcc.Link:
    """The "Insight" link (every role reads it)."""
    return dcc.Link("Insight", href=PATH, id=NAV, className="nav-link")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _band(r: LaneRisk) -> str:
    if r.band is None:
        return "—"
    return f"{r.band.low_c:.1f} – {r.band.high_c:.1f} °C"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    sign = "+" if seconds > 0 else "−" if seconds < 0 else ""
    return f"{sign}{fmt_duration(abs(seconds))}" if seconds else "on plan"


def _score(r: LaneRisk) -> Any:
    if r.score is None:
        # the whole note ("lane … has 3 finished shipments; a risk score needs 5") on hover
        return html.Span(f"{r.shipments} of {r.minimum} needed", title=r.note, className="muted")
    kind = "alarm" if r.score >= 50 else "warning" if r.score >= 25 else "ok"
    parts = " + ".join(f"{p.points:.0f} {p.label}" for p in r.parts)
    return html.Div([badge(f"{r.score:.0f}", kind), html.Div(f"= {parts}", className="muted")])


def lane_rows(rows: Sequence[LaneRisk]) -> list[html.Tr]:
    """One row per lane (or month): its score with the parts (or why it has none), then its
    figures."""
    return [
        html.Tr(
            className=LANE_ROW,
            **data_attrs(lane=r.lane, score="" if r.score is None else f"{r.score:.1f}"),
            children=[
                html.Td(r.lane if r.month is None else r.month),
                html.Td(r.mode),
                html.Td(_score(r), style={"whiteSpace": "normal", "minWidth": "200px"}),
                html.Td(str(r.shipments)),
                html.Td(_pct(r.excursion_rate)),
                html.Td(
                    "—"
                    if r.time_out_mean_s is None
                    else f"{fmt_duration(r.time_out_mean_s)} / {fmt_duration(r.time_out_p90_s)}"
                ),
                html.Td(_band(r)),
                html.Td(f"{_delay(r.delay_median_s)} · {_pct(r.late_share)} late"),
                html.Td("—" if r.alarm_rate is None else f"{r.alarm_rate:.2f}"),
            ],
        )
        for r in rows
    ]


def lane_headers(first: str = "Lane") -> list[str]:
    return [
        first,
        "Mode",
        "Risk score (0–100)",
        "Finished",
        "With excursions",
        "Out of range (mean / p90)",
        "90 % of readings",
        "Arrival vs plan",
        "Alerts / shipment",
    ]


def carrier_rows(cards: Sequence[CarrierScore]) -> list[html.Tr]:
    return [
        html.Tr(
            **data_attrs(carrier=c.carrier, enough="yes" if c.enough else "no"),
            children=[
                html.Td(c.carrier),
                html.Td(str(c.legs)),
                html.Td(str(c.shipments)),
                html.Td(
                    f"{_pct(c.on_time_share)} of {c.timed_legs}" if c.timed_legs else "not recorded"
                ),
                html.Td(f"{c.excursions_per_100:.0f}"),
                html.Td(fmt_duration(c.time_out_per_shipment_s)),
                html.Td(
                    badge("scored", "ok")
                    if c.enough
                    else html.Span(f"{c.legs} of {c.minimum} legs needed", className="muted")
                ),
            ],
        )
        for c in cards
    ]


CARRIER_HEADERS = [
    "Carrier",
    "Legs",
    "Shipments",
    "On time (of legs with an arrival)",
    "Excursions / 100 shipments",
    "Time out of range / shipment",
    "Volume",
]


def monthly_figure(months: Sequence[LaneRisk]) -> go.Figure:
    """The lane's months (pure): excursion rate and late share (%), shipments as bar labels."""
    labels = [m.month for m in months]
    fig = go.Figure()
    fig.add_bar(
        x=labels,
        y=[100 * (m.excursion_rate or 0.0) for m in months],
        name="shipments with excursions (%)",
        text=[f"{m.shipments} shipments" for m in months],
        textposition="outside",
        marker_color="#d9534f",
    )
    fig.add_scatter(
        x=labels,
        y=[None if m.late_share is None else 100 * m.late_share for m in months],
        name="arrived late (%)",
        mode="lines+markers",
        line={"color": "#337ab7"},
    )
    fig.update_layout(
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        yaxis={"title": "%", "range": [0, 115]},
        legend={"orientation": "h", "y": 1.15},
        xaxis={"type": "category", "title": "month of arrival"},
        template="plotly_white",
    )
    return fig


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The page's frame; the callbacks fill it (the database is read per request, not here)."""
    return html.Div(
        className="page page-insight",
        children=[
            html.Div(className="page-header", children=[html.H1("Insight")]),
            html.Div(
                className="card",
                children=[
                    html.H2("Lanes, from their finished shipments"),
                    html.P(
                        "Risk score = 40 × excursion rate + 20 × min(1, mean time out of range "
                        "/ 4 h) + 20 × share late + 20 × min(1, alerts per shipment); shown "
                        "once a lane has enough finished shipments.",
                        className="muted",
                    ),
                    dcc.Loading(html.Div(id=LANES), type="dot"),
                ],
            ),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="form-row",
                        children=[
                            labelled("Lane", dcc.Dropdown(id=LANE, clearable=False), grow=True),
                            html.Button("Report PDF", id=DOWNLOAD_PDF, className="btn", n_clicks=0),
                            html.Button("Report CSV", id=DOWNLOAD_CSV, className="btn", n_clicks=0),
                        ],
                    ),
                    dcc.Download(id=DOWNLOAD),
                    dcc.Loading(html.Div(id=DETAIL), type="dot"),
                    dcc.Graph(id=CHART, config={"displayModeBar": False}),
                    html.H2("Carriers on this lane, leg by leg"),
                    html.Div(id=CARRIERS),
                ],
            ),
            html.Div(
                className="card",
                children=[
                    html.H2("Weekly lane report by e-mail"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "E-mail (empty: yours on file)",
                                text_input(EMAIL, placeholder="name@example.org", max_length=320),
                                grow=True,
                            ),
                            html.Button(
                                "Subscribe to this lane", id=SUBSCRIBE, className="btn", n_clicks=0
                            ),
                            labelled(
                                "Subscription",
                                dcc.Dropdown(id=END_PICK, placeholder="pick one to end"),
                                grow=True,
                            ),
                            html.Button("End it", id=END, className="btn", n_clicks=0),
                        ],
                    ),
                    html.P(id=FEEDBACK, className="muted"),
                    html.Div(id=SUBSCRIPTIONS),
                ],
            ),
        ],
    )


def _subscription_rows(rows: Sequence[Row]) -> list[html.Tr]:
    return [
        html.Tr(
            **data_attrs(subscription=str(r["subscription_id"])),
            children=[
                html.Td(r["username"]),
                html.Td(f"lane {r['lane']}" if r["lane"] else f"carrier {r['carrier']}"),
                html.Td(r["email"]),
                html.Td(badge("active", "ok") if r["active"] else badge("ended", "offline")),
            ],
        )
        for r in rows
    ]


def _subscriptions(page: PageContext) -> tuple[Any, list[dict[str, Any]]]:
    who = caller()
    if who is None:
        return html.P(SESSION_ENDED, className="muted"), []
    with page.connection() as conn:
        rows = lane_reports.subscriptions(conn, who, everyone=who.can("admin"))
    options = [
        {
            "label": f"#{r['subscription_id']} {r['lane'] or r['carrier']} → {r['email']}",
            "value": r["subscription_id"],
        }
        for r in rows
        if r["active"]
    ]
    rows_html = _subscription_rows(rows)
    return table(
        ["Person", "Report of", "E-mail", "State"], rows_html, empty="No subscriptions."
    ), options


def register(app: Dash, page: PageContext) -> None:
    @app.callback(
        Output(LANES, "children"),
        Output(LANE, "options"),
        Output(LANE, "placeholder"),
        Input(LANE, "id"),
    )
    def lanes(_: str) -> tuple[Any, list[dict[str, str]], str]:
        with page.connection() as conn:
            rows = insight.lane_risk(conn, minimum=page.settings.insight.min_shipments)
        options = [{"label": f"{r.lane} ({r.mode})", "value": r.lane} for r in rows]
        first = rows[0].lane if rows else "no lanes yet"
        body = table(lane_headers(), lane_rows(rows), empty="No lanes registered.")
        return body, options, f"{first} (riskiest)"

    @app.callback(
        Output(DETAIL, "children"),
        Output(CHART, "figure"),
        Output(CHART, "style"),
        Output(CARRIERS, "children"),
        Input(LANE, "value"),
        Input(LANE, "options"),
    )
    def detail(lane: str | None, options: list[dict[str, str]] | None) -> tuple[Any, Any, Any, Any]:
        code = lane or (options[0]["value"] if options else None)
        hidden = {"display": "none"}  # no empty axes where there is nothing to draw
        if code is None:
            return html.P("No lane to show.", className="muted"), go.Figure(), hidden, None
        need = page.settings.insight
        with page.connection() as conn:
            months = insight.lane_months(conn, lane=code, minimum=need.min_shipments)
            cards = insight.carrier_scores(conn, lane=code, minimum=need.min_carrier_legs)
        head = html.H2(f"{code} by month of arrival", **data_attrs(lane=code))
        month_table = table(
            lane_headers("Month"), lane_rows(months), empty="No finished shipment yet."
        )
        carriers = table(CARRIER_HEADERS, carrier_rows(cards), empty="No carrier on this lane.")
        return (
            html.Div([head, month_table]),
            monthly_figure(months),
            {} if months else hidden,
            carriers,
        )

    @app.callback(
        Output(DOWNLOAD, "data"),
        Input(DOWNLOAD_PDF, "n_clicks"),
        Input(DOWNLOAD_CSV, "n_clicks"),
        State(LANE, "value"),
        State(LANE, "options"),
        prevent_initial_call=True,
    )
    def download(pdf: int, csv: int, lane: str | None, options: Any) -> Any:
        code = lane or (options[0]["value"] if options else None)
        if code is None:
            return no_update
        week = last_complete_week(datetime.now(UTC))
        with page.connection() as conn:
            report = lane_reports.weekly_report(
                conn,
                week=week,
                lane=code,
                min_shipments=page.settings.insight.min_shipments,
                min_carrier_legs=page.settings.insight.min_carrier_legs,
            )
        fmt = "pdf" if ctx.triggered_id == DOWNLOAD_PDF else "csv"
        content = report.pdf if fmt == "pdf" else report.csv
        return {
            "filename": f"{report.name}.{fmt}",
            "content": base64.b64encode(content).decode("ascii"),
            "base64": True,
            "type": "application/pdf" if fmt == "pdf" else "text/csv",
        }

    @app.callback(
        Output(SUBSCRIPTIONS, "children"),
        Output(END_PICK, "options"),
        Output(FEEDBACK, "children"),
        Input(SUBSCRIBE, "n_clicks"),
        Input(END, "n_clicks"),
        State(LANE, "value"),
        State(LANE, "options"),
        State(EMAIL, "value"),
        State(END_PICK, "value"),
    )
    def subscriptions(
        subscribe: int, end: int, lane: str | None, options: Any, email: str | None, pick: Any
    ) -> tuple[Any, Any, str]:
        who = caller()
        message = ""
        if who is not None and ctx.triggered_id in (SUBSCRIBE, END):
            code = lane or (options[0]["value"] if options else None)
            try:
                with page.connection() as conn:
                    if ctx.triggered_id == SUBSCRIBE and code is not None:
                        row = lane_reports.subscribe(conn, who, lane=code, email=email or None)
                        message = f"Subscribed: lane {code} every Monday to {row['email']}."
                    elif ctx.triggered_id == END and pick is not None:
                        lane_reports.unsubscribe(conn, who, int(pick))
                        message = f"Subscription #{pick} ended."
            except ColdchainError as exc:
                message = f"Not done — {exc}"
        body, picks = _subscriptions(page)
        return body, picks, message if who is not None else SESSION_ENDED

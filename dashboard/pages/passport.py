"""Passport page ("/passport"): scan or paste a unit's identifier, see its verdict, its
temperature history across every container and shipment, its excursions, budget use and MKT,
and its chain of custody.

The input takes whatever a barcode scanner types (a keyboard wedge ends with Enter, which
submits): EPC URI, GS1 Digital Link, element string with FNC1 as GS or a stand-in, or a bare
SSCC. ``/passport?id=...`` opens a unit directly (links from other pages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import pandas as pd
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from coldchain.errors import NotFoundError
from coldchain.gs1 import IdentifierError
from dashboard import figures, ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_duration,
    fmt_range,
    fmt_temp,
    fmt_ts,
    shipment_href,
    table,
)
from services.reports import ReportSettings
from traceability import lookup
from traceability.passport import Passport
from traceability.verify import Verification

PATH = "/passport"

#: Verdict → badge colour (the stylesheet's existing kinds) and label.
STATUS_BADGES = {
    "ok": ("ok", "OK to dispense"),
    "exposed": ("warning", "Exposed, not cleared"),
    "expired": ("major", "Expired"),
    "suspect": ("alarm", "Suspect"),
    "recalled": ("critical", "Recalled"),
    "unknown": ("offline", "Unknown"),
    "invalid": ("offline", "Not an identifier"),
}


def passport_href(identifier: str) -> str:
    """The dashboard path of a unit's passport."""
    return f"{PATH}?id={quote(identifier, safe='')}"


def id_from_search(search: str | None) -> str | None:
    """The ``id`` query parameter of a location's search string, if any."""
    values = parse_qs((search or "").lstrip("?")).get("id")
    return values[0] if values else None


def layout(page: PageContext) -> html.Div:
    """The scan box and the (empty) result the callback fills."""
    return html.Div(
        className="page page-passport",
        children=[
            dcc.Location(id=ids.PASSPORT_LOCATION, refresh=False),
            html.Div(className="page-header", children=[html.H1("Unit passport")]),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="form-row",
                        children=[
                            dcc.Input(
                                id=ids.PASSPORT_INPUT,
                                type="text",
                                placeholder="Scan or paste an SGTIN or SSCC: barcode data, "
                                "Digital Link, EPC URI",
                                autoFocus=True,
                                autoComplete="off",
                                spellCheck=False,
                                debounce=False,
                                style={"flex": "1", "minWidth": "420px"},
                            ),
                            html.Button("Look up", id=ids.PASSPORT_BUTTON, className="btn btn-ack"),
                        ],
                    ),
                ],
            ),
            dcc.Loading(html.Div(id=ids.PASSPORT_RESULT), type="dot"),
        ],
    )


def _card(title: str, body: Any) -> html.Div:
    return html.Div(className="card", children=[html.H2(title), body])


def _facts(pairs: list[tuple[str, str]]) -> html.Dl:
    return html.Dl(
        className="facts",
        children=[
            html.Div([html.Dt(k), html.Dd(v)], className=f"fact fact-{k.lower().replace(' ', '-')}")
            for k, v in pairs
        ],
    )


def verdict_block(v: Verification) -> html.Div:
    """The scan's verdict: status badge and every reason."""
    kind, label = STATUS_BADGES[v.status]
    return html.Div(
        className="passport-verdict",
        **data_attrs(status=v.status),
        children=[
            html.Div(
                className="title-row",
                children=[
                    html.H1(v.epc or (v.key.epc if v.key else v.input.strip()) or "—"),
                    html.Span(
                        badge(label, kind), id=ids.PASSPORT_STATUS, **data_attrs(status=v.status)
                    ),
                ],
            ),
            html.Ul([html.Li(r) for r in v.reasons], className="passport-reasons"),
        ],
    )


def custody_table(p: Passport) -> html.Div:
    """Which container rode in which shipment and legs, and when."""
    body = [
        html.Tr(
            className="custody-row",
            **data_attrs(shipment=r.shipment_reference),
            children=[
                html.Td(html.Code(r.container)),
                html.Td(dcc.Link(r.shipment_reference, href=shipment_href(r.shipment_reference))),
                html.Td(
                    ", ".join(
                        f"{leg['seq']}: {leg['origin']} → {leg['destination']}" for leg in r.legs
                    )
                    or "—"
                ),
                html.Td(fmt_ts(r.start)),
                html.Td("—" if r.end is None else fmt_ts(r.end)),
            ],
        )
        for r in p.rides
    ]
    return table(
        ["Container", "Shipment", "Legs", "From", "To"], body, empty="Never in a shipment."
    )


def packing_table(p: Passport) -> html.Div:
    """The containers the unit was in, and when."""
    body = [
        html.Tr(
            [
                html.Td(html.Code(c.container)),
                html.Td(c.kind.upper()),
                html.Td(str(c.depth)),
                html.Td(fmt_ts(c.start)),
                html.Td("still packed" if c.end is None else fmt_ts(c.end)),
            ]
        )
        for c in p.path
    ]
    return table(["Container", "Kind", "Level", "Packed", "Unpacked"], body, empty="Never packed.")


def excursions_table(p: Passport) -> html.Div:
    """Excursions the rules engine recorded while the unit was in the logger's shipment."""
    body = [
        html.Tr(
            className="passport-excursion-row",
            **data_attrs(excursion_id=str(e.id), cleared=str(e.cleared).lower()),
            children=[
                html.Td(badge(e.direction, "alarm" if e.direction == "high" else "info")),
                html.Td(e.shipment_reference),
                html.Td(e.device_id),
                html.Td(fmt_ts(e.exposed_from)),
                html.Td("open" if e.exposed_to is None else fmt_ts(e.exposed_to)),
                html.Td(f"{e.min_c:.1f} / {e.max_c:.1f} °C"),
                html.Td(badge("released", "ok") if e.cleared else badge(e.qa_state, "warning")),
            ],
        )
        for e in p.recorded_excursions
    ]
    return table(
        ["", "Shipment", "Logger", "Exposed from", "To", "Min / max", "QA"],
        body,
        empty="Not exposed to any recorded excursion.",
    )


def figures_facts(p: Passport) -> html.Dl:
    """Budget use, MKT, range and coverage."""
    f = p.figures
    usage, result = f.worst_usage, f.worst_mkt
    product = p.product
    budget = "—"
    if usage is not None and f.budget is not None:
        budget = (
            f"{fmt_duration(usage.counted.total_seconds())} of "
            f"{fmt_duration(f.budget.total_seconds())} ({usage.share_used:.0%}, {usage.status})"
        )
    return _facts(
        [
            ("Product", (product.name or product.gtin) if product else "unknown"),
            (
                "Range",
                "—" if f.limits is None else fmt_range(f.limits.low_c, f.limits.high_c),
            ),
            (
                "Time out of range",
                "—" if usage is None else fmt_duration(usage.time_out.total_seconds()),
            ),
            (
                "Unknown (gaps)",
                "—" if usage is None else fmt_duration(usage.time_gap.total_seconds()),
            ),
            ("Stability budget used", budget),
            ("MKT", "—" if result is None else f"{fmt_temp(result.mkt_c)} ({result.weighting})"),
            ("Excursions", str(len(f.excursions))),
            ("Readings", str(len(p.readings))),
        ]
    )


def temperature(p: Passport) -> dcc.Graph:
    """The inherited readings, one line per logger, excursions shaded."""
    frame = pd.DataFrame(
        [{"device_id": r.device_id, "ts": r.ts, "temp_c": r.temp_c} for r in p.readings],
        columns=["device_id", "ts", "temp_c"],
    )
    excursions = pd.DataFrame(
        [
            {
                "id": i,
                "direction": e.direction,
                "start_ts": e.start,
                "end_ts": e.end,
                "last_out_ts": e.last_out_ts,
            }
            for i, (_, e) in enumerate(p.figures.excursions)
        ],
        columns=["id", "direction", "start_ts", "end_ts", "last_out_ts"],
    )
    limits = p.figures.limits  # what the rules engine judges by, not the product row alone
    fig = figures.temperature_figure(
        frame,
        temp_min_c=None if limits is None else limits.low_c,
        temp_max_c=None if limits is None else limits.high_c,
        freeze_limit_c=None if limits is None else limits.freeze_c,
        excursions=excursions,
        max_gap_s=p.figures.max_gap.total_seconds(),
        uirevision=p.unit.epc,
    )
    return dcc.Graph(id=ids.PASSPORT_GRAPH, figure=fig, config={"displaylogo": False})


def render(v: Verification, p: Passport | None) -> list[Any]:
    """The whole result: verdict, and the passport when the unit is known."""
    out: list[Any] = [html.Div(className="card", children=[verdict_block(v)])]
    if p is None:
        return out
    u = p.unit
    out += [
        _card(
            "Identity",
            _facts(
                [
                    ("Kind", u.kind.upper()),
                    ("GTIN", u.gtin or "—"),
                    ("Serial", u.serial or "—"),
                    ("SSCC", u.sscc or "—"),
                    ("Lot", u.lot or "—"),
                    ("Expiry", fmt_ts(u.expiry)),
                    ("Commissioned", fmt_ts(u.commissioned_at)),
                ]
            ),
        ),
        _card("Conditions", figures_facts(p)),
        html.Div(className="card card-chart", children=[html.H2("Temperature"), temperature(p)]),
        _card("Excursions exposed to", excursions_table(p)),
        _card("Chain of custody", html.Div(id=ids.PASSPORT_CUSTODY, children=custody_table(p))),
        _card("Packing", packing_table(p)),
    ]
    if p.notes:
        out.append(html.Ul([html.Li(n) for n in p.notes], className="muted passport-notes"))
    return out


def lookup_all(page: PageContext, text: str) -> list[Any]:
    """Verdict and passport of ``text`` (the callback's work, without Dash)."""
    now = datetime.now(UTC)
    with page.connection() as conn:
        verification = lookup.verify(conn, text, today=now.date())
        passport = None
        if verification.status not in ("invalid", "unknown"):
            try:
                passport = lookup.load_passport(
                    conn,
                    text,
                    today=now.date(),
                    now=now,
                    gap_factor=page.gap_factor,
                    rules=ReportSettings.from_settings(page.settings),
                )
            except (NotFoundError, IdentifierError):  # gone between the two reads
                passport = None
    return render(verification, passport)


def register(app: Dash, page: PageContext) -> None:
    """Look up on Enter (what a scanner sends), on the button, or from ``?id=``."""

    @app.callback(
        Output(ids.PASSPORT_RESULT, "children"),
        Output(ids.PASSPORT_INPUT, "value"),
        Input(ids.PASSPORT_BUTTON, "n_clicks"),
        Input(ids.PASSPORT_INPUT, "n_submit"),
        Input(ids.PASSPORT_LOCATION, "search"),
        State(ids.PASSPORT_INPUT, "value"),
    )
    def show(
        _clicks: int | None, _submits: int | None, search: str | None, value: str | None
    ) -> tuple[Any, Any]:
        from_url = ctx.triggered_id == ids.PASSPORT_LOCATION
        text = id_from_search(search) if from_url or not value else value
        if not text or not text.strip():
            return html.P("Scan a unit to see its passport.", className="muted"), no_update
        return lookup_all(page, text), (text if from_url else no_update)

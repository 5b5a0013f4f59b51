"""QA review ("/qa", "/qa/<reference>"): the excursion report of a shipment, its downloads, its
signed dispositions, and the form a QA reviewer signs a disposition with.

The page freezes the instant it shows (``as_of``, kept in the browser with the report's content
hash): the summary, the downloads and the signature all refer to the report as of that instant,
so what is signed is what was read. When the data behind it changed meanwhile, signing is
refused and the reviewer refreshes the report. Signing needs the reviewer's password again;
only the qa role sees the form (and the server checks the role again).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import flask
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import ColdchainError, NotFoundError
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_duration,
    fmt_temp,
    fmt_ts,
    shipment_href,
    table,
)
from dashboard.pages.login import current_principal
from security.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    SecurityError,
)
from security.ratelimit import LoginLimiter
from security.signatures import DECISIONS, MEANINGS
from services import reports
from services.caller import Caller
from services.reports import Format, ReportSettings

PATH = "/qa"
NAV_QA = "nav-qa"

# Component ids of this page.
QA_INDEX = "qa-index"
QA_KEY = "qa-key"  # dcc.Store: the shipment reference from the URL
QA_STATE = "qa-state"  # dcc.Store: {"as_of": iso, "hash": hex} of the report on screen
QA_CHANGED = "qa-changed"  # dcc.Store bumped after a signature
QA_REFRESH = "qa-refresh"
QA_HEADER = "qa-header"
QA_HASH = "qa-hash"
QA_SUMMARY = "qa-summary"
QA_DISPOSITIONS = "qa-dispositions"
QA_DOWNLOAD = "qa-download"
QA_DOWNLOAD_BUTTON = "qa-download-button"  # pattern-matching type, {"type": ..., "fmt": ...}
QA_RECORD_BUTTON = "qa-record-button"  # pattern-matching type, {"type": ..., "id": disposition}
QA_SIGN_PANEL = "qa-sign-panel"
QA_DECISION = "qa-decision"
QA_LOT = "qa-lot"
QA_REASON = "qa-reason"
QA_PASSWORD = "qa-password"
QA_SIGN = "qa-sign"
QA_FEEDBACK = "qa-feedback"

WHOLE_SHIPMENT = "__whole__"
FORMATS: tuple[Format, ...] = ("json", "csv", "pdf")


def reference_from_path(pathname: str) -> str | None:
    """The shipment reference in ``/qa/<reference>`` (percent-decoded), None for ``/qa``."""
    rest = pathname[len(PATH) :].strip("/")
    return unquote(rest) or None


def qa_href(reference: str) -> str:
    """The QA review page of a shipment."""
    return f"{PATH}/{quote(reference, safe='')}"


def _download_button(fmt: str, label: str) -> html.Button:
    return html.Button(
        label,
        id={"type": QA_DOWNLOAD_BUTTON, "fmt": fmt},
        className="btn",
        n_clicks=0,
        **data_attrs(fmt=fmt),
    )


def _sign_panel(visible: bool) -> html.Div:
    """The signature form (always in the layout, shown to the qa role only)."""
    label = {"display": "flex", "flexDirection": "column", "gap": "4px", "fontSize": "12px"}
    return html.Div(
        id=QA_SIGN_PANEL,
        className="card",
        style=None if visible else {"display": "none"},
        children=[
            html.H2("Sign a disposition"),
            html.P(
                "Your signature records your printed name, the date and time, and its meaning, "
                "bound to the content hash of the report above. A signed record is never "
                "edited: signing again for the same shipment or lot supersedes it, and both stay "
                "visible.",
                className="muted",
            ),
            html.Div(
                style={"display": "grid", "gap": "10px", "maxWidth": "640px"},
                children=[
                    html.Label(
                        [
                            html.Span("Decision"),
                            dcc.RadioItems(
                                id=QA_DECISION,
                                options=[
                                    {"label": f"{d.capitalize()} — {MEANINGS[d]}", "value": d}
                                    for d in DECISIONS
                                ],
                                value=None,
                            ),
                        ],
                        style=label,
                    ),
                    html.Label(
                        [
                            html.Span("For"),
                            dcc.Dropdown(
                                id=QA_LOT,
                                options=[{"label": "The whole shipment", "value": WHOLE_SHIPMENT}],
                                value=WHOLE_SHIPMENT,
                                clearable=False,
                            ),
                        ],
                        style=label,
                    ),
                    html.Label(
                        [
                            html.Span("Reason (required)"),
                            dcc.Textarea(
                                id=QA_REASON,
                                maxLength=2000,
                                style={"width": "100%", "height": "70px"},
                            ),
                        ],
                        style=label,
                    ),
                    html.Label(
                        [
                            html.Span("Your password (signature)"),
                            dcc.Input(
                                id=QA_PASSWORD,
                                type="password",
                                autoComplete="current-password",
                                maxLength=1024,
                            ),
                        ],
                        style=label,
                    ),
                    html.Div(html.Button("Sign", id=QA_SIGN, className="btn btn-ack", n_clicks=0)),
                ],
            ),
            html.Div(id=QA_FEEDBACK, className="feedback", role="status"),
        ],
    )


def layout(page: PageContext, reference: str | None, principal: Any) -> html.Div:
    """The QA index (no reference) or the review page of one shipment."""
    if reference is None:
        return html.Div(
            className="page page-qa",
            children=[
                dcc.Location(id="qa-index-url", refresh=False),
                html.Div(className="page-header", children=[html.H1("QA review")]),
                html.Div(className="card", children=html.Div(id=QA_INDEX)),
            ],
        )
    can_sign = principal is not None and principal.can("dispositions.sign")
    return html.Div(
        className="page page-qa",
        children=[
            dcc.Store(id=QA_KEY, data=reference),
            dcc.Store(id=QA_STATE, data=None),
            dcc.Store(id=QA_CHANGED, data=0),
            dcc.Download(id=QA_DOWNLOAD),
            html.Div(
                className="breadcrumb",
                children=[dcc.Link("QA review", href=PATH), html.Span(" / "), html.Span(reference)],
            ),
            html.Div(id=QA_HEADER, className="page-header"),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="toolbar",
                        style={"display": "flex", "gap": "8px", "flexWrap": "wrap"},
                        children=[
                            _download_button("pdf", "Download PDF"),
                            _download_button("csv", "Download CSV"),
                            _download_button("json", "Download JSON"),
                            html.Button(
                                "Refresh report", id=QA_REFRESH, className="btn", n_clicks=0
                            ),
                        ],
                    ),
                    html.P(id=QA_HASH, className="muted", style={"wordBreak": "break-all"}),
                    html.Div(id=QA_SUMMARY),
                ],
            ),
            html.Div(
                className="card",
                children=[html.H2("Dispositions and signatures"), html.Div(id=QA_DISPOSITIONS)],
            ),
            _sign_panel(can_sign),
        ],
    )


def validation_layouts(page: PageContext) -> list[html.Div]:
    """Both forms of the page, for Dash's callback validation."""
    return [layout(page, None, None), layout(page, "_", None)]


def _loggers_table(ev: dict[str, Any]) -> html.Div:
    rows = []
    for lg in ev["loggers"]:
        due = lg["calibration_due"] or "—"
        rows.append(
            html.Tr(
                [
                    html.Td(lg["device_id"]),
                    html.Td(f"{lg['calibration_cert'] or '—'}, due {due}"),
                    html.Td(badge("overdue", "alarm") if lg["calibration_overdue"] else "ok"),
                    html.Td(f"{lg['interval_s']} s"),
                    html.Td(f"{lg['readings']} / {lg['expected_readings']}"),
                    html.Td(
                        "—" if lg["completeness"] is None else f"{lg['completeness'] * 100:.1f} %"
                    ),
                    html.Td(f"{len(lg['gaps'])} ({fmt_duration(lg['time_in_gaps_s'])})"),
                    html.Td(_mkt_text(lg, ev)),
                    html.Td(_budget_text(lg)),
                ]
            )
        )
    return table(
        ["Logger", "Calibration", "", "Interval", "Readings", "Complete", "Gaps", "MKT", "Budget"],
        rows,
        empty="No logger was assigned.",
    )


def _mkt_text(lg: dict[str, Any], ev: dict[str, Any]) -> str:
    window = lg["mkt"]["window"]
    if window is None:
        return "—"
    limit = ev["rules"]["mkt"]["limit_c"]
    verdict = "" if limit is None else (" (above limit)" if window["above_limit"] else " (within)")
    return f"{window['mkt_c']:.2f} °C over {ev['rules']['mkt']['window_h']:g} h{verdict}"


def _budget_text(lg: dict[str, Any]) -> str:
    b = lg["budget"]
    if b is None:
        return "—"
    return f"{b['share_used'] * 100:.1f} % used ({b['status']})"


def _excursions_table(ev: dict[str, Any]) -> html.Div:
    rows = [
        html.Tr(
            [
                html.Td(e["device_id"]),
                html.Td(e["direction"]),
                html.Td(fmt_ts(_dt(e["start"]))),
                html.Td("open" if e["open"] else fmt_ts(_dt(e["end"]))),
                html.Td(fmt_duration(e["duration_s"])),
                html.Td(fmt_temp(e["min_c"])),
                html.Td(fmt_temp(e["max_c"])),
                html.Td(f"{e['degree_minutes']:g}"),
                html.Td("yes" if e["alarm"] else "no"),
            ]
        )
        for e in ev["excursions"]
    ]
    return table(
        ["Logger", "Dir", "Start", "End", "Duration", "Min", "Max", "°C·min", "Alarm"],
        rows,
        empty="No excursion.",
    )


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def summary(doc: dict[str, Any]) -> list[Any]:
    """What the reviewer reads on screen: the report's main figures."""
    ev = doc["evidence"]
    product = ev["product"] or {}
    ship = ev["shipment"]
    lots = ", ".join(
        f"{x['lot']} (exp. {x['expiry'] or '—'}, {x['units']} units)" for x in ev["lots"]
    )
    totals = ev["totals"]
    rules = ev["rules"]
    t = rules["temperature"] or {}
    return [
        html.P(
            [
                html.Strong(product.get("name") or "No product"),
                f" — GTIN {product.get('gtin') or '—'} — labelled range "
                f"{product.get('labelled_range') or '—'}",
            ]
        ),
        html.P(f"Lots: {lots or 'none recorded'}"),
        html.P(
            f"{ship['lane']} · {ship['status']} · carrier {ship['carrier'] or '—'} · "
            f"{len(ev['legs'])} leg(s)"
        ),
        html.P(
            f"Rules as evaluated: range {fmt_temp(t.get('low_c'))} to {fmt_temp(t.get('high_c'))}, "
            f"freeze {fmt_temp(t.get('freeze_c'))}, alarm delay "
            f"{fmt_duration(t.get('alarm_delay_s'))}; MKT ΔH {rules['mkt']['delta_h_j_mol']:g} "
            f"J/mol, {rules['mkt']['weighting']} weighting, {rules['mkt']['window_h']:g} h window",
            className="muted",
        ),
        html.H2(
            f"Excursions: {totals['excursions']} ({totals['alarmed_excursions']} alarmed), "
            f"{fmt_duration(totals['time_out_of_range_s'])} out of range"
        ),
        _excursions_table(ev),
        html.H2("Loggers, completeness, MKT and budget"),
        _loggers_table(ev),
        html.P(
            f"{len(ev['alerts'])} alert(s); {totals['gaps']} data gap(s) "
            f"({fmt_duration(totals['time_in_gaps_s'])}); {totals['readings']} readings.",
            className="muted",
        ),
    ]


def dispositions_view(records: list[dict[str, Any]]) -> list[Any]:
    """Every signed disposition with its signature; superseded ones stay, marked."""
    if not records:
        return [html.P("No disposition has been signed yet.", className="muted")]
    out = []
    for d in reversed(records):
        scope = f"lot {d['lot']}" if d["lot"] else "whole shipment"
        state = (
            badge("current", "ok")
            if d["current"]
            else badge(f"superseded by #{d['superseded_by']}", "offline")
        )
        out.append(
            html.Div(
                className="disposition",
                style={"borderTop": "1px solid #e5e7eb", "padding": "8px 0"},
                **data_attrs(
                    disposition_id=str(d["id"]),
                    decision=d["decision"],
                    current="true" if d["current"] else "false",
                ),
                children=[
                    html.Div(
                        [html.Strong(f"#{d['id']} {d['decision'].upper()}"), f" — {scope} ", state]
                    ),
                    html.Div(f"Reason: {d['reason']}"),
                    html.Div(d["signature"], className="signature"),
                    html.Div(
                        f"Report hash {d['report_hash']} · signature {d['signature_hash']}",
                        className="muted",
                        style={"fontSize": "11px", "wordBreak": "break-all"},
                    ),
                    html.Button(
                        "Signed record (PDF)",
                        id={"type": QA_RECORD_BUTTON, "id": d["id"]},
                        className="btn",
                        n_clicks=0,
                        style={"marginTop": "4px", "fontSize": "12px"},
                    ),
                ],
            )
        )
    return out


def download(
    page: PageContext,
    cfg: ReportSettings,
    *,
    reference: str,
    fmt: Format,
    as_of: datetime | None,
    disposition_id: int | None = None,
) -> dict[str, Any]:
    """A ``dcc.Download`` payload: the report as of ``as_of`` (or a signed record) in ``fmt``,
    the same file the API's ``report.{fmt}`` answers."""
    with page.connection() as conn:
        file = reports.report_file(
            conn,
            cfg,
            key=reference,
            fmt=fmt,
            as_of=as_of,
            disposition_id=disposition_id,
            now=datetime.now(UTC),
        )
    return {
        "content": base64.b64encode(file.content).decode("ascii"),
        "filename": file.filename,
        "base64": True,
        "type": file.media_type,
    }


def register(app: Dash, page: PageContext, *, limiter: LoginLimiter) -> None:
    """The QA page's callbacks."""
    cfg = ReportSettings.from_settings(page.settings)

    @app.callback(Output(QA_INDEX, "children"), Input("qa-index-url", "pathname"))
    def index(_path: str | None) -> Any:
        with page.connection() as conn:
            rows = reports.qa_queue(conn, offline_factor=page.offline_factor)
        body = [
            html.Tr(
                [
                    html.Td(dcc.Link(r["reference"], href=qa_href(r["reference"]))),
                    html.Td(r["lane"]),
                    html.Td(r["status"]),
                    html.Td((r["product"] or {}).get("name") or "—"),
                    html.Td(badge(r["condition"], r["condition"])),
                    html.Td(dcc.Link("live view", href=shipment_href(r["reference"]))),
                ],
                **data_attrs(reference=r["reference"]),
            )
            for r in rows
        ]
        return table(
            ["Shipment", "Lane", "Status", "Product", "Now", ""],
            body,
            empty="No shipments.",
        )

    @app.callback(
        Output(QA_HEADER, "children"),
        Output(QA_HASH, "children"),
        Output(QA_SUMMARY, "children"),
        Output(QA_DISPOSITIONS, "children"),
        Output(QA_STATE, "data"),
        Output(QA_LOT, "options"),
        Input(QA_KEY, "data"),
        Input(QA_REFRESH, "n_clicks"),
        Input(QA_CHANGED, "data"),
        State(QA_STATE, "data"),
    )
    def load(
        reference: str | None, _refresh: int | None, _changed: int | None, state: Any
    ) -> tuple[Any, ...]:
        if not reference or reference == "_":
            raise PreventUpdate
        # A new instant when the page opens or the reviewer refreshes; after a signature the
        # same one, so the hash on screen stays the one signed.
        keep = ctx.triggered_id == QA_CHANGED and isinstance(state, dict)
        as_of = _dt(state["as_of"]) if keep else datetime.now(UTC).replace(microsecond=0)
        try:
            with page.connection() as conn:
                doc = reports.report(conn, cfg, key=reference, as_of=as_of, now=datetime.now(UTC))
        except NotFoundError:
            missing = html.H1("Shipment not found")
            return missing, "", html.P(f"No shipment {reference!r}."), [], None, no_update
        ev = doc["evidence"]
        lots = [{"label": "The whole shipment", "value": WHOLE_SHIPMENT}] + [
            {"label": f"Lot {x['lot']} (GTIN {x['gtin']}, exp. {x['expiry']})", "value": x["lot"]}
            for x in ev["lots"]
        ]
        header = [
            html.H1(f"QA review — {ev['shipment']['reference']}"),
            dcc.Link("live view", href=shipment_href(ev["shipment"]["reference"])),
        ]
        hash_line = [
            f"Report as of {fmt_ts(_dt(ev['as_of']))} · content SHA-256 ",
            html.Code(doc["content_hash"], id="qa-content-hash"),
        ]
        return (
            header,
            hash_line,
            summary(doc),
            dispositions_view(doc["dispositions"]),
            {"as_of": ev["as_of"], "hash": doc["content_hash"]},
            lots,
        )

    @app.callback(
        Output(QA_DOWNLOAD, "data"),
        Input({"type": QA_DOWNLOAD_BUTTON, "fmt": ALL}, "n_clicks"),
        Input({"type": QA_RECORD_BUTTON, "id": ALL}, "n_clicks"),
        State(QA_KEY, "data"),
        State(QA_STATE, "data"),
        prevent_initial_call=True,
    )
    def get_file(_f: list[int], _r: list[int], reference: str | None, state: Any) -> Any:
        target = ctx.triggered_id
        if not isinstance(target, dict) or not ctx.triggered[0].get("value") or not reference:
            raise PreventUpdate
        if current_principal() is None:
            raise PreventUpdate
        if target.get("type") == QA_RECORD_BUTTON:
            return download(
                page,
                cfg,
                reference=reference,
                fmt="pdf",
                as_of=None,
                disposition_id=int(target["id"]),
            )
        fmt = next((f for f in FORMATS if f == target.get("fmt")), None)
        if fmt is None:
            raise PreventUpdate
        as_of = _dt(state["as_of"]) if isinstance(state, dict) else None
        return download(page, cfg, reference=reference, fmt=fmt, as_of=as_of)

    @app.callback(
        Output(QA_FEEDBACK, "children"),
        Output(QA_FEEDBACK, "className"),
        Output(QA_PASSWORD, "value"),
        Output(QA_CHANGED, "data"),
        Input(QA_SIGN, "n_clicks"),
        State(QA_KEY, "data"),
        State(QA_STATE, "data"),
        State(QA_DECISION, "value"),
        State(QA_LOT, "value"),
        State(QA_REASON, "value"),
        State(QA_PASSWORD, "value"),
        State(QA_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def sign(
        clicks: int | None,
        reference: str | None,
        state: Any,
        decision: str | None,
        lot: str | None,
        reason: str | None,
        password: str | None,
        changed: int | None,
    ) -> tuple[Any, ...]:
        if not clicks or not reference:
            raise PreventUpdate
        principal = current_principal()

        def refused(message: str) -> tuple[Any, ...]:
            return message, "feedback error", "", no_update

        if principal is None:
            return refused("Log in again: your session has ended.")
        if decision not in DECISIONS:
            return refused("Choose a decision.")
        if not reason or not reason.strip():
            return refused("A disposition needs a reason.")
        if not password:
            return refused("Enter your password to sign.")
        if not isinstance(state, dict):
            return refused("The report is not loaded yet.")
        try:
            client = flask.request.remote_addr if flask.has_request_context() else None
            with page.connection() as conn:
                record = reports.sign(
                    conn,
                    Caller.of(principal, client),
                    cfg,
                    key=reference,
                    lot=None if lot in (None, WHOLE_SHIPMENT) else lot,
                    decision=decision,  # checked against DECISIONS above
                    reason=reason[:2000],
                    as_of=_dt(state["as_of"]) or datetime.now(UTC),
                    report_hash=str(state["hash"]),
                    password=password,
                    limiter=limiter,
                    now=datetime.now(UTC),
                )
        except PermissionDeniedError:
            return refused(f"Your role ({principal.role}) cannot sign dispositions.")
        except RateLimitedError as exc:
            return refused(f"Too many wrong passwords: {exc}. Nothing was signed.")
        except AuthenticationError:
            return refused("Wrong password: nothing was signed.")
        except (SecurityError, ColdchainError) as exc:
            return refused(f"Not signed: {exc}")
        return (
            f"Signed #{record['id']}: {record['signature']}.",
            "feedback ok",
            "",
            (changed or 0) + 1,
        )

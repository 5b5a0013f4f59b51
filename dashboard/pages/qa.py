"""QA review ("/qa", "/qa/<reference>"): the index (the exceptions queue, riskiest first, then the
other shipments: :func:`services.reports.qa_index`), and a shipment's excursion report, its
downloads (PDF, readings CSV, summary CSV, JSON), its signed dispositions, and the form a QA
reviewer signs a disposition with. What the pages show is :mod:`dashboard.pages.qa_views`.

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
from dashboard.pages import PageContext, data_attrs, fmt_ts, shipment_href
from dashboard.pages.forms import SESSION_ENDED
from dashboard.pages.login import current_principal
from dashboard.pages.qa_views import (
    QA_RECORD_BUTTON,
    dispositions_view,
    index_view,
    parse_iso,
    summary,
)
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
from services.reports import FORMATS, Format, ReportSettings

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
QA_SIGN_PANEL = "qa-sign-panel"
QA_DECISION = "qa-decision"
QA_LOT = "qa-lot"
QA_REASON = "qa-reason"
QA_PASSWORD = "qa-password"
QA_SIGN = "qa-sign"
QA_FEEDBACK = "qa-feedback"

WHOLE_SHIPMENT = "__whole__"


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
                            _download_button("csv", "Download readings (CSV)"),
                            _download_button("summary.csv", "Download summary (CSV)"),
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
            found = reports.qa_index(conn, offline_factor=page.offline_factor)
        return index_view(found.queue, found.rest, datetime.now(UTC), qa_href)

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
        as_of = parse_iso(state["as_of"]) if keep else datetime.now(UTC).replace(microsecond=0)
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
            f"Report as of {fmt_ts(parse_iso(ev['as_of']))} · content SHA-256 ",
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
        as_of = parse_iso(state["as_of"]) if isinstance(state, dict) else None
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
            return refused(SESSION_ENDED)
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
                    as_of=parse_iso(state["as_of"]) or datetime.now(UTC),
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

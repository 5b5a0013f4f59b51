"""Alerts page ("/alerts"): open alerts by severity and age; acknowledge or resolve them.

Who acts is the logged-in person (operators and admins; viewers and QA see no action buttons),
and the comment is their "why". The actions are the API's own (:mod:`services.alerts`), so the
alert row and its event are written in one transaction, the same permission, comment and state
rules apply, and the audit trail records the person, their role and their address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain import severity
from coldchain.errors import (
    AlertConflictError,
    InvalidAlertActionError,
    NotFoundError,
    PermissionDeniedError,
)
from dashboard import figures, ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_age,
    fmt_clock,
    fmt_ts,
    shipment_href,
)
from dashboard.pages.login import current_principal
from db.types import Conn
from security.accounts import Principal
from services import alerts as service
from services.caller import Caller

STATE_FILTERS = [
    {"label": "Needs action", "value": "open"},
    {"label": "Unresolved", "value": "unresolved"},
    {"label": "Acknowledged", "value": "acknowledged"},
    {"label": "Resolved", "value": "resolved"},
    {"label": "All", "value": "all"},
]
_STATES = {
    "open": ["open"],
    "unresolved": ["open", "acknowledged"],
    "acknowledged": ["acknowledged"],
    "resolved": ["resolved"],
    "all": None,
}
SEVERITY_FILTERS = [{"label": s.capitalize(), "value": s} for s in severity.STRONGEST_FIRST]
MAX_ALERTS = 500
HEADERS = ["Severity", "Shipment", "Alert", "Since", "State", "Acknowledged", "Actions"]


def _action_panel(principal: Principal | None) -> list[Any]:
    """Who acts and the comment box, or why this person cannot act."""
    if principal is None or not principal.can("alerts.act"):
        role = principal.role if principal is not None else "none"
        return [
            html.H2("Acting on alerts"),
            html.P(
                f"Your role ({role}) can follow alerts here; operators and administrators "
                "acknowledge and resolve them.",
                className="muted",
            ),
            html.Span(id=ids.ALERTS_ACTOR, hidden=True),
            dcc.Input(id=ids.ALERTS_COMMENT, type="hidden"),
            html.Div(id=ids.ALERTS_FEEDBACK, className="feedback", role="status"),
        ]
    return [
        html.H2("Act on an alert"),
        html.P(
            [
                "You act as ",
                html.Strong(principal.display_name, id=ids.ALERTS_ACTOR),
                f" ({principal.name}, {principal.role}). Type a comment, then press "
                "Acknowledge or Resolve on the alert's row; both go into the alert's history "
                "and the audit trail.",
            ],
            className="muted",
        ),
        html.Div(
            className="form-row",
            children=[
                html.Label(
                    [
                        html.Span("Comment"),
                        dcc.Input(
                            id=ids.ALERTS_COMMENT,
                            type="text",
                            placeholder="What was done, or why",
                            maxLength=service.COMMENT_MAX_LENGTH,
                            className="wide",
                        ),
                    ],
                    className="grow",
                ),
            ],
        ),
        html.Div(id=ids.ALERTS_FEEDBACK, className="feedback", role="status"),
    ]


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The alerts page's components; the callbacks fill them and refresh them live."""
    return html.Div(
        className="page page-alerts",
        children=[
            dcc.Interval(id=ids.ALERTS_INTERVAL, interval=page.refresh_ms),
            dcc.Store(id=ids.ALERTS_CHANGED, data=0),
            # The action buttons live in a table that re-renders every few seconds; their clicks
            # are caught in the browser (assets/actions.js) and put here, outside the table, so
            # a click that meets a re-render is not lost with the button it was made on.
            dcc.Store(id=ids.ALERTS_CLICK),
            html.Div(
                className="page-header",
                children=[html.H1("Alerts"), html.Span(id=ids.ALERTS_UPDATED, className="updated")],
            ),
            html.Div(
                className="grid-2 grid-summary",
                children=[
                    html.Div(id=ids.ALERTS_SUMMARY, className="summary-cards"),
                    html.Div(
                        className="card",
                        children=[
                            html.H2("Unresolved by severity and age"),
                            dcc.Graph(id=ids.ALERTS_AGE_GRAPH, config={"displayModeBar": False}),
                        ],
                    ),
                ],
            ),
            html.Div(className="card action-panel", children=_action_panel(principal)),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="toolbar",
                        children=[
                            dcc.RadioItems(
                                id=ids.ALERTS_STATE,
                                options=STATE_FILTERS,
                                value="unresolved",
                                inline=True,
                                className="segmented",
                            ),
                            dcc.Checklist(
                                id=ids.ALERTS_SEVERITY,
                                options=SEVERITY_FILTERS,
                                value=list(severity.STRONGEST_FIRST),
                                inline=True,
                                className="checks",
                            ),
                        ],
                    ),
                    html.Div(
                        className="table-wrap",
                        children=html.Table(
                            id=ids.ALERTS_TABLE,
                            className="data-table alerts-table",
                            children=[
                                html.Thead(html.Tr([html.Th(h) for h in HEADERS])),
                                html.Tbody(id=ids.ALERTS_TBODY),
                            ],
                        ),
                    ),
                ],
            ),
        ],
    )


def _action_button(alert_id: int, action: str, label: str, className: str) -> html.Button:
    return html.Button(
        label,
        className=f"btn {className}",
        type="button",
        **data_attrs(alert_id=str(alert_id), alert_action=action),
    )


def alert_row(row: dict[str, Any], now: datetime, *, can_act: bool = True) -> html.Tr:
    """One alert as a table row, with its action buttons when the person may act."""
    actions = []
    if can_act and row["state"] == "open":
        actions.append(_action_button(row["id"], "acknowledge", "Acknowledge", ids.BTN_ACK))
    if can_act and row["state"] != "resolved":
        actions.append(_action_button(row["id"], "resolve", "Resolve", ids.BTN_RESOLVE))
    if row["acked_by"]:
        acked: list[Any] = [html.Div(row["acked_by"])]
        if row["ack_comment"]:
            acked.append(html.Div(row["ack_comment"], className="sub"))
    else:
        acked = ["—"]
    if row["state"] == "resolved" and row["resolved_by"]:
        acked.append(html.Div(f"resolved by {row['resolved_by']}", className="sub"))
    return html.Tr(
        className=f"{ids.ALERT_ROW} state-{row['state']}",
        **data_attrs(alert_id=str(row["id"]), state=row["state"], severity=row["severity"]),
        children=[
            html.Td(badge(row["severity"], row["severity"])),
            html.Td(
                dcc.Link(row["shipment_reference"], href=shipment_href(row["shipment_reference"]))
            ),
            html.Td(
                [
                    html.Div(row["title"]),
                    html.Div(row["device_id"] or "", className="sub"),
                ],
                className="wrap",
            ),
            html.Td(fmt_age(row["triggered_at"], now), title=fmt_ts(row["triggered_at"])),
            html.Td(badge(row["state"], row["state"]), className="cell-state"),
            html.Td(acked, className="cell-acked wrap"),
            html.Td(actions, className="cell-actions"),
        ],
    )


def summary_cards(rows: list[dict[str, Any]], now: datetime) -> list[html.Div]:
    """Unresolved alerts per severity, with the age of the oldest."""
    cards = []
    for name in severity.STRONGEST_FIRST:
        mine = [r for r in rows if r["severity"] == name]
        oldest = min((r["triggered_at"] for r in mine), default=None)
        cards.append(
            html.Div(
                className=f"summary-card summary-{name}",
                children=[
                    html.Div(str(len(mine)), className="summary-value"),
                    html.Div(name.capitalize(), className="summary-label"),
                    html.Div(
                        f"oldest {fmt_age(oldest, now)}" if oldest else "none",
                        className="summary-sub",
                    ),
                ],
            )
        )
    return cards


def perform(
    conn: Conn,
    *,
    alert_id: int,
    action: str,
    principal: Principal | None,
    comment: str | None,
    source: str | None = None,
) -> tuple[bool, str]:
    """Acknowledge or resolve an alert as ``principal``; ``(ok, message)`` for the person."""
    if principal is None:
        return False, "Log in again: your session has ended."
    act = service.acknowledge if action == "acknowledge" else service.resolve
    try:
        act(conn, Caller.of(principal, source), alert_id=alert_id, comment=comment)
    except PermissionDeniedError:
        return False, f"Your role ({principal.role}) cannot acknowledge or resolve alerts."
    except (AlertConflictError, InvalidAlertActionError, NotFoundError) as exc:
        return False, str(exc)
    done = "acknowledged" if action == "acknowledge" else "resolved"
    return True, f"Alert {alert_id} {done} by {principal.display_name} ({principal.name})."


def register(app: Dash, page: PageContext) -> None:
    """The alerts page's callbacks: live list, and the acknowledge/resolve actions."""

    @app.callback(
        Output(ids.ALERTS_FEEDBACK, "children"),
        Output(ids.ALERTS_FEEDBACK, "className"),
        Output(ids.ALERTS_CHANGED, "data"),
        Output(ids.ALERTS_COMMENT, "value"),
        Input(ids.ALERTS_CLICK, "data"),
        State(ids.ALERTS_COMMENT, "value"),
        State(ids.ALERTS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def act(click: Any, comment: str | None, changed: int | None) -> tuple[Any, ...]:
        try:
            alert_id, action = int(click["alert"]), str(click["action"])
        except (TypeError, KeyError, ValueError):
            raise PreventUpdate from None
        with page.connection() as conn:
            ok, message = perform(
                conn,
                alert_id=alert_id,
                action=action,
                principal=current_principal(),
                comment=comment,
                source=flask.request.remote_addr if flask.has_request_context() else None,
            )
        if not ok:
            return message, "feedback error", no_update, no_update
        return message, "feedback ok", (changed or 0) + 1, ""

    @app.callback(
        Output(ids.ALERTS_TBODY, "children"),
        Output(ids.ALERTS_SUMMARY, "children"),
        Output(ids.ALERTS_AGE_GRAPH, "figure"),
        Output(ids.ALERTS_UPDATED, "children"),
        Input(ids.ALERTS_INTERVAL, "n_intervals"),
        Input(ids.ALERTS_STATE, "value"),
        Input(ids.ALERTS_SEVERITY, "value"),
        Input(ids.ALERTS_CHANGED, "data"),
    )
    def refresh(
        _n: int | None, state: str | None, severities: list[str] | None, _changed: int | None
    ) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        principal = current_principal()
        can_act = principal is not None and principal.can("alerts.act")
        with page.connection() as conn:
            shown = (
                service.list_alerts(
                    conn,
                    states=_STATES.get(state or "unresolved", ["open", "acknowledged"]),
                    severities=severities,
                    limit=MAX_ALERTS,
                ).items
                if severities  # every box unticked: nothing to show
                else []
            )
            unresolved = service.list_alerts(
                conn, states=["open", "acknowledged"], limit=MAX_ALERTS
            ).items
        body: list[html.Tr] | html.Tr = [
            alert_row(r, now, can_act=can_act) for r in shown
        ] or html.Tr(html.Td("No alerts here.", colSpan=len(HEADERS), className="muted"))
        ages = pd.DataFrame(
            [
                {"severity": r["severity"], "age_s": (now - r["triggered_at"]).total_seconds()}
                for r in unresolved
            ],
            columns=["severity", "age_s"],
        )
        return (
            body,
            summary_cards(unresolved, now),
            figures.severity_bars(ages),
            f"Updated {fmt_clock(now)}",
        )

"""Alerts page ("/alerts") for on-call: each alert with its condition (still under way or
cleared), since when, current and peak temperature, escalation and who was notified; acknowledge
(with a comment), resolve or assign it in its own row.

Who acts is the logged-in person (operators and admins; viewers and QA see no action column),
and the comment is their "why", typed in the alert's own row (:mod:`dashboard.pages.alert_rows`):
there is no shared comment box, so a comment cannot land on another alert. The actions are the
API's own (:mod:`services.alerts`), so the alert row and its event are written in one
transaction, the same permission, comment (required to acknowledge) and state rules apply, and
the audit trail records the person, their role and their address. The table is read in one
query (:func:`services.alerts.alert_board`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from coldchain import severity
from coldchain.errors import (
    AlertConflictError,
    InvalidAlertActionError,
    NotFoundError,
    PermissionDeniedError,
)
from dashboard import figures, ids
from dashboard.pages import PageContext, fmt_clock
from dashboard.pages.alert_rows import alert_row, headers, summary_cards
from dashboard.pages.forms import SESSION_ENDED
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


def _action_panel(principal: Principal | None) -> list[Any]:
    """Who acts and how, or why this person cannot act."""
    if principal is None or not principal.can("alerts.act"):
        role = principal.role if principal is not None else "none"
        return [
            html.H2("Acting on alerts"),
            html.P(
                f"Your role ({role}) can follow alerts here; operators and administrators "
                "acknowledge, assign and resolve them.",
                className="muted",
            ),
            html.Span(id=ids.ALERTS_ACTOR, hidden=True),
            html.Div(id=ids.ALERTS_FEEDBACK, className="feedback", role="status"),
        ]
    return [
        html.H2("Act on an alert"),
        html.P(
            [
                "You act as ",
                html.Strong(principal.display_name, id=ids.ALERTS_ACTOR),
                f" ({principal.name}, {principal.role}). In the alert's own row, type a comment "
                "(what was done, or why; required to acknowledge), then press Acknowledge or "
                "Resolve; or pick a person and press Assign. Each goes into the alert's "
                "history and the audit trail.",
            ],
            className="muted",
        ),
        html.Div(id=ids.ALERTS_FEEDBACK, className="feedback", role="status"),
    ]


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The alerts page's components; the callbacks fill them and refresh them live."""
    can_act = principal is not None and principal.can("alerts.act")
    return html.Div(
        className="page page-alerts",
        children=[
            dcc.Interval(id=ids.ALERTS_INTERVAL, interval=page.refresh_ms),
            # The last action's outcome: refreshes the table at once, and its message shows in
            # the row of the alert it was about.
            dcc.Store(id=ids.ALERTS_CHANGED, data={"n": 0}),
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
                                html.Thead(html.Tr([html.Th(h) for h in headers(can_act=can_act)])),
                                html.Tbody(id=ids.ALERTS_TBODY),
                            ],
                        ),
                    ),
                ],
            ),
        ],
    )


_DONE = {"acknowledge": "acknowledged", "resolve": "resolved", "assign": "assigned"}


def perform(
    conn: Conn,
    *,
    alert_id: int,
    action: str,
    principal: Principal | None,
    comment: str | None,
    assignee: str | None = None,
    source: str | None = None,
) -> tuple[bool, str]:
    """Acknowledge, resolve or assign an alert as ``principal``; ``(ok, message)`` for the
    person, in plain words (the refusals are the service's: the API gives the same)."""
    if principal is None:
        return False, SESSION_ENDED
    if action not in _DONE:
        return False, f"Unknown action {action!r}."
    caller = Caller.of(principal, source)
    try:
        if action == "assign":
            if not (assignee or "").strip():
                return False, "Pick a person in this row's list first, then press Assign."
            row = service.assign(
                conn, caller, alert_id=alert_id, assignee=assignee or "", comment=comment
            )
        elif action == "acknowledge":
            row = service.acknowledge(conn, caller, alert_id=alert_id, comment=comment)
        else:
            row = service.resolve(conn, caller, alert_id=alert_id, comment=comment)
    except PermissionDeniedError:
        return False, f"Your role ({principal.role}) cannot act on alerts."
    except InvalidAlertActionError as exc:
        if exc.field == "comment" and action == "acknowledge" and not (comment or "").strip():
            return False, (
                "Not acknowledged: type a comment in this row first (what was done, or why); "
                "acknowledging takes one."
            )
        return False, str(exc)
    except (AlertConflictError, NotFoundError) as exc:
        return False, str(exc)
    who = f"{principal.display_name} ({principal.name})"
    if action == "assign":
        return True, f"Alert {alert_id} assigned to {row['assignee']} by {who}."
    return True, f"Alert {alert_id} {_DONE[action]} by {who}."


def register(app: Dash, page: PageContext) -> None:
    """The alerts page's callbacks: live list, and the row actions (acknowledge, resolve,
    assign)."""

    @app.callback(
        Output(ids.ALERTS_FEEDBACK, "children"),
        Output(ids.ALERTS_FEEDBACK, "className"),
        Output(ids.ALERTS_CHANGED, "data"),
        Input(ids.ALERTS_CLICK, "data"),
        State(ids.ALERTS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def act(click: Any, changed: Any) -> tuple[Any, ...]:
        # The comment and the pick come with the click, from the row of the button pressed
        # (assets/actions.js): they belong to that alert and no other.
        try:
            alert_id, action = int(click["alert"]), str(click["action"])
        except (TypeError, KeyError, ValueError):
            raise PreventUpdate from None
        comment, assignee = click.get("comment"), click.get("assignee")
        with page.connection() as conn:
            ok, message = perform(
                conn,
                alert_id=alert_id,
                action=action,
                principal=current_principal(),
                comment=comment if isinstance(comment, str) else None,
                assignee=assignee if isinstance(assignee, str) else None,
                source=flask.request.remote_addr if flask.has_request_context() else None,
            )
        n = int(changed.get("n", 0)) if isinstance(changed, dict) else 0
        outcome = {"n": n + 1, "alert": alert_id, "ok": ok, "message": message}
        return message, "feedback ok" if ok else "feedback error", outcome

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
        _n: int | None, state: str | None, severities: list[str] | None, outcome: Any
    ) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        principal = current_principal()
        can_act = principal is not None and principal.can("alerts.act")
        with page.connection() as conn:
            shown = (
                service.alert_board(
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
            people = (
                service.assignees(conn, Caller.of(principal, None))
                if can_act and principal is not None
                else []
            )
        body: list[html.Tr] | html.Tr = [
            alert_row(
                r,
                now,
                can_act=can_act,
                people=people,
                outcome=outcome if isinstance(outcome, dict) else None,
                comment_max=service.COMMENT_MAX_LENGTH,
            )
            for r in shown
        ] or html.Tr(
            html.Td("No alerts here.", colSpan=len(headers(can_act=can_act)), className="muted")
        )
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

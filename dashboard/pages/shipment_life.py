"""The shipment page's life panel: the lifecycle state, the Start / Arrive / Cancel buttons and
attach / detach of a logger (for the roles with ``shipments.manage``, and each button only when
the state allows the move: :func:`coldchain.lifecycle.allowed`), and the arrival verdict per
product with its reasons and band figures (the event timeline is
:mod:`dashboard.pages.shipment_timeline`). The buttons call the same services as the API's ``/shipments/{key}/start|arrive|cancel|loggers``,
which check the role again whatever the page shows. :mod:`dashboard.pages.shipment` places the
panel (:func:`lifecycle_card`) and registers its callbacks (:func:`register_lifecycle`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain import lifecycle
from coldchain.errors import (
    CalibrationExpiredError,
    ColdchainError,
    NotFoundError,
    PermissionDeniedError,
)
from dashboard import ids
from dashboard.pages import (
    PageContext,
    badge,
    data_attrs,
    fmt_duration,
    fmt_range,
    fmt_ts,
    table,
)
from dashboard.pages.forms import SESSION_ENDED
from dashboard.pages.login import current_principal
from security.accounts import Principal
from services import bookings
from services import lifecycle as lifecycle_s
from services.caller import Caller

#: Badge colour of each lifecycle state.
STATE_BADGE: dict[str, str] = {
    "planned": "info",
    "in_transit": "info",
    "arrived": "warning",
    "under_review": "warning",
    "released": "ok",
    "quarantined": "alarm",
    "rejected": "alarm",
    "returned": "offline",
    "cancelled": "offline",
}
#: The transitions the page offers, each with its button.
BUTTONS: dict[str, str] = {
    "start": ids.SHIPMENT_START,
    "arrive": ids.SHIPMENT_ARRIVE,
    "cancel": ids.SHIPMENT_CANCEL,
}
_HIDDEN = {"display": "none"}


def actions_for(state: str, *, can_manage: bool) -> tuple[str, ...]:
    """The buttons to show (pure): the page's transitions the state allows, for a role that may
    move shipments; none otherwise."""
    if not can_manage:
        return ()
    return tuple(e for e in lifecycle.allowed(state) if e in BUTTONS)


def state_badge(state: str) -> html.Span:
    """The lifecycle state as a badge: ``span.badge-state[data-state=…]``."""
    return html.Span(
        state.replace("_", " "),
        className=f"badge badge-state badge-{STATE_BADGE.get(state, 'info')}",
        **data_attrs(state=state),
    )


def lifecycle_card() -> html.Div:
    """The state, the transition buttons, attach / detach (filled and shown by a callback)."""
    return html.Div(
        className="card card-lifecycle",
        children=[
            dcc.Store(id=ids.SHIPMENT_CHANGED, data=0),
            html.Div(
                className="title-row",
                children=[html.H2("Lifecycle"), html.Span(id=ids.SHIPMENT_STATE)],
            ),
            html.Div(
                id=ids.SHIPMENT_ACTIONS,
                style=_HIDDEN,
                children=[
                    html.Div(
                        className="lifecycle-actions",
                        children=[
                            html.Button(
                                "Start",
                                id=ids.SHIPMENT_START,
                                className="btn btn-ack",
                                n_clicks=0,
                                style=_HIDDEN,
                            ),
                            html.Button(
                                "Arrive",
                                id=ids.SHIPMENT_ARRIVE,
                                className="btn btn-ack",
                                n_clicks=0,
                                style=_HIDDEN,
                            ),
                            html.Button(
                                "Cancel shipment",
                                id=ids.SHIPMENT_CANCEL,
                                className="btn btn-resolve",
                                n_clicks=0,
                                style=_HIDDEN,
                            ),
                            dcc.Input(
                                id=ids.SHIPMENT_REASON,
                                type="text",
                                maxLength=2000,
                                placeholder="Why (required to cancel; recorded)",
                                style={"minWidth": "320px"},
                            ),
                        ],
                    ),
                    html.Div(
                        className="lifecycle-actions",
                        children=[
                            dcc.Input(
                                id=ids.SHIPMENT_ATTACH_SERIAL,
                                type="text",
                                maxLength=200,
                                placeholder="Logger serial (scan or type)",
                                style={"minWidth": "240px"},
                            ),
                            html.Button(
                                "Attach logger", id=ids.SHIPMENT_ATTACH, className="btn", n_clicks=0
                            ),
                            dcc.Dropdown(
                                id=ids.SHIPMENT_DETACH_PICK,
                                options=[],
                                placeholder="Logger to detach",
                                className="dash-dropdown",
                            ),
                            html.Button(
                                "Detach logger", id=ids.SHIPMENT_DETACH, className="btn", n_clicks=0
                            ),
                        ],
                    ),
                    html.Div(
                        id=ids.SHIPMENT_OVERRIDE,
                        className="override",
                        style=_HIDDEN,
                        children=[
                            html.Label(
                                "Calibration override: why attach this logger anyway (required; "
                                "recorded in the audit trail and on the timeline)",
                                className="form-label",
                            ),
                            dcc.Input(
                                id=ids.SHIPMENT_OVERRIDE_REASON,
                                type="text",
                                maxLength=2000,
                                style={"width": "100%"},
                            ),
                        ],
                    ),
                ],
            ),
            html.Div(id=ids.SHIPMENT_ACTION_FEEDBACK, className="feedback", role="status"),
        ],
    )


def verdicts_view(rows: list[dict[str, Any]]) -> list[Any]:
    """The arrival verdict of each product: outcome, reasons, and each band's budget figures."""
    if not rows:
        return [html.P("No verdict yet: products are judged when the shipment arrives.",
                       className="muted")]  # fmt: skip
    out = []
    for v in rows:
        figures_ = v["figures"] or {}
        bands = [
            html.Tr(
                [
                    html.Td(b.get("label") or fmt_range(b["low_c"], b["high_c"])),
                    html.Td(fmt_duration(b["used_s"])),
                    html.Td(fmt_duration(b["budget_s"])),
                    html.Td("—" if b["share"] is None else f"{b['share'] * 100:.1f} %"),
                    html.Td(badge("exceeded", "alarm") if b["exceeded"] else badge("within", "ok")),
                ]
            )
            for b in figures_.get("bands", [])
        ]
        reasons = [html.Li(r["message"], **data_attrs(code=r["code"])) for r in v["reasons"] or []]
        version = v["profile_version"]
        out.append(
            html.Div(
                className="verdict",
                **data_attrs(gtin=v["gtin"], verdict=v["verdict"]),
                children=[
                    html.Div(
                        [
                            badge(v["verdict"], "ok" if v["verdict"] == "conforming" else "alarm"),
                            html.Strong(f" GTIN {v['gtin']}"),
                            html.Span(
                                f" · profile {'v' + str(version) if version else 'of the product'}"
                                f" · judged {fmt_ts(v['evaluated_at'])} by {v['evaluated_by']}",
                                className="muted",
                            ),
                        ]
                    ),
                    html.Ul(reasons)
                    if reasons
                    else html.P("No reason: conforming.", className="sub"),
                    table(
                        ["Band", "Used", "Budget", "Share", ""],
                        bands,
                        empty="No stability bands in the profile.",
                    ),
                ],
            )
        )
    return out


def act(
    page: PageContext,
    principal: Principal | None,
    *,
    reference: str,
    action: str,
    reason: str | None,
    serial: str | None,
    override: str | None,
    detach: str | None,
) -> tuple[str, bool, bool]:
    """Do what a button asks through the services; ``(message, ok, show_override)``."""
    if principal is None:
        return SESSION_ENDED, False, False
    caller = Caller.of(
        principal, flask.request.remote_addr if flask.has_request_context() else None
    )
    why = (reason or "").strip() or None
    now = datetime.now(UTC)
    try:
        with page.connection() as conn:
            shipment_id = bookings.resolve(conn, key=reference)
            if action == "start":
                lifecycle_s.start(conn, caller, shipment_id=shipment_id, now=now, reason=why)
                return "Started: the shipment is in transit.", True, False
            if action == "arrive":
                verdicts = lifecycle_s.arrive(conn, caller, shipment_id=shipment_id, now=now,
                                              gap_factor=page.gap_factor, reason=why)  # fmt: skip
                outcome = ", ".join(f"{v['gtin']}: {v['verdict']}" for v in verdicts)
                return f"Arrived and judged ({outcome or 'no product'}): awaiting QA.", True, False
            if action == "cancel":
                lifecycle_s.cancel(conn, caller, shipment_id=shipment_id, now=now, reason=why or "")
                return "Cancelled.", True, False
            if action == "attach":
                device = (serial or "").strip()
                if not device:
                    return "Scan or type the serial of the logger to attach.", False, False
                bookings.attach(conn, caller, shipment_id=shipment_id, device_id=device, now=now,
                                override_reason=override)  # fmt: skip
                return f"Logger {device} attached.", True, False
            if action == "detach":
                if not detach:
                    return "Choose the logger to detach.", False, False
                bookings.detach(conn, caller, shipment_id=shipment_id, device_id=detach, now=now,
                                reason=why)  # fmt: skip
                return f"Logger {detach} detached.", True, False
    except PermissionDeniedError:
        return f"Your role ({principal.role}) cannot change shipments.", False, False
    except CalibrationExpiredError as exc:
        return f"Not attached: {exc}. Give the override's reason to attach it anyway.", False, True
    except ColdchainError as exc:
        return f"Refused: {exc}", False, False
    raise PreventUpdate


def register_lifecycle(app: Dash, page: PageContext) -> None:
    """The lifecycle panel and the verdict, and the buttons' actions."""

    @app.callback(
        Output(ids.SHIPMENT_STATE, "children"),
        Output(ids.SHIPMENT_ACTIONS, "style"),
        *[Output(button, "style") for button in BUTTONS.values()],
        Output(ids.SHIPMENT_DETACH_PICK, "options"),
        Output(ids.SHIPMENT_VERDICTS, "children"),
        Input(ids.SHIPMENT_INTERVAL, "n_intervals"),
        Input(ids.SHIPMENT_CHANGED, "data"),
        State(ids.SHIPMENT_KEY, "data"),
    )
    def life(_n: int | None, _changed: int | None, reference: str) -> tuple[Any, ...]:
        with page.connection() as conn:
            try:
                shipment_id = bookings.resolve(conn, key=reference)
            except NotFoundError:
                nothing = html.P("—", className="muted")
                return "", _HIDDEN, _HIDDEN, _HIDDEN, _HIDDEN, [], nothing
            booking = bookings.get(conn, shipment_id=shipment_id)
            verdicts = lifecycle_s.verdicts(conn, shipment_id=shipment_id)
        principal = current_principal()
        can_manage = principal is not None and principal.can(lifecycle_s.MANAGE)
        shown = actions_for(booking["status"], can_manage=can_manage)
        attached = [a["device_id"] for a in booking["loggers"] if a["attached"]]
        note = [] if can_manage else [html.Span(" changes need the operator or admin role",
                                                className="muted")]  # fmt: skip
        return (
            [state_badge(booking["status"]), *note],
            None if can_manage else _HIDDEN,
            *[None if event in shown else _HIDDEN for event in BUTTONS],
            [{"label": d, "value": d} for d in attached],
            verdicts_view(verdicts),
        )

    @app.callback(
        Output(ids.SHIPMENT_ACTION_FEEDBACK, "children"),
        Output(ids.SHIPMENT_ACTION_FEEDBACK, "className"),
        Output(ids.SHIPMENT_OVERRIDE, "style"),
        Output(ids.SHIPMENT_CHANGED, "data"),
        Input(ids.SHIPMENT_START, "n_clicks"),
        Input(ids.SHIPMENT_ARRIVE, "n_clicks"),
        Input(ids.SHIPMENT_CANCEL, "n_clicks"),
        Input(ids.SHIPMENT_ATTACH, "n_clicks"),
        Input(ids.SHIPMENT_DETACH, "n_clicks"),
        State(ids.SHIPMENT_KEY, "data"),
        State(ids.SHIPMENT_REASON, "value"),
        State(ids.SHIPMENT_ATTACH_SERIAL, "value"),
        State(ids.SHIPMENT_OVERRIDE_REASON, "value"),
        State(ids.SHIPMENT_DETACH_PICK, "value"),
        State(ids.SHIPMENT_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def on_click(
        _s: int, _a: int, _c: int, _at: int, _d: int,
        reference: str, reason: str | None, serial: str | None, override: str | None,
        detach: str | None, changed: int | None,
    ) -> tuple[Any, ...]:  # fmt: skip
        action = {v: k for k, v in BUTTONS.items()} | {
            ids.SHIPMENT_ATTACH: "attach",
            ids.SHIPMENT_DETACH: "detach",
        }
        trigger = ctx.triggered_id
        if not isinstance(trigger, str) or trigger not in action or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        message, ok, show_override = act(
            page, current_principal(), reference=reference, action=action[trigger],
            reason=reason, serial=serial, override=override, detach=detach,
        )  # fmt: skip
        return (
            message,
            "feedback ok" if ok else "feedback error",
            None if show_override else (_HIDDEN if ok else no_update),
            (changed or 0) + 1 if ok else no_update,
        )

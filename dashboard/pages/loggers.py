"""Loggers ("/loggers"): every logger with its model, interval, calibration (expired ones
marked), current shipment and last reading; register one, change its calibration, retire one.

Everyone may read the list; the forms are shown to the roles with ``devices.manage`` (admin),
and the service checks the role again whatever the page shows. Registering a logger issues its
MQTT password: the page shows it this once, in the answer to the click, and keeps it nowhere
(not in a store, not in the list); the database keeps only its hash. A change names the version
the form was loaded with (a stale one is refused and said so) and a reason for the audit trail;
retiring a logger revokes its MQTT credential.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from coldchain.calibration import calibration_status
from coldchain.errors import ColdchainError, InvalidRecordError, NotFoundError
from coldchain.telemetry import telemetry_topic
from dashboard.pages import PageContext, badge, data_attrs, fmt_age, shipment_href, table
from dashboard.pages.forms import (
    REASON_MAX,
    SESSION_ENDED,
    caller,
    labelled,
    number_input,
    refusal,
    text_input,
)
from db.types import Row
from security.accounts import Principal
from security.roles import Permission
from services import loggers as service
from services.loggers import LoggerIn

PATH = "/loggers"
NAV = "nav-loggers"
PERMISSION: Permission = "devices.manage"

# Component ids of this page.
TABLE = "loggers-table"
CHANGED = "loggers-changed"  # dcc.Store bumped after a change, to refresh the list
EDITING = "loggers-editing"  # dcc.Store: {"device_id", "version"} of the logger in the form
REGISTER_PANEL = "loggers-register-panel"
REGISTER = "loggers-register"
REGISTER_FEEDBACK = "loggers-register-feedback"
CREDENTIALS = "loggers-credentials"  # the password shown once, after a registration
PASSWORD = "loggers-password"  # <code> holding it
EDIT_PANEL = "loggers-edit-panel"
SELECT = "loggers-select"
REASON = "loggers-reason"
SAVE = "loggers-save"
RELOAD = "loggers-reload"  # loads the picked record again (after a refused stale edit)
RETIRE = "loggers-retire"
EDIT_FEEDBACK = "loggers-edit-feedback"

#: The logger's fields on the forms, as the service names them.
FIELDS: tuple[tuple[str, str], ...] = (
    ("device_id", "Serial number"),
    ("model", "Model"),
    ("interval_s", "Logging interval (s)"),
    ("calibration_cert", "Calibration certificate"),
    ("calibration_due", "Calibration due"),
)
LABELS: dict[str, str] = {**dict(FIELDS), "reason": "Reason"}
EDITABLE = tuple(k for k, _ in FIELDS if k != "device_id")


def new_id(key: str) -> str:
    """The component id of a field of the registration form."""
    return f"logger-new-{key.replace('_', '-')}"


def edit_id(key: str) -> str:
    """The component id of a field of the edit form."""
    return f"logger-edit-{key.replace('_', '-')}"


# ---- pure ---------------------------------------------------------------------------------------


def logger_body(values: dict[str, Any]) -> dict[str, Any]:
    """The service's logger fields from a form's values (by field name): text trimmed, an empty
    field absent (None), the interval a whole number; InvalidRecordError names the field."""
    body: dict[str, Any] = {}
    for key, _ in FIELDS:
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, str):
            value = value.strip() or None
        body[key] = value
    interval = body.get("interval_s")
    if isinstance(interval, float):
        if interval != int(interval):
            raise InvalidRecordError("interval_s", f"{interval:g} is not a whole number of seconds")
        body["interval_s"] = int(interval)
    if "interval_s" in body and body["interval_s"] is None:
        raise InvalidRecordError("interval_s", "required (seconds between two readings)")
    return body


def validated(body: dict[str, Any]) -> LoggerIn:
    """The logger to register; InvalidRecordError names the first bad field."""
    try:
        return LoggerIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "logger"
        raise InvalidRecordError(where, first["msg"]) from None


def logger_rows(rows: list[Row], now: datetime) -> list[html.Tr]:
    """The list's rows: calibration marked when expired or due soon, retired ones muted."""
    out = []
    for r in rows:
        retired = r["retired_at"] is not None
        due = r["calibration_due"]
        status = calibration_status(due, now.date())
        due_cell: list[Any] = [due.isoformat() if due else "—"]
        if status == "expired":
            due_cell.append(badge("expired", "alarm"))
        elif status == "due soon":
            due_cell.append(badge("due soon", "warning"))
        reference = r["current_shipment_reference"]
        out.append(
            html.Tr(
                [
                    html.Td(r["device_id"], className="cell-serial"),
                    html.Td(r["model"] or "—"),
                    html.Td(f"{r['interval_s']} s"),
                    html.Td(r["calibration_cert"] or "—", className="cell-cert"),
                    html.Td(due_cell, className="cell-due"),
                    html.Td(
                        dcc.Link(reference, href=shipment_href(reference)) if reference else "—"
                    ),
                    html.Td(fmt_age(r["last_seen"], now), className="cell-last-seen"),
                    html.Td(badge("retired", "offline") if retired else badge("in use", "ok")),
                ],
                className="logger-row" + (" retired" if retired else ""),
                **data_attrs(
                    device_id=r["device_id"],
                    calibration=status or "none",
                    retired="true" if retired else "false",
                ),
            )
        )
    return out


def credentials_panel(device_id: str, password: str, topic: str, files_written: bool) -> html.Div:
    """The new logger's MQTT credentials, shown once, with the warning to copy them now."""
    broker = (
        "The broker's password file and ACL on this host were rewritten: the broker applies "
        "them when it is reloaded (SIGHUP)."
        if files_written
        else "This host has no broker files: run `coldchain devices provision` where the broker "
        "runs to write them."
    )
    return html.Div(
        className="credentials",
        children=[
            html.P(
                html.Strong(
                    "Copy this password now: it is shown only this once. The platform keeps only "
                    "its hash and cannot show it again."
                ),
                className="text-alarm",
            ),
            html.Table(
                className="data-table",
                children=html.Tbody(
                    [
                        html.Tr([html.Th("MQTT user"), html.Td(html.Code(device_id))]),
                        html.Tr(
                            [html.Th("MQTT password"), html.Td(html.Code(password, id=PASSWORD))]
                        ),
                        html.Tr([html.Th("Topic"), html.Td(html.Code(topic))]),
                    ]
                ),
            ),
            html.P(broker, className="muted"),
        ],
    )


# ---- layout -------------------------------------------------------------------------------------


def _field(key: str, label: str, make_id: Any) -> html.Label:
    if key == "interval_s":
        return labelled(label, number_input(make_id(key), step=1))
    placeholder = {"calibration_due": "YYYY-MM-DD", "device_id": "e.g. TL-000123"}.get(key, "")
    return labelled(label, text_input(make_id(key), placeholder=placeholder, max_length=100))


def _register_panel(visible: bool) -> html.Div:
    return html.Div(
        id=REGISTER_PANEL,
        className="card editor",
        style=None if visible else {"display": "none"},
        children=[
            html.H2("Register a logger"),
            html.P(
                "The serial number is the logger's identity: its MQTT user name and topic. "
                "Registering issues its MQTT password, shown once below.",
                className="muted",
            ),
            html.Div(
                className="form-row", children=[_field(k, label, new_id) for k, label in FIELDS]
            ),
            html.Div(
                className="toolbar",
                children=[
                    html.Button("Register", id=REGISTER, className="btn btn-ack", n_clicks=0)
                ],
            ),
            html.Div(id=REGISTER_FEEDBACK, className="feedback", role="status"),
            html.Div(id=CREDENTIALS),
        ],
    )


def _edit_panel(visible: bool) -> html.Div:
    return html.Div(
        id=EDIT_PANEL,
        className="card editor",
        style=None if visible else {"display": "none"},
        children=[
            html.H2("Change a logger's calibration, or retire it"),
            html.Div(
                className="form-row",
                children=[
                    labelled(
                        "Logger",
                        dcc.Dropdown(id=SELECT, options=[], value=None, placeholder="Pick one"),
                        grow=True,
                    )
                ],
            ),
            html.Div(
                className="form-row",
                children=[_field(k, label, edit_id) for k, label in FIELDS if k in EDITABLE],
            ),
            html.Div(
                className="form-row",
                children=[
                    labelled(
                        "Reason (recorded in the audit trail; required)",
                        dcc.Textarea(
                            id=REASON,
                            maxLength=REASON_MAX,
                            value="",
                            style={"width": "100%", "height": "56px"},
                        ),
                        grow=True,
                    )
                ],
            ),
            html.Div(
                className="toolbar",
                children=[
                    html.Button("Save", id=SAVE, className="btn btn-ack", n_clicks=0),
                    html.Button("Reload", id=RELOAD, className="btn", n_clicks=0),
                    html.Button("Retire", id=RETIRE, className="btn", n_clicks=0),
                ],
            ),
            html.Div(id=EDIT_FEEDBACK, className="feedback", role="status"),
        ],
    )


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The list, and the forms for the roles that may register and change loggers."""
    can_manage = principal is not None and principal.can(PERMISSION)
    role = principal.role if principal is not None else "none"
    note = (
        None
        if can_manage
        else html.P(
            f"Your role ({role}) can read the loggers; administrators register and change them.",
            className="muted",
        )
    )
    return html.Div(
        className="page page-loggers",
        children=[
            dcc.Store(id=CHANGED, data=0),
            dcc.Store(id=EDITING, data=None),
            html.Div(className="page-header", children=[html.H1("Loggers")]),
            html.Div(className="card", children=[html.Div(id=TABLE), note]),
            _register_panel(can_manage),
            _edit_panel(can_manage),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The loggers page's callbacks."""
    topic_root = page.settings.mqtt.topic_root
    broker_dir = service.broker_dir(page.settings)

    @app.callback(Output(TABLE, "children"), Output(SELECT, "options"), Input(CHANGED, "data"))
    def refresh(_changed: int | None) -> tuple[Any, Any]:
        with page.connection() as conn:
            rows = service.list_loggers(conn)
        headers = ["Serial", "Model", "Interval", "Certificate", "Due", "Shipment", "Last seen", ""]
        options = [
            {"label": f"{r['device_id']} ({r['model'] or 'no model'})", "value": r["device_id"]}
            for r in rows
            if r["retired_at"] is None
        ]
        body = logger_rows(rows, datetime.now(UTC))
        return table(headers, body, empty="No logger yet.", id="loggers-list"), options

    @app.callback(
        Output(REGISTER_FEEDBACK, "children"),
        Output(REGISTER_FEEDBACK, "className"),
        Output(CREDENTIALS, "children"),
        Output(CHANGED, "data"),
        Input(REGISTER, "n_clicks"),
        State(CHANGED, "data"),
        *(State(new_id(k), "value") for k, _ in FIELDS),
        prevent_initial_call=True,
    )
    def register_logger(clicks: int | None, changed: int | None, *form: Any) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", None, no_update
        try:
            spec = validated(logger_body(dict(zip((k for k, _ in FIELDS), form, strict=True))))
            with page.connection() as conn:
                done = service.register_logger(
                    conn, who, logger=spec, topic_root=topic_root, broker_dir=broker_dir
                )
        except ColdchainError as exc:
            text = refusal(exc, what="loggers", role=who.role, labels=LABELS)
            return text, "feedback error", None, no_update
        if not done.created or done.mqtt_password is None:
            message = (
                f"Logger {spec.device_id} was already registered as given: no new password was "
                "issued (the first registration showed it)."
            )
            return message, "feedback ok", None, (changed or 0) + 1
        panel = credentials_panel(
            spec.device_id,
            done.mqtt_password,
            telemetry_topic(topic_root, spec.device_id),
            done.broker_files_written,
        )
        return f"Registered logger {spec.device_id}.", "feedback ok", panel, (changed or 0) + 1

    @app.callback(
        *(Output(edit_id(k), "value") for k in EDITABLE),
        Output(EDITING, "data"),
        Input(SELECT, "value"),
        Input(RELOAD, "n_clicks"),
    )
    def load(device_id: str | None, _reloads: int | None) -> tuple[Any, ...]:
        empty = (None, None, None, None, None)
        if not device_id:
            return empty
        try:
            with page.connection() as conn:
                row = service.get_logger(conn, device_id)
        except NotFoundError:
            return empty  # not (or no longer) there: an empty form
        due = row["calibration_due"]
        return (
            row["model"],
            row["interval_s"],
            row["calibration_cert"],
            due.isoformat() if due else None,
            {"device_id": row["device_id"], "version": row["version"]},
        )

    @app.callback(
        Output(EDIT_FEEDBACK, "children"),
        Output(EDIT_FEEDBACK, "className"),
        Output(CHANGED, "data", allow_duplicate=True),
        Output(EDITING, "data", allow_duplicate=True),
        Input(SAVE, "n_clicks"),
        Input(RETIRE, "n_clicks"),
        State(EDITING, "data"),
        State(REASON, "value"),
        State(CHANGED, "data"),
        *(State(edit_id(k), "value") for k in EDITABLE),
        prevent_initial_call=True,
    )
    def act(
        _saves: int | None,
        _retirements: int | None,
        editing: dict[str, Any] | None,
        reason: str | None,
        changed: int | None,
        *form: Any,
    ) -> tuple[Any, ...]:
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update, no_update
        reason = (reason or "").strip()
        try:
            if editing is None:
                raise InvalidRecordError("device_id", "pick the logger in the list first")
            if not reason:
                raise InvalidRecordError("reason", "say why (required)")
            device_id, version = str(editing["device_id"]), int(editing["version"])
            with page.connection() as conn:
                if ctx.triggered_id == RETIRE:
                    row = service.retire_logger(
                        conn,
                        who,
                        device_id=device_id,
                        expected_version=version,
                        reason=reason,
                        topic_root=topic_root,
                        broker_dir=broker_dir,
                    )
                    message = (
                        f"Retired logger {device_id}: its MQTT credential is revoked and it can "
                        "no longer ride in a new shipment."
                    )
                else:
                    changes = logger_body(dict(zip(EDITABLE, form, strict=True)))
                    row = service.update_logger(
                        conn,
                        who,
                        device_id=device_id,
                        changes=changes,
                        expected_version=version,
                        reason=reason,
                    )
                    message = (
                        f"Saved logger {device_id} (version {row['version']})."
                        if row["version"] != version
                        else "Nothing changed: the form is the same as the stored logger."
                    )
        except ColdchainError as exc:
            text = refusal(exc, what="loggers", role=who.role, labels=LABELS)
            return text, "feedback error", no_update, no_update
        editing = None if row["retired_at"] else {"device_id": device_id, "version": row["version"]}
        return message, "feedback ok", (changed or 0) + 1, editing

"""API keys ("/admin/api-keys", administrators): the keys machine clients (an ERP, a data feed)
call the API with, and creating or revoking one.

The list shows each key's label, its role (what it may do), who created it and when, when it
was last used, when it expires and whether it is live; never the key itself, which is stored
only as a hash. A new key is shown once, on creation, with how to use it. A key never carries
the ``qa`` role (machines do not sign: :data:`security.roles.API_KEY_ROLES`). Creating and
revoking go through :mod:`services.accounts`, the functions the API's ``/api-keys`` routes
call, and are audited.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import AccountError, ColdchainError, PermissionDeniedError
from dashboard.pages import PageContext, badge, data_attrs, fmt_ts, table
from dashboard.pages.admin_people import secret_notice
from dashboard.pages.forms import SESSION_ENDED, caller, labelled, text_input
from db.types import Row
from security.roles import API_KEY_ROLES, DESCRIPTIONS
from services import accounts as service

LIST = "keys-list"
CHANGED = "keys-changed"
FEEDBACK = "keys-feedback"
NAME = "keys-name"
ROLE = "keys-role"
EXPIRES = "keys-expires"
CREATE = "keys-create"
PICK = "keys-pick"
REVOKE = "keys-revoke"


# ---- pure ---------------------------------------------------------------------------------------


def key_state(row: Row, now: datetime) -> str:
    """``live``, ``revoked`` or ``expired``."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "live"


def key_rows(rows: list[Row], now: datetime) -> list[html.Tr]:
    """The list's rows (never a key: its first characters identify it)."""
    kinds = {"live": "ok", "revoked": "offline", "expired": "warning"}
    out = []
    for r in rows:
        state = key_state(r, now)
        out.append(
            html.Tr(
                [
                    html.Td(r["name"], className="cell-name"),
                    html.Td(badge(r["role"], "info"), className="cell-role"),
                    html.Td(html.Code(r["prefix"] + "…")),
                    html.Td(f"{fmt_ts(r['created_at'])} by {r['created_by']}"),
                    html.Td(
                        fmt_ts(r["last_used_at"]) if r["last_used_at"] else "never",
                        className="cell-last-used",
                    ),
                    html.Td(fmt_ts(r["expires_at"]) if r["expires_at"] else "never"),
                    html.Td(badge(state, kinds[state]), className="cell-state"),
                ],
                className="key-row" + ("" if state == "live" else " retired"),
                **data_attrs(name=r["name"], state=state),
            )
        )
    return out


def expiry(value: str | None) -> datetime | None:
    """The end of the day picked (``YYYY-MM-DD``), UTC; None for no expiry."""
    if not value:
        return None
    day = date.fromisoformat(value[:10])
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


# ---- layout -------------------------------------------------------------------------------------


def layout() -> html.Div:
    """The list, the form to create a key and the one to revoke one."""
    roles = [{"label": f"{r} — {DESCRIPTIONS[r]}", "value": r} for r in API_KEY_ROLES]
    return html.Div(
        className="page page-keys",
        children=[
            dcc.Store(id=CHANGED, data=0),
            html.Div(className="page-header", children=[html.H1("API keys")]),
            html.P(
                "Keys let machine clients (an ERP, a data feed) call the API in a role. A key is "
                "sent as the X-API-Key header; it is shown once, when created.",
                className="muted",
            ),
            html.Div(className="card", children=[html.H2("Keys"), html.Div(id=LIST)]),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            html.Div(
                className="card editor",
                children=[
                    html.H2("Create a key"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "Label (letters, digits, . _ -; never reused)",
                                text_input(NAME, max_length=64),
                                grow=True,
                            ),
                            labelled(
                                "Role",
                                dcc.Dropdown(
                                    id=ROLE, options=roles, value="viewer", clearable=False
                                ),
                                grow=True,
                            ),
                            labelled(
                                "Expires (optional, end of the day UTC)",
                                dcc.DatePickerSingle(
                                    id=EXPIRES, display_format="YYYY-MM-DD", clearable=True
                                ),
                            ),
                        ],
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button("Create", id=CREATE, className="btn btn-ack", n_clicks=0)
                        ],
                    ),
                    html.H2("Revoke a key"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "Which (live keys)",
                                dcc.Dropdown(id=PICK, options=[], value=None),
                                grow=True,
                            )
                        ],
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button("Revoke now", id=REVOKE, className="btn", n_clicks=0)
                        ],
                    ),
                ],
            ),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def _refused(exc: ColdchainError, role: str) -> str:
    if isinstance(exc, PermissionDeniedError):
        return f"Your role ({role}) cannot manage API keys: nothing was changed."
    return f"Not done: {exc}"


def register(app: Dash, page: PageContext) -> None:
    """The list, creating a key and revoking one."""

    @app.callback(Output(LIST, "children"), Output(PICK, "options"), Input(CHANGED, "data"))
    def refresh(_changed: int | None) -> tuple[Any, Any]:
        who = caller()
        if who is None:
            raise PreventUpdate
        try:
            with page.connection() as conn:
                rows = service.list_api_keys(conn, who)
        except PermissionDeniedError as exc:
            return html.P(_refused(exc, who.role), className="muted"), []
        now = datetime.now(UTC)
        live = [r for r in rows if key_state(r, now) == "live"]
        options = [{"label": f"{r['name']} ({r['role']})", "value": r["name"]} for r in live]
        headers = ["Label", "Role", "Key starts", "Created", "Last used", "Expires", ""]
        body = key_rows(rows, now)
        return table(headers, body, empty="No API keys yet.", id="keys-table"), options

    @app.callback(
        Output(FEEDBACK, "children"),
        Output(FEEDBACK, "className"),
        Output(CHANGED, "data"),
        Input(CREATE, "n_clicks"),
        State(NAME, "value"),
        State(ROLE, "value"),
        State(EXPIRES, "date"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def create(
        clicks: int | None,
        name: str | None,
        role: str | None,
        expires: str | None,
        changed: int | None,
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        try:
            until = expiry(expires)
            if until is not None and until <= datetime.now(UTC):
                raise AccountError("the expiry date is in the past")
            with page.connection() as conn:
                secret, row = service.create_api_key(
                    conn, who, name=(name or "").strip(), role=role or "", expires_at=until
                )
        except ColdchainError as exc:
            return _refused(exc, who.role), "feedback error", no_update
        text = (
            f"Created the key {row['name']} ({row['role']}). Send it as the X-API-Key header. "
            "The key, shown this once:"
        )
        return secret_notice(text, secret), "feedback ok", (changed or 0) + 1

    @app.callback(
        Output(FEEDBACK, "children", allow_duplicate=True),
        Output(FEEDBACK, "className", allow_duplicate=True),
        Output(CHANGED, "data", allow_duplicate=True),
        Input(REVOKE, "n_clicks"),
        State(PICK, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def revoke(clicks: int | None, name: str | None, changed: int | None) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        if not name:
            return "Pick the key to revoke first.", "feedback error", no_update
        try:
            with page.connection() as conn:
                row = service.revoke_api_key(conn, who, name=name)
        except ColdchainError as exc:
            return _refused(exc, who.role), "feedback error", no_update
        return (
            f"Revoked the key {row['name']}: it is refused from now on.",
            "feedback ok",
            (changed or 0) + 1,
        )

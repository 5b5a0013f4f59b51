"""People ("/admin/people", administrators): everyone who may log in, and the changes an
administrator makes to them.

The list shows each person's name, role, whether they are active and when they last logged
in. An administrator adds a person (with a password they type, or one generated and shown this
once), and for a picked person changes the role, deactivates or reactivates them, or resets
their password (generated, shown once; every session they hold ends), or sets how they are
reached when on call (e-mail address, mobile number in E.164: README "On-call"). Each change goes through
:mod:`services.accounts`, the functions the API's ``/users`` routes call: the role is checked
there again, and the change is recorded with who made it and the reason typed here. An
administrator cannot deactivate themselves nor change their own role (the service refuses).
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import AccountError, ColdchainError, PermissionDeniedError
from dashboard.pages import PageContext, badge, data_attrs, fmt_ts, table
from dashboard.pages.forms import REASON_MAX, SESSION_ENDED, caller, labelled, text_input
from db.types import Conn, Row
from security.roles import DESCRIPTIONS, ROLES
from services import accounts as service
from services.caller import Caller

PREFIX = "people"
LIST = "people-list"
CHANGED = "people-changed"
FEEDBACK = "people-feedback"
SECRET = "secret-once"  # a password or key shown once (people and keys pages)
NEW_USERNAME = "people-new-username"
NEW_NAME = "people-new-name"
NEW_ROLE = "people-new-role"
NEW_PASSWORD = "people-new-password"
ADD = "people-add"
PICK = "people-pick"
ROLE = "people-role"
REASON = "people-reason"
SET_ROLE = "people-set-role"
DEACTIVATE = "people-deactivate"
REACTIVATE = "people-reactivate"
RESET = "people-reset"
EMAIL = "people-email"
PHONE = "people-phone"
SET_CONTACTS = "people-set-contacts"
ACTIONS = (SET_ROLE, DEACTIVATE, REACTIVATE, RESET, SET_CONTACTS)

ROLE_OPTIONS = [{"label": f"{r} — {DESCRIPTIONS[r]}", "value": r} for r in ROLES]


# ---- pure ---------------------------------------------------------------------------------------


def person_rows(rows: list[Row]) -> list[html.Tr]:
    """The list's rows: name, user name, role, active, last login, since."""
    return [
        html.Tr(
            [
                html.Td(r["full_name"]),
                html.Td(html.Code(r["username"])),
                html.Td(badge(r["role"], "info"), className="cell-role"),
                html.Td(
                    badge("active", "ok") if r["active"] else badge("deactivated", "offline"),
                    className="cell-active",
                ),
                html.Td(
                    fmt_ts(r.get("last_login_at")) if r.get("last_login_at") else "never",
                    className="cell-last-login",
                ),
                html.Td(fmt_ts(r["created_at"])),
            ],
            className="person-row" + ("" if r["active"] else " retired"),
            **data_attrs(
                username=r["username"], role=r["role"], active="true" if r["active"] else "false"
            ),
        )
        for r in rows
    ]


def secret_notice(text: str, secret: str) -> list[Any]:
    """A password or key shown this once, with how to pass it on."""
    return [
        html.P(text),
        html.Code(secret, id=SECRET, className="secret"),
        html.P(
            "Copy it now (select it and press Ctrl+C) and hand it over privately: it is not "
            "stored in clear and will not be shown again.",
            className="muted",
        ),
    ]


def refused(exc: ColdchainError, role: str) -> str:
    """A service's refusal as one sentence."""
    if isinstance(exc, PermissionDeniedError):
        return f"Your role ({role}) cannot manage people: nothing was changed."
    return f"Not done: {exc}"


# ---- layout -------------------------------------------------------------------------------------


def layout() -> html.Div:
    """The list, the form to add a person and the changes for a picked person."""
    return html.Div(
        className="page page-people",
        children=[
            dcc.Store(id=CHANGED, data=0),
            html.Div(className="page-header", children=[html.H1("People")]),
            html.Div(className="card", children=[html.H2("Everyone"), html.Div(id=LIST)]),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            html.Div(
                className="card editor",
                children=[
                    html.H2("Add a person"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled("User name", text_input(NEW_USERNAME, max_length=64)),
                            labelled(
                                "Full name (printed with their signatures)",
                                text_input(NEW_NAME),
                                grow=True,
                            ),
                            labelled(
                                "Role",
                                dcc.Dropdown(
                                    id=NEW_ROLE,
                                    options=ROLE_OPTIONS,
                                    value="viewer",
                                    clearable=False,
                                ),
                                grow=True,
                            ),
                            labelled(
                                "Password (leave empty: one is generated)",
                                dcc.Input(
                                    id=NEW_PASSWORD, type="password", value="", maxLength=1024
                                ),
                            ),
                        ],
                    ),
                    html.Div(
                        className="toolbar",
                        children=[html.Button("Add", id=ADD, className="btn btn-ack", n_clicks=0)],
                    ),
                ],
            ),
            html.Div(
                className="card editor",
                children=[
                    html.H2("Change a person"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "Who", dcc.Dropdown(id=PICK, options=[], value=None), grow=True
                            ),
                            labelled(
                                "New role",
                                dcc.Dropdown(id=ROLE, options=ROLE_OPTIONS, value=None),
                                grow=True,
                            ),
                            labelled(
                                "Reason (recorded in the audit trail)",
                                text_input(REASON, max_length=REASON_MAX),
                                grow=True,
                            ),
                        ],
                    ),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled("E-mail (when on call)", text_input(EMAIL), grow=True),
                            labelled(
                                "Mobile, E.164 (+41791234567)", text_input(PHONE, max_length=20)
                            ),
                        ],
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button("Change role", id=SET_ROLE, className="btn", n_clicks=0),
                            html.Button("Deactivate", id=DEACTIVATE, className="btn", n_clicks=0),
                            html.Button("Reactivate", id=REACTIVATE, className="btn", n_clicks=0),
                            html.Button("Reset password", id=RESET, className="btn", n_clicks=0),
                            html.Button(
                                "Set contacts", id=SET_CONTACTS, className="btn", n_clicks=0
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The list, adding a person, and the changes of a picked person."""

    @app.callback(
        Output(LIST, "children"),
        Output(PICK, "options"),
        Input(CHANGED, "data"),
    )
    def refresh(_changed: int | None) -> tuple[Any, Any]:
        who = caller()
        if who is None:
            raise PreventUpdate
        try:
            with page.connection() as conn:
                rows = service.list_users(conn, who)
        except PermissionDeniedError as exc:
            return html.P(refused(exc, who.role), className="muted"), []
        options = [
            {
                "label": f"{r['full_name']} ({r['username']}, {r['role']}"
                + ("" if r["active"] else ", deactivated")
                + ")",
                "value": r["username"],
            }
            for r in rows
        ]
        headers = ["Name", "User name", "Role", "Active", "Last login", "Since"]
        return table(headers, person_rows(rows), empty="Nobody yet.", id="people-table"), options

    @app.callback(
        Output(FEEDBACK, "children"),
        Output(FEEDBACK, "className"),
        Output(CHANGED, "data"),
        Input(ADD, "n_clicks"),
        State(NEW_USERNAME, "value"),
        State(NEW_NAME, "value"),
        State(NEW_ROLE, "value"),
        State(NEW_PASSWORD, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def add(
        clicks: int | None,
        username: str | None,
        full_name: str | None,
        role: str | None,
        password: str | None,
        changed: int | None,
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        try:
            with page.connection() as conn:
                created = service.create_user(
                    conn,
                    who,
                    username=(username or "").strip(),
                    full_name=full_name or "",
                    role=role or "",
                    password=password or None,
                    security=page.settings.security,
                )
        except ColdchainError as exc:
            return refused(exc, who.role), "feedback error", no_update
        user = created.user
        text = f"Added {user['full_name']} ({user['username']}) as {user['role']}."
        if created.password is None:
            return (
                text + " They log in with the password you typed.",
                "feedback ok",
                (changed or 0) + 1,
            )
        notice = secret_notice(text + " Their password, shown this once:", created.password)
        return notice, "feedback ok", (changed or 0) + 1

    @app.callback(
        Output(FEEDBACK, "children", allow_duplicate=True),
        Output(FEEDBACK, "className", allow_duplicate=True),
        Output(CHANGED, "data", allow_duplicate=True),
        *(Input(a, "n_clicks") for a in ACTIONS),
        State(PICK, "value"),
        State(ROLE, "value"),
        State(REASON, "value"),
        State(EMAIL, "value"),
        State(PHONE, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def change(*args: Any) -> tuple[Any, ...]:
        username, role, reason, email, phone, changed = args[len(ACTIONS) :]
        action = ctx.triggered_id
        if action not in ACTIONS or not any(args[: len(ACTIONS)]):
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        if not username:
            return "Pick the person first.", "feedback error", no_update
        why = (reason or "").strip() or None
        try:
            with page.connection() as conn:
                if action == SET_CONTACTS:
                    row = service.set_contacts(
                        conn, who, username=username, email=email, phone=phone, reason=why
                    )
                    message = (
                        f"{row['username']} is reached at {row['email'] or 'no e-mail'} and "
                        f"{row['phone'] or 'no mobile number'} when on call."
                    )
                else:
                    message = _apply(conn, who, action, username, role, why, page)
        except ColdchainError as exc:
            return refused(exc, who.role), "feedback error", no_update
        return message, "feedback ok", (changed or 0) + 1


def _apply(
    conn: Conn,
    who: Caller,
    action: str,
    username: str,
    role: str | None,
    why: str | None,
    page: PageContext,
) -> Any:
    """Carry out one change of a person; what to show."""
    if action == SET_ROLE:
        if not role:
            raise AccountError("pick the new role first")
        row = service.change_role(conn, who, username=username, role=role, reason=why)
        return f"{row['username']} is now {row['role']}."
    if action == DEACTIVATE:
        row = service.deactivate_user(conn, who, username=username, reason=why)
        return f"{row['username']} is deactivated: their sessions and tokens are revoked."
    if action == REACTIVATE:
        row = service.reactivate_user(conn, who, username=username, reason=why)
        return f"{row['username']} is active again and may log in with their password."
    reset = service.reset_password(
        conn,
        who,
        username=username,
        password=None,
        security=page.settings.security,
        reason=why,
    )
    assert reset.password is not None  # generated: none was given
    return secret_notice(
        f"New password for {reset.user['username']} (their sessions have ended), shown this once:",
        reset.password,
    )

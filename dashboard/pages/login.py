"""Login page ("/login"), the dashboard session, and the gate in front of every dashboard request.

A person logs in with a plain HTML form (``POST /auth/login``, no JavaScript needed): the Flask
server checks the password (:func:`services.accounts.login`, as the API does, with the same
limiter), stores
a new session's hash in ``auth_tokens`` (kind ``dashboard``) and sets the session in a cookie
(HttpOnly, SameSite=Lax, Secure when ``COLDCHAIN_SECURITY__COOKIE_SECURE``). ``POST
/auth/logout`` revokes it. A dashboard session is not an API bearer token, and the reverse.

The gate (a Flask ``before_request`` hook) resolves the cookie for every request:

- static files, the layout and the callback graph are public (they hold no data);
- a callback (``/_dash-update-component``) without a session is refused (401) unless it only
  renders the page shell or the login page, so no data reaches a browser that has not logged in;
- a page without a session redirects to ``/login?next=…``, except the acknowledgement page
  (``/ack/<token>``, :mod:`dashboard.pages.ack`), whose one-time token and PIN are the proof.

Callbacks find the person with :func:`current_principal`; each action checks the role again.
A POST whose ``Origin`` is not the dashboard's own (a forged cross-site request) is refused.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import flask
from dash import Dash, Input, Output, dcc, html
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from dashboard import ids
from dashboard.pages import data_attrs
from dashboard.pages.ack import ACK_PREFIX
from db.types import Conn
from security import accounts
from security.errors import AuthenticationError, RateLimitedError
from security.ratelimit import LoginLimiter
from services import accounts as service

log = logging.getLogger(__name__)

COOKIE = "coldchain_session"
LOGIN_PATH = "/login"
LOGIN_POST = "/auth/login"
LOGOUT_POST = "/auth/logout"

# Component ids of this page (the shell's own ids live in dashboard.ids).
LOGIN_FORM = "login-form"
LOGIN_USERNAME = "login-username"
LOGIN_PASSWORD = "login-password"
LOGIN_NEXT = "login-next"
LOGIN_SUBMIT = "login-submit"
LOGIN_MESSAGE = "login-message"
USER_BADGE = "nav-user"
LOGOUT_BUTTON = "nav-logout"

_PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_favicon")
_PUBLIC_PATHS = frozenset({"/_dash-layout", "/_dash-dependencies", "/_reload-hash"})
#: Callbacks an anonymous browser may run: the router (which then renders the login page) and
#: the login page's own message.
_PUBLIC_OUTPUTS = (ids.PAGE + ".children", LOGIN_MESSAGE + ".children")

_MESSAGES = {
    "failed": "Wrong user name or password, or the account is inactive.",
    "locked": "Too many failed attempts: wait a few minutes and try again.",
    "expired": "Your session ended: log in again.",
}


def current_principal() -> accounts.Principal | None:
    """The person whose session this request carries (None outside a request, or anonymous)."""
    if not flask.has_request_context():
        return None
    principal: accounts.Principal | None = flask.g.get("principal")
    return principal


def same_origin(origin: str | None, host: str) -> bool:
    """True when a request's ``Origin`` header is absent (browsers send it on every POST, so
    this is not a browser's cross-site request) or names the host the request was sent to.

    Hosts, not schemes, are compared: behind a TLS-terminating proxy the browser's origin is
    ``https`` while the request reaches us as ``http``, with the same ``Host``.
    """
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if target.startswith((LOGIN_PATH, "/auth/")):
        return "/"
    return target


def layout() -> html.Div:
    """The login form: posts to the server, which sets the session cookie."""
    field_style = {"display": "flex", "flexDirection": "column", "gap": "4px", "fontSize": "13px"}
    return html.Div(
        className="page page-login",
        style={"maxWidth": "380px", "margin": "48px auto"},
        children=[
            html.Div(
                className="card",
                children=[
                    html.H1("Log in", style={"marginTop": 0}),
                    html.P(
                        "Use the account an administrator gave you. What you may do depends "
                        "on your role.",
                        className="muted",
                    ),
                    html.Form(
                        id=LOGIN_FORM,
                        action=LOGIN_POST,
                        method="POST",
                        style={"display": "flex", "flexDirection": "column", "gap": "12px"},
                        children=[
                            html.Label(
                                [
                                    html.Span("User name"),
                                    dcc.Input(
                                        id=LOGIN_USERNAME,
                                        name="username",
                                        type="text",
                                        autoComplete="username",
                                        required=True,
                                        maxLength=64,
                                    ),
                                ],
                                style=field_style,
                            ),
                            html.Label(
                                [
                                    html.Span("Password"),
                                    dcc.Input(
                                        id=LOGIN_PASSWORD,
                                        name="password",
                                        type="password",
                                        autoComplete="current-password",
                                        required=True,
                                        maxLength=1024,
                                    ),
                                ],
                                style=field_style,
                            ),
                            dcc.Input(id=LOGIN_NEXT, name="next", type="hidden", value="/"),
                            html.Button(
                                "Log in", id=LOGIN_SUBMIT, type="submit", className="btn btn-ack"
                            ),
                        ],
                    ),
                    html.Div(id=LOGIN_MESSAGE, className="feedback error", role="alert"),
                ],
            )
        ],
    )


def user_menu(principal: accounts.Principal | None) -> html.Div:
    """The navigation bar's right end: who is logged in, their role, and a logout button."""
    if principal is None:
        return html.Div(id=USER_BADGE)
    return html.Div(
        id=USER_BADGE,
        style={"display": "flex", "alignItems": "center", "gap": "10px", "marginLeft": "auto"},
        **data_attrs(username=principal.name, role=principal.role),
        children=[
            html.Span(
                [
                    html.Span(principal.display_name, style={"fontWeight": 600}),
                    html.Span(f" · {principal.role}", style={"opacity": 0.8}),
                ],
                style={"color": "#fff", "fontSize": "13px"},
            ),
            html.Form(
                action=LOGOUT_POST,
                method="POST",
                style={"margin": 0},
                children=html.Button(
                    "Log out",
                    id=LOGOUT_BUTTON,
                    type="submit",
                    className="btn",
                    style={"padding": "3px 10px", "fontSize": "12px"},
                ),
            ),
        ],
    )


def register(app: Dash) -> None:
    """The login page's callback: the message and the page to return to, from the URL."""

    @app.callback(
        Output(LOGIN_MESSAGE, "children"),
        Output(LOGIN_NEXT, "value"),
        Input(ids.URL, "search"),
    )
    def message(search: str | None) -> tuple[str, str]:
        query = parse_qs((search or "").lstrip("?"))
        error = (query.get("error") or [""])[0]
        return _MESSAGES.get(error, ""), safe_next((query.get("next") or ["/"])[0])


def install(
    server: flask.Flask,
    *,
    pool: ConnectionPool[Conn],
    settings: Settings,
    limiter: LoginLimiter,
) -> None:
    """The login and logout routes and the gate, on the dashboard's Flask server."""
    ttl = service.token_ttl("dashboard", settings.security)

    def client() -> str | None:
        return flask.request.remote_addr

    def lookup(secret: str) -> accounts.Principal | None:
        with pool.connection() as conn:
            return accounts.principal_for_secret(conn, secret, kinds=("dashboard",))

    @server.before_request
    def gate() -> Any:
        path = flask.request.path
        if flask.request.method == "POST" and not same_origin(
            flask.request.headers.get("Origin"), flask.request.host
        ):
            # Cross-site request forgery: the SameSite=Lax cookie already stays home on a
            # cross-site POST; this also refuses one from a sibling site (another port or
            # subdomain), which SameSite counts as the same site.
            return flask.jsonify(detail="cross-origin request refused"), 403
        if path.startswith(_PUBLIC_PREFIXES) or path in (LOGIN_POST, LOGOUT_POST):
            return None
        secret = flask.request.cookies.get(COOKIE)
        principal = lookup(secret) if secret else None
        flask.g.principal = principal
        if path in _PUBLIC_PATHS:
            return None
        if path == "/_dash-update-component":
            if principal is not None:
                return None
            body = flask.request.get_json(silent=True) or {}
            output = str(body.get("output", "")) if isinstance(body, dict) else ""
            # A callback is named by its outputs ("..a.children...b.value.." when several).
            if output.lstrip(".").startswith(_PUBLIC_OUTPUTS):
                return None
            return flask.jsonify(detail="log in first"), 401
        if principal is None and path != LOGIN_PATH and not path.startswith(ACK_PREFIX):
            # (The acknowledgement page is open: its one-time token and the PIN are the proof.)
            reason = "&error=expired" if secret else ""
            return flask.redirect(f"{LOGIN_PATH}?next={quote(path, safe='/')}{reason}", 303)
        if principal is not None and path == LOGIN_PATH:
            return flask.redirect("/", 303)
        return None

    @server.post(LOGIN_POST)
    def login() -> Any:
        form = flask.request.form
        target = safe_next(form.get("next"))
        try:
            with pool.connection() as conn:
                secret, principal, expires_at = service.login(
                    conn,
                    username=form.get("username", "")[:64],
                    password=form.get("password", "")[:1024],
                    kind="dashboard",
                    security=settings.security,
                    limiter=limiter,
                    client=client(),
                )
        except RateLimitedError:
            return flask.redirect(f"{LOGIN_PATH}?error=locked&next={quote(target)}", 303)
        except AuthenticationError:
            return flask.redirect(f"{LOGIN_PATH}?error=failed&next={quote(target)}", 303)
        log.info("dashboard login: %s (%s)", principal.name, principal.role)
        response = flask.redirect(target, 303)
        response.set_cookie(
            COOKIE,
            secret,
            max_age=int(ttl.total_seconds()),
            expires=expires_at,
            path="/",
            httponly=True,
            secure=settings.security.cookie_secure,
            samesite="Lax",
        )
        return response

    @server.post(LOGOUT_POST)
    def logout() -> Any:
        secret = flask.request.cookies.get(COOKIE)
        if secret:
            with pool.connection() as conn:
                principal = accounts.principal_for_secret(conn, secret, kinds=("dashboard",))
                if principal is not None:
                    service.logout(conn, principal, source=client())
        response = flask.redirect(LOGIN_PATH, 303)
        response.delete_cookie(COOKIE, path="/")
        return response

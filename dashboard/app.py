"""The dashboard's shell: navigation bar, URL, page container and a small router.

Pages are routed by hand (one callback on the URL) rather than with Dash Pages: Dash Pages
registers pages and ``dash.callback`` callbacks in process-wide registries that the first app
consumes, so a second app built by :func:`create_dash` in the same process (tests, workers)
would come up without them. Here every app gets its own callbacks through ``app.callback``,
bound to the pool and settings it was given.

Every page but the login page needs a session (:mod:`dashboard.pages.login`); the navigation bar
shows who is logged in, and each page shows only the actions the person's role allows.

Every answer carries :func:`security_headers`: no framing (clickjacking), no MIME sniffing, no
referrer beyond this origin, and a Content-Security-Policy that allows only this origin's
scripts plus Dash's own inline ones by hash (``Dash.csp_hashes``), and the map tiles' host when
tiles are configured (``web.map_tiles``; the maps' own basemap is served from this origin).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
from dash import Input, Output, dcc, html
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from dashboard import ask_box, ids, nav_alerts
from dashboard.pages import (
    PageContext,
    ack,
    admin,
    admin_ask,
    admin_keys,
    admin_people,
    admin_rules,
    admin_system,
    alerts,
    fleet,
    insight,
    loggers,
    login,
    new_shipment,
    oncall,
    passport,
    products,
    qa,
    shipment,
    sites,
    zone_picker,
)
from db.types import Conn
from security.accounts import Principal
from security.ratelimit import LoginLimiter

ASSETS = Path(__file__).with_name("assets")
TITLE = "Cold chain · control tower"


def navbar(principal: Principal | None = None, refresh_ms: int = 5000) -> html.Header:
    """The top bar: brand, the links to the fleet, the alerts (with the count of unacknowledged
    ones: :mod:`dashboard.nav_alerts`) and QA review, and who is logged in (no links before
    logging in)."""
    return html.Header(
        id=ids.NAVBAR,
        className="navbar",
        children=[
            dcc.Link(
                [html.Span("❄", className="brand-mark"), html.Span("Cold chain")],
                href="/",
                className="brand",
            ),
            html.Nav(
                className="nav-links",
                children=[
                    dcc.Link("Fleet", href="/", id=ids.NAV_FLEET, className="nav-link"),
                    dcc.Link(
                        ["Alerts", nav_alerts.badge()],
                        href="/alerts",
                        id=ids.NAV_ALERTS,
                        className="nav-link",
                    ),
                    dcc.Link(
                        "Passport", href=passport.PATH, id=ids.NAV_PASSPORT, className="nav-link"
                    ),
                    dcc.Link("QA review", href=qa.PATH, id=qa.NAV_QA, className="nav-link"),
                    insight.nav_link(),
                    *_editor_links(principal),
                    *oncall.nav_links(principal),
                    *new_shipment.nav_links(principal),
                    *admin.nav_links(principal),
                    html.A("API", href="/api/docs", className="nav-link", target="_blank"),
                    *nav_alerts.controls(principal, refresh_ms),
                ],
                style=None if principal is not None else {"display": "none"},
            ),
            ask_box.box(shown=principal is not None),
            zone_picker.picker() if principal is not None else None,
            login.user_menu(principal),
        ],
    )


def _editor_links(principal: Principal | None) -> list[dcc.Link]:
    """The master-data editors, linked for the roles that may change their records (anyone
    may still open them: a read-only list)."""
    editors = [(products, "Products"), (loggers, "Loggers"), (sites, "Sites")]
    return [
        dcc.Link(label, href=m.PATH, id=m.NAV, className="nav-link")
        for m, label in editors
        if principal is not None and principal.can(m.PERMISSION)
    ]


def shell(principal: Principal | None = None, refresh_ms: int = 5000) -> html.Div:
    """The layout every page renders into."""
    return html.Div(
        className="app",
        children=[
            dcc.Location(id=ids.URL, refresh=False),
            navbar(principal, refresh_ms),
            ask_box.panel(),
            html.Main(id=ids.PAGE, className="container"),
        ],
    )


def not_found(pathname: str) -> html.Div:
    """The page for a path the dashboard does not know."""
    return html.Div(
        className="page not-found",
        children=[
            html.H1("Page not found"),
            html.P(f"Nothing lives at {pathname}."),
            dcc.Link("Back to the fleet", href="/"),
        ],
    )


def render(
    pathname: str | None, page: PageContext, principal: Principal | None = None
) -> tuple[Any, str, str]:
    """The page for a path, and the navigation links' classes (the active one marked). Without
    a session, every path shows the login page."""
    path = pathname or "/"
    active, plain = "nav-link active", "nav-link"
    if principal is None:
        return login.layout(), plain, plain
    if path.rstrip("/") == login.LOGIN_PATH:
        return dcc.Location(id="login-done", href="/"), plain, plain
    if path.rstrip("/") == qa.PATH or path.startswith(qa.PATH + "/"):
        return qa.layout(page, qa.reference_from_path(path), principal), plain, plain
    if path in ("/", ""):
        return fleet.layout(page), active, plain
    if path.rstrip("/") == "/alerts":
        return alerts.layout(page, principal), plain, active
    if path.rstrip("/") == passport.PATH:
        return passport.layout(page), plain, plain
    if path.rstrip("/") == insight.PATH:
        return insight.layout(page, principal), plain, plain
    if path.rstrip("/") == products.PATH:
        return products.layout(page, principal), plain, plain
    if path.rstrip("/") == loggers.PATH:
        return loggers.layout(page, principal), plain, plain
    if path.rstrip("/") == sites.PATH:
        return sites.layout(page, principal), plain, plain
    if path.rstrip("/") == oncall.PATH:
        return oncall.layout(principal), plain, plain
    if path.rstrip("/") == new_shipment.PATH:
        return new_shipment.layout(page, principal), plain, plain
    if path.rstrip("/") == admin.PATH or path.startswith(admin.PATH + "/"):
        return render_admin(path.rstrip("/"), principal, page), plain, plain
    reference = shipment.reference_from_path(path)
    if reference is not None:
        return shipment.page_layout(page, reference), active, plain
    return not_found(path), plain, plain


def render_admin(path: str, principal: Principal, page: PageContext) -> Any:
    """An administration screen, or the "not allowed" page for a role that may not open it."""
    refused = admin.guard(principal, path)
    if refused is not None:
        return refused
    if path == admin.PEOPLE_PATH:
        return admin_people.layout()
    if path == admin.KEYS_PATH:
        return admin_keys.layout()
    if path == admin.RULES_PATH:
        return admin_rules.layout(principal)
    if path == admin.SYSTEM_PATH:
        return admin_system.layout(page)
    if path == admin.QUESTIONS_PATH:
        return admin_ask.layout()
    if path == admin.PATH:
        return admin.layout(principal)
    return not_found(path)


def security_headers(script_hashes: Sequence[str], tiles: str | None = None) -> dict[str, str]:
    """The dashboard's security headers (pure): its inline scripts' hashes as CSP sources
    (``'sha256-…'``, quotes included, as ``Dash.csp_hashes`` gives them), and the map tiles' URL
    template when configured (their origin may be fetched and drawn; None: this origin only)."""
    tile_origin = ""
    if tiles:
        parts = urlsplit(tiles)
        tile_origin = f" {parts.scheme}://{parts.netloc}"
    scripts = " ".join(script_hashes)  # quoted already: "'sha256-…'"
    policy = {
        "default-src": "'self'",
        "script-src": f"'self' {scripts}".strip(),
        # Plotly and the map library set style elements and attributes at run time.
        "style-src": "'self' 'unsafe-inline'",
        "img-src": f"'self' data: blob:{tile_origin}",
        "connect-src": f"'self'{tile_origin}",
        "font-src": "'self' data:",
        # MapLibre draws in web workers made from blobs.
        "worker-src": "'self' blob:",
        "child-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return {
        "Content-Security-Policy": "; ".join(f"{k} {v}" for k, v in policy.items()),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def create_dash(
    settings: Settings, pool: ConnectionPool[Conn], *, limiter: LoginLimiter | None = None
) -> dash.Dash:
    """A Dash app showing the data behind ``pool`` (opened by the caller, e.g. the FastAPI
    lifespan), to be served as a WSGI app (``app.server``). ``limiter`` counts failed logins
    (share the API's, so both count against the same limit)."""
    page = PageContext(settings=settings, pool=pool)
    limiter = limiter or LoginLimiter(
        max_failures=settings.security.login_max_failures,
        window_s=settings.security.login_window_s,
    )
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS),
        title=TITLE,
        update_title="",  # no "Updating..." flicker in the tab on every live refresh
        use_async=False,
        serve_locally=True,
        suppress_callback_exceptions=False,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    # A function: built per page load, so the navigation bar shows who is logged in.
    app.layout = lambda: shell(login.current_principal(), page.refresh_ms)
    # Every component any page can show, so Dash can check the callbacks against them.
    app.validation_layout = html.Div(  # type: ignore[assignment]  # typed None in Dash
        [
            shell(),
            *nav_alerts.validation_layout(),
            fleet.layout(page),
            shipment.layout(page, "_"),
            alerts.layout(page),
            login.layout(),
            passport.layout(page),
            insight.layout(page),
            new_shipment.layout(page, None),
            *qa.validation_layouts(page),
            products.layout(page),
            loggers.layout(page),
            sites.layout(page),
            admin_people.layout(),
            admin_keys.layout(),
            admin_rules.layout(None),
            oncall.layout(None),
            admin_system.layout(page),
            admin_ask.layout(),
            zone_picker.picker(),
        ]
    )
    login.install(app.server, pool=pool, settings=settings, limiter=limiter)
    ack.install(app.server, pool=pool, limiter=limiter, principal=login.current_principal)
    fleet.register(app, page)
    shipment.register(app, page)
    alerts.register(app, page)
    passport.register(app, page)
    insight.register(app, page)
    new_shipment.register(app, page)
    login.register(app)
    qa.register(app, page, limiter=limiter)
    products.register(app, page)
    loggers.register(app, page)
    sites.register(app, page)
    nav_alerts.register(app, page)
    ask_box.register(app, page)
    admin_people.register(app, page)
    admin_keys.register(app, page)
    admin_rules.register(app, page)
    oncall.register(app, page)
    admin_system.register(app, page)
    admin_ask.register(app, page)
    zone_picker.register(app)

    @app.callback(
        Output(ids.PAGE, "children"),
        Output(ids.NAV_FLEET, "className"),
        Output(ids.NAV_ALERTS, "className"),
        Input(ids.URL, "pathname"),
    )
    def route(pathname: str | None) -> tuple[Any, str, str]:
        return render(pathname, page, login.current_principal())

    # After every callback exists: clientside callbacks add inline scripts of their own.
    headers = security_headers(app.csp_hashes(), settings.web.map_tiles)

    def secure(response: Any) -> Any:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    # Dash's Flask server is untyped: register the hook by a call, not a decorator.
    app.server.after_request(secure)
    return app

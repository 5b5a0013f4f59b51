"""The dashboard's shell: navigation bar, URL, page container and a small router.

Pages are routed by hand (one callback on the URL) rather than with Dash Pages: Dash Pages
registers pages and ``dash.callback`` callbacks in process-wide registries that the first app
consumes, so a second app built by :func:`create_dash` in the same process (tests, workers)
would come up without them. Here every app gets its own callbacks through ``app.callback``,
bound to the pool and settings it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from dashboard import ids
from dashboard.pages import PageContext, alerts, fleet, shipment
from db.queries.web import Conn

ASSETS = Path(__file__).with_name("assets")
TITLE = "Cold chain · control tower"


def navbar() -> html.Header:
    """The top bar: brand and the links to the fleet and the alerts."""
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
                    dcc.Link("Alerts", href="/alerts", id=ids.NAV_ALERTS, className="nav-link"),
                    html.A("API", href="/api/docs", className="nav-link", target="_blank"),
                ],
            ),
        ],
    )


def shell() -> html.Div:
    """The layout every page renders into."""
    return html.Div(
        className="app",
        children=[
            dcc.Location(id=ids.URL, refresh=False),
            navbar(),
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


def render(pathname: str | None, page: PageContext) -> tuple[Any, str, str]:
    """The page for a path, and the navigation links' classes (the active one marked)."""
    path = pathname or "/"
    active, plain = "nav-link active", "nav-link"
    if path in ("/", ""):
        return fleet.layout(page), active, plain
    if path.rstrip("/") == "/alerts":
        return alerts.layout(page), plain, active
    reference = shipment.reference_from_path(path)
    if reference is not None:
        return shipment.layout(page, reference), active, plain
    return not_found(path), plain, plain


def create_dash(settings: Settings, pool: ConnectionPool[Conn]) -> dash.Dash:
    """A Dash app showing the data behind ``pool`` (opened by the caller, e.g. the FastAPI
    lifespan), to be served as a WSGI app (``app.server``)."""
    page = PageContext(settings=settings, pool=pool)
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
    app.layout = shell()
    # Every component any page can show, so Dash can check the callbacks against them.
    app.validation_layout = html.Div(  # type: ignore[assignment]  # typed None in Dash
        [shell(), fleet.layout(page), shipment.layout(page, "_"), alerts.layout(page)]
    )
    fleet.register(app, page)
    shipment.register(app, page)
    alerts.register(app, page)

    @app.callback(
        Output(ids.PAGE, "children"),
        Output(ids.NAV_FLEET, "className"),
        Output(ids.NAV_ALERTS, "className"),
        Input(ids.URL, "pathname"),
    )
    def route(pathname: str | None) -> tuple[Any, str, str]:
        return render(pathname, page)

    return app

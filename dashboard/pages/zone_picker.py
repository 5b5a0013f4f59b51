"""The navigation bar's time zone setting: UTC (the default), the browser's own zone, or any
IANA zone from a pick list; remembered in a cookie for a year.

The choice goes into :data:`dashboard.pages.ZONE_COOKIE`, which the one time formatter
(:func:`dashboard.pages.fmt_ts`) reads on every callback, so no page has to pass a zone along.
"Browser's zone" is resolved in the browser (``Intl.DateTimeFormat``; the server cannot know
it) and stored as ``browser:<zone>``. The page reloads after a change, so every time on it is
redrawn in the new zone at once, not at each panel's next refresh.
"""

from __future__ import annotations

import flask
from dash import Dash, Input, Output, dcc, html

from coldchain.timezones import zone_names
from dashboard.pages import BROWSER_ZONE, ZONE_COOKIE, zone_choice

PICKER = "zone-picker"
SAVED = "zone-picker-saved"  # dcc.Store the clientside callback writes (a callback needs one)
#: A year, in seconds.
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def current_choice() -> str:
    """The choice the person's cookie holds (UTC outside a request or without a cookie)."""
    cookie = flask.request.cookies.get(ZONE_COOKIE) if flask.has_request_context() else None
    return zone_choice(cookie)[0]


def options() -> list[dict[str, str]]:
    """UTC, the browser's zone, then every IANA zone."""
    names = zone_names()
    return [
        {"label": "UTC", "value": names[0]},
        {"label": "My browser's zone", "value": BROWSER_ZONE},
        *({"label": z.replace("_", " "), "value": z} for z in names[1:]),
    ]


def picker() -> html.Div:
    """The setting as the navigation bar shows it."""
    return html.Div(
        className="zone-picker",
        title="The time zone times are shown in (each is labelled with its zone)",
        children=[
            html.Span("Times in", className="zone-picker-label"),
            dcc.Dropdown(
                id=PICKER,
                options=options(),
                value=current_choice(),
                clearable=False,
                searchable=True,
                optionHeight=30,
                className="zone-picker-dropdown",
            ),
            dcc.Store(id=SAVED),
        ],
    )


def register(app: Dash) -> None:
    """Store the choice in the cookie and reload, in the browser."""
    app.clientside_callback(  # type: ignore[no-untyped-call]  # untyped in Dash
        f"""
        function (choice) {{
            if (!choice) {{ return window.dash_clientside.no_update; }}
            let value = choice;
            if (choice === "{BROWSER_ZONE}") {{
                const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
                value = "{BROWSER_ZONE}:" + zone;
            }}
            document.cookie = "{ZONE_COOKIE}=" + encodeURIComponent(value)
                + "; path=/; max-age={COOKIE_MAX_AGE_S}; SameSite=Lax";
            window.location.reload();
            return value;
        }}
        """,
        Output(SAVED, "data"),
        Input(PICKER, "value"),
        prevent_initial_call=True,
    )

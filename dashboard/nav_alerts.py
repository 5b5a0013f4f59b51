"""The count of open, unacknowledged alerts in the navigation bar, on every page.

An alert nobody has acknowledged yet is the one thing every person on the dashboard should see
wherever they are: the count sits beside the Alerts link, refreshed by an interval of its own
(the pages' refresh period), and ``assets/alert-count.js`` copies it into the tab title
("(3) Fleet · Cold chain") so it shows in a background tab too. The bell beside it turns on, for
this browser only (localStorage), a short sound and a desktop notification when the count
grows; that is all client-side, in the same script (the app's CSP allows no inline script).

The interval is only in the page for a person with a session who may read alerts: the login
page makes no call the gate would refuse (:mod:`dashboard.pages.login`).
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboard import ids
from dashboard.pages import PageContext
from dashboard.pages.login import current_principal
from security.accounts import Principal
from services import alerts as alert_s

#: What the bell says about itself (the script switches ``aria-pressed``, the stylesheet
#: shows it as "on" or "off").
BELL_TITLE = "Sound and desktop notification when new alerts come in (this browser only)"


def may_see_alerts(principal: Principal | None) -> bool:
    """Whether the person may read alerts (every role may, today; a session is needed)."""
    return principal is not None and principal.can("read")


def count_text(count: int) -> str:
    """The badge's text: the count, or nothing when there is none (the badge hides)."""
    return str(count) if count > 0 else ""


def badge() -> html.Span:
    """The count beside the Alerts link (``#nav-alert-count``), empty until the first refresh."""
    return html.Span(
        "", id=ids.NAV_ALERT_COUNT, className="nav-count", title="open alerts not acknowledged"
    )


def controls(principal: Principal | None, refresh_ms: int) -> list[html.Button | dcc.Interval]:
    """The bell and the interval that refreshes the count (none without the right to read)."""
    if not may_see_alerts(principal):
        return []
    aria: Any = {"aria-pressed": "false", "aria-label": BELL_TITLE}  # not in Dash's typed props
    return [
        html.Button(
            "Alert sound",
            id=ids.NAV_ALERT_BELL,
            className="nav-bell",
            title=BELL_TITLE,
            type="button",
            **aria,
        ),
        dcc.Interval(id=ids.NAV_ALERT_INTERVAL, interval=refresh_ms),
    ]


def validation_layout() -> list[html.Button | dcc.Interval]:
    """The components a logged-in page has, for Dash's callback check."""
    return [
        html.Button(id=ids.NAV_ALERT_BELL),
        dcc.Interval(id=ids.NAV_ALERT_INTERVAL),
    ]


def register(app: Dash, page: PageContext) -> None:
    """The count's refresh: open alerts nobody has acknowledged yet (state ``open``)."""

    @app.callback(
        Output(ids.NAV_ALERT_COUNT, "children"),
        Output(ids.NAV_ALERT_COUNT, "className"),
        Input(ids.NAV_ALERT_INTERVAL, "n_intervals"),
    )
    def refresh_count(_n: int | None) -> tuple[str, str]:
        if not may_see_alerts(current_principal()):
            return "", "nav-count"
        with page.connection() as conn:
            unacknowledged = alert_s.list_alerts(conn, states=["open"], limit=1).total
        # "ready": counted (the script puts it in the title, and an empty badge means none)
        return count_text(unacknowledged), "nav-count ready"

"""The dashboard's pages, one module each with ``layout(...)`` and ``register(app, ctx)``.

What every page gets (:class:`PageContext`) and the small formatting helpers they share live
here. Formatting helpers are pure: the caller passes ``now``; the one exception is the zone
times are shown in, which :func:`fmt_ts` and :func:`fmt_clock` read from the person's cookie
(:data:`ZONE_COOKIE`, set by the zone picker in the navigation bar) so that no page's callbacks
have to pass it along. Times are always labelled with their zone (``2026-12-05 14:05 CET``); the
pure work is :func:`fmt_ts_in` and :mod:`coldchain.timezones`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, unquote

import flask
from dash import html
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from coldchain.timezones import DEFAULT_ZONE, check_zone, city_of, in_zone, zone_label
from db.types import Conn

#: The cookie holding the person's choice of zone: an IANA name, or ``browser:<IANA name>``
#: when they chose "my browser's zone" (the browser writes the zone it is in).
ZONE_COOKIE = "coldchain_tz"
#: The choice meaning "the zone my browser is in".
BROWSER_ZONE = "browser"


@dataclass(frozen=True, slots=True)
class PageContext:
    """The settings and the connection pool the page callbacks work with."""

    settings: Settings
    pool: ConnectionPool[Conn]

    @property
    def refresh_ms(self) -> int:
        """How often the pages refresh their data."""
        return self.settings.web.refresh_ms

    @property
    def offline_factor(self) -> float:
        """Logging intervals of silence after which a logger is offline: the rules engine's
        "no data" factor (``alerts.offline_factor``; :mod:`coldchain.thermal.limits`)."""
        return self.settings.alerts.offline_factor

    @property
    def gap_factor(self) -> float:
        """Logging intervals between two readings beyond which the data has a gap (unknown
        time; drawn as a break in the charts): ``alerts.gap_factor``, not "offline"."""
        return self.settings.alerts.gap_factor

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """A pooled connection for one callback."""
        with self.pool.connection() as conn:
            yield conn


def shipment_href(reference: str) -> str:
    """The dashboard path of a shipment's page."""
    return "/shipments/" + quote(reference, safe="")


def fmt_temp(value: float | None) -> str:
    """``5.2 °C``, or an em dash when there is no value."""
    return "—" if value is None else f"{value:.1f} °C"


def fmt_range(low: float | None, high: float | None, unit: str = "°C") -> str:
    """``2–8 °C``, ``≤ 25 °C``, ``≥ 2 °C`` or an em dash."""
    if low is not None and high is not None:
        return f"{low:g}–{high:g} {unit}"
    if high is not None:
        return f"≤ {high:g} {unit}"
    if low is not None:
        return f"≥ {low:g} {unit}"
    return "—"


def zone_choice(cookie: str | None) -> tuple[str, str]:
    """The person's choice (a zone, or :data:`BROWSER_ZONE`) and the zone it means, from the
    cookie's value; UTC for no cookie or a value that is not a known zone (a stale or forged
    cookie must not break a page)."""
    value = unquote(cookie or "").strip()
    choice = value
    if value.startswith(BROWSER_ZONE + ":"):
        choice, value = BROWSER_ZONE, value.removeprefix(BROWSER_ZONE + ":")
    try:
        return choice, check_zone(value)
    except ValueError:
        return DEFAULT_ZONE, DEFAULT_ZONE


def request_zone() -> str:
    """The zone the person asking chose (:data:`ZONE_COOKIE`); UTC outside a request."""
    if not flask.has_request_context():
        return DEFAULT_ZONE
    return zone_choice(flask.request.cookies.get(ZONE_COOKIE))[1]


def fmt_ts_in(value: datetime | date | None, zone: str) -> str:
    """``2026-12-05 14:05 CET``: the instant in ``zone``, always labelled (pure). A date is
    shown as it is (a date has no zone); a naive datetime is taken as UTC."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        local = in_zone(value, zone)
        return f"{local:%Y-%m-%d %H:%M} {zone_label(local)}"
    return value.isoformat()


def fmt_ts(value: datetime | date | None) -> str:
    """``2026-12-05 14:05 CET`` in the zone the person chose (UTC by default), labelled."""
    return fmt_ts_in(value, request_zone())


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt_ts_short_in(value: datetime | None, zone: str, now: datetime) -> str:
    """``14:05 CET`` on the day of ``now`` in ``zone``, ``6 Dec 14:05 CET`` another day of its
    year, else as :func:`fmt_ts_in` (pure): for table cells, with the full form in their title."""
    if value is None:
        return "—"
    local, today = in_zone(value, zone), in_zone(now, zone)
    if local.date() == today.date():
        return f"{local:%H:%M} {zone_label(local)}"
    if local.year == today.year:
        return f"{local.day} {_MONTHS[local.month - 1]} {local:%H:%M} {zone_label(local)}"
    return fmt_ts_in(value, zone)


def fmt_ts_short(value: datetime | None, now: datetime) -> str:
    """:func:`fmt_ts_short_in` in the zone the person chose."""
    return fmt_ts_short_in(value, request_zone(), now)


def fmt_clock(value: datetime) -> str:
    """``14:05:09 CET``: a time of day to the second in the person's zone, labelled (the
    pages' "Updated …" line)."""
    local = in_zone(value, request_zone())
    return f"{local:%H:%M:%S} {zone_label(local)}"


def fmt_site_ts_in(
    value: datetime | None, site_zone: str | None, zone: str, site: str | None = None
) -> str:
    """``2026-12-05 14:05 UTC (15:05 Basel, CET)``: the instant in ``zone`` and, where it
    happened, in the site's zone (pure). The site's part carries its date when the date
    differs, and is left out when the site is in ``zone`` already or has no zone."""
    shown = fmt_ts_in(value, zone)
    if value is None or not site_zone or site_zone == zone:
        return shown
    try:
        local = in_zone(value, site_zone)
    except ValueError:  # a zone the database accepted but this host does not know
        return shown
    day = "" if local.date() == in_zone(value, zone).date() else f"{local:%Y-%m-%d} "
    where = site or city_of(site_zone)
    return f"{shown} ({day}{local:%H:%M} {where}, {zone_label(local)})"


def fmt_site_ts(value: datetime | None, site_zone: str | None, site: str | None = None) -> str:
    """An instant that happened at a site (an arrival, an excursion at a warehouse): in the
    person's zone and in the site's local time, both labelled."""
    return fmt_site_ts_in(value, site_zone, request_zone(), site)


def fmt_age(then: datetime | None, now: datetime) -> str:
    """How long ago: ``just now``, ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} d ago"


def fmt_duration(seconds: float | None) -> str:
    """``45 min``, ``3 h 20 min``, ``2 d 4 h``."""
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def badge(text: str, kind: str) -> html.Span:
    """A small coloured label; ``kind`` is a condition, a severity or a state."""
    return html.Span(text, className=f"badge badge-{kind}")


def table(
    headers: list[str], rows: list[html.Tr], *, empty: str, id: str | None = None
) -> html.Div:
    """A plain, styled table, or a muted line saying there is nothing to show."""
    content: Any = html.P(empty, className="muted")
    if rows:
        content = html.Table(
            [html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(rows)],
            className="data-table",
        )
    if id is None:
        return html.Div(content, className="table-wrap")
    return html.Div(content, className="table-wrap", id=id)


def data_attrs(**attrs: str) -> Any:
    """``data-*`` attributes for an html component: ``**data_attrs(reference="SHP-1")`` gives
    ``data-reference="SHP-1"`` (underscores become dashes)."""
    return {"data-" + k.replace("_", "-"): v for k, v in attrs.items()}

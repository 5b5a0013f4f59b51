"""The dashboard's pages, one module each with ``layout(...)`` and ``register(app, ctx)``.

What every page gets (:class:`PageContext`) and the small formatting helpers they share live
here. Formatting helpers are pure: the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from dash import html
from psycopg_pool import ConnectionPool

from coldchain.settings import Settings
from db.types import Conn


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


def fmt_ts(value: datetime | date | None) -> str:
    """``2026-11-26 03:04 UTC`` (the API and the database work in UTC)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


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

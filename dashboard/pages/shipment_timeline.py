"""The shipment page's event timeline: what happened, oldest first, as a table (when, what, who,
details), from :func:`services.timeline.shipment_timeline` (the sources and the order are
:mod:`coldchain.timeline`'s). Each row carries ``data-kind`` (``excursion_start``,
``alarm_raised``, ``acknowledged``…) and ``data-source``, so tests and people can find it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import html

from coldchain.timeline import TimelineEntry
from dashboard.pages import badge, data_attrs, fmt_ts, table

#: The label of each source, shown beside the event.
SOURCES = {
    "lifecycle": "shipment",
    "excursion": "readings",
    "alert": "alert",
    "disposition": "QA signature",
}


def timeline_table(entries: Sequence[TimelineEntry]) -> html.Div:
    """The timeline, oldest first: when, what happened (coloured), who, details."""
    body = [
        html.Tr(
            className=f"timeline-row timeline-{e.tone}",
            **data_attrs(kind=e.kind, source=e.source),
            children=[
                html.Td(fmt_ts(e.at), className="nowrap"),
                html.Td([badge(SOURCES.get(e.source, e.source), e.tone), " ", e.title]),
                html.Td(e.actor or "—"),
                html.Td(e.detail or "—", className="wrap"),
            ],
        )
        for e in entries
    ]
    return table(["When", "What happened", "Who", "Details"], body, empty="Nothing happened yet.")

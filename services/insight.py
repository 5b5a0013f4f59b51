"""Lane risk and carrier scorecards, read-only (issue 17, README "Insight").

What the API (``/api/v1/insight/…``), the Insight page, ``coldchain insight`` and the weekly
lane report all call: the rows come from ``db/queries/insight.py`` (aggregated in the database),
the figures from :mod:`coldchain.insight`. Every role may read them (they say nothing a viewer
may not see: counts and durations per lane and carrier, no shipment's content).

``since``/``until`` bound the shipments' arrival (``[since, until)``); ``minimum`` is the volume
a score needs (default: the settings' default, ``insight.min_shipments`` /
``insight.min_carrier_legs``; the surfaces pass the settings in force).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from coldchain.errors import InvalidRecordError, NotFoundError
from coldchain.insight import carriers as cards
from coldchain.insight import lanes as risk
from coldchain.lifecycle import FINISHED
from coldchain.settings import InsightSettings
from db.queries import insight as q
from db.types import Conn, Row

_DEFAULTS: Final = InsightSettings()
_FINISHED: Final[list[str]] = sorted(FINISHED)
#: The named queries behind each figure, as answers cite them (coldchain.ask.answer).
SOURCES: Final[dict[str, str]] = {
    "lane_risk": "db.queries.insight.lane_shipments+lane_bands",
    "carrier_scores": "db.queries.insight.carrier_legs",
}


def _check_window(since: datetime | None, until: datetime | None) -> None:
    for name, at in (("since", since), ("until", until)):
        if at is not None and at.tzinfo is None:
            raise InvalidRecordError(name, "give a time with its UTC offset")
    if since is not None and until is not None and since >= until:
        raise InvalidRecordError("until", f"must be after since ({since.isoformat()})")


def lanes(conn: Conn) -> list[Row]:
    """Every lane (code, mode, origin and destination names), by code."""
    return q.lanes(conn=conn)


def _lane_row(conn: Conn, lane: str) -> Row:
    for row in q.lanes(conn=conn):
        if row["code"] == lane:
            return row
    raise NotFoundError(f"no lane {lane!r}")


def _figures(row: Row) -> risk.ShipmentFigures:
    return risk.ShipmentFigures(
        shipment_id=int(row["shipment_id"]),
        reference=row["reference"],
        lane=row["lane"],
        arrived_at=row["arrived_at"],
        planned_arrival=row["planned_arrival"],
        excursions=int(row["excursions"]),
        time_out_s=float(row["time_out_s"]),
        alerts=int(row["alerts"]),
    )


def _band(row: Row) -> risk.Band:
    return risk.Band(float(row["low_c"]), float(row["high_c"]), int(row["readings"]))


def _rows(
    conn: Conn,
    lane: str | None,
    since: datetime | None,
    until: datetime | None,
    *,
    by_month: bool = False,
) -> tuple[list[Row], list[Row]]:
    """The finished shipments' rows and the bands' rows (per lane, or per lane and month)."""
    shipments = q.lane_shipments(conn=conn, finished=_FINISHED, lane=lane, since=since, until=until)
    bands = q.lane_bands(
        conn=conn, finished=_FINISHED, lane=lane, since=since, until=until, by_month=by_month
    )
    return shipments, bands


def lane_risk(
    conn: Conn,
    *,
    lane: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    minimum: int | None = None,
) -> list[risk.LaneRisk]:
    """The risk of every lane (or of ``lane``, by code), riskiest first, then the lanes without
    a score by volume; a lane with no finished shipment is listed too (it needs ``minimum``)."""
    _check_window(since, until)
    need = _DEFAULTS.min_shipments if minimum is None else minimum
    known = [_lane_row(conn, lane)] if lane is not None else q.lanes(conn=conn)
    rows, band_rows = _rows(conn, lane, since, until)
    per_lane: dict[str, list[risk.ShipmentFigures]] = {}
    for row in rows:
        per_lane.setdefault(row["lane"], []).append(_figures(row))
    bands = {r["lane"]: _band(r) for r in band_rows}
    result = [
        risk.lane_risk(
            r["code"], r["mode"], per_lane.get(r["code"], []), bands.get(r["code"]), minimum=need
        )
        for r in known
        # a retired lane is listed while it has history, or when asked for by name
        if r["retired_at"] is None or r["code"] in per_lane or lane is not None
    ]
    return sorted(result, key=lambda x: (x.score is None, -(x.score or 0.0), -x.shipments, x.lane))


def lane_months(
    conn: Conn,
    *,
    lane: str,
    since: datetime | None = None,
    until: datetime | None = None,
    minimum: int | None = None,
) -> list[risk.LaneRisk]:
    """The figures of ``lane`` per calendar month of arrival, oldest first (seasonality)."""
    _check_window(since, until)
    need = _DEFAULTS.min_shipments if minimum is None else minimum
    row = _lane_row(conn, lane)
    rows, band_rows = _rows(conn, lane, since, until, by_month=True)
    shipments = [_figures(r) for r in rows]
    bands = {r["month"]: _band(r) for r in band_rows}
    return risk.by_month(lane, row["mode"], shipments, bands, minimum=need)


def carrier_scores(
    conn: Conn,
    *,
    lane: str | None = None,
    carrier: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    minimum: int | None = None,
) -> list[cards.CarrierScore]:
    """Carriers compared on each lane (or on ``lane``; or ``carrier`` on every lane), leg by
    leg: see :mod:`coldchain.insight.carriers`."""
    _check_window(since, until)
    if lane is not None:
        _lane_row(conn, lane)
    need = _DEFAULTS.min_carrier_legs if minimum is None else minimum
    rows = q.carrier_legs(
        conn=conn, finished=_FINISHED, lane=lane, carrier=carrier, since=since, until=until
    )
    legs = [
        cards.LegFigures(
            lane=r["lane"],
            shipment_id=int(r["shipment_id"]),
            seq=int(r["seq"]),
            carrier=r["carrier"],
            planned_arrival=r["planned_arrival"],
            arrived_at=r["arrived_at"],
            excursions=int(r["excursions"]),
            time_out_s=float(r["time_out_s"]),
        )
        for r in rows
    ]
    return cards.scorecards(legs, minimum=need)

"""Forecasts for shipments in transit, as the API, the dashboard and the CLI read them (issue 17).

Reads only. Two queries whatever the number of shipments (:mod:`db.queries.forecast`): the state
of the shipments in transit asked for, and the finished shipments of their lanes; the model is
:func:`coldchain.forecast.model.forecast_shipment` (pure). The trend it combines is the rules
engine's open ``predicted_breach`` alert, so no page fits curves of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coldchain.forecast.model import LaneHistory, ShipmentForecast, forecast_shipment
from coldchain.forecast.rows import in_transit_from_row, lane_histories_from_rows
from coldchain.lifecycle import FINISHED
from db.queries import forecast as forecast_q
from db.queries import shipments as shipment_q
from db.types import Conn

__all__ = ["fleet_forecasts", "forecast", "lane_histories"]


def lane_histories(conn: Conn, *, lane_ids: Sequence[int]) -> dict[int, LaneHistory]:
    """Each lane's finished shipments with their excursions (lanes without any: left out)."""
    rows = forecast_q.lane_history(conn=conn, lane_ids=set(lane_ids), finished=FINISHED)
    return lane_histories_from_rows(rows)


def fleet_forecasts(
    conn: Conn,
    *,
    now: datetime,
    trend_weight: float,
    shipment_ids: Sequence[int] | None = None,
) -> dict[int, ShipmentForecast]:
    """The forecast of each shipment in transit among ``shipment_ids`` (all when None), by id;
    shipments not in transit are left out."""
    rows = forecast_q.in_transit(conn=conn, shipment_ids=shipment_ids)
    lanes = {int(r["lane_id"]) for r in rows if r["lane_id"] is not None}
    histories = lane_histories(conn, lane_ids=sorted(lanes))
    out: dict[int, ShipmentForecast] = {}
    for r in rows:
        history = None
        if r["lane_id"] is not None:
            history = histories.get(int(r["lane_id"]), LaneHistory(r["lane_code"], ()))
        out[int(r["shipment_id"])] = forecast_shipment(
            in_transit_from_row(r), history, now=now, trend_weight=trend_weight
        )
    return out


def forecast(
    conn: Conn, *, key: str, now: datetime, trend_weight: float
) -> tuple[int, ShipmentForecast | None]:
    """The shipment ``key`` names (its id, else its reference; NotFoundError) and its forecast;
    None when it is not in transit (a forecast is for the road ahead)."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    found = fleet_forecasts(conn, now=now, trend_weight=trend_weight, shipment_ids=[shipment_id])
    return shipment_id, found.get(shipment_id)

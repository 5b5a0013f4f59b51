"""The forecast's inputs from the rows of :mod:`db.queries.forecast`: one reading of them for
every reader (the pages through :mod:`services.forecast`, the rules engine's ``excursion_risk``
rule through :mod:`alerts.risk`), so both compute the same figure from the same rows.

Pure: plain mappings in (a row is a ``dict`` of column → value), model values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from coldchain.forecast.model import InTransit, LaneHistory, PastShipment

__all__ = ["in_transit_from_row", "lane_histories_from_rows"]


def _pair(row: Mapping[str, Any], lat: str, lon: str) -> tuple[float, float] | None:
    return None if row[lat] is None or row[lon] is None else (float(row[lat]), float(row[lon]))


def in_transit_from_row(row: Mapping[str, Any]) -> InTransit:
    """A shipment in transit from its ``IN_TRANSIT`` row."""
    return InTransit(
        started_at=row["started_at"],
        planned_arrival=row["planned_arrival"],
        position=_pair(row, "lat", "lon"),
        origin=_pair(row, "origin_lat", "origin_lon"),
        destination=_pair(row, "destination_lat", "destination_lon"),
        had_excursion=row["n_excursions"] > 0,
        excursion_open=bool(row["excursion_open"]),
        out_of_range_s=float(row["out_of_range_s"]),
        budget_s=None if row["budget_s"] is None else float(row["budget_s"]),
        trend_breach_at=row["trend_breach_at"],
    )


def lane_histories_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[int, LaneHistory]:
    """Each lane's history from its ``LANE_HISTORY`` rows, by lane id (lanes without a row
    are left out: the caller knows their code)."""
    codes: dict[int, str] = {}
    past: dict[int, list[PastShipment]] = {}
    for r in rows:
        lane = int(r["lane_id"])
        codes[lane] = r["lane_code"]
        spans = tuple(zip(r["excursion_starts"], r["excursion_ends"], strict=True))
        past.setdefault(lane, []).append(PastShipment(r["started_at"], r["arrived_at"], spans))
    return {lane: LaneHistory(codes[lane], tuple(p)) for lane, p in past.items()}

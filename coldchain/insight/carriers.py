"""Carrier scorecards: carriers compared on the same lanes, leg by leg (pure).

The unit is the **leg** (``shipment_legs``, 0001): a shipment whose legs name two carriers counts
once for each, with what happened on its own legs. A shipment booked without legs is one leg of
the shipment's carrier. Per (lane, carrier), from the legs of finished shipments:

* **on-time arrival**: the share of legs that arrived by their planned arrival, over the legs
  whose arrival is recorded. Only a shipment's arrival is recorded (``shipments.arrived_at``),
  so that is the last leg's; an earlier leg's arrival is not known and is not counted;
* **excursions per 100 shipments**: the excursions that started during the carrier's legs,
  × 100 / the shipments it carried;
* **time out of range per shipment**: their durations summed / the shipments it carried.

An excursion belongs to the leg during which it *started*. A leg runs from the planned arrival
of the leg before it (the first: from the start) to its own planned arrival (the last: to the
arrival, however late): the plan is the only timing known for a leg between the two ends, and
every instant belongs to exactly one leg, so no excursion counts twice or is lost
(``db/queries/insight.py`` attributes them).

A carrier is scored on a lane only with ``minimum`` legs there (setting
``insight.min_carrier_legs``, 5 by default); below that its figures are shown with a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class LegFigures:
    """One leg of a finished shipment: its carrier, plan, arrival if known, and excursions."""

    lane: str
    shipment_id: int
    seq: int
    carrier: str
    planned_arrival: datetime | None
    arrived_at: datetime | None  # recorded for the last leg only
    excursions: int
    time_out_s: float


@dataclass(frozen=True, slots=True)
class CarrierScore:
    """One carrier on one lane."""

    lane: str
    carrier: str
    legs: int
    shipments: int
    timed_legs: int
    on_time_share: float | None
    excursions: int
    excursions_per_100: float
    time_out_per_shipment_s: float
    minimum: int
    enough: bool
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON values (the API's and the CSV's)."""
        return {
            "lane": self.lane,
            "carrier": self.carrier,
            "legs": self.legs,
            "shipments": self.shipments,
            "timed_legs": self.timed_legs,
            "on_time_share": self.on_time_share,
            "excursions": self.excursions,
            "excursions_per_100": self.excursions_per_100,
            "time_out_per_shipment_s": self.time_out_per_shipment_s,
            "minimum": self.minimum,
            "enough": self.enough,
            "note": self.note,
        }


def score(lane: str, carrier: str, legs: list[LegFigures], *, minimum: int) -> CarrierScore:
    """The scorecard of ``carrier`` on ``lane`` from its ``legs`` there."""
    shipments = len({leg.shipment_id for leg in legs})
    timed = [
        leg.arrived_at <= leg.planned_arrival
        for leg in legs
        if leg.arrived_at is not None and leg.planned_arrival is not None
    ]
    excursions = sum(leg.excursions for leg in legs)
    time_out = sum(leg.time_out_s for leg in legs)
    enough = len(legs) >= minimum
    return CarrierScore(
        lane=lane,
        carrier=carrier,
        legs=len(legs),
        shipments=shipments,
        timed_legs=len(timed),
        on_time_share=sum(timed) / len(timed) if timed else None,
        excursions=excursions,
        excursions_per_100=100.0 * excursions / shipments if shipments else 0.0,
        time_out_per_shipment_s=time_out / shipments if shipments else 0.0,
        minimum=minimum,
        enough=enough,
        note=None
        if enough
        else f"{carrier} has {len(legs)} leg{'' if len(legs) == 1 else 's'} on lane {lane}; "
        f"a score needs {minimum}",
    )


def scorecards(legs: Iterable[LegFigures], *, minimum: int) -> list[CarrierScore]:
    """Every (lane, carrier) of ``legs``, by lane then carrier: those with enough legs first
    within a lane, the most punctual first."""
    groups: dict[tuple[str, str], list[LegFigures]] = {}
    for leg in legs:
        groups.setdefault((leg.lane, leg.carrier), []).append(leg)
    cards = [
        score(lane, carrier, rows, minimum=minimum) for (lane, carrier), rows in groups.items()
    ]
    return sorted(
        cards,
        key=lambda c: (c.lane, not c.enough, -(c.on_time_share or 0.0), c.carrier),
    )

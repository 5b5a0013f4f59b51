"""A booking's planned legs as values (pure: no I/O): what makes a plan valid, and the rows of
``shipment_legs`` (0001) it is stored as. :mod:`services.bookings` stores them.

A plan is the booking's route, in order, each leg with a mode, origin, destination, carrier and
planned departure and arrival; ``seq`` is assigned 1, 2, … in the order given. The times run
forward: a leg arrives after it departs, departs no earlier than the leg before it arrived, and
the legs stay within the shipment's own planned departure and arrival when those are given. A
leg's mode is a transport mode of the lanes (road, air, sea, rail) or ``warehouse`` (a stay in
between); on a single-mode lane every transport leg has the lane's mode, on a multimodal lane
any. Every refusal is an :class:`~coldchain.errors.InvalidRecordError` naming ``legs[i].field``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

from coldchain.errors import InvalidRecordError

#: A leg's mode: a lane's transport modes (:data:`services.locations.Mode` less ``multimodal``,
#: which a whole lane may be and one leg is not) or a stay in a warehouse; 0001's CHECK.
LegMode = Literal["road", "air", "sea", "rail", "warehouse"]
LEG_MODES: Final[tuple[LegMode, ...]] = get_args(LegMode)
#: How many legs a booking may plan.
MAX_LEGS: Final = 50


@dataclass(frozen=True, slots=True)
class Leg:
    """A planned leg of the route (``seq`` is its place in the booking's list)."""

    mode: str
    origin: str
    destination: str
    carrier: str | None = None
    planned_departure: datetime | None = None
    planned_arrival: datetime | None = None


def leg_values(leg: Leg, seq: int) -> dict[str, Any]:
    """A leg as the columns of ``shipment_legs``."""
    return {"seq": seq, **{f: getattr(leg, f) for f in Leg.__dataclass_fields__}}


def legs_rows(legs: tuple[Leg, ...]) -> list[dict[str, Any]]:
    """The plan as ``shipment_legs`` rows, ``seq`` 1, 2, … in order."""
    return [leg_values(leg, seq) for seq, leg in enumerate(legs, start=1)]


def legs_doc(legs: tuple[Leg, ...]) -> list[dict[str, Any]]:
    """The plan as JSON values (times in ISO 8601): for a request's hash and the timeline."""
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        for row in legs_rows(legs)
    ]


def leg_of(row: Mapping[str, Any]) -> Leg:
    """A stored leg (a ``shipment_legs`` row) as a value."""
    return Leg(**{f: row[f] for f in Leg.__dataclass_fields__})


def _text(value: str | None, where: str, *, required: bool) -> str | None:
    text = None if value is None else value.strip() or None
    if text is None and required:
        raise InvalidRecordError(where, "required")
    if text is not None and len(text) > 200:
        raise InvalidRecordError(where, "must be at most 200 characters")
    return text


def validate_legs(
    legs: tuple[Leg, ...], *, departure: datetime | None, arrival: datetime | None
) -> tuple[Leg, ...]:
    """The planned legs checked and trimmed (modes, places, times running forward within the
    shipment's planned departure and arrival); InvalidRecordError naming ``legs[i].field``."""
    if len(legs) > MAX_LEGS:
        raise InvalidRecordError("legs", f"at most {MAX_LEGS} legs")
    out: list[Leg] = []
    # The latest instant the route has reached so far, and what set it (named in the error).
    reached, reached_by = departure, "the shipment's planned_departure"
    for i, leg in enumerate(legs):
        where = f"legs[{i}]"
        if leg.mode not in LEG_MODES:
            raise InvalidRecordError(f"{where}.mode", f"one of {', '.join(LEG_MODES)}")
        for name in ("planned_departure", "planned_arrival"):
            value = getattr(leg, name)
            if value is not None and value.tzinfo is None:
                raise InvalidRecordError(
                    f"{where}.{name}", "needs a time zone (ISO 8601 with offset or Z)"
                )
        for name, value in (("planned_departure", leg.planned_departure),
                            ("planned_arrival", leg.planned_arrival)):  # fmt: skip
            if value is None:
                continue
            # A leg may depart the instant the previous one arrived; it arrives after it departs.
            departs = name == "planned_departure"
            if reached is not None and (value < reached if departs else value <= reached):
                rule = "must not be before" if departs else "must be after"
                raise InvalidRecordError(
                    f"{where}.{name}", f"{rule} {reached_by} ({reached.isoformat()})"
                )
            reached, reached_by = value, f"{where}.{name}"
        if arrival is not None and reached is not None and reached > arrival:
            raise InvalidRecordError(
                f"{reached_by}", f"must not be after the shipment's planned_arrival "
                f"({arrival.isoformat()})",
            )  # fmt: skip
        out.append(
            Leg(
                mode=leg.mode,
                origin=_text(leg.origin, f"{where}.origin", required=True) or "",
                destination=_text(leg.destination, f"{where}.destination", required=True) or "",
                carrier=_text(leg.carrier, f"{where}.carrier", required=False),
                planned_departure=leg.planned_departure,
                planned_arrival=leg.planned_arrival,
            )
        )
    return tuple(out)


def check_lane_mode(legs: tuple[Leg, ...], lane: Mapping[str, Any]) -> None:
    """On a single-mode lane, every transport leg has the lane's mode (module docstring)."""
    if lane["mode"] == "multimodal":
        return
    for i, leg in enumerate(legs):
        if leg.mode not in ("warehouse", lane["mode"]):
            raise InvalidRecordError(
                f"legs[{i}].mode",
                f"{leg.mode!r} on lane {lane['code']}, which is {lane['mode']}: use "
                f"{lane['mode']} or warehouse, or a multimodal lane",
            )

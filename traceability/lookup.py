"""The edge between the database and the pure core: identifier → unit → passport, verification,
recall and impact, counterfeit signals. The API, the CLI and the dashboard all call these.

Every function takes the connection and ``today``/``now`` from its caller (no clock reads), so
answers are reproducible; an unknown unit or excursion raises NotFoundError and an unreadable
identifier IdentifierError (a ValueError), which the callers turn into a 404 or a 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from alerts.in_force import RuleContext, RuleSources, load_rules
from alerts.layers import limits_of, settings_rules
from alerts.rules import RulesFile
from coldchain.errors import NotFoundError
from coldchain.gs1 import IdentifierError
from coldchain.settings import AlertsSettings
from db.queries import products as product_q
from db.queries.trace import containment as containment_q
from db.queries.trace import recalls as recall_q
from db.types import Conn, Row
from traceability.identifiers import UnitKey, parse_unit
from traceability.passport import (
    Containment,
    Passport,
    Profile,
    RecordedExcursion,
    Ride,
    UnitInfo,
    build_passport,
    qa_cleared,
    qa_state,
)
from traceability.tracks import Inherited, Piece, merge_windows
from traceability.verify import Sighting, TravelFlag, Verification, impossible_travel, verdict

_defaults = AlertsSettings()
#: The layers besides the database when the caller gives none: default settings, no rules file.
_DEFAULT_RULES = RuleContext(
    settings_rules(
        offline_factor=_defaults.offline_factor,
        battery_threshold=_defaults.battery_threshold,
        clear_delay_s=_defaults.clear_delay_s,
    ),
    RulesFile(),
)

__all__ = [
    "Signals",
    "exposures",
    "find_unit",
    "load_passport",
    "lot_impact",
    "pieces_from_rows",
    "recall",
    "signals",
    "verify",
]


def find_unit(conn: Conn, text: str, *, today: date) -> tuple[UnitKey, str | None]:
    """Parse ``text`` and find the stored EPC by prefix-free key (None when unknown).

    IdentifierError when ``text`` is not an SGTIN or SSCC in any form we read.
    """
    key = parse_unit(text, today=today)
    if key.kind == "sgtin":
        assert key.gtin is not None and key.serial is not None
        found = containment_q.units_by_key(conn=conn, sgtins=[(key.gtin, key.serial)], ssccs=[])
    else:
        assert key.sscc is not None
        found = containment_q.units_by_key(conn=conn, sgtins=[], ssccs=[key.sscc])
    return key, found.get(key.key)


def _profile(
    row: Row | None, gtin: str | None, *, name_column: str = "product_name"
) -> Profile | None:
    """A unit row's product columns (``product_name`` …) or a product row's (``name``)."""
    if row is None or gtin is None or row.get(name_column) is None:
        return None
    return Profile(
        gtin=gtin,
        name=row[name_column],
        temp_min_c=row["temp_min_c"],
        temp_max_c=row["temp_max_c"],
        freeze_limit_c=row["freeze_limit_c"],
        alarm_delay_s=int(row["alarm_delay_s"] or 0),
        stability_budget_s=row["stability_budget_s"],
        mkt_delta_h_j_mol=float(row["mkt_delta_h_j_mol"]),
        mkt_limit_c=row["mkt_limit_c"],
    )


def _legs_overlapping(
    legs: list[Row], shipment_id: int, start: datetime | None, end: datetime | None
) -> tuple[dict[str, Any], ...]:
    """The shipment's legs whose planned window overlaps [start, end) (all when unplanned)."""
    out = []
    for leg in legs:
        if leg["shipment_id"] != shipment_id:
            continue
        dep, arr = leg["planned_departure"], leg["planned_arrival"]
        if (end is None or dep is None or dep < end) and (
            start is None or arr is None or arr > start
        ):
            out.append({k: leg[k] for k in ("seq", "mode", "origin", "destination", "carrier")})
    return tuple(out)


def _recorded(rows: list[Row]) -> list[RecordedExcursion]:
    return [
        RecordedExcursion(
            id=int(r["id"]),
            shipment_id=int(r["shipment_id"]),
            shipment_reference=r["shipment_reference"],
            device_id=r["device_id"],
            direction=r["direction"],
            start_ts=r["start_ts"],
            end_ts=r["end_ts"],
            min_c=float(r["min_c"]),
            max_c=float(r["max_c"]),
            degree_minutes=float(r["degree_minutes"]),
            alarm=bool(r["alarm"]),
            exposed_from=r["exposed_from"],
            exposed_to=r["exposed_to"],
            review_disposition=r["review_disposition"],
            reviewed_by=r["reviewed_by"],
            reviewed_at=r["reviewed_at"],
            disposition_id=r["disposition_id"],
            disposition_lot=r["disposition_lot"],
            review_covers=bool(r["review_covers"]),
        )
        for r in rows
    ]


def pieces_from_rows(rows: list[Row]) -> list[Piece]:
    """Pieces from :func:`db.queries.trace.containment.containment` rows."""
    return [
        Piece(
            device_id=r["device_id"],
            interval_s=int(r["interval_s"]),
            shipment_id=int(r["shipment_id"]),
            shipment_reference=r["shipment_reference"],
            container=r["node"],
            chain=tuple(r["chain"]),
            start=r["starts"],
            end=r["ends"],
        )
        for r in rows
    ]


def exposures(conn: Conn, epc: str, *, lot: str | None) -> list[RecordedExcursion]:
    """The recorded excursions the unit (of ``lot``) was exposed to, each with the signed QA
    disposition deciding its clearance for that lot."""
    pieces = pieces_from_rows(containment_q.containment(conn=conn, epcs=[epc])["pieces"])
    return _recorded(
        containment_q.piece_excursions(
            conn=conn,
            pieces=[(p.device_id, p.shipment_id, p.start, p.end) for p in pieces],
            lot=lot,
        )
    )


def load_passport(
    conn: Conn,
    text: str,
    *,
    today: date,
    now: datetime,
    gap_factor: float,
    rules: RuleSources | None = None,
) -> Passport:
    """The passport of the unit ``text`` names (any identifier form); NotFoundError if unknown.

    Its limits are the ones the rules engine judges the unit's shipments by
    (:func:`alerts.in_force.load_rules`): ``rules`` gives the engine's bottom layer and rules
    file (None: the default settings and no rules file; the product rows and the stored rule
    versions are read either way).
    """
    key, epc = find_unit(conn, text, today=today)
    if epc is None:
        raise NotFoundError(f"no unit {key.epc} on record")
    unit = containment_q.get_unit(conn=conn, epc=epc)
    found = containment_q.containment(conn=conn, epcs=[epc])
    pieces = pieces_from_rows(found["pieces"])
    product = _profile(unit, unit["gtin"])
    if product is None and unit["gtin"] is None:
        # A logistic unit has no GTIN of its own: judge it by the product its shipment carries.
        gtin = next((r["product_gtin"] for r in found["rides"] if r["product_gtin"]), None)
        if gtin is not None:
            product = _profile(
                product_q.find_product(conn=conn, gtin=gtin), gtin, name_column="name"
            )
    readings = [
        Inherited(r["device_id"], r["ts"], r["temp_c"], r["rh"], r["lat"], r["lon"])
        for r in containment_q.window_readings(conn=conn, windows=merge_windows(pieces))
    ]
    recorded = _recorded(
        containment_q.piece_excursions(
            conn=conn,
            pieces=[(p.device_id, p.shipment_id, p.start, p.end) for p in pieces],
            lot=unit["lot"],
        )
    )
    shipment_ids = sorted({int(r["shipment_id"]) for r in found["rides"]})
    loaded = load_rules(
        conn,
        rules if rules is not None else _DEFAULT_RULES,
        shipment_ids=shipment_ids,
        gtins=[product.gtin] if product is not None else [],
        as_of=now,
    )
    return build_passport(
        unit=UnitInfo(
            epc=unit["epc"],
            kind=unit["kind"],
            gtin=unit["gtin"],
            serial=unit["serial"],
            sscc=unit["sscc"],
            lot=unit["lot"],
            expiry=unit["expiry"],
            commissioned_at=unit["commissioned_at"],
        ),
        product=product,
        path=[
            Containment(
                container=r["node"],
                kind=r["kind"],
                depth=int(r["depth"]),
                chain=tuple(r["chain"]),
                start=r["starts"],
                end=r["ends"],
            )
            for r in found["path"]
        ],
        rides=[
            Ride(
                container=r["node"],
                chain=tuple(r["chain"]),
                shipment_id=int(r["shipment_id"]),
                shipment_reference=r["shipment_reference"],
                start=r["starts"],
                end=r["ends"],
                legs=_legs_overlapping(
                    found["legs"], int(r["shipment_id"]), r["starts"], r["ends"]
                ),
            )
            for r in found["rides"]
        ],
        pieces=pieces,
        readings=readings,
        recorded=recorded,
        shipment_limits={
            f.shipment_id: limits_of(r) for f, r in loaded if f.shipment_id is not None
        },
        product_limits=next((limits_of(r) for f, r in loaded if f.shipment_id is None), None),
        gap_factor=gap_factor,
        now=now,
    )


def _sightings(rows: list[Row]) -> list[Sighting]:
    return [
        Sighting(
            epc=r["epc"],
            event_key=r["event_key"],
            at=r["event_time"],
            place=r["place"],
            lat=r["lat"],
            lon=r["lon"],
            biz_step=r["biz_step"],
        )
        for r in rows
    ]


def verify(conn: Conn, text: str, *, today: date) -> Verification:
    """Judge a scanned identifier (see :func:`traceability.verify.verdict`)."""
    try:
        key, epc = find_unit(conn, text, today=today)
    except IdentifierError as error:
        return verdict(
            text=text,
            key=None,
            parse_error=str(error),
            unit=None,
            recalls=[],
            excursions=[],
            sightings=[],
            today=today,
        )
    if epc is None:
        return verdict(
            text=text,
            key=key,
            parse_error=None,
            unit=None,
            recalls=[],
            excursions=[],
            sightings=[],
            today=today,
        )
    unit = containment_q.get_unit(conn=conn, epc=epc)
    return verdict(
        text=text,
        key=key,
        parse_error=None,
        unit=dict(unit),
        recalls=recall_q.recalls_for(conn=conn, gtin=unit["gtin"], lot=unit["lot"]),
        excursions=exposures(conn, epc, lot=unit["lot"]),
        sightings=_sightings(recall_q.observations(conn=conn, epcs=[epc])),
        today=today,
    )


def recall(conn: Conn, excursion_id: int) -> dict[str, Any]:
    """The units (SSCCs and SGTINs) and lots exposed to one excursion."""
    excursion = recall_q.get_excursion(conn=conn, excursion_id=excursion_id)
    units = recall_q.exposed_units(conn=conn, excursion_id=excursion_id)
    lots: dict[tuple[str, str | None], dict[str, Any]] = {}
    for u in units:
        if u["kind"] != "sgtin":
            continue
        lot = lots.setdefault(
            (u["gtin"], u["lot"]),
            {"gtin": u["gtin"], "lot": u["lot"], "expiry": u["expiry"], "units": 0},
        )
        lot["units"] += 1
    return {
        "excursion": dict(excursion),
        "units": [
            {k: u[k] for k in ("epc", "kind", "gtin", "serial", "sscc", "lot", "expiry")}
            | {"exposed_from": u["exposed_from"], "exposed_to": u["exposed_to"]}
            for u in units
        ],
        "lots": sorted(lots.values(), key=lambda lot: (lot["gtin"], lot["lot"] or "")),
    }


def lot_impact(conn: Conn, gtin: str, lot: str) -> dict[str, Any]:
    """Every excursion the lot's units were exposed to, with QA's clearance for that lot;
    NotFoundError for a lot with no units."""
    n, rows = recall_q.lot_excursions(conn=conn, gtin=gtin, lot=lot)
    if n == 0:
        raise NotFoundError(f"no units of GTIN {gtin} lot {lot!r} on record")
    excursions = [
        dict(r)
        | {
            "cleared": qa_cleared(r["review_disposition"], r["review_covers"]),
            "qa_state": qa_state(r["review_disposition"], r["review_covers"]),
        }
        for r in rows
    ]
    return {"gtin": gtin, "lot": lot, "units": n, "excursions": excursions}


@dataclass(frozen=True, slots=True)
class Signals:
    """Counterfeit signals over a time window."""

    since: datetime
    impossible_travel: tuple[TravelFlag, ...]
    uncommissioned: tuple[Row, ...]


def signals(conn: Conn, *, now: datetime, days: float = 30.0) -> Signals:
    """Impossible travel and never/late commissioned units among the events of the last
    ``days`` days."""
    since = now - timedelta(days=days)
    epcs = recall_q.recently_observed(conn=conn, since=since)
    travel = impossible_travel(_sightings(recall_q.observations(conn=conn, epcs=epcs)))
    return Signals(
        since=since,
        impossible_travel=tuple(t for t in travel if t.second.at >= since),
        uncommissioned=tuple(recall_q.uncommissioned_sightings(conn=conn, since=since)),
    )

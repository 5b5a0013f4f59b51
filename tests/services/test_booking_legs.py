"""Planned legs of a booking through the services on the real database: created with the
shipment (seq assigned), validated with the field named (mode, places, times running forward,
the lane's mode), replaced as a whole by an update at the version read, audited row by row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coldchain.errors import InvalidRecordError, RecordConflictError, VersionConflictError
from coldchain.gs1 import check_digit
from db.types import Conn
from services import bookings, locations
from services.booking_legs import Leg
from services.caller import Caller
from tests.fixtures.web import add_product
from tests.services.conftest import audit_rows

pytestmark = pytest.mark.integration

T0 = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)
NOW = datetime.now(UTC)


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


ROUTE = (
    Leg("road", "DC Basel", "BSL airport", "Frigo Express", _h(0), _h(2)),
    Leg("warehouse", "BSL airport", "BSL airport", None, _h(2), _h(5)),
    Leg("air", "BSL airport", "MXP airport", "Swiss Cargo", _h(5), _h(7)),
)


def _new(reference: str = "SHP-L1", **extra: Any) -> bookings.NewShipment:
    values: dict[str, Any] = {
        "reference": reference, "origin": "DC Basel", "destination": "Hospital Milan",
        "planned_departure": _h(0), "planned_arrival": _h(10), "legs": ROUTE,
    }  # fmt: skip
    return bookings.NewShipment(**{**values, **extra})


def _legs(conn: Conn, shipment_id: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT seq, mode, origin, destination, carrier, planned_departure, planned_arrival"
        " FROM shipment_legs WHERE shipment_id = %s ORDER BY seq",
        (shipment_id,),
    ).fetchall()


def _as_rows(legs: tuple[Leg, ...]) -> list[dict[str, Any]]:
    fields = ("mode", "origin", "destination", "carrier", "planned_departure", "planned_arrival")
    return [
        {"seq": seq, **{f: getattr(leg, f) for f in fields}}
        for seq, leg in enumerate(legs, start=1)
    ]


def test_a_booking_plans_its_legs_in_order_audited_and_idempotent(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    op = callers["operator"]
    row, created = bookings.create(conn, op, new=_new(), now=NOW)
    assert created
    sid = int(row["shipment_id"])
    assert row["legs"] == _legs(conn, sid) == _as_rows(ROUTE)
    trail = [a for a in audit_rows(conn, "shipment_legs") if a["entity_id"] == str(sid)]
    assert [(a["action"], a["actor"], a["reason"]) for a in trail] == [
        ("insert", op.actor, "shipment booked")
    ] * len(ROUTE)

    # The same request again is the same shipment; other legs under its reference are not.
    again, created = bookings.create(conn, op, new=_new(), now=NOW)
    assert (created, again["shipment_id"]) == (False, sid)
    with pytest.raises(RecordConflictError, match="SHP-L1"):
        bookings.create(conn, op, new=_new(legs=ROUTE[:1]), now=NOW)


@pytest.mark.parametrize(
    ("legs", "field"),
    [
        ((Leg("boat", "A", "B"),), "legs[0].mode"),
        ((ROUTE[0], Leg("air", " ", "MXP airport")), "legs[1].origin"),
        ((Leg("road", "A", "B", None, _h(3), _h(2)),), "legs[0].planned_arrival"),
        ((ROUTE[2], ROUTE[0]), "legs[1].planned_departure"),  # back in time
        ((Leg("road", "A", "B", None, _h(-1), _h(1)),), "legs[0].planned_departure"),
        ((Leg("road", "A", "B", None, _h(1), _h(11)),), "legs[0].planned_arrival"),
        (
            (Leg("road", "A", "B", None, datetime(2030, 3, 4, 7), None),),
            "legs[0].planned_departure",
        ),
    ],
)
def test_a_bad_leg_is_refused_naming_its_field_and_nothing_is_stored(
    conn: Conn, callers: dict[str, Caller], legs: tuple[Leg, ...], field: str
) -> None:
    with pytest.raises(InvalidRecordError) as refused:
        bookings.create(conn, callers["operator"], new=_new(legs=legs), now=NOW)
    assert refused.value.field == field, refused.value
    assert conn.execute("SELECT count(*) AS n FROM shipments").fetchone() == {"n": 0}


def test_on_a_single_mode_lane_every_transport_leg_has_its_mode(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    admin = callers["admin"]
    glns = [f"{body}{check_digit(body)}" for body in ("095060000001", "095060000002")]
    for gln, name in zip(glns, ("DC Basel", "Hospital Milan"), strict=True):
        site = locations.LocationIn(gln=gln, name=name, lat=47.5, lon=7.6, geofence_m=300)
        locations.create_record(conn, admin, "locations", record=site)
    lane, _ = locations.create_record(
        conn, admin, "lanes",
        record=locations.LaneIn(code="BSL-MXP-ROAD", origin_location_id=glns[0],
                                destination_location_id=glns[1], mode="road"),
    )  # fmt: skip
    by_road = _new(origin=None, destination=None, lane_id=lane["lane_id"])
    with pytest.raises(InvalidRecordError) as refused:
        bookings.create(conn, callers["operator"], new=by_road, now=NOW)
    assert refused.value.field == "legs[2].mode" and "BSL-MXP-ROAD" in str(refused.value)
    road_only = (ROUTE[0], ROUTE[1], Leg("road", "BSL airport", "Hospital Milan", None))
    row, _ = bookings.create(conn, callers["operator"], new=_new(
        origin=None, destination=None, lane_id=lane["lane_id"], legs=road_only), now=NOW)  # fmt: skip
    assert [leg["mode"] for leg in row["legs"]] == ["road", "warehouse", "road"]


def test_an_update_replaces_the_plan_at_the_version_read(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    op = callers["operator"]
    row, _ = bookings.create(conn, op, new=_new(), now=NOW)
    sid, version = int(row["shipment_id"]), int(row["version"])
    direct = (Leg("road", "DC Basel", "Hospital Milan", "Frigo Express", _h(1), _h(8)),)

    updated = bookings.update(conn, op, shipment_id=sid, version=version,
                              changes={"legs": direct}, reason="road is faster", now=NOW)  # fmt: skip
    assert updated["version"] == version + 1
    assert updated["legs"] == _legs(conn, sid) == _as_rows(direct)
    trail = [a for a in audit_rows(conn, "shipment_legs") if a["entity_id"] == str(sid)]
    assert [a["action"] for a in trail[len(ROUTE) :]] == ["delete"] * len(ROUTE) + ["insert"]
    assert {a["reason"] for a in trail[len(ROUTE) :]} == {"road is faster"}
    (event,) = [e for e in conn.execute(
        "SELECT data FROM shipment_events WHERE shipment_id = %s AND event = 'update'", (sid,)
    ).fetchall()]  # fmt: skip
    assert [leg["mode"] for leg in event["data"]["legs"]] == ["road"]

    # A stale version changes nothing; other changes keep the legs, and are checked against them.
    with pytest.raises(VersionConflictError):
        bookings.update(conn, op, shipment_id=sid, version=version, changes={"legs": ()}, now=NOW)
    assert _legs(conn, sid) == _as_rows(direct)
    with pytest.raises(InvalidRecordError) as refused:
        bookings.update(conn, op, shipment_id=sid, version=version + 1,
                        changes={"planned_arrival": _h(6)}, now=NOW)  # fmt: skip
    assert refused.value.field == "legs[0].planned_arrival"
    kept = bookings.update(conn, op, shipment_id=sid, version=version + 1,
                           changes={"carrier": "Other"}, now=NOW)  # fmt: skip
    assert kept["legs"] == _as_rows(direct)
    cleared = bookings.update(conn, op, shipment_id=sid, version=version + 2,
                              changes={"legs": ()}, now=NOW)  # fmt: skip
    assert cleared["legs"] == [] == _legs(conn, sid)


def test_a_product_booking_without_legs_still_books(conn: Conn, callers: dict[str, Caller]) -> None:
    gtin = add_product(conn)
    row, created = bookings.create(
        conn, callers["operator"],
        new=bookings.NewShipment(reference="SHP-NL", origin="A", destination="B",
                                 items=(bookings.Item(gtin, "L1", 5),)),
        now=NOW,
    )  # fmt: skip
    assert created and row["legs"] == []

"""The fleet page's data against a real TimescaleDB: the table sorted and paged by the database,
the map and the counts over every shipment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.telemetry import Reading
from db.queries import shipments as shipment_q
from tests.fixtures.web import add_alert, add_device, add_product, add_shipment, assign, ingest

pytestmark = pytest.mark.integration


def _fleet(dsn: str) -> None:
    """Five shipments in transit: one hot with a critical alert, three with readings, and one
    whose logger has not reported (no temperature, no position)."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        for ref, temp in (("SHP-A", 4.0), ("SHP-B", 6.5), ("SHP-C", 9.4), ("SHP-D", 3.0)):
            add_device(conn, f"LOG-{ref}")
            shipment = add_shipment(conn, ref, product=product)
            assign(conn, f"LOG-{ref}", shipment, now - timedelta(hours=1))
            ingest(dsn, [Reading(f"LOG-{ref}", now - timedelta(seconds=30), temp, 50.0, 50.0, 5.0)])
            if ref == "SHP-C":
                add_alert(conn, shipment, triggered_at=now - timedelta(minutes=5))
        add_device(conn, "LOG-SHP-E")
        shipment = add_shipment(conn, "SHP-E", product=product)
        assign(conn, "LOG-SHP-E", shipment, now - timedelta(hours=1))


def _refs(dsn: str, **kwargs: object) -> list[str]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        page = shipment_q.list_shipments(conn=conn, offline_factor=2.0, **kwargs)  # type: ignore[arg-type]
    return [r["reference"] for r in page.items]


def test_the_table_is_sorted_and_paged_by_the_database(db_dsn: str) -> None:
    _fleet(db_dsn)
    # needing action first: the alarm, then the offline logger, then the rest by reference
    assert _refs(db_dsn) == ["SHP-C", "SHP-E", "SHP-A", "SHP-B", "SHP-D"]
    # by temperature: a shipment without one goes last whichever the direction
    assert _refs(db_dsn, sort="temp") == ["SHP-C", "SHP-B", "SHP-A", "SHP-D", "SHP-E"]
    assert _refs(db_dsn, sort="temp", descending=False) == [
        "SHP-D", "SHP-A", "SHP-B", "SHP-C", "SHP-E",
    ]  # fmt: skip
    # ties keep the default order: every shipment has the same product
    assert _refs(db_dsn, sort="product", descending=False) == _refs(db_dsn)
    assert _refs(db_dsn, sort="reference", limit=2, offset=2) == ["SHP-C", "SHP-B"]
    with pytest.raises(ValueError, match="cannot sort shipments by 'colour'"):
        _refs(db_dsn, sort="colour")


def test_the_map_and_the_counts_cover_every_shipment(db_dsn: str) -> None:
    _fleet(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        rows = shipment_q.fleet_overview(conn=conn, offline_factor=2.0)
        listed = {
            r["reference"]: r
            for r in shipment_q.list_shipments(conn=conn, offline_factor=2.0, limit=100).items
        }
    overview = {r[0]: dict(zip(shipment_q.FLEET_OVERVIEW_COLUMNS, r, strict=True)) for r in rows}
    assert overview.keys() == listed.keys()
    for ref, row in overview.items():  # the same live picture as the table's rows
        for column in ("lane", "condition", "current_temp_c", "lat", "lon"):
            assert row[column] == listed[ref][column], (ref, column)
    assert overview["SHP-E"]["lat"] is None and overview["SHP-E"]["condition"] == "offline"

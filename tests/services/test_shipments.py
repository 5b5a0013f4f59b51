"""services.shipments against the real database: the reads the API, the fleet page and the
shipment page share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coldchain.errors import NotFoundError
from coldchain.settings import Settings
from db.types import Conn
from services import shipments
from tests.trace.scenario import Scenario, seed_rows

pytestmark = pytest.mark.integration

OFFLINE = 10.0


@pytest.fixture
def seeded(db_dsn: str) -> Scenario:
    return seed_rows(db_dsn)


def test_the_fleet_overview_and_the_list_see_the_same_shipments(
    seeded: Scenario, conn: Conn
) -> None:
    overview = shipments.fleet_overview(conn, offline_factor=OFFLINE)
    page = shipments.list_shipments(conn, offline_factor=OFFLINE, limit=500)
    assert "reference" in overview.columns
    assert all(len(row) == len(overview.columns) for row in overview.rows)
    at = overview.columns.index("reference")
    assert sorted(r[at] for r in overview.rows) == sorted(i["reference"] for i in page.items)
    assert page.total == len(seeded.shipments) == len(overview.rows)


def test_one_shipment_by_id_or_reference_with_its_readings_excursions_and_figures(
    seeded: Scenario, conn: Conn, settings: Settings
) -> None:
    shipment_id = min(seeded.shipments.values())
    detail = shipments.shipment_detail(conn, key=str(shipment_id), offline_factor=OFFLINE)
    assert shipments.find_shipment(conn, key=detail["reference"]) == shipment_id
    with pytest.raises(NotFoundError):
        shipments.find_shipment(conn, key="no such shipment")

    series = shipments.shipment_readings(conn, shipment_id=shipment_id, max_points=20_000)
    assert series.resolution == "raw" and series.total_readings == len(series.points) > 0
    coarse = shipments.shipment_readings(conn, shipment_id=shipment_id, max_points=10)
    assert coarse.total_readings == series.total_readings and len(coarse.points) < len(
        series.points
    )
    device = detail["devices"][0]["device_id"]
    own = shipments.device_readings(conn, device_id=device, max_points=20_000)
    assert own.total_readings > 0

    recorded = shipments.excursions(conn, shipment_id=shipment_id)
    assert {e["id"] for e in recorded} <= set(seeded.excursions.values())

    rules = shipments.rule_sources(settings)
    band = shipments.limits(conn, rules, shipment_id=shipment_id)
    assert band is not None and detail["product"] is not None
    figures = shipments.stability(
        conn, rules, shipment_id=shipment_id, as_of=datetime.now(UTC).replace(microsecond=0)
    )
    assert [x["device_id"] for x in figures.loggers] == [d["device_id"] for d in detail["devices"]]
    assert 0 < figures.warning_share < 1

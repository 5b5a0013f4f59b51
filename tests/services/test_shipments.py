"""services.shipments against the real database: the reads the API, the fleet page and the
shipment page share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from coldchain.errors import NotFoundError
from coldchain.settings import Settings
from db.types import Conn
from services import shipments
from tests.fixtures.web import add_alert, add_device, add_excursion, add_product, add_shipment
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


def _fleet_at_risk(dsn: str, now: datetime) -> dict[str, int]:
    """Four shipments: two hot ones with an open excursion (one out of range for longer), one
    quarantined by QA after an excursion that has ended, one arrived that never left its
    range."""
    with psycopg.connect(dsn) as c:
        product = add_product(c)
        ids = {
            ref: add_shipment(c, ref, product=product, origin=origin, destination="Basel")
            for ref, origin in (
                ("SHP-HOT", "Rotterdam"),
                ("SHP-HOTTER", "Rotterdam"),
                ("SHP-HELD", "Antwerp"),
                ("SHP-FINE", "Lyon"),
            )
        }
        c.execute("UPDATE shipments SET status = 'quarantined' WHERE reference = 'SHP-HELD'")
        c.execute("UPDATE shipments SET status = 'arrived' WHERE reference = 'SHP-FINE'")
        c.execute(
            "UPDATE shipments SET planned_arrival = %s WHERE reference = 'SHP-HOT'",
            (now + timedelta(hours=5),),
        )
        c.execute(
            "INSERT INTO shipment_legs (shipment_id, seq, mode, origin, destination, carrier)"
            " VALUES (%s, 1, 'road', 'Rotterdam', 'Venlo', 'Frigo Express'),"
            " (%s, 2, 'air', 'Venlo', 'Basel', 'Polar Air')",
            (ids["SHP-HOT"], ids["SHP-HOT"]),
        )
        for ref in ids:
            add_device(c, f"LOG-{ref}")
        for ref in ("SHP-HOT", "SHP-HOTTER"):
            add_alert(c, ids[ref], triggered_at=now - timedelta(minutes=20))
        # an old closed excursion and the open one (the product left its range 28 min ago;
        # the alarm went off later)
        add_excursion(
            c,
            ids["SHP-HOT"],
            "LOG-SHP-HOT",
            start=now - timedelta(hours=3),
            end=now - timedelta(hours=2, minutes=40),
            last_out=now - timedelta(hours=2, minutes=41),
            max_c=15.0,
        )
        add_excursion(
            c,
            ids["SHP-HOT"],
            "LOG-SHP-HOT",
            start=now - timedelta(minutes=28),
            end=None,
            last_out=now - timedelta(minutes=1),
            max_c=12.8,
            alarm_at=now - timedelta(minutes=20),
        )
        add_excursion(
            c,
            ids["SHP-HOTTER"],
            "LOG-SHP-HOTTER",
            start=now - timedelta(minutes=50),
            end=None,
            last_out=now - timedelta(minutes=1),
            max_c=9.1,
        )
        add_excursion(
            c,
            ids["SHP-HELD"],
            "LOG-SHP-HELD",
            start=now - timedelta(days=2, minutes=30),
            end=now - timedelta(days=2),
            last_out=now - timedelta(days=2, minutes=1),
            max_c=11.5,
        )
        # the stability budget as the rules engine counts it, per logger
        c.execute(
            "INSERT INTO rule_states (shipment_id, device_id, rule_key, holding, as_of, details)"
            " VALUES (%s, 'LOG-SHP-HOT', 'budget', true, %s, %s)",
            (ids["SHP-HOT"], now, Jsonb({"share_used": 0.37, "status": "ok"})),
        )
    return ids


def test_the_fleet_list_says_since_when_how_long_how_bad_and_what_qa_decided(
    db_dsn: str, conn: Conn
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _fleet_at_risk(db_dsn, now)
    page = shipments.list_shipments(conn, offline_factor=OFFLINE, limit=10)
    rows = {r["reference"]: r for r in page.items}

    hot = rows["SHP-HOT"]
    # since the open excursion began (not the alarm, not the older excursion), its peak and
    # °C·min (the open one's, though the closed one was hotter), both excursions counted
    assert hot["out_of_range_since"] == now - timedelta(minutes=28)
    assert (hot["peak_c"], hot["peak_degree_minutes"], hot["peak_open"]) == (12.8, 42.0, True)
    assert hot["n_excursions"] == 2
    assert hot["budget_used"] == pytest.approx(0.37)
    assert hot["carriers"] == ["Frigo Express", "Polar Air"]
    assert hot["eta_planned"] == now + timedelta(hours=5)
    assert hot["qa_state"] is None  # in transit: not QA's yet

    held = rows["SHP-HELD"]
    assert held["qa_state"] == "quarantined"
    assert held["condition"] == "ok" and held["out_of_range_since"] is None
    assert (held["n_excursions"], held["peak_c"], held["peak_open"]) == (1, 11.5, False)
    assert held["budget_used"] is None

    fine = rows["SHP-FINE"]
    assert (fine["n_excursions"], fine["peak_c"], fine["out_of_range_since"]) == (0, None, None)
    assert fine["qa_state"] == "awaiting review"

    # the worst first: alarms, the longest out of range first; then the one with an excursion
    # on record before the one without
    assert [r["reference"] for r in page.items] == ["SHP-HOTTER", "SHP-HOT", "SHP-HELD", "SHP-FINE"]


def test_the_fleet_list_filters_by_lane_carrier_and_state(db_dsn: str, conn: Conn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _fleet_at_risk(db_dsn, now)

    def refs(**filters: Any) -> list[str]:
        page = shipments.list_shipments(
            conn, offline_factor=OFFLINE, sort="reference", descending=False, **filters
        )
        assert page.total == len(page.items)
        return [r["reference"] for r in page.items]

    assert refs(lane="Rotterdam → Basel") == ["SHP-HOT", "SHP-HOTTER"]
    assert refs(lane="Rotterdam") == []  # a lane is origin → destination, exactly
    # a leg's carrier, and the shipment's own (every one here is booked with Frigo Express)
    assert refs(carrier="Polar Air") == ["SHP-HOT"]
    assert len(refs(carrier="Frigo Express")) == 4
    assert refs(statuses=["quarantined", "rejected"]) == ["SHP-HELD"]
    assert refs(statuses=["in_transit"], carrier="Polar Air", q="hot") == ["SHP-HOT"]

    # sorted by QA state: what QA holds first (quarantined, then awaiting review), then the rest
    by_qa = shipments.list_shipments(conn, offline_factor=OFFLINE, sort="qa", descending=True)
    assert [r["qa_state"] for r in by_qa.items][:2] == ["quarantined", "awaiting review"]

    choices = shipments.fleet_filter_choices(conn)
    assert choices == {
        "lane": ["Antwerp → Basel", "Lyon → Basel", "Rotterdam → Basel"],
        "carrier": ["Frigo Express", "Polar Air"],
    }

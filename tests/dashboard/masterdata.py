"""Master data for the booking pages' tests, registered through the services as the API and the
CLI register it: a product, two sites and a lane between them, a carrier, and loggers (one of
them past its calibration due date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from coldchain.gs1 import check_digit
from services import locations, loggers
from services.caller import Caller
from services.locations import CarrierIn, LaneIn, LocationIn
from services.loggers import LoggerIn
from tests.fixtures.web import add_product

CONSOLE = Caller("cli:test", "admin", "test", "cli:test")


@dataclass(frozen=True, slots=True)
class MasterData:
    gtin: str
    lane_id: int
    carrier_id: int
    origin: str
    destination: str
    carrier: str
    loggers: tuple[str, ...]  # calibrated, free
    expired: str  # calibration due yesterday


def _gln(body: str) -> str:
    return body + str(check_digit(body))


def register(dsn: str) -> MasterData:
    """Register the master data in the test's database."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        gtin = add_product(conn)
        sites = []
        for body, name, lat, lon in (
            ("760000000001", "Basel DC", 47.56, 7.59),
            ("800000000002", "Milan Hospital", 45.46, 9.19),
        ):
            row, _ = locations.create_record(
                conn,
                CONSOLE,
                "locations",
                record=LocationIn(gln=_gln(body), name=name, lat=lat, lon=lon, geofence_m=500),
            )
            sites.append(row)
        lane, _ = locations.create_record(
            conn,
            CONSOLE,
            "lanes",
            record=LaneIn(
                code="BSL-MIL",
                origin_location_id=sites[0]["location_id"],
                destination_location_id=sites[1]["location_id"],
                mode="road",
            ),
        )
        carrier, _ = locations.create_record(
            conn, CONSOLE, "carriers", record=CarrierIn(name="Alpine Reefer", code="ALPR")
        )
        today = datetime.now(UTC).date()
        serials = ("TL-FORM-1", "TL-FORM-2", "TL-FORM-OLD")
        for serial in serials:
            due = today - timedelta(days=1) if serial.endswith("OLD") else today + timedelta(100)
            loggers.register_logger(
                conn,
                CONSOLE,
                logger=LoggerIn(
                    device_id=serial,
                    model="TL-300",
                    interval_s=60,
                    calibration_cert=f"CAL-{serial}",
                    calibration_due=due,
                ),
                topic_root="coldchain",
                broker_dir=None,
            )
    return MasterData(
        gtin=gtin,
        lane_id=int(lane["lane_id"]),
        carrier_id=int(carrier["carrier_id"]),
        origin="Basel DC",
        destination="Milan Hospital",
        carrier="Alpine Reefer",
        loggers=serials[:2],
        expired=serials[2],
    )

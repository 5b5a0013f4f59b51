"""Tests of the device simulator; helpers shared by its test modules live here."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.caller import Caller
from services.fleet import FleetRegistration, register_fleet
from simulator.fleet import Fleet

START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
ROOT = "coldchain/v1"


def base_scenario(**overrides: Any) -> dict[str, Any]:
    """A minimal valid scenario as a dict, with top-level keys replaced by ``overrides``."""
    data: dict[str, Any] = {
        "name": "unit",
        "seed": 5,
        "start": START,
        "duration_h": 4,
        "ambient": "summer",
        "fleet": {"shipments": 3, "loggers_per_shipment": 2, "interval_s": 60, "id_prefix": "UT"},
        "products": [
            {
                "gtin": "00614141000012",
                "name": "Vaccine",
                "temp_min_c": 2.0,
                "temp_max_c": 8.0,
                "freeze_limit_c": 0.0,
                "alarm_delay_min": 15,
            }
        ],
        "routes": [
            {
                "name": "BSL-FRA",
                "packaging": "reefer_container",
                "legs": [{"from": "Basel", "to": "Frankfurt", "mode": "road"}],
            }
        ],
    }
    data = copy.deepcopy(data)
    data.update(copy.deepcopy(overrides))
    return data


def register(dsn: str, fleet: Fleet, *, now: datetime | None = None) -> FleetRegistration:
    """Register ``fleet`` through the services as the console (what `coldchain simulate` does)."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return register_fleet(
            conn,
            Caller.console(),
            fleet,
            topic_root=ROOT,
            broker_dir=None,
            now=now or datetime.now(UTC),
        )

"""The app in-process with a small fleet and one person per role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from tests.fixtures.web import add_alert, add_device, add_product, add_shipment, assign, ingest


@pytest.fixture
def fleet(db_dsn: str) -> dict[str, Any]:
    """A product, a logger, a shipment in transit with readings and an open alert."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        add_device(conn, "LOG-1")
        shipment = add_shipment(conn, "SHP-1", product=gtin)
        assign(conn, "LOG-1", shipment, now - timedelta(hours=2))
        alert = add_alert(conn, shipment, triggered_at=now - timedelta(minutes=30))
    ingest(db_dsn, [Reading("LOG-1", now - timedelta(minutes=m), 5.0) for m in range(1, 60)])
    return {"gtin": gtin, "shipment": shipment, "alert": alert, "device": "LOG-1"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app (lifespan run), without credentials."""
    with TestClient(create_app(settings)) as c:
        yield c

"""`coldchain simulate --provision-only`: the fleet registered through the services, as the
console, once (real database)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from coldchain.settings import Settings
from launcher.cli import app
from simulator.scenario import load_scenario

pytestmark = pytest.mark.integration

START = "2030-03-01T06:00:00+00:00"


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    db = settings.db
    return {
        "COLDCHAIN_DB__PORT": str(db.port),
        "COLDCHAIN_DB__NAME": db.name,
        "COLDCHAIN_DB__USER": db.user,
        "COLDCHAIN_DB__PASSWORD": db.password.get_secret_value(),
        "COLDCHAIN_STACK__DATA_DIR": str(tmp_path / "stack"),
        "COLDCHAIN_LOG_LEVEL": "WARNING",
    }


def simulate(env: dict[str, str]) -> str:
    args = ["simulate", "--scenario", "demo", "--start", START, "--provision-only", "--no-progress"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_provision_only_registers_the_demo_fleet_once_and_publishes_nothing(
    env: dict[str, str], db_dsn: str
) -> None:
    fleet = load_scenario("demo").fleet
    first = simulate(env)
    assert f"{fleet.shipments} shipments" in first
    assert (
        f"shipments {fleet.shipments}, riding {fleet.shipments * fleet.loggers_per_shipment}"
        in first
    )
    again = simulate(env)
    assert "shipments 0," in again and "loggers 0," in again and "started 0," in again
    with psycopg.connect(db_dsn) as conn:
        states = conn.execute("SELECT status, count(*) FROM shipments GROUP BY status").fetchall()
        (readings,) = conn.execute("SELECT count(*) FROM readings").fetchone() or (None,)
        (actors,) = conn.execute(
            "SELECT array_agg(DISTINCT actor) FROM audit_log WHERE entity = 'shipments'"
        ).fetchone() or (None,)
    assert states == [("in_transit", fleet.shipments)]
    assert readings == 0
    assert actors is not None and all(a.startswith("cli:") for a in actors)

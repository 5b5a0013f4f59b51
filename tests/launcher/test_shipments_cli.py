"""``coldchain shipments …`` against a real TimescaleDB, as the console (cli:<os user>): an
import with bad rows reports each with its line and field and applies nothing, ``--skip-bad``
applies the good ones; a shipment booked, given a logger, started, arrived and its timeline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fixtures.web import add_device, add_product
from tests.launcher.test_masterdata_cli import env  # noqa: F401  (the command's environment)
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


def _count(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_an_import_with_bad_rows_reports_each_and_applies_nothing(
    env: dict[str, str],  # noqa: F811
    db_dsn: str,
    tmp_path: Path,
) -> None:
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
    path = tmp_path / "shipments.csv"
    path.write_text(
        "reference,origin,destination,product_gtin,lot,quantity,planned_arrival\n"
        f"CSV-1,Basel,Milan,{gtin},L1,10,2030-01-02T10:00:00+00:00\n"  # line 2: good
        f"CSV-2,Basel,,{gtin},L1,10,\n"  # line 3: no destination
        f"CSV-3,Basel,Milan,{gtin},L1,-4,\n"  # line 4: quantity
        f"CSV-4,Basel,Milan,{gtin},L1,10,tomorrow\n"  # line 5: planned_arrival
        f"CSV-5,Basel,Milan,{gtin},L2,1,\n",  # line 6: good
        encoding="utf-8",
    )
    code, out = run(env, "shipments", "import", str(path))
    assert code == 1, out
    for line, field in ((3, "destination"), (4, "quantity"), (5, "planned_arrival")):
        assert f"line {line}, {field}:" in out, out
    assert "line 2," not in out and "line 6," not in out and "nothing applied" in out
    assert _count(db_dsn, "SELECT count(*) FROM shipments") == 0

    code, out = run(env, "shipments", "import", str(path), "--skip-bad")
    assert code == 0, out
    assert "skipped 3 bad row(s): lines 3, 4, 5" in out and "2 applied" in out
    assert _count(db_dsn, "SELECT count(*) FROM shipments WHERE status = 'planned'") == 2
    assert _count(db_dsn, "SELECT count(*) FROM shipment_events WHERE actor LIKE 'cli:%'") == 2


def test_book_attach_start_arrive_and_read_the_timeline(
    env: dict[str, str],  # noqa: F811
    db_dsn: str,
) -> None:
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        add_device(conn, "LOG-9")
    code, out = run(env, "shipments", "create", "CLI-1", "--origin", "Basel", "--destination",
                    "Oslo", "--item", f"{gtin}:L7:40", "--po", "PO-77")  # fmt: skip
    assert code == 0 and "created: shipment" in out, out
    code, out = run(env, "shipments", "create", "CLI-1", "--origin", "Basel", "--destination",
                    "Oslo", "--item", f"{gtin}:L7:40", "--po", "PO-77")  # fmt: skip
    assert code == 0 and "already booked" in out, out
    assert run(env, "shipments", "attach", "CLI-1", "LOG-9")[0] == 0
    assert run(env, "shipments", "start", "CLI-1")[0] == 0
    code, out = run(env, "shipments", "cancel", "CLI-1", "--reason", "wrong truck")
    assert code == 1 and "cannot cancel a shipment that is in_transit" in out, out
    code, out = run(env, "shipments", "arrive", "CLI-1")
    # No reading yet: nothing shows the product was kept as it must be.
    assert code == 0 and f"{gtin}: exception" in out and "no reading" in out.lower(), out
    code, out = run(env, "shipments", "timeline", "CLI-1")
    events = [line.split()[1] for line in out.splitlines()[1:]]
    assert events == ["create", "logger_attached", "start", "arrive", "verdict", "review"], out


def test_parse_leg_reads_iso_times_with_their_own_colons() -> None:
    from launcher.cli.shipments import parse_leg

    dep, arr = "2030-01-02T08:00:00+01:00", "2030-01-02T14:30Z"
    leg = parse_leg(f"road:DC Basel:Hub Milan:{dep}:{arr}")
    assert (leg.mode, leg.origin, leg.destination) == ("road", "DC Basel", "Hub Milan")
    assert (leg.planned_departure, leg.planned_arrival) == (
        datetime.fromisoformat(dep), datetime.fromisoformat(arr)
    )  # fmt: skip
    only_arrival = parse_leg(f"air:BSL:MXP::{arr}")
    assert (only_arrival.planned_departure, only_arrival.planned_arrival) == (
        None, datetime.fromisoformat(arr)
    )  # fmt: skip
    assert parse_leg(f"sea:A:B:{dep}:").planned_arrival is None
    assert parse_leg("rail:A:B").planned_departure is None
    for bad in ("road:A", "road:A:B:tomorrow:2030-01-02T14:30Z", "road:A:B:2030-01-02"):
        with pytest.raises(ValueError, match="--leg"):
            parse_leg(bad)


def test_create_with_planned_legs(
    env: dict[str, str],  # noqa: F811
    db_dsn: str,
) -> None:
    first, second = "road:Basel:BSL airport:2030-01-02T08:00Z:2030-01-02T10:00Z", "air:BSL:Oslo"
    code, out = run(env, "shipments", "create", "CLI-L", "--origin", "Basel", "--destination",
                    "Oslo", "--leg", first, "--leg", second)  # fmt: skip
    assert code == 0 and "created: shipment" in out, out
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT l.seq, l.mode, l.destination, l.planned_arrival FROM shipment_legs l"
            " JOIN shipments s USING (shipment_id) WHERE s.reference = 'CLI-L' ORDER BY seq"
        ).fetchall()
    assert [r[:3] for r in rows] == [(1, "road", "BSL airport"), (2, "air", "Oslo")]
    assert rows[0][3] == datetime.fromisoformat("2030-01-02T10:00Z") and rows[1][3] is None

    # A bad leg is refused naming it, and nothing is booked.
    backwards = "road:Basel:Oslo:2030-01-02T10:00Z:2030-01-02T08:00Z"
    code, out = run(env, "shipments", "create", "CLI-M", "--origin", "Basel", "--destination",
                    "Oslo", "--leg", backwards)  # fmt: skip
    assert code == 1 and "legs[0].planned_arrival" in out, out
    code, out = run(env, "shipments", "create", "CLI-M", "--origin", "Basel", "--destination",
                    "Oslo", "--leg", "road:Basel")  # fmt: skip
    assert code == 2 and "MODE:ORIGIN:DESTINATION" in out, out
    assert _count(db_dsn, "SELECT count(*) FROM shipments WHERE reference = 'CLI-M'") == 0

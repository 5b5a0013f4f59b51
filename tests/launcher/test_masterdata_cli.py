"""``coldchain products|loggers|locations …`` against a real TimescaleDB: CSV imports validated
whole (every bad row reported with its line and field, nothing applied), ``--skip-bad`` applying
the good rows, and add/update/retire with versions, as the console (cli:<os user>)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The command's environment: this test's database, a stack folder of its own."""
    db = settings.db
    return {
        "COLDCHAIN_DB__PORT": str(db.port),
        "COLDCHAIN_DB__NAME": db.name,
        "COLDCHAIN_DB__USER": db.user,
        "COLDCHAIN_DB__PASSWORD": db.password.get_secret_value(),
        "COLDCHAIN_MQTT__TOPIC_ROOT": "acme/coldchain/v1",
        "COLDCHAIN_STACK__DATA_DIR": str(tmp_path / "stack"),
        "COLDCHAIN_LOG_LEVEL": "WARNING",
    }


def _gtin(n: int) -> str:
    body = f"0950600{n:06d}"
    return body + str(check_digit(body))


def _count(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


HEADER = "gtin,name,temp_min_c,temp_max_c,allowances,max_freeze_thaw_cycles\n"


def _products_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """Five rows: lines 2 and 5 good; 3, 4 and 6 bad, each in a known field."""
    rows = [
        f"{_gtin(1)},Vaxigrip,2,8,8..25=72h; 0..2=12h,1",  # line 2: good
        f"{_gtin(2)},Bad range,9,8,,",  # line 3: temp_max_c below temp_min_c
        f"{_gtin(3)},Bad band,2,8,8..25=72h; 20..30=1h,",  # line 4: overlapping bands
        f"{_gtin(4)},Insulin,2,8,,",  # line 5: good
        "09506000000005,Bad GTIN,2,8,,",  # line 6: wrong check digit
    ]
    path = tmp_path / "products.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path, {3: "temp_max_c", 4: "stability.allowances[1]", 6: "gtin"}


def test_a_products_file_with_bad_rows_reports_each_and_applies_nothing(
    env: dict[str, str], db_dsn: str, tmp_path: Path
) -> None:
    path, bad = _products_file(tmp_path)
    code, out = run(env, "products", "import", str(path))
    assert code == 1, out
    for line, field in bad.items():
        assert f"line {line}, {field}:" in out, out
    assert "line 2," not in out and "line 5," not in out
    assert "nothing applied" in out
    assert _count(db_dsn, "SELECT count(*) FROM products") == 0
    assert _count(db_dsn, "SELECT count(*) FROM product_profiles") == 0


def test_skip_bad_applies_the_good_rows_and_says_what_it_skipped(
    env: dict[str, str], db_dsn: str, tmp_path: Path
) -> None:
    path, bad = _products_file(tmp_path)
    code, out = run(env, "products", "import", str(path), "--skip-bad")
    assert code == 0, out
    assert f"skipped {len(bad)} bad row(s): lines 3, 4, 6" in out
    assert "2 applied, 0 already registered" in out
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute(
            "SELECT p.gtin, pp.version, jsonb_array_length(pp.profile->'allowances'), pp.created_by"
            " FROM products p JOIN product_profiles pp USING (gtin) ORDER BY p.gtin"
        ).fetchall()
    assert [s[:3] for s in stored] == [(_gtin(1), 1, 2), (_gtin(4), 1, 0)]
    assert all(s[3].startswith("cli:") for s in stored)
    # The same file again: the good rows are there as given, nothing new.
    code, out = run(env, "products", "import", str(path), "--skip-bad")
    assert code == 0 and "0 applied, 2 already registered as given" in out


def test_products_add_update_retire_with_versions(env: dict[str, str], db_dsn: str) -> None:
    gtin = _gtin(7)
    code, out = run(env, "products", "add", gtin, "Vaxigrip", "-s", "temp_min_c=2",
                    "-s", "temp_max_c=8", "--allowances", "8..25=72h")  # fmt: skip
    assert code == 0 and "version 1, profile version 1" in out, out
    code, out = run(env, "products", "update", gtin, "--version", "1", "--reason", "study",
                    "--allowances", "8..25=96h; 0..2=12h")  # fmt: skip
    assert code == 0 and "version 2, profile version 2" in out, out
    code, out = run(env, "products", "update", gtin, "--version", "1", "--reason", "late",
                    "-s", "name=Stale")  # fmt: skip
    assert code == 1 and "version 2, not 1" in out
    code, out = run(env, "products", "retire", gtin, "--version", "2", "--reason", "EOL")
    assert code == 0, out
    assert _count(db_dsn, "SELECT count(*) FROM products WHERE retired_at IS NOT NULL") == 1
    with psycopg.connect(db_dsn) as conn:
        reasons = conn.execute(
            "SELECT reason FROM audit_log WHERE entity = 'products' ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in reasons] == ["product registered", "study", "EOL"]


def test_a_loggers_file_registers_them_with_credentials(
    env: dict[str, str], db_dsn: str, tmp_path: Path
) -> None:
    (Path(env["COLDCHAIN_STACK__DATA_DIR"]) / "mosquitto").mkdir(parents=True)
    path = tmp_path / "loggers.csv"
    path.write_text(
        "device_id,model,interval_s,calibration_due\n"
        "TT4-1,TempTrace 4,60,2027-06-30\n"
        "TT4 2,TempTrace 4,60,2027-06-30\n"  # line 3: a space in the serial
        "TT4-3,TempTrace 4,0,2027-13-01\n",  # line 4: interval and date
        encoding="utf-8",
    )
    code, out = run(env, "loggers", "import", str(path))
    assert code == 1
    assert "line 3, device_id:" in out and "line 4, interval_s:" in out
    assert "line 4, calibration_due:" in out
    assert _count(db_dsn, "SELECT count(*) FROM devices") == 0
    creds = tmp_path / "creds.csv"
    code, out = run(env, "loggers", "import", str(path), "--skip-bad", "--credentials", str(creds))
    assert code == 0 and "1 applied" in out, out
    assert creds.read_text().splitlines()[1].startswith("TT4-1,TT4-1,")
    passwd = Path(env["COLDCHAIN_STACK__DATA_DIR"]) / "mosquitto" / "passwd"
    assert passwd.read_text().startswith("TT4-1:$7$")


def test_a_locations_file_is_validated_whole(
    env: dict[str, str], db_dsn: str, tmp_path: Path
) -> None:
    good = "4098765000010"
    assert str(check_digit(good[:-1])) == good[-1]
    path = tmp_path / "sites.csv"
    path.write_text(
        "gln,name,lat,lon,geofence_m\n"
        f"{good},DC Basel,47.56,7.59,250\n"
        "4098765000011,Wrong digit,47.0,7.0,100\n"
        f"{good[:-1]}7,No fence,47.0,7.0,0\n",
        encoding="utf-8",
    )
    code, out = run(env, "locations", "import", str(path))
    assert code == 1 and "line 3, gln:" in out and "line 4, geofence_m:" in out, out
    assert _count(db_dsn, "SELECT count(*) FROM locations") == 0
    code, out = run(env, "locations", "import", str(path), "--skip-bad")
    assert code == 0 and "1 applied" in out
    code, out = run(env, "locations", "list")
    assert code == 0 and "DC Basel" in out

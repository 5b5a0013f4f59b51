"""A site's time zone through the services on the real database (migration 0017): validated as
an IANA zone with the field named, on creation, on change and in a CSV import; stored, audited,
and looked up by the names a shipment's legs use. The database refuses an unknown zone too."""

from __future__ import annotations

import psycopg
import pytest

from coldchain.errors import InvalidRecordError
from coldchain.gs1 import check_digit
from db.types import Conn
from services import locations
from services.caller import Caller
from tests.services.conftest import audit_rows

pytestmark = pytest.mark.integration


def _gln(body: str) -> str:
    return body + str(check_digit(body))


def _site(name: str, body: str, **extra: object) -> locations.LocationIn:
    values = {"gln": _gln(body), "name": name, "lat": 47.56, "lon": 7.59, "geofence_m": 250}
    return locations.LocationIn.model_validate({**values, **extra})


def test_a_site_keeps_its_zone_and_utc_is_the_default(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    basel, _ = locations.create_record(
        conn,
        callers["admin"],
        "locations",
        record=_site("DC Basel", "409876500001", time_zone="Europe/Zurich"),
    )
    plain, _ = locations.create_record(
        conn, callers["admin"], "locations", record=_site("Hub Milan", "409876500002")
    )
    assert basel["time_zone"] == "Europe/Zurich"
    assert plain["time_zone"] == "UTC"
    assert locations.site_time_zones(conn, ["DC Basel", plain["location_id"], "Nowhere"]) == {
        "DC Basel": "Europe/Zurich",
        plain["location_id"]: "UTC",
    }


def test_an_unknown_zone_is_refused_naming_the_field(conn: Conn) -> None:
    with pytest.raises(ValueError, match=r"time_zone[\s\S]*'Europe/Nowhere' is not a known IANA"):
        _site("DC Basel", "409876500001", time_zone="Europe/Nowhere")


def test_a_change_of_zone_is_validated_and_audited(conn: Conn, callers: dict[str, Caller]) -> None:
    row, _ = locations.create_record(
        conn, callers["admin"], "locations", record=_site("DC Basel", "409876500001")
    )
    key = row["location_id"]
    with pytest.raises(InvalidRecordError) as refused:
        locations.update_record(
            conn,
            callers["admin"],
            "locations",
            key=key,
            changes={"time_zone": "Europe/Nowhere"},
            expected_version=row["version"],
            reason="wrong zone",
        )
    assert refused.value.field == "time_zone"
    assert locations.get_record(conn, "locations", key)["time_zone"] == "UTC"
    changed = locations.update_record(
        conn,
        callers["admin"],
        "locations",
        key=key,
        changes={"time_zone": "Europe/Zurich"},
        expected_version=row["version"],
        reason="the site is in Basel",
    )
    assert changed["time_zone"] == "Europe/Zurich"
    last = audit_rows(conn, "locations")[-1]
    assert (last["action"], last["reason"]) == ("update", "the site is in Basel")
    assert (last["before"]["time_zone"], last["after"]["time_zone"]) == ("UTC", "Europe/Zurich")


def test_a_csv_import_names_the_bad_zone_and_stores_the_good_ones(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    text = (
        "gln,name,lat,lon,geofence_m,time_zone\n"
        f"{_gln('409876500001')},DC Basel,47.56,7.59,250,Europe/Zurich\n"
        f"{_gln('409876500002')},Hub Nowhere,45.46,9.19,250,Europe/Nowhere\n"
    )
    result = locations.import_records(
        conn, callers["admin"], "locations", text=text, reason="sites of the new lane"
    )
    assert result.applied == 0
    assert [(p.line, p.field) for p in result.problems] == [(3, "time_zone")]
    assert "Europe/Nowhere" in result.problems[0].message
    result = locations.import_records(
        conn,
        callers["admin"],
        "locations",
        text=text,
        reason="sites of the new lane",
        skip_bad=True,
    )
    assert result.applied == 1
    stored = {r["name"]: r["time_zone"] for r in locations.list_records(conn, "locations")}
    assert stored == {"DC Basel": "Europe/Zurich"}


def test_the_database_refuses_an_unknown_zone_whatever_writes_it(
    conn: Conn, callers: dict[str, Caller]
) -> None:
    row, _ = locations.create_record(
        conn, callers["admin"], "locations", record=_site("DC Basel", "409876500001")
    )
    with pytest.raises(psycopg.errors.CheckViolation, match=r"locations\.time_zone"):
        conn.execute(
            "UPDATE locations SET time_zone = 'Europe/Nowhere' WHERE location_id = %s",
            (row["location_id"],),
        )

"""The sites page (locations, carriers, lanes): its form mapping with plain values, and its
callbacks as the browser calls them against the real app and database, as each role."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.errors import InvalidRecordError
from coldchain.gs1 import check_digit
from dashboard.pages import sites as page
from services import locations as service
from services.caller import Caller
from tests.dashboard.callbacks import call
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

SITES, CARRIERS, LANES = (page.BY_TABLE[t] for t in ("locations", "carriers", "lanes"))


def gln(body: str) -> str:
    """A valid GLN from its first 12 digits."""
    return body + str(check_digit(body))


BASEL = {
    "gln": gln("409876500001"),
    "name": " DC Basel ",
    "address": "",
    "lat": 47.56,
    "lon": 7.59,
    "geofence_m": 250,
}
BERN = {**BASEL, "gln": gln("409876500002"), "name": "Bern hospital", "lat": 46.95, "lon": 7.44}


def test_the_form_becomes_the_services_fields() -> None:
    body = page.record_body(SITES, BASEL)
    assert body == {k: v for k, v in BASEL.items() if k != "address"} | {"name": "DC Basel"}
    assert page.validated(SITES, body).location_id == BASEL["gln"]


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        (SITES, {**BASEL, "gln": "4098765000011"}, "gln"),
        (SITES, {**BASEL, "lat": 91}, "lat"),
        (SITES, {**BASEL, "geofence_m": None}, "geofence_m"),
        (CARRIERS, {"name": "Kühne", "code": "lower"}, "code"),
        (LANES, {"code": "A", "origin_location_id": "X", "destination_location_id": "Y"}, "mode"),
        (
            LANES,
            {"code": "A", "origin_location_id": "X", "destination_location_id": "X", "mode": "sea"},
            "destination_location_id",
        ),
    ],
)
def test_a_bad_form_names_the_field(
    section: page.Section, values: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        page.validated(section, page.record_body(section, values))
    assert caught.value.field == field


def _add(server: LiveServer, cookie: str, section: page.Section, values: dict[str, Any]) -> Any:
    return call(
        server,
        cookie,
        trigger=f"{section.id('add')}.n_clicks",
        output=f"{section.id('feedback')}.children",
        values={f"{section.id(k)}.value": v for k, v in values.items()},
    )


def _listed(server: LiveServer, cookie: str, section: page.Section) -> Any:
    return call(
        server,
        cookie,
        trigger=f"{section.id('changed')}.data",
        output=f"{section.id('list')}.children",
    )


def _retire(
    server: LiveServer, cookie: str, section: page.Section, key: Any, versions: Any, reason: str
) -> Any:
    return call(
        server,
        cookie,
        trigger=f"{section.id('retire')}.n_clicks",
        output=f"{section.id('feedback')}.children",
        values={
            f"{section.id('pick')}.value": key,
            f"{section.id('reason')}.value": reason,
            f"{section.id('versions')}.data": versions,
        },
    )


def _rows(dsn: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.integration
def test_only_an_admin_registers_sites_and_lanes(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    for role in ("viewer", "operator", "qa"):
        out = _add(web_server, session_cookie(people[role]), SITES, BASEL)
        assert out[SITES.id("feedback")]["children"] == (
            f"Your role ({role}) cannot change sites: nothing was saved."
        )
    assert _rows(db_dsn, "SELECT gln FROM locations WHERE gln IS NOT NULL") == []

    admin = session_cookie(people["admin"])
    out = _add(web_server, admin, SITES, BASEL)
    assert out[SITES.id("feedback")] == {
        "children": f"Registered DC Basel ({BASEL['gln']}).",
        "className": "feedback ok",
    }
    _add(web_server, admin, SITES, BERN)
    # A lane to a site nobody registered: refused, naming the form's field.
    lane = {
        "code": "BSL-BRN",
        "origin_location_id": BASEL["gln"],
        "destination_location_id": "4098765000999",
        "mode": "road",
    }
    out = _add(web_server, admin, LANES, lane)
    assert out[LANES.id("feedback")]["children"] == (
        "Not saved — Destination site: no site '4098765000999' is registered"
    )
    out = _add(web_server, admin, LANES, {**lane, "destination_location_id": BERN["gln"]})
    assert out[LANES.id("feedback")]["className"] == "feedback ok", out
    out = _add(web_server, admin, CARRIERS, {"name": "Alpine Cold Freight", "code": "ACFR"})
    assert out[CARRIERS.id("feedback")]["children"] == "Registered Alpine Cold Freight (ACFR)."
    assert _rows(
        db_dsn,
        "SELECT actor, entity FROM audit_log"
        " WHERE entity IN ('locations', 'lanes', 'carriers') ORDER BY seq",
    ) == [
        {"actor": people["admin"].username, "entity": t}
        for t in ("locations", "locations", "lanes", "carriers")
    ]

    # A viewer reads the lists; the lane's pick lists offer the live sites.
    viewer = session_cookie(people["viewer"])
    listed = _listed(web_server, viewer, SITES)
    assert [o["value"] for o in listed[SITES.id("pick")]["options"]] == [BASEL["gln"], BERN["gln"]]
    assert "BSL-BRN" in str(_listed(web_server, viewer, LANES)[LANES.id("list")])


@pytest.mark.integration
def test_retiring_needs_the_version_listed_and_lanes_go_first(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    admin = session_cookie(people["admin"])
    _add(web_server, admin, SITES, BASEL)
    _add(web_server, admin, SITES, BERN)
    lane = {
        "code": "BSL-BRN",
        "origin_location_id": BASEL["gln"],
        "destination_location_id": BERN["gln"],
        "mode": "road",
    }
    _add(web_server, admin, LANES, lane)
    versions = _listed(web_server, admin, SITES)[SITES.id("versions")]["data"]
    assert versions == {BASEL["gln"]: 1, BERN["gln"]: 1}

    out = _retire(web_server, admin, SITES, BASEL["gln"], versions, "")
    assert out[SITES.id("feedback")]["children"] == "Not saved — Reason: say why (required)"
    out = _retire(web_server, admin, SITES, BASEL["gln"], versions, "site closed")
    assert (
        "used by live lane(s) BSL-BRN: retire them first" in out[SITES.id("feedback")]["children"]
    )

    [lane_row] = _rows(db_dsn, "SELECT lane_id FROM lanes")
    lane_versions = _listed(web_server, admin, LANES)[LANES.id("versions")]["data"]
    out = _retire(web_server, admin, LANES, lane_row["lane_id"], lane_versions, "lane closed")
    assert out[LANES.id("feedback")]["className"] == "feedback ok", out

    # Someone renames the site after the list was loaded: the retirement is refused.
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        service.update_record(
            conn,
            Caller.console(),
            "locations",
            key=BASEL["gln"],
            changes={"name": "DC Basel North"},
            expected_version=1,
            reason="renamed",
        )
    out = _retire(web_server, admin, SITES, BASEL["gln"], versions, "site closed")
    assert "someone changed it since you opened it" in out[SITES.id("feedback")]["children"]
    versions = _listed(web_server, admin, SITES)[SITES.id("versions")]["data"]
    out = _retire(web_server, admin, SITES, BASEL["gln"], versions, "site closed")
    assert out[SITES.id("feedback")]["children"] == f"Retired DC Basel North ({BASEL['gln']})."
    assert _rows(
        db_dsn, "SELECT reason FROM audit_log WHERE entity = 'locations' AND action = 'update'"
    ) == [{"reason": "renamed"}, {"reason": "site closed"}]


@pytest.mark.integration
def test_an_admin_sets_a_sites_time_zone_and_the_list_shows_its_local_time(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    admin = session_cookie(people["admin"])
    out = _add(web_server, admin, SITES, {**BASEL, "time_zone": "Europe/Zurich"})
    assert out[SITES.id("feedback")]["className"] == "feedback ok", out
    _add(web_server, admin, SITES, BERN)
    versions = _listed(web_server, admin, SITES)[SITES.id("versions")]["data"]

    def set_zone(cookie: str, zone: str, reason: str) -> Any:
        return call(
            web_server,
            cookie,
            trigger=f"{page.ZONE_SET}.n_clicks",
            output=f"{SITES.id('feedback')}.children",
            values={
                f"{page.ZONE_SITE}.value": BERN["gln"],
                f"{page.ZONE_NEW}.value": zone,
                f"{page.ZONE_REASON}.value": reason,
                f"{SITES.id('versions')}.data": versions,
            },
        )

    out = set_zone(session_cookie(people["operator"]), "Europe/Zurich", "Bern is in Switzerland")
    assert out[SITES.id("feedback")]["children"] == (
        "Your role (operator) cannot change sites: nothing was saved."
    )
    out = set_zone(admin, "Europe/Zurich", "")
    assert out[SITES.id("feedback")]["children"] == "Not saved — Reason: say why (required)"
    out = set_zone(admin, "Europe/Nowhere", "Bern is in Switzerland")
    assert out[SITES.id("feedback")]["children"].startswith(
        "Not saved — Time zone: 'Europe/Nowhere' is not a known IANA time zone"
    )
    out = set_zone(admin, "Europe/Zurich", "Bern is in Switzerland")
    assert out[SITES.id("feedback")]["children"] == (
        f"Bern hospital ({BERN['gln']}) is now in Europe/Zurich."
    )
    assert _rows(db_dsn, "SELECT name, time_zone FROM locations ORDER BY name") == [
        {"name": "Bern hospital", "time_zone": "Europe/Zurich"},
        {"name": "DC Basel", "time_zone": "Europe/Zurich"},
    ]
    listed = str(_listed(web_server, admin, SITES)[SITES.id("list")])
    # "now 2026-12-05 14:05 UTC (15:05 DC Basel, CET)": the site's own time beside UTC.
    assert "DC Basel, CE" in listed and "Bern hospital, CE" in listed

"""One definition of a shipment's limits and of "offline", against the real database and web
process: what the rules engine judges by is what the report, the passport and the shipment
chart show, and the fleet view calls offline exactly the loggers the engine raises "no data" for.

The shipment below has rules in every layer: the product row (2–8 °C, freeze 0 °C), the rules
file (the product's alarm delay, the shipment's freeze limit), two stored versions of the
product's rules (v2 in force: high 6.5 °C) and one of the shipment's (low 3 °C, delay 5 min),
all stored through the API. Its logger sits at 7 °C for 30 min: in range for the product row,
an alarmed excursion for the rules in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from dashboard import ids
from dashboard.pages import PageContext
from dashboard.pages.shipment import devices_table
from db.queries import shipments as shipment_q
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, add_device, add_product, add_shipment, assign, ingest

pytestmark = pytest.mark.integration

REFERENCE = "SHP-LIM"
EPC = "urn:epc:id:sgtin:9506000.013435.77"  # GTIN 09506000134352, serial 77
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = NOW - timedelta(hours=3)
WHY = "CAPA-2026-031: lane validated for a narrower range"
RULES_FILE = f"""
[products."09506000134352"]
temperature = {{ alarm_delay_min = 20 }}

[shipments."{REFERENCE}"]
temperature = {{ freeze_c = 0.5 }}
"""
#: What every layer together gives (and what the product row alone would not).
IN_FORCE = {"low_c": 3.0, "high_c": 6.5, "freeze_c": 0.5, "alarm_delay_s": 300.0}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """This test's settings with a rules file (the engine and the web process both read it)."""
    path = tmp_path / "rules.toml"
    path.write_text(RULES_FILE, "utf-8")
    return settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"rules_file": path})}
    )


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


async def _put(http: httpx.AsyncClient, admin: Person, path: str, body: dict[str, Any]) -> None:
    r = await http.put(path, params={"reason": WHY}, json=body, headers=admin.headers)
    assert r.status_code == 200, r.text


async def _dash(http: httpx.AsyncClient, cookie: str, payload: dict[str, Any]) -> dict[str, Any]:
    http.cookies.set("coldchain_session", cookie)
    r = await http.post("/_dash-update-component", json=payload)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["response"]
    return body


async def _shipment_page(http: httpx.AsyncClient, cookie: str) -> dict[str, Any]:
    """The shipment page's refresh callback, as the browser calls it."""
    outputs = [
        (ids.SHIPMENT_HEADER, "children"),
        (ids.SHIPMENT_TEMP_GRAPH, "figure"),
        (ids.SHIPMENT_RH_GRAPH, "figure"),
        (ids.SHIPMENT_EXCURSIONS, "children"),
        (ids.SHIPMENT_ALERTS, "children"),
        (ids.SHIPMENT_DEVICES, "children"),
        (ids.SHIPMENT_LEGS, "children"),
        (ids.SHIPMENT_UNITS, "children"),
        (ids.SHIPMENT_UPDATED, "children"),
        (ids.SHIPMENT_TIMELINE, "children"),
    ]
    return await _dash(
        http,
        cookie,
        {
            "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [
                {"id": ids.SHIPMENT_INTERVAL, "property": "n_intervals", "value": 1},
                {"id": ids.SHIPMENT_CHANGED, "property": "data", "value": None},
            ],
            "state": [{"id": ids.SHIPMENT_KEY, "property": "data", "value": REFERENCE}],
            "changedPropIds": [f"{ids.SHIPMENT_INTERVAL}.n_intervals"],
        },
    )


def _shape(figure: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in figure["layout"].get("shapes", []) if s.get("name") == name), None)


async def test_the_report_passport_and_chart_show_the_limits_the_engine_judges_by(
    web_server: LiveServer,
    pool: AsyncConnectionPool,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)  # 2–8 °C, freeze 0 °C, no alarm delay
        add_device(conn, "LOG-L", interval_s=60)
        shipment_id = add_shipment(conn, REFERENCE, product=gtin)
        assign(conn, "LOG-L", shipment_id, START)
        conn.execute(
            "INSERT INTO units (epc, kind, gtin, serial, lot) VALUES (%s, 'sgtin', %s, '77', 'L9')",
            (EPC, gtin),
        )
        conn.execute(
            "INSERT INTO shipment_units (shipment_id, epc, during)"
            " VALUES (%s, %s, tstzrange(%s, NULL))",
            (shipment_id, EPC, START),
        )
    admin = people["admin"]
    http = httpx.AsyncClient(base_url=web_server.url, timeout=30)
    await _put(http, admin, f"/api/v1/products/{gtin}/rules", {"temperature": {"high_c": 7.0}})
    await _put(http, admin, f"/api/v1/products/{gtin}/rules", {"temperature": {"high_c": 6.5}})
    await _put(
        http,
        admin,
        f"/api/v1/shipments/{REFERENCE}/rules",
        {"temperature": {"low_c": 3.0, "alarm_delay_min": 5}},
    )
    temps = [7.0 if 60 <= m < 90 else 5.0 for m in range(170)]
    ingest(db_dsn, [Reading("LOG-L", START + timedelta(minutes=m), t) for m, t in enumerate(temps)])

    # The engine judges: one alarmed high excursion, against the rules in force.
    engine = RulesEngine(pool, web_server.settings, clock=Clock(NOW))
    await engine.setup()
    await engine.process_changes()
    with psycopg.connect(db_dsn) as conn:
        excursions = conn.execute(
            "SELECT direction, start_ts, alarm, thresholds FROM excursions"
            " WHERE superseded_at IS NULL"
        ).fetchall()
    assert [(e[0], e[1], e[2]) for e in excursions] == [
        ("high", START + timedelta(minutes=60), True)
    ]
    judged = excursions[0][3]
    engine_limits = {
        "low_c": judged["low_c"],
        "high_c": judged["high_c"],
        "freeze_c": judged["freeze_c"],
        "alarm_delay_s": judged["alarm_delay_min"] * 60,
    }
    assert engine_limits == IN_FORCE
    rules_file = str(web_server.settings.alerts.rules_file)
    assert judged["sources"][-5:] == [
        f"product {gtin} (row)",
        f"{rules_file}: products.{gtin}",
        f"stored product rules {gtin} v2",
        f"{rules_file}: shipments.{REFERENCE}",
        f"stored shipment rules {REFERENCE} v1",
    ]

    # The report (as of now, after every version was stored).
    as_of = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    await asyncio.sleep((as_of - datetime.now(UTC)).total_seconds() + 0.05)
    r = await http.get(
        f"/api/v1/shipments/{REFERENCE}/report.json",
        params={"as_of": as_of.isoformat()},
        headers=people["viewer"].headers,
    )
    assert r.status_code == 200, r.text
    evidence = r.json()["evidence"]
    assert evidence["rules"]["temperature"] == IN_FORCE
    assert evidence["rules"]["in_force"]["sources"] == judged["sources"]

    # The passport of a unit on board.
    r = await http.get(
        "/api/v1/units/passport",
        params={"id": EPC, "include_readings": "false"},
        headers=people["viewer"].headers,
    )
    assert r.status_code == 200, r.text
    figures = r.json()["figures"]
    limits = figures["limits"]
    assert {k: limits[k] for k in IN_FORCE} == IN_FORCE
    assert limits["sources"] == judged["sources"]
    assert [(e["direction"], e["alarm"]) for e in figures["excursions"]] == [("high", True)]

    # The shipment chart's band and freeze line, and the header's range.
    page = await _shipment_page(http, session_cookie(people["viewer"]))
    await http.aclose()
    figure = page[ids.SHIPMENT_TEMP_GRAPH]["figure"]
    band = _shape(figure, "range")
    freeze = _shape(figure, "freeze-limit")
    assert band is not None and (band["y0"], band["y1"]) == (IN_FORCE["low_c"], IN_FORCE["high_c"])
    assert freeze is not None and freeze["y0"] == IN_FORCE["freeze_c"]
    assert "3–6.5 °C" in str(page[ids.SHIPMENT_HEADER]["children"])


async def test_the_fleet_view_and_the_engine_agree_on_which_logger_is_offline(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    # One logger per shipment, every 60 s, silent for: 1 min, 3 min (a gap: past 2 × interval),
    # 9 min, 11 min and 30 min. Offline is past 10 × the interval, for everyone.
    silent_min = {"LOG-A": 1, "LOG-B": 3, "LOG-C": 9, "LOG-D": 11, "LOG-E": 30}
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        for device in silent_min:
            add_device(conn, device, interval_s=60)
            assign(conn, device, add_shipment(conn, f"SHP-{device}", product=gtin), START)
        found = conn.execute("SELECT now()").fetchone()
        assert found is not None
        now: datetime = found[0]
    ingest(
        db_dsn,
        [
            Reading(device, t, 5.0)
            for device, silent in silent_min.items()
            for t in (now - timedelta(minutes=silent + m) for m in range(20))
        ],
    )
    with psycopg.connect(db_dsn) as conn:
        # The readings arrived as they were measured (not a backlog being delivered now).
        conn.execute("UPDATE device_state SET received_at = ts")

    # The fleet view's own query with the dashboard's own factor (as fleet.py calls it), before
    # the engine's alerts colour the shipments "alarm".
    page = PageContext(settings, None)  # type: ignore[arg-type]  # only its settings are used
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        fleet = shipment_q.fleet_overview(conn=conn, offline_factor=page.offline_factor)
    offline = {ref.removeprefix("SHP-") for ref, _, cond, *_ in fleet if cond == "offline"}

    engine = RulesEngine(pool, settings, clock=Clock(now))
    await engine.setup()
    await engine.process_changes()
    await engine.check_offline()
    with psycopg.connect(db_dsn) as conn:
        raised = {
            r[0]
            for r in conn.execute(
                "SELECT device_id FROM alerts WHERE rule_key = 'device_offline'"
            ).fetchall()
        }
    assert raised == {"LOG-D", "LOG-E"}
    assert offline == raised
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        listed = shipment_q.list_shipments(conn=conn, offline_factor=page.offline_factor).items
    assert {r["reference"].removeprefix("SHP-") for r in listed if r["n_devices_offline"]} == raised
    # The shipment page's loggers table marks the same ones (its own pure function, its rows).
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        marked = set()
        for device in silent_min:
            detail = shipment_q.get_shipment_detail(
                conn=conn, key=f"SHP-{device}", offline_factor=page.offline_factor
            )
            cells = devices_table(detail["devices"], now, offline_factor=page.offline_factor)
            if "device-offline" in str(cells):
                marked.add(device)
    assert marked == raised

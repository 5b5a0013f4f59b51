"""The walking skeleton, end to end, against the real services.

simulator → MQTT (Mosquitto) → ingester → TimescaleDB → rules engine → API and dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from alerts.service import run_rules_engine
from coldchain.settings import Settings
from ingest.service import Ingester
from ingest.sink import TimescaleSink
from services.caller import Caller
from services.fleet import FleetRegistration, registrar
from simulator.fleet import Fleet
from simulator.groundtruth import GroundTruth
from simulator.scenario import load_scenario
from simulator.service import run_simulation
from tests.fixtures.auth import Person
from tests.fixtures.engines import changes_behind
from tests.fixtures.web import LiveServer, screenshot

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def platform(settings: Settings) -> AsyncIterator[Ingester]:
    """The ingester and the rules engine running, as `coldchain ingest` and `coldchain rules`."""
    stop = asyncio.Event()
    async with AsyncConnectionPool(settings.db.dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        ingester = Ingester(settings, TimescaleSink(pool))
        tasks = [
            asyncio.create_task(ingester.run(stop), name="ingest"),
            asyncio.create_task(run_rules_engine(settings, stop), name="rules"),
        ]
        await asyncio.wait_for(ingester.connected.wait(), 20)
        try:
            yield ingester
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)


def _registrar(settings: Settings, dsn: str) -> Callable[[Fleet], Awaitable[FleetRegistration]]:
    """The fleet registered through the services, as `coldchain simulate` does."""
    return registrar(dsn, Caller.console(), topic_root=settings.mqtt.topic_root, broker_dir=None)


def query(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


async def settled(dsn: str, within: float = 90.0) -> None:
    """Wait until the ingester stopped adding readings and the rules engine caught up."""
    last = -1
    for _ in range(int(within / 0.5)):
        ((n,),) = query(dsn, "SELECT count(*) FROM readings")
        pending = changes_behind(dsn)
        if n == last and n > 0 and pending == 0:
            return
        last = n
        await asyncio.sleep(0.5)
    raise AssertionError(f"the platform did not settle within {within} s ({last} readings)")


async def test_walking_skeleton(
    settings: Settings,
    db_dsn: str,
    web_server: LiveServer,
    browser,
    people: dict[str, Person],
    session_cookie,
) -> None:
    # The demo fleet: a 2–8 °C vaccine; shipment 1's reefer fails and it reaches ~12 °C.
    scenario = load_scenario("demo").model_copy(update={"duration_h": 2.0, "history_h": None})
    scenario = scenario.model_copy(update={"faults": type(scenario.faults)()})  # no faults here
    async with platform(settings):
        result = await run_simulation(
            settings, scenario=scenario, speed=None, register=_registrar(settings, db_dsn)
        )
        assert result.stats.failed == 0
        await settled(db_dsn)

    hot = result.fleet.shipments[0].reference
    truth = result.ground_truth.shipment(hot)
    assert any(e.max_c > 11.5 for _, e in truth.excursions), "the scenario has its 12 °C stretch"

    # The rules engine recorded the excursion and opened one alert, at the reading's time.
    ((alerts, triggered),) = query(
        db_dsn,
        """SELECT count(*), min(a.triggered_at) FROM alerts a JOIN shipments s USING (shipment_id)
           WHERE s.reference = %s AND a.state <> 'resolved'""",
        hot,
    )
    assert alerts == 1
    true_alarm = min(e.start for _, e in truth.excursions if e.alarm) + timedelta(minutes=15)
    assert abs(triggered - true_alarm) <= timedelta(seconds=2 * result.fleet.interval_s)

    # The API returns the shipment with its latest reading and the open alert.
    # The API and the dashboard need a login: a logistics viewer's token and session.
    viewer = people["viewer"]
    async with httpx.AsyncClient(
        base_url=web_server.url, timeout=20, headers=viewer.headers
    ) as http:
        detail = (await http.get(f"/api/v1/shipments/{hot}")).json()
        open_alerts = (await http.get("/api/v1/alerts", params={"state": "open"})).json()
    assert detail["reference"] == hot
    latest = detail["latest_reading"]
    assert latest is not None and latest["temp_c"] is not None
    last_true = max(d.last_reading for d in truth.devices if d.last_reading)
    assert datetime.fromisoformat(latest["ts"]) == last_true
    assert any(a["shipment_reference"] == hot for a in _items(open_alerts))

    # The dashboard's fleet page lists the shipment.
    browser.get("about:blank")
    browser.delete_all_cookies()
    browser.get(web_server.url + "/_dash-dependencies")
    browser.add_cookie({"name": "coldchain_session", "value": session_cookie(viewer), "path": "/"})
    browser.get(web_server.url + "/")
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), hot))
    for s in result.fleet.shipments:
        assert s.reference in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, "end_to_end_fleet")


def _items(payload: Any) -> list[dict[str, Any]]:
    return list(payload["items"]) if isinstance(payload, dict) else list(payload)


async def test_faulty_scenario_matches_the_ground_truth(settings: Settings, db_dsn: str) -> None:
    """Coverage gaps, re-uploads out of order, duplicates, skewed clocks, malformed messages:
    the platform's excursions still match what really happened within one logging interval."""
    scenario = load_scenario("summer_reefer_failure")
    async with platform(settings):
        result = await run_simulation(
            settings, scenario=scenario, speed=None, register=_registrar(settings, db_dsn)
        )
        await settled(db_dsn, within=180)
    truth: GroundTruth = result.ground_truth
    tolerance = timedelta(seconds=truth.interval_s)
    assert result.faults, "the scenario injects faults"
    (dead,) = query(db_dsn, "SELECT count(*) FROM dead_letters")[0]
    assert dead > 0, "malformed messages were dead-lettered"

    found = query(
        db_dsn,
        """SELECT s.reference, e.device_id, e.direction, e.start_ts, e.end_ts, e.n_readings
           FROM excursions e JOIN shipments s USING (shipment_id)
           WHERE e.superseded_at IS NULL""",
    )
    by_device: dict[str, list[tuple]] = {}
    for _ref, device, direction, start, end, n in found:
        by_device.setdefault(device, []).append((direction, start, end, n))

    checked = 0
    for shipment in truth.shipments:
        for device in shipment.devices:
            platform_excursions = by_device.get(device.device_id, [])
            for true in device.excursions:
                if true.n_readings < 3:
                    continue  # a brush with the limit: sensor noise decides it either way
                match = [
                    p
                    for p in platform_excursions
                    if p[0] == true.direction and abs(p[1] - true.start) <= tolerance
                ]
                assert match, f"{device.device_id}: true excursion {true} not found"
                end = match[0][2]
                if true.end is not None and end is not None:
                    assert abs(end - true.end) <= tolerance, (device.device_id, true, match[0])
                checked += 1
    assert checked >= 5, "the scenario should produce real excursions to compare"
    assert datetime.now(UTC) > truth.end

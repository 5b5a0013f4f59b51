"""The maps in a real headless Chromium with no internet (this machine has none): the basemap the
app serves itself is drawn, no page with a map logs a console error, an alarm shipment right
beside an OK one is the marker on top at the default zoom, and a shipment in excursion shows its
route, red where it was out of range, with the excursion's start marked.

What MapLibre drew is read from the map itself (``queryRenderedFeatures``), not from the figure
the server sent. Screenshots (1600×1000) go to artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from coldchain.telemetry import Reading
from tests.dashboard.test_browser import (
    MAP_WAIT_S,
    _console_errors,
    _login_as,
    _open,
    _text_of,
    _wait,
)
from tests.fixtures.auth import Person
from tests.fixtures.web import (
    LiveServer,
    add_alert,
    add_device,
    add_excursion,
    add_product,
    add_shipment,
    assign,
    ingest,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# What MapLibre rendered in one map (``arguments[0]``: the Graph's id), once the map and every
# source (the basemap's GeoJSON included) have loaded; null before. Per Plotly trace (by name):
# the features rendered; for the basemap: the land features rendered; ``fetched``: what the page
# fetched; ``layer_sources``: where the basemap's sources are; ``glyphs``: the font server.
RENDERED = """
const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const sub = g && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot;
if (!sub || !sub.map || !sub.map.loaded()) return null;
const m = sub.map;
const style = m.getStyle();
if (!style.layers.every(l => !l.source || m.isSourceLoaded(l.source))) return null;
const traces = {};
for (const t of g._fullData) {
  const ids = style.layers.filter(l => l.id.includes(t.uid)).map(l => l.id);
  traces[t.name] = ids.length ? m.queryRenderedFeatures({layers: ids}).length : 0;
}
const land = style.layers.filter(l => l.id === 'land');
// every resource the page itself fetched (scripts, styles, callbacks; MapLibre fetches the
// basemap from a worker), and the sources of the map's own layers
const urls = performance.getEntriesByType('resource').map(e => e.name);
const own = g._fullLayout.map.style.sources || {};
const layerSources = Object.keys(own).sort().map(k => own[k].data);
return {
  traces: traces,
  land: land.length ? m.queryRenderedFeatures({layers: land.map(l => l.id)}).length : 0,
  fetched: urls,
  layer_sources: layerSources,
  glyphs: style.glyphs || null,
};
"""

# The name of the trace whose marker is rendered on top at a position (``arguments[1]``:
# [lon, lat]) in a map, or null while the map is (re)drawing or has no marker there yet.
TOP_AT = """
const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const sub = g && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot;
if (!sub || !sub.map || !sub.map.loaded()) return null;
const m = sub.map;
const circles = m.getStyle().layers.filter(l => l.type === 'circle').map(l => l.id);
const hits = m.queryRenderedFeatures(m.project(arguments[1]), {layers: circles});
if (!hits.length) return null;
const trace = g._fullData.find(t => hits[0].layer.id.includes(t.uid));
return trace ? trace.name : '?';
"""


def _rendered(driver: WebDriver, graph: str) -> dict[str, Any] | None:
    picture: dict[str, Any] | None = driver.execute_script(RENDERED, graph)
    return picture


def _until_rendered(driver: WebDriver, graph: str, ready: Any) -> dict[str, Any]:
    """The map's rendered picture, once ``ready(picture)`` holds (MapLibre renders in software
    here: up to :data:`MAP_WAIT_S`)."""
    seen: dict[str, Any] = {}

    def check(d: WebDriver) -> bool:
        picture = _rendered(d, graph)
        if picture is None:
            return False
        seen.clear()
        seen.update(picture)
        return bool(ready(picture))

    _wait(driver, MAP_WAIT_S).until(check)
    return seen


def _add_site(
    conn: psycopg.Connection[Any], location_id: str, name: str, lat: float, lon: float
) -> None:
    conn.execute(
        "INSERT INTO locations (location_id, name, lat, lon) VALUES (%s, %s, %s, %s)",
        (location_id, name, lat, lon),
    )


def _seed(dsn: str) -> dict[str, Any]:
    """Three shipments in transit: SHP-ALARM (critical alert, an excursion in the middle of its
    trip from Rotterdam to Basel, on a lane with both sites) right beside SHP-OK, and SHP-FAR
    in Milan so that the default view takes in both."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=6)
    out: dict[str, Any] = {"now": now}
    with psycopg.connect(dsn) as conn:
        product = add_product(conn)
        _add_site(conn, "SITE-RTM", "Rotterdam DC", 51.90, 4.45)
        _add_site(conn, "SITE-BSL", "Basel hub", 47.56, 7.59)
        lane = conn.execute(
            "INSERT INTO lanes (code, origin_location_id, destination_location_id, mode)"
            " VALUES ('RTM-BSL', 'SITE-RTM', 'SITE-BSL', 'road') RETURNING lane_id"
        ).fetchone()
        assert lane is not None
        for device in ("LOG-ALARM", "LOG-OK", "LOG-FAR"):
            add_device(conn, device, interval_s=300)
        out["alarm"] = add_shipment(conn, "SHP-ALARM", product=product)
        conn.execute(
            "UPDATE shipments SET lane_id = %s WHERE shipment_id = %s", (lane[0], out["alarm"])
        )
        out["ok"] = add_shipment(conn, "SHP-OK", product=product)
        out["far"] = add_shipment(
            conn, "SHP-FAR", product=product, origin="Lyon", destination="Milan"
        )
        for device, shipment in (("LOG-ALARM", "alarm"), ("LOG-OK", "ok"), ("LOG-FAR", "far")):
            assign(conn, device, out[shipment], start)
        add_alert(conn, out["alarm"], triggered_at=now - timedelta(hours=2), device_id="LOG-ALARM")
        out["excursion_start"] = now - timedelta(hours=3)
        add_excursion(
            conn,
            out["alarm"],
            "LOG-ALARM",
            start=out["excursion_start"],
            end=now - timedelta(hours=2),
            last_out=now - timedelta(hours=2, minutes=5),
        )
    readings = []
    steps = 6 * 12
    for k in range(steps):
        ts = start + timedelta(minutes=5 * k)
        f = k / (steps - 1)  # Rotterdam → Basel
        hot = out["excursion_start"] <= ts < now - timedelta(hours=2)
        lat, lon = 51.90 + (47.56 - 51.90) * f, 4.45 + (7.59 - 4.45) * f
        readings.append(Reading("LOG-ALARM", ts, 9.6 if hot else 5.0, 50.0, lat, lon))
        # SHP-OK's last position is right beside SHP-ALARM's (about 1 km): one marker at the
        # default zoom
        readings.append(Reading("LOG-OK", ts, 4.8, 50.0, lat + 0.008, lon + 0.008))
        readings.append(Reading("LOG-FAR", ts, 5.1, 50.0, 45.46, 9.19))
    ingest(dsn, readings)
    out["alarm_at"] = [7.59, 47.56]  # [lon, lat] of SHP-ALARM's latest position
    return out


def test_the_fleet_map_works_offline_with_the_alarm_on_top(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    browser.set_window_size(1600, 1000)
    for role in ("viewer", "operator", "qa", "admin"):
        _login_as(browser, web_server, session_cookie(people[role]))
        _open(browser, web_server.url + "/")
        picture = _until_rendered(
            browser, "fleet-map", lambda p: p["traces"].get("Alarm") and p["land"] > 0
        )
        # The basemap is the app's own (the 1:110m overview under the fleet): land drawn, every
        # source from this origin, no fonts.
        assert picture["land"] > 0
        assert picture["layer_sources"] == [
            "/assets/basemap/110m/borders.geojson",
            "/assets/basemap/110m/land.geojson",
        ]
        assert all(u.startswith(web_server.url + "/") for u in picture["fetched"])
        assert picture["glyphs"] is None
        assert picture["traces"] == {"OK": 2, "Alarm": 1}
        # Right beside an OK shipment, the alarm is the marker on top.
        top = _wait(browser, MAP_WAIT_S).until(
            lambda d: d.execute_script(TOP_AT, "fleet-map", seeded["alarm_at"])
        )
        assert top == "Alarm"
        screenshot(browser, f"fleet-map-{role}")
        # A few live refreshes (every 0.7 s here) and still no console error.
        before = _text_of(browser, "#fleet-updated")
        _wait(browser).until(lambda d: _text_of(d, "#fleet-updated") != before)  # noqa: B023
        assert _console_errors(browser) == []


def test_a_shipment_in_excursion_shows_its_route_offline(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    _seed(db_dsn)
    browser.set_window_size(1600, 1000)
    for role in ("viewer", "operator", "qa", "admin"):
        _login_as(browser, web_server, session_cookie(people[role]))
        _open(browser, web_server.url + "/shipments/SHP-ALARM")
        picture = _until_rendered(
            browser,
            "shipment-route-map",
            lambda p: p["traces"].get("Excursion start") and p["land"] > 0,
        )
        traces = picture["traces"]
        assert traces["Excursion start"] == 1
        assert traces["In range"] > 0 and traces["Out of range"] > 0
        assert traces["Origin"] == 1 and traces["Destination"] == 1
        assert traces["Latest position"] == 1
        assert all(u.startswith(web_server.url + "/") for u in picture["fetched"])
        note = browser.execute_script(
            "return document.querySelector('#shipment-route-note').innerText;"
        )
        assert "outside 2–8 °C" in note
        browser.execute_script(
            "document.querySelector('#shipment-route-map').scrollIntoView({block: 'center'});"
        )
        screenshot(browser, f"shipment-route-{role}")
        assert _console_errors(browser) == []

"""Page loads: the fleet page with 5,000 active shipments and the shipment page of a 30-day
shipment at one-minute logging (43,200 readings), at the API and in a headless Chromium.

Run: ``.venv/bin/python -m bench.web_pages [--shipments 5000] [--days 30] [--repeat 20]``
(``make bench`` runs it). It starts a private PostgreSQL (``bench._common.local_stack``), runs
the migrations, and serves the app as ``coldchain web`` does, in a process of its own.

The data (built in SQL with ``generate_series``, a few seconds)
---------------------------------------------------------------
``--shipments`` shipments in transit (5,000 by default), one 2–8 °C vaccine, each with its own
logger (15-minute interval), a position across Europe and one latest reading (in ``readings``
and ``device_state``, as the ingester leaves them); 3 % of them are out of range, 2 % have an
open critical alert and 3 % an open warning. Plus ``LONG-30D``: one logger reading every minute
for ``--days`` days (43,200 readings), with two recorded excursions (50 min at 11 °C, 25 min at
−0.5 °C) for the chart to shade.

What is measured (``--repeat`` times each, after two unmeasured calls)
----------------------------------------------------------------------
* **API**, wall time per request from a keep-alive client (bearer token from
  ``POST /api/v1/auth/login``): the fleet list (the default page and the largest page), one
  shipment in full, its readings over the whole 30 days (down-sampled server-side with
  ``time_bucket``), and the dashboard callbacks the two pages make on loading
  (``POST /_dash-update-component`` with the session cookie of a dashboard login): the fleet
  table, the fleet map with its counts, the shipment's chart and tables, and its MKT and
  stability budget. Target: p95 under 300 ms.
* **Browser**, headless Chromium (Debian's, with the browser tests' options): from navigation
  start until the data is drawn, read from ``performance.now()`` by a script the browser runs
  in every page (:data:`WATCHER`). The fleet page: when its table has rows, and when every
  shipment is a rendered marker on the map; the shipment page: when its header shows the
  reference, the temperature line is drawn and the MKT and budget gauges are drawn. Target:
  p95 under 2 s. The maps draw the app's own offline basemap (the default: no tiles are
  configured), and WebGL is software-rendered (no GPU here): the map is slower here than on a
  desktop.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import PASSWORD, local_stack
from coldchain.settings import Settings
from launcher.localstack import free_port
from security import accounts
from security.audit import AuditContext
from tests.fixtures.web import chromium_options

GTIN = "09506000134352"
LONG_REF = "LONG-30D"
LONG_DEVICE = "LONG-LOG"
API_TARGET_MS = 300.0
BROWSER_TARGET_MS = 2000.0
USERNAME = "bench.viewer"

CITIES = [
    ("Basel", 47.56, 7.59),
    ("Rotterdam", 51.92, 4.48),
    ("Milan", 45.46, 9.19),
    ("Lyon", 45.76, 4.84),
    ("Hamburg", 53.55, 9.99),
    ("Madrid", 40.42, -3.70),
    ("Warsaw", 52.23, 21.01),
    ("Dublin", 53.35, -6.26),
]

# Runs at the start of every document: marks (ms since navigation start) when the page's data
# is drawn, checked on every animation frame.
WATCHER = r"""
(() => {
  const marks = {};
  window.__bench = marks;
  const now = () => performance.now();
  const mark = (name, ok) => { if (marks[name] === undefined && ok) marks[name] = now(); };
  // Markers on the fleet map. queryRenderedFeatures over thousands of markers costs tens of ms
  // of the main thread, so it only runs once the marker sources have loaded their data.
  function mapMarkers() {
    const g = document.querySelector('#fleet-map .js-plotly-plot');
    const sub = g && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot;
    if (!sub || !sub.map) return 0;
    // Not map.loaded(): that also waits for the basemap and any tiles; the markers are
    // drawn before that.
    try {
      const m = sub.map;
      const circles = m.getStyle().layers.filter(l => l.type === 'circle');
      if (!circles.length || !circles.every(l => m.isSourceLoaded(l.source))) return 0;
      return m.queryRenderedFeatures({layers: circles.map(l => l.id)}).length;
    } catch (e) {
      return 0;  // the style is not there yet
    }
  }
  function fleet() {
    mark('table', document.querySelector('#fleet-tbody tr.fleet-row'));
    if (marks.map === undefined) {
      // drawn when every located shipment the figure holds is a rendered marker
      const g = document.querySelector('#fleet-map .js-plotly-plot');
      const expected = g && g._fullData ? g._fullData.reduce((n, t) => n + (t._length || 0), 0) : 0;
      const n = expected > 0 ? mapMarkers() : 0;
      if (n > 0 && n >= expected) { marks.markers = n; mark('map', true); }
    }
    return marks.table !== undefined && marks.map !== undefined;
  }
  function shipment() {
    const h1 = document.querySelector('#shipment-header h1');
    mark('header', h1 && h1.innerText.trim() === decodeURIComponent(
      location.pathname.split('/').pop()));
    const g = document.querySelector('#shipment-temp-graph .js-plotly-plot');
    const line = document.querySelector('#shipment-temp-graph .scatterlayer .trace path.js-line');
    if (marks.chart === undefined && g && g._fullData && line && line.getAttribute('d')) {
      marks.points = g._fullData.filter(t => !/ (min|max)$/.test(t.name))
        .reduce((n, t) => n + (t._length || 0), 0);
      marks.chart = now();
    }
    const gauges = document.getElementById('shipment-stability-graph');
    mark('gauges', gauges ? gauges.querySelectorAll('.indicatorlayer .angular').length > 0
                          : marks.header !== undefined);  // a page without gauges
    return ['header', 'chart', 'gauges'].every(k => marks[k] !== undefined);
  }
  function tick() {
    const path = location.pathname;
    const done = path === '/' ? fleet() : path.startsWith('/shipments/') ? shipment() : false;
    if (done) { marks.done = now(); return; }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


# --- the data ------------------------------------------------------------------------------


def build(dsn: str, shipments: int, days: int, now: datetime) -> dict[str, int]:
    """Everything described in the module doc; returns row counts."""
    minutes = days * 24 * 60
    long_start = now - timedelta(minutes=minutes)
    city_rows = ", ".join(
        f"({i}, '{name}', {lat}, {lon})" for i, (name, lat, lon) in enumerate(CITIES)
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (gtin, name, temp_min_c, temp_max_c, freeze_limit_c,"
            " alarm_delay_s, stability_budget_s, mkt_limit_c, rh_min, rh_max)"
            " VALUES (%s, 'Vaccine 10 x 0.5 mL', 2, 8, 0, 900, 72 * 3600, 8, 20, 80)",
            (GTIN,),
        )
        conn.execute(f"CREATE TEMP TABLE bench_cities (i int, name text, lat float, lon float);"
                     f" INSERT INTO bench_cities VALUES {city_rows}")  # fmt: skip
        n_cities = len(CITIES)
        fleet = {"n": shipments, "now": now, "gtin": GTIN, "cities": n_cities}
        conn.execute(
            "INSERT INTO devices (device_id, model, calibration_cert, calibration_due, interval_s)"
            " SELECT 'FLEET-LOG-' || lpad(s::text, 5, '0'), 'TL-300', 'CAL-' || s,"
            "        DATE '2027-06-30', 900"
            " FROM generate_series(0, %(n)s - 1) s",
            fleet,
        )
        conn.execute(
            "INSERT INTO shipments (reference, product_gtin, origin, destination, status, carrier,"
            "                       planned_departure, planned_arrival)"
            " SELECT 'FLEET-' || lpad(s::text, 5, '0'), %(gtin)s, o.name, d.name, 'in_transit',"
            "        'Frigo Express', %(now)s - interval '2 days', %(now)s + interval '1 day'"
            " FROM generate_series(0, %(n)s - 1) s"
            " JOIN bench_cities o ON o.i = s %% %(cities)s"
            " JOIN bench_cities d ON d.i = (s / %(cities)s + 1 + s %% %(cities)s) %% %(cities)s",
            fleet,
        )
        conn.execute(
            "INSERT INTO device_assignments (device_id, shipment_id, during)"
            " SELECT 'FLEET-LOG-' || substr(reference, 7), shipment_id,"
            "        tstzrange(%(now)s - interval '2 days', NULL)"
            " FROM shipments WHERE reference LIKE 'FLEET-%%'",
            fleet,
        )
        # One latest reading per logger, somewhere between its origin and its destination;
        # every 33rd shipment is too warm.
        conn.execute(
            "CREATE TEMP TABLE bench_latest AS"
            " SELECT 'FLEET-LOG-' || lpad(s::text, 5, '0') AS device_id,"
            "        %(now)s - (s %% 240) * interval '1 second' AS ts,"
            "        CASE WHEN s %% 33 = 0 THEN 9.2 ELSE 4 + (s %% 17) * 0.2 END AS temp_c,"
            "        40 + s %% 30 AS rh,"
            "        o.lat + (d.lat - o.lat) * f AS lat, o.lon + (d.lon - o.lon) * f AS lon,"
            "        0.9::real AS battery"
            " FROM generate_series(0, %(n)s - 1) s"
            " JOIN bench_cities o ON o.i = s %% %(cities)s"
            " JOIN bench_cities d ON d.i = (s / %(cities)s + 1 + s %% %(cities)s) %% %(cities)s"
            " CROSS JOIN LATERAL (SELECT (s * 7919 %% 1000) / 1000.0 AS f) x",
            fleet,
        )
        conn.execute(
            "INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery)"
            " SELECT device_id, ts, temp_c, rh, lat, lon, battery FROM bench_latest"
        )
        conn.execute(
            "INSERT INTO device_state (device_id, ts, temp_c, rh, lat, lon, battery, received_at)"
            " SELECT device_id, ts, temp_c, rh, lat, lon, battery, ts FROM bench_latest"
        )
        conn.execute(
            "INSERT INTO alerts (shipment_id, rule_key, severity, state, title, device_id,"
            "                    triggered_at, value, thresholds)"
            " SELECT shipment_id, 'temp-high', CASE WHEN shipment_id %% 50 = 0 THEN 'critical'"
            "        ELSE 'warning' END, 'open', 'Temperature above 8 °C',"
            "        'FLEET-LOG-' || substr(reference, 7), %(now)s - interval '1 hour', 9.2,"
            "        '{\"max\": 8}'"
            " FROM shipments WHERE shipment_id %% 50 = 0 OR shipment_id %% 33 = 1",
            fleet,
        )

        # The long shipment: one reading a minute, a slow daily swing, two excursions.
        conn.execute(
            "INSERT INTO devices (device_id, model, calibration_cert, calibration_due, interval_s)"
            " VALUES (%s, 'TL-300', 'CAL-LONG', '2027-06-30', 60)",
            (LONG_DEVICE,),
        )
        row = conn.execute(
            "INSERT INTO shipments (reference, product_gtin, origin, destination, status, carrier,"
            "                       planned_departure, planned_arrival)"
            " VALUES (%s, %s, 'Basel', 'Singapore', 'in_transit', 'Ocean Reefer', %s, %s)"
            " RETURNING shipment_id",
            (LONG_REF, GTIN, long_start, now + timedelta(days=2)),
        ).fetchone()
        assert row is not None
        long_id = int(row[0])
        conn.execute(
            "INSERT INTO device_assignments (device_id, shipment_id, during)"
            " VALUES (%s, %s, tstzrange(%s, NULL))",
            (LONG_DEVICE, long_id, long_start),
        )
        hot = (9 * 1440 + 600, 50)  # day 9, 10:00, 50 min
        cold = (21 * 1440 + 180, 25)  # day 21, 03:00, 25 min
        conn.execute(
            "INSERT INTO readings (device_id, ts, temp_c, rh, lat, lon, battery)"
            " SELECT %(dev)s, %(t0)s + i * interval '1 minute',"
            "        CASE WHEN i >= %(h0)s AND i < %(h0)s + %(hn)s THEN 11.0"
            "             WHEN i >= %(c0)s AND i < %(c0)s + %(cn)s THEN -0.5"
            "             ELSE round((5 + 0.8 * sin(i / 229.0) + (i * 7919 %% 100) / 250.0)::numeric,"
            "                        2)::float END,"
            "        55 + 5 * sin(i / 600.0), 47.5 - i * 0.0009, 7.6 + i * 0.0022,"
            "        (0.95 - i * 0.000005)::real"
            " FROM generate_series(0, %(n)s - 1) i",
            {"dev": LONG_DEVICE, "t0": long_start, "n": minutes,
             "h0": hot[0], "hn": hot[1], "c0": cold[0], "cn": cold[1]},
        )  # fmt: skip
        conn.execute(
            "INSERT INTO device_state (device_id, ts, temp_c, rh, lat, lon, battery, received_at)"
            " SELECT device_id, ts, temp_c, rh, lat, lon, battery, ts FROM readings"
            " WHERE device_id = %s ORDER BY ts DESC LIMIT 1",
            (LONG_DEVICE,),
        )
        for direction, (start_min, length), value in (("high", hot, 11.0), ("low", cold, -0.5)):
            start = long_start + timedelta(minutes=start_min)
            end = start + timedelta(minutes=length)
            conn.execute(
                "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
                " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, alarm_at,"
                " rule_key, thresholds)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true, %s, 'temp', '{}')",
                (long_id, LONG_DEVICE, direction, start, end, end - timedelta(minutes=1),
                 value, value, 3.0 * length, length, start + timedelta(minutes=15)),
            )  # fmt: skip
        conn.execute("ANALYZE")
        counts = {}
        for table in ("shipments", "device_state", "readings", "alerts", "excursions"):
            found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(found[0]) if found else 0
    return counts


def add_viewer(dsn: str, password: str) -> None:
    """A viewer, created the way ``coldchain users add`` creates one."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        accounts.create_user(
            conn,
            username=USERNAME,
            full_name="Bench Viewer",
            role="viewer",
            password=password,
            min_length=12,
            ctx=AuditContext("cli:bench", "admin", "bench", "user created"),
        )


# --- the web process and the browser ------------------------------------------------------


@contextlib.contextmanager
def web_process(settings: Settings, log: Path) -> Iterator[str]:
    """``coldchain web`` on a free port against the bench database; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env.update(
        COLDCHAIN_DB__PORT=str(settings.db.port),
        COLDCHAIN_DB__NAME=settings.db.name,
        COLDCHAIN_DB__PASSWORD=PASSWORD,
        COLDCHAIN_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=log.parent,  # no stray .env file
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"coldchain web exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"coldchain web did not answer on {url} within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with the same options as the browser tests, and :data:`WATCHER`."""
    options = chromium_options(profile)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})
        yield driver
    finally:
        driver.quit()


def browser_login(driver: webdriver.Chrome, url: str, password: str) -> None:
    """Log in through the dashboard's form, as a person would."""
    driver.get(url + "/login")
    wait = WebDriverWait(driver, 30, poll_frequency=0.1)
    wait.until(lambda d: d.find_elements(By.ID, "login-username"))
    driver.find_element(By.ID, "login-username").send_keys(USERNAME)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: "/login" not in d.current_url and d.get_cookie("coldchain_session"))


PAGE_TIMEOUT_S = 60.0


def page_load(driver: webdriver.Chrome, url: str) -> dict[str, float]:
    """Open ``url`` fresh; the watcher's marks (ms since navigation start) once it is drawn.
    Raises TimeoutError after :data:`PAGE_TIMEOUT_S`."""
    driver.get("about:blank")
    driver.get(url)
    marks: dict[str, float] = {}
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while "done" not in marks:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} was not drawn within {PAGE_TIMEOUT_S:.0f} s: {marks}")
        time.sleep(0.05)
        marks = driver.execute_script("return window.__bench || {};")
    return marks


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured thing: its samples in ms, its target, and a note printed with it."""

    label: str
    samples: list[float]
    target_ms: float
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed_requests(call: Callable[[], httpx.Response], repeat: int, warmup: int = 2) -> list[float]:
    """Wall times (ms) of ``repeat`` calls after ``warmup`` unmeasured ones; all must be 200."""
    times = []
    for i in range(warmup + repeat):
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        if i >= warmup:
            times.append(elapsed)
    return times


def dash_callback_body(
    dependencies: list[dict[str, Any]], output_part: str, values: dict[str, Any]
) -> dict[str, Any]:
    """The body the Dash renderer posts for the callback whose outputs include ``output_part``,
    on a page's first load (``values``: "id.property" → value of its inputs and state)."""
    spec = next(c for c in dependencies if output_part in c["output"])
    outputs = []
    for part in spec["output"].strip(".").split("..."):
        component, prop = part.rsplit(".", 1)
        outputs.append({"id": component, "property": prop})

    def args(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [
            {**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items
        ]  # fmt: skip

    return {
        "output": spec["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": args(spec["inputs"]),
        "state": args(spec["state"]),
        "changedPropIds": [],
    }


def measure_api(
    url: str, password: str, repeat: int, now: datetime, days: int
) -> tuple[list[Figure], dict[str, Any]]:
    """The API calls and the dashboard callbacks the two pages make."""
    facts: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"username": USERNAME, "password": password})
        login.raise_for_status()
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        form = client.post(
            "/auth/login", data={"username": USERNAME, "password": password, "next": "/"}
        )
        if "coldchain_session" not in client.cookies:
            raise RuntimeError(f"dashboard login failed: {form.status_code} {form.headers}")
        deps = client.get("/_dash-dependencies").json()
        start = (now - timedelta(days=days)).isoformat()
        end = (now + timedelta(minutes=5)).isoformat()

        def api(path: str, **params: Any) -> Callable[[], httpx.Response]:
            return lambda: client.get(path, params=params, headers=bearer)

        def callback(body: dict[str, Any]) -> Callable[[], httpx.Response]:
            return lambda: client.post("/_dash-update-component", json=body)

        fleet_values = {
            "fleet-interval.n_intervals": 0,
            "fleet-page.data": 0,
            "fleet-condition.value": "all",
            "fleet-sort.data": {"col": "attention", "desc": True},
        }
        fleet_body = dash_callback_body(deps, "fleet-tbody.children", fleet_values)
        map_body = dash_callback_body(deps, "fleet-map.figure", fleet_values)
        shipment_body = dash_callback_body(
            deps,
            "shipment-temp-graph.figure",
            {"shipment-interval.n_intervals": 0, "shipment-key.data": LONG_REF},
        )
        fleet_page = client.get("/api/v1/shipments", params={"limit": 500}, headers=bearer).json()
        facts["fleet_total"] = fleet_page["total"]
        series = client.get(
            f"/api/v1/shipments/{LONG_REF}/readings",
            params={"start": start, "end": end},
            headers=bearer,
        ).json()
        facts["readings_total"] = series["total_readings"]
        facts["readings_points"] = len(series["points"])
        facts["bucket_s"] = series["bucket_s"]
        facts["fleet_callback_kb"] = len(callback(fleet_body)().content) / 1024
        facts["map_callback_kb"] = len(callback(map_body)().content) / 1024
        facts["shipment_callback_kb"] = len(callback(shipment_body)().content) / 1024

        cases: list[tuple[str, Callable[[], httpx.Response]]] = [
            ("API GET /shipments (page of 50)", api("/api/v1/shipments")),
            ("API GET /shipments?limit=500 (largest page)", api("/api/v1/shipments", limit=500)),
            ("API fleet page: table callback", callback(fleet_body)),
            ("API fleet page: map and counts callback", callback(map_body)),
            (f"API GET /shipments/{LONG_REF}", api(f"/api/v1/shipments/{LONG_REF}")),
            (
                f"API GET /shipments/{LONG_REF}/readings ({days} d)",
                api(f"/api/v1/shipments/{LONG_REF}/readings", start=start, end=end),
            ),
            ("API shipment page: chart and tables callback", callback(shipment_body)),
        ]
        stability = [c for c in deps if "shipment-stability" in c["output"]]
        if stability:
            body = dash_callback_body(
                deps,
                "shipment-stability",
                {"shipment-interval.n_intervals": 0, "shipment-key.data": LONG_REF},
            )
            cases.append(("API shipment page: MKT and budget callback", callback(body)))
        figures = [
            Figure(label, timed_requests(call, repeat), API_TARGET_MS) for label, call in cases
        ]
    return figures, facts


def measure_browser(
    driver: webdriver.Chrome, url: str, repeat: int, warmup: int = 2
) -> tuple[list[Figure], dict[str, Any]]:
    """Navigation start → data drawn, for the fleet page and the long shipment's page. A page
    not drawn within :data:`PAGE_TIMEOUT_S` counts as infinitely slow (and is not retried)."""
    facts: dict[str, Any] = {}
    runs: dict[str, list[dict[str, float]]] = {}
    for path in ("/", f"/shipments/{LONG_REF}"):
        runs[path] = []
        for i in range(warmup + repeat):
            try:
                marks = page_load(driver, url + path)
            except TimeoutError as exc:
                print(f"  {exc}")
                runs[path] = [{"table": math.inf, "map": math.inf, "done": math.inf}]
                break
            if i >= warmup:
                runs[path].append(marks)
        facts[path] = runs[path][-1]

    def ms(path: str, key: str) -> list[float]:
        return [r.get(key, math.inf) for r in runs[path]]

    def p50(path: str, key: str) -> str:
        return f"{key} p50 {statistics.median(ms(path, key)):.0f}"

    long = f"/shipments/{LONG_REF}"
    figures = [
        Figure("Browser / : table rows drawn", ms("/", "table"), BROWSER_TARGET_MS),
        Figure("Browser / : every marker drawn on the map", ms("/", "map"), BROWSER_TARGET_MS),
        Figure(
            f"Browser {long}: chart and gauges drawn",
            ms(long, "done"),
            BROWSER_TARGET_MS,
            ", ".join(p50(long, k) for k in ("header", "chart", "gauges")),
        ),
    ]
    return figures, facts


def print_table(figures: list[Figure]) -> bool:
    """The figures against their targets; True when every p95 is within its target."""
    width = max(len(f.label) for f in figures)
    print(f"  {'What':<{width}}  {'n':>3}  {'p50 ms':>8}  {'p95 ms':>8}  {'target':>7}  result")
    ok = True
    for f in figures:
        passed = f.p95 < f.target_ms
        ok &= passed
        target = f"{f.target_ms / 1000:g} s" if f.target_ms >= 1000 else f"{f.target_ms:.0f} ms"
        print(
            f"  {f.label:<{width}}  {len(f.samples):>3}  {f.p50:8.1f}  {f.p95:8.1f}  {target:>7}"
            f"  {'PASS' if passed else 'FAIL'}" + (f"   ({f.note})" if f.note else "")
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    password = secrets.token_urlsafe(18)
    now = datetime.now(UTC).replace(microsecond=0)
    with local_stack() as stack:
        settings = stack.new_database()
        started = time.perf_counter()
        counts = build(settings.db.dsn, args.shipments, args.days, now)
        add_viewer(settings.db.dsn, password)
        print(
            f"built in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        )
        with web_process(settings, stack.root / "web.log") as url:
            api_figures, facts = measure_api(url, password, args.repeat, now, args.days)
            print(
                f"fleet: {facts['fleet_total']:,} shipments; the fleet page's callbacks answer "
                f"{facts['fleet_callback_kb']:,.0f} KB (table) and {facts['map_callback_kb']:,.0f}"
                " KB (map and counts)"
            )
            print(
                f"{LONG_REF}: {facts['readings_total']:,} readings → API "
                f"{facts['readings_points']:,} points in {facts['bucket_s']} s buckets; the "
                f"shipment page callback answers {facts['shipment_callback_kb']:,.0f} KB"
            )
            with chromium(stack.root / "chromium") as driver:
                browser_login(driver, url, password)
                browser_figures, drawn = measure_browser(driver, url, args.repeat)
        print(
            f"browser: the fleet map rendered {drawn['/'].get('markers', 0):,.0f} markers; the "
            f"temperature chart received {drawn[f'/shipments/{LONG_REF}'].get('points', 0):,.0f} "
            "points"
        )
        print(f"timings ({args.repeat} each, after 2 unmeasured; PASS when p95 < target):")
        ok = print_table(api_figures + browser_figures)
        print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()

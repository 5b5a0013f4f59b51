"""Issue 13's "Done when", played by an integrator: an ERP/WMS that knows only the HTTP API, and
loggers that know only MQTT and the credentials their registration returned.

Everything runs for real: the web process (uvicorn) on this test's database, Mosquitto with the
project's auth plugin on the password file and ACL that the web process writes when a logger is
registered, the ingester on the broker with its own account, the rules engine and the lifecycle
automation. Nothing below
reads or writes the database behind the API's back; the only setup outside the API is what
``coldchain up`` does before anyone calls it (the ingester's MQTT account, the people).

Nobody starts or arrives a shipment here: the loggers report their positions, and the lifecycle
automation (``coldchain automate``) starts each shipment when its logger leaves the origin's
geofence and arrives it when the logger enters the destination's, at the readings' times.

The expected figures are computed here, from the readings this test sent, by the definitions of
docs/STABILITY.md (step rule: each reading holds until the next; a reading inside the storage
range is in range; outside it, it counts against the band that contains it, else it is
uncovered), never copied from the platform's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.gs1 import check_digit
from coldchain.settings import Settings
from launcher.localstack import MosquittoBroker, free_port
from security import devices
from security.audit import AuditContext
from services.automation import run_automation
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, gtin
from tests.security.test_mqtt import _as_ingester
from tests.test_end_to_end import platform

pytestmark = pytest.mark.integration

#: The product's labelled range and its two allowance bands (low, high, budget in seconds).
RANGE = (2.0, 8.0)
WARM_BAND = (8.0, 25.0, 3600.0)
COLD_BAND = (0.0, 2.0, 600.0)
#: The sites (lat, lon) and a point on the road, far outside both geofences.
ORIGIN, ROAD, DESTINATION = (47.5596, 7.5886), (47.2500, 7.5200), (46.9480, 7.4474)
GEOFENCE_M = 250
#: Logger 1's trip, one reading a second: at the origin, then on the road (the shipment starts)
#: in range, 8–25 °C (a band, its budget used), 30 °C (beyond every band: an exception), back in
#: range (the excursion ends), and at the destination (it arrives).
HOT_TRIP = (
    [(5.0, ORIGIN)] * 2
    + [(5.0, ROAD)] * 2
    + [(12.0, ROAD)] * 5
    + [(30.0, ROAD)] * 2
    + [(5.0, ROAD)] * 5
    + [(5.0, DESTINATION)]
)
#: Logger 2's trip: the same way, in range throughout.
CLEAN_TRIP = [(5.0, where) for _, where in HOT_TRIP]
#: Who the lifecycle automation's transitions name.
AUTOMATION = "system:automation"
INTERVAL_S = 60  # the loggers' declared interval: the data-gap rule is gap_factor × this


def gln(body: str) -> str:
    """A GLN-13 from its first 12 digits."""
    return body + str(check_digit(body))


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """This test's settings with a stack folder of its own, where the web process writes the
    broker's password file and ACL when a logger is registered (as under ``coldchain up``)."""
    (tmp_path / "stack" / "mosquitto").mkdir(parents=True)
    return settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"data_dir": tmp_path / "stack"})}
    )


@pytest.fixture
def ingest_account(settings: Settings, db_dsn: str) -> devices.ProvisionResult:
    """The ingester's MQTT account, as ``coldchain up`` makes it before anything is registered."""
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        return devices.provision(
            conn,
            topic_root=settings.mqtt.topic_root,
            out_dir=settings.stack.data_dir / "mosquitto",
            services=[devices.INGEST_ACCOUNT],
            ctx=AuditContext("cli:test", "admin", "test", "stack set up"),
        )


@pytest.fixture
def secured_broker(
    settings: Settings, tmp_path: Path, ingest_account: devices.ProvisionResult
) -> Iterator[MosquittoBroker]:
    """Mosquitto with the project's plugin on the files the web process maintains; started by
    the test once the loggers are registered (Mosquitto reads the files when it starts)."""
    broker = MosquittoBroker(
        tmp_path / "broker",
        free_port(),
        password_file=ingest_account.password_file,
        acl_file=ingest_account.acl_file,
        subscribers=(devices.INGEST_ACCOUNT.username,),
    )
    yield broker
    broker.stop()


# ---- what the integrator sends and what it expects back ------------------------------------


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


async def login(http: httpx.AsyncClient, person: Person) -> dict[str, str]:
    """A bearer token for the person, from ``POST /auth/login`` as any client would get one."""
    body = ok(
        await http.post(
            "/api/v1/auth/login", json={"username": person.username, "password": person.password}
        )
    )
    return {"Authorization": f"Bearer {body['access_token']}"}


async def publish_trip(
    port: int, credentials: dict[str, Any], trip: list[tuple[float, tuple[float, float]]]
) -> list[tuple[datetime, float]]:
    """One reading a second, measured now, with the logger's position, on its own topic with its
    own credentials (each PUBACKed by the broker); the (ts, °C) sent."""
    sent: list[tuple[datetime, float]] = []
    device = credentials["mqtt_username"]
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username=device,
        password=credentials["mqtt_password"],
        identifier=device,
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        for temp, (lat, lon) in trip:
            now = datetime.now(UTC)
            ts = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the wire's precision
            payload = {
                "device_id": device,
                "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "temp_c": temp,
                "lat": lat,
                "lon": lon,
            }
            await client.publish(credentials["telemetry_topic"], json.dumps(payload), qos=1)
            sent.append((ts, temp))
            await asyncio.sleep(1.0)
    return sent


def expected_band_seconds(
    readings: list[tuple[datetime, float]], *, max_gap_s: float
) -> dict[str, float]:
    """Seconds in each band and uncovered, by the step rule (docs/STABILITY.md)."""
    out = {"warm": 0.0, "cold": 0.0, "uncovered": 0.0}
    for (t0, c0), (t1, _) in itertools.pairwise(readings):
        held = (t1 - t0).total_seconds()
        if held > max_gap_s or RANGE[0] <= c0 <= RANGE[1]:
            continue
        if WARM_BAND[0] <= c0 < WARM_BAND[1]:
            out["warm"] += held
        elif COLD_BAND[0] <= c0 < COLD_BAND[1]:
            out["cold"] += held
        else:
            out["uncovered"] += held
    return out


async def settle(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    reference: str,
    n: int,
    *,
    closed_excursions: int,
    within: float = 60,
) -> list[dict[str, Any]]:
    """Wait until the API shows the shipment's n readings and its excursions ended; those."""
    excursions: list[dict[str, Any]] = []
    total = -1
    for _ in range(int(within / 0.5)):
        series = ok(await http.get(f"/api/v1/shipments/{reference}/readings", headers=headers))
        excursions = ok(
            await http.get(f"/api/v1/shipments/{reference}/excursions", headers=headers)
        )
        total = series["total_readings"]
        if (
            total == n
            and len(excursions) == closed_excursions
            and not any(e["open"] for e in excursions)
        ):
            return excursions
        await asyncio.sleep(0.5)
    raise AssertionError(f"{reference}: {total} of {n} readings, excursions {excursions}")


async def moved_on(
    http: httpx.AsyncClient, headers: dict[str, str], reference: str, within: float = 60
) -> dict[str, Any]:
    """Wait until the automation has arrived the shipment (and judged it); its booking."""
    booking: dict[str, Any] = {}
    for _ in range(int(within / 0.5)):
        booking = ok(await http.get(f"/api/v1/shipments/{reference}/booking", headers=headers))
        if booking["status"] in ("under_review", "released"):
            return booking
        await asyncio.sleep(0.5)
    raise AssertionError(f"{reference} did not arrive on its own: {booking}")


@contextlib.asynccontextmanager
async def automation(settings: Settings) -> AsyncIterator[None]:
    """The lifecycle automation running, as ``coldchain automate``."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_automation(settings, stop), name="automate")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def audit(http: httpx.AsyncClient, headers: dict[str, str], **filters: str) -> list[Any]:
    page = ok(await http.get("/api/v1/audit", params={**filters, "limit": 500}, headers=headers))
    return list(page["items"])


# ---- the integrator's day -------------------------------------------------------------------


async def test_an_integrator_runs_two_shipments_from_booking_to_release(
    settings: Settings,
    db_dsn: str,
    web_server: LiveServer,
    people: dict[str, Person],
    ingest_account: devices.ProvisionResult,
    secured_broker: MosquittoBroker,
) -> None:
    product = gtin("0950600099001")
    origin_gln, destination_gln = gln("409876500001"), gln("409876500002")
    max_gap_s = settings.alerts.gap_factor * INTERVAL_S
    async with httpx.AsyncClient(base_url=web_server.url, timeout=30) as http:
        admin = await login(http, people["admin"])
        operator = await login(http, people["operator"])
        qa = await login(http, people["qa"])

        # -- master data (admin): a product with a two-band profile, two sites, a lane, loggers
        ok(
            await http.post(
                "/api/v1/products",
                headers=admin,
                json={
                    "gtin": product,
                    "name": "Insulin glargine 10 x 3 ml",
                    "temp_min_c": RANGE[0],
                    "temp_max_c": RANGE[1],
                    "freeze_limit_c": 0,
                    "stability": {
                        "allowances": [
                            {
                                "low_c": WARM_BAND[0],
                                "high_c": WARM_BAND[1],
                                "budget_s": WARM_BAND[2],
                            },
                            {
                                "low_c": COLD_BAND[0],
                                "high_c": COLD_BAND[1],
                                "budget_s": COLD_BAND[2],
                            },
                        ],
                        "max_freeze_thaw_cycles": 1,
                    },
                },
            ),
            201,
        )
        sites = {}
        for key, (name, lat, lon) in {
            origin_gln: ("DC Basel", 47.5596, 7.5886),
            destination_gln: ("Hospital Bern", 46.9480, 7.4474),
        }.items():
            sites[key] = ok(
                await http.post(
                    "/api/v1/locations",
                    headers=admin,
                    json={
                        "gln": key,
                        "name": name,
                        "lat": lat,
                        "lon": lon,
                        "geofence_m": GEOFENCE_M,
                    },
                ),
                201,
            )
        lane = ok(
            await http.post(
                "/api/v1/lanes",
                headers=admin,
                json={
                    "code": "BSL-BRN",
                    "origin_location_id": sites[origin_gln]["location_id"],
                    "destination_location_id": sites[destination_gln]["location_id"],
                    "mode": "road",
                },
            ),
            201,
        )
        carrier = ok(
            await http.post("/api/v1/carriers", headers=admin, json={"name": "Frigo Express"}), 201
        )
        loggers = {}
        for serial in ("TT4-INTEG-1", "TT4-INTEG-2"):
            loggers[serial] = ok(
                await http.post(
                    "/api/v1/devices",
                    headers=admin,
                    json={
                        "device_id": serial,
                        "model": "TempTrace 4",
                        "interval_s": INTERVAL_S,
                        "calibration_cert": f"CAL-{serial}",
                        "calibration_due": "2099-06-30",
                    },
                ),
                201,
            )
            assert loggers[serial]["mqtt_password"] and loggers[serial]["broker_files_written"]
        secured_broker.start()  # on the files the web process wrote

        # -- QA signs an auto-release policy for the product
        policy = ok(
            await http.post(
                "/api/v1/release-policies",
                headers=qa,
                json={
                    "gtin": product,
                    "reason": "stability study QS-12",
                    "password": people["qa"].password,
                },
            ),
            201,
        )
        policy_actor = f"policy:{policy['policy_id']}"

        # -- the operator books two shipments (a retry returns the first) and attaches loggers
        arrival = (datetime.now(UTC) + timedelta(hours=6)).replace(microsecond=0).isoformat()

        def booking(n: int) -> dict[str, Any]:
            return {
                "reference": f"SHP-INTEG-{n}",
                "lane_id": lane["lane_id"],
                "carrier_id": carrier["carrier_id"],
                "product_gtin": product,
                "references": [{"kind": "purchase_order", "value": f"PO-INTEG-{n}"}],
                "items": [{"gtin": product, "lot": f"L-{n}", "quantity": 120}],
                "planned_arrival": arrival,
            }

        hot, clean = "SHP-INTEG-1", "SHP-INTEG-2"
        idempotent = operator | {"Idempotency-Key": "erp-order-1"}
        first = ok(await http.post("/api/v1/shipments", headers=idempotent, json=booking(1)),
                   201)  # fmt: skip
        again = ok(await http.post("/api/v1/shipments", headers=idempotent, json=booking(1)))
        assert again["shipment_id"] == first["shipment_id"]
        second = ok(await http.post("/api/v1/shipments", headers=operator, json=booking(2)), 201)
        assert (first["origin"], first["destination"]) == ("DC Basel", "Hospital Bern")
        for reference, serial in ((hot, "TT4-INTEG-1"), (clean, "TT4-INTEG-2")):
            ok(await http.post(f"/api/v1/shipments/{reference}/loggers", headers=operator,
                               json={"device_id": serial}))  # fmt: skip

        stack = _as_ingester(settings, secured_broker, ingest_account)
        async with platform(stack), automation(stack):
            hot_sent, clean_sent = await asyncio.gather(
                publish_trip(secured_broker.port, loggers["TT4-INTEG-1"], HOT_TRIP),
                publish_trip(secured_broker.port, loggers["TT4-INTEG-2"], CLEAN_TRIP),
            )
            (excursion,) = await settle(http, operator, hot, len(hot_sent), closed_excursions=1)
            await settle(http, operator, clean, len(clean_sent), closed_excursions=0)
            hot_state = await moved_on(http, operator, hot)
            clean_state = await moved_on(http, operator, clean)
        hot_verdicts = ok(await http.get(f"/api/v1/shipments/{hot}/verdicts", headers=operator))
        clean_verdicts = ok(await http.get(f"/api/v1/shipments/{clean}/verdicts",
                                           headers=operator))  # fmt: skip

        # -- each started on leaving the origin and arrived on entering the destination, at
        # the times of the readings that showed it
        for state, sent in ((hot_state, hot_sent), (clean_state, clean_sent)):
            left = sent[HOT_TRIP.index((5.0, ROAD))][0]
            assert datetime.fromisoformat(state["started_at"]) == left
            assert datetime.fromisoformat(state["arrived_at"]) == sent[-1][0]

        # -- the hot shipment: an exception, with the figures of the readings sent
        first_out = next(ts for ts, c in hot_sent if c > RANGE[1])
        first_back = next(ts for ts, c in hot_sent if ts > first_out and c <= RANGE[1])
        assert excursion["direction"] == "high" and excursion["max_c"] == max(
            c for c, _ in HOT_TRIP
        )
        assert datetime.fromisoformat(excursion["start_ts"]) == first_out
        assert datetime.fromisoformat(excursion["end_ts"]) == first_back
        (verdict,) = hot_verdicts
        assert verdict["gtin"] == product and verdict["verdict"] == "exception"
        assert verdict["profile_version"] == 1
        assert [r["code"] for r in verdict["reasons"]] == ["outside_allowances"]
        want = expected_band_seconds(hot_sent, max_gap_s=max_gap_s)
        assert want["warm"] > 0 and want["uncovered"] > 0 and want["cold"] == 0
        warm, cold = verdict["figures"]["bands"]
        for band, (low, high, budget), used in (
            (warm, WARM_BAND, want["warm"]),
            (cold, COLD_BAND, want["cold"]),
        ):
            assert (band["low_c"], band["high_c"], band["budget_s"]) == (low, high, budget)
            assert band["time_in_band_s"] == pytest.approx(used, abs=1e-6)
            assert band["used_s"] == pytest.approx(used, abs=1e-6)  # no data gap
            assert band["share"] == pytest.approx(used / budget)
            assert band["exceeded"] is False
        figures = verdict["figures"]
        assert figures["time_uncovered_s"] == pytest.approx(want["uncovered"], abs=1e-6)
        assert figures["time_outside_s"] == pytest.approx(
            want["warm"] + want["uncovered"], abs=1e-6
        )
        assert figures["time_gap_s"] == 0 and figures["n_readings"] == len(hot_sent)
        assert figures["freeze_thaw"]["cycles"] == 0

        # … it waits in the QA queue (the policy never releases an exception) …
        queue = ok(await http.get("/api/v1/qa/queue", headers=qa))
        assert [q["reference"] for q in queue] == [hot]
        assert queue[0]["has_exception"] is True and queue[0]["status"] == "under_review"
        assert queue[0]["max_budget_share"] == pytest.approx(want["warm"] / WARM_BAND[2])

        # … and QA releases it, signing the report it read (its hash from the report endpoint)
        as_of = datetime.now(UTC).isoformat()
        report = await http.get(f"/api/v1/shipments/{hot}/report.json", params={"as_of": as_of},
                                headers=qa)  # fmt: skip
        ok(report)
        signed = ok(
            await http.post(
                f"/api/v1/shipments/{hot}/dispositions",
                headers=qa,
                json={
                    "decision": "release",
                    "reason": "excursion assessed against stability data SR-88: product fit",
                    "as_of": as_of,
                    "report_hash": report.headers["X-Content-SHA256"],
                    "password": people["qa"].password,
                },
            ),
            201,
        )
        assert signed["signer_username"] == people["qa"].username and signed["current"] is True

        # -- the clean shipment: conforming, released on arrival under the policy
        (clean_verdict,) = clean_verdicts
        assert clean_verdict["verdict"] == "conforming" and clean_verdict["reasons"] == []
        for band in clean_verdict["figures"]["bands"]:
            assert band["used_s"] == 0 and band["exceeded"] is False
        (auto,) = ok(await http.get(f"/api/v1/shipments/{clean}/dispositions", headers=qa))["items"]
        assert auto["decision"] == "release" and f"policy {policy['policy_id']}" in auto["meaning"]
        signed_policy = ok(await http.get(f"/api/v1/release-policies/{policy['policy_id']}",
                                          headers=qa))  # fmt: skip
        assert signed_policy["releases"] == 1
        assert [(e["event"], e["shipment_id"]) for e in signed_policy["events"]] == [
            ("created", None),
            ("released", second["shipment_id"]),
        ]
        for reference in (hot, clean):
            state = ok(await http.get(f"/api/v1/shipments/{reference}/booking", headers=qa))
            assert state["status"] == "released"

        # -- the timeline of each shipment, step by step
        steps = ["create", "logger_attached", "start", "arrive", "verdict", "review", "release"]
        hot_line = ok(await http.get(f"/api/v1/shipments/{hot}/timeline", headers=operator))
        clean_line = ok(await http.get(f"/api/v1/shipments/{clean}/timeline", headers=operator))
        assert [e["event"] for e in hot_line] == steps
        assert [e["event"] for e in clean_line] == steps
        for line in (hot_line, clean_line):
            assert [e["actor"] for e in line[2:6]] == [AUTOMATION] * 4
            assert line[2]["data"]["rule"] == "left_origin"
            assert line[3]["data"]["rule"] == "entered_destination"
        assert hot_line[-1]["actor"] == people["qa"].username
        assert hot_line[-1]["data"]["disposition_id"] == signed["id"]
        assert clean_line[-1]["actor"] == policy_actor
        assert clean_line[-1]["data"]["disposition_id"] == auto["id"]
        assert hot_line[5]["reason"] == "arrival verdict: exception"
        assert clean_line[5]["reason"] == "arrival verdict: conforming"

        # -- the audit trail, read as QA: every step, with who did it
        def who(entries: list[Any], action: str) -> list[str]:
            return [e["actor"] for e in entries if e["action"] == action]

        admin_name, op_name, qa_name = (people[r].username for r in ("admin", "operator", "qa"))
        assert who(await audit(http, qa, entity="products", entity_id=product), "insert") == [
            admin_name
        ]
        assert who(await audit(http, qa, entity="product_profiles", entity_id=product),
                   "insert") == [admin_name]  # fmt: skip
        for serial in loggers:
            assert who(await audit(http, qa, entity="devices", entity_id=serial), "insert") == [
                admin_name
            ]
        for site in sites.values():
            entries = await audit(http, qa, entity="locations", entity_id=site["location_id"])
            assert who(entries, "insert") == [admin_name]
        entries = await audit(http, qa, entity="lanes", entity_id=str(lane["lane_id"]))
        assert who(entries, "insert") == [admin_name]
        entries = await audit(http, qa, entity="carriers", entity_id=str(carrier["carrier_id"]))
        assert who(entries, "insert") == [admin_name]
        assert who(await audit(http, qa, entity="release_policies",
                               entity_id=str(policy["policy_id"])), "insert") == [qa_name]  # fmt: skip
        for shipment, releaser in ((first, qa_name), (second, policy_actor)):
            entries = await audit(http, qa, entity="shipments",
                                  entity_id=str(shipment["shipment_id"]))  # fmt: skip
            assert who(entries, "insert") == [op_name]
            moves = [
                (e["after"]["status"], e["actor"])
                for e in reversed(entries)  # newest first: oldest first here
                if e["action"] == "update" and e["before"]["status"] != e["after"]["status"]
            ]
            assert moves == [
                ("in_transit", AUTOMATION),
                ("arrived", AUTOMATION),
                ("under_review", AUTOMATION),
                ("released", releaser),
            ]
            judged = await audit(http, qa, entity="shipment_verdicts",
                                 entity_id=str(shipment["shipment_id"]))  # fmt: skip
            assert who(judged, "insert") == [AUTOMATION]
            assigned = await audit(http, qa, entity="device_assignments")
            assert any(
                e["after"]["shipment_id"] == shipment["shipment_id"] and e["actor"] == op_name
                for e in assigned
                if e["action"] == "insert"
            )
        signed_entries = {
            e["entity_id"]: e["actor"]
            for e in await audit(http, qa, entity="dispositions")
            if e["action"] == "insert"
        }
        assert signed_entries == {str(signed["id"]): qa_name, str(auto["id"]): policy_actor}

"""Shipments that start and arrive on their own (services/automation.py) on the real database:
readings stored as the ingester stores them, the worker's passes, the timeline and the audit
trail; its cursor across restarts; late readings; the lifecycle webhooks' outbox."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from alerts.service import run_rules_engine
from coldchain.geo import Geofence, distance_m
from coldchain.settings import AutomationSettings, Settings
from coldchain.telemetry import Reading, batch_payload, telemetry_topic
from db.queries import automation as automation_q
from db.queries import partitions as pq
from db.types import Conn
from ingest.service import Ingester
from ingest.sink import TimescaleSink
from services import automation, bookings, lifecycle, locations, loggers, products
from services.caller import Caller
from tests.fixtures.web import gtin as gtin_of
from tests.fixtures.web import ingest, ingest_in
from tests.fixtures.webhooks import SECRET, WebhookReceiver

pytestmark = pytest.mark.integration

ADMIN = Caller("ada.admin", "admin", "test", "Ada Admin")
OPERATOR = Caller("ana.ruiz", "operator", "test", "Ana Ruiz")
GAP_FACTOR = 2.0
ORIGIN = Geofence(47.5596, 7.5886, 500.0)
DESTINATION = Geofence(45.4642, 9.1900, 800.0)
AT_ORIGIN = (47.5598, 7.5889)
ON_THE_ROAD = (46.5, 8.4)
AT_DESTINATION = (45.4650, 9.1905)


def gln(body: str) -> str:
    """A valid GLN from its first 12 digits (the same check digit as a GTIN's)."""
    return gtin_of(body.zfill(13))[1:]


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def t0() -> datetime:
    """The planned departure: a round minute three hours ago."""
    return (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)


@pytest.fixture
def lane(conn: Conn) -> dict[str, Any]:
    """Basel depot → Milan hospital, each with a geofence; a 2–8 °C product; logger L-1."""
    sites = {}
    for name, body, fence in (("Basel depot", "761000000001", ORIGIN),
                              ("Milan hospital", "800000000001", DESTINATION)):  # fmt: skip
        row, _ = locations.create_record(
            conn, ADMIN, "locations",
            record=locations.LocationIn(gln=gln(body), name=name, lat=fence.lat, lon=fence.lon,
                                        geofence_m=fence.radius_m),
        )  # fmt: skip
        sites[name] = row
    lane_row, _ = locations.create_record(
        conn, ADMIN, "lanes",
        record=locations.LaneIn(code="BSL-MIL", origin_location_id=sites["Basel depot"]["location_id"],
                                destination_location_id=sites["Milan hospital"]["location_id"],
                                mode="road"),
    )  # fmt: skip
    product, _ = products.create_product(
        conn, ADMIN,
        product=products.ProductIn(gtin=gtin_of("0950600013435"), name="Vaccine", temp_min_c=2.0,
                                   temp_max_c=8.0, freeze_limit_c=0.0),
    )  # fmt: skip
    loggers.register_logger(
        conn, ADMIN, logger=loggers.LoggerIn(device_id="L-1", model="TL-300", interval_s=60,
                                             calibration_due=datetime.now(UTC).date() + timedelta(days=300),
                                             calibration_cert="CAL-1"),
        topic_root="test", broker_dir=None,
    )  # fmt: skip
    return {
        "lane_id": lane_row["lane_id"],
        "gtin": product["gtin"],
        "origin_gln": sites["Basel depot"]["gln"],
        "destination_gln": sites["Milan hospital"]["gln"],
    }


def book(conn: Conn, lane: dict[str, Any], reference: str, departure: datetime | None,
         attach_at: datetime) -> int:  # fmt: skip
    row, _ = bookings.create(
        conn, OPERATOR,
        new=bookings.NewShipment(reference=reference, product_gtin=lane["gtin"],
                                 lane_id=lane["lane_id"], planned_departure=departure),
        now=attach_at,
    )  # fmt: skip
    sid = int(row["shipment_id"])
    bookings.attach(conn, OPERATOR, shipment_id=sid, device_id="L-1", now=attach_at)
    return sid


def trip(t0: datetime, minutes: range, *, hot: range = range(0)) -> list[Reading]:
    """One reading a minute from t0: 20 min at the origin, 60 on the road, then the destination."""
    out = []
    for m in minutes:
        lat, lon = AT_ORIGIN if m < 5 else ON_THE_ROAD if m < 65 else AT_DESTINATION
        out.append(Reading("L-1", t0 + timedelta(minutes=m), 12.0 if m in hot else 5.0,
                           lat=lat, lon=lon))  # fmt: skip
    return out


def timeline(conn: Conn, sid: int) -> list[dict[str, Any]]:
    return lifecycle.timeline(conn, shipment_id=sid)


def state(conn: Conn, sid: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT status, started_at, arrived_at FROM shipments WHERE shipment_id = %s", (sid,)
    ).fetchone()
    assert row is not None
    return row


def test_the_premise_positions_are_where_the_names_say() -> None:
    assert distance_m(*AT_ORIGIN, ORIGIN.lat, ORIGIN.lon) < ORIGIN.radius_m
    assert distance_m(*AT_DESTINATION, DESTINATION.lat, DESTINATION.lon) < DESTINATION.radius_m
    assert distance_m(*ON_THE_ROAD, ORIGIN.lat, ORIGIN.lon) > 50_000


def test_starts_at_the_first_reading_after_departure_and_arrives_on_entering_the_destination(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-1", t0, t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(-20, 70), hot=range(30, 50)))
    stats = automation.AutomationStats()
    taken = automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR,
                                       stats=stats)  # fmt: skip
    assert taken >= 1 and (stats.started, stats.arrived, stats.errors) == (1, 1, 0)

    # The transitions happened at the readings' times, not the clock's.
    arrival = t0 + timedelta(minutes=65)
    assert state(conn, sid) == {"status": "under_review", "started_at": t0, "arrived_at": arrival}
    moves = [(e["event"], e["at"], e["actor"]) for e in timeline(conn, sid)
             if e["event"] in ("start", "arrive", "verdict", "review")]  # fmt: skip
    assert moves == [
        ("start", t0, "system:automation"),
        ("arrive", arrival, "system:automation"),
        ("verdict", arrival, "system:automation"),
        ("review", arrival, "system:automation"),
    ]
    start, arrive = (e for e in timeline(conn, sid) if e["event"] in ("start", "arrive"))
    assert start["reason"].startswith("first reading after departure")
    assert start["data"] == {"automatic": True, "rule": "departure", "device_id": "L-1",
                             "reading_ts": t0.isoformat()}  # fmt: skip
    assert f"entered destination geofence GLN {lane['destination_gln']}" in arrive["reason"]

    # The verdict judged the trip up to the arrival: 20 minutes at 12 °C with no budget.
    (verdict,) = lifecycle.verdicts(conn, shipment_id=sid)
    assert verdict["verdict"] == "exception"

    # The audit trail has each change of the shipment with the system actor and the reason.
    audited = conn.execute(
        "SELECT actor, reason, after ->> 'status' AS status FROM audit_log"
        " WHERE entity = 'shipments' AND entity_id = %s AND actor = 'system:automation'"
        " ORDER BY seq",
        (str(sid),),
    ).fetchall()
    assert [a["status"] for a in audited] == ["in_transit", "arrived", "under_review"]
    assert audited[0]["reason"] == start["reason"]
    assert audited[1]["reason"] == arrive["reason"]

    # A late reading (on the road, before the arrival) moves nothing again.
    events = len(timeline(conn, sid))
    ingest(db_dsn, [Reading("L-1", t0 + timedelta(minutes=64, seconds=30), 5.0,
                            lat=AT_DESTINATION[0], lon=AT_DESTINATION[1])])  # fmt: skip
    automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    automation.sweep(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    assert len(timeline(conn, sid)) == events
    assert state(conn, sid)["arrived_at"] == arrival


def test_leaving_the_origin_geofence_starts_a_shipment_without_a_planned_departure(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-2", None, t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(-20, 30)))  # still on the road
    automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    assert state(conn, sid) == {"status": "in_transit", "started_at": t0 + timedelta(minutes=5),
                                "arrived_at": None}  # fmt: skip
    (start,) = (e for e in timeline(conn, sid) if e["event"] == "start")
    assert start["reason"].startswith(f"left origin geofence GLN {lane['origin_gln']}")
    assert start["data"]["rule"] == "left_origin"


def test_a_logger_switched_on_away_from_the_origin_does_not_start_it(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-3", None, t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(10, 30)))  # never seen inside the origin
    automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    automation.sweep(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    assert state(conn, sid)["status"] == "planned"


def test_a_change_committed_after_a_later_one_is_not_passed_over(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    """The ingester's two writers commit out of change-id order: the first one's readings
    (after the departure) are taken once it commits, not passed over by the cursor."""
    sid = book(conn, lane, "AUTO-ORDER", t0 + timedelta(minutes=2), t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(-20, -10)))  # before the departure; the day's chunk exists
    assert automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR) == 1
    # Another logger of the shipment (two writers never write one logger's device_state row at
    # once: the second would wait for the first).
    conn.execute("INSERT INTO devices (device_id, interval_s) VALUES ('L-2', 60)")
    bookings.attach(
        conn, OPERATOR, shipment_id=sid, device_id="L-2", now=t0 - timedelta(minutes=30)
    )
    with psycopg.connect(db_dsn) as slow:
        ingest_in(slow, trip(t0, range(2, 40)))  # draws the lower change id, stays open
        other = [
            Reading("L-2", r.ts, r.temp_c, lat=r.lat, lon=r.lon) for r in trip(t0, range(-10, 2))
        ]
        ingest(db_dsn, other)  # the next one, committed first
        first = automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
        assert state(conn, sid)["status"] == "planned"
        slow.commit()
    second = automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    assert first + second == 2 and _pending(conn) == 0
    assert state(conn, sid)["status"] == "in_transit"
    # The first reading after the departure, the slow writer's.
    assert state(conn, sid)["started_at"] == t0 + timedelta(minutes=2)


def test_a_restarted_worker_misses_nothing_and_repeats_nothing(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-4", t0 + timedelta(minutes=2), t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(-20, 2)))  # all before the departure
    assert automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR) >= 1
    assert state(conn, sid)["status"] == "planned"

    # The worker is gone (its connection closed); readings keep coming meanwhile.
    conn.close()
    ingest(db_dsn, trip(t0, range(2, 40)))
    ingest(db_dsn, trip(t0, range(40, 80)))
    with automation.connect(db_dsn) as again:
        position = "SELECT last_xid, last_change_id FROM engine_cursor WHERE name = 'automation'"
        (cursor,) = again.execute(position).fetchall()
        assert _pending(again) == 2
        assert automation.process_changes(again, now=datetime.now(UTC),
                                          gap_factor=GAP_FACTOR) == 2  # fmt: skip
        assert state(again, sid)["status"] == "under_review"
        assert state(again, sid)["started_at"] == t0 + timedelta(minutes=2)
        (moved,) = again.execute(position).fetchall()
        assert _pending(again) == 0
        assert (int(moved["last_xid"]), moved["last_change_id"]) > (
            int(cursor["last_xid"]), cursor["last_change_id"])  # fmt: skip
        # Nothing new: nothing taken, nothing moved.
        events = len(timeline(again, sid))
        assert automation.process_changes(again, now=datetime.now(UTC),
                                          gap_factor=GAP_FACTOR) == 0  # fmt: skip
        assert len(timeline(again, sid)) == events


def test_a_shipment_someone_started_by_hand_is_theirs(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-5", t0, t0 - timedelta(minutes=30))
    ingest(db_dsn, trip(t0, range(-5, 10)))
    stale = automation_q.candidates(conn=conn, devices=["L-1"])
    lifecycle.start(conn, OPERATOR, shipment_id=sid, now=t0 + timedelta(minutes=1))
    assert automation.consider(conn, stale[0], now=datetime.now(UTC), gap_factor=GAP_FACTOR) == []
    starts = [e for e in timeline(conn, sid) if e["event"] == "start"]
    assert [e["actor"] for e in starts] == ["ana.ruiz"]


def test_every_lifecycle_entry_is_queued_once_per_receiver(
    conn: Conn, db_dsn: str, lane: dict[str, Any], t0: datetime
) -> None:
    # Entries written while no receiver is configured are handled without a notification.
    early = book(conn, lane, "AUTO-6", t0, t0 - timedelta(minutes=30))
    assert automation.queue_webhooks(conn, receivers=[]) >= 1
    # Then two receivers; the trip: started, arrived, verdict (and review, which is not sent).
    receivers = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    ingest(db_dsn, trip(t0, range(-5, 70)))
    automation.process_changes(conn, now=datetime.now(UTC), gap_factor=GAP_FACTOR)
    handled = automation.queue_webhooks(conn, receivers=receivers)
    assert automation.queue_webhooks(conn, receivers=receivers) == 0  # nothing twice
    rows = conn.execute(
        "SELECT n.event, n.target, n.alert_id, n.payload, e.event AS entry"
        " FROM notifications n JOIN shipment_events e ON e.event_id = n.shipment_event_id"
        " WHERE e.shipment_id = %s ORDER BY n.id",
        (early,),
    ).fetchall()
    # Every entry of the trip that has a webhook event, in order; not the create (handled before).
    expected = [automation.WEBHOOK_EVENTS[e["event"]] for e in timeline(conn, early)
                if e["event"] in automation.WEBHOOK_EVENTS and e["event"] != "create"]  # fmt: skip
    assert {"shipment.started", "shipment.arrived", "shipment.verdict"} <= set(expected)
    assert handled == len(expected)
    assert [r["event"] for r in rows if r["target"] == receivers[0]] == expected
    assert [r["event"] for r in rows if r["target"] == receivers[1]] == expected
    assert "shipment.created" not in {r["event"] for r in rows}
    assert all(r["alert_id"] is None for r in rows)
    payload = rows[0]["payload"]
    assert payload["shipment"] == {"id": early, "reference": "AUTO-6", "status": "under_review"}
    assert payload["entry"]["actor"] == "system:automation"


# --------------------------------------------------------------------------------------------
# The real stack: MQTT → ingester → automation → outbox → the rules engine's delivery
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(settings: Settings, *, automate: bool = True) -> AsyncIterator[None]:
    """The ingester, the rules engine (whose worker delivers the webhooks) and the automation,
    as ``coldchain up`` runs them."""
    stop = asyncio.Event()
    async with AsyncConnectionPool(settings.db.dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        ingester = Ingester(settings, TimescaleSink(pool))
        tasks = [
            asyncio.create_task(ingester.run(stop), name="ingest"),
            asyncio.create_task(run_rules_engine(settings, stop), name="rules"),
        ]
        if automate:
            tasks.append(asyncio.create_task(automation.run_automation(settings, stop)))
        await asyncio.wait_for(ingester.connected.wait(), 20)
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def publish(settings: Settings, readings: list[Reading]) -> None:
    """Upload the readings as a logger does, ten at a time."""
    topic = telemetry_topic(settings.mqtt.topic_root, "L-1")
    async with aiomqtt.Client("127.0.0.1", settings.mqtt.port) as client:
        for i in range(0, len(readings), 10):
            await client.publish(topic, batch_payload("L-1", readings[i : i + 10]), qos=1)


async def until(check: Any, what: str, within_s: float = 30.0) -> None:
    for _ in range(int(within_s / 0.2)):
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within_s} s: {what}")


async def test_over_mqtt_a_shipment_starts_arrives_and_its_webhooks_are_signed(
    conn: Conn, db_dsn: str, settings: Settings, lane: dict[str, Any], t0: datetime
) -> None:
    sid = book(conn, lane, "AUTO-MQTT", t0, t0 - timedelta(minutes=30))
    async with WebhookReceiver() as rx:
        configured = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={"webhook_secret": SecretStr(SECRET.decode())}
                ),
                "automation": AutomationSettings(webhook_urls=[rx.url]),
            }
        )
        async with running(configured):
            await publish(configured, trip(t0, range(-10, 40)))
            await until(lambda: state(conn, sid)["status"] == "in_transit", "started")
            await publish(configured, trip(t0, range(40, 70)))
            await until(lambda: state(conn, sid)["status"] == "under_review", "arrived")
            await until(lambda: len(rx.received) >= 4, "four webhooks received")

        # Each signed (the receiver refuses others), in the order of the timeline.
        events = [h["x-coldchain-event"] for h, _, signed in rx.received if signed]
        assert events == ["shipment.created", "shipment.started", "shipment.arrived",
                          "shipment.verdict"]  # fmt: skip
        by_event = {p["event"]: p for _, p, _ in rx.received}
        started = by_event["shipment.started"]["entry"]
        assert started["actor"] == "system:automation"
        assert datetime.fromisoformat(started["at"]) == t0
        arrived = by_event["shipment.arrived"]["entry"]
        assert datetime.fromisoformat(arrived["at"]) == t0 + timedelta(minutes=65)
        assert f"GLN {lane['destination_gln']}" in arrived["reason"]
        assert by_event["shipment.verdict"]["entry"]["data"]["verdict"] == "conforming"

    # Stopped, a late reading comes in (the ingester alone), then the automation restarts:
    # it takes the change after its cursor and moves nothing again.
    entries = len(timeline(conn, sid))
    async with running(settings, automate=False):
        late = t0 + timedelta(minutes=30, seconds=30)  # new: between two stored readings
        await publish(settings, [Reading("L-1", late, 5.0, lat=ON_THE_ROAD[0], lon=ON_THE_ROAD[1])])
        await until(lambda: _pending(conn) > 0, "the late reading stored")
    async with running(settings):
        await until(lambda: _pending(conn) == 0, "the automation caught up")
    assert len(timeline(conn, sid)) == entries
    assert state(conn, sid)["arrived_at"] == t0 + timedelta(minutes=65)


def _pending(conn: Conn) -> int:
    """Reading changes after the automation's cursor."""
    row = conn.execute(pq.CHANGES_BEHIND, {"prefix": automation.CURSOR_NAME}).fetchone()
    assert row is not None
    return int(row["behind"])


def test_the_outbox_trigger_and_the_webhook_events_name_the_same_entries(
    conn: Conn, lane: dict[str, Any], t0: datetime
) -> None:
    """The trigger (SQL) picks the entries, services.automation names their events: one list.
    Every kind of timeline entry is written once; exactly the named ones reach the outbox."""
    sid = book(conn, lane, "AUTO-KINDS", t0, t0 - timedelta(minutes=30))
    kinds = conn.execute(
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint"
        " WHERE conrelid = 'shipment_events'::regclass AND contype = 'c'"
        " AND pg_get_constraintdef(oid) LIKE '%%event%%start%%'"
    ).fetchone()
    assert kinds is not None
    every = sorted(set(re.findall(r"'([a-z_]+)'::text", kinds["d"])))
    assert {"create", "start", "review", "logger_attached"} <= set(every)
    before = conn.execute("SELECT max(event_id) AS m FROM lifecycle_outbox").fetchone()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO shipment_events (shipment_id, event, actor) VALUES (%s, %s, 'test')",
            [(sid, kind) for kind in every],
        )
    queued = conn.execute(
        "SELECT e.event FROM lifecycle_outbox o JOIN shipment_events e USING (event_id)"
        " WHERE o.event_id > %s AND e.actor = 'test'",
        ((before or {}).get("m") or 0,),
    ).fetchall()
    assert sorted(r["event"] for r in queued) == sorted(automation.WEBHOOK_EVENTS)

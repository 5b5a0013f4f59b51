"""The rules engine against the real database: excursions, alerts, late data, restarts."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from alerts.rules import rules_from_dict
from coldchain.errors import ConfigError
from coldchain.settings import AlertsSettings, Settings
from coldchain.telemetry import Reading
from db.queries import alerts as alert_q
from ingest.sink import Batch, TimescaleSink
from tests.fixtures.data import VACCINE_GTIN, seed_shipment
from tests.fixtures.engines import caught_up, rules_process, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def profile(minutes: int, hot: range, hot_c: float = 12.0) -> list[float]:
    """5 °C, with ``hot_c`` during the minutes in ``hot``."""
    return [hot_c if m in hot else 5.0 for m in range(minutes)]


def readings(device: str, temps: list[float], *, skip: range = range(0)) -> list[Reading]:
    return [
        Reading(device, T0 + timedelta(minutes=m), t) for m, t in enumerate(temps) if m not in skip
    ]


async def write(pool: AsyncConnectionPool, rs: list[Reading]) -> None:
    await TimescaleSink(pool).write(Batch.of(rs))


def rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
async def pool(db_dsn: str):
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


class Clock:
    """A clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def engine(pool: AsyncConnectionPool, settings: Settings, now: datetime) -> RulesEngine:
    return RulesEngine(pool, settings, clock=Clock(now))


def set_clock(rules: RulesEngine, now: datetime) -> None:
    """Move the engine's (test) clock."""
    clock = rules._clock
    assert isinstance(clock, Clock)
    clock.now = now


async def test_excursion_with_alarm_delay_opens_one_alert_at_reading_time(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    temps = profile(120, range(30, 60))  # 30 minutes at 12 °C, alarm delay 15 min
    await write(pool, readings("LOG-1", temps))
    rules = engine(pool, settings, T0 + timedelta(minutes=120))
    await rules.setup()
    await rules.process_changes()

    exc = rows(
        db_dsn,
        """SELECT direction, start_ts, end_ts, max_c, alarm_at, n_readings
                          FROM excursions WHERE superseded_at IS NULL""",
    )
    assert exc == [
        (
            "high",
            T0 + timedelta(minutes=30),
            T0 + timedelta(minutes=60),
            12.0,
            T0 + timedelta(minutes=45),
            30,
        )
    ]
    alerts = rows(
        db_dsn,
        "SELECT shipment_id, rule_key, severity, state, triggered_at, cleared_at IS NOT NULL FROM alerts",
    )
    assert alerts == [
        (shp.shipment_id, "temp_high", "major", "open", T0 + timedelta(minutes=45), True)
    ]

    # Evaluating again (a restart, a duplicate notification) changes nothing.
    await rules.process_changes()
    await engine(pool, settings, T0 + timedelta(minutes=121)).process_changes()
    assert len(rows(db_dsn, "SELECT 1 FROM alerts")) == 1
    assert len(rows(db_dsn, "SELECT 1 FROM excursions")) == 1


async def test_short_excursion_is_recorded_without_alert(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    await write(pool, readings("LOG-1", profile(60, range(10, 15))))  # a door opening
    rules = engine(pool, settings, T0 + timedelta(hours=1))
    await rules.setup()
    await rules.process_changes()
    assert rows(db_dsn, "SELECT alarm FROM excursions") == [(False,)]
    assert rows(db_dsn, "SELECT 1 FROM alerts") == []


async def test_late_batch_gives_the_in_order_result_and_keeps_history(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    temps = profile(120, range(30, 70))
    # First the logger's live readings with a coverage hole at minutes 40–59 ...
    await write(pool, readings("LOG-1", temps, skip=range(40, 60)))
    now = T0 + timedelta(minutes=120)
    rules = engine(pool, settings, now)
    await rules.setup()
    await rules.process_changes()
    before = rows(
        db_dsn,
        "SELECT start_ts, end_ts, ended_by_gap FROM excursions WHERE superseded_at IS NULL ORDER BY start_ts",
    )
    assert len(before) == 2  # the gap splits it: unknown time is not in range
    assert before[0][2] is True

    # ... then the buffered upload fills the hole, out of order.
    late = readings("LOG-1", temps)[40:60]
    await write(pool, list(reversed(late)))
    await rules.process_changes()
    after = rows(
        db_dsn, "SELECT start_ts, end_ts, n_readings FROM excursions WHERE superseded_at IS NULL"
    )
    assert after == [(T0 + timedelta(minutes=30), T0 + timedelta(minutes=70), 40)]
    superseded = rows(
        db_dsn, "SELECT superseded_reason FROM excursions WHERE superseded_at IS NOT NULL"
    )
    assert len(superseded) == 2

    # The same end state as a database that received everything in order.
    assert len(rows(db_dsn, "SELECT 1 FROM alerts WHERE state <> 'resolved'")) == 1


async def test_reading_outside_the_assignment_is_not_judged(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0, hours=1)
    # Hot readings after the logger left the shipment belong to no shipment.
    await write(
        pool, [Reading("LOG-1", T0 + timedelta(hours=2, minutes=m), 20.0) for m in range(40)]
    )
    rules = engine(pool, settings, T0 + timedelta(hours=3))
    await rules.setup()
    await rules.process_changes()
    assert rows(db_dsn, "SELECT 1 FROM excursions") == []


# --------------------------------------------------------------------------------------------
# Late and out-of-order data: the same end state as an in-order feed
# --------------------------------------------------------------------------------------------

# Four hours, one reading a minute: a 30 min high excursion, a high one split by one in-range
# reading, a low one, a freezing one, and a high one still open at the end.
LATE_PROFILE = (
    [5.0] * 30 + [12.0] * 30 + [5.0] * 30 + [10.0] * 40 + [5.0] * 20
    + [1.0] * 20 + [5.0] * 10 + [-1.0] * 10 + [5.0] * 30 + [11.0] * 20
)  # fmt: skip
LATE_PROFILE[110] = 5.0
LATE_NOW = T0 + timedelta(minutes=240)


def minutes(device: str, ms: Iterable[int]) -> list[Reading]:
    return [Reading(device, T0 + timedelta(minutes=m), LATE_PROFILE[m]) for m in ms]


def current_excursions(dsn: str, device: str) -> list[tuple]:
    return rows(
        dsn,
        """SELECT direction, start_ts, end_ts, last_out_ts, ended_by_gap, n_readings,
                  round(degree_minutes::numeric, 6), alarm_at, freeze_alarm, alert_id IS NOT NULL
           FROM excursions WHERE device_id = %s AND superseded_at IS NULL ORDER BY start_ts""",
        device,
    )


def temperature_alerts(dsn: str, shipment_id: int) -> list[tuple]:
    return rows(
        dsn,
        """SELECT rule_key, severity, state, triggered_at, cleared_at IS NOT NULL FROM alerts
           WHERE shipment_id = %s AND rule_key IN ('temp_high', 'temp_low') ORDER BY rule_key""",
        shipment_id,
    )


async def test_late_batches_reopen_extend_and_split_exactly_as_in_order(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    start = T0 - timedelta(hours=1)
    in_order = seed_shipment(db_dsn, reference="IN-ORDER", device_id="LOG-A", start=start)
    late = seed_shipment(db_dsn, reference="LATE", device_id="LOG-B", start=start)
    shuffled = seed_shipment(db_dsn, reference="SHUFFLED", device_id="LOG-C", start=start)
    await engine(pool, settings, LATE_NOW).setup()

    # A: ten-minute batches in order, each judged when it arrives.
    for m in range(0, 240, 10):
        await write(pool, minutes("LOG-A", range(m, m + 10)))
        await engine(pool, settings, T0 + timedelta(minutes=m + 10)).process_changes()

    # B: a logger that was out of coverage, uploading late and out of order.
    judge = engine(pool, settings, LATE_NOW)
    schedule = [
        [*range(0, 40)],
        [*range(60, 110), *range(111, 140)],  # the 40–59 hole ends excursion 1 by a gap
        [*range(59, 39, -1)],  # fills it, reversed: excursion 1 extends and now alarms
        [110],  # one in-range reading splits excursion 2
        [*range(140, 230)],  # the last excursion, silent since 229: ended by the gap
        [*range(230, 240)],  # ... and re-opened by the rest
    ]
    snapshots = []
    for batch in schedule:
        await write(pool, minutes("LOG-B", batch))
        await judge.process_changes()
        snapshots.append(current_excursions(db_dsn, "LOG-B"))
    assert snapshots[1][0][4] is True and snapshots[2][0][2] == T0 + timedelta(minutes=60)
    assert len([e for e in snapshots[2] if e[1] == T0 + timedelta(minutes=90)]) == 1
    assert len(snapshots[3]) == len(snapshots[2]) + 1  # split
    assert snapshots[4][-1][4] is True and snapshots[5][-1][2] is None  # re-opened

    # C: a seeded random arrival order in five uploads.
    order = list(range(240))
    random.Random(7).shuffle(order)
    for k in range(5):
        await write(pool, minutes("LOG-C", order[k * 48 : (k + 1) * 48]))
        await judge.process_changes()

    expected = current_excursions(db_dsn, "LOG-A")
    assert [e[0] for e in expected] == ["high", "high", "high", "low", "low", "high"]
    assert current_excursions(db_dsn, "LOG-B") == expected
    assert current_excursions(db_dsn, "LOG-C") == expected
    alerts = temperature_alerts(db_dsn, in_order.shipment_id)
    assert alerts == [
        ("temp_high", "major", "open", T0 + timedelta(minutes=45), False),
        ("temp_low", "critical", "open", T0 + timedelta(minutes=165), True),
    ]
    assert temperature_alerts(db_dsn, late.shipment_id) == alerts
    assert temperature_alerts(db_dsn, shuffled.shipment_id) == alerts
    # What changed is recorded: the late device's superseded versions stay.
    assert (
        rows(
            db_dsn,
            "SELECT count(*) FROM excursions WHERE device_id = 'LOG-B' AND superseded_at IS NOT NULL",
        )[0][0]
        >= 3
    )


# --------------------------------------------------------------------------------------------
# Flapping, the other rules, stored rules
# --------------------------------------------------------------------------------------------


async def test_a_value_hovering_at_the_limit_does_not_flap(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    seed_shipment(db_dsn, start=T0 - timedelta(hours=1), alarm_delay_s=0)
    # 8.2 / 7.9 alternating for 30 min (every excursion alarms at once), then steady 5 °C.
    temps = [8.2 if m % 2 else 7.9 for m in range(30)] + [5.0] * 30
    rules = engine(pool, settings, T0 + timedelta(minutes=60))
    await rules.setup()
    for m in range(0, 60, 2):
        await write(pool, readings("LOG-1", temps)[m : m + 2])
        set_clock(rules, T0 + timedelta(minutes=m + 2))
        await rules.process_changes()
    kinds = [r[0] for r in rows(db_dsn, "SELECT kind FROM alert_events ORDER BY id")]
    assert len(rows(db_dsn, "SELECT 1 FROM alerts")) == 1, rows(
        db_dsn, "SELECT rule_key, title, triggered_at FROM alerts"
    )
    # One alert, fifteen excursions joined, cleared once: the clear delay (5 min) outlasted
    # every 1-min dip; only the final calm cleared it.
    assert kinds.count("opened") == 1 and kinds.count("excursion_added") == 14
    assert kinds.count("cleared") == 1 and "reopened" not in kinds


async def test_budget_warning_is_upgraded_when_exhausted_and_other_rules_alert(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    with psycopg.connect(db_dsn) as conn:
        # A one-hour budget, a humidity range and an MKT limit on the product row; the MKT
        # window shortened to an hour for the product through the API's stored rules.
        conn.execute(
            "UPDATE products SET stability_budget_s = 3600, rh_min = 20, rh_max = 80, "
            "mkt_limit_c = 8.0"
        )
        conn.execute(
            "INSERT INTO rule_definitions (product_gtin, version, definition, created_by) "
            "VALUES (%s, 1, %s, 'qa')",
            (VACCINE_GTIN, Jsonb({"mkt": {"window_h": 1}})),
        )
    temps = [5.0] * 10 + [9.0] * 70 + [5.0] * 20
    rs = [
        Reading("LOG-1", T0 + timedelta(minutes=m), t, 90.0 if 30 <= m < 70 else 50.0, None,
                None, 0.5 if m < 60 else 0.1)
        for m, t in enumerate(temps)
    ]  # fmt: skip
    await write(pool, rs[:62])
    rules = engine(pool, settings, T0 + timedelta(minutes=62))
    await rules.setup()
    await rules.process_changes()
    # 48 min out (80 % of the hour) at minute 58.
    budget = rows(db_dsn, "SELECT severity, triggered_at FROM alerts WHERE rule_key = 'budget'")
    assert budget == [("warning", T0 + timedelta(minutes=58))]
    await write(pool, rs[62:])
    set_clock(rules, T0 + timedelta(minutes=100))
    await rules.process_changes()
    found = {
        r[0]: r[1:]
        for r in rows(
            db_dsn,
            "SELECT rule_key, severity, triggered_at, thresholds->>'rule' FROM alerts "
            "WHERE shipment_id = %s",
            shp.shipment_id,
        )
    }
    # Exhausted at minute 70: the same alert, upgraded.
    assert found["budget"] == ("major", T0 + timedelta(minutes=58), "budget")
    events = rows(
        db_dsn,
        "SELECT e.kind, e.data FROM alert_events e JOIN alerts a USING (alert_id) "
        "WHERE a.rule_key = 'budget' ORDER BY e.id",
    )
    assert [(e[0], e[1].get("to")) for e in events] == [("opened", None), ("upgraded", "major")]
    assert found["humidity"] == ("warning", T0 + timedelta(minutes=45), "humidity")
    assert found["battery_low"] == ("warning", T0 + timedelta(minutes=60), "battery")
    assert found["temp_high"][:2] == ("major", T0 + timedelta(minutes=25))
    # The one-hour MKT is judged from half an hour of data and passes 8 °C a few minutes later.
    assert found["mkt"][0] == "major"
    assert T0 + timedelta(minutes=30) <= found["mkt"][1] <= T0 + timedelta(minutes=40)
    assert len(found) == 5


async def test_shipment_rules_stored_through_the_api_override_the_product(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))
    with psycopg.connect(db_dsn) as conn:
        for version, delay in ((1, 10), (2, 5)):  # the highest version is in force
            conn.execute(
                "INSERT INTO rule_definitions (shipment_id, version, definition, created_by) "
                "VALUES (%s, %s, %s, 'qa')",
                (shp.shipment_id, version, Jsonb({"temperature": {"alarm_delay_min": delay}})),
            )
    await write(pool, readings("LOG-1", profile(60, range(20, 30))))  # 10 min at 12 °C
    rules = engine(pool, settings, T0 + timedelta(hours=1))
    await rules.setup()
    await rules.process_changes()
    alert = rows(db_dsn, "SELECT triggered_at, thresholds FROM alerts")
    assert alert[0][0] == T0 + timedelta(minutes=25)
    thresholds = alert[0][1]
    assert thresholds["alarm_delay_min"] == 5 and thresholds["high_c"] == 8.0
    assert thresholds["sources"][-1] == f"stored shipment rules {shp.reference} v2"


# --------------------------------------------------------------------------------------------
# Offline and escalation
# --------------------------------------------------------------------------------------------


async def test_an_offline_device_raises_and_then_clears_no_data(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    shp = seed_shipment(db_dsn, start=T0 - timedelta(hours=1))  # 60 s logger, factor 10
    await write(pool, readings("LOG-1", [5.0] * 30))  # minutes 0–29
    rules = engine(pool, settings, T0 + timedelta(minutes=35))
    await rules.setup()
    await rules.process_changes()
    await rules.check_offline()
    assert rows(db_dsn, "SELECT 1 FROM alerts") == []

    # Old readings that have only just arrived (a backlog being delivered) are not silence.
    set_clock(rules, T0 + timedelta(minutes=45))
    await rules.check_offline()
    assert rows(db_dsn, "SELECT 1 FROM alerts") == []
    # They arrived as they were measured: minute 29's reading arrived 16 minutes before minute 45.
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE device_state SET received_at = now() - interval '16 minutes'")

    set_clock(rules, T0 + timedelta(minutes=45))
    await rules.check_offline()
    alert = rows(
        db_dsn, "SELECT rule_key, severity, state, triggered_at, device_id, title FROM alerts"
    )
    assert alert[0][:5] == ("device_offline", "major", "open", T0 + timedelta(minutes=39), "LOG-1")
    assert "No data from LOG-1" in alert[0][5]
    await rules.check_offline()  # still silent: nothing new
    assert len(rows(db_dsn, "SELECT 1 FROM alert_events")) == 1

    # Readings resume at 46; five minutes later (the clear delay) it resolves by itself.
    await write(pool, [Reading("LOG-1", T0 + timedelta(minutes=m), 5.0) for m in range(46, 48)])
    set_clock(rules, T0 + timedelta(minutes=48))
    await rules.process_changes()
    assert rows(db_dsn, "SELECT state FROM alerts") == [("open",)]
    assert rows(db_dsn, "SELECT holding, ended_at FROM rule_states") == [
        (False, T0 + timedelta(minutes=47))
    ]
    set_clock(rules, T0 + timedelta(minutes=53))
    await rules.check_offline()
    assert rows(
        db_dsn, "SELECT state, resolved_by FROM alerts WHERE shipment_id = %s", shp.shipment_id
    ) == [("resolved", "system")]
    assert [r[0] for r in rows(db_dsn, "SELECT kind FROM alert_events ORDER BY id")] == [
        "opened",
        "resolved",
    ]


ESCALATING = rules_from_dict(
    {
        "escalation": {
            "tiers": [
                {"name": "tower", "webhooks": ["http://127.0.0.1:9/tower"]},
                {"name": "qa", "after_min": 15, "emails": ["qa@example.com"]},
                {"name": "qp", "after_min": 45, "emails": ["qp@example.com"]},
            ]
        }
    }
)


async def test_escalation_fires_when_nobody_acknowledges_and_stops_when_someone_does(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    acked = seed_shipment(
        db_dsn, reference="ACKED", device_id="LOG-A", start=T0 - timedelta(hours=1)
    )
    ignored = seed_shipment(
        db_dsn, reference="IGNORED", device_id="LOG-B", start=T0 - timedelta(hours=1)
    )
    for device in ("LOG-A", "LOG-B"):
        await write(pool, readings(device, profile(60, range(10, 40))))
    # E-mail recipients are queued only when there is an SMTP server to send them to.
    smtp = AlertsSettings.model_validate({**settings.alerts.model_dump(), "smtp_host": "127.0.0.1"})
    with_smtp = settings.model_copy(update={"alerts": smtp})
    rules = RulesEngine(
        pool, with_smtp, clock=Clock(T0 + timedelta(hours=1)), rules_file=ESCALATING
    )
    await rules.setup()
    await rules.process_changes()
    opened = datetime.now(UTC)

    def at(minutes_after: float) -> None:
        set_clock(rules, opened + timedelta(minutes=minutes_after))

    def tiers(shipment_id: int) -> list[tuple]:
        return rows(
            db_dsn,
            "SELECT n.event, n.tier, n.target FROM notifications n JOIN alerts a USING (alert_id) "
            "WHERE a.shipment_id = %s ORDER BY n.id",
            shipment_id,
        )

    # Tier 0 hears at once (the excursion is over already: opened, then cleared).
    assert tiers(acked.shipment_id) == [
        ("opened", 0, "http://127.0.0.1:9/tower"),
        ("cleared", 0, "http://127.0.0.1:9/tower"),
    ]
    at(5)
    assert await rules.escalate() == 0
    at(16)
    assert await rules.escalate() == 2
    assert tiers(acked.shipment_id)[-1] == ("escalated", 1, "qa@example.com")

    # Somebody acknowledges ACKED through the API's own function: its escalation stops.
    alert_id = rows(
        db_dsn, "SELECT alert_id FROM alerts WHERE shipment_id = %s", acked.shipment_id
    )[0][0]
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        alert_q.acknowledge_alert(conn=conn, alert_id=alert_id, by="dana", comment="reefer checked")
    at(60)
    assert await rules.escalate() == 1
    escalated_tiers = [
        (t[1], t[2]) for s in (acked, ignored) for t in tiers(s.shipment_id) if t[0] == "escalated"
    ]
    assert escalated_tiers == [
        (1, "qa@example.com"),
        (1, "qa@example.com"),
        (2, "qp@example.com"),
    ]
    levels = rows(db_dsn, "SELECT shipment_id, escalation_level FROM alerts ORDER BY shipment_id")
    assert levels == [(acked.shipment_id, 1), (ignored.shipment_id, 2)]
    at(600)
    assert await rules.escalate() == 0  # the last tier was told; nothing more to do
    escalated = rows(db_dsn, "SELECT data FROM alert_events WHERE kind = 'escalated' ORDER BY id")
    assert [e[0]["tiers"] for e in escalated] == [["qa"], ["qa"], ["qp"]]
    # Its condition had cleared already, so acknowledging it resolves it, and every tier that
    # heard of it hears that.
    await rules.check_offline()
    assert rows(db_dsn, "SELECT state FROM alerts WHERE alert_id = %s", alert_id) == [("resolved",)]
    assert [t[1] for t in tiers(acked.shipment_id) if t[0] == "resolved"] == [0, 1]


# --------------------------------------------------------------------------------------------
# Restart safety: `coldchain rules` killed mid-stream and started again
# --------------------------------------------------------------------------------------------


async def test_killed_mid_stream_and_restarted_it_neither_loses_nor_duplicates(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str, tmp_path: Path
) -> None:
    # Real time this time (the process judges against its own clock): data from 5 h ago.
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=5)
    streamed = seed_shipment(
        db_dsn, reference="STREAMED", device_id="LOG-S", start=base - timedelta(hours=1)
    )
    at_once = seed_shipment(
        db_dsn, reference="AT-ONCE", device_id="LOG-O", start=base - timedelta(hours=1)
    )

    def batch(device: str, ms: range) -> list[Reading]:
        return [Reading(device, base + timedelta(minutes=m), LATE_PROFILE[m]) for m in ms]

    log = tmp_path / "rules.log"
    proc = rules_process(settings, log)
    try:
        for k, m in enumerate(range(0, 240, 20)):
            await write(pool, batch("LOG-S", range(m, m + 20)))
            if k == 3:
                await wait_until(lambda: bool(rows(db_dsn, "SELECT 1 FROM alerts")), 30, log)
            if k in (3, 7):
                # Killed while it works on the batch just committed (or just after): SIGKILL,
                # no clean shutdown; the next batches arrive while it is down.
                await asyncio.sleep(0.02 * k)
                proc.kill()
                proc.wait()
                if k == 3:
                    await write(pool, batch("LOG-S", range(m + 20, m + 40)))
                proc = rules_process(settings, log)
            if k == 3:
                continue
            await asyncio.sleep(0.05)
        await write(pool, batch("LOG-O", range(240)))
        await wait_until(lambda: caught_up(db_dsn), 60, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert "rules engine stopped" in log.read_text()

    assert current_excursions(db_dsn, "LOG-S") == current_excursions(db_dsn, "LOG-O")
    assert temperature_alerts(db_dsn, streamed.shipment_id) == temperature_alerts(
        db_dsn, at_once.shipment_id
    )
    # No alert twice, no event twice, no notification twice, none lost.
    per_alert = rows(
        db_dsn,
        """SELECT a.rule_key,
                  (SELECT count(*) FROM alert_events e WHERE e.alert_id = a.alert_id AND e.kind = 'opened'),
                  (SELECT count(*) FROM notifications n WHERE n.alert_id = a.alert_id AND n.event = 'opened')
           FROM alerts a WHERE a.shipment_id = %s ORDER BY a.rule_key""",
        streamed.shipment_id,
    )
    assert [(r[0], r[1], r[2]) for r in per_alert if r[0].startswith("temp")] == [
        ("temp_high", 1, 1),
        ("temp_low", 1, 1),
    ]


async def test_the_rules_file_is_checked_at_start_and_reloaded_when_edited(
    pool: AsyncConnectionPool, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[defaults]\nbattery = { belw = 0.3 }\n")

    def with_file() -> Settings:
        alerts = AlertsSettings.model_validate({**settings.alerts.model_dump(), "rules_file": path})
        return settings.model_copy(update={"alerts": alerts})

    with pytest.raises(ConfigError, match=rf"{path}: defaults\.battery\.belw"):
        RulesEngine(pool, with_file())
    path.write_text("[defaults]\nbattery = { below = 0.3 }\n")
    rules = RulesEngine(pool, with_file())
    assert rules._rules.defaults.battery is not None
    # A broken edit is reported and the rules in force stay; a good one is taken.
    path.write_text("[defaults]\nbattery = { below = 3 }\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    rules.reload_rules()
    assert "keeping the previous rules" in caplog.text
    assert rules._rules.defaults.battery.below == 0.3
    path.write_text("[defaults]\nbattery = { below = 0.4 }\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    rules.reload_rules()
    assert rules._rules.defaults.battery.below == 0.4

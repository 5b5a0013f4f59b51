"""The engine's reminders against the real database, with an injected clock: trigger →
reminders every N minutes → escalation → acknowledgement from the link stops both; quiet hours
hold a reminder and send it when they end; two engines never send the same reminder twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.partitions import Claims
from alerts.rounds import RulesEngine
from alerts.rules import EscalationPolicy, EscalationTier, QuietHours, Reminders, RulesFile
from coldchain.settings import AlertsSettings, Settings, WebSettings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from security import passwords
from security.ratelimit import LoginLimiter
from services import ack
from tests.fixtures.auth import Person
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration

PUBLIC = "https://cold.example"
TOWER_HOOK = "https://hooks.example/tower"
QA_HOOK = "https://hooks.example/qa"
PIN = "482916"


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=4) as p:
        await p.wait()
        yield p


class Clock:
    """The engine's clock: the real time at the start, moved on by hand."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.start + self.offset

    def at(self, minutes: float) -> None:
        self.offset = timedelta(minutes=minutes)


def engine_settings(settings: Settings) -> Settings:
    alerts = AlertsSettings.model_validate(
        {**settings.alerts.model_dump(), "smtp_host": "127.0.0.1"}  # e-mail recipients queued
    )
    web = WebSettings.model_validate({**settings.web.model_dump(), "public_url": PUBLIC})
    return settings.model_copy(update={"alerts": alerts, "web": web})


def policy(email: str, **extra: Any) -> RulesFile:
    return RulesFile(
        escalation=EscalationPolicy(
            tiers=[
                EscalationTier(name="tower", webhooks=[TOWER_HOOK], emails=[email]),
                EscalationTier(name="qa", after_min=15, webhooks=[QA_HOOK]),
            ],
            reminders=Reminders(major=5),
            **extra,
        )
    )


async def open_alert(
    pool: AsyncConnectionPool, settings: Settings, dsn: str, rules: RulesFile, clock: Clock
) -> Callable[..., RulesEngine]:
    """A high excursion under way (alarmed, not cleared): the alert opens at the clock's start."""
    start = clock.start - timedelta(hours=1)
    seed_shipment(dsn, start=start - timedelta(hours=1))
    temps = [5.0 if m < 10 else 12.0 for m in range(60)]
    await TimescaleSink(pool).write(
        Batch.of([Reading("LOG-1", start + timedelta(minutes=m), t) for m, t in enumerate(temps)])
    )

    def engine(claims: Claims | None = None) -> RulesEngine:
        return RulesEngine(
            pool, engine_settings(settings), clock=clock, rules_file=rules, claims=claims
        )

    first = engine()
    await first.setup()
    await first.process_changes()
    return engine


def notifications(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, event, tier, channel, target, payload FROM notifications ORDER BY id"
        ).fetchall()


def person_with_pin(dsn: str, person: Person, email: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE app_users SET email = %s, ack_pin_hash = %s WHERE username = %s",
            (email, passwords.hash_password(PIN), person.username),
        )


def token_of(payload: dict[str, Any]) -> str:
    url = payload["links"]["ack"]
    assert url.startswith(f"{PUBLIC}/ack/")
    return urlsplit(url).path.rsplit("/", 1)[1]


async def test_reminders_then_escalation_until_the_link_acknowledges(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str, people: dict[str, Person]
) -> None:
    ana = people["operator"]
    person_with_pin(db_dsn, ana, "ana@example.com")
    clock = Clock()
    engine = (
        await open_alert(
            pool,
            settings,
            db_dsn,
            policy("ana@example.com"),
            clock,
        )
    )()
    opened = notifications(db_dsn)
    assert [(n["event"], n["tier"], n["target"]) for n in opened] == [
        ("opened", 0, TOWER_HOOK),
        ("opened", 0, "ana@example.com"),
    ]
    alert_id = opened[0]["payload"]["alert"]["id"]
    for n in opened:
        assert n["payload"]["links"]["alert"] == f"{PUBLIC}/alerts?alert={alert_id}"
    assert token_of(opened[0]["payload"]) != token_of(opened[1]["payload"])  # one per recipient

    timeline: list[tuple[float, int, int]] = []
    for minutes in (4.9, 5.1, 9.9, 10.2, 15.3, 20.0, 20.4):
        clock.at(minutes)
        timeline.append((minutes, await engine.escalate(), await engine.remind()))
    assert timeline == [
        (4.9, 0, 0),
        (5.1, 0, 1),  # every 5 min (major), counted from the last notification
        (9.9, 0, 0),
        (10.2, 0, 1),
        (15.3, 1, 0),  # escalated to tier 1: a notification too, no reminder on top
        (20.0, 0, 0),
        (20.4, 0, 1),  # now to tiers 0 and 1
    ]
    sent = notifications(db_dsn)[2:]
    assert [(n["event"], n["tier"], n["target"]) for n in sent] == [
        ("reminder", 0, TOWER_HOOK),
        ("reminder", 0, "ana@example.com"),
        ("reminder", 0, TOWER_HOOK),
        ("reminder", 0, "ana@example.com"),
        ("escalated", 1, QA_HOOK),
        ("reminder", 0, TOWER_HOOK),
        ("reminder", 0, "ana@example.com"),
        ("reminder", 1, QA_HOOK),
    ]
    last = sent[-1]["payload"]
    assert last["reminder"]["number"] == 3
    assert last["reminder"]["unacknowledged_s"] == pytest.approx(20.4 * 60, abs=2)
    assert "ack" in last["links"]

    # Ana acknowledges from the link in her latest e-mail, with her PIN.
    token = token_of(sent[-2]["payload"])
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        row = ack.acknowledge_by_link(
            conn,
            token=token,
            comment="called the driver, reefer door closed",
            now=datetime.now(UTC),
            client="198.51.100.4",
            limiter=LoginLimiter(max_failures=5, window_s=60),
            username=ana.username,
            pin=PIN,
            alert_id=alert_id,
        )
        assert (row["state"], row["acked_by"]) == ("acknowledged", ana.username)
        entries = conn.execute(
            "SELECT actor, source, reason FROM audit_log"
            " WHERE entity = 'alerts' AND action = 'update' ORDER BY seq"
        ).fetchall()
        assert (entries[-1]["actor"], entries[-1]["reason"]) == (
            ana.username,
            "called the driver, reefer door closed",
        )
        assert "via email link" in entries[-1]["source"]

    before = len(notifications(db_dsn))
    for minutes in (25.5, 31, 60):
        clock.at(minutes)
        assert (await engine.escalate(), await engine.remind()) == (0, 0)
    assert len(notifications(db_dsn)) == before  # nothing more: acknowledged
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT reminders_sent FROM alerts WHERE alert_id = %s", (alert_id,)
        ).fetchone() == (3,)


async def test_quiet_hours_hold_a_reminder_and_send_it_when_they_end(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    clock = Clock()
    now = clock.start
    quiet = QuietHours(
        start=(now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        end=(now + timedelta(hours=1)).time().replace(second=0, microsecond=0),
        time_zone="UTC",
        severities=["warning", "major"],
    )
    engine = (
        await open_alert(pool, settings, db_dsn, policy("t@example.com", quiet_hours=quiet), clock)
    )()
    for minutes in (5.1, 10.2, 30):
        clock.at(minutes)
        assert await engine.remind() == 0
    assert engine.stats.reminders_held == 1  # once, however often it is looked at
    with psycopg.connect(db_dsn) as conn:
        (events,) = conn.execute(
            "SELECT array_agg(kind ORDER BY id) FROM alert_events"
        ).fetchone() or (None,)
    assert events == ["opened", "reminder_held"]
    assert [n["event"] for n in notifications(db_dsn)] == ["opened", "opened"]

    clock.at(61)  # the quiet hours are over
    assert await engine.remind() == 1
    sent = notifications(db_dsn)[2:]
    assert [n["event"] for n in sent] == ["reminder", "reminder"]
    reminder = sent[0]["payload"]["reminder"]
    assert reminder["number"] == 1
    assert datetime.fromisoformat(reminder["held_since"]) == clock.start + timedelta(minutes=5.1)


@dataclass(frozen=True)
class Held:
    """Some partitions of 16, as a claimer would hold them."""

    held: frozenset[int]
    partitions: int = 16


async def test_two_engines_never_send_the_same_reminder(
    pool: AsyncConnectionPool, settings: Settings, db_dsn: str
) -> None:
    clock = Clock()
    engine = await open_alert(pool, settings, db_dsn, policy("t@example.com"), clock)
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT rules_partition(shipment_id, 16) FROM alerts").fetchone()
    assert row is not None
    mine = int(row[0])
    others = engine(Held(frozenset(range(16)) - {mine}))
    one, two = engine(), engine()  # both hold every partition, as during a takeover
    clock.at(5.1)
    assert await others.remind() == 0  # not its partition
    assert sorted(await asyncio.gather(one.remind(), two.remind())) == [0, 1]
    assert sum([await one.remind(), await two.remind(), await others.remind()]) == 0
    assert [n["event"] for n in notifications(db_dsn)].count("reminder") == 2  # two recipients

"""``coldchain rules``: evaluates committed readings and keeps excursions and alerts current.

The database is the source of truth. The ingester records what each commit changed in
``reading_changes`` and sends a NOTIFY; the engine wakes, takes the changes after its cursor,
re-evaluates the (shipment, device) pairs they touch and moves the cursor *in the same
transaction* as its results. Killed and started again, it neither loses nor repeats work.
Late or out-of-order readings simply re-evaluate their pair: the stored excursions are always
what an in-order evaluation of everything received gives, and changed ones are superseded (the
history stays), not overwritten. Pairs with an open excursion are also re-judged periodically,
because silence (a data gap) changes them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts import engine
from alerts.excursions import Excursion, detect_excursions
from alerts.series import Point
from coldchain.settings import Settings
from db.queries import rules as q

log = logging.getLogger(__name__)

CURSOR_NAME = "rules"
CHANGES_PER_ROUND = 5000
SYSTEM_ACTOR = "system"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EngineStats:
    """Counters for logs and metrics."""

    rounds: int = 0
    pairs_evaluated: int = 0
    excursions_written: int = 0
    alerts_opened: int = 0


class RulesEngine:
    """Evaluates changed (shipment, device) pairs; one transaction per round."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._pool = pool
        self._gap_factor = settings.alerts.gap_factor
        self._clock = clock
        self.stats = EngineStats()

    async def setup(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(q.ENSURE_CURSOR, (CURSOR_NAME,))

    async def process_changes(self) -> int:
        """Evaluate everything committed since the cursor; return the number of changes taken."""
        taken_total = 0
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                row = await (await conn.execute(q.LOCK_CURSOR, (CURSOR_NAME,))).fetchone()
                cursor = int(row[0]) if row else 0
                changes = await (
                    await conn.execute(q.PENDING_CHANGES, (cursor, CHANGES_PER_ROUND))
                ).fetchall()
                if not changes:
                    return taken_total
                pairs = await (
                    await conn.execute(
                        q.AFFECTED_PAIRS,
                        ([c[1] for c in changes], [c[2] for c in changes], [c[3] for c in changes]),
                    )
                ).fetchall()
                await self._evaluate_pairs(conn, [(int(p[0]), str(p[1])) for p in pairs])
                await conn.execute(q.MOVE_CURSOR, (changes[-1][0], CURSOR_NAME))
            taken_total += len(changes)
            self.stats.rounds += 1

    async def recheck_open(self) -> None:
        """Re-judge pairs with an open excursion: a logger gone silent ends it by a data gap."""
        async with self._pool.connection() as conn, conn.transaction():
            pairs = await (await conn.execute(q.OPEN_PAIRS)).fetchall()
            if pairs:
                await self._evaluate_pairs(conn, [(int(p[0]), str(p[1])) for p in pairs])

    async def _evaluate_pairs(self, conn: AsyncConnection, pairs: list[tuple[int, str]]) -> None:
        now = self._clock()
        shipments: dict[int, tuple[engine.Profile, str | None]] = {}
        for shipment_id, device_id in sorted(pairs):
            if shipment_id not in shipments:
                shipments[shipment_id] = await self._profile(conn, shipment_id)
            profile, _ = shipments[shipment_id]
            await self._evaluate_pair(conn, shipment_id, device_id, profile, now)
            self.stats.pairs_evaluated += 1
        for shipment_id, (_, product_name) in shipments.items():
            await self._reconcile_alerts(conn, shipment_id, product_name)

    @staticmethod
    async def _profile(
        conn: AsyncConnection, shipment_id: int
    ) -> tuple[engine.Profile, str | None]:
        row = await (await conn.execute(q.SHIPMENT_PROFILE, (shipment_id,))).fetchone()
        if row is None:
            return engine.Profile(None, None, None, None, 0), None
        _ref, gtin, name, low, high, freeze, delay = row
        return engine.Profile(gtin, low, high, freeze, int(delay or 0)), name

    async def _evaluate_pair(
        self,
        conn: AsyncConnection,
        shipment_id: int,
        device_id: str,
        profile: engine.Profile,
        now: datetime,
    ) -> None:
        if profile.low_c is None and profile.high_c is None and profile.freeze_c is None:
            return  # nothing to judge against
        row = await (await conn.execute(q.DEVICE_INTERVAL, (device_id,))).fetchone()
        interval_s = int(row[0]) if row else 300
        limits = profile.limits(interval_s, self._gap_factor)
        rows = await (
            await conn.execute(q.SHIPMENT_DEVICE_READINGS, (shipment_id, device_id))
        ).fetchall()
        found = detect_excursions((Point(ts, temp) for ts, temp in rows), limits, now=now)
        stored_rows = await (
            await conn.execute(q.CURRENT_EXCURSIONS, (shipment_id, device_id))
        ).fetchall()
        stored = [
            engine.StoredExcursion(
                excursion_id=r[0],
                device_id=r[1],
                direction=r[2],
                start=r[3],
                figures=(
                    r[4],
                    r[5],
                    r[6],
                    round(r[7], 6),
                    round(r[8], 6),
                    round(r[9], 6),
                    *r[10:15],
                ),
                alert_id=r[15],
            )
            for r in stored_rows
        ]
        plan = engine.plan_excursions(stored, found)
        for old, reason in plan.supersede:
            await conn.execute(q.SUPERSEDE_EXCURSION, (reason, old.excursion_id))
        thresholds = Jsonb(profile.thresholds(interval_s, self._gap_factor))
        for e in plan.insert:
            await conn.execute(
                q.INSERT_EXCURSION,
                self._excursion_row(e, shipment_id, device_id, thresholds, plan.carried_alert),
            )
        self.stats.excursions_written += len(plan.insert)

    @staticmethod
    def _excursion_row(
        e: Excursion,
        shipment_id: int,
        device_id: str,
        thresholds: Jsonb,
        carried: dict[tuple[str, datetime], int],
    ) -> dict[str, object]:
        return {
            "shipment_id": shipment_id,
            "device_id": device_id,
            "direction": e.direction,
            "start_ts": e.start,
            "end_ts": e.end,
            "last_out_ts": e.last_out_ts,
            "ended_by_gap": e.ended_by_gap,
            "min_c": e.min_c,
            "max_c": e.max_c,
            "degree_minutes": e.degree_minutes,
            "n_readings": e.n_readings,
            "readings_over_40": e.readings_over_40,
            "readings_freezing": e.readings_freezing,
            "alarm": e.alarm,
            "alarm_at": e.alarm_at,
            "freeze_alarm": e.freeze_alarm,
            "rule_key": engine.rule_key(e),
            # Only an excursion that still alarms keeps its alert; the alert stays either way.
            "alert_id": carried.get(e.key) if e.alarm else None,
            "thresholds": thresholds,
        }

    async def _reconcile_alerts(
        self, conn: AsyncConnection, shipment_id: int, product_name: str | None
    ) -> None:
        """Open, join, upgrade, clear and resolve the temperature alerts of one shipment."""
        unlinked = await (await conn.execute(q.ALARMED_UNLINKED, (shipment_id,))).fetchall()
        for (
            exc_id,
            device_id,
            direction,
            alarm_at,
            freeze_alarm,
            rule_key,
            extreme,
            thresholds,
        ) in unlinked:
            sev = "critical" if freeze_alarm else "major"
            limit = (
                thresholds.get("high_c")
                if direction == "high"
                else (
                    thresholds.get("low_c")
                    if thresholds.get("low_c") is not None
                    else thresholds.get("freeze_c")
                )
            )
            what = (
                "Freezing"
                if freeze_alarm
                else (
                    "Temperature above range" if direction == "high" else "Temperature below range"
                )
            )
            name = f" ({product_name})" if product_name else ""
            title = f"{what}: {extreme:.1f} °C, limit {limit:g} °C{name}"
            existing = await (
                await conn.execute(q.UNRESOLVED_ALERT, (shipment_id, rule_key))
            ).fetchone()
            if existing is None:
                row = await (
                    await conn.execute(
                        q.OPEN_ALERT,
                        (
                            shipment_id,
                            rule_key,
                            sev,
                            title,
                            device_id,
                            alarm_at,
                            extreme,
                            Jsonb(thresholds),
                            Jsonb({"excursion_ids": [exc_id]}),
                        ),
                    )
                ).fetchone()
                assert row is not None
                alert_id = int(row[0])
                await conn.execute(
                    q.ALERT_EVENT,
                    (
                        alert_id,
                        "opened",
                        SYSTEM_ACTOR,
                        None,
                        Jsonb(
                            {
                                "excursion_id": exc_id,
                                "alarm_at": alarm_at.isoformat(),
                                "severity": sev,
                            }
                        ),
                    ),
                )
                self.stats.alerts_opened += 1
                log.info("alert %d opened for shipment %d: %s", alert_id, shipment_id, title)
            else:
                alert_id, old_sev, _state, _cleared = existing
                await conn.execute(
                    q.ALERT_EVENT,
                    (
                        alert_id,
                        "excursion_added",
                        SYSTEM_ACTOR,
                        None,
                        Jsonb({"excursion_id": exc_id}),
                    ),
                )
                if engine.stronger(sev, old_sev) != old_sev:
                    await conn.execute(q.UPGRADE_ALERT, (sev, title, extreme, alert_id))
                    await conn.execute(
                        q.ALERT_EVENT,
                        (
                            alert_id,
                            "upgraded",
                            SYSTEM_ACTOR,
                            None,
                            Jsonb({"from": old_sev, "to": sev}),
                        ),
                    )
            await conn.execute(q.LINK_EXCURSION, (alert_id, exc_id))

        for alert_id, rule_key, sev, state, cleared, open_count in await (
            await conn.execute(q.TEMP_ALERTS_WITH_OPEN_COUNT, (shipment_id,))
        ).fetchall():
            decision = engine.clear_decision(
                engine.AlertState(alert_id, rule_key, sev, state, bool(cleared)), int(open_count)
            )
            if decision == "clear":
                await conn.execute(q.CLEAR_ALERT, (alert_id,))
                await conn.execute(
                    q.ALERT_EVENT, (alert_id, "cleared", SYSTEM_ACTOR, None, Jsonb({}))
                )
            elif decision == "reopen":
                await conn.execute(q.REOPEN_ALERT, (alert_id,))
                await conn.execute(
                    q.ALERT_EVENT, (alert_id, "reopened", SYSTEM_ACTOR, None, Jsonb({}))
                )
            elif decision == "resolve":
                await conn.execute(q.RESOLVE_ALERT, (SYSTEM_ACTOR, alert_id))
                await conn.execute(
                    q.ALERT_EVENT,
                    (
                        alert_id,
                        "resolved",
                        SYSTEM_ACTOR,
                        "condition cleared after acknowledgement",
                        Jsonb({}),
                    ),
                )


async def run_rules_engine(
    settings: Settings, stop: asyncio.Event, *, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run until ``stop``: wake on NOTIFY (or every poll interval), evaluate, repeat."""
    poll = settings.alerts.poll_interval_s
    recheck_every = settings.alerts.offline_check_interval_s
    async with AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=4, open=False) as pool:
        await pool.wait(timeout=30)
        rules = RulesEngine(pool, settings, clock=clock)
        await rules.setup()
        wake = asyncio.Event()
        listener = asyncio.create_task(_listen(settings.db.dsn, wake, stop), name="rules-listen")
        loop = asyncio.get_running_loop()
        last_recheck = 0.0
        log.info("rules engine running")
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await rules.process_changes()
                    if loop.time() - last_recheck >= recheck_every:
                        await rules.recheck_open()
                        last_recheck = loop.time()
                except psycopg.OperationalError as exc:
                    log.warning("database unavailable (%s); retrying", exc)
                waiter = asyncio.create_task(wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=poll, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        log.info("rules engine stopped after %d rounds", rules.stats.rounds)


async def _listen(dsn: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """LISTEN for the ingester's commits; reconnect quietly when the database goes away."""
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("LISTEN reading_changes")
                wake.set()  # whatever happened while we were not listening
                async for _ in conn.notifies():
                    wake.set()
        except psycopg.OperationalError:
            await asyncio.sleep(1.0)

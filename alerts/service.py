"""``coldchain rules``: evaluates committed readings and keeps excursions and alerts current.

The database is the source of truth. The ingester records what each commit changed in
``reading_changes`` and sends a NOTIFY; the engine wakes, takes the changes after its cursor,
re-evaluates the (shipment, device) pairs they touch and moves the cursor *in the same
transaction* as its results. Killed and started again, it neither loses nor repeats work.
Late or out-of-order readings simply re-evaluate their pair: the stored excursions and rule
states are always what an in-order evaluation of everything received gives, and changed
excursions are superseded (the history stays), not overwritten.

One task evaluates (in this order, never two transactions of its own at once): new changes;
every ``offline_check_interval_s`` the periodic pass (silent loggers raise and clear "no data";
pairs with an open excursion or a holding rule are re-judged, since silence changes them too;
alerts acknowledged after their condition cleared resolve); every
``escalation_check_interval_s`` the escalation of unacknowledged alerts. Alert changes write
their notifications into the outbox in the same transaction; a second task, the
:class:`~alerts.delivery.DeliveryWorker`, sends them, so a slow receiver never delays
evaluation. A third task LISTENs and wakes the other two.

One shipment cannot stop the others: a (shipment, device) pair whose judging raises is skipped
and the rest of its batch written; a shipment whose alerts cannot be reconciled is rolled back
to a savepoint and the others reconciled. Each such failure is counted
(``EngineStats.pair_errors``) and logged with its traceback once per shipment and error, then
at DEBUG, so a permanent fault does not fill the log every ``offline_check_interval_s``.

Per round, reads and writes are set-oriented (arrays of pairs, one statement for the readings
of up to :data:`PAIRS_PER_QUERY` pairs, ``executemany`` for the writes); the judging itself is the
pure code of :mod:`alerts.conditions` and :mod:`alerts.engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts import conditions, engine
from alerts.conditions import ConditionState, Series
from alerts.delivery import DeliveryWorker, notification_rows, senders_from_settings
from alerts.escalation import escalation_target, targets
from alerts.excursions import Excursion
from alerts.in_force import RuleContext, rules_of
from alerts.rules import (
    SECTION_OF,
    SECTIONS,
    EffectiveRules,
    EscalationPolicy,
    EscalationTier,
    RulesFile,
    load_rules_file,
    settings_rules,
)
from alerts.series import EPOCH, datetime_from_us, to_us
from coldchain.errors import ConfigError
from coldchain.settings import Settings
from db.queries import limits as limits_q
from db.queries import rules as q

log = logging.getLogger(__name__)

CURSOR_NAME = "rules"
# Changes taken per transaction: enough that a catch-up evaluates each pair once, not once per
# upload, while one round stays a bounded amount of work.
CHANGES_PER_ROUND = 50_000
PAIRS_PER_QUERY = 250
SYSTEM_ACTOR = "system"
TEMPERATURE_KEYS = ("temp_high", "temp_low")

# PostgreSQL's binary timestamps count µs from 2000-01-01.
_PG_EPOCH_US = to_us(datetime(2000, 1, 1, tzinfo=UTC) - EPOCH)
_EMPTY = Series(
    np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.float64)
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EngineStats:
    """Counters for logs, metrics and the benchmarks."""

    rounds: int = 0
    pairs_evaluated: int = 0
    readings_evaluated: int = 0
    excursions_written: int = 0
    states_written: int = 0
    alerts_opened: int = 0
    notifications_queued: int = 0
    escalations: int = 0
    pair_errors: int = 0  # pairs or shipments skipped because judging them raised


@dataclass(frozen=True, slots=True)
class ShipmentContext:
    """A shipment, its product and its effective rules."""

    shipment_id: int
    reference: str
    gtin: str | None
    product_name: str | None
    rules: EffectiveRules


@dataclass(frozen=True, slots=True)
class PairInfo:
    """A logger in a shipment: its interval and the end of its assignment (None: open)."""

    interval_s: int
    assigned_until: datetime | None


@dataclass(slots=True)
class _Writes:
    """Rows collected while judging a batch of pairs, written with executemany."""

    supersede: list[tuple[str, int]] = field(default_factory=list)
    excursions: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)


def policy_from_settings(settings: Settings) -> EscalationPolicy:
    """Tier 0 from the settings' webhook URLs and addresses (when the rules file has no tiers)."""
    a = settings.alerts
    if not a.webhook_urls and not a.smtp_to:
        return EscalationPolicy()
    return EscalationPolicy(
        tiers=[EscalationTier(name="on call", webhooks=a.webhook_urls, emails=a.smtp_to)]
    )


class RulesEngine:
    """Evaluates changed (shipment, device) pairs and keeps their alerts; one transaction a round."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        rules_file: RulesFile | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings.alerts
        self._gap_factor = settings.alerts.gap_factor
        self._clock = clock
        self._base = settings_rules(
            offline_factor=settings.alerts.offline_factor,
            battery_threshold=settings.alerts.battery_threshold,
            clear_delay_s=settings.alerts.clear_delay_s,
        )
        self._default_clear = timedelta(seconds=settings.alerts.clear_delay_s)
        self._rules_path: Path | None = None if rules_file else settings.alerts.rules_file
        self._rules_mtime: float | None = None
        self._rules = rules_file or RulesFile()
        self._settings_policy = policy_from_settings(settings)
        if self._rules_path is not None:
            self._rules = load_rules_file(self._rules_path)  # a bad file stops the start
            self._rules_mtime = self._rules_path.stat().st_mtime
        # Channels the delivery worker can send on: without an SMTP host, e-mail recipients are
        # not queued (they would only fail ten times each), and that is said once at the start.
        self._channels = {"webhook"} | ({"email"} if settings.alerts.smtp_host else set())
        if "email" not in self._channels and any(t.emails for t in self.policy.tiers):
            log.warning("e-mail recipients are configured but COLDCHAIN_ALERTS__SMTP_HOST is not")
        self._reported: set[str] = set()
        self._failures: set[tuple[str, str]] = set()  # (what failed, error) already logged
        # Shipments whose alerts could not be settled: settled again at every periodic pass
        # (their states no longer change, so nothing else would bring them back).
        self._unsettled: set[int] = set()
        self._notify_pending = False
        self._watching_since: datetime | None = None  # the first offline check
        self.stats = EngineStats()

    @property
    def policy(self) -> EscalationPolicy:
        """Who is told: the rules file's tiers, else tier 0 from the settings."""
        if self._rules.escalation is not None and self._rules.escalation.tiers:
            return self._rules.escalation
        return self._settings_policy

    async def setup(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(q.ENSURE_CURSOR, (CURSOR_NAME,))

    def reload_rules(self) -> None:
        """Re-read the rules file if it changed; an invalid edit is logged and the old rules kept."""
        if self._rules_path is None:
            return
        try:
            mtime = self._rules_path.stat().st_mtime
            if mtime == self._rules_mtime:
                return
            self._rules_mtime = mtime
            self._rules = load_rules_file(self._rules_path)
            log.info("rules file %s reloaded", self._rules_path)
        except (OSError, ConfigError) as exc:
            log.error("rules file not reloaded, keeping the previous rules: %s", exc)

    # ----------------------------------------------------------------------------------------
    # Rounds
    # ----------------------------------------------------------------------------------------

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
                await self._flush_notify(conn)
            taken_total += len(changes)
            self.stats.rounds += 1

    async def recheck_open(self) -> None:
        """Re-judge pairs with an open excursion or a holding rule: silence changes them too."""
        async with self._pool.connection() as conn, conn.transaction():
            pairs = await (await conn.execute(q.RECHECK_PAIRS)).fetchall()
            if pairs:
                await self._evaluate_pairs(conn, [(int(p[0]), str(p[1])) for p in pairs])
            await self._flush_notify(conn)

    async def check_offline(self) -> None:
        """Raise and clear "no data" for loggers in transit, then settle every unresolved alert."""
        now = self._clock()
        if self._watching_since is None:
            self._watching_since = now
        async with self._pool.connection() as conn, conn.transaction():
            candidates = await (await conn.execute(q.OFFLINE_CANDIDATES, {"now": now})).fetchall()
            holding = {
                (int(r[0]), str(r[1]))
                for r in await (await conn.execute(q.HOLDING_OFFLINE)).fetchall()
            }
            by_pair = {(int(r[0]), str(r[1])): r for r in candidates}
            pairs = sorted(set(by_pair) | holding)
            shipments = sorted({s for s, _ in pairs})
            ctx = await self._load_context(conn, shipments)
            stored = await self._load_states(conn, pairs)
            rows: list[dict[str, Any]] = []
            for pair in pairs:
                try:
                    row = self._offline_row(pair, by_pair.get(pair), stored, ctx, now)
                except Exception as exc:
                    # One shipment's bad rule or data must not silence the fleet's check.
                    self._report_failure(
                        f"offline check of shipment {pair[0]} device {pair[1]}", exc
                    )
                    continue
                if row is not None:
                    rows.append(row)
            await self._write_states(conn, rows)
            open_alerts = [
                int(r[0])
                for r in await (await conn.execute(q.SHIPMENTS_WITH_UNRESOLVED_ALERTS)).fetchall()
            ]
            settle = sorted(
                set(open_alerts) | {int(r["shipment_id"]) for r in rows} | self._unsettled
            )
            if settle:
                ctx.update(await self._load_context(conn, [s for s in settle if s not in ctx]))
                await self._reconcile(conn, settle, ctx)
            await self._flush_notify(conn)

    def _offline_row(
        self,
        pair: tuple[int, str],
        cand: Sequence[Any] | None,
        stored: Mapping[tuple[int, str], Mapping[str, engine.StoredState]],
        ctx: Mapping[int, ShipmentContext],
        now: datetime,
    ) -> dict[str, Any] | None:
        """The pair's new "no data" state row, or None when nothing changes."""
        assert self._watching_since is not None
        shipment_id, device_id = pair
        old = stored.get(pair, {}).get("device_offline")
        rule = ctx[shipment_id].rules.offline if shipment_id in ctx else None
        if cand is not None and rule is not None and (cand[3] or cand[4]) is not None:
            _s, _d, interval_s, assigned_since, last_ts, arrived_s = cand
            new = conditions.offline_state(
                last_ts,
                assigned_since or last_ts,  # an assignment open to the past
                int(interval_s),
                rule,
                now=now,
                previous=old.state if old else None,
                alerted_since=old.alerted_since if old else None,
                arrived_ago=None if arrived_s is None else timedelta(seconds=arrived_s),
                watched_for=now - self._watching_since,
            )
        elif old is not None and old.state.holding:
            # No longer expected to report (delivered, unassigned, rule switched off).
            new = _stopped_holding(old.state, ended_at=now, as_of=now)
        else:
            return None
        row = self._state_row(shipment_id, device_id, new, ctx.get(shipment_id), "offline")
        if row is not None and (old is None or not _same_state(old, row)):
            return row
        return None

    async def periodic(self) -> None:
        """The periodic pass: silence, re-judging, settling (see the module docstring)."""
        await self.recheck_open()
        await self.check_offline()

    async def escalate(self) -> int:
        """Escalate alerts nobody acknowledged in time; return how many were escalated."""
        policy = self.policy
        last_tier = len(policy.tiers) - 1
        if last_tier < 1:
            return 0
        now = self._clock()
        escalated = 0
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(q.ESCALATION_CANDIDATES, (last_tier,))).fetchall()
            for row in rows:
                (alert_id, shipment_id, reference, rule_key, severity, state, title, device_id,
                 triggered_at, value, thresholds, level, created_at, cleared) = row  # fmt: skip
                target = escalation_target(
                    policy,
                    state=state,
                    level=int(level),
                    opened_at=created_at,
                    now=now,
                    default_minutes=self._settings.escalation_minutes,
                )
                if target is None:
                    continue
                await conn.execute(q.ESCALATE_ALERT, (target, alert_id))
                names = [policy.tiers[t].name for t in range(int(level) + 1, target + 1)]
                await self._event(
                    conn, alert_id, "escalated", None, {"from": level, "to": target, "tiers": names}
                )
                alert = {
                    "alert_id": alert_id,
                    "shipment_id": shipment_id,
                    "reference": reference,
                    "rule_key": rule_key,
                    "severity": severity,
                    "state": state,
                    "cleared": cleared,
                    "title": title,
                    "device_id": device_id,
                    "triggered_at": triggered_at,
                    "value": value,
                    "thresholds": thresholds,
                    "escalation_level": target,
                }
                await self._notify(conn, alert, "escalated", range(int(level) + 1, target + 1))
                escalated += 1
                log.info("alert %d escalated to tier %d (%s)", alert_id, target, ", ".join(names))
            await self._flush_notify(conn)
        self.stats.escalations += escalated
        return escalated

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Evaluate until ``stop``: on NOTIFY or every poll interval, plus the periodic passes."""
        loop = asyncio.get_running_loop()
        periodic_every = self._settings.offline_check_interval_s
        escalate_every = self._settings.escalation_check_interval_s
        last_periodic = last_escalation = -float("inf")
        while not stop.is_set():
            wake.clear()
            self.reload_rules()
            await self._step("evaluation", self.process_changes)
            if loop.time() - last_periodic >= periodic_every:
                # Two steps: re-judging failing as a whole must not stop the silence check.
                await self._step("periodic re-judging", self.recheck_open)
                await self._step("offline check", self.check_offline)
                last_periodic = loop.time()
            if loop.time() - last_escalation >= escalate_every:
                await self._step("escalation", self.escalate)
                last_escalation = loop.time()
            now = loop.time()
            timeout = min(
                self._settings.poll_interval_s,
                max(last_periodic + periodic_every - now, 0.0),
                max(last_escalation + escalate_every - now, 0.0),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(wake, stop), timeout=max(timeout, 0.01))

    async def _step(self, name: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run one step of the loop; a failure is logged and retried at the next turn.

        Each step is one transaction, rolled back on failure, so retrying is safe; the other
        steps (escalation above all) keep running even if one keeps failing.
        """
        try:
            await step()
        except psycopg.OperationalError as exc:
            log.warning("%s: database unavailable (%s); retrying", name, exc)
        except Exception:
            log.exception("%s failed; retrying at the next turn", name)

    # ----------------------------------------------------------------------------------------
    # Context, readings and states
    # ----------------------------------------------------------------------------------------

    async def _load_context(
        self, conn: AsyncConnection, shipment_ids: Sequence[int]
    ) -> dict[int, ShipmentContext]:
        """The shipments' rules, read and stacked as every other consumer does (alerts.in_force)."""
        if not shipment_ids:
            return {}
        params = limits_q.rule_inputs_params(shipment_ids=shipment_ids)
        rows = await (await conn.execute(limits_q.RULE_INPUTS, params)).fetchall()
        file_name = str(self._rules_path) if self._rules_path else "rules file"
        sources = RuleContext(self._base, self._rules, file_name)
        found: dict[int, ShipmentContext] = {}
        for row in rows:
            inputs = limits_q.rule_inputs_from_row(row)
            assert inputs.shipment_id is not None and inputs.reference is not None
            rules = rules_of(inputs, sources, on_error=self._report_rules_error)
            product = inputs.product
            found[inputs.shipment_id] = ShipmentContext(
                inputs.shipment_id,
                inputs.reference,
                None if product is None else str(product["gtin"]),
                None if product is None else product["name"],
                rules,
            )
        return found

    def _report_failure(self, what: str, exc: BaseException) -> None:
        """Count a skipped pair or shipment; log it with its traceback once per ``what`` and
        error (then at DEBUG): the same fault is met at every periodic pass."""
        self.stats.pair_errors += 1
        key = (what, f"{type(exc).__name__}: {exc}")
        if key in self._failures:
            log.debug("%s failed again (%s); skipped", what, key[1])
            return
        if len(self._failures) >= 10_000:
            self._failures.clear()  # bounded memory; at worst a fault is logged once more
        self._failures.add(key)
        log.error(
            "%s failed; skipped, the others go on (logged once; counted in pair_errors)",
            what,
            exc_info=exc,
        )

    def _report_rules_error(self, source: str, exc: ConfigError) -> None:
        # Once per problem: the same bad layer is met at every round.
        message = str(exc)
        if message not in self._reported:
            self._reported.add(message)
            log.error("rules layer %s left out: %s", source, message)

    async def _load_series(
        self, conn: AsyncConnection, pairs: Sequence[tuple[int, str]]
    ) -> list[Series]:
        """The readings of each pair (in the order given), in one statement."""
        series = [_EMPTY] * len(pairs)
        async with conn.cursor(binary=True) as cur:
            await cur.execute(q.PAIR_READINGS, ([p[0] for p in pairs], [p[1] for p in pairs]))
            for i, ts, temp, rh, battery in await cur.fetchall():
                t_us = _array(ts, ">i8").astype(np.int64) + _PG_EPOCH_US
                order = np.argsort(t_us, kind="stable")
                series[int(i) - 1] = Series(
                    t_us[order],
                    _array(temp, ">f8").astype(np.float64)[order],
                    _array(rh, ">f8").astype(np.float64)[order],
                    _array(battery, ">f8").astype(np.float64)[order],
                )
        return series

    async def _load_states(
        self, conn: AsyncConnection, pairs: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], dict[str, engine.StoredState]]:
        if not pairs:
            return {}
        rows = await (
            await conn.execute(q.PAIR_STATES, ([p[0] for p in pairs], [p[1] for p in pairs]))
        ).fetchall()
        found: dict[tuple[int, str], dict[str, engine.StoredState]] = defaultdict(dict)
        for r in rows:
            found[(int(r[0]), str(r[1]))][str(r[2])] = _stored_state(r)
        return found

    async def _write_states(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(q.UPSERT_STATE, rows)
            self.stats.states_written += len(rows)

    # ----------------------------------------------------------------------------------------
    # Evaluation
    # ----------------------------------------------------------------------------------------

    async def _evaluate_pairs(
        self, conn: AsyncConnection, pairs: Iterable[tuple[int, str]]
    ) -> None:
        now = self._clock()
        ordered = sorted(set(pairs))
        shipments = sorted({s for s, _ in ordered})
        ctx = await self._load_context(conn, shipments)
        for start in range(0, len(ordered), PAIRS_PER_QUERY):
            chunk = [p for p in ordered[start : start + PAIRS_PER_QUERY] if p[0] in ctx]
            if chunk:
                await self._evaluate_chunk(conn, chunk, ctx, now)
        await self._reconcile(conn, shipments, ctx)

    async def _evaluate_chunk(
        self,
        conn: AsyncConnection,
        chunk: list[tuple[int, str]],
        ctx: Mapping[int, ShipmentContext],
        now: datetime,
    ) -> None:
        ships, devs = [p[0] for p in chunk], [p[1] for p in chunk]
        info = {
            (int(r[0]), str(r[1])): PairInfo(int(r[2]), r[3])
            for r in await (await conn.execute(q.PAIR_INFO, (ships, devs))).fetchall()
        }
        all_series = await self._load_series(conn, chunk)
        stored_excursions: dict[tuple[int, str], list[engine.StoredExcursion]] = defaultdict(list)
        for r in await (await conn.execute(q.CURRENT_EXCURSIONS, (ships, devs))).fetchall():
            stored_excursions[(int(r[0]), str(r[2]))].append(_stored_excursion(r[1:]))
        stored_states = await self._load_states(conn, chunk)
        writes = _Writes()
        for pair, series in zip(chunk, all_series, strict=True):
            pair_info = info.get(pair)
            if pair_info is None:
                continue  # the assignment was removed since the change was recorded
            try:
                self._judge_pair(
                    pair,
                    series,
                    pair_info,
                    ctx[pair[0]],
                    stored_excursions.get(pair, []),
                    stored_states.get(pair, {}),
                    now,
                    writes,
                )
            except Exception as exc:
                # One pair's bad data must not stop the others (nor the cursor): log and go on.
                self._report_failure(f"evaluating shipment {pair[0]} device {pair[1]}", exc)
            self.stats.pairs_evaluated += 1
            self.stats.readings_evaluated += len(series)
        async with conn.cursor() as cur:
            if writes.supersede:
                await cur.executemany(q.SUPERSEDE_EXCURSION, writes.supersede)
            if writes.excursions:
                await cur.executemany(q.INSERT_EXCURSION, writes.excursions)
        self.stats.excursions_written += len(writes.excursions)
        await self._write_states(conn, writes.states)

    def _judge_pair(
        self,
        pair: tuple[int, str],
        series: Series,
        info: PairInfo,
        ctx: ShipmentContext,
        stored_excursions: list[engine.StoredExcursion],
        stored_states: Mapping[str, engine.StoredState],
        now: datetime,
        writes: _Writes,
    ) -> None:
        shipment_id, device_id = pair
        max_gap = timedelta(seconds=info.interval_s * self._gap_factor)
        result = conditions.evaluate_pair(
            series,
            ctx.rules,
            max_gap=max_gap,
            now=now,
            assigned_until=info.assigned_until,
            previous={k: s.state for k, s in stored_states.items()},
            alerted_since={k: s.alerted_since for k, s in stored_states.items()},
        )
        if result.excursions is not None:
            plan = engine.plan_excursions(stored_excursions, result.excursions)
            writes.supersede.extend((reason, old.excursion_id) for old, reason in plan.supersede)
            thresholds = Jsonb(
                engine.json_safe(
                    ctx.rules.snapshot(
                        "temperature",
                        product_gtin=ctx.gtin,
                        alarm_delay_s=(ctx.rules.temperature.alarm_delay_min * 60)
                        if ctx.rules.temperature
                        else None,
                        interval_s=info.interval_s,
                        gap_factor=self._gap_factor,
                        max_gap_s=max_gap.total_seconds(),
                    )
                )
            )
            for e in plan.insert:
                writes.excursions.append(
                    _excursion_row(e, shipment_id, device_id, thresholds, plan.carried_alert)
                )
        states = dict(result.states)
        offline = stored_states.get("device_offline")
        if offline is not None and offline.state.holding and len(series):
            # Readings came back: "no data" clears now rather than at the next periodic pass.
            last = datetime_from_us(int(series.t_us[-1]))
            since = offline.state.since
            if since is None or last > since:
                states["device_offline"] = _stopped_holding(offline.state, ended_at=last, as_of=now)
        for key, new in states.items():
            old = stored_states.get(key)
            if new.empty and old is None:
                continue  # nothing ever alarmed: nothing to remember
            row = self._state_row(
                shipment_id, device_id, new, ctx, SECTION_OF[key], max_gap=max_gap
            )
            if row is not None and (old is None or not _same_state(old, row)):
                writes.states.append(row)

    def _state_row(
        self,
        shipment_id: int,
        device_id: str,
        state: ConditionState,
        ctx: ShipmentContext | None,
        section: str,
        *,
        max_gap: timedelta | None = None,
    ) -> dict[str, Any] | None:
        snapshot = (
            ctx.rules.snapshot(section, max_gap_s=max_gap.total_seconds() if max_gap else None)
            if ctx is not None
            else {}
        )
        return {
            "shipment_id": shipment_id,
            "device_id": device_id,
            "rule_key": state.rule_key,
            "holding": state.holding,
            "as_of": state.as_of,
            "since": state.since,
            "alarm_at": state.alarm_at,
            "ended_at": state.ended_at,
            "severity": state.severity,
            "value": state.value,
            "trigger_at": state.trigger_at,
            "details": Jsonb(engine.json_safe(dict(state.details))),
            "thresholds": Jsonb(engine.json_safe(snapshot)),
        }

    # ----------------------------------------------------------------------------------------
    # Alerts
    # ----------------------------------------------------------------------------------------

    async def _reconcile(
        self,
        conn: AsyncConnection,
        shipment_ids: Sequence[int],
        ctx: Mapping[int, ShipmentContext],
    ) -> None:
        """Open, join, upgrade, clear and resolve the alerts of some shipments.

        All at once in a savepoint; if that fails, one savepoint per shipment, so a shipment
        whose alerts cannot be settled is skipped (and reported) and the others still are.
        """
        if not shipment_ids:
            return
        try:
            async with conn.transaction():
                await self._reconcile_some(conn, list(shipment_ids), ctx)
            self._unsettled.difference_update(shipment_ids)
            return
        except psycopg.OperationalError:
            raise  # the connection is gone: the whole round is retried
        except Exception:
            pass  # find the culprit below
        for shipment_id in shipment_ids:
            try:
                async with conn.transaction():
                    await self._reconcile_some(conn, [shipment_id], ctx)
                self._unsettled.discard(shipment_id)
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                self._unsettled.add(shipment_id)
                self._report_failure(f"settling the alerts of shipment {shipment_id}", exc)

    async def _reconcile_some(
        self,
        conn: AsyncConnection,
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
    ) -> None:
        alerts: dict[tuple[int, str], dict[str, Any]] = {}
        for r in await (await conn.execute(q.UNRESOLVED_ALERTS, (ids,))).fetchall():
            alerts[(int(r[1]), str(r[2]))] = _alert_row(r, ctx.get(int(r[1])))
        await self._reconcile_temperature(conn, ids, ctx, alerts)
        await self._reconcile_rules(conn, ids, ctx, alerts)

    async def _reconcile_temperature(
        self,
        conn: AsyncConnection,
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
        alerts: dict[tuple[int, str], dict[str, Any]],
    ) -> None:
        unlinked = await (await conn.execute(q.ALARMED_UNLINKED, (ids,))).fetchall()
        for (exc_id, shipment_id, device_id, direction, alarm_at, freeze_alarm, key, extreme,
             thresholds) in unlinked:  # fmt: skip
            c = ctx.get(int(shipment_id))
            sev = engine.excursion_severity(freeze_alarm, thresholds)
            limit = (
                thresholds.get("high_c")
                if direction == "high"
                else (
                    thresholds.get("low_c")
                    if thresholds.get("low_c") is not None
                    else thresholds.get("freeze_c")
                )
            )
            title = engine.excursion_title(
                direction, freeze_alarm, extreme, limit, c.product_name if c else None
            )
            alert = alerts.get((shipment_id, key))
            if alert is None:
                alert = await self._open_alert(
                    conn,
                    shipment_id=shipment_id,
                    reference=c.reference if c else None,
                    rule_key=key,
                    severity=sev,
                    title=title,
                    device_id=device_id,
                    triggered_at=alarm_at,
                    value=extreme,
                    thresholds=thresholds,
                    details={"excursion_ids": [exc_id]},
                    event_data={"excursion_id": exc_id, "alarm_at": alarm_at, "severity": sev},
                )
                alerts[(shipment_id, key)] = alert
            else:
                await self._event(
                    conn, alert["alert_id"], "excursion_added", None, {"excursion_id": exc_id}
                )
                await self._retime(conn, alert, alarm_at, device_id)
                if engine.stronger(sev, alert["severity"]) != alert["severity"]:
                    await self._upgrade(conn, alert, sev, title, extreme)
            await conn.execute(q.LINK_EXCURSION, (alert["alert_id"], exc_id))

        temperature = {a["alert_id"]: a for k, a in alerts.items() if k[1] in TEMPERATURE_KEYS}
        if not temperature:
            return
        status = await (await conn.execute(q.TEMP_ALERT_STATUS, (list(temperature),))).fetchall()
        for alert_id, open_count, last_end, as_of in status:
            alert = temperature[alert_id]
            c = ctx.get(alert["shipment_id"])
            rule = (c.rules.temperature if c else None) or SECTIONS["temperature"]()
            holding = int(open_count) > 0
            quiet = engine.quiet_enough(
                holding=holding,
                last_end=last_end,
                as_of=as_of,
                clear_delay=rule.clear_delay(self._default_clear),
            )
            decision = engine.clear_decision(
                _alert_state(alert),
                holding=holding,
                quiet=quiet,
                auto_resolve=bool(getattr(rule, "auto_resolve", False)),
            )
            await self._transition(conn, alert, decision)

    async def _reconcile_rules(
        self,
        conn: AsyncConnection,
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
        alerts: dict[tuple[int, str], dict[str, Any]],
    ) -> None:
        grouped: dict[tuple[int, str], list[engine.StoredState]] = defaultdict(list)
        for r in await (await conn.execute(q.SHIPMENT_STATES, (ids,))).fetchall():
            grouped[(int(r[0]), str(r[2]))].append(_stored_state(r))
        keys = set(grouped) | {k for k in alerts if k[1] not in TEMPERATURE_KEYS}
        for shipment_id, key in sorted(keys):
            c = ctx.get(shipment_id)
            section_name = SECTION_OF.get(key)
            if section_name is None:
                continue  # an alert of a rule this engine does not own
            section = (c.rules.section(section_name) if c else None) or SECTIONS[section_name]()
            alert = alerts.get((shipment_id, key))
            plan = engine.plan_rule_alert(
                _alert_state(alert) if alert else None,
                grouped.get((shipment_id, key), []),
                clear_delay=section.clear_delay(self._default_clear),
                auto_resolve=bool(getattr(section, "auto_resolve", False)),
            )
            name = c.product_name if c else None
            if plan.open is not None:
                new = plan.open
                thresholds = c.rules.snapshot(section_name) if c else {}
                alert = await self._open_alert(
                    conn,
                    shipment_id=shipment_id,
                    reference=c.reference if c else None,
                    rule_key=key,
                    severity=new.severity,
                    title=engine.rule_title(key, new.state, new.device_id, name),
                    device_id=new.device_id,
                    triggered_at=new.triggered_at,
                    value=new.state.value,
                    thresholds=thresholds,
                    details={"devices": sorted({s.device_id for s in plan.take})},
                    event_data={
                        "device_id": new.device_id,
                        "since": new.state.since,
                        "alarm_at": new.triggered_at,
                        "severity": new.severity,
                        "details": dict(new.state.details),
                    },
                )
                alerts[(shipment_id, key)] = alert
            elif alert is not None:
                for s in plan.take:
                    assert s.state.trigger_at is not None
                    await self._retime(conn, alert, s.state.trigger_at, s.device_id)
                    await self._event(
                        conn,
                        alert["alert_id"],
                        "episode_added",
                        None,
                        {
                            "device_id": s.device_id,
                            "since": s.state.since,
                            "alarm_at": s.state.trigger_at,
                        },
                    )
            if alert is None:
                continue
            for s in plan.take:
                await conn.execute(q.TAKE_STATE, (alert["alert_id"], shipment_id, s.device_id, key))
            if plan.upgrade_to is not None and plan.strongest is not None:
                top = plan.strongest
                title = engine.rule_title(key, top.state, top.device_id, name)
                await self._upgrade(conn, alert, plan.upgrade_to, title, top.state.value)
            await self._transition(conn, alert, plan.transition)

    async def _open_alert(
        self,
        conn: AsyncConnection,
        *,
        shipment_id: int,
        reference: str | None,
        rule_key: str,
        severity: str,
        title: str,
        device_id: str | None,
        triggered_at: datetime,
        value: float | None,
        thresholds: Mapping[str, Any],
        details: Mapping[str, Any],
        event_data: Mapping[str, Any],
    ) -> dict[str, Any]:
        thresholds = engine.json_safe(dict(thresholds))
        row = await (
            await conn.execute(
                q.OPEN_ALERT,
                (
                    shipment_id,
                    rule_key,
                    severity,
                    title,
                    device_id,
                    triggered_at,
                    value,
                    Jsonb(thresholds),
                    Jsonb(engine.json_safe(dict(details))),
                ),
            )
        ).fetchone()
        assert row is not None
        alert: dict[str, Any] = {
            "alert_id": int(row[0]),
            "shipment_id": shipment_id,
            "reference": reference,
            "rule_key": rule_key,
            "severity": severity,
            "state": "open",
            "cleared": False,
            "title": title,
            "device_id": device_id,
            "triggered_at": triggered_at,
            "value": value,
            "thresholds": thresholds,
            "escalation_level": 0,
        }
        await self._event(conn, alert["alert_id"], "opened", None, event_data)
        await self._notify(conn, alert, "opened", range(0, 1))
        self.stats.alerts_opened += 1
        log.info("alert %d opened for shipment %d: %s", alert["alert_id"], shipment_id, title)
        return alert

    async def _retime(
        self, conn: AsyncConnection, alert: dict[str, Any], alarm_at: datetime, device_id: str
    ) -> None:
        """Late data revealed an earlier alarm: the alert carries the earliest alarm's time.

        So an alert reads the same whatever order the data came in; the earlier time is kept in
        the event.
        """
        if alarm_at >= alert["triggered_at"]:
            return
        await conn.execute(q.RETIME_ALERT, (alarm_at, device_id, alert["alert_id"]))
        await self._event(
            conn,
            alert["alert_id"],
            "retimed",
            "late data revealed an earlier alarm",
            {"from": alert["triggered_at"], "to": alarm_at, "device_id": device_id},
        )
        alert.update(triggered_at=alarm_at, device_id=device_id)

    async def _upgrade(
        self,
        conn: AsyncConnection,
        alert: dict[str, Any],
        severity: str,
        title: str,
        value: float | None,
    ) -> None:
        old = alert["severity"]
        await conn.execute(q.UPGRADE_ALERT, (severity, title, value, alert["alert_id"]))
        alert.update(severity=severity, title=title, value=value)
        await self._event(conn, alert["alert_id"], "upgraded", None, {"from": old, "to": severity})
        await self._notify(conn, alert, "upgraded", range(0, alert["escalation_level"] + 1))

    async def _transition(
        self, conn: AsyncConnection, alert: dict[str, Any], decision: engine.Transition | None
    ) -> None:
        if decision is None:
            return
        alert_id = alert["alert_id"]
        if decision == "clear":
            await conn.execute(q.CLEAR_ALERT, (alert_id,))
            alert["cleared"] = True
            await self._event(conn, alert_id, "cleared", None, {})
        elif decision == "reopen":
            await conn.execute(q.REOPEN_ALERT, (alert_id,))
            alert["cleared"] = False
            await self._event(conn, alert_id, "reopened", None, {})
        else:
            why = (
                "condition cleared after acknowledgement"
                if alert["state"] == "acknowledged"
                else "condition cleared (the rule resolves by itself)"
            )
            await conn.execute(q.RESOLVE_ALERT, (SYSTEM_ACTOR, alert_id))
            alert["state"] = "resolved"
            await self._event(conn, alert_id, "resolved", why, {})
        event = {"clear": "cleared", "reopen": "reopened", "resolve": "resolved"}[decision]
        await self._notify(conn, alert, event, range(0, alert["escalation_level"] + 1))

    async def _event(
        self,
        conn: AsyncConnection,
        alert_id: int,
        kind: str,
        comment: str | None,
        data: Mapping[str, Any],
    ) -> None:
        await conn.execute(
            q.ALERT_EVENT,
            (alert_id, kind, SYSTEM_ACTOR, comment, Jsonb(engine.json_safe(dict(data)))),
        )

    async def _notify(
        self, conn: AsyncConnection, alert: Mapping[str, Any], event: str, tiers: range
    ) -> None:
        """Queue the event for the tiers' recipients, in this transaction (the outbox)."""
        recipients = [
            (t.channel, t.address, t.tier)
            for t in targets(self.policy, tiers)
            if t.channel in self._channels
        ]
        if not recipients:
            return
        rows = notification_rows(alert, event, recipients)
        async with conn.cursor() as cur:
            await cur.executemany(q.INSERT_NOTIFICATION, rows)
        self.stats.notifications_queued += len(rows)
        self._notify_pending = True

    async def _flush_notify(self, conn: AsyncConnection) -> None:
        # Delivered at commit: wakes the delivery worker without polling.
        if self._notify_pending:
            await conn.execute(q.NOTIFY_NOTIFICATIONS)
            self._notify_pending = False


# --------------------------------------------------------------------------------------------
# Row helpers
# --------------------------------------------------------------------------------------------


def _array(data: bytes, dtype: str) -> np.ndarray:
    """The elements of a one-dimensional array in PostgreSQL's binary format (array_send).

    Header: ndim, has-nulls flag, element type, then (length, lower bound) per dimension; then
    each element as (byte length, value). The query sends no NULLs and 8-byte elements only.
    """
    header = np.frombuffer(data, dtype=">i4", count=3)
    ndim, has_nulls = int(header[0]), int(header[1])
    if ndim == 0:
        return np.empty(0, dtype=dtype)
    if ndim != 1 or has_nulls:
        raise ValueError(f"unexpected array: {ndim} dimensions, nulls={bool(has_nulls)}")
    n = int(np.frombuffer(data, dtype=">i4", count=1, offset=12)[0])
    elements = np.frombuffer(
        data, dtype=np.dtype([("len", ">i4"), ("value", dtype)]), count=n, offset=20
    )
    if n and not (elements["len"] == 8).all():
        raise ValueError("unexpected array element size")
    return elements["value"]


def _stored_excursion(r: Sequence[Any]) -> engine.StoredExcursion:
    return engine.StoredExcursion(
        excursion_id=r[0],
        device_id=r[1],
        direction=r[2],
        start=r[3],
        figures=(r[4], r[5], r[6], round(r[7], 6), round(r[8], 6), round(r[9], 6), *r[10:15]),
        alert_id=r[15],
    )


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


def _stored_state(r: Sequence[Any]) -> engine.StoredState:
    (_s, device_id, rule_key, holding, as_of, since, alarm_at, ended_at, severity, value,
     trigger_at, details, alert_id, alerted_since) = r  # fmt: skip
    return engine.StoredState(
        device_id=str(device_id),
        state=ConditionState(
            rule_key=str(rule_key),
            holding=bool(holding),
            as_of=as_of,
            since=since,
            alarm_at=alarm_at,
            ended_at=ended_at,
            severity=severity,
            value=value,
            trigger_at=trigger_at,
            details=details or {},
        ),
        alert_id=alert_id,
        alerted_since=alerted_since,
    )


def _same_state(old: engine.StoredState, row: Mapping[str, Any]) -> bool:
    """Would writing ``row`` change nothing the stored state says?"""
    s = old.state
    details = row["details"].obj if isinstance(row["details"], Jsonb) else row["details"]
    return (
        s.holding == row["holding"]
        and s.as_of == row["as_of"]
        and s.since == row["since"]
        and s.alarm_at == row["alarm_at"]
        and s.ended_at == row["ended_at"]
        and s.severity == row["severity"]
        and s.value == row["value"]
        and s.trigger_at == row["trigger_at"]
        and dict(s.details) == details
    )


def _stopped_holding(
    state: ConditionState, *, ended_at: datetime, as_of: datetime
) -> ConditionState:
    return ConditionState(
        rule_key=state.rule_key,
        holding=False,
        as_of=as_of,
        since=state.since,
        alarm_at=state.alarm_at,
        ended_at=ended_at,
        severity=state.severity,
        value=state.value,
        details=state.details,
    )


def _alert_row(r: Sequence[Any], ctx: ShipmentContext | None) -> dict[str, Any]:
    (alert_id, shipment_id, rule_key, severity, state, cleared, title, device_id, triggered_at,
     value, thresholds, level) = r  # fmt: skip
    return {
        "alert_id": int(alert_id),
        "shipment_id": int(shipment_id),
        "reference": ctx.reference if ctx else None,
        "rule_key": rule_key,
        "severity": severity,
        "state": state,
        "cleared": bool(cleared),
        "title": title,
        "device_id": device_id,
        "triggered_at": triggered_at,
        "value": value,
        "thresholds": thresholds,
        "escalation_level": int(level),
    }


def _alert_state(alert: Mapping[str, Any]) -> engine.AlertState:
    return engine.AlertState(
        alert["alert_id"], alert["rule_key"], alert["severity"], alert["state"], alert["cleared"]
    )


async def _first(*events: asyncio.Event) -> None:
    """Return when any of the events is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


# --------------------------------------------------------------------------------------------
# The running service
# --------------------------------------------------------------------------------------------

SHUTDOWN_TIMEOUT_S = 10.0


async def run_rules_engine(
    settings: Settings, stop: asyncio.Event, *, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run until ``stop``: evaluation, delivery and the listener that wakes them."""
    a = settings.alerts
    async with (
        AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=4, open=False) as pool,
        httpx.AsyncClient(timeout=a.webhook_timeout_s) as client,
    ):
        await pool.wait(timeout=30)
        rules = RulesEngine(pool, settings, clock=clock)
        await rules.setup()
        worker = DeliveryWorker(pool, a, senders_from_settings(a, client))
        wake_rules, wake_delivery = asyncio.Event(), asyncio.Event()
        log.info("rules engine running")
        async with asyncio.TaskGroup() as tg:
            listener = tg.create_task(
                _listen(
                    settings.db.dsn,
                    {"reading_changes": wake_rules, "alert_notifications": wake_delivery},
                    stop,
                ),
                name="rules-listen",
            )
            tasks = [
                tg.create_task(rules.run(stop, wake_rules), name="rules-evaluate"),
                tg.create_task(
                    worker.run(stop, wake_delivery, poll_s=a.poll_interval_s), name="rules-deliver"
                ),
            ]
            await stop.wait()
            listener.cancel()
            # The loops finish their current step; a send stuck beyond the timeout is cancelled
            # (its outbox row stays due and is sent after the restart).
            _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
            for t in pending:
                t.cancel()
        log.info(
            "rules engine stopped after %d rounds (%d alerts opened, %d notifications sent)",
            rules.stats.rounds,
            rules.stats.alerts_opened,
            worker.sent,
        )


async def _listen(dsn: str, wakes: Mapping[str, asyncio.Event], stop: asyncio.Event) -> None:
    """LISTEN on each channel and set its event; reconnect quietly when the database goes away."""
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
                for channel in wakes:
                    await conn.execute(f"LISTEN {channel}")
                for event in wakes.values():
                    event.set()  # whatever happened while we were not listening
                async for notify in conn.notifies():
                    woken = wakes.get(notify.channel)
                    if woken is not None:
                        woken.set()
        except psycopg.OperationalError:
            await asyncio.sleep(1.0)

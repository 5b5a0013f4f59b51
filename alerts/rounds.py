"""The rules engine's rounds: :class:`RulesEngine` and its loop.

The database is the source of truth. The ingester records what each commit changed in
``reading_changes`` and sends a NOTIFY; the engine wakes, takes the changes after its cursors,
re-evaluates the (shipment, device) pairs they touch and moves the cursors *in the same
transaction* as its results. Killed and started again, it neither loses nor repeats work. The
cursors move by the transaction horizon (:mod:`coldchain.changes`): the ingester's writers
commit out of change-id order, and a change is taken once its transaction has ended.
The shipments are split into partitions, each with its own cursor, which several engines
share (:mod:`alerts.partitions`: who holds what, and why that is safe); an engine works only on
the partitions it holds (all of them when it runs alone) and whose cursor rows it could lock.
Late or out-of-order readings simply re-evaluate their pair: the stored excursions and rule
states are always what an in-order evaluation of everything received gives, and changed
excursions are superseded (the history stays), not overwritten.

One task evaluates (in this order, never two transactions of its own at once): new changes;
every ``offline_check_interval_s`` the periodic pass over its partitions (silent loggers raise
and clear "no data"; pairs with an open excursion or a holding rule are re-judged, since
silence changes them too; alerts acknowledged after their condition cleared resolve; the holder
of partition 0 checks the fleet's ingest, :mod:`alerts.ingest_watch`); every
``escalation_check_interval_s`` the escalation of unacknowledged alerts, then their reminders
(:mod:`alerts.reminders`). Each round is one
transaction; what it does is in :mod:`alerts.evaluate` (judging pairs) and
:mod:`alerts.reconcile` (settling alerts, notifications in the outbox), the rows it reads are
decoded by :mod:`alerts.rows`, and :mod:`alerts.service` runs it beside the delivery worker.

One shipment cannot stop the others: a (shipment, device) pair whose judging raises is skipped
and the rest of its batch written; a shipment whose alerts cannot be reconciled is rolled back
to a savepoint and the others reconciled. Each such failure is counted
(``EngineStats.pair_errors``) and logged with its traceback once per shipment and error, then
at DEBUG, so a permanent fault does not fill the log every ``offline_check_interval_s``.

Per round, reads and writes are set-oriented (arrays of pairs, one statement for the readings
of up to :data:`PAIRS_PER_QUERY` pairs, ``executemany`` for the writes); the judging itself is the
pure code of :mod:`alerts.conditions` and :mod:`alerts.policy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from alerts.channels import configured_channels
from alerts.checkpoints import CheckpointPolicy
from alerts.context import EngineStats, ShipmentContext
from alerts.escalation import escalation_target
from alerts.evaluate import PairJudge, load_states
from alerts.in_force import RuleContext, rules_of
from alerts.ingest_watch import watch_ingest
from alerts.layers import settings_rules
from alerts.outbox import LinkPolicy
from alerts.partitions import AllPartitions, Claims, cursor_name, cursor_prefix
from alerts.policy_sources import PolicySources
from alerts.reconcile import Reconciler
from alerts.reminders import shortest_interval
from alerts.reminding import remind_due
from alerts.risk import RiskJudge
from alerts.rows import (
    Change,
    EscalationCandidate,
    OfflineCandidate,
    Pair,
    ReminderCandidate,
    fetch,
)
from alerts.rules import (
    EscalationPolicy,
    FloodLimits,
    RulesFile,
    load_rules_file,
)
from coldchain.changes import Position, first_after, next_position
from coldchain.errors import ConfigError
from coldchain.runtime import first_of, utcnow
from coldchain.settings import Settings
from db.queries import limits as limits_q
from db.queries import partitions as pq
from db.queries import rules as q

log = logging.getLogger(__name__)

# Changes taken per transaction: enough that a catch-up evaluates each pair once, not once per
# upload, while one round stays a bounded amount of work.
CHANGES_PER_ROUND = 50_000
PAIRS_PER_QUERY = 250
# A partition whose cursor row another engine still has locked (a takeover under way) is tried
# again this soon rather than at the next poll.
CONTENDED_RETRY_S = 0.2


class RulesEngine:
    """Evaluates changed (shipment, device) pairs and keeps their alerts; one transaction a round."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        rules_file: RulesFile | None = None,
        claims: Claims | None = None,
    ) -> None:
        self._pool = pool
        # Alone unless told otherwise: tests, benches and a round run by hand hold everything.
        self._claims: Claims = claims or AllPartitions(settings.alerts.partitions)
        self._contended = False  # a held partition's cursor row was locked by another engine
        self._settings = settings.alerts
        self._clock = clock
        self._base = settings_rules(
            offline_factor=settings.alerts.offline_factor,
            battery_threshold=settings.alerts.battery_threshold,
            clear_delay_s=settings.alerts.clear_delay_s,
        )
        self._rules_path: Path | None = None if rules_file else settings.alerts.rules_file
        self._rules_mtime: float | None = None
        self._rules = rules_file or RulesFile()
        if self._rules_path is not None:
            self._rules = load_rules_file(self._rules_path)  # a bad file stops the start
            self._rules_mtime = self._rules_path.stat().st_mtime
        # Channels the delivery worker can send on: without an SMTP host, e-mail recipients are
        # not queued (they would only fail ten times each), and that is said once at the start.
        channels = configured_channels(settings.alerts)
        self._policies = PolicySources(
            settings, channels, lambda: self._rules.escalation, pool=pool
        )
        self._reported: set[str] = set()
        self._failures: set[tuple[str, str]] = set()  # (what failed, error) already logged
        self._watching_since: datetime | None = None  # the first offline check
        self.stats = EngineStats()
        # When an evaluation round last completed (time.monotonic()): the heartbeat's sign of
        # life (alerts/heartbeat.py); a long catch-up counts each committed round.
        self.progress_at: float | None = None
        self._judge = PairJudge(
            gap_factor=settings.alerts.gap_factor,
            stats=self.stats,
            report=self._report_failure,
            checkpoints=CheckpointPolicy(
                interval=timedelta(seconds=settings.alerts.checkpoint_interval_s),
                lag=timedelta(seconds=settings.alerts.checkpoint_lag_s),
                kept=settings.alerts.checkpoints_kept,
            ),
        )
        self._risk = RiskJudge(
            trend_weight=settings.forecast.trend_weight,
            history_cache_s=settings.forecast.history_cache_s,
            report=self._report_failure,
        )
        self._alerts = Reconciler(
            policy=lambda: self.policy,
            channels=channels,
            default_clear=timedelta(seconds=settings.alerts.clear_delay_s),
            stats=self.stats,
            report=self._report_failure,
            links=LinkPolicy(
                base_url=settings.web.base_url(),
                ttl=timedelta(hours=settings.alerts.ack_link_ttl_h),
            ),
            clock=clock,
        )

    @property
    def policy(self) -> EscalationPolicy:
        """Who is told (alerts.policy_sources: stored through the API, the rules file, the
        settings)."""
        return self._policies.policy

    @property
    def flood_limits(self) -> FloodLimits:
        """Flood control's limits of the policy in force (alerts.policy_sources)."""
        return self._policies.flood_limits

    async def reload_policy(self) -> None:
        """Take a new version of the escalation policy stored through the API."""
        await self._policies.reload()

    async def setup(self) -> None:
        """Create the partitions' cursor rows (from the cursors in use before; see pq)."""
        n = self._claims.partitions
        async with self._pool.connection() as conn:
            await conn.execute(
                pq.ENSURE_PARTITION_CURSORS, {"prefix": cursor_prefix(n), "partitions": n}
            )

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
        """Evaluate everything committed since the cursors; return the number of changes taken.

        The cursors move by the transaction horizon (:mod:`coldchain.changes`): a change whose
        transaction is still running is taken by a later round, never passed over.
        """
        taken_total = 0
        n = self._claims.partitions
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                locked = await self._lock_partitions(conn)
                if not locked:
                    return taken_total
                parts = sorted(locked)
                horizon = await self._horizon(conn)
                start = min(locked.values())
                changes = await fetch(
                    conn,
                    q.PENDING_CHANGES,
                    {**start._asdict(), "horizon": horizon, "limit": CHANGES_PER_ROUND},
                    Change,
                )
                if not changes:
                    return taken_total
                taken = [Position(c.xid, c.change_id) for c in changes]
                # Each change counts for the partitions whose cursor is before it.
                pairs = await fetch(
                    conn,
                    q.AFFECTED_PAIRS,
                    {
                        "device_id": [c.device_id for c in changes],
                        "ts_min": [c.ts_min for c in changes],
                        "ts_max": [c.ts_max for c in changes],
                        "held": parts,
                        "first": [first_after(taken, locked[p]) for p in parts],
                        "partitions": n,
                    },
                    Pair,
                )
                # Each pair is judged again from its logger's earliest changed reading (from the
                # last checkpoint before it). A change another partition's cursor had passed
                # only makes that start earlier: more work, the same results.
                earliest: dict[str, datetime] = {}
                for c in changes:
                    earliest[c.device_id] = min(c.ts_min, earliest.get(c.device_id, c.ts_min))
                await self._evaluate_pairs(
                    conn,
                    [p.key for p in pairs],
                    changed_from={p.key: earliest[p.device_id] for p in pairs},
                )
                to = next_position(taken, limit=CHANGES_PER_ROUND, horizon=horizon)
                await conn.execute(
                    pq.MOVE_PARTITION_CURSORS,
                    {**to._asdict(), "names": [cursor_name(n, p) for p in parts]},
                )
                await self._alerts.flush_notify(conn)
            taken_total += len(changes)
            self.stats.rounds += 1
            self.progress_at = time.monotonic()

    async def recheck_open(self) -> None:
        """Re-judge pairs with an open excursion or a holding rule: silence changes them too."""
        async with self._pool.connection() as conn, conn.transaction():
            mine = await self._locked_filter(conn)
            if mine is None:
                return
            pairs = await fetch(conn, q.RECHECK_PAIRS, mine, Pair)
            if pairs:
                await self._evaluate_pairs(conn, [p.key for p in pairs])
            await self._alerts.flush_notify(conn)

    async def check_offline(self) -> None:
        """Raise and clear "no data" for loggers in transit, judge the excursion risk of the
        shipments in transit, then settle every unresolved alert."""
        now = self._clock()
        if self._watching_since is None:
            self._watching_since = now
        watched_for = now - self._watching_since
        async with self._pool.connection() as conn, conn.transaction():
            mine = await self._locked_filter(conn)
            if mine is None:
                return
            candidates = await fetch(
                conn, q.OFFLINE_CANDIDATES, {"now": now, **mine}, OfflineCandidate
            )
            holding = {p.key for p in await fetch(conn, q.HOLDING_OFFLINE, mine, Pair)}
            by_pair = {c.key: c for c in candidates}
            pairs = sorted(set(by_pair) | holding)
            shipments = sorted({s for s, _ in pairs})
            ctx = await self._load_context(conn, shipments)
            stored = await load_states(conn, pairs)
            rows: list[dict[str, Any]] = []
            for pair in pairs:
                try:
                    row = self._judge.offline_row(
                        pair, by_pair.get(pair), stored, ctx, now, watched_for
                    )
                except Exception as exc:
                    # One shipment's bad rule or data must not silence the fleet's check.
                    self._report_failure(
                        f"offline check of shipment {pair[0]} device {pair[1]}", exc
                    )
                    continue
                if row is not None:
                    rows.append(row)

            async def context_of(ids: Sequence[int]) -> dict[int, ShipmentContext]:
                ctx.update(await self._load_context(conn, [s for s in ids if s not in ctx]))
                return ctx

            # The shipments' chance of an excursion before arrival (alerts.risk), in a savepoint:
            # should it fail as a whole, the silence check and the settling still happen.
            try:
                async with conn.transaction():
                    rows.extend((await self._risk.state_rows(conn, mine, now, context_of))[0])
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                self._report_failure("excursion risk pass", exc)
            await self._judge.write_states(conn, rows)
            # With the shipments that could not be settled before, if still in these partitions.
            also = sorted(self._alerts.unsettled)
            open_alerts = [
                int(r[0])  # shipment_id, the one column
                for r in await (
                    await conn.execute(q.SHIPMENTS_TO_SETTLE, {"also": also, **mine})
                ).fetchall()
            ]
            settle = sorted(set(open_alerts) | {int(r["shipment_id"]) for r in rows})
            if settle:
                ctx.update(await self._load_context(conn, [s for s in settle if s not in ctx]))
                await self._alerts.reconcile(conn, settle, ctx)
            if 0 in mine["held"]:
                # The fleet's own check, by the one engine that holds partition 0; in a
                # savepoint, so that its failure cannot undo the shipments' offline check.
                try:
                    async with conn.transaction():
                        await watch_ingest(
                            conn,
                            self._alerts,
                            stall_min=self._settings.ingest_stall_min,
                            offline_factor=self._settings.offline_factor,
                        )
                except Exception as exc:
                    self._report_failure("ingest stall check", exc)
            await self._alerts.flush_notify(conn)

    async def judge_shipments(self, shipment_ids: Sequence[int]) -> None:
        """Judge every (shipment, logger) pair of these shipments now and settle their alerts,
        in one transaction, without moving the cursors: the back-fill of a simulated history
        (:mod:`services.history`) has its shipments judged by this very code. Whoever follows
        the change log later judges the same readings again and finds the same results (the
        stored results are what an in-order evaluation gives), so nothing opens twice."""
        async with self._pool.connection() as conn, conn.transaction():
            pairs = await fetch(conn, q.SHIPMENT_PAIRS, {"ids": list(shipment_ids)}, Pair)
            await self._evaluate_pairs(conn, [p.key for p in pairs])
            await self._alerts.flush_notify(conn)

    async def periodic(self) -> None:
        """The periodic pass: silence, re-judging, settling (see the module docstring)."""
        await self.recheck_open()
        await self.check_offline()

    async def escalate(self) -> int:
        """Escalate alerts nobody acknowledged in time; return how many were escalated."""
        policy = self.policy
        last_tier = len(policy.tiers) - 1
        held = sorted(self._claims.held)
        if last_tier < 1 or not held:
            return 0
        now = self._clock()
        escalated = 0
        # The alerts of the held partitions; their own row locks keep two engines apart.
        params = {"last_tier": last_tier, "held": held, "partitions": self._claims.partitions}
        async with self._pool.connection() as conn, conn.transaction():
            for c in await fetch(conn, q.ESCALATION_CANDIDATES, params, EscalationCandidate):
                level = c.escalation_level
                target = escalation_target(
                    policy,
                    state=c.state,
                    level=level,
                    opened_at=c.created_at,
                    now=now,
                    default_minutes=self._settings.escalation_minutes,
                )
                if target is None:
                    continue
                await conn.execute(q.ESCALATE_ALERT, (target, now, c.alert_id))
                names = [policy.tiers[t].name for t in range(level + 1, target + 1)]
                await self._alerts.event(
                    conn,
                    c.alert_id,
                    "escalated",
                    None,
                    {"from": level, "to": target, "tiers": names},
                )
                await self._alerts.notify(
                    conn, c.alert(target), "escalated", range(level + 1, target + 1)
                )
                escalated += 1
                log.info("alert %d escalated to tier %d (%s)", c.alert_id, target, ", ".join(names))
            await self._alerts.flush_notify(conn)
        self.stats.escalations += escalated
        return escalated

    async def remind(self) -> int:
        """Remind the tiers already told of alerts nobody acknowledged (alerts/reminders.py):
        send the reminders due, hold those quiet hours hold; return how many were sent."""
        policy = self.policy
        held = sorted(self._claims.held)
        shortest = shortest_interval(policy, self._settings.reminder_minutes)
        if not policy.tiers or not held or shortest is None:
            return 0
        now = self._clock()
        # The alerts of the held partitions, each row locked: one engine reminds an alert once.
        params = {
            "held": held,
            "partitions": self._claims.partitions,
            "due_before": now - shortest,
        }
        async with self._pool.connection() as conn, conn.transaction():
            candidates = await fetch(conn, q.REMINDER_CANDIDATES, params, ReminderCandidate)
            sent = await remind_due(
                conn,
                self._alerts,
                candidates,
                policy,
                self._settings.reminder_minutes,
                now,
                self.stats,
            )
            await self._alerts.flush_notify(conn)
        self.stats.reminders += sent
        return sent

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Evaluate until ``stop``: on NOTIFY or every poll interval, plus the periodic passes."""
        loop = asyncio.get_running_loop()
        periodic_every = self._settings.offline_check_interval_s
        escalate_every = self._settings.escalation_check_interval_s
        last_periodic = last_escalation = -float("inf")
        while not stop.is_set():
            wake.clear()
            self.reload_rules()
            await self._step("escalation policy", self.reload_policy)
            await self._step("evaluation", self.process_changes)
            if loop.time() - last_periodic >= periodic_every:
                # Two steps: re-judging failing as a whole must not stop the silence check.
                await self._step("periodic re-judging", self.recheck_open)
                await self._step("offline check", self.check_offline)
                last_periodic = loop.time()
            if loop.time() - last_escalation >= escalate_every:
                await self._step("escalation", self.escalate)
                await self._step("reminders", self.remind)
                last_escalation = loop.time()
            now = loop.time()
            timeout = min(
                CONTENDED_RETRY_S if self._contended else self._settings.poll_interval_s,
                max(last_periodic + periodic_every - now, 0.0),
                max(last_escalation + escalate_every - now, 0.0),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_of(wake, stop), timeout=max(timeout, 0.01))

    async def _lock_partitions(self, conn: AsyncConnection[Any]) -> dict[int, Position]:
        """Lock the cursor rows of the held partitions no other transaction has locked;
        return their positions (see alerts.partitions)."""
        n = self._claims.partitions
        held = sorted(self._claims.held)
        if not held:
            self._contended = False
            return {}
        await conn.execute(pq.SHARE_LEGACY_CURSOR)  # a single engine of before, mid-upgrade
        names = [cursor_name(n, p) for p in held]
        rows = await (await conn.execute(pq.LOCK_PARTITION_CURSORS, {"names": names})).fetchall()
        locked = {int(str(r[0]).rsplit("/", 1)[1]): Position(int(r[1]), int(r[2])) for r in rows}
        self._contended = len(locked) < len(held)
        return locked

    async def _horizon(self, conn: AsyncConnection[Any]) -> int:
        """The transaction horizon: every transaction below it has ended (coldchain.changes)."""
        row = await (await conn.execute(q.HORIZON)).fetchone()
        assert row is not None
        return int(row[0])

    async def _locked_filter(self, conn: AsyncConnection[Any]) -> dict[str, Any] | None:
        """The partition filter of the periodic statements, for the partitions locked here;
        None when there are none."""
        locked = await self._lock_partitions(conn)
        if not locked:
            return None
        return {"held": sorted(locked), "partitions": self._claims.partitions}

    async def _step(self, name: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run one step of the loop; a failure is logged and retried at the next turn.

        Each step is one transaction, rolled back on failure, so retrying is safe; the other
        steps (escalation above all) keep running even if one keeps failing.
        """
        try:
            await step()
            if name == "evaluation":
                self.progress_at = time.monotonic()
        except psycopg.OperationalError as exc:
            log.warning("%s: database unavailable (%s); retrying", name, exc)
        except Exception:
            log.exception("%s failed; retrying at the next turn", name)

    async def _evaluate_pairs(
        self,
        conn: AsyncConnection[Any],
        pairs: Iterable[tuple[int, str]],
        changed_from: Mapping[tuple[int, str], datetime] | None = None,
    ) -> None:
        now = self._clock()
        ordered = sorted(set(pairs))
        shipments = sorted({s for s, _ in ordered})
        ctx = await self._load_context(conn, shipments)
        for start in range(0, len(ordered), PAIRS_PER_QUERY):
            chunk = [p for p in ordered[start : start + PAIRS_PER_QUERY] if p[0] in ctx]
            if chunk:
                await self._judge.judge_chunk(conn, chunk, ctx, now, changed_from)
        await self._alerts.reconcile(conn, shipments, ctx)

    async def _load_context(
        self, conn: AsyncConnection[Any], shipment_ids: Sequence[int]
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

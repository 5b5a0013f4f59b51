"""Judging (shipment, device) pairs: their readings through the rules, the results written.

A chunk of up to ``PAIRS_PER_QUERY`` pairs is read with a handful of set-oriented statements
(interval and assignment, checkpoints, readings as binary arrays, stored excursions and states),
each pair judged by the pure code of :mod:`alerts.conditions` and :mod:`alerts.policy`, and the
changes written with ``executemany``. A pair whose judging raises is skipped and reported; the
rest of its chunk is written. The "no data" state of the periodic pass is built here too
(:meth:`PairJudge.offline_row`), so a state row is made one way only.

Each pair is judged from its latest checkpoint that still holds (:mod:`alerts.checkpoints`):
only the readings from the checkpoint on are read (and, for the few pairs whose MKT windows could
be above the limit, those the windows reach: a second statement), and the result is the one-pass
answer. The checkpoints at or after the earliest changed reading are dropped first, a new one is
taken when due, and old ones are pruned, all in the transaction of the results they go with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from alerts import checkpoints, policy
from alerts.checkpoints import CheckpointPolicy
from alerts.conditions import present
from alerts.conditions.arrays import Series, epoch_us
from alerts.conditions.pair import PairEvaluation, evaluate_pair
from alerts.conditions.prefix import (
    Prefix,
    checkpoint_time,
    load_from_us,
    needs_mkt_context,
    prefix_at,
)
from alerts.conditions.states import ConditionState, stopped_holding
from alerts.context import EngineStats, ReportFailure, ShipmentContext
from alerts.rows import (
    EMPTY_SERIES,
    CheckpointRecord,
    ExcursionRecord,
    OfflineCandidate,
    PairInfo,
    PairReadings,
    StateRecord,
    fetch,
    pair_arrays,
)
from alerts.rules import SECTION_OF
from coldchain.thermal.excursions import Excursion
from coldchain.thermal.series import datetime_from_us
from db.queries import checkpoints as checkpoints_q
from db.queries import rules as q

Stored = dict[tuple[int, str], dict[str, policy.StoredState]]
"""Stored rule states by pair, then by rule key."""


@dataclass(slots=True)
class _Writes:
    """Rows collected while judging a batch of pairs, written with executemany."""

    supersede: list[tuple[str, int]] = field(default_factory=list)
    excursions: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Start:
    """Where a pair's judging starts: its fingerprint, and the checkpoint (None: in full)."""

    fingerprint: str
    checkpoint: CheckpointRecord | None
    newest: datetime | None  # its newest checkpoint left, whatever its fingerprint


class PairJudge:
    """Judges pairs and writes their excursions and rule states."""

    def __init__(
        self,
        *,
        gap_factor: float,
        stats: EngineStats,
        report: ReportFailure,
        checkpoints: CheckpointPolicy | None = None,
    ) -> None:
        self._gap_factor = gap_factor
        self._stats = stats
        self._report = report
        self._checkpoints = checkpoints or CheckpointPolicy()

    async def judge_chunk(
        self,
        conn: AsyncConnection[Any],
        chunk: list[tuple[int, str]],
        ctx: Mapping[int, ShipmentContext],
        now: datetime,
        changed_from: Mapping[tuple[int, str], datetime] | None = None,
    ) -> None:
        """Judge some pairs (of shipments in ``ctx``) and write what changed.

        ``changed_from`` is, per pair, its earliest reading changed since it was last judged
        (a pair not in it: none changed, as in the periodic re-judging).
        """
        arrays = pair_arrays(chunk)
        changed = changed_from or {}
        info = {
            (r.shipment_id, r.device_id): r
            for r in await fetch(conn, q.PAIR_INFO, arrays, PairInfo)
        }
        starts = await self._starts(conn, chunk, info, ctx, now, changed)
        prefixes: dict[tuple[int, str], Prefix] = {}
        since: list[datetime | None] = []
        for pair in chunk:
            start = starts.get(pair)
            prefix = None
            if start is not None and start.checkpoint is not None:
                try:
                    prefix = checkpoints.decode(start.checkpoint.state)
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    # A checkpoint that cannot be read is no reason to stop: judge in full.
                    self._report(f"checkpoint of shipment {pair[0]} device {pair[1]}", exc)
            if prefix is not None:
                prefixes[pair] = prefix
            since.append(
                None
                if prefix is None
                else datetime_from_us(load_from_us(prefix, ctx[pair[0]].rules, now=now))
            )
        all_series = await load_series(conn, chunk, since)
        # Pairs whose MKT windows could be above the limit: read again, with what they reach.
        again = [
            i
            for i, pair in enumerate(chunk)
            if pair in prefixes
            and needs_mkt_context(all_series[i], prefixes[pair], ctx[pair[0]].rules, now=now)
        ]
        if again:
            wider = [
                datetime_from_us(
                    load_from_us(
                        prefixes[chunk[i]], ctx[chunk[i][0]].rules, now=now, mkt_context=True
                    )
                )
                for i in again
            ]
            for i, series in zip(
                again, await load_series(conn, [chunk[i] for i in again], wider), strict=True
            ):
                all_series[i] = series
        stored_excursions: dict[tuple[int, str], list[policy.StoredExcursion]] = defaultdict(list)
        for e in await fetch(conn, q.CURRENT_EXCURSIONS, arrays, ExcursionRecord):
            stored_excursions[(e.shipment_id, e.device_id)].append(e.stored())
        stored_states = await load_states(conn, chunk)
        writes = _Writes()
        for pair, series in zip(chunk, all_series, strict=True):
            pair_info = info.get(pair)
            start = starts.get(pair)
            if pair_info is None or start is None:
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
                    start,
                    prefixes.get(pair),
                )
            except Exception as exc:
                # One pair's bad data must not stop the others (nor the cursor): log and go on.
                self._report(f"evaluating shipment {pair[0]} device {pair[1]}", exc)
            self._stats.pairs_evaluated += 1
            self._stats.pairs_from_checkpoint += pair in prefixes
            self._stats.readings_evaluated += len(series)
        async with conn.cursor() as cur:
            if writes.supersede:
                await cur.executemany(q.SUPERSEDE_EXCURSION, writes.supersede)
            if writes.excursions:
                await cur.executemany(q.INSERT_EXCURSION, writes.excursions)
            if writes.checkpoints:
                await cur.executemany(checkpoints_q.INSERT_CHECKPOINT, writes.checkpoints)
                done = [(r["shipment_id"], r["device_id"]) for r in writes.checkpoints]
                fingerprints = [starts[p].fingerprint for p in done]
                await cur.execute(
                    checkpoints_q.PRUNE_CHECKPOINTS,
                    (*pair_arrays(done), fingerprints, self._checkpoints.kept),
                )
        self._stats.excursions_written += len(writes.excursions)
        self._stats.checkpoints_written += len(writes.checkpoints)
        await self.write_states(conn, writes.states)

    async def _starts(
        self,
        conn: AsyncConnection[Any],
        chunk: list[tuple[int, str]],
        info: Mapping[tuple[int, str], PairInfo],
        ctx: Mapping[int, ShipmentContext],
        now: datetime,
        changed: Mapping[tuple[int, str], datetime],
    ) -> dict[tuple[int, str], _Start]:
        """Drop the checkpoints the changes invalidate; choose each pair's starting point."""
        rewound = [p for p in chunk if p in changed]
        if rewound:
            await conn.execute(
                checkpoints_q.DROP_CHECKPOINTS_SINCE,
                (*pair_arrays(rewound), [changed[p] for p in rewound]),
            )
        kept: dict[tuple[int, str], list[CheckpointRecord]] = defaultdict(list)
        if self._checkpoints.kept > 0:
            for c in await fetch(
                conn, checkpoints_q.PAIR_CHECKPOINTS, pair_arrays(chunk), CheckpointRecord
            ):
                kept[(c.shipment_id, c.device_id)].append(c)
        starts: dict[tuple[int, str], _Start] = {}
        for pair in chunk:
            pair_info = info.get(pair)
            if pair_info is None:
                continue
            max_gap = timedelta(seconds=pair_info.interval_s * self._gap_factor)
            fp = checkpoints.fingerprint(
                ctx[pair[0]].rules, max_gap=max_gap, assignments=pair_info.assignments
            )
            stored = kept.get(pair, [])
            chosen = checkpoints.choose_base(
                stored,
                fingerprint=fp,
                changed_from=None,  # those at or after it are dropped above
                now=now,
                assigned_until=pair_info.assigned_until,
            )
            newest = max((c.at for c in stored if c.fingerprint == fp), default=None)
            starts[pair] = _Start(fp, chosen, newest)
        return starts

    async def write_states(self, conn: AsyncConnection[Any], rows: list[dict[str, Any]]) -> None:
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(q.UPSERT_STATE, rows)
            self._stats.states_written += len(rows)

    def _judge_pair(
        self,
        pair: tuple[int, str],
        series: Series,
        info: PairInfo,
        ctx: ShipmentContext,
        stored_excursions: list[policy.StoredExcursion],
        stored_states: Mapping[str, policy.StoredState],
        now: datetime,
        writes: _Writes,
        start: _Start,
        prefix: Prefix | None,
    ) -> None:
        shipment_id, device_id = pair
        max_gap = timedelta(seconds=info.interval_s * self._gap_factor)
        result = evaluate_pair(
            series,
            ctx.rules,
            max_gap=max_gap,
            now=now,
            assigned_until=info.assigned_until,
            previous={k: s.state for k, s in stored_states.items()},
            alerted_since={k: s.alerted_since for k, s in stored_states.items()},
            base=prefix,
        )
        self._take_checkpoint(pair, series, info, ctx, now, start, prefix, result, writes)
        if result.excursions is not None:
            plan = policy.plan_excursions(stored_excursions, result.excursions)
            writes.supersede.extend((reason, old.excursion_id) for old, reason in plan.supersede)
            thresholds = Jsonb(
                policy.json_safe(
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
                states["device_offline"] = stopped_holding(offline.state, ended_at=last, as_of=now)
        for key, new in states.items():
            old = stored_states.get(key)
            if new.empty and old is None:
                continue  # nothing ever alarmed: nothing to remember
            row = state_row(shipment_id, device_id, new, ctx, SECTION_OF[key], max_gap=max_gap)
            if old is None or not same_state(old, row):
                writes.states.append(row)

    def _take_checkpoint(
        self,
        pair: tuple[int, str],
        series: Series,
        info: PairInfo,
        ctx: ShipmentContext,
        now: datetime,
        start: _Start,
        prefix: Prefix | None,
        result: PairEvaluation,
        writes: _Writes,
    ) -> None:
        """Add the pair's next checkpoint to ``writes`` when one is due and can be taken."""
        if self._checkpoints.kept <= 0 or not len(series):
            return
        until = checkpoints.next_checkpoint_until(
            start.newest,
            datetime_from_us(int(series.t_us[-1])),
            now=now,
            assigned_until=info.assigned_until,
            interval=self._checkpoints.interval,
            lag=self._checkpoints.lag,
        )
        if until is None:
            return
        after = None if prefix is None else prefix.at_us
        if start.newest is not None:
            after = max(after or 0, epoch_us(start.newest))
        at = checkpoint_time(series, result.spans, after_us=after, until_us=epoch_us(until))
        if at is None:
            return
        try:
            taken = prefix_at(
                series,
                at,
                base=prefix,
                excursions=result.excursions or [],
                episodes=result.episodes,
                rules=ctx.rules,
                limits=result.limits,
            )
            state = checkpoints.encode(taken)
        except ValueError:
            return  # nothing JSON can hold exactly: no checkpoint (the pair is judged as before)
        writes.checkpoints.append(
            {
                "shipment_id": pair[0],
                "device_id": pair[1],
                "at": datetime_from_us(at),
                "fingerprint": start.fingerprint,
                "state": state,
            }
        )

    def offline_row(
        self,
        pair: tuple[int, str],
        cand: OfflineCandidate | None,
        stored: Stored,
        ctx: Mapping[int, ShipmentContext],
        now: datetime,
        watched_for: timedelta,
    ) -> dict[str, Any] | None:
        """The pair's new "no data" state row, or None when nothing changes."""
        shipment_id, device_id = pair
        old = stored.get(pair, {}).get("device_offline")
        rule = ctx[shipment_id].rules.offline if shipment_id in ctx else None
        # An assignment open to the past counts from the latest reading.
        start = None if cand is None else (cand.assigned_since or cand.last_ts)
        if cand is not None and rule is not None and start is not None:
            new = present.offline_state(
                cand.last_ts,
                start,
                int(cand.interval_s),
                rule,
                now=now,
                previous=old.state if old else None,
                alerted_since=old.alerted_since if old else None,
                arrived_ago=None
                if cand.received_ago_s is None
                else timedelta(seconds=cand.received_ago_s),
                watched_for=watched_for,
            )
        elif old is not None and old.state.holding:
            # No longer expected to report (delivered, unassigned, rule switched off).
            new = stopped_holding(old.state, ended_at=now, as_of=now)
        else:
            return None
        row = state_row(shipment_id, device_id, new, ctx.get(shipment_id), "offline")
        if old is None or not same_state(old, row):
            return row
        return None


async def load_series(
    conn: AsyncConnection[Any],
    pairs: Sequence[tuple[int, str]],
    since: Sequence[datetime | None] | None = None,
) -> list[Series]:
    """The readings of each pair (in the order given; from its ``since`` on, None: all), in one
    statement."""
    series = [EMPTY_SERIES] * len(pairs)
    params = (*pair_arrays(pairs), list(since) if since is not None else [None] * len(pairs))
    for r in await fetch(conn, q.PAIR_READINGS, params, PairReadings, binary=True):
        series[r.pair_index - 1] = r.series()
    return series


async def load_states(conn: AsyncConnection[Any], pairs: Sequence[tuple[int, str]]) -> Stored:
    """The stored rule states of some pairs."""
    if not pairs:
        return {}
    found: Stored = defaultdict(dict)
    for r in await fetch(conn, q.PAIR_STATES, pair_arrays(pairs), StateRecord):
        found[(r.shipment_id, r.device_id)][r.rule_key] = r.stored()
    return found


def state_row(
    shipment_id: int,
    device_id: str,
    state: ConditionState,
    ctx: ShipmentContext | None,
    section: str,
    *,
    max_gap: timedelta | None = None,
) -> dict[str, Any]:
    """The ``UPSERT_STATE`` row of a rule's state, with the rule's thresholds as judged."""
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
        "details": Jsonb(policy.json_safe(dict(state.details))),
        "thresholds": Jsonb(policy.json_safe(snapshot)),
    }


def same_state(old: policy.StoredState, row: Mapping[str, Any]) -> bool:
    """Would writing ``row`` change nothing the stored state says?"""
    s = old.state
    details = row["details"].obj if isinstance(row["details"], Jsonb) else row["details"]
    return bool(
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
        "rule_key": policy.rule_key(e),
        # Only an excursion that still alarms keeps its alert; the alert stays either way.
        "alert_id": carried.get(e.key) if e.alarm else None,
        "thresholds": thresholds,
    }

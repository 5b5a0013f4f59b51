"""The ``excursion_risk`` rule in the engine's periodic pass: the forecast of each shipment in
transit (of the partitions held), its state written like any rule's, its alert settled by
:mod:`alerts.reconcile` like any rule's (one alert per episode, the rule's clear delay).

The forecast is computed exactly as the pages compute it: the same statements
(:data:`db.queries.forecast.IN_TRANSIT_HELD` is ``IN_TRANSIT`` for the held partitions, and
``LANE_HISTORY``), the same reading of their rows (:mod:`coldchain.forecast.rows`) and the same
model (:func:`coldchain.forecast.model.forecast_shipment`), so a figure on the fleet page and in
an alert agree. When the condition holds is :mod:`alerts.conditions.risk`'s.

Cost per pass: one statement for the shipments in transit, one for the shipments whose risk
state still needs judging, and at most one for the lanes' histories: each lane's history is kept
for ``forecast.history_cache_s`` (a lane gains a finished shipment every few hours; re-reading
500 past trips per lane every 30 s would be waste). So the engine's figure may rest on a
history up to that old; the pages read it fresh. The state is a shipment's, not a logger's: it
is stored with the device id :data:`SHIPMENT_WIDE` (``""``).

Why this rule is outside the checkpoints' "stored results = in-order evaluation" property:
:mod:`alerts.checkpoints`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from alerts.conditions.risk import RULE_KEY, risk_state
from alerts.context import ReportFailure, ShipmentContext
from alerts.evaluate import load_states, same_state, state_row
from coldchain.forecast.model import LaneHistory, ShipmentForecast, forecast_shipment
from coldchain.forecast.rows import in_transit_from_row, lane_histories_from_rows
from coldchain.lifecycle import FINISHED
from db.queries import forecast as forecast_q

__all__ = ["SHIPMENT_WIDE", "RiskJudge"]

#: The device id of a shipment-wide rule state (rule_states is keyed by shipment and device).
SHIPMENT_WIDE = ""

LoadContext = Callable[[Sequence[int]], Awaitable[dict[int, ShipmentContext]]]


class RiskJudge:
    """Judges the ``excursion_risk`` rule of the held shipments; keeps the lanes' histories."""

    def __init__(
        self,
        *,
        trend_weight: float,
        history_cache_s: float,
        report: ReportFailure,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._trend_weight = trend_weight
        self._ttl = history_cache_s
        self._report = report
        self._monotonic = monotonic
        self._lanes: dict[int, tuple[float, LaneHistory]] = {}  # lane id → (read at, history)
        self.history_reads = 0  # statements that read lane histories (for tests and stats)

    async def histories(
        self, conn: AsyncConnection[Any], lanes: Mapping[int, str]
    ) -> dict[int, LaneHistory]:
        """The history of each lane (id → code), read in one statement for those whose copy is
        missing or older than the cache time."""
        now = self._monotonic()
        stale = [
            lane for lane in lanes if now - self._lanes.get(lane, (-1e18, None))[0] > self._ttl
        ]
        if stale:
            params = {
                "lane_ids": sorted(stale),
                "finished": sorted(FINISHED),
                "limit": forecast_q.HISTORY_LIMIT,
            }
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(forecast_q.LANE_HISTORY, params)
                found = lane_histories_from_rows(await cur.fetchall())
            self.history_reads += 1
            for lane in stale:
                self._lanes[lane] = (now, found.get(lane, LaneHistory(lanes[lane], ())))
        return {lane: self._lanes[lane][1] for lane in lanes}

    async def forecasts(
        self, conn: AsyncConnection[Any], held: Mapping[str, Any], now: datetime
    ) -> dict[int, tuple[ShipmentForecast, bool]]:
        """Each held shipment in transit: its forecast and whether an excursion is under way."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(forecast_q.IN_TRANSIT_HELD, dict(held))
            rows = await cur.fetchall()
        lanes = {int(r["lane_id"]): r["lane_code"] for r in rows if r["lane_id"] is not None}
        histories = await self.histories(conn, lanes)
        out: dict[int, tuple[ShipmentForecast, bool]] = {}
        for r in rows:
            try:
                state = in_transit_from_row(r)
                history = None if r["lane_id"] is None else histories[int(r["lane_id"])]
                f = forecast_shipment(state, history, now=now, trend_weight=self._trend_weight)
            except Exception as exc:
                # One shipment's odd data must not stop the fleet's forecasts.
                self._report(f"forecast of shipment {r['shipment_id']}", exc)
                continue
            out[int(r["shipment_id"])] = (f, state.excursion_open)
        return out

    async def state_rows(
        self,
        conn: AsyncConnection[Any],
        held: Mapping[str, Any],
        now: datetime,
        load_context: LoadContext,
    ) -> tuple[list[dict[str, Any]], dict[int, ShipmentContext]]:
        """The changed ``excursion_risk`` state rows of the held shipments, and the rules read
        for them (their context, for settling their alerts)."""
        found = await self.forecasts(conn, held, now)
        again = {
            int(r[0])  # shipment_id, the one column
            for r in await (await conn.execute(forecast_q.RISK_TO_JUDGE, dict(held))).fetchall()
        }
        ids = sorted(set(found) | again)
        ctx = await load_context(ids)
        stored = await load_states(conn, [(s, SHIPMENT_WIDE) for s in ids])
        rows: list[dict[str, Any]] = []
        for shipment_id in ids:
            old = stored.get((shipment_id, SHIPMENT_WIDE), {}).get(RULE_KEY)
            c = ctx.get(shipment_id)
            forecast, excursion_open = found.get(shipment_id, (None, False))
            try:
                new = risk_state(
                    forecast,
                    c.rules.risk if c is not None else None,
                    excursion_open=excursion_open,
                    now=now,
                    previous=old.state if old else None,
                    alerted_since=old.alerted_since if old else None,
                )
            except Exception as exc:
                self._report(f"excursion risk of shipment {shipment_id}", exc)
                continue
            if new is None:
                continue
            row = state_row(shipment_id, SHIPMENT_WIDE, new, c, "risk")
            if old is None or not same_state(old, row):
                rows.append(row)
        return rows, ctx

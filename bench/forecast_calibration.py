"""Is the forecast's chance of an excursion calibrated? Of the forecasts that said 30 %, did about
30 % of the shipments have one before arrival? (Issue 17.)

In memory, no database: the history scenario (``simulator/scenarios/history.toml``, with more
trips: ``--shipments``) is simulated with the simulator's thermal model and incidents
(:mod:`simulator.history`); each trip's excursions are found by the platform's own definition
(:func:`coldchain.thermal.excursions.detect_excursions`, the product's range, alarm delay and
the data-gap rule). Then, trip by trip in the order they left, forecasts are made at
``--points`` of the way (20 %, 40 %, 60 %, 80 % of the real transit) by
:func:`coldchain.forecast.model.forecast_shipment`, with as history the lane's trips that had
arrived by then, the latest position, the excursions so far and the trend
(:func:`coldchain.thermal.forecast.forecast_breach` over the last two hours, with the example
rules' margin: what the engine's "forecast" rule raises). Each forecast's outcome is whether an
excursion started after it and before arrival. Forecasts made during an excursion (certain) and
without enough history are left out and counted.

Printed: per bucket of predicted chance (0–10 %, …, 90–100 %) the number of forecasts, their mean
chance and the observed share with an excursion; the 30 % bucket again; the Brier score (mean
squared difference between chance and outcome; lower is better) and that of always saying the
overall rate, for each trend weight tried (``--weights``).

    .venv/bin/python bench/forecast_calibration.py [--shipments 600] [--seed 17]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coldchain.forecast.model import (
    MIN_HISTORY,
    InTransit,
    LaneHistory,
    PastShipment,
    forecast_shipment,
)
from coldchain.telemetry import Reading
from coldchain.thermal.excursions import TempLimits, detect_excursions
from coldchain.thermal.forecast import forecast_breach
from coldchain.thermal.series import Point
from simulator.history import arrivals, history_fleet, transit_readings
from simulator.scenario import load_scenario

#: As rules/example.toml's "forecast" rule: the trend is believed within this margin of a limit.
TREND_MARGIN_C = 2.0
TREND_LOOKBACK = timedelta(hours=2)
TREND_HORIZON = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Trip:
    reference: str
    lane: str
    started_at: datetime
    arrived_at: datetime
    readings: tuple[Reading, ...]
    excursions: tuple[tuple[datetime, datetime], ...]
    origin: tuple[float, float]
    destination: tuple[float, float]
    budget_s: float | None


@dataclass(frozen=True, slots=True)
class Case:
    """One forecast's inputs and its outcome (the trend fitted once, shared by every weight)."""

    state: InTransit
    history: LaneHistory
    now: datetime
    outcome: bool


def simulate(shipments: int, seed: int) -> tuple[list[Trip], TempLimits]:
    """The history's trips, each with its readings in transit and its excursions."""
    sc = load_scenario("history")
    sc = sc.model_copy(update={"fleet": sc.fleet.model_copy(update={"shipments": shipments})})
    fleet = history_fleet(sc, now=datetime.now(UTC), seed=seed)
    arrived = arrivals(fleet)
    product = fleet.products[0]
    limits = TempLimits(
        low_c=product.temp_min_c,
        high_c=product.temp_max_c,
        freeze_c=product.freeze_limit_c,
        alarm_delay=timedelta(seconds=product.alarm_delay_s),
        max_gap=timedelta(seconds=2 * fleet.interval_s),
    )
    by_device: dict[str, list[Reading]] = defaultdict(list)
    for r in transit_readings(fleet, arrived):
        by_device[r.device_id].append(r)
    trips = []
    for s in fleet.shipments:
        rs = tuple(sorted((r for d in s.device_ids for r in by_device[d]), key=lambda r: r.ts))
        end = arrived[s.reference]
        points = [Point(r.ts, r.temp_c) for r in rs if r.temp_c is not None]
        found = detect_excursions(points, limits, now=end) if points else []
        route = next(r for r in sc.routes if r.name == s.route)
        plan = fleet.plans[s.route]
        trips.append(
            Trip(
                reference=s.reference,
                lane=route.lane or s.route,
                started_at=s.planned_departure,
                arrived_at=end,
                readings=rs,
                excursions=tuple((e.start, e.end or e.last_out_ts) for e in found),
                origin=(plan.origin.lat, plan.origin.lon),
                destination=(plan.destination.lat, plan.destination.lon),
                budget_s=product.stability_budget_s,
            )
        )
    return trips, limits


def cases(trips: list[Trip], limits: TempLimits, points: list[float]) -> tuple[list[Case], int]:
    """Every forecast to make, with its outcome; and how many were left out."""
    out: list[Case] = []
    left_out = 0
    for trip in sorted(trips, key=lambda t: t.started_at):
        transit = trip.arrived_at - trip.started_at
        for share in points:
            now = trip.started_at + transit * share
            past = tuple(
                PastShipment(t.started_at, t.arrived_at, t.excursions)
                for t in trips
                if t.lane == trip.lane and t.arrived_at <= now
            )
            so_far = [(a, b) for a, b in trip.excursions if a <= now]
            seen = [r for r in trip.readings if r.ts <= now]
            open_now = any(b > now for _, b in so_far)
            if len(past) < MIN_HISTORY or open_now or not seen:
                left_out += 1
                continue
            last = seen[-1]
            trend = forecast_breach(
                [Point(r.ts, r.temp_c) for r in seen if r.temp_c is not None],
                limits,
                now=now,
                lookback=TREND_LOOKBACK,
                horizon=TREND_HORIZON,
            )
            breach_at = None
            if (
                trend is not None
                and trend.predicted_breach_at is not None
                and trend.limit_c is not None
                and last.temp_c is not None
                and abs(trend.limit_c - last.temp_c) <= TREND_MARGIN_C
            ):
                breach_at = trend.predicted_breach_at
            position = None if last.lat is None or last.lon is None else (last.lat, last.lon)
            state = InTransit(
                started_at=trip.started_at,
                position=position,
                origin=trip.origin,
                destination=trip.destination,
                had_excursion=bool(so_far),
                out_of_range_s=sum((min(b, now) - a).total_seconds() for a, b in so_far),
                budget_s=trip.budget_s,
                trend_breach_at=breach_at,
            )
            outcome = any(now < a < trip.arrived_at for a, _ in trip.excursions)
            out.append(Case(state, LaneHistory(trip.lane, past), now, outcome))
    return out, left_out


def calibration(cs: list[Case], weight: float) -> tuple[list[tuple[int, float, float]], float]:
    """Per bucket of tenths: (forecasts, mean chance, observed share); and the Brier score."""
    buckets: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    squares = 0.0
    for c in cs:
        f = forecast_shipment(c.state, c.history, now=c.now, trend_weight=weight)
        assert f.excursion_chance is not None
        p = f.excursion_chance
        buckets[min(9, int(p * 10))].append((p, c.outcome))
        squares += (p - c.outcome) ** 2
    rows = []
    for b in range(10):
        got = buckets.get(b, [])
        n = len(got)
        rows.append(
            (
                n,
                sum(p for p, _ in got) / n if n else float("nan"),
                sum(o for _, o in got) / n if n else float("nan"),
            )
        )
    return rows, squares / len(cs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shipments", type=int, default=600)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--points", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    args = parser.parse_args()
    t0 = time.perf_counter()
    trips, limits = simulate(args.shipments, args.seed)
    cs, left_out = cases(trips, limits, args.points)
    base = sum(c.outcome for c in cs) / len(cs)
    print(
        f"{len(trips)} simulated trips, {len(cs)} forecasts ({left_out} left out: during an "
        f"excursion or fewer than {MIN_HISTORY} past trips); overall excursion rate "
        f"{base:.3f}; trend predicts a breach in {sum(c.state.trend_breach_at is not None for c in cs)}"
    )
    baseline = sum((base - c.outcome) ** 2 for c in cs) / len(cs)
    for weight in args.weights:
        rows, brier = calibration(cs, weight)
        print(f"\ntrend weight {weight:g}: Brier {brier:.4f} (always {base:.3f}: {baseline:.4f})")
        print(f"{'chance':>10} {'forecasts':>10} {'predicted':>10} {'observed':>10}")
        for b, (n, mean, seen) in enumerate(rows):
            print(f"{b * 10:>4}–{b * 10 + 10:>3} % {n:>10} {mean:>10.3f} {seen:>10.3f}")
        n, mean, seen = rows[3]
        print(f"30 % bucket: {n} forecasts said {mean:.1%} on average; {seen:.1%} had one")
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

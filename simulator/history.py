"""Months of finished shipments from one scenario, for the lane history the forecast and the
Insight pages learn from (issue 17). Pure: the scenario, the seed and ``now`` decide it all.

A history scenario is an ordinary scenario (``simulator/scenarios/history.toml``) whose
departures spread over its ``duration_h`` (``fleet.departure_spread_min``), plus a ``[history]``
table saying how each route fares:

* ``incident_share`` of its trips meet an incident (a reefer failure, a tarmac delay…: the
  surroundings at ``incident_temp_c`` for a random ``incident_min`` span) at a uniformly random
  point of the planned trip. The thermal model (:mod:`simulator.physics`) then decides whether
  the product leaves its range, as it would on the road: a short incident in a slow box may not.
* Each trip's arrival differs from its plan by an exponentially distributed delay (mean
  ``delay_mean_h``, cut at :data:`MAX_DELAY_MEANS` times the mean) less half that mean: a plan
  keeps some slack, so about 40 % of a lane's trips arrive on time or early (by up to half the
  mean) and the rest late, and transit times vary as a lane's do.

:func:`history_fleet` builds the fleet; :func:`arrivals` says when each trip really arrived;
:func:`transit_readings` yields each logger's readings between its shipment's departure and
arrival (the readings before and after are a store's, not the lane's). Storing them is
:func:`services.history.backfill_history`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from coldchain.telemetry import Reading
from simulator.fleet import Fleet, build_fleet, from_ms, rng_for
from simulator.scenario import EventSpec, Scenario
from simulator.streams import generate_chunks

#: Random streams of the history (apart from the fleet's own).
_STREAM_INCIDENT = 901
_STREAM_DELAY = 902
#: A delay is at most this many times its route's mean (the exponential's tail, cut).
MAX_DELAY_MEANS = 4.0


def history_start(scenario: Scenario, now: datetime) -> datetime:
    """Where the history begins: ``duration_h`` before ``now``, on the minute."""
    return (now - timedelta(hours=scenario.duration_h)).replace(second=0, microsecond=0)


def history_fleet(scenario: Scenario, *, now: datetime, seed: int | None = None) -> Fleet:
    """The fleet of the history, its incidents drawn per route (module docstring)."""
    if scenario.history is None:
        raise ValueError(f"scenario {scenario.name!r} has no [history] table")
    seed = scenario.seed if seed is None else seed
    start = history_start(scenario, now)
    plain = build_fleet(scenario.model_copy(update={"events": []}), seed=seed, start=start)
    events = list(scenario.events)
    for s in plain.shipments:
        lane = scenario.history.lanes.get(s.route)
        if lane is None or lane.incident_share == 0:
            continue
        rng = rng_for(seed, _STREAM_INCIDENT, s.index)
        if rng.random() >= lane.incident_share:
            continue
        trip_min = (s.planned_arrival - s.planned_departure).total_seconds() / 60
        events.append(
            EventSpec(
                kind=lane.incident,
                shipments=[s.index + 1],
                at_min=float(rng.uniform(0.05, 0.9)) * trip_min,
                duration_min=float(rng.uniform(*lane.incident_min)),
                temp_c=lane.incident_temp_c,
            )
        )
    fleet = build_fleet(scenario.model_copy(update={"events": events}), seed=seed, start=start)
    # The fleet dates calibrations from its start (1–12 months on); a history's start is months
    # back, so those would be overdue today. The loggers were calibrated for the whole history:
    # the same offsets, counted from ``now``.
    devices = tuple(
        replace(d, calibration_due=now.date() + (d.calibration_due - start.date()))
        for d in fleet.devices
    )
    return replace(fleet, devices=devices)


def arrivals(fleet: Fleet) -> dict[str, datetime]:
    """When each shipment arrived: its planned arrival plus its route's random delay, less the
    plan's slack (half the mean delay: some trips arrive early)."""
    history = fleet.scenario.history
    out: dict[str, datetime] = {}
    for s in fleet.shipments:
        lane = history.lanes.get(s.route) if history is not None else None
        delay_h = 0.0
        if lane is not None and lane.delay_mean_h > 0:
            draw = float(rng_for(fleet.seed, _STREAM_DELAY, s.index).exponential(lane.delay_mean_h))
            # Capped, so that every trip of the history has arrived by its end.
            delay_h = min(draw, MAX_DELAY_MEANS * lane.delay_mean_h) - lane.delay_mean_h / 2
        out[s.reference] = (s.planned_arrival + timedelta(hours=delay_h)).replace(microsecond=0)
    return out


def transit_readings(fleet: Fleet, arrived: dict[str, datetime]) -> Iterator[Reading]:
    """Each logger's recorded readings from its shipment's departure to its arrival."""
    windows = np.array(
        [
            (
                int(fleet.shipments[d.shipment_index].planned_departure.timestamp() * 1000),
                int(arrived[fleet.shipments[d.shipment_index].reference].timestamp() * 1000),
            )
            for d in fleet.devices
        ],
        dtype=np.int64,
    ).reshape(-1, 2)
    ids = [d.device_id for d in fleet.devices]
    for chunk in generate_chunks(fleet):
        keep = chunk.recorded & (chunk.t_ms >= windows[:, :1]) & (chunk.t_ms < windows[:, 1:])
        for i, k in zip(*np.nonzero(keep), strict=True):
            yield Reading(
                ids[i],
                from_ms(int(chunk.t_ms[i, k])),
                round(float(chunk.temp_c[i, k]), 2),
                round(float(chunk.rh[i, k]), 1),
                round(float(chunk.lat[i, k]), 5),
                round(float(chunk.lon[i, k]), 5),
                round(float(chunk.battery[i, k]), 3),
            )

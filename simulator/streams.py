"""Every simulated logger's readings, a block of logging steps at a time (pure, deterministic).

:func:`generate_chunks` turns a :class:`~simulator.fleet.Fleet` into :class:`ReadingChunk` s,
vectorised with numpy over loggers and a block of steps, so memory stays bounded at any scale.
Each logger draws its noise from its own generator, one step at a time in a fixed order, so its
stream does not depend on the block size or on the other loggers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from simulator.fleet import (
    NEVER,
    STREAM_NOISE,
    BoolArray,
    Fleet,
    FloatArray,
    IntArray,
    rng_for,
    to_ms,
)
from simulator.physics import (
    PACKAGING,
    battery_level,
    coolant_step,
    diurnal_phase,
    lag_factor,
    with_noise,
)
from simulator.scenario import EXPOSURE_EVENTS

__all__ = ["BLOCK_READINGS", "ReadingChunk", "block_steps", "generate_chunks"]

#: Readings generated per block; fixed, because fault selection works per block and the bytes
#: must not depend on anything but the scenario, the seed and the start.
BLOCK_READINGS: Final = 20_000


@dataclass(frozen=True, slots=True)
class ReadingChunk:
    """A block of logging steps for every logger; arrays are (loggers, steps).

    ``t_ms`` is the true measurement time, ``temp_true_c`` the noise-free product temperature
    (ground truth), the other arrays what the logger reports. ``recorded`` is False where the
    logger had no power or was dead. Every later chunk's readings are at or after ``horizon_ms``.
    """

    k0: int
    t_ms: IntArray
    recorded: BoolArray
    temp_true_c: FloatArray
    temp_c: FloatArray
    rh: FloatArray
    lat: FloatArray
    lon: FloatArray
    battery: FloatArray
    horizon_ms: int


def block_steps(fleet: Fleet) -> int:
    """Logging steps per chunk: about :data:`BLOCK_READINGS` readings per chunk."""
    return max(1, min(fleet.n_steps, BLOCK_READINGS // max(1, len(fleet.devices))))


def generate_chunks(fleet: Fleet) -> Iterator[ReadingChunk]:
    """Every logger's readings, one block of steps at a time, in time order (pure)."""
    return _StreamState(fleet).chunks()


class _StreamState:
    """Per-logger arrays and the state carried from one block to the next."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        sc = fleet.scenario
        devs = fleet.devices
        ships = fleet.shipments
        n = len(devs)
        self.n = n
        self.ship = np.array([d.shipment_index for d in devs], dtype=np.int64)
        self.phase = np.array([d.phase_ms for d in devs], dtype=np.int64)
        self.depart = np.array(
            [to_ms(ships[d.shipment_index].planned_departure) for d in devs], dtype=np.int64
        )
        route_names = [s.route for s in ships]
        self.route_rows = {
            name: np.flatnonzero(np.array([route_names[d.shipment_index] == name for d in devs]))
            for name in dict.fromkeys(route_names)
        }
        self.route_dur_s = np.array(
            [fleet.plans[route_names[d.shipment_index]].duration_s for d in devs]
        )
        self.route_profile = {r.name: fleet.profiles[r.ambient or sc.ambient] for r in sc.routes}
        pack = [PACKAGING[ships[d.shipment_index].packaging] for d in devs]
        self.active = np.array([p.active for p in pack], dtype=bool)
        self.setpoint = np.array([ships[d.shipment_index].setpoint_c for d in devs])
        self.factor = np.asarray(
            lag_factor(
                float(fleet.interval_s), np.array([ships[d.shipment_index].tau_s for d in devs])
            )
        )
        self.coolant = np.array([ships[d.shipment_index].coolant_kh for d in devs])
        self.passive_any = bool((~self.active).any())
        self.battery0 = np.array([d.initial_battery for d in devs])
        self.death = np.array(
            [NEVER if d.dies_at_ms is None else d.dies_at_ms for d in devs], dtype=np.int64
        )
        self.rngs = [rng_for(fleet.seed, STREAM_NOISE, d.index) for d in devs]
        per = sc.fleet.loggers_per_shipment
        exposure = [e for e in fleet.events if e.kind in EXPOSURE_EVENTS]
        self.exposure = exposure
        self.exp_start = np.array([e.start_ms for e in exposure], dtype=np.int64)
        self.exp_end = np.array([e.end_ms or NEVER for e in exposure], dtype=np.int64)
        self.per = per
        power = [e for e in fleet.events if e.kind == "power_loss"]
        self.power = power
        self.pow_start = np.array([e.start_ms for e in power], dtype=np.int64)
        self.pow_end = np.array([e.end_ms or NEVER for e in power], dtype=np.int64)
        # State carried across blocks
        self.temp = self.setpoint.copy()
        self.rh: FloatArray | None = None
        self.capacity = self.coolant.copy()

    def chunks(self) -> Iterator[ReadingChunk]:
        f = self.fleet
        m = block_steps(f)
        for k0 in range(0, f.n_steps, m):
            yield self._chunk(k0, min(f.n_steps, k0 + m))

    def _chunk(self, k0: int, k1: int) -> ReadingChunk:
        f = self.fleet
        ph = f.scenario.physics
        interval_ms = f.interval_s * 1000
        steps = np.arange(k0, k1, dtype=np.int64)
        t = f.start_ms + self.phase[:, None] + steps[None, :] * interval_ms
        elapsed_s = (t - self.depart[:, None]) / 1000.0

        lat = np.empty(t.shape)
        lon = np.empty(t.shape)
        amb = np.empty(t.shape)
        amb_rh = np.empty(t.shape)
        for name, rows in self.route_rows.items():
            lat[rows], lon[rows] = f.plans[name].position_at(elapsed_s[rows])
            amb[rows], amb_rh[rows] = self.route_profile[name].at(elapsed_s[rows])
        cycle = diurnal_phase(t / 1000.0, lon)
        amb += ph.day_night_amplitude_c * cycle
        amb_rh = np.clip(amb_rh - ph.day_night_rh_pct * cycle, 0.0, 100.0)

        in_transit = (elapsed_s >= 0) & (elapsed_s < self.route_dur_s[:, None])
        exposed = in_transit & ~self.active[:, None]
        sur = np.where(exposed, amb, self.setpoint[:, None])
        sur_rh = np.where(exposed, amb_rh, ph.reefer_rh_pct)
        t_lo, t_hi = int(t.min()), int(t.max())
        if self.exposure:
            for i in np.flatnonzero((self.exp_start <= t_hi) & (self.exp_end > t_lo)):
                ev = self.exposure[i]
                rs = slice(ev.shipment_index * self.per, (ev.shipment_index + 1) * self.per)
                hit = (t[rs] >= ev.start_ms) & (t[rs] < (ev.end_ms or NEVER))
                value = (
                    amb[rs] + ev.offset_c if ev.temp_c is None else np.full(hit.shape, ev.temp_c)
                )
                sur[rs] = np.where(hit, value, sur[rs])
                sur_rh[rs] = np.where(hit, amb_rh[rs], sur_rh[rs])

        m = k1 - k0
        temp_true = np.empty(t.shape)
        rh_true = np.empty(t.shape)
        if self.rh is None:
            self.rh = sur_rh[:, 0].copy()
        dt = float(f.interval_s)
        for j in range(m):
            target = sur[:, j]
            if self.passive_any:
                held, left = coolant_step(self.capacity, self.setpoint, target, dt)
                target = np.where(self.active, target, held)
                self.capacity = np.where(self.active, self.capacity, left)
            temp_true[:, j] = self.temp
            rh_true[:, j] = self.rh
            self.temp = target + (self.temp - target) * self.factor
            self.rh = sur_rh[:, j] + (self.rh - sur_rh[:, j]) * self.factor

        noise = np.empty((self.n, m, 2))
        for d, g in enumerate(self.rngs):
            noise[d] = g.standard_normal((m, 2))
        temp = with_noise(temp_true, noise[:, :, 0], ph.sensor_noise_c, 2)
        rh = np.clip(with_noise(rh_true, noise[:, :, 1], ph.rh_noise_pct, 1), 0.0, 100.0)
        battery = np.round(
            battery_level(
                self.battery0[:, None], (t - f.start_ms) / 1000.0, ph.battery_drain_per_day
            ),
            3,
        )

        recorded = t < self.death[:, None]
        if self.power:
            for i in np.flatnonzero((self.pow_start <= t_hi) & (self.pow_end > t_lo)):
                ev = self.power[i]
                d = int(ev.device_index or 0)  # logger events always name their logger
                recorded[d] &= ~((t[d] >= ev.start_ms) & (t[d] < (ev.end_ms or NEVER)))
        horizon = f.start_ms + k1 * interval_ms + int(self.phase.min())
        return ReadingChunk(
            k0=k0,
            t_ms=t,
            recorded=recorded,
            temp_true_c=temp_true,
            temp_c=temp,
            rh=rh,
            lat=np.round(lat, 5),
            lon=np.round(lon, 5),
            battery=battery,
            horizon_ms=horizon,
        )

"""The thermal model of a simulated shipment (pure: numbers in, numbers out, no clock).

The logger sits with the product. What surrounds the load ("surroundings") is:

* in a running reefer, the reefer's setpoint; in passive packaging, the ambient air;
* before departure and after arrival, a conditioned store at the setpoint;
* during an event (door opening, reefer failure, tarmac delay, cold exposure), the event's
  temperature: the load has lost its controlled environment for that time.

Passive packaging carries a coolant (gel packs, phase-change material) conditioned at the setpoint.
While it has capacity left it holds the inside at its own temperature, and it is used up in
proportion to how far the surroundings are from it (kelvin-hours); then the inside follows the
surroundings. This is what lets a qualified passive box hold for a day or more, which a bare lag
cannot do.

The product (and logger) temperature follows the resulting target as a first-order lag with a
time constant per packaging, discretised exactly for a target held constant over each logging
interval: ``T[k+1] = target[k] + (T[k] - target[k]) * exp(-dt/tau)``. After one time constant the
remaining gap to a step is ``e^-1`` of the initial gap. Humidity follows the same lag.

Ambient is a profile of (duration, °C, %RH) segments over the journey plus a day/night cycle from
the local solar time at the shipment's position. The built-in profiles and packaging constants are
illustrative assumptions for a simulator, not qualification data, and not ISTA 7D/7E (whose
profiles are not public); load your own tables with :func:`load_profile_csv`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Packaging = Literal["reefer_container", "insulated_pallet_shipper", "passive_box"]


@dataclass(frozen=True, slots=True)
class PackagingModel:
    """Thermal behaviour of one packaging type."""

    tau_s: float  # product/logger time constant against the target
    active: bool  # a reefer controls its air to the setpoint
    coolant_kh: float  # passive coolant capacity in kelvin-hours (0 for active packaging)


#: Illustrative constants. The reefer's logger hangs in the air stream next to the load, so it
#: follows the air within minutes; passive shippers are slower and carry coolant.
PACKAGING: Final[Mapping[str, PackagingModel]] = {
    "reefer_container": PackagingModel(tau_s=10 * 60.0, active=True, coolant_kh=0.0),
    # ~100 h against a 20 K difference before the coolant is spent
    "insulated_pallet_shipper": PackagingModel(tau_s=4 * 3600.0, active=False, coolant_kh=2000.0),
    # ~36 h against a 20 K difference
    "passive_box": PackagingModel(tau_s=1.5 * 3600.0, active=False, coolant_kh=720.0),
}


def lag_factor(dt_s: float, tau_s: float | FloatArray) -> float | FloatArray:
    """Share of the gap to the target that remains after ``dt_s``: ``exp(-dt/tau)`` (0 if tau is 0)."""
    tau = np.asarray(tau_s, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(tau > 0, np.exp(-dt_s / np.where(tau > 0, tau, 1.0)), 0.0)
    return float(out) if out.ndim == 0 else out


def lag_step(
    temp: float | FloatArray, target: float | FloatArray, dt_s: float, tau_s: float | FloatArray
) -> FloatArray:
    """One exact step of the first-order lag, target held constant over ``dt_s``."""
    t = np.asarray(temp, dtype=np.float64)
    g = np.asarray(target, dtype=np.float64)
    return g + (t - g) * lag_factor(dt_s, tau_s)


def lag_response(
    targets: Sequence[float] | FloatArray, initial: float, dt_s: float, tau_s: float
) -> FloatArray:
    """The lagged temperature at each sample for a target series (sample k sees targets < k)."""
    g = np.asarray(targets, dtype=np.float64)
    out = np.empty_like(g)
    a = lag_factor(dt_s, tau_s)
    temp = float(initial)
    for k, target in enumerate(g):
        out[k] = temp
        temp = float(target + (temp - target) * a)
    return out


def coolant_step(
    capacity_kh: FloatArray, coolant_c: FloatArray, surroundings_c: FloatArray, dt_s: float
) -> tuple[FloatArray, FloatArray]:
    """One step of passive coolant: returns (target temperature, capacity left).

    While capacity is left the inside is held at the coolant's temperature; the capacity drains by
    ``|surroundings - coolant| * dt`` in kelvin-hours.
    """
    holding = capacity_kh > 0
    target = np.where(holding, coolant_c, surroundings_c)
    left = np.maximum(capacity_kh - np.abs(surroundings_c - coolant_c) * (dt_s / 3600.0), 0.0)
    return target, np.where(holding, left, capacity_kh)


def diurnal_phase(epoch_s: FloatArray, lon_deg: FloatArray) -> FloatArray:
    """cos of the local solar time's angle from 15:00, the usual daily maximum: +1 at 15:00."""
    solar_h = np.mod(np.asarray(epoch_s) / 3600.0 + np.asarray(lon_deg) / 15.0, 24.0)
    return np.cos(2.0 * math.pi * (solar_h - 15.0) / 24.0)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of constant ambient conditions."""

    duration_s: float
    temp_c: float
    rh: float = 60.0


@dataclass(frozen=True, slots=True)
class AmbientProfile:
    """Ambient conditions over the journey, repeated when the journey outlasts the profile."""

    name: str
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.segments or any(s.duration_s <= 0 for s in self.segments):
            raise ValueError(f"ambient profile {self.name!r} needs segments of positive duration")

    @property
    def period_s(self) -> float:
        """Length of one pass through the segments."""
        return float(sum(s.duration_s for s in self.segments))

    def at(self, elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(°C, %RH) at each elapsed time since departure (before departure: the last segment)."""
        ends = np.cumsum([s.duration_s for s in self.segments])
        temps = np.array([s.temp_c for s in self.segments])
        rhs = np.array([s.rh for s in self.segments])
        idx = np.searchsorted(
            ends, np.mod(np.asarray(elapsed_s, dtype=np.float64), ends[-1]), "right"
        )
        idx = np.minimum(idx, len(ends) - 1)
        return temps[idx], rhs[idx]


def _profile(name: str, rows: Sequence[tuple[float, float, float]]) -> AmbientProfile:
    return AmbientProfile(name, tuple(Segment(h * 3600.0, t, rh) for h, t, rh in rows))


#: Built-in ambient sets: (hours, °C, %RH) per stretch of a day-long journey. Illustrative
#: numbers for exercising the platform, not measured lane data and not a standard.
BUILTIN_PROFILES: Final[Mapping[str, AmbientProfile]] = {
    "summer": _profile(
        "summer",
        [(3, 24.0, 55.0), (8, 29.0, 45.0), (2, 34.0, 35.0), (5, 27.0, 50.0), (6, 21.0, 65.0)],
    ),
    "winter": _profile(
        "winter",
        [(3, 3.0, 80.0), (8, -4.0, 75.0), (2, -11.0, 70.0), (5, -2.0, 80.0), (6, -6.0, 85.0)],
    ),
    "mild": _profile("mild", [(24, 15.0, 65.0)]),
}


def load_profile_csv(name: str, text: str) -> AmbientProfile:
    """Parse a profile table: ``duration_min,temp_c[,rh]`` rows; ``#`` lines are comments."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    segments: list[Segment] = []
    for lineno, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if lineno == 1 and cells and not _is_number(cells[0]):
            continue  # header
        if len(cells) not in (2, 3):
            raise ValueError(f"row {lineno}: expected duration_min,temp_c[,rh], got {row!r}")
        try:
            values = [float(c) for c in cells]
        except ValueError:
            raise ValueError(f"row {lineno}: not a number in {row!r}") from None
        duration_min, temp_c = values[0], values[1]
        rh = values[2] if len(values) == 3 else 60.0
        if duration_min <= 0 or not -80.0 <= temp_c <= 80.0 or not 0.0 <= rh <= 100.0:
            raise ValueError(f"row {lineno}: duration must be > 0, °C in -80..80, %RH in 0..100")
        segments.append(Segment(duration_min * 60.0, temp_c, rh))
    if not segments:
        raise ValueError("the table has no rows")
    return AmbientProfile(name, tuple(segments))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def with_noise(
    true_value: FloatArray, standard_normal: FloatArray, sd: float, decimals: int
) -> FloatArray:
    """A sensor's reading: the true value plus Gaussian noise, rounded to the sensor's resolution."""
    return np.round(np.asarray(true_value) + sd * np.asarray(standard_normal), decimals)


def battery_level(initial: FloatArray, elapsed_s: FloatArray, drain_per_day: float) -> FloatArray:
    """Battery ratio after ``elapsed_s`` of linear drain, never below 0."""
    return np.clip(np.asarray(initial) - drain_per_day * np.asarray(elapsed_s) / 86400.0, 0.0, 1.0)


def battery_empty_after_s(initial: FloatArray, drain_per_day: float) -> FloatArray:
    """Seconds until the battery is empty (infinite without drain)."""
    if drain_per_day <= 0:
        return np.full(np.shape(initial), np.inf)
    return np.asarray(initial, dtype=np.float64) / drain_per_day * 86400.0

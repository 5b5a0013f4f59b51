"""A product's stability profile: its storage range and the allowances it may spend outside it.

An :class:`Allowance` is a temperature band ``[low_c, high_c)`` (either end open) with its own
cumulative budget; a :class:`StabilityProfile` holds the storage range, the allowances (they may
touch but not overlap), the maximum number of freeze–thaw cycles and the MKT limit. Both refuse
a bad value at construction, naming the field. :mod:`coldchain.thermal.stability` judges a
shipment's readings against a profile; docs/STABILITY.md has the definitions.
"""

import itertools
import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from coldchain.thermal.mkt import DEFAULT_DELTA_H_J_MOL, Weighting

DEFAULT_FREEZE_C = 0.0
DEFAULT_THAW_HYSTERESIS_C = 0.5
#: The MKT of a verdict is step-weighted, as the passport's and the budget's time.
MKT_WEIGHTING = Weighting.STEP


def _require_finite(value: float | None, name: str) -> None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number of °C or None, got {value!r}")


def format_c(value: float) -> str:
    """A temperature for a sentence: 8 °C, 2.5 °C, -0.5 °C."""
    return f"{value:g} °C"


def format_duration(value: timedelta) -> str:
    """A duration for a sentence: 80 h, 12 h 30 min, 45 min, 30 s."""
    seconds = round(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    if minutes or not secs:
        return f"{minutes} min"
    return f"{secs} s"


@dataclass(frozen=True, slots=True)
class Allowance:
    """A band ``[low_c, high_c)`` (None: open end) the product may spend ``budget`` in, in total."""

    low_c: float | None
    high_c: float | None
    budget: timedelta

    def __post_init__(self) -> None:
        _require_finite(self.low_c, "Allowance.low_c")
        _require_finite(self.high_c, "Allowance.high_c")
        for name in ("low_c", "high_c"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise ValueError(
                f"Allowance.low_c ({self.low_c}) must be below high_c ({self.high_c}): "
                "a band is [low_c, high_c)"
            )
        if self.budget < timedelta(0):
            raise ValueError(f"Allowance.budget must not be negative, got {self.budget}")

    @property
    def key(self) -> str:
        """A stable machine key: ``"8..25"``, ``"..0"`` (below 0), ``"25.."`` (25 and above)."""
        low = "" if self.low_c is None else f"{self.low_c:g}"
        high = "" if self.high_c is None else f"{self.high_c:g}"
        return f"{low}..{high}"

    @property
    def label(self) -> str:
        """The band for people: "8–25 °C", "below 0 °C", "25 °C and above"."""
        if self.low_c is not None and self.high_c is not None:
            return f"{self.low_c:g}–{self.high_c:g} °C"
        if self.high_c is not None:
            return f"below {format_c(self.high_c)}"
        if self.low_c is not None:
            return f"{format_c(self.low_c)} and above"
        return "any temperature"

    def contains(self, temp_c: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Per temperature: inside ``[low_c, high_c)``."""
        inside = np.ones(len(temp_c), dtype=bool)
        if self.low_c is not None:
            inside &= temp_c >= self.low_c
        if self.high_c is not None:
            inside &= temp_c < self.high_c
        return inside


def _lower(allowance: Allowance) -> float:
    return -math.inf if allowance.low_c is None else allowance.low_c


def _upper(allowance: Allowance) -> float:
    return math.inf if allowance.high_c is None else allowance.high_c


@dataclass(frozen=True, slots=True)
class StabilityProfile:
    """What a product tolerates: storage range, allowances, freeze–thaw cycles, MKT limit."""

    storage_low_c: float | None
    storage_high_c: float | None
    allowances: tuple[Allowance, ...] = ()
    max_freeze_thaw_cycles: int | None = None
    freeze_c: float = DEFAULT_FREEZE_C
    thaw_hysteresis_c: float = DEFAULT_THAW_HYSTERESIS_C
    mkt_limit_c: float | None = None
    delta_h_j_mol: float = DEFAULT_DELTA_H_J_MOL

    def __post_init__(self) -> None:
        for name in ("storage_low_c", "storage_high_c", "freeze_c", "mkt_limit_c"):
            value = getattr(self, name)
            _require_finite(value, f"StabilityProfile.{name}")
            if value is not None:
                object.__setattr__(self, name, float(value))  # plain floats in every figure
        if self.freeze_c is None:
            raise ValueError("StabilityProfile.freeze_c must be a temperature (0 °C by default)")
        low, high = self.storage_low_c, self.storage_high_c
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"StabilityProfile.storage_low_c ({low}) must be below storage_high_c ({high})"
            )
        object.__setattr__(self, "allowances", tuple(self.allowances))
        for i, allowance in enumerate(self.allowances):
            if not isinstance(allowance, Allowance):
                raise ValueError(
                    f"StabilityProfile.allowances[{i}] must be an Allowance, got {allowance!r}"
                )
        ordered = sorted(enumerate(self.allowances), key=lambda item: _lower(item[1]))
        for (i, before), (j, after) in itertools.pairwise(ordered):
            if _upper(before) > _lower(after):
                raise ValueError(
                    f"StabilityProfile.allowances[{j}] ({after.label}) overlaps "
                    f"allowances[{i}] ({before.label}): bands must not overlap, so that each "
                    "reading counts against one budget at most"
                )
        cycles = self.max_freeze_thaw_cycles
        if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int)):
            raise ValueError(
                f"StabilityProfile.max_freeze_thaw_cycles must be a whole number or None, "
                f"got {cycles!r}"
            )
        if cycles is not None and cycles < 0:
            raise ValueError(
                f"StabilityProfile.max_freeze_thaw_cycles must not be negative, got {cycles}"
            )
        hysteresis = self.thaw_hysteresis_c
        if not (isinstance(hysteresis, int | float) and math.isfinite(hysteresis)) or (
            hysteresis < 0
        ):
            raise ValueError(
                f"StabilityProfile.thaw_hysteresis_c must be a finite number >= 0, "
                f"got {hysteresis!r}"
            )
        delta_h = self.delta_h_j_mol
        if not (isinstance(delta_h, int | float) and math.isfinite(delta_h) and delta_h > 0):
            raise ValueError(
                f"StabilityProfile.delta_h_j_mol must be a positive activation energy, "
                f"got {delta_h!r}"
            )

    def allowance(self, key: str) -> Allowance:
        """The allowance with this :attr:`Allowance.key`; ``KeyError`` naming it otherwise."""
        for allowance in self.allowances:
            if allowance.key == key:
                return allowance
        known = ", ".join(a.key for a in self.allowances) or "none"
        raise KeyError(f"no allowance {key!r} in this profile (its allowances: {known})")

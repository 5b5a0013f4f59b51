"""A product's stability profile, and the verdict it gives a shipment's readings at arrival.

Pure: plain values in, a :class:`Verdict` out; no I/O and no clock (``now`` is an argument). The
definitions, which docs/STABILITY.md repeats for people, are these.

The profile
-----------
* **Storage range** ``[storage_low_c, storage_high_c]``, inclusive at both ends as in
  :class:`alerts.excursions.TempLimits` (a reading above ``high`` or below ``low`` is *outside*);
  either end may be None (not checked).
* **Allowances**: temperature bands, each half-open ``[low_c, high_c)`` (either end may be None:
  open), with a cumulative **budget** (``>= 0``; 0 means "never"). Bands must **not overlap**; their
  order is free and is kept in the figures (the product's own order). A reading inside the storage
  range is *in range* and never counts against a band, even one whose band reaches into the range
  (so 8.0 °C with a range of 2–8 °C and an 8–25 °C band is in range, as it is for the excursions).
* **Freeze–thaw**: ``max_freeze_thaw_cycles`` (None: not judged), the freeze limit ``freeze_c``
  (0 °C by default) and a hysteresis ``thaw_hysteresis_c`` (0.5 °C by default).
* **MKT**: an optional limit ``mkt_limit_c`` and the product's ΔH.

Time (the same rules as the stability budget, by the same functions)
--------------------------------------------------------------------
Time is attributed by the step rule and gap rule of :mod:`alerts.series`, through
:func:`alerts.budget.budget_from_arrays` (in range / outside / gap, trailing gap up to ``now``
included) and :func:`alerts.series.hold_us` (which reading holds which interval). Readings after
``now`` are ignored. Each interval between two readings is exactly one of:

* **in range** (its reading is inside the storage range),
* **in a band** (its reading is outside the range and inside that allowance's band),
* **uncovered** (outside the range and in no band): always an exception,
* **gap** (longer than ``max_gap``, or the trailing silence up to ``now``): unknown time.

so ``in range + Σ bands + uncovered + gap`` is the span from the first reading to the last one (or
to ``now`` when a trailing gap is counted). A band's **used** time is what was ``carried_over``
from earlier legs + its time here + the gap time when ``count_gaps_as_out`` (the default, as for
the budget: unknown time is the worst case, and it could have been spent in any band). A band is
**exceeded** when used > budget (72 h used of 72 h is within the allowance). ``share`` is used /
budget, None for a zero budget.

Freeze–thaw cycles
------------------
Each reading is *frozen* or *thawed*, with hysteresis so that noise around the freeze limit does
not count dozens of cycles: a reading at or below ``freeze_c`` is frozen; one above
``freeze_c + thaw_hysteresis_c`` is thawed; one in between keeps the state of the reading before
it. The first reading sets the initial state (frozen if at or below ``freeze_c``, else thawed),
which is not a transition. Every change of state after that is a **transition**, and the cycles
are ``carried_cycles + ceil(transitions / 2)``: a freeze followed by a thaw is one cycle, and an
unfinished one (frozen on arrival, or a frozen product that thawed) counts as a whole cycle,
conservatively. States are read from the readings only, so a data gap may hide cycles (the gap is
judged by itself, above). The limit is exceeded when cycles > ``max_freeze_thaw_cycles``.

The verdict
-----------
*conforming* when there is no reason, else *exception* with every reason, each a machine code
(:data:`ReasonCode`) and a sentence with the figures:

* ``no_readings``: no reading at or before ``now`` (nothing shows conformity);
* ``band_budget_exceeded``: one per exceeded band ("8–25 °C band: 80 h used of 72 h");
* ``outside_allowances``: uncovered time outside the storage range;
* ``data_gap``: gap time, when ``count_gaps_as_out`` (a verdict does not release unknown time);
* ``freeze_thaw_cycles``: more cycles than allowed;
* ``mkt_above_limit``: the MKT (step weighting, over the whole series, the product's ΔH) is above
  ``mkt_limit_c``; ``mkt_unknown`` when a limit is set but no time is covered to compute it;
* ``open_excursion``: one per excursion still open, given by its key ``(direction, start)``
  (:attr:`alerts.excursions.Excursion.key`) as the caller's stored state knows them.

:meth:`Verdict.to_dict` gives plain JSON values (durations in seconds, times in ISO 8601) for an
API response and a stored record.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from alerts.budget import budget_from_arrays
from alerts.excursions import Direction, TempLimits
from alerts.mkt import DEFAULT_DELTA_H_J_MOL, MKTResult, Weighting, mkt
from alerts.series import (
    Point,
    datetime_from_us,
    hold_us,
    require_aware,
    require_positive,
    to_sorted_arrays,
)

__all__ = [
    "DEFAULT_THAW_HYSTERESIS_C",
    "MKT_WEIGHTING",
    "Allowance",
    "BandUsage",
    "Outcome",
    "Reason",
    "ReasonCode",
    "StabilityProfile",
    "Verdict",
    "evaluate",
    "freeze_thaw_transitions",
]

Outcome = Literal["conforming", "exception"]
ReasonCode = Literal[
    "no_readings",
    "band_budget_exceeded",
    "outside_allowances",
    "data_gap",
    "freeze_thaw_cycles",
    "mkt_above_limit",
    "mkt_unknown",
    "open_excursion",
]

DEFAULT_FREEZE_C = 0.0
DEFAULT_THAW_HYSTERESIS_C = 0.5
#: The MKT of a verdict is step-weighted, as the passport's and the budget's time.
MKT_WEIGHTING = Weighting.STEP


def _require_finite(value: float | None, name: str) -> None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number of °C or None, got {value!r}")


def _c(value: float) -> str:
    """A temperature for a sentence: 8 °C, 2.5 °C, -0.5 °C."""
    return f"{value:g} °C"


def _duration(value: timedelta) -> str:
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
            return f"below {_c(self.high_c)}"
        if self.low_c is not None:
            return f"{_c(self.low_c)} and above"
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


@dataclass(frozen=True, slots=True)
class BandUsage:
    """One allowance's figures in a verdict."""

    allowance: Allowance
    carried_over: timedelta
    time_in_band: timedelta
    used: timedelta
    share: float | None
    exceeded: bool

    @property
    def remaining(self) -> timedelta:
        """What is left of the budget (zero once used up)."""
        return max(self.allowance.budget - self.used, timedelta(0))


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a verdict is an exception: a machine code, and a sentence with the figures."""

    code: ReasonCode
    message: str
    band: str | None = None  # the Allowance.key of a band reason


@dataclass(frozen=True, slots=True)
class Verdict:
    """A product's verdict against its profile, with every figure a report or an API shows."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    bands: tuple[BandUsage, ...]
    now: datetime
    first_reading: datetime | None
    span_end: datetime | None
    n_readings: int
    time_in_range: timedelta
    time_outside: timedelta
    time_uncovered: timedelta
    time_gap: timedelta
    count_gaps_as_out: bool
    freeze_thaw_transitions: int
    freeze_thaw_cycles: int
    max_freeze_thaw_cycles: int | None
    mkt: MKTResult | None
    mkt_limit_c: float | None
    open_excursions: tuple[tuple[Direction, datetime], ...] = field(default=())

    @property
    def conforming(self) -> bool:
        """No reason to hold the product."""
        return self.outcome == "conforming"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: durations in seconds, times in ISO 8601, bands in profile order."""

        def iso(ts: datetime | None) -> str | None:
            return None if ts is None else ts.isoformat()

        return {
            "outcome": self.outcome,
            "reasons": [
                {"code": r.code, "message": r.message, "band": r.band} for r in self.reasons
            ],
            "bands": [
                {
                    "key": b.allowance.key,
                    "label": b.allowance.label,
                    "low_c": b.allowance.low_c,
                    "high_c": b.allowance.high_c,
                    "budget_s": b.allowance.budget.total_seconds(),
                    "carried_over_s": b.carried_over.total_seconds(),
                    "time_in_band_s": b.time_in_band.total_seconds(),
                    "used_s": b.used.total_seconds(),
                    "remaining_s": b.remaining.total_seconds(),
                    "share": b.share,
                    "exceeded": b.exceeded,
                }
                for b in self.bands
            ],
            "now": iso(self.now),
            "first_reading": iso(self.first_reading),
            "span_end": iso(self.span_end),
            "n_readings": self.n_readings,
            "time_in_range_s": self.time_in_range.total_seconds(),
            "time_outside_s": self.time_outside.total_seconds(),
            "time_uncovered_s": self.time_uncovered.total_seconds(),
            "time_gap_s": self.time_gap.total_seconds(),
            "count_gaps_as_out": self.count_gaps_as_out,
            "freeze_thaw": {
                "transitions": self.freeze_thaw_transitions,
                "cycles": self.freeze_thaw_cycles,
                "max_cycles": self.max_freeze_thaw_cycles,
            },
            "mkt": None
            if self.mkt is None
            else {
                "mkt_c": self.mkt.mkt_c,
                "delta_h_j_mol": self.mkt.delta_h_j_mol,
                "weighting": str(self.mkt.weighting),
                "duration_covered_s": self.mkt.duration_covered.total_seconds(),
            },
            "mkt_limit_c": self.mkt_limit_c,
            "open_excursions": [
                {"direction": direction, "start": start.isoformat()}
                for direction, start in self.open_excursions
            ],
        }


def freeze_thaw_transitions(
    temp_c: Sequence[float] | NDArray[np.float64],
    *,
    freeze_c: float = DEFAULT_FREEZE_C,
    thaw_hysteresis_c: float = DEFAULT_THAW_HYSTERESIS_C,
) -> int:
    """Changes of state frozen↔thawed along time-ordered temperatures (see the module docstring)."""
    transitions = 0
    frozen: bool | None = None
    for value in temp_c:
        if value <= freeze_c:
            now_frozen = True
        elif value > freeze_c + thaw_hysteresis_c:
            now_frozen = False
        else:  # in the hysteresis band: keeps the state; the first reading here starts thawed
            now_frozen = False if frozen is None else frozen
        if frozen is not None and now_frozen != frozen:
            transitions += 1
        frozen = now_frozen
    return transitions


def _check_open_excursions(
    open_excursions: Iterable[tuple[Direction, datetime]],
) -> tuple[tuple[Direction, datetime], ...]:
    checked: list[tuple[Direction, datetime]] = []
    for i, item in enumerate(open_excursions):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], datetime)):
            raise ValueError(
                f"open_excursions[{i}] must be an excursion key (direction, start), got {item!r}"
            )
        direction, start = item
        if direction not in ("high", "low"):
            raise ValueError(
                f"open_excursions[{i}]: direction must be 'high' or 'low', got {direction!r}"
            )
        require_aware(start, f"open_excursions[{i}].start")
        checked.append((direction, start))
    return tuple(sorted(checked, key=lambda key: key[1]))


def _check_carried_over(
    profile: StabilityProfile, carried_over: Mapping[str, timedelta]
) -> dict[str, timedelta]:
    for key, value in carried_over.items():
        try:
            profile.allowance(key)
        except KeyError as error:
            raise ValueError(f"carried_over[{key!r}]: {error.args[0]}") from None
        if value < timedelta(0):
            raise ValueError(f"carried_over[{key!r}] must not be negative, got {value}")
    return dict(carried_over)


def evaluate(
    profile: StabilityProfile,
    points: Iterable[Point],
    *,
    now: datetime,
    max_gap: timedelta,
    carried_over: Mapping[str, timedelta] | None = None,
    carried_cycles: int = 0,
    open_excursions: Iterable[tuple[Direction, datetime]] = (),
    count_gaps_as_out: bool = True,
) -> Verdict:
    """The verdict of a shipment's readings (any order) against ``profile``, as of ``now``.

    ``max_gap`` is the data-gap threshold (the budget's); ``carried_over`` maps an
    :attr:`Allowance.key` to the time already used in that band on earlier legs; ``carried_cycles``
    the freeze–thaw cycles already counted; ``open_excursions`` the keys ``(direction, start)`` of
    the excursions still open. See the module docstring for every definition.
    """
    require_aware(now, "now")
    require_positive(max_gap, "max_gap")
    if (
        isinstance(carried_cycles, bool)
        or not isinstance(carried_cycles, int)
        or carried_cycles < 0
    ):
        raise ValueError(f"carried_cycles must be a whole number >= 0, got {carried_cycles!r}")
    carried = _check_carried_over(profile, carried_over or {})
    still_open = _check_open_excursions(open_excursions)

    known = [p for p in points if p.ts <= now]  # what was knowable at now
    t_us, temp_c = to_sorted_arrays(known)

    # In range / outside / gap exactly as the stability budget attributes them (the budget given
    # is a formality: only the three times are read here, against the bands' own budgets below).
    storage = TempLimits(
        low_c=profile.storage_low_c,
        high_c=profile.storage_high_c,
        freeze_c=None,
        alarm_delay=timedelta(0),
        max_gap=max_gap,
    )
    times = budget_from_arrays(t_us, temp_c, storage, max_gap, max_gap=max_gap, now=now)
    held = hold_us(t_us, max_gap)
    high, low = storage.out_masks(temp_c)
    outside = high | low

    bands: list[BandUsage] = []
    in_bands_us = 0
    for allowance in profile.allowances:
        band_us = int(held[outside & allowance.contains(temp_c)].sum())
        in_bands_us += band_us
        time_in_band = timedelta(microseconds=band_us)
        carried_band = carried.get(allowance.key, timedelta(0))
        used = carried_band + time_in_band + (times.time_gap if count_gaps_as_out else timedelta(0))
        budget = allowance.budget
        bands.append(
            BandUsage(
                allowance=allowance,
                carried_over=carried_band,
                time_in_band=time_in_band,
                used=used,
                share=None if budget == timedelta(0) else used / budget,
                exceeded=used > budget,
            )
        )
    uncovered = times.time_out - timedelta(microseconds=in_bands_us)

    transitions = freeze_thaw_transitions(
        temp_c, freeze_c=profile.freeze_c, thaw_hysteresis_c=profile.thaw_hysteresis_c
    )
    cycles = carried_cycles + math.ceil(transitions / 2)
    mkt_result = (
        mkt(
            known,
            weighting=MKT_WEIGHTING,
            max_gap=max_gap,
            delta_h_j_mol=profile.delta_h_j_mol,
        )
        if len(t_us)
        else None
    )

    reasons = _reasons(
        profile,
        n_readings=len(t_us),
        bands=bands,
        uncovered=uncovered,
        time_gap=times.time_gap,
        count_gaps_as_out=count_gaps_as_out,
        cycles=cycles,
        transitions=transitions,
        carried_cycles=carried_cycles,
        mkt_result=mkt_result,
        still_open=still_open,
    )
    first_reading = datetime_from_us(int(t_us[0])) if len(t_us) else None
    span_end = None
    if len(t_us):
        last = datetime_from_us(int(t_us[-1]))
        span_end = now if now - last > max_gap else last
    return Verdict(
        outcome="exception" if reasons else "conforming",
        reasons=tuple(reasons),
        bands=tuple(bands),
        now=now,
        first_reading=first_reading,
        span_end=span_end,
        n_readings=len(t_us),
        time_in_range=times.time_in,
        time_outside=times.time_out,
        time_uncovered=uncovered,
        time_gap=times.time_gap,
        count_gaps_as_out=count_gaps_as_out,
        freeze_thaw_transitions=transitions,
        freeze_thaw_cycles=cycles,
        max_freeze_thaw_cycles=profile.max_freeze_thaw_cycles,
        mkt=mkt_result,
        mkt_limit_c=profile.mkt_limit_c,
        open_excursions=still_open,
    )


def _reasons(
    profile: StabilityProfile,
    *,
    n_readings: int,
    bands: Sequence[BandUsage],
    uncovered: timedelta,
    time_gap: timedelta,
    count_gaps_as_out: bool,
    cycles: int,
    transitions: int,
    carried_cycles: int,
    mkt_result: MKTResult | None,
    still_open: Sequence[tuple[Direction, datetime]],
) -> list[Reason]:
    """Every reason for an exception, in a fixed order (the module docstring's)."""
    reasons: list[Reason] = []
    if n_readings == 0:
        reasons.append(
            Reason(
                "no_readings", "no readings: nothing shows the product stayed within its profile"
            )
        )
    for band in bands:
        if not band.exceeded:
            continue
        parts = [f"{band.allowance.label} band: {_duration(band.used)} used of "]
        parts.append(f"{_duration(band.allowance.budget)}")
        details = []
        if band.carried_over:
            details.append(f"{_duration(band.carried_over)} carried over")
        if count_gaps_as_out and time_gap:
            details.append(f"{_duration(time_gap)} of data gaps counted as worst case")
        if details:
            parts.append(f" (incl. {', '.join(details)})")
        reasons.append(Reason("band_budget_exceeded", "".join(parts), band=band.allowance.key))
    if uncovered > timedelta(0):
        storage = _storage_label(profile)
        reasons.append(
            Reason(
                "outside_allowances",
                f"{_duration(uncovered)} outside the storage range ({storage}) in no allowed band",
            )
        )
    if count_gaps_as_out and time_gap > timedelta(0):
        reasons.append(
            Reason(
                "data_gap",
                f"{_duration(time_gap)} without readings (data gaps): the temperature then is "
                "unknown and counted as worst case",
            )
        )
    limit = profile.max_freeze_thaw_cycles
    if limit is not None and cycles > limit:
        carried = f", {carried_cycles} carried over" if carried_cycles else ""
        reasons.append(
            Reason(
                "freeze_thaw_cycles",
                f"{cycles} freeze–thaw cycle{'' if cycles == 1 else 's'} (at {_c(profile.freeze_c)}, "
                f"{transitions} transitions{carried}) of {limit} allowed",
            )
        )
    if profile.mkt_limit_c is not None:
        if mkt_result is None:
            if n_readings:
                reasons.append(
                    Reason(
                        "mkt_unknown",
                        f"MKT unknown (no time covered by the readings); limit "
                        f"{_c(profile.mkt_limit_c)}",
                    )
                )
        elif mkt_result.mkt_c > profile.mkt_limit_c:
            reasons.append(
                Reason(
                    "mkt_above_limit",
                    f"MKT {mkt_result.mkt_c:.2f} °C above its limit of {_c(profile.mkt_limit_c)} "
                    f"(ΔH {mkt_result.delta_h_j_mol:g} J/mol, over "
                    f"{_duration(mkt_result.duration_covered)})",
                )
            )
    for direction, start in still_open:
        reasons.append(
            Reason(
                "open_excursion",
                f"a {direction} excursion since {start.isoformat()} is still open",
            )
        )
    return reasons


def _storage_label(profile: StabilityProfile) -> str:
    low, high = profile.storage_low_c, profile.storage_high_c
    if low is not None and high is not None:
        return f"{low:g}–{high:g} °C"
    if low is not None:
        return f"at least {_c(low)}"
    if high is not None:
        return f"at most {_c(high)}"
    return "none set"

"""A :class:`~coldchain.thermal.stability.StabilityProfile` as stored (``product_profiles.profile``,
jsonb) and as exchanged (the API's ``stability`` object, the CSV import): one document shape,
field for field the dataclass, with the one change that a budget is in seconds (``budget_s``).

Pure. :func:`profile_from_doc` validates by building the dataclass (its ``__post_init__`` is the
one validation of a profile); every error is an :class:`~coldchain.errors.InvalidRecordError`
naming the field, e.g. ``allowances[1]: ... overlaps allowances[0]``.

::

    {"storage_low_c": 2.0, "storage_high_c": 8.0,
     "allowances": [{"low_c": 8.0, "high_c": 25.0, "budget_s": 259200},
                    {"low_c": 0.0, "high_c": 2.0, "budget_s": 43200}],
     "max_freeze_thaw_cycles": 3, "freeze_c": 0.0, "thaw_hysteresis_c": 0.5,
     "mkt_limit_c": 25.0, "delta_h_j_mol": 83144.0}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from coldchain.errors import InvalidRecordError
from coldchain.thermal.stability import Allowance, StabilityProfile

__all__ = ["PROFILE_FIELDS", "profile_from_doc", "profile_to_doc"]

#: The document's keys, in the dataclass's order.
PROFILE_FIELDS = (
    "storage_low_c",
    "storage_high_c",
    "allowances",
    "max_freeze_thaw_cycles",
    "freeze_c",
    "thaw_hysteresis_c",
    "mkt_limit_c",
    "delta_h_j_mol",
)
_ALLOWANCE_FIELDS = ("low_c", "high_c", "budget_s")


def profile_to_doc(profile: StabilityProfile) -> dict[str, Any]:
    """The stored document of ``profile`` (plain JSON values)."""
    return {
        "storage_low_c": profile.storage_low_c,
        "storage_high_c": profile.storage_high_c,
        "allowances": [
            {"low_c": a.low_c, "high_c": a.high_c, "budget_s": a.budget.total_seconds()}
            for a in profile.allowances
        ],
        "max_freeze_thaw_cycles": profile.max_freeze_thaw_cycles,
        "freeze_c": profile.freeze_c,
        "thaw_hysteresis_c": profile.thaw_hysteresis_c,
        "mkt_limit_c": profile.mkt_limit_c,
        "delta_h_j_mol": profile.delta_h_j_mol,
    }


def _number(value: Any, field: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRecordError(field, f"must be a finite number, got {value!r}")
    return float(value)


# "StabilityProfile.allowances[1] (20–30 °C) overlaps ..." -> the field is allowances[1]
_FIELD_IN_MESSAGE = re.compile(r"(?:StabilityProfile|Allowance)\.([a-z_]+(?:\[\d+\])?)")


def profile_from_doc(doc: Mapping[str, Any]) -> StabilityProfile:
    """The profile a document describes; :class:`InvalidRecordError` naming the field if it
    cannot be one (unknown keys too: a typo must not silently drop an allowance)."""
    if not isinstance(doc, Mapping):
        raise InvalidRecordError("stability", f"must be an object, got {doc!r}")
    unknown = sorted(set(doc) - set(PROFILE_FIELDS))
    if unknown:
        raise InvalidRecordError(
            unknown[0], f"unknown field (a profile has {', '.join(PROFILE_FIELDS)})"
        )
    raw_allowances = doc.get("allowances") or []
    if not isinstance(raw_allowances, list):
        raise InvalidRecordError("allowances", "must be a list of bands")
    allowances = []
    for i, raw in enumerate(raw_allowances):
        where = f"allowances[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidRecordError(where, "must be an object with low_c, high_c and budget_s")
        extra = sorted(set(raw) - set(_ALLOWANCE_FIELDS))
        if extra:
            raise InvalidRecordError(f"{where}.{extra[0]}", "unknown field")
        if "budget_s" not in raw:
            raise InvalidRecordError(f"{where}.budget_s", "is required (seconds, >= 0)")
        budget = _number(raw["budget_s"], f"{where}.budget_s", optional=False)
        assert budget is not None
        low = _number(raw.get("low_c"), f"{where}.low_c")
        high = _number(raw.get("high_c"), f"{where}.high_c")
        try:
            allowances.append(Allowance(low_c=low, high_c=high, budget=timedelta(seconds=budget)))
        except ValueError as exc:
            raise InvalidRecordError(where, str(exc)) from None
    kwargs: dict[str, Any] = {
        key: _number(doc.get(key), key)
        for key in ("storage_low_c", "storage_high_c", "mkt_limit_c")
    }
    for key in ("freeze_c", "thaw_hysteresis_c", "delta_h_j_mol"):
        if doc.get(key) is not None:
            kwargs[key] = _number(doc[key], key)
    if doc.get("max_freeze_thaw_cycles") is not None:
        kwargs["max_freeze_thaw_cycles"] = doc["max_freeze_thaw_cycles"]
    try:
        return StabilityProfile(allowances=tuple(allowances), **kwargs)
    except (ValueError, TypeError) as exc:
        found = _FIELD_IN_MESSAGE.search(str(exc))
        raise InvalidRecordError(found.group(1) if found else "stability", str(exc)) from None

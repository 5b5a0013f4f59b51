"""SenML (RFC 8428) packs as the payload contract reads them (coldchain/telemetry.py).

A pack is a JSON array of records carrying ``bn``/``n``, ``bt``/``t`` (seconds) and ``u`` in
``Cel``, ``%RH``, ``lat``, ``lon``, ``/`` (battery ratio); :func:`senml_records` resolves the base
fields and groups the records into one reading-shaped object per (logger, time), which the
telemetry checks then validate like any other reading. :func:`json_type` names a JSON value's
type in the words rejection reasons use, here and in the telemetry checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_SENML_FIELDS = {"Cel": "temp_c", "%RH": "rh", "lat": "lat", "lon": "lon", "/": "battery"}


def senml_records(pack: Sequence[Any], topic_device: str) -> list[tuple[int, dict[str, Any]]]:
    """Resolve SenML base fields and group records into readings keyed by (name, time)."""
    base_name, base_time = "", 0.0
    grouped: dict[tuple[str, float], dict[str, Any]] = {}
    order: list[tuple[str, float]] = []
    first_index: dict[tuple[str, float], int] = {}
    for i, rec in enumerate(pack):
        if not isinstance(rec, Mapping):
            raise ValueError(f"SenML record {i} is not an object")
        if "bn" in rec:
            base_name = str(rec["bn"])
        if "bt" in rec:
            base_time = float(_senml_number(rec["bt"], "bt", i))
        unit = rec.get("u")
        if unit not in _SENML_FIELDS:
            continue  # unknown quantities are ignored, as RFC 8428 allows
        # The base name identifies the logger ("urn:dev:ser:LOG-1:" or "LOG-1/"); the unit, not
        # the record name, says which quantity a record carries.
        segments = [s for s in re.split(r"[:/]", base_name) if s]
        device = segments[-1] if segments else topic_device
        t = base_time + float(_senml_number(rec.get("t", 0.0), "t", i))
        if abs(t) < 2**28:  # RFC 8428 §4.5.3: small values are relative to now; we refuse those
            raise ValueError(f"SenML record {i} has a relative time; absolute time is required")
        key = (device, t)
        if key not in grouped:
            grouped[key] = {"device_id": device, "ts": t * 1000.0}
            order.append(key)
            first_index[key] = i
        grouped[key][_SENML_FIELDS[unit]] = rec.get("v")
    return [(first_index[k], grouped[k]) for k in order]


def _senml_number(value: Any, name: str, i: int) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"SenML record {i}: {name} must be a JSON number, not {json_type(value)}")
    return value


def json_type(v: Any) -> str:
    """A JSON value's type, as a reason says it ("text", "a boolean", …)."""
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "text"
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__

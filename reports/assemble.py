"""The excursion report's evidence, assembled from plain values (pure: no I/O, ``as_of`` given).

:class:`ReportInputs` is what the database says about one shipment as of one instant
(:mod:`reports.service` loads it); :func:`assemble` turns it into the *evidence*, a dict of JSON
values only (str, int, float, bool, None, list, dict), and :func:`evidence_hash` hashes it.
Because the evidence holds JSON values only, ``json.loads(canonical_json(evidence))`` equals it,
so a report rendered from a frozen snapshot is the report rendered when it was signed.

What the figures mean (the same contracts the rules engine uses):

- **gaps**: intervals between readings longer than ``gap_factor`` × the logger's interval
  (:func:`coldchain.thermal.excursions.find_gaps`), with a trailing gap up to ``as_of`` (or the
  end of the assignment) when the logger fell silent; unknown time, never "in range";
- **completeness**: readings received / readings expected over the covered window (first
  reading → end of the window), capped at 1;
- **limits** (``rules.temperature``): the merged rules in force at ``as_of`` as the engine
  stacks them (product row, rules file, stored product and shipment versions;
  :mod:`alerts.in_force`), never the product row alone; the product's labelled range is shown
  beside them;
- **excursions**: the rules engine's stored excursions current at ``as_of``, with the thresholds
  they were judged against when evaluated;
- **MKT**: :func:`coldchain.thermal.mkt.mkt` over the trailing window (rules ``mkt.window_h``;
  USP <1079.2>: 24 h for controlled cold, 30 days for controlled room temperature) ending at the
  logger's last reading, and over the whole trip, with ΔH, the weighting rule and the gap rule
  printed;
- **budget**: :func:`coldchain.thermal.budget.budget_usage` over the trip (gaps counted as out
  when the rule says so), against the stability budget;
- **verdicts** (format 2): the stability verdict at arrival of each product on board, as
  :mod:`services.lifecycle` stored it (latest evaluation by ``as_of``): conforming or exception,
  the profile version it was judged by (the version in force when the shipment started), or the
  product's own range and budget when it had no profile, each reason, and per band of the profile
  the time used against its budget. Stored figures, not recomputed: the verdict is what QA was
  shown and what an auto-release acted on.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from coldchain.canonical import content_hash
from coldchain.thermal.budget import budget_usage
from coldchain.thermal.excursions import TempLimits, find_gaps
from coldchain.thermal.limits import limits_from_json, temperature_limits
from coldchain.thermal.mkt import DEFAULT_DELTA_H_J_MOL, Weighting, mkt, time_weighted_mean
from coldchain.thermal.series import Point

#: The evidence's format, part of what is hashed and signed. 1: up to the arrival verdicts;
#: 2: adds ``verdicts``; 3: a reading also carries its humidity and position (``rh``, ``lat``,
#: ``lon``), each only where the logger sent it. Frozen snapshots keep their format and render as
#: they were signed (:mod:`reports.render` draws a section only when the evidence has it; the
#: readings CSV leaves humidity and position empty for formats 1 and 2).
REPORT_FORMAT = "coldchain-excursion-report/3"
#: What the verdict says it was judged by when the product had no stability profile.
OWN_RANGE = "the product's own range and budget"

JsonDict = dict[str, Any]
_NO_DETAIL: tuple[None, None, None] = (None, None, None)


@dataclass(frozen=True, slots=True)
class LoggerInput:
    """A logger in the shipment: its registry row, assignment and readings (ts, °C) ≤ as_of."""

    device_id: str
    model: str | None
    calibration_cert: str | None
    calibration_due: date | None
    interval_s: int
    assigned_from: datetime | None
    assigned_to: datetime | None
    readings: tuple[tuple[datetime, float], ...] = ()
    #: Humidity (%RH) and position (lat, lon) by reading time, where the logger sent them.
    details: Mapping[datetime, tuple[float | None, float | None, float | None]] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything a report is made of, as plain values (rows are mappings of column → value)."""

    as_of: datetime
    shipment: Mapping[str, Any]
    product: Mapping[str, Any] | None
    legs: Sequence[Mapping[str, Any]]
    loggers: Sequence[LoggerInput]
    units: Sequence[Mapping[str, Any]]
    excursions: Sequence[Mapping[str, Any]]
    alerts: Sequence[Mapping[str, Any]]
    verdicts: Sequence[Mapping[str, Any]] = ()  # shipment_verdicts rows (with product_name)
    rules: Mapping[str, Any] = field(default_factory=dict)  # EffectiveRules, as JSON
    gap_factor: float = 2.0


def iso(value: datetime | date | None) -> str | None:
    """``2026-11-26T03:04:05Z`` (UTC, microseconds only when there are some), or a date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _num(value: Any, digits: int | None = None) -> Any:
    """A JSON number: Decimal/numpy to float, NaN/inf to None, optionally rounded."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, digits) if digits is not None else number


def _jsonable(value: Any) -> Any:
    """Row values as JSON values (datetimes as ISO text, numbers as numbers)."""
    if isinstance(value, datetime | date):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    return _num(value)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g} to {high:g} °C"
    if high is not None:
        return f"at most {high:g} °C"
    if low is not None:
        return f"at least {low:g} °C"
    return "not set"


def _temperature_limits(inputs: ReportInputs, max_gap: timedelta) -> TempLimits | None:
    """The limits the rules engine judges the shipment by: the merged rules' temperature section
    (:func:`coldchain.thermal.limits.limits_from_json`), never the product row on its own: a rule
    switched off at some layer is off in the report too."""
    limits = limits_from_json(inputs.rules.get("temperature"))
    return None if limits is None else temperature_limits(limits, max_gap)


def mkt_settings(inputs: ReportInputs) -> JsonDict:
    """ΔH, weighting, window and limit used for MKT: the rules' mkt section, else the product's
    ΔH and the USP <1079.2> window for its range."""
    rule = inputs.rules.get("mkt") or {}
    product = inputs.product or {}
    high = product.get("temp_max_c")
    cold = high is not None and high <= 8.0
    return {
        "delta_h_j_mol": _num(
            rule.get("delta_h_j_mol") or product.get("mkt_delta_h_j_mol") or DEFAULT_DELTA_H_J_MOL
        ),
        "weighting": str(rule.get("weighting") or "step"),
        "window_h": _num(rule.get("window_h") or (24.0 if cold else 30 * 24.0)),
        "limit_c": _num(rule.get("limit_c", product.get("mkt_limit_c"))),
        "source": "rules" if rule else "product defaults",
    }


def budget_settings(inputs: ReportInputs) -> JsonDict | None:
    """The stability budget and how it is counted, or None when the product has none."""
    rule = inputs.rules.get("budget") or {}
    product = inputs.product or {}
    hours = rule.get("hours")
    if hours is None and product.get("stability_budget_s"):
        hours = product["stability_budget_s"] / 3600.0
    if not hours:
        return None
    return {
        "hours": _num(hours),
        "warning_share": _num(rule.get("warning_share", 0.8)),
        "count_gaps_as_out": bool(rule.get("count_gaps_as_out", True)),
    }


def _point_ts(point: Point) -> datetime:
    return point.ts


def _mkt_block(points: list[Point], settings: JsonDict, max_gap: timedelta) -> JsonDict:
    weighting = Weighting(settings["weighting"])
    delta_h = float(settings["delta_h_j_mol"])
    out: JsonDict = {"window": None, "whole_trip": None}
    if not points:
        return out
    end = points[-1].ts
    window = timedelta(hours=float(settings["window_h"]))
    # ``points`` is sorted by time and ends at ``end``: the window is the suffix from end - window.
    first = bisect.bisect_left(points, end - window, key=_point_ts)
    windows = {
        "window": points[first:],
        "whole_trip": points,
    }
    for name, pts in windows.items():
        result = mkt(pts, weighting=weighting, max_gap=max_gap, delta_h_j_mol=delta_h)
        if result is None:
            continue
        mean = time_weighted_mean(pts, weighting=weighting, max_gap=max_gap)
        limit = settings["limit_c"]
        out[name] = {
            "start": iso(result.window_start),
            "end": iso(result.window_end),
            "mkt_c": _num(result.mkt_c, 3),
            "time_weighted_mean_c": _num(mean, 3),
            "n_readings": result.n_readings,
            "duration_covered_s": _num(result.duration_covered.total_seconds()),
            "above_limit": None if limit is None else bool(result.mkt_c > limit),
        }
    return out


def _budget_block(
    points: list[Point],
    limits: TempLimits | None,
    settings: JsonDict | None,
    max_gap: timedelta,
    until: datetime,
) -> JsonDict | None:
    if settings is None or limits is None or not points:
        return None
    usage = budget_usage(
        points,
        limits,
        timedelta(hours=float(settings["hours"])),
        max_gap=max_gap,
        count_gaps_as_out=bool(settings["count_gaps_as_out"]),
        warning_share=float(settings["warning_share"]),
        now=until,
    )
    return {
        "budget_s": _num(usage.budget.total_seconds()),
        "time_in_range_s": _num(usage.time_in.total_seconds()),
        "time_out_of_range_s": _num(usage.time_out.total_seconds()),
        "time_in_gaps_s": _num(usage.time_gap.total_seconds()),
        "counted_s": _num(usage.counted.total_seconds()),
        "remaining_s": _num(usage.remaining.total_seconds()),
        "share_used": _num(usage.share_used, 4),
        "status": usage.status,
        "warning_at": iso(usage.warning_at),
        "exhausted_at": iso(usage.exhausted_at),
    }


def _logger_block(
    logger: LoggerInput, inputs: ReportInputs, mkt_cfg: JsonDict, budget_cfg: JsonDict | None
) -> JsonDict:
    max_gap = timedelta(seconds=logger.interval_s * inputs.gap_factor)
    points = sorted(
        (Point(ts, temp) for ts, temp in logger.readings if math.isfinite(temp)),
        key=lambda p: p.ts,
    )
    # The window the logger should have covered: its assignment, cut at as_of.
    until = min(logger.assigned_to or inputs.as_of, inputs.as_of)
    start = logger.assigned_from or (points[0].ts if points else None)
    gaps = find_gaps(points, max_gap, now=until) if points else []
    expected = 0
    if start is not None and until > start:
        expected = int((until - start).total_seconds() // logger.interval_s) + 1
    limits = _temperature_limits(inputs, max_gap)
    calibration_overdue = (
        None
        if logger.calibration_due is None
        else logger.calibration_due < inputs.as_of.astimezone(UTC).date()
    )
    # EU GDP 9.3: readings taken after the due date (UTC) came from an uncalibrated logger.
    uncalibrated = (
        []
        if logger.calibration_due is None
        else [p for p in points if p.ts.astimezone(UTC).date() > logger.calibration_due]
    )
    return {
        "device_id": logger.device_id,
        "model": logger.model,
        "calibration_cert": logger.calibration_cert,
        "calibration_due": iso(logger.calibration_due),
        "calibration_overdue": calibration_overdue,
        "readings_after_calibration_due": len(uncalibrated),
        "first_reading_after_calibration_due": iso(uncalibrated[0].ts) if uncalibrated else None,
        "interval_s": logger.interval_s,
        "assigned_from": iso(logger.assigned_from),
        "assigned_to": iso(logger.assigned_to),
        "readings": len(points),
        "expected_readings": expected,
        "completeness": _num(min(1.0, len(points) / expected), 4) if expected else None,
        "first_reading": iso(points[0].ts) if points else None,
        "last_reading": iso(points[-1].ts) if points else None,
        "min_c": _num(min(p.temp_c for p in points)) if points else None,
        "max_c": _num(max(p.temp_c for p in points)) if points else None,
        "gap_rule": f"silence longer than {inputs.gap_factor:g} × {logger.interval_s} s",
        "gaps": [
            {
                "start": iso(g.start),
                "end": iso(g.end),
                "duration_s": _num(g.duration.total_seconds()),
                "open": g.open,
            }
            for g in gaps
        ],
        "time_in_gaps_s": _num(sum(g.duration.total_seconds() for g in gaps)),
        "mkt": _mkt_block(points, mkt_cfg, max_gap),
        "budget": _budget_block(points, limits, budget_cfg, max_gap, until),
    }


def _excursion(row: Mapping[str, Any]) -> JsonDict:
    end = row.get("end_ts")
    duration = ((end or row["last_out_ts"]) - row["start_ts"]).total_seconds()
    return {
        "id": row["id"],
        "device_id": row["device_id"],
        "direction": row["direction"],
        "start": iso(row["start_ts"]),
        "end": iso(end),
        "open": end is None,
        "ended_by_gap": bool(row.get("ended_by_gap")),
        "duration_s": _num(duration),
        "min_c": _num(row["min_c"]),
        "max_c": _num(row["max_c"]),
        "degree_minutes": _num(row["degree_minutes"], 3),
        "n_readings": row["n_readings"],
        "readings_over_40": row.get("readings_over_40", 0),
        "readings_freezing": row.get("readings_freezing", 0),
        "alarm": bool(row["alarm"]),
        "alarm_at": iso(row.get("alarm_at")),
        "freeze_alarm": bool(row.get("freeze_alarm")),
        "rule_key": row["rule_key"],
        "thresholds_as_evaluated": _jsonable(row.get("thresholds") or {}),
    }


def _alert(row: Mapping[str, Any]) -> JsonDict:
    events = [
        {
            "at": iso(e["at"]),
            "kind": e["kind"],
            "actor": e.get("actor"),
            "comment": e.get("comment"),
        }
        for e in row.get("events", [])
    ]
    return {
        "id": row["id"],
        "rule_key": row["rule_key"],
        "severity": row["severity"],
        "state_as_of": row.get("state_as_of"),
        "title": row["title"],
        "device_id": row.get("device_id"),
        "triggered_at": iso(row["triggered_at"]),
        "value": _num(row.get("value")),
        "thresholds_as_evaluated": _jsonable(row.get("thresholds") or {}),
        "acknowledged": [
            {"at": e["at"], "by": e["actor"], "comment": e["comment"]}
            for e in events
            if e["kind"] == "acknowledged"
        ],
        "events": events,
    }


def judged_by(profile_version: int | None) -> str:
    """What a verdict was judged by, in words: ``profile version 2``, or :data:`OWN_RANGE`."""
    return OWN_RANGE if profile_version is None else f"profile version {profile_version}"


def _verdict(row: Mapping[str, Any]) -> JsonDict:
    figures = _jsonable(dict(row.get("figures") or {}))
    bands = figures.pop("bands", [])
    version = row.get("profile_version")
    return {
        "gtin": row["gtin"],
        "product": row.get("product_name"),
        "verdict": row["verdict"],
        "profile_version": version,
        "judged_by": judged_by(version),
        "reasons": [
            {"code": r.get("code"), "message": r.get("message"), "band": r.get("band")}
            for r in row.get("reasons") or []
        ],
        "bands": bands,
        "figures": figures,
        "evaluated_at": iso(row["evaluated_at"]),
        "evaluated_by": row["evaluated_by"],
    }


def _lots(units: Sequence[Mapping[str, Any]]) -> list[JsonDict]:
    lots: dict[tuple[str | None, str], JsonDict] = {}
    for u in units:
        if not u.get("lot"):
            continue
        key = (u.get("gtin"), u["lot"])
        lot = lots.setdefault(
            key,
            {"gtin": u.get("gtin"), "lot": u["lot"], "expiry": iso(u.get("expiry")), "units": 0},
        )
        lot["units"] += 1
    return [lots[k] for k in sorted(lots, key=lambda k: (k[0] or "", k[1]))]


def logger_evidence(inputs: ReportInputs) -> list[JsonDict]:
    """The report's ``loggers`` section: per logger, in assignment order, its readings count,
    completeness, gaps, MKT and stability budget use (the shipment page shows these too)."""
    mkt_cfg = mkt_settings(inputs)
    budget_cfg = budget_settings(inputs)
    return [
        _logger_block(lg, inputs, mkt_cfg, budget_cfg)
        for lg in sorted(
            inputs.loggers, key=lambda lg: (lg.assigned_from or inputs.as_of, lg.device_id)
        )
    ]


def assemble(inputs: ReportInputs) -> JsonDict:
    """The report's evidence (JSON values only; see the module docstring for the figures)."""
    shipment = inputs.shipment
    mkt_cfg = mkt_settings(inputs)
    budget_cfg = budget_settings(inputs)
    loggers = logger_evidence(inputs)
    excursions = [
        _excursion(r)
        for r in sorted(inputs.excursions, key=lambda r: (r["start_ts"], r["device_id"], r["id"]))
    ]
    product = inputs.product
    limits_max_gap = timedelta(seconds=max((lg.interval_s for lg in inputs.loggers), default=300))
    limits = _temperature_limits(inputs, limits_max_gap * inputs.gap_factor)
    # humidity and position only where the logger sent them: most loggers send neither, and the
    # readings are most of a frozen snapshot's size
    readings = [
        {"device_id": lg.device_id, "ts": iso(ts), "temp_c": _num(temp)}
        | {
            k: _num(v)
            for k, v in zip(("rh", "lat", "lon"), lg.details.get(ts, _NO_DETAIL), strict=True)
            if v is not None
        }
        for lg in sorted(inputs.loggers, key=lambda lg: lg.device_id)
        for ts, temp in sorted(lg.readings)
    ]
    return {
        "format": REPORT_FORMAT,
        "as_of": iso(inputs.as_of),
        "shipment": {
            "id": shipment["shipment_id"],
            "reference": shipment["reference"],
            "origin": shipment["origin"],
            "destination": shipment["destination"],
            "lane": f"{shipment['origin']} → {shipment['destination']}",
            "status": shipment["status"],
            "carrier": shipment.get("carrier"),
            "planned_departure": iso(shipment.get("planned_departure")),
            "planned_arrival": iso(shipment.get("planned_arrival")),
        },
        "product": None
        if product is None
        else {
            "gtin": product["gtin"],
            "name": product["name"],
            "labelled_range": _range_text(product.get("temp_min_c"), product.get("temp_max_c")),
            "temp_min_c": _num(product.get("temp_min_c")),
            "temp_max_c": _num(product.get("temp_max_c")),
            "freeze_limit_c": _num(product.get("freeze_limit_c")),
            "alarm_delay_s": product.get("alarm_delay_s"),
            "stability_budget_s": product.get("stability_budget_s"),
        },
        "lots": _lots(inputs.units),
        "units": [
            {
                "epc": u["epc"],
                "kind": u["kind"],
                "gtin": u.get("gtin"),
                "serial": u.get("serial"),
                "sscc": u.get("sscc"),
                "lot": u.get("lot"),
                "expiry": iso(u.get("expiry")),
            }
            for u in sorted(inputs.units, key=lambda u: u["epc"])
        ],
        "legs": [_jsonable(dict(leg)) for leg in sorted(inputs.legs, key=lambda leg: leg["seq"])],
        "loggers": loggers,
        "rules": {
            "temperature": None
            if limits is None
            else {
                "low_c": limits.low_c,
                "high_c": limits.high_c,
                "freeze_c": limits.freeze_c,
                "alarm_delay_s": _num(limits.alarm_delay.total_seconds()),
            },
            "mkt": mkt_cfg,
            "budget": budget_cfg,
            "gap_factor": _num(inputs.gap_factor),
            "in_force": _jsonable(dict(inputs.rules)),
        },
        "excursions": excursions,
        "totals": {
            "excursions": len(excursions),
            "alarmed_excursions": sum(1 for e in excursions if e["alarm"]),
            "time_out_of_range_s": _num(sum(e["duration_s"] for e in excursions)),
            "degree_minutes": _num(sum(e["degree_minutes"] for e in excursions), 3),
            "readings": len(readings),
            "gaps": sum(len(lg["gaps"]) for lg in loggers),
            "time_in_gaps_s": _num(sum(lg["time_in_gaps_s"] for lg in loggers)),
        },
        "alerts": [
            _alert(a) for a in sorted(inputs.alerts, key=lambda a: (a["triggered_at"], a["id"]))
        ],
        "verdicts": [_verdict(v) for v in sorted(inputs.verdicts, key=lambda v: v["gtin"])],
        "readings": readings,
    }


def evidence_hash(evidence: Mapping[str, Any]) -> str:
    """The report's content hash: SHA-256 of the evidence's canonical JSON."""
    return content_hash(evidence)

"""A small, explicit report input: a 2–8 °C vaccine, one logger at 5 min, an excursion, a gap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from reports.assemble import LoggerInput, ReportInputs

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
AS_OF = T0 + timedelta(hours=6)


def readings(
    temps: list[float] | None = None, *, gap: bool = True
) -> tuple[tuple[datetime, float], ...]:
    """6 h at 5 min: 5 °C, 9.5 °C from 2:00 to 2:40, nothing from 4:00 to 4:30 (a gap)."""
    out = []
    for i in range(72):
        ts = T0 + timedelta(minutes=5 * i)
        if gap and timedelta(hours=4) < ts - T0 < timedelta(hours=4, minutes=30):
            continue
        temp = 9.5 if timedelta(hours=2) <= ts - T0 < timedelta(hours=2, minutes=40) else 5.0
        out.append((ts, temps[i] if temps else temp))
    return tuple(out)


def verdict_row(*, profile_version: int | None = 2, used_s: float = 2400.0) -> dict[str, Any]:
    """A stored arrival verdict (shipment_verdicts as loaded): the 8–25 °C band over budget."""
    return {
        "gtin": "09521234543213",
        "product_name": "Vaccine X 10 ml",
        "verdict": "exception",
        "reasons": [
            {"code": "band_budget_exceeded", "band": "8..25",
             "message": f"8–25 °C: {used_s / 60:g} min used of a 30 min budget"},
        ],
        "figures": {
            "outcome": "exception",
            "bands": [
                {"key": "8..25", "label": "8–25 °C", "low_c": 8.0, "high_c": 25.0,
                 "budget_s": 1800.0, "carried_over_s": 0.0, "time_in_band_s": used_s,
                 "used_s": used_s, "remaining_s": 0.0, "share": used_s / 1800.0,
                 "exceeded": True},
                {"key": "0..2", "label": "0–2 °C", "low_c": 0.0, "high_c": 2.0,
                 "budget_s": 43200.0, "carried_over_s": 0.0, "time_in_band_s": 0.0,
                 "used_s": 0.0, "remaining_s": 43200.0, "share": 0.0, "exceeded": False},
            ],
            "freeze_thaw": {"transitions": 0, "cycles": 0, "max_cycles": None},
        },
        "profile_version": profile_version,
        "evaluated_at": AS_OF - timedelta(minutes=1),
        "evaluated_by": "ana.ruiz",
    }  # fmt: skip


def make_inputs(**overrides: Any) -> ReportInputs:
    values: dict[str, Any] = {
        "as_of": AS_OF,
        "shipment": {
            "shipment_id": 7,
            "reference": "SHP-7",
            "origin": "Rotterdam",
            "destination": "Basel",
            "status": "arrived",
            "carrier": "Frigo Express",
            "planned_departure": T0,
            "planned_arrival": AS_OF,
        },
        "product": {
            "gtin": "09521234543213",
            "name": "Vaccine X 10 ml",
            "temp_min_c": 2.0,
            "temp_max_c": 8.0,
            "freeze_limit_c": 0.0,
            "alarm_delay_s": 900,
            "stability_budget_s": 72 * 3600,
            "mkt_delta_h_j_mol": 83144.0,
            "mkt_limit_c": 8.0,
        },
        "legs": [
            {
                "seq": 1,
                "mode": "road",
                "origin": "Rotterdam",
                "destination": "Basel",
                "carrier": "Frigo Express",
                "planned_departure": T0,
                "planned_arrival": AS_OF,
            }
        ],
        "loggers": [
            LoggerInput(
                device_id="LOG-1",
                model="TL-300",
                calibration_cert="CAL-1",
                calibration_due=date(2027, 6, 30),
                interval_s=300,
                assigned_from=T0,
                assigned_to=None,
                readings=readings(),
            )
        ],
        "units": [
            {"epc": "urn:epc:id:sscc:0950600.0000000017", "kind": "sscc", "gtin": None,
             "serial": None, "sscc": "009506000000000017", "lot": None, "expiry": None},
            {"epc": "urn:epc:id:sgtin:0952123.454321.1", "kind": "sgtin", "gtin": "09521234543213",
             "serial": "1", "sscc": None, "lot": "L42", "expiry": date(2027, 1, 31)},
            {"epc": "urn:epc:id:sgtin:0952123.454321.2", "kind": "sgtin", "gtin": "09521234543213",
             "serial": "2", "sscc": None, "lot": "L42", "expiry": date(2027, 1, 31)},
        ],
        "excursions": [
            {
                "id": 1, "device_id": "LOG-1", "direction": "high",
                "start_ts": T0 + timedelta(hours=2), "end_ts": T0 + timedelta(hours=2, minutes=40),
                "last_out_ts": T0 + timedelta(hours=2, minutes=35), "ended_by_gap": False,
                "min_c": 9.5, "max_c": 9.5, "degree_minutes": 60.0, "n_readings": 8,
                "readings_over_40": 0, "readings_freezing": 0, "alarm": True,
                "alarm_at": T0 + timedelta(hours=2, minutes=15), "freeze_alarm": False,
                "rule_key": "temp_high", "thresholds": {"high_c": 8.0, "alarm_delay_min": 15.0},
            }
        ],
        "alerts": [
            {
                "id": 3, "rule_key": "temp_high", "severity": "major", "state_as_of": "acknowledged",
                "title": "Temperature above 8 °C", "device_id": "LOG-1",
                "triggered_at": T0 + timedelta(hours=2, minutes=15), "value": 9.5,
                "thresholds": {"high_c": 8.0},
                "events": [
                    {"at": T0 + timedelta(hours=2, minutes=15), "kind": "opened", "actor": "engine", "comment": None},
                    {"at": T0 + timedelta(hours=2, minutes=20), "kind": "acknowledged", "actor": "ana.ruiz", "comment": "door closed"},
                ],
            }
        ],
        "verdicts": [verdict_row()],
        # The product row's rules as the engine stacks them (alerts.in_force): the report
        # judges by the rules in force, never by the product row alone.
        "rules": {
            "temperature": {"low_c": 2.0, "high_c": 8.0, "freeze_c": 0.0, "alarm_delay_min": 15.0}
        },
        "gap_factor": 2.0,
    }  # fmt: skip
    values.update(overrides)
    return ReportInputs(**values)

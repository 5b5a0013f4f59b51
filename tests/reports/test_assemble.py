"""The report's evidence from plain values (pure): what it says, and that it is reproducible."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.canonical import canonical_json
from coldchain.thermal.mkt import Weighting, mkt
from coldchain.thermal.series import Point
from reports.assemble import OWN_RANGE, REPORT_FORMAT, assemble, evidence_hash
from tests.reports.inputs import AS_OF, T0, make_inputs, readings, verdict_row


def test_the_evidence_names_product_lots_shipment_and_logger() -> None:
    ev = assemble(make_inputs())
    assert ev["format"] == REPORT_FORMAT and ev["as_of"] == "2026-11-26T06:00:00Z"
    assert ev["product"]["labelled_range"] == "2 to 8 °C"
    assert ev["lots"] == [
        {"gtin": "09521234543213", "lot": "L42", "expiry": "2027-01-31", "units": 2}
    ]
    assert ev["shipment"]["lane"] == "Rotterdam → Basel"
    assert ev["legs"][0]["mode"] == "road"
    (logger,) = ev["loggers"]
    assert logger["calibration_cert"] == "CAL-1" and logger["calibration_overdue"] is False
    assert logger["interval_s"] == 300


def test_completeness_and_gaps() -> None:
    (logger,) = assemble(make_inputs())["loggers"]
    assert logger["readings"] == 67  # 72 slots, 5 of them inside the gap
    assert logger["expected_readings"] == 73  # 0:00 … 6:00 at 5 min
    assert logger["completeness"] == round(67 / 73, 4)
    # 4:00 → 4:30 is more than 2 × 5 min; the logger is silent from 5:55 to as_of (5 min): no gap
    assert logger["gaps"] == [
        {
            "start": "2026-11-26T04:00:00Z",
            "end": "2026-11-26T04:30:00Z",
            "duration_s": 1800.0,
            "open": False,
        }
    ]


def test_mkt_is_that_of_alerts_mkt_with_the_settings_printed() -> None:
    ev = assemble(make_inputs())
    m = ev["rules"]["mkt"]
    assert m == {
        "delta_h_j_mol": 83144.0,
        "weighting": "step",
        "window_h": 24.0,  # a 2–8 °C product: 24 h (USP <1079.2>)
        "limit_c": 8.0,
        "source": "product defaults",
    }
    points = [Point(ts, t) for ts, t in readings()]
    expected = mkt(points, weighting=Weighting.STEP, max_gap=timedelta(minutes=10))
    assert expected is not None
    whole = ev["loggers"][0]["mkt"]["whole_trip"]
    assert whole["mkt_c"] == round(expected.mkt_c, 3)
    assert whole["above_limit"] is False
    assert whole["mkt_c"] >= whole["time_weighted_mean_c"]


def test_a_constant_series_has_that_mkt() -> None:
    const = tuple((ts, 4.0) for ts, _ in readings())
    logger = dataclasses.replace(make_inputs().loggers[0], readings=const)
    ev = assemble(make_inputs(loggers=[logger]))
    assert ev["loggers"][0]["mkt"]["whole_trip"]["mkt_c"] == 4.0


def test_budget_counts_time_out_and_gaps() -> None:
    budget = assemble(make_inputs())["loggers"][0]["budget"]
    assert budget["time_out_of_range_s"] == 40 * 60
    assert budget["time_in_gaps_s"] == 30 * 60
    assert budget["counted_s"] == 70 * 60  # gaps count as out (worst case)
    assert budget["budget_s"] == 72 * 3600 and budget["status"] == "ok"


def test_excursions_alerts_and_rules_as_evaluated() -> None:
    ev = assemble(make_inputs())
    (exc,) = ev["excursions"]
    assert exc["duration_s"] == 2400.0 and exc["degree_minutes"] == 60.0
    assert exc["thresholds_as_evaluated"] == {"high_c": 8.0, "alarm_delay_min": 15.0}
    (alert,) = ev["alerts"]
    assert alert["acknowledged"] == [
        {"at": "2026-11-26T02:20:00Z", "by": "ana.ruiz", "comment": "door closed"}
    ]
    assert ev["rules"]["temperature"] == {
        "low_c": 2.0,
        "high_c": 8.0,
        "freeze_c": 0.0,
        "alarm_delay_s": 900.0,
    }
    assert ev["totals"]["alarmed_excursions"] == 1


def test_rules_in_force_override_the_product_defaults() -> None:
    rules = {"mkt": {"window_h": 48.0, "weighting": "trapezoid", "limit_c": 7.5, "delta_h_j_mol": 90000.0},
             "budget": {"hours": 10.0, "warning_share": 0.5, "count_gaps_as_out": False},
             "temperature": {"low_c": 3.0, "high_c": 7.0, "alarm_delay_min": 30.0}}  # fmt: skip
    ev = assemble(make_inputs(rules=rules))
    assert ev["rules"]["mkt"]["window_h"] == 48.0 and ev["rules"]["mkt"]["source"] == "rules"
    assert ev["rules"]["budget"] == {
        "hours": 10.0,
        "warning_share": 0.5,
        "count_gaps_as_out": False,
    }
    assert ev["rules"]["temperature"]["alarm_delay_s"] == 1800.0
    assert ev["loggers"][0]["budget"]["counted_s"] == 40 * 60  # gaps not counted now


def test_the_same_inputs_give_the_same_hash_and_any_change_another() -> None:
    a, b = assemble(make_inputs()), assemble(make_inputs())
    assert evidence_hash(a) == evidence_hash(b)
    changed = list(readings())
    changed[10] = (changed[10][0], 5.01)
    logger = dataclasses.replace(make_inputs().loggers[0], readings=tuple(changed))
    assert evidence_hash(assemble(make_inputs(loggers=[logger]))) != evidence_hash(a)
    later = assemble(make_inputs(as_of=AS_OF + timedelta(seconds=1)))
    assert evidence_hash(later) != evidence_hash(a)


def test_the_verdict_at_arrival_names_the_profile_version_it_was_judged_by() -> None:
    stored = verdict_row(profile_version=2, used_s=2400.0)
    (v,) = assemble(make_inputs(verdicts=[stored]))["verdicts"]
    assert (v["gtin"], v["product"], v["verdict"]) == (
        stored["gtin"], stored["product_name"], "exception"
    )  # fmt: skip
    assert (v["profile_version"], v["judged_by"]) == (2, "profile version 2")
    assert [r["message"] for r in v["reasons"]] == [stored["reasons"][0]["message"]]
    hot = {b["key"]: b for b in v["bands"]}["8..25"]
    assert (hot["used_s"], hot["budget_s"], hot["share"]) == (2400.0, 1800.0, 2400.0 / 1800.0)
    assert v["figures"]["freeze_thaw"]["cycles"] == 0 and "bands" not in v["figures"]
    assert v["evaluated_at"] == (AS_OF - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")

    (own,) = assemble(make_inputs(verdicts=[verdict_row(profile_version=None)]))["verdicts"]
    assert (own["profile_version"], own["judged_by"]) == (None, OWN_RANGE)


def test_a_verdict_is_part_of_the_hashed_evidence() -> None:
    judged = evidence_hash(assemble(make_inputs()))
    assert evidence_hash(assemble(make_inputs(verdicts=[]))) != judged
    other = verdict_row(profile_version=3)
    assert evidence_hash(assemble(make_inputs(verdicts=[other]))) != judged


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(min_value=-30, max_value=45, allow_nan=False), min_size=72, max_size=72),
    st.integers(min_value=60, max_value=900),
)
def test_evidence_is_json_values_only(temps: list[float], interval_s: int) -> None:
    """So a frozen snapshot (canonical JSON) loads back to exactly the same evidence."""
    logger = dataclasses.replace(
        make_inputs().loggers[0], readings=readings(temps, gap=False), interval_s=interval_s
    )
    ev = assemble(make_inputs(loggers=[logger]))
    assert json.loads(canonical_json(ev)) == ev
    assert ev["loggers"][0]["first_reading"] == T0.isoformat().replace("+00:00", "Z")


def test_no_product_and_no_readings_still_make_a_report() -> None:
    logger = dataclasses.replace(make_inputs().loggers[0], readings=())
    bare: dict[str, object] = {"product": None, "rules": {}}  # no product: no product layers
    ev = assemble(make_inputs(**bare, loggers=[logger], excursions=[], alerts=[], units=[]))
    assert ev["product"] is None and ev["rules"]["temperature"] is None
    assert ev["loggers"][0]["mkt"] == {"window": None, "whole_trip": None}
    assert ev["loggers"][0]["completeness"] == 0.0


def test_readings_after_the_calibration_due_date_are_flagged() -> None:
    """EU GDP 9.3: a logger past its calibration due date gives readings that are flagged."""
    base = make_inputs()
    (logger,) = base.loggers
    for due, expected in ((T0.date(), []), (T0.date() - timedelta(days=1), list(logger.readings))):
        inputs = make_inputs(loggers=[dataclasses.replace(logger, calibration_due=due)])
        (block,) = assemble(inputs)["loggers"]
        assert block["readings_after_calibration_due"] == len(expected)
        first = expected[0][0].isoformat().replace("+00:00", "Z") if expected else None
        assert block["first_reading_after_calibration_due"] == first

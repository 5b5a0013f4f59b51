"""Impossible travel and scan verdicts, pure (the API cases are in test_api_trace.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.identifiers import UnitKey
from traceability.passport import RecordedExcursion
from traceability.verify import Sighting, haversine_km, impossible_travel, verdict

T = datetime(2025, 5, 1, 8, tzinfo=UTC)
BASEL = (47.5596, 7.5886)
FRANKFURT = (50.1109, 8.6821)
SINGAPORE = (1.3521, 103.8198)


def seen(at: datetime, where: tuple[float, float] | None, place: str = "x") -> Sighting:
    lat, lon = where if where is not None else (None, None)
    return Sighting("urn:epc:id:sgtin:1.2.3", f"e-{at.isoformat()}", at, place, lat, lon)


def test_distances_are_great_circle() -> None:
    assert haversine_km(*BASEL, *BASEL) == 0
    assert haversine_km(*BASEL, *FRANKFURT) == pytest.approx(290, abs=10)
    assert haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088, rel=1e-9)


def test_basel_then_singapore_an_hour_later_is_impossible() -> None:
    trail = [
        seen(T, BASEL, "Basel"),
        seen(T + timedelta(hours=4), FRANKFURT, "Frankfurt"),  # a truck: fine
        seen(T + timedelta(hours=5), SINGAPORE, "Singapore"),  # 10,000 km in an hour
        seen(T + timedelta(hours=30), SINGAPORE, "Singapore"),
        seen(T + timedelta(hours=31), None),  # no position: not judged
    ]
    (flag,) = impossible_travel(trail)
    assert (flag.first.place, flag.second.place) == ("Frankfurt", "Singapore")
    assert flag.speed_kmh > 9000


def test_same_instant_two_far_places_is_impossible_but_one_site_is_not() -> None:
    basel_other_door = (BASEL[0] + 0.01, BASEL[1])
    assert impossible_travel([seen(T, BASEL), seen(T, basel_other_door)]) == []
    (flag,) = impossible_travel([seen(T, BASEL), seen(T, FRANKFURT)])
    assert flag.speed_kmh == math.inf and flag.hours == 0


@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-179, 179),
    hours=st.floats(0.5, 48),
    speed=st.floats(1, 900),
)
def test_travel_at_a_possible_speed_is_never_flagged(
    lat: float, lon: float, hours: float, speed: float
) -> None:
    """Move north/south by speed × time (never faster than 900 km/h): no flag."""
    dlat = min(speed * hours / 111.2, 160.0)
    target = lat + dlat if lat + dlat <= 90 else lat - dlat
    trail = [seen(T, (lat, lon)), seen(T + timedelta(hours=hours), (target, lon))]
    assert impossible_travel(trail) == []


KEY = UnitKey("sgtin", "09506000134352", "S1", None, "urn:epc:id:sgtin:9506000.013435.S1")
UNIT = {
    "epc": KEY.epc,
    "kind": "sgtin",
    "gtin": KEY.gtin,
    "product_name": "Vaccine",
    "lot": "L1",
    "expiry": date(2030, 1, 31),
    "commissioned_at": T - timedelta(days=30),
}


def excursion(review: str | None, *, covers: bool = True) -> RecordedExcursion:
    """Excursion 7 with a signed disposition ``review`` (None: nobody signed one) that was, or
    was not (``covers``), signed on a report holding this excursion row."""
    return RecordedExcursion(
        id=7,
        shipment_id=1,
        shipment_reference="SHP-1",
        device_id="L1",
        direction="high",
        start_ts=T,
        end_ts=T + timedelta(hours=1),
        min_c=8.5,
        max_c=12.0,
        degree_minutes=120.0,
        alarm=True,
        exposed_from=T,
        exposed_to=T + timedelta(hours=1),
        review_disposition=review,
        reviewed_by=None if review is None else "quinn.qa",
        reviewed_at=None if review is None else T + timedelta(days=1),
        disposition_id=None if review is None else 3,
        review_covers=review is not None and covers,
    )


def judge(**overrides: object) -> str:
    args: dict[str, object] = {
        "text": "scan",
        "key": KEY,
        "parse_error": None,
        "unit": UNIT,
        "recalls": [],
        "excursions": [],
        "sightings": [],
        "today": date(2026, 1, 1),
    } | overrides
    return verdict(**args).status  # type: ignore[arg-type]


def test_verdicts_in_order_of_severity() -> None:
    assert judge() == "ok"
    assert judge(key=None, parse_error="bad") == "invalid"
    assert judge(unit=None) == "unknown"
    assert judge(excursions=[excursion(None)]) == "exposed"
    assert judge(excursions=[excursion("quarantine")]) == "exposed"
    assert judge(excursions=[excursion("release")]) == "ok"
    # A release signed before late data superseded the row QA saw does not clear the new row.
    assert judge(excursions=[excursion("release", covers=False)]) == "exposed"
    assert judge(today=date(2030, 2, 1)) == "expired"
    assert judge(today=date(2030, 1, 31)) == "ok"  # the expiry day itself is still good
    assert judge(unit=UNIT | {"commissioned_at": None}) == "suspect"
    assert judge(key=replace(KEY, lot="L9")) == "suspect"  # the label says another lot
    recall = [{"lot": "L1", "reason": "potency"}]
    assert judge(recalls=recall, today=date(2031, 1, 1)) == "recalled"
    v = verdict(
        text="scan",
        key=KEY,
        parse_error=None,
        unit=UNIT,
        recalls=recall,
        excursions=[excursion(None)],
        sightings=[],
        today=date(2031, 1, 1),
    )
    assert v.flags == ("recalled", "expired", "excursion_not_cleared")  # nothing hidden
    assert not v.sellable


def test_an_exposed_unit_says_what_qa_decided_and_which_record_says_so() -> None:
    def reasons(e: RecordedExcursion) -> str:
        v = verdict(
            text="scan",
            key=KEY,
            parse_error=None,
            unit=UNIT,
            recalls=[],
            excursions=[e],
            sightings=[],
            today=date(2026, 1, 1),
        )
        assert v.status == "exposed" and v.uncleared_excursions == (e,)
        (reason,) = v.reasons
        return reason

    assert reasons(excursion(None)).endswith("QA: not reviewed")
    quarantined = reasons(replace(excursion("quarantine"), disposition_lot="L1"))
    assert quarantined.endswith(
        "QA: quarantine (disposition 3, lot L1, by quinn.qa on 2025-05-02 08:00 UTC)"
    )
    assert "QA: reject (disposition 3, whole shipment" in reasons(excursion("reject"))
    stale = reasons(excursion("release", covers=False))
    assert "QA: released before this excursion was recorded; needs a new review" in stale
    assert excursion("release").qa_state == "released" and excursion("release").cleared


def test_a_recall_reason_names_the_scope_who_and_when() -> None:
    recall = {
        "lot": None,
        "reason": "sterility",
        "recalled_by": "quinn.qa",
        "recalled_at": T,
    }
    v = verdict(
        text="scan",
        key=KEY,
        parse_error=None,
        unit=UNIT,
        recalls=[recall],
        excursions=[],
        sightings=[],
        today=date(2026, 1, 1),
    )
    assert v.status == "recalled"
    assert v.reasons == ("recalled (every lot) by quinn.qa on 2025-05-01: sterility",)

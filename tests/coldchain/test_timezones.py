"""The zone conversion is pure: instants across the daylight-saving changes land on the wall
clock the zone's rules give (EU: last Sunday of March and October at 01:00 UTC; US: second
Sunday of March at 2 a.m. local, first Sunday of November at 2 a.m. local)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.timezones import check_zone, city_of, in_zone, zone_label, zone_names


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "wall", "label"),
    [
        # Europe: 2026-03-29 01:00 UTC the clocks go 02:00 CET -> 03:00 CEST.
        (utc(2026, 3, 29, 0, 59), "Europe/Zurich", (2026, 3, 29, 1, 59), "CET"),
        (utc(2026, 3, 29, 1, 0), "Europe/Zurich", (2026, 3, 29, 3, 0), "CEST"),
        # ... and 2026-10-25 01:00 UTC back 03:00 CEST -> 02:00 CET: 02:30 happens twice.
        (utc(2026, 10, 25, 0, 30), "Europe/Zurich", (2026, 10, 25, 2, 30), "CEST"),
        (utc(2026, 10, 25, 1, 30), "Europe/Zurich", (2026, 10, 25, 2, 30), "CET"),
        # New York: 2026-03-08 07:00 UTC 02:00 EST -> 03:00 EDT; 2026-11-01 06:00 UTC back.
        (utc(2026, 3, 8, 6, 59), "America/New_York", (2026, 3, 8, 1, 59), "EST"),
        (utc(2026, 3, 8, 7, 0), "America/New_York", (2026, 3, 8, 3, 0), "EDT"),
        (utc(2026, 11, 1, 5, 30), "America/New_York", (2026, 11, 1, 1, 30), "EDT"),
        (utc(2026, 11, 1, 6, 30), "America/New_York", (2026, 11, 1, 1, 30), "EST"),
        # Southern hemisphere: Sydney is on summer time in December (UTC+11), a day ahead.
        (utc(2026, 12, 5, 14, 5), "Australia/Sydney", (2026, 12, 6, 1, 5), "AEDT"),
        # No letter abbreviation: the offset, spelt so it does not read like a number.
        (utc(2026, 12, 5, 14, 5), "Asia/Dubai", (2026, 12, 5, 18, 5), "UTC+04"),
        (utc(2026, 12, 5, 14, 5), "UTC", (2026, 12, 5, 14, 5), "UTC"),
    ],
)
def test_wall_clock_and_label_across_dst(
    instant: datetime, zone: str, wall: tuple[int, ...], label: str
) -> None:
    local = in_zone(instant, zone)
    assert (local.year, local.month, local.day, local.hour, local.minute) == wall
    assert zone_label(local) == label


def test_a_naive_instant_is_utc() -> None:
    assert in_zone(datetime(2026, 7, 1, 12, 0), "Europe/Zurich").hour == 14


def test_the_repeated_hour_keeps_the_instants_apart() -> None:
    first = in_zone(utc(2026, 10, 25, 0, 30), "Europe/Zurich")
    second = in_zone(utc(2026, 10, 25, 1, 30), "Europe/Zurich")
    assert first.replace(tzinfo=None) == second.replace(tzinfo=None)
    # Same wall clock, told apart by the fold (and the label), an hour apart as instants.
    assert (first.fold, second.fold) == (0, 1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)))
def test_conversion_never_moves_the_instant(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    for zone in ("Europe/Zurich", "America/New_York", "Australia/Sydney", "Asia/Kolkata"):
        assert in_zone(instant, zone) == instant


@pytest.mark.parametrize(
    "bad", ["Europe/Nowhere", "", "+01:00", "CET", "europe/zurich", "US/Eastern"]
)
def test_unknown_or_legacy_zones_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        check_zone(bad)


def test_known_zones() -> None:
    assert check_zone(" Europe/Zurich ") == "Europe/Zurich"
    names = zone_names()
    assert names[0] == "UTC" and "America/New_York" in names and "CET" not in names
    assert list(names[1:]) == sorted(names[1:])
    with pytest.raises(ValueError):
        in_zone(utc(2026, 1, 1), "Europe/Nowhere")


def test_city_of_a_zone() -> None:
    assert city_of("America/New_York") == "New York"
    assert city_of("America/Argentina/Buenos_Aires") == "Buenos Aires"
    assert city_of("UTC") == "UTC"

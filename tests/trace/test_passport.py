"""The passport's pure core: windows, tracks, inherited series and figures, with numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.thermal.limits import Limits
from coldchain.thermal.mkt import Weighting, mkt
from coldchain.thermal.series import Point
from traceability.passport import (
    Profile,
    compute_figures,
    passport_limits,
)
from traceability.tracks import Inherited, Piece, merge_windows, split_tracks, track_points

T = datetime(2025, 1, 1, tzinfo=UTC)
PROFILE = Profile(
    gtin="09506000134352",
    name="Vaccine",
    temp_min_c=2.0,
    temp_max_c=8.0,
    freeze_limit_c=0.0,
    alarm_delay_s=900,
    stability_budget_s=3600,
)


#: PROFILE's range as the rules engine derives it from the product row alone.
LIMITS = Limits(2.0, 8.0, 0.0, timedelta(minutes=15), ("product row",))


def h(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def piece(device: str, start: float | None, end: float | None, shipment: int = 1) -> Piece:
    return Piece(
        device_id=device,
        interval_s=300,
        shipment_id=shipment,
        shipment_reference=f"SHP-{shipment}",
        container="urn:epc:id:sscc:1.1",
        chain=("item", "urn:epc:id:sscc:1.1"),
        start=None if start is None else h(start),
        end=None if end is None else h(end),
    )


def readings(device: str, start: float, end: float, temp: float = 5.0) -> list[Inherited]:
    out, t = [], h(start)
    while t < h(end):
        out.append(Inherited(device, t, temp))
        t += timedelta(minutes=5)
    return out


def test_windows_merge_per_logger_and_tracks_chain_one_logger_at_a_time() -> None:
    pieces = [
        piece("L1", 0, 2),
        piece("L1", 1, 3),  # overlaps the first (a case and its pallet both listed)
        piece("L1", 3, 4),  # touches it
        piece("L2", 4, None),
        piece("L3", 2, 5),  # a second logger at the same time
    ]
    assert merge_windows(pieces) == [
        ("L1", h(0), h(4)),
        ("L2", h(4), None),
        ("L3", h(2), h(5)),
    ]
    tracks = [[(p.device_id, p.start, p.end) for p in t] for t in split_tracks(pieces)]
    assert tracks == [
        [("L1", h(0), h(2)), ("L3", h(2), h(5))],
        [("L1", h(1), h(3)), ("L1", h(3), h(4)), ("L2", h(4), None)],
    ]


def test_a_unit_takes_each_loggers_readings_only_inside_its_pieces() -> None:
    track = [piece("L1", 0, 2), piece("L2", 2, 4)]
    series = readings("L1", -1, 5, 4.0) + readings("L2", -1, 5, 6.0)
    points = track_points(track, series)
    assert {p.ts for p in points if p.temp_c == 4.0} == {r.ts for r in readings("L1", 0, 2)}
    assert {p.ts for p in points if p.temp_c == 6.0} == {r.ts for r in readings("L2", 2, 4)}


def test_figures_of_a_warm_hour_on_the_second_logger() -> None:
    pieces = [piece("L1", 0, 2), piece("L2", 2, 4, shipment=2)]
    series = readings("L1", 0, 2) + readings("L2", 2, 3) + readings("L2", 3, 3.5, 12.0)
    series += readings("L2", 3.5, 4)
    f = compute_figures(
        pieces, series, PROFILE, limits=LIMITS, max_gap=timedelta(minutes=10), now=h(100)
    )
    (track,) = f.tracks
    assert track.as_of == h(4)  # the unit left the monitored chain at 4 h: no trailing gap
    ((_, excursion),) = f.excursions
    assert (excursion.start, excursion.end, excursion.max_c) == (h(3), h(3.5), 12.0)
    assert excursion.alarm  # 30 min > 15 min alarm delay
    usage = f.worst_usage
    assert usage is not None
    assert usage.time_out == timedelta(minutes=30) and usage.time_gap == timedelta(0)
    assert usage.share_used == 0.5 and usage.status == "ok"
    assert f.worst_mkt is not None and f.worst_mkt.weighting is Weighting.STEP


def test_unmonitored_time_between_shipments_is_a_gap_counted_against_the_budget() -> None:
    pieces = [piece("L1", 0, 1), piece("L2", 3, 4, shipment=2)]
    series = readings("L1", 0, 1) + readings("L2", 3, 4)
    f = compute_figures(
        pieces, series, PROFILE, limits=LIMITS, max_gap=timedelta(minutes=10), now=h(10)
    )
    usage = f.worst_usage
    assert usage is not None
    # last L1 reading at 0:55, first L2 reading at 3:00: 2 h 5 min of unknown time
    assert usage.time_gap == timedelta(hours=2, minutes=5)
    assert usage.status == "exhausted"


def test_two_loggers_at_once_give_two_tracks_and_the_worst_counts() -> None:
    pieces = [piece("L1", 0, 2), piece("L2", 0, 2)]
    series = readings("L1", 0, 2) + readings("L2", 0, 1) + readings("L2", 1, 2, 9.0)
    f = compute_figures(
        pieces, series, PROFILE, limits=LIMITS, max_gap=timedelta(minutes=10), now=h(2)
    )
    assert len(f.tracks) == 2
    assert f.worst_usage is not None and f.worst_usage.time_out == timedelta(minutes=55)
    assert [t.devices for t in f.tracks] == [("L1",), ("L2",)]
    assert f.worst_mkt is not None and f.worst_mkt.mkt_c > 5.0


def test_the_passport_judges_by_the_strictest_of_its_shipments_limits() -> None:
    wide = Limits(2.0, 8.0, 0.0, timedelta(minutes=30), ("a",))
    narrow = Limits(3.0, 6.0, None, timedelta(minutes=5), ("b",))
    same, notes = passport_limits({1: wide, 2: wide}, None)
    assert same == wide and notes == ()
    both, notes = passport_limits({1: wide, 2: narrow}, None)
    assert both == Limits(3.0, 6.0, 0.0, timedelta(minutes=5), ("a", "b"))
    assert len(notes) == 1 and "strictest" in notes[0]
    # a shipment without limits (no product on it) counts with the product's own rules
    assert passport_limits({1: None}, narrow) == (narrow, ())
    assert passport_limits({}, narrow) == (narrow, ())
    assert passport_limits({}, None) == (None, ())


@settings(max_examples=60, deadline=None)
@given(
    temps=st.lists(st.floats(-5, 30, allow_nan=False), min_size=3, max_size=40),
    cut=st.integers(1, 39),
)
def test_a_unit_watched_end_to_end_has_the_mkt_of_the_whole_series(
    temps: list[float], cut: int
) -> None:
    """Splitting one logger's series at a container change changes nothing: same MKT, same
    time out of range as the series judged in one piece."""
    cut = min(cut, len(temps) - 1)
    ts = [h(0) + timedelta(minutes=5 * i) for i in range(len(temps))]
    pieces = [piece("L1", 0, cut * 5 / 60), piece("L1", cut * 5 / 60, len(temps) * 5 / 60)]
    series = [Inherited("L1", t, v) for t, v in zip(ts, temps, strict=True)]
    f = compute_figures(
        pieces, series, PROFILE, limits=LIMITS, max_gap=timedelta(minutes=10), now=h(1000)
    )
    whole = mkt(
        [Point(t, v) for t, v in zip(ts, temps, strict=True)],
        weighting=Weighting.STEP,
        max_gap=timedelta(minutes=10),
    )
    got = f.worst_mkt
    assert (got is None) == (whole is None)
    if got is not None and whole is not None:
        assert abs(got.mkt_c - whole.mkt_c) < 1e-9
    assert len(f.tracks) == 1

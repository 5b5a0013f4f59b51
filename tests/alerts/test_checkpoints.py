"""Judging from checkpoints gives the one-pass answer: random readings, random arrival order in
random batches, random checkpoint positions (alerts.checkpoints, alerts.conditions.prefix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.checkpoints import (
    StoredCheckpoint,
    choose_base,
    decode,
    encode,
    fingerprint,
    next_checkpoint_until,
)
from alerts.conditions.arrays import Series, epoch_us
from alerts.conditions.pair import PairEvaluation, evaluate_pair
from alerts.conditions.prefix import (
    Prefix,
    checkpoint_time,
    load_from_us,
    needs_mkt_context,
    prefix_at,
)
from alerts.conditions.windows import window_mkt
from alerts.layers import resolve
from alerts.rules import RuleSet
from coldchain.thermal.mkt import Weighting, rolling_mkt
from coldchain.thermal.series import Point, datetime_from_us

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
GAP = 3 * MIN

Row = tuple[datetime, float | None, float | None, float | None]

RULES = resolve(
    [
        (
            "test",
            RuleSet.model_validate(
                {
                    "temperature": {
                        "low_c": 2,
                        "high_c": 8,
                        "alarm_delay_min": 10,
                        "freeze_c": 0,
                    },
                    "budget": {"hours": 1, "warning_share": 0.5},
                    "mkt": {"limit_c": 7.5, "window_h": 1, "min_coverage": 0.5},
                    "humidity": {"max_rh": 80, "delay_min": 4},
                    "battery": {"below": 0.2, "hysteresis": 0.05},
                    "forecast": {"lookback_min": 30, "horizon_min": 30},
                }
            ),
        )
    ]
)

temps = st.sampled_from([5.0, 5.0, 5.0, 3.0, 7.0, 7.9, -1.0, 0.0, 1.5, 8.5, 9.0, 12.0, 41.0])
rhs = st.one_of(st.none(), st.sampled_from([40.0, 79.0, 81.0, 95.0]))
batteries = st.one_of(st.none(), st.sampled_from([0.1, 0.19, 0.22, 0.3, 0.9]))
# Minutes with readings: runs with gaps (a step of more than GAP leaves a data gap).
steps = st.lists(st.sampled_from([1, 1, 1, 1, 2, 5, 17, 70]), min_size=2, max_size=160)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Row], list[list[Row]], list[tuple[int, int]]]:
    minutes = np.cumsum(draw(steps)).tolist()
    rows: list[Row] = []
    temp: float | None = 5.0
    rh: float | None = None
    battery: float | None = 0.9
    for m in minutes:
        # Values hold for a while (excursions are runs); some readings lack one.
        temp = draw(st.one_of(temps, st.none())) if draw(st.integers(0, 3)) == 0 else temp
        rh = draw(rhs) if draw(st.integers(0, 3)) == 0 else rh
        battery = draw(batteries) if draw(st.integers(0, 5)) == 0 else battery
        rows.append((T0 + m * MIN, temp, rh, battery))
    order = draw(st.permutations(range(len(rows))))
    # Mostly in order with late stragglers, or fully shuffled.
    if draw(st.booleans()):
        order = sorted(order, key=lambda i: i + draw(st.sampled_from([0, 0, 0, 3, 40, 400])))
    cuts = sorted(draw(st.lists(st.integers(1, len(rows)), max_size=12)))
    batches, lo = [], 0
    for c in [*cuts, len(rows)]:
        if c > lo:
            batches.append([rows[i] for i in order[lo:c]])
            lo = c
    # Per round: how long after the latest reading "now" is, and where a checkpoint is asked for.
    rounds = [
        (draw(st.sampled_from([0, 1, 4, 30])), draw(st.sampled_from([0, 3, 10, 60, 200])))
        for _ in batches
    ]
    return rows, batches, rounds


def _same(got: PairEvaluation, expected: PairEvaluation) -> None:
    assert got.excursions == expected.excursions
    assert got.states == expected.states
    assert got.limits == expected.limits


def _judge(
    received: list[Row], stored: list[StoredCheckpoint], fp: str, now: datetime
) -> tuple[Series, Prefix | None, PairEvaluation]:
    everything = Series.from_rows(received)
    chosen = choose_base(stored, fingerprint=fp, changed_from=None, now=now, assigned_until=None)
    prefix = None if chosen is None else chosen.prefix
    series = everything
    if prefix is not None:
        # As the engine reads them: the MKT windows' context only when they could be above.
        series = everything.since(load_from_us(prefix, RULES, now=now))
        if needs_mkt_context(series, prefix, RULES, now=now):
            series = everything.since(load_from_us(prefix, RULES, now=now, mkt_context=True))
    return series, prefix, evaluate_pair(series, RULES, max_gap=GAP, now=now, base=prefix)


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_judging_from_checkpoints_equals_one_pass(
    scenario: tuple[list[Row], list[list[Row]], list[tuple[int, int]]],
) -> None:
    _, batches, rounds = scenario
    fp = fingerprint(RULES, max_gap=GAP, assignments="[open)")
    received: list[Row] = []
    stored: list[StoredCheckpoint] = []
    now = T0
    for batch, (after_min, back_min) in zip(batches, rounds, strict=True):
        received.extend(batch)
        now = max(now, max(r[0] for r in received) + after_min * MIN)
        changed_from = min(r[0] for r in batch)
        # The round drops the checkpoints its changes invalidate, then starts from the latest left.
        stored = [c for c in stored if c.at < changed_from]
        series, prefix, got = _judge(received, stored, fp, now)
        expected = evaluate_pair(Series.from_rows(received), RULES, max_gap=GAP, now=now)
        _same(got, expected)
        # A checkpoint somewhere before the latest reading (a random lag), chained on the base.
        until = epoch_us(now) - back_min * 60_000_000
        at = checkpoint_time(
            series, got.spans, after_us=None if prefix is None else prefix.at_us, until_us=until
        )
        if at is not None:
            taken = prefix_at(
                series,
                at,
                base=prefix,
                excursions=got.excursions or [],
                episodes=got.episodes,
                rules=RULES,
                limits=got.limits,
            )
            assert decode(encode(taken)) == taken
            stored.append(StoredCheckpoint(datetime_from_us(at), fp, decode(encode(taken))))
    # Nothing new arrives: the periodic re-judging at a later "now" starts from the newest.
    later = now + 45 * MIN
    _, _, got = _judge(received, stored, fp, later)
    _same(got, evaluate_pair(Series.from_rows(received), RULES, max_gap=GAP, now=later))


def test_a_checkpoint_is_never_taken_inside_a_run() -> None:
    rows: list[Row] = [(T0 + i * MIN, 9.0 if 10 <= i < 30 else 5.0, None, None) for i in range(60)]
    series = Series.from_rows(rows)
    result = evaluate_pair(series, RULES, max_gap=GAP, now=T0 + 60 * MIN)
    inside = epoch_us(T0 + 20 * MIN)
    at = checkpoint_time(series, result.spans, after_us=None, until_us=inside)
    assert at == epoch_us(T0 + 9 * MIN)  # the last in-range reading before the excursion


def test_checkpoints_hold_only_under_their_fingerprint_before_the_change() -> None:
    prefix = Prefix(at_us=epoch_us(T0), n_temp=1, last_rh_us=None, last_battery_us=None)
    fp = fingerprint(RULES, max_gap=GAP, assignments="a")
    kept = [
        StoredCheckpoint(T0, fp, prefix),
        StoredCheckpoint(T0 + 60 * MIN, fp, prefix),
        StoredCheckpoint(T0 + 120 * MIN, "other rules", prefix),
    ]
    later = T0 + 200 * MIN

    def chosen(**kw: object) -> datetime | None:
        args: dict[str, object] = {
            "fingerprint": fp,
            "changed_from": None,
            "now": later,
            "assigned_until": None,
        }
        args.update(kw)
        c = choose_base(kept, **args)  # type: ignore[arg-type]
        return None if c is None else c.at

    assert chosen() == T0 + 60 * MIN
    assert chosen(changed_from=T0 + 60 * MIN) == T0  # a change at the checkpoint rewinds
    assert chosen(changed_from=T0) is None  # older than every checkpoint: in full
    assert chosen(assigned_until=T0 + 30 * MIN) == T0
    other = resolve([("t", RuleSet.model_validate({"temperature": {"high_c": 9}}))])
    assert fingerprint(other, max_gap=GAP, assignments="a") != fp
    assert fingerprint(RULES, max_gap=2 * GAP, assignments="a") != fp
    assert fingerprint(RULES, max_gap=GAP, assignments="b") != fp


def test_next_checkpoint_is_due_after_the_interval_behind_the_lag() -> None:
    kw = {"now": T0 + 600 * MIN, "assigned_until": None, "interval": 60 * MIN, "lag": 10 * MIN}
    last = T0 + 300 * MIN
    assert next_checkpoint_until(None, last, **kw) == last - 10 * MIN  # type: ignore[arg-type]
    assert next_checkpoint_until(last - 30 * MIN, last, **kw) is None  # type: ignore[arg-type]
    due = next_checkpoint_until(last - 80 * MIN, last, **kw)  # type: ignore[arg-type]
    assert due == last - 10 * MIN
    assert next_checkpoint_until(None, None, **kw) is None  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([1, 1, 2, 7, 30]), min_size=3, max_size=200),
    st.lists(st.floats(-5, 45), min_size=200, max_size=200),
    st.integers(0, 150),
    st.sampled_from(list(Weighting)),
)
def test_window_mkt_does_not_depend_on_where_the_series_starts(
    steps_min: list[int], values: list[float], cut: int, weighting: Weighting
) -> None:
    t = (epoch_us(T0) + np.cumsum(steps_min) * 60_000_000).astype(np.int64)
    v = np.array(values[: len(t)])
    window = 45 * 60_000_000
    kw = {"weighting": weighting, "max_gap_us": 10 * 60_000_000, "delta_h_j_mol": 83_144.0}
    whole, covered = window_mkt(t, v, window, **kw)  # type: ignore[arg-type]
    # The rolling MKT of coldchain.thermal.mkt, to rounding.
    reference = rolling_mkt(
        [Point(datetime_from_us(int(a)), float(b)) for a, b in zip(t, v, strict=True)],
        timedelta(microseconds=window),
        weighting=weighting,
        max_gap=10 * MIN,
    )
    np.testing.assert_allclose(whole, reference["mkt_c"].to_numpy(), rtol=0, atol=1e-9)
    # From any reading on, given its windows' context: bit for bit.
    k = min(cut, len(t) - 1)
    from alerts.conditions.windows import context_start_us

    lo = int(np.searchsorted(t, context_start_us(int(t[k]), window)))
    part, part_covered = window_mkt(t[lo:], v[lo:], window, **kw)  # type: ignore[arg-type]
    assert part[k - lo :].tobytes() == whole[k:].tobytes()
    assert (part_covered[k - lo :] == covered[k:]).all()


@pytest.mark.parametrize("body", ['{"at": 1}', "[]"])
def test_a_malformed_checkpoint_is_refused(body: str) -> None:
    with pytest.raises((KeyError, TypeError)):
        decode(body)


def test_warm_readings_before_the_checkpoint_still_count_in_the_mkt_windows_after_it() -> None:
    # 20 min at 12 °C, a gap, then 5 °C: the window at the checkpoint (minute 24) covers too
    # little time to be judged, the later ones are judged and still above 7.5 °C.
    rows: list[Row] = [(T0 + m * MIN, 12.0, None, None) for m in range(21)]
    rows += [(T0 + m * MIN, 5.0, None, None) for m in range(24, 50)]
    now = T0 + 50 * MIN
    everything = Series.from_rows(rows)
    expected = evaluate_pair(everything, RULES, max_gap=GAP, now=now)
    assert expected.states["mkt"].since == T0 + 34 * MIN
    at = checkpoint_time(
        everything, expected.spans, after_us=None, until_us=epoch_us(T0 + 24 * MIN)
    )
    assert at == epoch_us(T0 + 24 * MIN)
    prefix = prefix_at(
        everything,
        at,
        base=None,
        excursions=expected.excursions or [],
        episodes=expected.episodes,
        rules=RULES,
        limits=expected.limits,
    )
    tail = everything.since(load_from_us(prefix, RULES, now=now))
    assert needs_mkt_context(tail, prefix, RULES, now=now)
    series = everything.since(load_from_us(prefix, RULES, now=now, mkt_context=True))
    _same(evaluate_pair(series, RULES, max_gap=GAP, now=now, base=prefix), expected)


def test_a_low_battery_episode_is_carried_across_checkpoints() -> None:
    # Low from minute 10 (lowest 0.1 before either checkpoint), back up at minute 100.
    battery = {m: 0.9 if m < 10 or m >= 100 else 0.1 if m < 20 else 0.18 for m in range(120)}
    rows: list[Row] = [(T0 + m * MIN, 5.0, 50.0, b) for m, b in battery.items()]
    fp = fingerprint(RULES, max_gap=GAP, assignments="[open)")
    stored: list[StoredCheckpoint] = []
    for upto in (40, 70, 120):
        received = rows[:upto]
        now = T0 + upto * MIN
        series, prefix, got = _judge(received, stored, fp, now)
        expected = evaluate_pair(Series.from_rows(received), RULES, max_gap=GAP, now=now)
        _same(got, expected)
        at = checkpoint_time(
            series,
            got.spans,
            after_us=None if prefix is None else prefix.at_us,
            until_us=epoch_us(now),
        )
        assert at is not None  # inside the episode: it does not stop checkpoints
        taken = prefix_at(
            series,
            at,
            base=prefix,
            excursions=got.excursions or [],
            episodes=got.episodes,
            rules=RULES,
            limits=got.limits,
        )
        assert upto == 120 or taken.battery_low == (epoch_us(T0 + 10 * MIN), 0.1)
        stored.append(StoredCheckpoint(datetime_from_us(at), fp, decode(encode(taken))))
    assert expected.states["battery_low"].value == 0.1
    assert expected.states["battery_low"].ended_at == T0 + 100 * MIN

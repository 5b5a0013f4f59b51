"""An MKT judged against its limit, else the label range's upper limit; the window's coverage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.thermal.mkt_judgement import judge_mkt, window_coverage


@pytest.mark.parametrize(
    ("mkt_c", "mkt_limit_c", "label_high_c", "expected"),
    [
        # the case: 9.79 °C for a 2–8 °C product without an MKT limit is above
        (9.79, None, 8.0, (8.0, "label_range", True)),
        (7.5, None, 8.0, (8.0, "label_range", False)),
        # an MKT limit wins over the label range, either way
        (9.0, 10.0, 8.0, (10.0, "mkt_limit", False)),
        (7.9, 7.5, 8.0, (7.5, "mkt_limit", True)),
        # equal to the limit is within it (as the stability verdict has it)
        (8.0, 8.0, None, (8.0, "mkt_limit", False)),
        (25.0, None, None, (None, "none", None)),
    ],
)
def test_judge_mkt(
    mkt_c: float,
    mkt_limit_c: float | None,
    label_high_c: float | None,
    expected: tuple[float | None, str, bool | None],
) -> None:
    judged = judge_mkt(mkt_c, mkt_limit_c=mkt_limit_c, label_high_c=label_high_c)
    assert (judged.limit_c, judged.basis, judged.above) == expected
    assert judged.mkt_c == mkt_c


def test_coverage_of_one_hour_in_a_day() -> None:
    assert window_coverage(3600, 24 * 3600) == pytest.approx(1 / 24)


@given(st.floats(0, 1e7), st.floats(1, 1e7))
def test_coverage_is_a_share(covered_s: float, window_s: float) -> None:
    share = window_coverage(covered_s, window_s)
    assert 0 <= share <= 1
    assert share == 1 or share == pytest.approx(covered_s / window_s)


@pytest.mark.parametrize(
    ("covered", "window", "field"), [(1, 0, "window_s"), (-1, 10, "covered_s")]
)
def test_coverage_refuses_nonsense_naming_the_field(
    covered: float, window: float, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        window_coverage(covered, window)

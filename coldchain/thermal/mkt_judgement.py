"""An MKT judged against a limit: the product's MKT limit when it has one, else the upper limit
of its labelled storage range, and how much of the MKT window the readings cover.

Pure, one definition each, so the shipment page (and whatever else shows an MKT with a verdict)
judges alike:

* **limit** (:func:`judge_mkt`): the MKT limit in force (the rules' ``mkt.limit_c``, else the
  product's ``mkt_limit_c``: :func:`reports.assemble.mkt_settings`) when there is one; otherwise
  the label range's upper limit (``products.temp_max_c``), because an MKT above the highest
  temperature the product may be stored at cannot be "ok" (a 2–8 °C product at an MKT of
  9.79 °C). With neither, there is nothing to judge by (``above`` is None). An MKT *equal* to
  the limit is within it, as the stability verdict has it (:mod:`coldchain.thermal.stability`).
* **coverage** (:func:`window_coverage`): the time the readings cover (gaps excluded, as
  :func:`coldchain.thermal.mkt.mkt` counts it) over the nominal window, capped at 1. One hour of
  readings in a 24 h window is a coverage of about 4 %: the MKT is over that hour, not 24 h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Basis", "MKTJudgement", "judge_mkt", "window_coverage"]

#: What the MKT was judged against.
Basis = Literal["mkt_limit", "label_range", "none"]


@dataclass(frozen=True, slots=True)
class MKTJudgement:
    """An MKT's verdict: the limit used, what that limit is, and whether the MKT is above it."""

    mkt_c: float
    limit_c: float | None
    basis: Basis
    above: bool | None


def judge_mkt(
    mkt_c: float, *, mkt_limit_c: float | None, label_high_c: float | None
) -> MKTJudgement:
    """Judge ``mkt_c`` against its MKT limit, else the label range's upper limit (module docstring)."""
    if mkt_limit_c is not None:
        return MKTJudgement(mkt_c, mkt_limit_c, "mkt_limit", mkt_c > mkt_limit_c)
    if label_high_c is not None:
        return MKTJudgement(mkt_c, label_high_c, "label_range", mkt_c > label_high_c)
    return MKTJudgement(mkt_c, None, "none", None)


def window_coverage(covered_s: float, window_s: float) -> float:
    """The share of a window of ``window_s`` seconds covered by ``covered_s`` seconds of data."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    if covered_s < 0:
        raise ValueError(f"covered_s must not be negative, got {covered_s}")
    return min(1.0, covered_s / window_s)

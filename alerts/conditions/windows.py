"""The trailing-window MKT of every reading, with numerics that do not depend on where the series
starts: what lets a round re-judge the MKT rule from a checkpoint (:mod:`alerts.checkpoints`).

:func:`coldchain.thermal.mkt.rolling_mkt` scales its terms by the largest one of the *whole*
series and sums them in blocks as long as the longest window *of the series*: exact enough, but a
reading a month earlier changes the last bits of every window. Here the intervals are cut into
blocks of ``window`` µs **aligned on the epoch**, each with its own reference term and its own
prefix and suffix sums. A window (shorter than a block) spans at most two blocks, so each
reading's MKT depends only on the blocks its window touches: given every reading from
:func:`context_start_us` on, a tail of the series gives bit for bit the values of the whole. The
formula, the weighting and the gap rule are those of :mod:`coldchain.thermal.mkt` (its
``_interval_terms``); the values agree with ``rolling_mkt`` to rounding.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from coldchain.thermal.mkt import KELVIN_OFFSET, R_J_MOL_K, Weighting, _interval_terms

__all__ = ["context_start_us", "window_mkt"]

# A within-block difference that cancelled more than this many digits' worth is summed directly.
_MAX_CANCELLATION = 1e6


def context_start_us(first_us: int, window_us: int) -> int:
    """The earliest reading time the windows of readings from ``first_us`` on depend on."""
    return ((first_us - window_us) // window_us) * window_us


def window_mkt(
    t_us: NDArray[np.int64],
    temp_c: NDArray[np.float64],
    window_us: int,
    *,
    weighting: Weighting,
    max_gap_us: int,
    delta_h_j_mol: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per reading: the MKT of the window ending at it (NaN when it covers no time) and the time
    it covers (µs); ``t_us`` strictly increasing."""
    n = len(t_us)
    mkt_c = np.full(n, np.nan)
    if n < 2:
        return mkt_c, np.zeros(n, dtype=np.int64)
    index = np.arange(n)
    starts = np.searchsorted(t_us, t_us - window_us, side="left")
    weight, log_term = _interval_terms(
        t_us, temp_c, weighting, timedelta(microseconds=max_gap_us), delta_h_j_mol
    )
    cum_weight = np.concatenate(([0], np.cumsum(weight)))  # integers: exact whatever the start
    covered_us = (cum_weight[index] - cum_weight[starts]).astype(np.int64)
    credited = weight > 0
    # Blocks of intervals by the epoch-aligned block of their start time.
    block = t_us[:-1] // window_us
    first_of_block = np.flatnonzero(np.concatenate(([True], block[1:] != block[:-1])))
    block_no = np.cumsum(np.concatenate(([True], block[1:] != block[:-1]))) - 1
    pos = np.arange(n - 1) - first_of_block[block_no]
    n_blocks, width = len(first_of_block), int(pos.max()) + 1
    ref_grid = np.full((n_blocks, width), -np.inf)
    ref_grid[block_no, pos] = np.where(credited, log_term, -np.inf)
    ref = ref_grid.max(axis=1)
    ref = np.where(np.isfinite(ref), ref, 0.0)
    terms = np.where(credited, weight * np.exp(log_term - ref[block_no]), 0.0)
    grid = np.zeros((n_blocks, width))
    grid[block_no, pos] = terms
    # Padding zeros add exactly nothing, so the sums are those of each block's own terms.
    prefix = np.cumsum(grid, axis=1)[block_no, pos]
    suffix = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1][block_no, pos]

    covered = covered_us > 0
    j = np.flatnonzero(covered)
    lo, last = starts[j], j - 1
    b_lo, b_last = block_no[lo], block_no[last]
    same = b_lo == b_last
    left = np.where(pos[lo] > 0, prefix[np.maximum(lo - 1, 0)], 0.0)
    after = np.minimum(last + 1, n - 2)
    right = np.where((last + 1 < n - 1) & (block_no[after] == b_last), suffix[after], 0.0)
    use_left = left <= right
    within = np.where(use_left, prefix[last] - left, suffix[lo] - right)
    subtracted = np.where(use_left, left, right)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_within = np.log(within) + ref[b_lo]
        log_across = np.logaddexp(
            np.log(suffix[lo]) + ref[b_lo], np.log(prefix[last]) + ref[b_last]
        )
    log_sum = np.where(same, log_within, log_across)
    suspect = same & ((within <= 0) | (subtracted > _MAX_CANCELLATION * within))
    for k in np.flatnonzero(suspect | ~np.isfinite(log_sum)):
        part = slice(int(lo[k]), int(last[k]) + 1)
        total = math.fsum(terms[part])
        if suspect[k] and total > 0:
            log_sum[k] = math.log(total) + ref[b_lo[k]]
        if not math.isfinite(log_sum[k]):
            # exp(term - ref) underflowed (absurd ΔH or spread): this window in the log domain.
            keep = credited[part]
            logs = np.log(weight[part][keep]) + log_term[part][keep]
            top = float(logs.max())
            log_sum[k] = top + math.log(float(np.exp(logs - top).sum()))
    log_mean = np.full(n, np.nan)
    log_mean[j] = log_sum - np.log(covered_us[j].astype(np.float64))
    with np.errstate(invalid="ignore"):
        mkt_c = np.where(covered, (delta_h_j_mol / R_J_MOL_K) / -log_mean - KELVIN_OFFSET, np.nan)
    return mkt_c, covered_us

"""Merging sparse histogram bins so that every reported bin holds enough patients.

Used for figures and for disclosure control of histograms of changes: a bin with
fewer than ``min_count`` patients is never shown on its own. The rule is deterministic
and depends only on the histogram (no randomness, no data-dependent tuning), in the
spirit of minimum-cell-count rules of statistical disclosure control (e.g. Hundepool
et al. 2012, *Statistical Disclosure Control*, §5.2 on threshold rules).
"""

from __future__ import annotations

import math

import numpy as np


def merge_small_bins(
    values: np.ndarray, counts: np.ndarray, min_count: int
) -> list[tuple[float, float, int]]:
    """Merge adjacent grid bins into contiguous intervals of at least ``min_count``.

    Rule:

    1. Empty bins before the first and after the last occupied bin are dropped.
    2. Greedy left to right: bins are accumulated into the current interval until its
       count reaches ``min_count``; the interval is then closed and the next starts at
       the next grid bin (empty interior bins belong to the interval that spans them).
    3. A last interval that stays below ``min_count`` is folded into the interval
       before it.

    Parameters
    ----------
    values:
        Grid values of the bins, strictly ascending (e.g. changes in grid units or in
        the measure's units).
    counts:
        Non-negative integer counts per bin.
    min_count:
        Minimum count of every output interval, ≥ 1.

    Returns
    -------
    list of (low, high, count)
        ``low`` and ``high`` are the first and last grid values the interval covers
        (inclusive); intervals are contiguous on the grid and counts sum to the total.
        An empty list when the total count is below ``min_count``.

    Notes
    -----
    The outermost bounds are the smallest and largest observed values; anything released
    passes through :func:`coarsen_outer_bounds` first so that no extreme is disclosed.
    """
    values = np.asarray(values)
    counts = np.asarray(counts)
    if values.ndim != 1 or values.shape != counts.shape:
        raise ValueError("values and counts must be one-dimensional arrays of equal length")
    if not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0):
        raise ValueError("counts must be non-negative integers")
    if values.size > 1 and not np.all(np.diff(values) > 0):
        raise ValueError("values must be strictly ascending")
    if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer):
        raise ValueError(f"min_count must be a positive integer, got {min_count!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be a positive integer, got {min_count}")
    counts = counts.astype(np.int64)
    if int(counts.sum()) < min_count:
        return []
    occupied = np.flatnonzero(counts)
    first, last = int(occupied[0]), int(occupied[-1])
    values, counts = values[first : last + 1], counts[first : last + 1]
    cumulative = np.cumsum(counts)
    # Greedy closing points: each interval ends at the first bin where the count
    # accumulated since the previous end reaches min_count. Jumps in the cumulative
    # count make a loop over closed intervals (at most total / min_count) necessary.
    ends: list[int] = []
    start_total = 0
    while True:
        end = int(np.searchsorted(cumulative, start_total + min_count, side="left"))
        if end >= cumulative.size:
            break
        ends.append(end)
        start_total = int(cumulative[end])
    if ends[-1] != cumulative.size - 1:
        ends[-1] = cumulative.size - 1  # fold the short tail into the last interval
    bins: list[tuple[float, float, int]] = []
    start = 0
    previous_total = 0
    for end in ends:
        total = int(cumulative[end])
        bins.append((float(values[start]), float(values[end]), total - previous_total))
        start, previous_total = end + 1, total
    return bins


def outer_edge_step(low: float, high: float) -> float:
    """A round step for outer bounds: half the power of ten below the span (5 for tens)."""
    span = max(high - low, 1e-9)
    return 10.0 ** math.floor(math.log10(span)) / 2


def coarsen_outer_bounds(
    bins: list[tuple[float, float, int]],
) -> list[tuple[float, float, int]]:
    """The bins with the outermost bounds moved outward, strictly, to a round step.

    :func:`merge_small_bins` starts the first interval at the smallest and ends the last
    at the largest observed value — each a single patient's value. Released histograms
    instead say "somewhere from the round number below": the first low bound is floored
    and the last high bound ceiled to :func:`outer_edge_step`, and moved one more step
    when it was already round, so neither equals an observed value. Counts are unchanged.
    """
    if not bins:
        return []
    low, high = bins[0][0], bins[-1][1]
    step = outer_edge_step(low, high)
    new_low = math.floor(round(low / step, 9)) * step
    new_high = math.ceil(round(high / step, 9)) * step
    if new_low == low:
        new_low -= step
    if new_high == high:
        new_high += step
    widened = list(bins)
    widened[0] = (new_low, widened[0][1], widened[0][2])
    widened[-1] = (widened[-1][0], new_high, widened[-1][2])
    return widened

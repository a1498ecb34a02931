"""Sample quantiles of a multiset given as a histogram, exactly as R's ``quantile()``.

The pooled summary holds, for each grid value of a change (or of follow-up), how many
patients have it. R computes its default quantile (type 7 of Hyndman & Fan 1996) on the
sorted raw vector; here the order statistics are looked up in the cumulative counts, so
a multiset of a million patients is never expanded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sscjak.shared.statistics.histogram_input import checked_histogram


def order_statistic(values: np.ndarray, counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The ``ranks``-th smallest elements (1-based) of the multiset ``values × counts``.

    ``cumulative[i]`` is the number of elements ≤ ``values[i]``; the k-th smallest element
    is the first value whose cumulative count reaches k.
    """
    cumulative = np.cumsum(counts)
    positions = np.searchsorted(cumulative, np.asarray(ranks, dtype=np.int64), side="left")
    return np.asarray(values)[positions]


def quantile_type7(values: np.ndarray, counts: np.ndarray, probs: Sequence[float]) -> list[float]:
    """R's ``quantile(x, probs, type = 7)`` of the multiset where ``values[i]`` occurs
    ``counts[i]`` times.

    Type 7 (Hyndman & Fan 1996, "Sample quantiles in statistical packages", Am. Stat.
    50:361-365; R's default): with n elements sorted as x(1) ≤ … ≤ x(n), the index is
    ``h = 1 + (n − 1)·p``, ``lo = floor(h)``, ``hi = ceiling(h)`` and
    ``Q(p) = (1 − (h − lo))·x(lo) + (h − lo)·x(hi)``. As in R's ``quantile.default``, the
    interpolation is only evaluated when ``x(hi) != x(lo)`` so that tied order statistics
    return the tied value itself, bit for bit.

    Parameters
    ----------
    values:
        Distinct values, strictly ascending (e.g. change grid values as floats).
    counts:
        Non-negative integer multiplicities, same length as ``values``.
    probs:
        Probabilities in [0, 1].

    Raises
    ------
    ValueError
        When the total count is 0, a probability lies outside [0, 1], or the histogram
        is malformed.
    """
    values, counts = checked_histogram(values, counts, ascending=True)
    total = int(counts.sum())
    if total == 0:
        raise ValueError("quantiles of an empty sample are undefined (total count is 0)")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("probs must be a sequence of numbers")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"probs must lie in [0, 1], got {list(probs)}")
    index = 1 + (total - 1) * p
    lo = np.floor(index).astype(np.int64)
    hi = np.ceil(index).astype(np.int64)
    x_lo = order_statistic(values, counts, lo).astype(np.float64)
    x_hi = order_statistic(values, counts, hi).astype(np.float64)
    result = x_lo.copy()
    interpolate = (index > lo) & (x_hi != x_lo)
    h = (index - lo)[interpolate]
    result[interpolate] = (1 - h) * x_lo[interpolate] + h * x_hi[interpolate]
    return [float(q) for q in result]

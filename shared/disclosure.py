"""Disclosure control, in one place: which pooled cells are shown, and how histograms
are released.

Every rule that decides what of a pooled result may be shown lives here, and every
module that shows a result asks here: the results file (``coordinator/results``), the
terminal table, the report (which only *checks* what it is given, never merges again)
and the plan's description at approval.

* A change cell with pooled n below the plan's minimum cell is suppressed
  (:func:`is_suppressed`), and says so in words (:func:`suppression_rule`).
* A histogram is released as contiguous bins of at least the minimum cell
  (:func:`merge_small_bins`), its outermost bounds moved outward to a round step so that
  no single patient's value is disclosed (:func:`released_bins`).

The rule is a deterministic threshold rule of statistical disclosure control (Hundepool
et al. 2012, *Statistical Disclosure Control*, §5.2 on threshold rules): no randomness,
no data-dependent tuning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

#: The minimum cell of a plan that does not name one (docs/statistics.md).
DEFAULT_MIN_CELL = 5
#: The largest minimum cell a plan may ask for.
MAX_MIN_CELL = 1000

#: A released histogram bin: (first grid value, last grid value, count).
Bin = tuple[float, float, int]


class DisclosureError(ValueError):
    """Something about to be shown would break the minimum-cell rule."""


def is_suppressed(n: int, min_cell: int) -> bool:
    """Whether a cell of ``n`` patients is suppressed under the minimum cell ``min_cell``."""
    return n < min_cell


def suppression_rule(min_cell: int) -> str:
    """The rule that suppresses a cell, as results files and reports state it."""
    return f"pooled n < {min_cell}"


#: Fewest centres whose estimates a heterogeneity result may rest on, and fewest
#: participants a node answers a random-effects exchange for. The released row holds
#: four numbers that depend on the centres' estimates (θᵢ, vᵢ): Q, τ², and the
#: random-effects estimate and SE. A centre that knows its own estimate has 2(k − 1)
#: unknowns for the others: with k = 3 the four numbers determine them. The coordinator
#: sees six sums (Σw, Σwθ, Σwθ², Σw², Σw*, Σw*θ) and knows no estimate: 2k unknowns,
#: determined for k = 3. From k = 4 on both systems have more unknowns than equations.
MIN_HETEROGENEITY_CENTRES = 4


def heterogeneity_suppression_rule() -> str:
    """Why a cell's heterogeneity between centres is not shown, in words."""
    return (
        f"fewer than {MIN_HETEROGENEITY_CENTRES} centres contribute an estimate (the "
        "result would determine each centre's own)"
    )


#: Why a part that passes the minimum cell is suppressed all the same.
SECONDARY_SUPPRESSION_RULE = (
    "suppressed with another stratum (the whole less the other strata would give it)"
)


def secondary_suppressions(sizes: Sequence[int], suppressed: Sequence[bool]) -> list[int]:
    """Which shown parts of a whole must be suppressed too (secondary suppression).

    When the whole is released and exactly one part with patients is suppressed, the
    whole less the shown parts gives that part. Then the smallest shown part with
    patients is suppressed as well (Hundepool et al. 2012, §5.2 on secondary
    suppression). Returns the indices to suppress in addition; none otherwise.
    """
    hidden = [i for i, (n, off) in enumerate(zip(sizes, suppressed, strict=True)) if off and n]
    shown = [i for i, (n, off) in enumerate(zip(sizes, suppressed, strict=True)) if not off and n]
    if len(hidden) != 1 or not shown:
        return []
    return [min(shown, key=lambda i: (sizes[i], i))]


def suppression_sentence(min_cell: int) -> str:
    """The one sentence that tells a reader what suppression means."""
    return (
        f"Cells with {suppression_rule(min_cell)} are suppressed: no statistic is shown; "
        f"every histogram bar holds at least {min_cell} patients."
    )


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
    passes through :func:`released_bins`, which moves them outward so that no extreme is
    disclosed.
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


def outer_edge_step(low: Fraction, high: Fraction) -> Fraction:
    """A round step for outer bounds: half the power of ten below the span (5 for tens).

    Exact: the span is compared with powers of ten as fractions, never as floats.
    """
    span = max(high - low, Fraction(1, 10**9))
    exponent = 0
    while Fraction(10) ** (exponent + 1) <= span:
        exponent += 1
    while Fraction(10) ** exponent > span:
        exponent -= 1
    return Fraction(10) ** exponent / 2


def _on_grid(value: Fraction, grid: Fraction) -> float:
    """A multiple of ``grid`` as the float with the shortest decimal form (-2.4, not
    -2.4000000000000004)."""
    decimals = 0
    while (grid * 10**decimals).denominator != 1:
        decimals += 1
    return round(float(value), decimals)


def released_bins(
    units: np.ndarray,
    counts: np.ndarray,
    min_count: int,
    unit_value: Fraction,
    edge_grid: Fraction,
    lowest: Fraction | None = None,
) -> list[list[float]]:
    """A histogram as results.json releases it: ``[low, high, count]`` in the measure's unit.

    ``units`` are integer grid values (grid units of a change, days of follow-up) worth
    ``unit_value`` each. Bins are merged to ≥ ``min_count`` patients
    (:func:`merge_small_bins`); ``low`` and ``high`` are the first and last grid value a
    bin holds. The outermost bounds, each a single patient's value, are moved outward to
    :func:`outer_edge_step`, one more step when already on it, in exact fractions so that
    float noise can never leave an outer bound on a patient's value, and then outward to
    ``edge_grid``; inner bounds are rounded to
    ``edge_grid``. So every edge is written with the decimals of the measure's resolution.
    ``lowest`` is the smallest value the quantity can take (0 days of follow-up): the
    outer bound never goes below it, which discloses nothing the domain does not.
    """
    merged = merge_small_bins(units, counts, min_count)
    if not merged:
        return []
    bins = [
        [Fraction(int(lo)) * unit_value, Fraction(int(hi)) * unit_value, c] for lo, hi, c in merged
    ]
    low, high = bins[0][0], bins[-1][1]
    step = outer_edge_step(low, high)
    outer_low = math.floor(low / step) * step
    outer_high = math.ceil(high / step) * step
    outer_low -= step if outer_low == low else 0
    outer_high += step if outer_high == high else 0
    outer_low = math.floor(outer_low / edge_grid) * edge_grid
    outer_high = math.ceil(outer_high / edge_grid) * edge_grid
    if lowest is not None:
        outer_low = max(outer_low, lowest)
    released = []
    for index, (lo, hi, count) in enumerate(bins):
        lo = outer_low if index == 0 else round(lo / edge_grid) * edge_grid
        hi = outer_high if index == len(bins) - 1 else round(hi / edge_grid) * edge_grid
        released.append([_on_grid(lo, edge_grid), _on_grid(hi, edge_grid), int(count)])
    return released


def check_releasable_bins(bins: Sequence[Sequence[float]], min_cell: int) -> list[Bin]:
    """The non-empty bins of a released histogram, after checking each holds ≥ ``min_cell``.

    Raises :class:`DisclosureError` naming the first bin below the minimum: a results file
    whose histograms were not released by :func:`released_bins` is refused, not merged.
    """
    checked: list[Bin] = []
    for low, high, count in bins:
        if 0 < int(count) < min_cell:
            raise DisclosureError(
                f"a histogram bin of {int(count)} patients is below the minimum cell {min_cell}"
            )
        if int(count) > 0:
            checked.append((float(low), float(high), int(count)))
    return checked

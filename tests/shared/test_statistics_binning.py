"""Tests of sscjak.shared.statistics.binning: the documented merge rule and its invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscjak.shared.statistics.binning import coarsen_outer_bounds, merge_small_bins


def test_greedy_merge_with_tail_folded_back() -> None:
    values = np.arange(-3, 5)
    counts = np.array([0, 1, 2, 0, 5, 1, 1, 0])
    # Leading -3 and trailing 4 dropped; [-2,-1] reaches 3; [0] has 5; the tail [1..3]
    # with 2 < 3 patients is folded into the interval before it.
    assert merge_small_bins(values, counts, 3) == [(-2.0, -1.0, 3), (0.0, 3.0, 7)]


def test_min_count_one_keeps_occupied_bins_and_absorbs_empty_interior() -> None:
    values = np.arange(-3, 5)
    counts = np.array([0, 1, 2, 0, 5, 1, 1, 0])
    assert merge_small_bins(values, counts, 1) == [
        (-2.0, -2.0, 1),
        (-1.0, -1.0, 2),
        (0.0, 1.0, 5),
        (2.0, 2.0, 1),
        (3.0, 3.0, 1),
    ]


def test_total_below_minimum_gives_nothing() -> None:
    assert merge_small_bins(np.arange(4), np.array([1, 0, 2, 1]), 5) == []
    assert merge_small_bins(np.arange(3), np.zeros(3, dtype=np.int64), 1) == []


def test_everything_in_one_bin_when_just_enough() -> None:
    assert merge_small_bins(np.array([0.1, 0.2, 0.3]), np.array([2, 1, 2]), 5) == [(0.1, 0.3, 5)]


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_count"):
        merge_small_bins(np.arange(3), np.array([1, 1, 1]), 0)
    with pytest.raises(ValueError, match="ascending"):
        merge_small_bins(np.array([2, 1]), np.array([1, 1]), 1)
    with pytest.raises(ValueError, match="non-negative"):
        merge_small_bins(np.array([1, 2]), np.array([1, -1]), 1)


@given(st.lists(st.integers(0, 12), min_size=1, max_size=80), st.integers(1, 25))
def test_invariants(raw_counts: list[int], min_count: int) -> None:
    counts = np.array(raw_counts, dtype=np.int64)
    values = np.arange(counts.size) * 0.25 - 3
    bins = merge_small_bins(values, counts, min_count)
    if counts.sum() < min_count:
        assert bins == []
        return
    occupied = np.flatnonzero(counts)
    assert sum(b[2] for b in bins) == counts.sum()
    assert all(b[2] >= min_count for b in bins)
    assert bins[0][0] == values[occupied[0]] and bins[-1][1] == values[occupied[-1]]
    for (_, high, _), (low, _, _) in itertools.pairwise(bins):
        assert low == pytest.approx(high + 0.25)  # contiguous on the grid
    for low, high, count in bins:
        inside = (values >= low - 1e-9) & (values <= high + 1e-9)
        assert counts[inside].sum() == count
    # Greedy: every interval but the last is closed as soon as it reaches min_count.
    for low, high, _ in bins[:-1]:
        inside = (values >= low - 1e-9) & (values < high - 1e-9)
        assert counts[inside].sum() < min_count


def test_released_outer_bounds_are_never_the_observed_extremes() -> None:
    values = np.array([-13, -7, -2, 0, 3, 11])
    counts = np.array([5, 4, 6, 7, 2, 3])
    bins = merge_small_bins(values, counts, 5)
    widened = coarsen_outer_bounds(bins)
    assert [c for *_, c in widened] == [c for *_, c in bins]
    assert widened[0][0] < -13 and widened[-1][1] > 11
    assert widened[0][0] % 5 == 0 and widened[-1][1] % 5 == 0
    assert widened[1:-1] == bins[1:-1]
    # already round extremes move one more step out
    round_bins = coarsen_outer_bounds([(-10.0, 0.0, 5), (1.0, 10.0, 5)])
    assert round_bins[0][0] == -15.0 and round_bins[-1][1] == 15.0

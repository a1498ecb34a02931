"""Tests of sscjak.shared.disclosure: suppression, the merge rule and its invariants, release."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscjak.shared.disclosure import (
    DisclosureError,
    check_releasable_bins,
    is_suppressed,
    merge_small_bins,
    released_bins,
    secondary_suppressions,
    suppression_rule,
    suppression_sentence,
)


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
    one = Fraction(1)
    released = released_bins(values, counts, 5, one, one)
    assert [c for *_, c in released] == [c for *_, c in bins]
    assert released[0][0] < -13 and released[-1][1] > 11
    assert released[0][0] % 5 == 0 and released[-1][1] % 5 == 0
    assert [tuple(b) for b in released[1:-1]] == bins[1:-1]
    # already round extremes move one more step out
    round_released = released_bins(np.array([-10, 0, 1, 10]), np.array([3, 2, 2, 3]), 5, one, one)
    assert round_released[0][0] == -15.0 and round_released[-1][1] == 15.0


def test_a_lowest_value_bounds_the_released_outer_edge() -> None:
    one = Fraction(1)
    released = released_bins(np.array([0, 3]), np.array([5, 5]), 5, one, one, Fraction(0))
    assert released[0][0] == 0.0


def test_suppression_is_below_the_minimum_cell_and_says_so() -> None:
    assert is_suppressed(4, 5) and not is_suppressed(5, 5)
    assert suppression_rule(5) == "pooled n < 5"
    assert suppression_rule(5) in suppression_sentence(5)


def test_a_released_histogram_is_checked_never_merged_again() -> None:
    bins = [(-3.0, -1.0, 6), (0.0, 0.0, 0), (1.0, 2.0, 7)]
    assert check_releasable_bins(bins, 5) == [(-3.0, -1.0, 6), (1.0, 2.0, 7)]
    with pytest.raises(DisclosureError, match="bin of 3 patients"):
        check_releasable_bins([(0.0, 1.0, 7), (2.0, 3.0, 3)], 5)


def test_one_suppressed_part_takes_the_smallest_shown_part_with_it() -> None:
    # whole = 30 + 12 + 3: with 3 suppressed alone, 45 − 30 − 12 would give it
    assert secondary_suppressions([30, 12, 3], [False, False, True]) == [1]
    # two parts already suppressed, or none: nothing more
    assert secondary_suppressions([30, 2, 3], [False, True, True]) == []
    assert secondary_suppressions([30, 12, 9], [False, False, False]) == []
    # an empty suppressed part hides nothing; an empty shown part is no cover
    assert secondary_suppressions([30, 0, 12], [False, True, False]) == []
    assert secondary_suppressions([30, 0, 3], [False, False, True]) == [0]

"""Tests of sscjak.shared.statistics.quantiles against R literals, numpy and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscjak.shared.statistics.quantiles import order_statistic, quantile_type7

PROBS = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]


def histogram(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(raw, return_counts=True)
    return values, counts.astype(np.int64)


def test_tied_integer_changes_match_r() -> None:
    # R 4.2.2: sprintf("%.17g", quantile(c(-2,-1,-1,0,0,0,1,3,3,7), c(0,.1,.25,.5,.75,.9,1)))
    #   -> -2 -1.1000000000000001 -0.75 0 2.5 3.3999999999999986 7
    expected = [-2, -1.1000000000000001, -0.75, 0, 2.5, 3.3999999999999986, 7]
    values, counts = histogram(np.array([-2, -1, -1, 0, 0, 0, 1, 3, 3, 7], dtype=float))
    assert quantile_type7(values, counts, PROBS) == pytest.approx(expected, rel=1e-15, abs=0)


def test_tied_tenth_grid_changes_match_r() -> None:
    # R 4.2.2: sprintf("%.17g", quantile(c(-0.3,0.1,0.1,0.1,0.2,0.7,1.1), c(0,.1,.25,.5,.75,.9,1)))
    #   -> -0.29999999999999999 -0.059999999999999956 0.10000000000000001
    #      0.10000000000000001 0.44999999999999996 0.8600000000000001 1.1000000000000001
    expected = [-0.3, -0.059999999999999956, 0.1, 0.1, 0.44999999999999996, 0.8600000000000001, 1.1]
    units, counts = histogram(np.array([-3, 1, 1, 1, 2, 7, 11]))
    result = quantile_type7(units / 10, counts, PROBS)
    assert result == pytest.approx(expected, rel=1e-12)
    # A tied order statistic is returned as the tied value itself, as R does.
    assert result[2] == 0.1 and result[3] == 0.1


def test_follow_up_months_match_r() -> None:
    # R 4.2.2: sprintf("%.17g", quantile(c(16.9,10.3,31.8,12.0,24.5,3.2), c(0,.1,.25,.5,.75,.9,1)))
    #   -> 3.2000000000000002 6.75 10.725000000000001 14.449999999999999
    #      22.600000000000001 28.149999999999999 31.800000000000001
    expected = [3.2, 6.75, 10.725, 14.45, 22.6, 28.15, 31.8]
    values, counts = histogram(np.array([16.9, 10.3, 31.8, 12.0, 24.5, 3.2]))
    assert quantile_type7(values, counts, PROBS) == pytest.approx(expected, rel=1e-12)


def test_single_value_is_every_quantile() -> None:
    # R 4.2.2: quantile(5, c(0,.1,.25,.5,.75,.9,1)) -> 5 5 5 5 5 5 5
    assert quantile_type7(np.array([5.0]), np.array([1]), PROBS) == [5.0] * len(PROBS)


def test_huge_counts_are_not_expanded() -> None:
    values = np.array([-1.0, 0.0, 2.0])
    counts = np.array([400_000_000, 100_000_001, 500_000_000], dtype=np.int64)
    q1, median, q3 = quantile_type7(values, counts, [0.25, 0.5, 0.75])
    assert (q1, median, q3) == (-1.0, 0.0, 2.0)


def test_empty_histogram_and_bad_input_are_refused() -> None:
    with pytest.raises(ValueError, match="total count is 0"):
        quantile_type7(np.array([1.0, 2.0]), np.array([0, 0]), [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantile_type7(np.array([1.0]), np.array([3]), [1.5])
    with pytest.raises(ValueError, match="ascending"):
        quantile_type7(np.array([2.0, 1.0]), np.array([1, 1]), [0.5])
    with pytest.raises(ValueError, match=">= 0"):
        quantile_type7(np.array([1.0, 2.0]), np.array([1, -1]), [0.5])
    with pytest.raises(ValueError, match="integers"):
        quantile_type7(np.array([1.0, 2.0]), np.array([1.0, 1.0]), [0.5])


def test_order_statistic_skips_empty_bins() -> None:
    values = np.array([1, 2, 3, 4])
    counts = np.array([2, 0, 0, 1])
    assert list(order_statistic(values, counts, np.array([1, 2, 3]))) == [1, 1, 4]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-60, 60), min_size=1, max_size=300),
    st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_equals_numpy_linear_quantile_of_raw_vector(raw: list[int], probs: list[float]) -> None:
    units = np.array(raw)
    values, counts = histogram(units)
    expected = np.quantile(units / 4, probs, method="linear")
    result = quantile_type7(values / 4, counts, probs)
    np.testing.assert_allclose(result, expected, rtol=1e-9, atol=1e-12)

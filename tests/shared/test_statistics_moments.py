"""Tests of sscjak.shared.statistics.moments against R literals, numpy/scipy and exactness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.moments import (
    baseline_followup_correlation,
    mean_from_sums,
    pearson_from_sums,
    sd_from_sums,
    sum_squared_deviations_times_n,
)


def sums(x0_units: np.ndarray, d_units: np.ndarray) -> tuple[int, int, int, int, int, int]:
    x0 = [int(v) for v in x0_units]
    d = [int(v) for v in d_units]
    return (
        len(x0),
        sum(x0),
        sum(v * v for v in x0),
        sum(d),
        sum(v * v for v in d),
        sum(a * b for a, b in zip(x0, d, strict=True)),
    )


def test_fvc_cell_matches_r() -> None:
    # R 4.2.2: x0 <- c(72.4,80.1,65.0,90.3,77.7,58.9); d <- c(1.2,-0.5,3.4,0.0,2.2,-1.1)
    #   sprintf("%.17g", c(mean(d), sd(d), mean(x0), sd(x0), cor(x0, x0 + d)))
    #   -> 0.8666666666666667 1.7200775176330474 74.066666666666663 11.208330235439471
    #      0.98817127962363727
    x0 = np.array([724, 801, 650, 903, 777, 589])
    d = np.array([12, -5, 34, 0, 22, -11])
    n, s_x0, s_x0sq, s_d, s_dsq, s_x0d = sums(x0, d)
    assert mean_from_sums(n, s_d, 10) == pytest.approx(0.8666666666666667, rel=1e-15)
    assert sd_from_sums(n, s_d, s_dsq, 10) == pytest.approx(1.7200775176330474, rel=1e-14)
    assert mean_from_sums(n, s_x0, 10) == pytest.approx(74.066666666666663, rel=1e-15)
    assert sd_from_sums(n, s_x0, s_x0sq, 10) == pytest.approx(11.208330235439471, rel=1e-14)
    r = baseline_followup_correlation(n, s_x0, s_x0sq, s_d, s_dsq, s_x0d)
    assert r == pytest.approx(0.98817127962363727, rel=1e-14)


def test_degenerate_cells() -> None:
    assert mean_from_sums(0, 0) is None
    assert sd_from_sums(1, 7, 49) is None  # R: sd(7) is NA
    assert sd_from_sums(3, 6, 12) == 0.0  # all values 2: a valid SD of 0
    # constant baseline: r undefined (R: cor() is NA with a warning)
    assert baseline_followup_correlation(3, 6, 12, 3, 5, 6) is None
    assert pearson_from_sums(1, 1, 1, 1, 1, 1) is None


def test_no_cancellation_with_large_offsets() -> None:
    # Values 10^9 + {0, 1, 2}: float one-pass formulas lose everything; exact ints do not.
    x = [10**9, 10**9 + 1, 10**9 + 2]
    assert sd_from_sums(3, sum(x), sum(v * v for v in x)) == 1.0
    assert sum_squared_deviations_times_n(3, sum(x), sum(v * v for v in x)) == 6


def test_numpy_integers_accepted_and_floats_refused() -> None:
    assert mean_from_sums(np.int64(4), np.int64(10), 10) == 0.25
    with pytest.raises(ValueError, match="exact integer"):
        mean_from_sums(4, 1.5)
    with pytest.raises(ValueError, match="inconsistent"):
        sd_from_sums(2, 10, 1)
    with pytest.raises(ValueError, match="units_per_value"):
        mean_from_sums(2, 2, 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(50, 2000), st.integers(-400, 400)),
        min_size=2,
        max_size=200,
    )
)
def test_equal_to_raw_vector_computation(pairs: list[tuple[int, int]]) -> None:
    x0 = np.array([p[0] for p in pairs])
    d = np.array([p[1] for p in pairs])
    n, s_x0, s_x0sq, s_d, s_dsq, s_x0d = sums(x0, d)
    assert mean_from_sums(n, s_d, 10) == pytest.approx(np.mean(d / 10), rel=1e-9, abs=1e-12)
    assert sd_from_sums(n, s_d, s_dsq, 10) == pytest.approx(
        np.std(d / 10, ddof=1), rel=1e-9, abs=1e-12
    )
    r = baseline_followup_correlation(n, s_x0, s_x0sq, s_d, s_dsq, s_x0d)
    x1 = x0 + d
    if np.all(x0 == x0[0]) or np.all(x1 == x1[0]):
        assert r is None
    else:
        assert r == pytest.approx(stats.pearsonr(x0, x1).statistic, rel=1e-9, abs=1e-12)

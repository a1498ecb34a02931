"""Tests of sscjak.shared.statistics.signed_rank against R literals, scipy and exact DPs."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.signed_rank import (
    EXACT_CONDITIONAL_MAX_WORK,
    SignedRankResult,
    absolute_change_ranks,
    exact_conditional_p,
    exact_p_value,
    signed_rank_null_counts,
    signed_rank_test,
)


def histogram(raw: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(np.asarray(raw, dtype=np.int64), return_counts=True)
    return values, counts.astype(np.int64)


def result_of(raw: list[int] | np.ndarray) -> SignedRankResult:
    return signed_rank_test(*histogram(raw))


def r_plus(raw: np.ndarray) -> float:
    """V computed on the raw vector: sum of midranks of |d| over positive d, zeros dropped."""
    nonzero = raw[raw != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    return float(ranks[nonzero > 0].sum())


# --- R reference values (R 4.2.2, wilcox.test defaults; p printed with sprintf("%.17g")) ---


def test_exact_branch_matches_r() -> None:
    # R 4.2.2: wilcox.test(c(-3,-2,1,4,5,7)) -> V = 16, p = 0.31250000000000011 (exact)
    result = result_of([-3, -2, 1, 4, 5, 7])
    assert (result.statistic_v, result.method) == (16.0, "exact")
    assert result.p_value == pytest.approx(0.31250000000000011, rel=1e-12)
    # R 4.2.2: wilcox.test(c(-1,2,3,-4,5,6,7,8,-9,10,11,12)) -> V = 64,
    #   p = 0.052246093750000035 (exact)
    result = result_of([-1, 2, 3, -4, 5, 6, 7, 8, -9, 10, 11, 12])
    assert (result.statistic_v, result.method) == (64.0, "exact")
    assert result.p_value == pytest.approx(0.052246093750000035, rel=1e-12)
    # R 4.2.2: x49 <- (1:49) * ifelse((1:49) %% 4 == 0, -1, 1); wilcox.test(x49)
    #   -> V = 913, p = 0.0023352991113441139 (exact: 49 < 50)
    x49 = np.arange(1, 50) * np.where(np.arange(1, 50) % 4 == 0, -1, 1)
    result = result_of(x49)
    assert (result.statistic_v, result.method, result.n_nonzero) == (913.0, "exact", 49)
    assert result.p_value == pytest.approx(0.0023352991113441139, rel=1e-12)


def test_single_change_matches_r() -> None:
    # R 4.2.2: wilcox.test(-5) -> V = 0, p = 1 (exact)
    result = result_of([-5])
    assert (result.statistic_v, result.p_value, result.method) == (0.0, 1.0, "exact")


def test_ties_branch_matches_r() -> None:
    # R 4.2.2: wilcox.test(c(-3,-2,-2,1,4,5,5,6)) -> V = 27, p = 0.23280433193453251
    #   (normal approximation with continuity correction, "cannot compute exact p-value with ties")
    result = result_of([-3, -2, -2, 1, 4, 5, 5, 6])
    assert (result.statistic_v, result.method, result.has_ties) == (27.0, "normal", True)
    assert result.p_value == pytest.approx(0.23280433193453251, rel=1e-12)
    # Tenth-grid FVC changes, ties are grid ties (half ranks):
    # R 4.2.2: wilcox.test(c(0.1,-0.3,0.2,0.2,1.5,-0.1,0.4)) -> V = 21.5, p = 0.23504445075311819
    result = result_of([1, -3, 2, 2, 15, -1, 4])
    assert (result.statistic_v, result.method) == (21.5, "normal")
    assert result.p_value == pytest.approx(0.23504445075311819, rel=1e-12)


def test_zeros_branch_matches_r() -> None:
    # R 4.2.2: wilcox.test(c(-3,-2,-2,0,1,4,5)) -> V = 12, p = 0.83348400438895931
    result = result_of([-3, -2, -2, 0, 1, 4, 5])
    assert (result.statistic_v, result.method, result.n_zero, result.n_nonzero) == (
        12.0,
        "normal",
        1,
        6,
    )
    assert result.p_value == pytest.approx(0.83348400438895931, rel=1e-12)
    # R 4.2.2: wilcox.test(c(rep(-2,7), rep(-1,12), rep(0,9), rep(1,4), rep(3,2), rep(5,1)))
    #   -> V = 109, p = 0.083914895683320348
    raw = [-2] * 7 + [-1] * 12 + [0] * 9 + [1] * 4 + [3] * 2 + [5]
    result = result_of(raw)
    assert (result.statistic_v, result.n_zero, result.n_nonzero) == (109.0, 9, 26)
    assert result.p_value == pytest.approx(0.083914895683320348, rel=1e-12)
    # R 4.2.2: wilcox.test(c(0,0,2)) -> V = 1, p = 1 (normal: zeros present)
    result = result_of([0, 0, 2])
    assert (result.statistic_v, result.p_value, result.method) == (1.0, 1.0, "normal")


def test_fifty_or_more_nonzero_uses_normal_like_r() -> None:
    # R 4.2.2: x50 <- (1:50) * ifelse((1:50) %% 4 == 0, -1, 1); wilcox.test(x50)
    #   -> V = 963, p = 0.0017050250555130208 (normal, no ties: n = 50 is not < 50)
    x50 = np.arange(1, 51) * np.where(np.arange(1, 51) % 4 == 0, -1, 1)
    result = result_of(x50)
    assert (result.statistic_v, result.method, result.has_ties) == (963.0, "normal", False)
    assert result.p_value == pytest.approx(0.0017050250555130208, rel=1e-12)
    # R 4.2.2: x60 <- (1:60) * ifelse((1:60) %% 3 == 0, -1, 1); wilcox.test(x60)
    #   -> V = 1200, p = 0.036226494178786643
    x60 = np.arange(1, 61) * np.where(np.arange(1, 61) % 3 == 0, -1, 1)
    result = result_of(x60)
    assert (result.statistic_v, result.method) == (1200.0, "normal")
    assert result.p_value == pytest.approx(0.036226494178786643, rel=1e-12)


def test_all_zero_changes_have_no_p_value() -> None:
    # R 4.2.2: wilcox.test(c(0,0,0)) -> V = 0, p-value = NaN
    result = result_of([0, 0, 0])
    assert (result.statistic_v, result.p_value, result.method) == (0.0, None, None)
    assert (result.n_nonzero, result.n_zero) == (0, 3)
    assert exact_conditional_p(*histogram([0, 0, 0])) is None


def test_empty_histogram_and_bad_input_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one change"):
        signed_rank_test(np.array([1, 2]), np.array([0, 0]))
    with pytest.raises(ValueError, match="integer grid units"):
        signed_rank_test(np.array([0.5, 1.0]), np.array([1, 1]))
    with pytest.raises(ValueError, match="repeat"):
        signed_rank_test(np.array([1, 1]), np.array([1, 1]))
    with pytest.raises(ValueError, match=">= 0"):
        signed_rank_test(np.array([1, 2]), np.array([1, -1]))


def test_unsorted_histogram_and_empty_bins_give_same_result() -> None:
    values, counts = histogram([-3, -2, -2, 0, 1, 4, 5])
    order = np.array([3, 0, 4, 1, 2, 5])
    padded_values = np.concatenate([values[order], [9, -9]])
    padded_counts = np.concatenate([counts[order], [0, 0]])
    assert signed_rank_test(padded_values, padded_counts) == signed_rank_test(values, counts)


def test_midranks_are_rs_rank_of_absolute_values() -> None:
    ranks = absolute_change_ranks(*histogram([-3, -2, -2, 0, 1, 2, 5, 5, 5]))
    assert list(ranks.absolute_change) == [1, 2, 3, 5]
    assert list(ranks.tie_size) == [1, 3, 1, 3]
    # R: rank(abs(c(-3,-2,-2,1,2,5,5,5))) -> 5 3 3 1 3 7 7 7 (doubled: 10 6 6 2 6 14 14 14)
    assert list(ranks.doubled_midrank) == [2, 6, 10, 14]
    assert ranks.doubled_statistic_v == 2 + 6 + 3 * 14


def test_null_counts_are_the_signed_rank_distribution() -> None:
    counts = signed_rank_null_counts(4)
    # subsets of {1,2,3,4} by sum: 0:1 1:1 2:1 3:2 4:2 5:2 6:2 7:2 8:1 9:1 10:1
    assert list(counts) == [1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1]
    assert int(signed_rank_null_counts(49).sum()) == 2**49
    # scipy's exact two-sided p for V = 3, n = 4: psignrank symmetric tails
    assert exact_p_value(3, 4) == float(Fraction(2 * 5, 16))


# --- scipy and the raw-vector computation, on random data ---


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-25, 25), min_size=1, max_size=120))
def test_equals_raw_vector_computation_and_scipy(raw_list: list[int]) -> None:
    raw = np.array(raw_list)
    result = result_of(raw)
    nonzero = raw[raw != 0]
    assert result.n_nonzero == nonzero.size
    assert result.n_zero == raw.size - nonzero.size
    assert result.has_ties == (np.unique(np.abs(nonzero)).size < nonzero.size)
    assert result.statistic_v == r_plus(raw)
    if nonzero.size == 0:
        assert result.p_value is None
        return
    exact = nonzero.size < 50 and not result.has_ties and result.n_zero == 0
    assert result.method == ("exact" if exact else "normal")
    method = "exact" if exact else "approx"
    reference = stats.wilcoxon(raw, zero_method="wilcox", correction=True, method=method)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-400, 400), min_size=50, max_size=400))
def test_normal_branch_equals_scipy_on_fvc_like_changes(raw_list: list[int]) -> None:
    raw = np.array(raw_list)
    if np.all(raw == 0):
        return
    result = result_of(raw)
    reference = stats.wilcoxon(raw, zero_method="wilcox", correction=True, method="approx")
    assert result.method == "normal"
    assert result.statistic_v == r_plus(raw)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


def test_large_cohort_matches_scipy() -> None:
    rng = np.random.default_rng(20261125)
    raw = rng.integers(-12, 10, size=200_000)
    values, counts = histogram(raw)
    result = signed_rank_test(values, counts)
    reference = stats.wilcoxon(raw, zero_method="wilcox", correction=True, method="approx")
    assert result.statistic_v == r_plus(raw)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)


# --- exact conditional p-value (exactRankTests::wilcox.exact) ---


def exact_conditional_reference(raw: list[int] | np.ndarray) -> Fraction:
    """exactRankTests' paired two-sided pperm, by exact rational enumeration of the
    sign-flip distribution of the doubled statistic (a dictionary DP over patients)."""
    ranks = absolute_change_ranks(*histogram(raw))
    distribution = {0: 1}
    for score, size in zip(ranks.doubled_midrank, ranks.tie_size, strict=True):
        for _ in range(int(size)):
            shifted: dict[int, int] = dict(distribution)
            for total, ways in distribution.items():
                shifted[total + int(score)] = shifted.get(total + int(score), 0) + ways
            distribution = shifted
    observed = ranks.doubled_statistic_v
    patterns = 2**ranks.n_nonzero
    lower = sum(w for t, w in distribution.items() if t <= observed)
    if 2 * lower <= patterns:
        p = Fraction(2 * lower, patterns)
    else:
        p = Fraction(2 * sum(w for t, w in distribution.items() if t >= observed), patterns)
    return min(p, Fraction(1))


def test_exact_conditional_matches_r_exactranktests() -> None:
    # R 4.2.2, exactRankTests 0.8-35: wilcox.exact(c(-3,-2,-2,1,4,5,5,6)) -> V = 27, p = 0.25
    assert exact_conditional_p(*histogram([-3, -2, -2, 1, 4, 5, 5, 6])) == pytest.approx(
        0.25, rel=1e-12
    )
    # R: wilcox.exact(c(-3,-2,-2,0,1,4,5)) -> V = 12, p = 0.8125
    assert exact_conditional_p(*histogram([-3, -2, -2, 0, 1, 4, 5])) == pytest.approx(
        0.8125, rel=1e-12
    )
    # R: wilcox.exact(c(rep(-2,7), rep(-1,12), rep(0,9), rep(1,4), rep(3,2), rep(5,1)))
    #   -> V = 109, p = 0.084573954343795776
    raw = [-2] * 7 + [-1] * 12 + [0] * 9 + [1] * 4 + [3] * 2 + [5]
    assert exact_conditional_p(*histogram(raw)) == pytest.approx(0.084573954343795776, rel=1e-10)
    # R: wilcox.exact(c(1,1,1,2,2)) -> V = 15, p = 0.0625
    assert exact_conditional_p(*histogram([1, 1, 1, 2, 2])) == pytest.approx(0.0625, rel=1e-12)
    # R: wilcox.exact(c(-1,1)) -> V = 1.5, p = 1
    assert exact_conditional_p(*histogram([-1, 1])) == 1.0
    # n = 85 >= 50: wilcox.exact's own default would switch to its normal approximation,
    # so R was told exact = TRUE (our function is always exact):
    # R: wilcox.exact(c(rep(-1,10), rep(2,30), rep(-3,25), rep(4,20)), exact = TRUE)
    #   -> V = 2275, p = 0.047201948900975288
    raw = [-1] * 10 + [2] * 30 + [-3] * 25 + [4] * 20
    assert exact_conditional_p(*histogram(raw)) == pytest.approx(0.047201948900975288, rel=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-6, 8), min_size=1, max_size=70))
def test_exact_conditional_equals_rational_enumeration(raw: list[int]) -> None:
    if all(v == 0 for v in raw):
        assert exact_conditional_p(*histogram(raw)) is None
        return
    expected = float(exact_conditional_reference(raw))
    assert exact_conditional_p(*histogram(raw)) == pytest.approx(expected, rel=1e-9)


def test_exact_conditional_without_ties_equals_psignrank() -> None:
    raw = [-1, 2, 3, -4, 5, 6, 7, 8, -9, 10, 11, 12]
    # Without ties or zeros the conditional and unconditional exact tests coincide.
    assert exact_conditional_p(*histogram(raw)) == pytest.approx(result_of(raw).p_value, rel=1e-12)


def test_exact_conditional_tiny_p_has_relative_accuracy() -> None:
    # 150 positive and 6 negative changes over few tie groups: p ~ 1e-37.
    raw = [1] * 50 + [2] * 50 + [3] * 50 + [-1] * 3 + [-2] * 3
    expected = exact_conditional_reference(raw)
    assert float(expected) < 1e-30
    assert exact_conditional_p(*histogram(raw)) == pytest.approx(float(expected), rel=1e-9)


def test_exact_conditional_extreme_tail_in_closed_form() -> None:
    # 3 changes of -1 (doubled midrank 4) and 600 of +2 (doubled midrank 607): only sign
    # patterns with every +2 group member positive reach 2V, so p = 2·2^-600 = 2^-599.
    p = exact_conditional_p(np.array([-1, 2]), np.array([3, 600]))
    assert p == pytest.approx(2.0**-599, rel=1e-11)
    # One of the 600 turned negative: P(T <= 619) = (1 + 600)·2^-600, p = 2·601·2^-600.
    p = exact_conditional_p(np.array([-2, -1, 2]), np.array([1, 3, 599]))
    assert p == pytest.approx(2 * 601 * 2.0**-600, rel=1e-11)


def test_exact_conditional_with_two_thousand_patients() -> None:
    rng = np.random.default_rng(7)
    raw = rng.integers(-9, 12, size=2000)  # mRSS-like: 20 distinct |d| values
    values, counts = histogram(raw)
    p = exact_conditional_p(values, counts)
    assert p is not None and 0 < p < 1
    # Close to the normal approximation at this size (not equal: different tests).
    assert p == pytest.approx(result_of(raw).p_value, rel=0.05)


def test_exact_conditional_returns_none_beyond_size_limit() -> None:
    # 3000 patients over ~1600 distinct |d| values: FFT length × groups exceeds the limit.
    rng = np.random.default_rng(3)
    raw = rng.integers(-800, 820, size=3000)
    values, counts = histogram(raw)
    groups = np.unique(np.abs(raw[raw != 0])).size
    # The FFT must span at least ±5 standard deviations of 2V, σ(2V) ≥ √(n³/3).
    assert groups * 10 * (3000**3 / 3) ** 0.5 > EXACT_CONDITIONAL_MAX_WORK
    assert exact_conditional_p(values, counts) is None

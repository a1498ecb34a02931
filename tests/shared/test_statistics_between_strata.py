"""Tests of sscjak.shared.statistics.between_strata against R literals, scipy and raw rows."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.between_strata import (
    KruskalWallisResult,
    RankSumResult,
    exact_p_value,
    kruskal_wallis,
    rank_sum_null_counts,
    strata_ranks,
    two_sample_wilcoxon,
)


def histograms(*groups: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-stratum histograms of the raw changes on the common grid of observed values."""
    pooled = [v for group in groups for v in group]
    values = np.unique(np.asarray(pooled, dtype=np.int64))
    counts = np.zeros((len(groups), values.size), dtype=np.int64)
    for k, group in enumerate(groups):
        for v in group:
            counts[k, np.searchsorted(values, v)] += 1
    return values, counts


def kw(*groups: list[int]) -> KruskalWallisResult:
    return kruskal_wallis(*histograms(*groups))


def rank_sum(*groups: list[int]) -> RankSumResult:
    return two_sample_wilcoxon(*histograms(*groups))


# --- R reference values: R 4.2.2, stats::kruskal.test / wilcox.test formula methods, numbers
# printed with sprintf("%.17g"). Each dataset is d <- c(<groups concatenated>) and
# g <- rep(c("a", "b", ...), <group sizes>) unless stated.

KW_TIES3 = ([-3, -1, 0, 0, 2, 5], [-2, 0, 1, 1, 4], [-5, -4, -1, 0, 3])
KW_NOTIES3 = ([1, 4, 9], [2, 3, 8, 11], [5, 6, 7, 10, 12])
KW_TIES2 = ([-2, -2, 0, 1, 3], [-1, 0, 0, 4, 4, 6])
# Tenths grid: R got the values in the unit (−0.3, 0, 0.2, …), here in grid units.
KW_LARGE4 = (
    [-3] * 4 + [0] * 10 + [2] * 7 + [5] * 3,
    [-3] * 2 + [0] * 5 + [1] * 9 + [9] * 6,
    [-6] * 3 + [0] * 8 + [2] * 2 + [3] * 4,
    [1] * 5,
)


def test_kruskal_wallis_matches_r() -> None:
    # R: kruskal.test(d ~ g), d <- c(-3,-1,0,0,2,5, -2,0,1,1,4, -5,-4,-1,0,3),
    #   g <- rep(c("a","b","c"), c(6,5,5)) -> H = 1.8544161676646695, df = 2,
    #   p = 0.39565681041949258
    result = kw(*KW_TIES3)
    assert (result.df, result.n, result.has_ties) == (2, 16, True)
    assert result.statistic_h == pytest.approx(1.8544161676646695, rel=1e-9)
    assert result.p_value == pytest.approx(0.39565681041949258, rel=1e-9)
    # R: d <- c(1,4,9, 2,3,8,11, 5,6,7,10,12), g <- rep(c("a","b","c"), c(3,4,5))
    #   -> H = 1.7179487179487154, df = 2, p = 0.4235963173564396
    result = kw(*KW_NOTIES3)
    assert (result.df, result.has_ties) == (2, False)
    assert result.statistic_h == pytest.approx(1.7179487179487154, rel=1e-9)
    assert result.p_value == pytest.approx(0.4235963173564396, rel=1e-9)
    # R: d <- c(-2,-2,0,1,3, -1,0,0,4,4,6), g <- rep(c("a","b"), c(5,6))
    #   -> H = 1.6791277258566972, df = 1, p = 0.19504039754870225
    result = kw(*KW_TIES2)
    assert result.df == 1
    assert result.statistic_h == pytest.approx(1.6791277258566972, rel=1e-9)
    assert result.p_value == pytest.approx(0.19504039754870225, rel=1e-9)
    # R: d <- c(rep(-0.3,4), rep(0,10), rep(0.2,7), rep(0.5,3), rep(-0.3,2), rep(0,5),
    #   rep(0.1,9), rep(0.9,6), rep(-0.6,3), rep(0,8), rep(0.2,2), rep(0.3,4), rep(0.1,5)),
    #   g <- rep(c("a","b","c","d"), c(24,22,17,5))
    #   -> H = 3.0843748196875871, df = 3, p = 0.37879830147973392
    result = kw(*KW_LARGE4)
    assert (result.df, result.n) == (3, 68)
    assert result.statistic_h == pytest.approx(3.0843748196875871, rel=1e-9)
    assert result.p_value == pytest.approx(0.37879830147973392, rel=1e-9)
    # R: kruskal.test(c(1, 2) ~ c("a","b")) -> H = 1, df = 1, p = 0.31731050786291415
    result = kw([1], [2])
    assert (result.statistic_h, result.df) == (1.0, 1)
    assert result.p_value == pytest.approx(0.31731050786291415, rel=1e-9)


def test_kruskal_wallis_drops_an_empty_stratum_like_r() -> None:
    # R: d <- c(-3,-1,0,0,2,5, -5,-4,-1,0,3),
    #   g <- factor(rep(c("a","c"), c(6,5)), levels = c("a","b","c")); kruskal.test(d ~ g)
    #   -> H = 1.0317829457364336, df = 1 (not 2: factor(g) drops the unused level "b"),
    #   p = 0.30974027259738607
    result = kw([-3, -1, 0, 0, 2, 5], [], [-5, -4, -1, 0, 3])
    assert (result.df, result.stratum_sizes) == (1, (6, 0, 5))
    assert result.statistic_h == pytest.approx(1.0317829457364336, rel=1e-9)
    assert result.p_value == pytest.approx(0.30974027259738607, rel=1e-9)


def test_kruskal_wallis_all_tied_and_refusals() -> None:
    # R: kruskal.test(c(2,2,2,2) ~ c("a","a","b","b")) -> H = NaN, df = 1, p = NaN
    result = kw([2, 2], [2, 2])
    assert (result.statistic_h, result.df, result.p_value) == (None, 1, None)
    # R: kruskal.test(c(1,2,3) ~ factor(c("a","a","a"), levels = c("a","b")))
    #   -> Error: all observations are in the same group
    with pytest.raises(ValueError, match="same stratum"):
        kw([1, 2, 3], [])
    with pytest.raises(ValueError, match="same stratum"):
        kruskal_wallis(np.array([1, 2]), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="two-dimensional"):
        kruskal_wallis(np.array([1, 2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="integer grid units"):
        kruskal_wallis(np.array([0.5, 1.0]), np.array([[1, 1], [1, 0]]))
    with pytest.raises(ValueError, match="repeat"):
        kruskal_wallis(np.array([1, 1]), np.array([[1, 1], [1, 0]]))
    with pytest.raises(ValueError, match=">= 0"):
        kruskal_wallis(np.array([1, 2]), np.array([[1, -1], [1, 0]]))
    with pytest.raises(ValueError, match="one entry per value"):
        kruskal_wallis(np.array([1, 2, 3]), np.array([[1, 1], [1, 0]]))


def test_rank_sum_exact_branch_matches_r() -> None:
    # R: wilcox.test(d ~ g), d <- c(1,5,7,9,13, 2,3,4,8,10,11), g <- rep(c("a","b"), c(5,6))
    #   -> W = 16, p = 0.93073593073593086 (exact)
    result = rank_sum([1, 5, 7, 9, 13], [2, 3, 4, 8, 10, 11])
    assert (result.statistic_w, result.method, result.n_x, result.n_y) == (16.0, "exact", 5, 6)
    assert result.p_value == pytest.approx(0.93073593073593086, rel=1e-9)
    # R: d <- c(seq(1, 97, by = 2), seq(2, 98, by = 2) + ifelse(seq(2, 98, by = 2) > 60, 100, 0)),
    #   g <- rep(c("a","b"), c(49,49)) -> W = 1005, p = 0.16660765573235375 (exact: 49 < 50)
    evens = [v + (100 if v > 60 else 0) for v in range(2, 99, 2)]
    result = rank_sum(list(range(1, 98, 2)), evens)
    assert (result.statistic_w, result.method, result.n_x, result.n_y) == (1005.0, "exact", 49, 49)
    assert result.p_value == pytest.approx(0.16660765573235375, rel=1e-9)
    # R: wilcox.test(c(1,4,5,8, 2,3,6,7) ~ rep(c("a","b"), c(4,4))) -> W = 8, p = 1 (exact)
    result = rank_sum([1, 4, 5, 8], [2, 3, 6, 7])
    assert (result.statistic_w, result.p_value, result.method) == (8.0, 1.0, "exact")
    # R: wilcox.test(c(1, 2) ~ c("a","b")) -> W = 0, p = 1 (exact)
    result = rank_sum([1], [2])
    assert (result.statistic_w, result.p_value, result.method) == (0.0, 1.0, "exact")


def test_rank_sum_normal_branch_matches_r() -> None:
    # R: d <- c(-2,-2,0,1,3, -1,0,0,4,4,6), g <- rep(c("a","b"), c(5,6))
    #   -> W = 8, p = 0.22887818446256719 (ties: normal with continuity correction)
    result = rank_sum([-2, -2, 0, 1, 3], [-1, 0, 0, 4, 4, 6])
    assert (result.statistic_w, result.method, result.has_ties) == (8.0, "normal", True)
    assert result.p_value == pytest.approx(0.22887818446256719, rel=1e-9)
    # R: d <- c(1:50, c(25.5, 60, 70)), g <- rep(c("a","b"), c(50,3))
    #   -> W = 25, p = 0.056746816489381437 (no ties, but n_x = 50 is not < 50: normal)
    # Grid of halves: the values are doubled here.
    result = rank_sum([2 * v for v in range(1, 51)], [51, 120, 140])
    assert (result.statistic_w, result.method, result.has_ties) == (25.0, "normal", False)
    assert result.p_value == pytest.approx(0.056746816489381437, rel=1e-9)
    # R: d <- c(rep(-3,4), rep(0,10), rep(2,7), rep(5,3), rep(-3,2), rep(0,5), rep(1,9),
    #   rep(9,6)), g <- rep(c("a","b"), c(24,22)) -> W = 209, p = 0.21886283525693015
    result = rank_sum(*KW_LARGE4[:2])
    assert (result.statistic_w, result.method) == (209.0, "normal")
    assert result.p_value == pytest.approx(0.21886283525693015, rel=1e-9)


def test_rank_sum_empty_stratum_all_tied_and_refusals() -> None:
    # R: d <- c(1,5,7,9,13, 2,3,4,8,10,11),
    #   g <- factor(rep(c("a","c"), c(5,6)), levels = c("a","b","c")); wilcox.test(d ~ g)
    #   -> W = 16, p = 0.93073593073593086: three levels are accepted, the unused one dropped
    result = rank_sum([1, 5, 7, 9, 13], [], [2, 3, 4, 8, 10, 11])
    assert (result.statistic_w, result.strata, result.method) == (16.0, (0, 2), "exact")
    assert result.p_value == pytest.approx(0.93073593073593086, rel=1e-9)
    # R: wilcox.test(c(3,3,3,3,3) ~ c("a","a","b","b","b")) -> W = 3, p = NaN
    result = rank_sum([3, 3], [3, 3, 3])
    assert (result.statistic_w, result.p_value, result.method) == (3.0, None, None)
    # R: wilcox.test(c(1,2,3) ~ factor(c("a","a","a"), levels = c("a","b")))
    #   -> Error: grouping factor must have exactly 2 levels
    with pytest.raises(ValueError, match="exactly two non-empty strata"):
        rank_sum([1, 2, 3], [])
    with pytest.raises(ValueError, match="exactly two non-empty strata"):
        rank_sum([1], [2], [3])


def test_ranks_are_rs_rank_of_the_stacked_rows() -> None:
    values, counts = histograms([3, 1, 1], [2, 3], [], [1, 5])
    ranks = strata_ranks(values, counts)
    # R: rank(c(3,1,1, 2,3, 1,5)) -> 5.5 2 2 4 5.5 2 7
    assert list(ranks.values) == [1, 2, 3, 5]
    assert list(ranks.tie_size) == [3, 1, 2, 1]
    assert list(ranks.doubled_midrank) == [4, 8, 11, 14]
    assert ranks.stratum_sizes == (3, 2, 0, 2)
    assert ranks.doubled_rank_sums == (11 + 4 + 4, 8 + 11, 0, 4 + 14)
    assert ranks.tie_term == (27 - 3) + (8 - 2)


def test_unsorted_values_and_empty_bins_give_same_result() -> None:
    values, counts = histograms(*KW_TIES3)
    order = np.random.default_rng(5).permutation(values.size)
    padded_values = np.concatenate([values[order], [99, -99]])
    padded_counts = np.concatenate([counts[:, order], np.zeros((3, 2), dtype=np.int64)], axis=1)
    assert kruskal_wallis(padded_values, padded_counts) == kruskal_wallis(values, counts)
    two = counts[:2]
    assert two_sample_wilcoxon(padded_values, padded_counts[:2]) == two_sample_wilcoxon(values, two)


def test_null_counts_are_the_mann_whitney_distribution() -> None:
    # U for n_x = 2, n_y = 2: subsets {1,2}:0 {1,3}:1 {1,4}:2 {2,3}:2 {2,4}:3 {3,4}:4
    assert rank_sum_null_counts(2, 2) == (1, 1, 2, 1, 1)
    assert rank_sum_null_counts(0, 5) == (1,)
    big = rank_sum_null_counts(49, 49)
    assert sum(big) == math.comb(98, 49)
    assert big == big[::-1]
    assert rank_sum_null_counts(3, 7) == rank_sum_null_counts(7, 3)
    # Enumerating every choice of the x ranks among 1 … N gives the same counts.
    for n_x, n_y in [(1, 1), (3, 5), (6, 2), (5, 6)]:
        enumerated = [0] * (n_x * n_y + 1)
        for ranks in itertools.combinations(range(1, n_x + n_y + 1), n_x):
            enumerated[sum(ranks) - n_x * (n_x + 1) // 2] += 1
        assert rank_sum_null_counts(n_x, n_y) == tuple(enumerated)
    assert exact_p_value(0, 2, 2) == pytest.approx(2 / 6, rel=1e-15)


# --- random data split into random centres: per-centre histograms summed ---


def pooled_from_centres(
    rows: list[tuple[int, int, int]], n_strata: int, n_centres: int, grid: range
) -> tuple[np.ndarray, np.ndarray]:
    """What the coordinator sees: the sum over centres of each centre's per-stratum
    histograms on the plan's grid (zero bins included)."""
    values = np.arange(grid.start, grid.stop, dtype=np.int64)
    per_centre = np.zeros((n_centres, n_strata, values.size), dtype=np.int64)
    for value, stratum, centre in rows:
        per_centre[centre, stratum, value - grid.start] += 1
    return values, per_centre.sum(axis=0)


def kruskal_raw(d: np.ndarray, g: np.ndarray) -> tuple[float, int]:
    """Per-patient H on the stacked rows (R's kruskal.test.default, line by line)."""
    n = d.size
    r = stats.rankdata(d)
    levels = np.unique(g)
    spread = sum(r[g == level].sum() ** 2 / np.sum(g == level) for level in levels)
    _, t = np.unique(d, return_counts=True)
    h = (12 * spread / (n * (n + 1)) - 3 * (n + 1)) / (1 - np.sum(t**3 - t) / (n**3 - n))
    return float(h), levels.size - 1


rows_strategy = st.lists(
    st.tuples(st.integers(-12, 12), st.integers(0, 3), st.integers(0, 4)),
    min_size=2,
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(rows_strategy)
def test_kruskal_wallis_equals_scipy_and_raw_rows(rows: list[tuple[int, int, int]]) -> None:
    d = np.array([r[0] for r in rows])
    g = np.array([r[1] for r in rows])
    values, counts = pooled_from_centres(rows, 4, 5, range(-12, 13))
    groups = [d[g == k] for k in range(4) if np.any(g == k)]
    if len(groups) < 2:
        with pytest.raises(ValueError):
            kruskal_wallis(values, counts)
        return
    result = kruskal_wallis(values, counts)
    assert result.df == len(groups) - 1
    assert result.n == d.size
    if np.unique(d).size == 1:
        assert (result.statistic_h, result.p_value) == (None, None)
        return
    h, df = kruskal_raw(d, g)
    assert result.df == df
    assert result.statistic_h == pytest.approx(h, rel=1e-9, abs=1e-12)
    reference = stats.kruskal(*groups)
    assert result.statistic_h == pytest.approx(reference.statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


def mann_whitney_raw(x: np.ndarray, y: np.ndarray) -> float:
    """U of x on the stacked rows: pairs with x > y count 1, ties 1/2."""
    return float(np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-40, 40), st.integers(0, 1), st.integers(0, 3)),
        min_size=2,
        max_size=130,
    )
)
def test_rank_sum_equals_scipy_and_raw_rows(rows: list[tuple[int, int, int]]) -> None:
    d = np.array([r[0] for r in rows])
    g = np.array([r[1] for r in rows])
    values, counts = pooled_from_centres(rows, 2, 4, range(-40, 41))
    x, y = d[g == 0], d[g == 1]
    if x.size == 0 or y.size == 0:
        with pytest.raises(ValueError):
            two_sample_wilcoxon(values, counts)
        return
    result = two_sample_wilcoxon(values, counts)
    assert (result.n_x, result.n_y) == (x.size, y.size)
    assert result.statistic_w == mann_whitney_raw(x, y)
    ties = np.unique(d).size < d.size
    assert result.has_ties == ties
    if np.unique(d).size == 1:
        assert result.p_value is None
        return
    exact = x.size < 50 and y.size < 50 and not ties
    assert result.method == ("exact" if exact else "normal")
    # scipy's method="auto" would choose differently (exact only when one sample has at
    # most 8 patients), so the method is forced to R's choice.
    reference = stats.mannwhitneyu(
        x,
        y,
        use_continuity=True,
        alternative="two-sided",
        method="exact" if exact else "asymptotic",
    )
    assert result.statistic_w == reference.statistic
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000), min_size=50, max_size=90, unique=True),
    st.integers(1, 49),
)
def test_rank_sum_normal_branch_without_ties_at_fifty(raw: list[int], n_y: int) -> None:
    # No ties, n_x >= 50: R's rule gives the normal approximation (scipy's "auto" too).
    n_y = min(n_y, len(raw) - 50)
    if n_y < 1:
        return
    x, y = np.array(raw[: len(raw) - n_y]), np.array(raw[len(raw) - n_y :])
    result = rank_sum(list(x), list(y))
    assert result.method == "normal"
    reference = stats.mannwhitneyu(x, y, method="asymptotic")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


def test_large_cohort_is_fast_and_matches_scipy() -> None:
    rng = np.random.default_rng(20261126)
    d = rng.integers(-30, 31, size=60_000)
    g = rng.integers(0, 3, size=d.size)
    groups = [list(d[g == k]) for k in range(3)]
    values, counts = histograms(*groups)
    result = kruskal_wallis(values, counts)
    reference = stats.kruskal(*[d[g == k] for k in range(3)])
    assert result.statistic_h == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    two = two_sample_wilcoxon(values, counts[:2])
    reference_two = stats.mannwhitneyu(d[g == 0], d[g == 1], method="asymptotic")
    assert two.statistic_w == reference_two.statistic
    assert two.p_value == pytest.approx(reference_two.pvalue, rel=1e-9)

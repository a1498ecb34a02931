"""Tests of sscjak.shared.statistics.survival against R literals and per-patient references.

R literals: R 4.2.2 Patched (2022-11-10 r83330), survival 3.5-3 (Debian r-cran-survival),
printed with ``p <- function(x) cat(paste(ifelse(is.na(x), "NA", sprintf("%.17g", x)),
collapse = ", "))``. The datasets are the data frames below (t = grid time, e = event).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.survival import (
    MONTH_DAYS,
    KaplanMeierCurve,
    LogRankResult,
    _r_solve,
    grid_time,
    kaplan_meier,
    log_rank_test,
    median_survival,
    number_at_risk,
    survival_quantile,
)

NA = math.nan
TOL = math.sqrt(2.0**-52)


def histograms(t: list[int], e: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Event and censoring histograms over grid time 0 … max(t) of stacked rows (t, e)."""
    t_arr = np.asarray(t, dtype=np.int64)
    e_arr = np.asarray(e, dtype=np.int64)
    length = int(t_arr.max()) + 1 if t_arr.size else 0
    events = np.bincount(t_arr[e_arr == 1], minlength=length).astype(np.int64)
    censored = np.bincount(t_arr[e_arr == 0], minlength=length).astype(np.int64)
    return events, censored


def curve_of(t: list[int], e: list[int]) -> KaplanMeierCurve:
    return kaplan_meier(*histograms(t, e))


def assert_floats(actual: np.ndarray | list[float | None], expected: list[float], rel: float):
    """Equal to ``rel`` relative, NaN (R's NA) and inf at the same places."""
    actual_f = np.array([NA if a is None else a for a in actual], dtype=np.float64)
    expected_f = np.asarray(expected, dtype=np.float64)
    assert actual_f.shape == expected_f.shape
    assert np.array_equal(np.isnan(actual_f), np.isnan(expected_f))
    assert np.array_equal(np.isinf(actual_f), np.isinf(expected_f))
    finite = np.isfinite(expected_f)
    assert actual_f[finite] == pytest.approx(expected_f[finite], rel=rel, abs=0)


def none_or(value: float) -> float | None:
    return None if math.isnan(value) else value


# ----------------------------------------------------------------------- R literals

# d1 <- data.frame(t = c(1,1,2,3,3,3,5,6,6,8), e = c(1,0,1,1,1,0,0,1,1,1))
# f <- survfit(Surv(t, e) ~ 1, data = d1): ties of events and censorings, drops to 0.
D1 = ([1, 1, 2, 3, 3, 3, 5, 6, 6, 8], [1, 0, 1, 1, 1, 0, 0, 1, 1, 1])
# d2 <- data.frame(t = c(1,2,2,4,4,6,8,8), e = c(1,1,1,1,0,0,1,0)): S = 0.5 on [4, 8).
D2 = ([1, 2, 2, 4, 4, 6, 8, 8], [1, 1, 1, 1, 0, 0, 1, 0])
# d3 <- data.frame(t = c(1,2,3,4), e = c(1,1,0,0)): S = 0.5 up to the end of the curve.
D3 = ([1, 2, 3, 4], [1, 1, 0, 0])
# d3b <- data.frame(t = c(2,3,3,5,7,9), e = c(0,1,0,0,0,0)): median not reached.
D3B = ([2, 3, 3, 5, 7, 9], [0, 1, 0, 0, 0, 0])
# d4 <- data.frame(t = c(7,8,5,4,0,14,7,6,11,8,15,10,10), e = c(1,1,1,1,1,1,1,1,0,1,1,1,1))
# an event at time 0 and a non-monotone upper curve.
D4 = ([7, 8, 5, 4, 0, 14, 7, 6, 11, 8, 15, 10, 10], [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1])
# b <- data.frame(t = c(2,4,4,5,7,9,10,12), e = c(1,1,0,1,0,1,1,0))
GROUP_B = ([2, 4, 4, 5, 7, 9, 10, 12], [1, 1, 0, 1, 0, 1, 1, 0])
# c <- data.frame(t = c(0,1,3,3,6,6,11), e = c(1,0,1,1,0,1,0))
GROUP_C = ([0, 1, 3, 3, 6, 6, 11], [1, 0, 1, 1, 0, 1, 0])


def test_kaplan_meier_with_ties_and_drop_to_zero_matches_r() -> None:
    curve = curve_of(*D1)
    # f$time, f$n.risk, f$n.event, f$n.censor
    assert curve.time.tolist() == [1, 2, 3, 5, 6, 8]
    assert curve.n_risk.tolist() == [10, 8, 7, 4, 3, 1]
    assert curve.n_event.tolist() == [1, 1, 2, 0, 2, 1]
    assert curve.n_censor.tolist() == [1, 0, 1, 1, 0, 0]
    assert curve.n == 10
    # f$surv
    assert_floats(curve.surv, [0.9, 0.7875, 0.5625, 0.5625, 0.1875, 0], rel=1e-9)
    # f$std.err (log scale; Inf where S drops to 0)
    assert_floats(
        curve.std_err,
        [
            0.10540925533894598,
            0.17020062857772872,
            0.29344694769431684,
            0.29344694769431684,
            0.86762767232135796,
            math.inf,
        ],
        rel=1e-9,
    )
    # f$lower, f$upper (conf.type = "log": NA at S = 0)
    assert_floats(
        curve.lower,
        [
            0.73201164274399266,
            0.56412523151367333,
            0.31647545436399427,
            0.31647545436399427,
            0.034235388333137093,
            NA,
        ],
        rel=1e-9,
    )
    assert_floats(curve.upper, [1, 1, 0.99978132786274598, 0.99978132786274598, 1, NA], rel=1e-9)
    # summary(f)$std.err (std.err of S, the censor-only time 5 left out; NaN = 0 × Inf)
    assert_floats(
        curve.std_err_surv[curve.n_event > 0],
        [
            0.094868329805051374,
            0.13403299500496135,
            0.16506390807805321,
            0.16268018856025462,
            NA,
        ],
        rel=1e-9,
    )


def test_median_of_curve_dropping_to_zero_matches_r() -> None:
    curve = curve_of(*D1)
    # q <- quantile(f, 0.5): q$quantile = 6, q$lower = 3, q$upper = NA
    # summary(f)$table[c("median", "0.95LCL", "0.95UCL")] = 6, 3, NA
    for rule in ("quantile", "print"):
        median = median_survival(curve, rule=rule)
        assert (median.median, median.lower, median.upper) == (6.0, 3.0, None)
        assert (median.n, median.events) == (10, 7)


def test_numbers_at_risk_match_r() -> None:
    events, censored = histograms(*D1)
    # summary(f, times = c(0,1,4,8,9))$n.risk = 10, 10, 4, 1 (9 > last time: dropped)
    table = number_at_risk(events, censored, [0, 1, 4, 8, 9])
    assert table.time.tolist() == [0, 1, 4, 8]
    assert table.n_risk.tolist() == [10, 10, 4, 1]
    # summary(f, times = c(0,4,9,12), extend = TRUE)$n.risk = 10, 4, 0, 0
    table = number_at_risk(events, censored, [0, 4, 9, 12], extend=True)
    assert table.n_risk.tolist() == [10, 4, 0, 0]
    # summary(f, times = c(9, 10)): R 4.2.2 / survival 3.5-3 stops with "no points
    # selected for one or more curves"; here the table is empty.
    assert number_at_risk(events, censored, [9, 10]).n_risk.tolist() == []


def test_survival_exactly_one_half_over_an_interval_matches_r() -> None:
    curve = curve_of(*D2)
    # f$time, f$n.risk, f$n.event, f$n.censor
    assert curve.time.tolist() == [1, 2, 4, 6, 8]
    assert curve.n_risk.tolist() == [8, 7, 5, 3, 2]
    assert curve.n_event.tolist() == [1, 2, 1, 0, 1]
    assert curve.n_censor.tolist() == [0, 0, 1, 1, 1]
    # f$surv, f$std.err, f$lower, f$upper
    assert_floats(curve.surv, [0.875, 0.625, 0.5, 0.5, 0.25], rel=1e-9)
    assert_floats(
        curve.std_err,
        [
            0.1336306209562122,
            0.27386127875258304,
            0.35355339059327379,
            0.35355339059327379,
            0.79056941504209488,
        ],
        rel=1e-9,
    )
    assert_floats(
        curve.lower,
        [
            0.67338193650595535,
            0.36540027868240926,
            0.25004882186280469,
            0.25004882186280469,
            0.053089190410497325,
        ],
        rel=1e-9,
    )
    assert_floats(curve.upper, [1, 1, 0.9998047506785237, 0.9998047506785237, 1], rel=1e-9)
    # q <- quantile(f, c(0.25, 0.5, 0.75)): quantile = 2, 6, 8; lower = 1, 2, 8;
    #   upper = NA, NA, NA  (median: S = 0.5 from 4 until the drop at 8 -> (4 + 8)/2)
    quantiles = [survival_quantile(curve, p) for p in (0.25, 0.5, 0.75)]
    assert [q.time for q in quantiles] == [2.0, 6.0, 8.0]
    assert [q.lower for q in quantiles] == [1.0, 2.0, 8.0]
    assert [q.upper for q in quantiles] == [None, None, None]
    # summary(f)$table[c("median", "0.95LCL", "0.95UCL")] = 6, 2, NA
    median = median_survival(curve, rule="print")
    assert (median.median, median.lower, median.upper) == (6.0, 2.0, None)


def test_one_half_until_the_end_quantile_and_print_differ_like_r() -> None:
    curve = curve_of(*D3)
    # f$surv = 0.75, 0.5, 0.5, 0.5
    assert_floats(curve.surv, [0.75, 0.5, 0.5, 0.5], rel=1e-9)
    # q <- quantile(f, 0.5): quantile = 3 (= (2 + last time 4)/2), lower = 1, upper = NA
    median = median_survival(curve)
    assert (median.median, median.lower, median.upper) == (3.0, 1.0, None)
    # summary(f)$table[c("median", "0.95LCL", "0.95UCL")] = 2, 1, NA (survmean's minmin)
    median = median_survival(curve, rule="print")
    assert (median.median, median.lower, median.upper) == (2.0, 1.0, None)


def test_median_not_reached_matches_r() -> None:
    curve = curve_of(*D3B)
    # f$surv = 1, 0.80000000000000004 × 4; f$lower = 1, 0.51612576034217206 × 4; f$upper = 1 × 5
    assert_floats(curve.surv, [1] + [0.80000000000000004] * 4, rel=1e-9)
    assert_floats(curve.lower, [1] + [0.51612576034217206] * 4, rel=1e-9)
    assert_floats(curve.upper, [1] * 5, rel=1e-9)
    # quantile(f, 0.5) and summary(f)$table: median, 0.95LCL, 0.95UCL all NA
    for rule in ("quantile", "print"):
        median = median_survival(curve, rule=rule)
        assert (median.median, median.lower, median.upper) == (None, None, None)


def test_non_monotone_upper_curve_follows_rs_approx() -> None:
    curve = curve_of(*D4)
    # f$time, f$surv, f$lower, f$upper
    assert curve.time.tolist() == [0, 4, 5, 6, 7, 8, 10, 11, 14, 15]
    assert_floats(
        curve.surv,
        [
            0.92307692307692313,
            0.84615384615384615,
            0.76923076923076916,
            0.69230769230769229,
            0.53846153846153844,
            0.38461538461538458,
            0.23076923076923073,
            0.23076923076923073,
            0.11538461538461536,
            0,
        ],
        rel=1e-9,
    )
    assert_floats(
        curve.lower,
        [
            0.78901857586524304,
            0.67109519306524912,
            0.57114956567098019,
            0.48185008076767483,
            0.32552646997157247,
            0.193377257276445,
            0.085537242644151953,
            0.085537242644151953,
            0.020981772977878965,
            NA,
        ],
        rel=1e-9,
    )
    assert_floats(
        curve.upper,
        [
            1,
            1,
            1,
            0.99468685377162591,
            0.89068280200896333,
            0.7649761723084445,
            0.62258773165472614,
            0.62258773165472614,
            0.63453214756885046,
            NA,
        ],
        rel=1e-9,
    )
    # q <- quantile(f, c(0.25, 0.5, 0.75)): quantile = 6, 8, 10; lower = 4, 6, 8;
    #   upper = 14, NA, NA. The upper curve is ≤ 0.75 from time 10 on, but R's approx()
    #   sorts 1 − upper and picks 0.634 at time 14 (the smallest value ≥ 0.25).
    quantiles = [survival_quantile(curve, p) for p in (0.25, 0.5, 0.75)]
    assert [q.time for q in quantiles] == [6.0, 8.0, 10.0]
    assert [q.lower for q in quantiles] == [4.0, 6.0, 8.0]
    assert [q.upper for q in quantiles] == [14.0, None, None]


def test_stratified_fit_is_one_curve_per_stratum_like_r() -> None:
    # g2 <- rbind(cbind(d1, g = "a"), cbind(b, g = "b"))
    # print(survfit(Surv(t, e) ~ g, data = g2)):
    #   g=a n 10 events 7 median 6 0.95LCL 3 0.95UCL NA
    #   g=b n  8 events 5 median 9 0.95LCL 5 0.95UCL NA
    # quantile(f, 0.5): quantile = 6, 9; lower = 3, 5; upper = NA, NA
    medians = [median_survival(curve_of(*data)) for data in (D1, GROUP_B)]
    assert [(m.n, m.events, m.median, m.lower, m.upper) for m in medians] == [
        (10, 7, 6.0, 3.0, None),
        (8, 5, 9.0, 5.0, None),
    ]


def pooled_groups(*groups: tuple[list[int], list[int]]) -> tuple[list, list]:
    pairs = [histograms(*g) for g in groups]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_log_rank_two_groups_matches_r() -> None:
    result = log_rank_test(*pooled_groups(D1, GROUP_B))
    # s <- survdiff(Surv(t, e) ~ g, data = g2)
    # s$n = 10, 8; s$obs = 7, 5
    assert result.n.tolist() == [10, 8]
    assert result.observed.tolist() == [7, 5]
    # s$exp = 4.470779220779221, 7.5292207792207799
    assert_floats(result.expected, [4.470779220779221, 7.5292207792207799], rel=1e-9)
    # s$var (column-major) = 2.2491005126827637, -2.2491005126827641, -2.2491005126827641,
    #   2.2491005126827641
    assert_floats(
        result.variance.ravel(order="F"),
        [2.2491005126827637, -2.2491005126827641, -2.2491005126827641, 2.2491005126827641],
        rel=1e-9,
    )
    # s$chisq = 2.8442293770196039, s$pvalue = 0.091702551823694051, df = 1
    assert result.chisq == pytest.approx(2.8442293770196039, rel=1e-9)
    assert result.df == 1
    assert result.p_value == pytest.approx(0.091702551823694051, rel=1e-9)


def test_log_rank_three_groups_matches_r() -> None:
    result = log_rank_test(*pooled_groups(D1, GROUP_B, GROUP_C))
    # g3 <- rbind(g2, cbind(c, g = "c")); s <- survdiff(Surv(t, e) ~ g, data = g3)
    # s$n = 10, 8, 7; s$obs = 7, 5, 4
    assert result.n.tolist() == [10, 8, 7]
    assert result.observed.tolist() == [7, 5, 4]
    # s$exp = 4.7713032581453643, 7.022255639097744, 4.2064411027568926
    assert_floats(
        result.expected, [4.7713032581453643, 7.022255639097744, 4.2064411027568926], rel=1e-9
    )
    # s$var (column-major)
    assert_floats(
        result.variance.ravel(order="F"),
        [
            2.7830552414871756,
            -1.6768187888267034,
            -1.1062364526604733,
            -1.6768187888267034,
            3.3662958310563376,
            -1.6894770422296341,
            -1.1062364526604733,
            -1.6894770422296341,
            2.7957134948901081,
        ],
        rel=1e-9,
    )
    # s$chisq = 1.9807053228185867, s$pvalue = 0.37144567336632267 (2 df)
    assert result.chisq == pytest.approx(1.9807053228185867, rel=1e-9)
    assert result.df == 2
    assert result.p_value == pytest.approx(0.37144567336632267, rel=1e-9)


def test_log_rank_group_without_expected_events_is_left_out_like_r() -> None:
    zero = ([0, 0], [0, 0])  # both censored at time 0, before the first event
    result = log_rank_test(*pooled_groups(D1, GROUP_B, zero))
    # g3z <- rbind(g2, data.frame(t = c(0,0), e = c(0,0), g = "z"))
    # s <- survdiff(Surv(t, e) ~ g, data = g3z): s$n = 10, 8, 2; s$obs = 7, 5, 0;
    #   s$exp = 4.470779220779221, 7.5292207792207799, 0; chisq = 2.8442293770196039
    #   on 1 df, s$pvalue = 0.091702551823694051
    assert result.n.tolist() == [10, 8, 2]
    assert result.observed.tolist() == [7, 5, 0]
    assert_floats(result.expected, [4.470779220779221, 7.5292207792207799, 0], rel=1e-9)
    assert result.df == 1
    assert result.chisq == pytest.approx(2.8442293770196039, rel=1e-9)
    assert result.p_value == pytest.approx(0.091702551823694051, rel=1e-9)
    # g1 <- data.frame(t = c(1,2,3,0,0), e = c(1,1,0,0,0), g = c("a","a","a","b","b"))
    # survdiff(Surv(t, e) ~ g, data = g1): chisq = 0 on 0 df, s$pvalue = 1, s$exp = 2, 0,
    #   s$var = 0, 0, 0, 0
    result = log_rank_test(*pooled_groups(([1, 2, 3], [1, 1, 0]), zero))
    assert (result.chisq, result.df, result.p_value) == (0.0, 0, 1.0)
    assert result.expected.tolist() == [2.0, 0.0]
    assert result.variance.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # g0 <- data.frame(t = c(1,2,3,4), e = 0, g = c("a","a","b","b"))
    # survdiff(Surv(t, e) ~ g, data = g0): chisq = 0 on -1 df, s$pvalue = NA
    result = log_rank_test(*pooled_groups(([1, 2], [0, 0]), ([3, 4], [0, 0])))
    assert (result.chisq, result.df, result.p_value) == (0.0, -1, None)


def test_singular_variance_stops_like_r() -> None:
    # survdiff(Surv(t, e) ~ g, data = data.frame(t = c(0,0), e = c(1,1), g = c("a","b"))):
    #   Error in solve.default(vv, temp2): Lapack routine dgesv: system is exactly
    #   singular: U[1,1] = 0   (both die at the only event time: no information)
    with pytest.raises(ValueError, match=r"exactly singular \(dgesv: U\[1,1\] = 0\)"):
        log_rank_test([[1], [1]], [[0], [0]])
    # a <- matrix(c(1,1,1,1+2^-52), 2); solve(a, c(1,2)): Error: system is
    #   computationally singular: reciprocal condition number = 5.55112e-17
    with pytest.raises(ValueError, match=r"reciprocal condition number = 5\.55112e-17"):
        _r_solve(np.array([[1.0, 1.0], [1.0, 1.0 + 2.0**-52]]), np.array([1.0, 2.0]))
    # a <- matrix(c(3,1,1,1+2^-50), 2); solve(a, c(1,2)) -> -0.5, 2.5
    solved = _r_solve(np.array([[3.0, 1.0], [1.0, 1.0 + 2.0**-50]]), np.array([1.0, 2.0]))
    assert solved.tolist() == pytest.approx([-0.5, 2.5], rel=1e-9)


# ----------------------------------------------------------------------- edge cases


def test_no_patients() -> None:
    curve = kaplan_meier([], [])
    assert curve.n == 0 and curve.time.size == 0 and curve.surv.size == 0
    assert median_survival(curve) == median_survival(kaplan_meier([0, 0], [0, 0, 0]))
    assert (median_survival(curve).median, median_survival(curve, "print").median) == (None, None)
    assert number_at_risk([], [], [0, 3]).time.size == 0
    assert number_at_risk([], [], [0, 3], extend=True).n_risk.tolist() == [0, 0]
    # R: survdiff(...) on a single group stops with "There is only 1 group"
    with pytest.raises(ValueError, match="at least 2 groups"):
        log_rank_test([[0, 1, 2], [0, 0]], [[1], []])


def test_all_censored_matches_r() -> None:
    # survfit(Surv(t, e) ~ 1, data = data.frame(t = c(0,0,3,4,4), e = 0)):
    #   f$time = 0, 3, 4; f$n.risk = 5, 3, 2; surv, lower, upper = 1; std.err = 0
    curve = curve_of([0, 0, 3, 4, 4], [0, 0, 0, 0, 0])
    assert curve.time.tolist() == [0, 3, 4]
    assert curve.n_risk.tolist() == [5, 3, 2]
    for values in (curve.surv, curve.lower, curve.upper):
        assert values.tolist() == [1.0, 1.0, 1.0]
    assert curve.std_err.tolist() == [0.0, 0.0, 0.0]
    assert median_survival(curve).median is None


def test_single_patient_matches_r() -> None:
    # survfit(Surv(t, e) ~ 1, data = data.frame(t = 5, e = 1)): time 5, surv 0,
    #   std.err Inf, lower NA, upper NA; quantile(f, 0.5)$quantile = 5
    curve = curve_of([5], [1])
    assert curve.time.tolist() == [5]
    assert curve.surv.tolist() == [0.0]
    assert curve.std_err.tolist() == [math.inf]
    assert math.isnan(curve.lower[0]) and math.isnan(curve.upper[0])
    assert median_survival(curve) == median_survival(curve, "print")
    assert (median_survival(curve).median, median_survival(curve).lower) == (5.0, None)
    # survfit(Surv(t, e) ~ 1, data = data.frame(t = 5, e = 0)): surv 1, std.err 0,
    #   lower 1, upper 1; summary(f)$table["median"] = NA;
    #   summary(f, times = c(0, 5))$n.risk = 1, 1
    curve = curve_of([5], [0])
    assert (curve.surv.tolist(), curve.std_err.tolist()) == ([1.0], [0.0])
    assert (curve.lower.tolist(), curve.upper.tolist()) == ([1.0], [1.0])
    assert median_survival(curve).median is None
    assert number_at_risk(*histograms([5], [0]), [0, 5]).n_risk.tolist() == [1, 1]


def test_event_at_time_zero_matches_r() -> None:
    # f <- survfit(Surv(t, e) ~ 1, data = data.frame(t = c(0,0,2), e = c(1,0,1))):
    #   f$time = 0, 2; f$n.risk = 3, 1; f$surv = 0.66666666666666663, 0;
    #   f$std.err = 0.40824829046386302, Inf; f$lower = 0.29950713035902232, NA;
    #   f$upper = 1, NA; quantile(f, .5): quantile = 2, lower = 0, upper = NA
    curve = curve_of([0, 0, 2], [1, 0, 1])
    assert curve.time.tolist() == [0, 2]
    assert curve.n_risk.tolist() == [3, 1]
    assert_floats(curve.surv, [0.66666666666666663, 0], rel=1e-9)
    assert_floats(curve.std_err, [0.40824829046386302, math.inf], rel=1e-9)
    assert_floats(curve.lower, [0.29950713035902232, NA], rel=1e-9)
    assert_floats(curve.upper, [1, NA], rel=1e-9)
    q = survival_quantile(curve, 0.5)
    assert (q.time, q.lower, q.upper) == (2.0, 0.0, None)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier([1, -1], [0, 0])
    with pytest.raises(ValueError, match="integer"):
        kaplan_meier([1.5, 1.0], [0, 0])
    with pytest.raises(ValueError, match="one-dimensional"):
        kaplan_meier([[1]], [[0]])
    with pytest.raises(ValueError, match="conf_int"):
        kaplan_meier([1], [0], conf_int=1.0)
    with pytest.raises(ValueError, match="same groups"):
        log_rank_test([[1], [1]], [[0]])
    with pytest.raises(ValueError, match="prob"):
        survival_quantile(curve_of(*D1), 1.5)
    with pytest.raises(ValueError, match="rule"):
        median_survival(curve_of(*D1), rule="mean")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ grid time


def test_grid_time_maps_whole_months_exactly() -> None:
    assert Fraction(30.4375) == MONTH_DAYS
    k = np.arange(0, 2000, 16)  # 30.4375·k is a whole number of days iff 16 | k
    days = (k * 487) // 16
    assert grid_time(days).tolist() == k.tolist()
    assert grid_time(days + 1).tolist() == (k + 1).tolist()
    assert grid_time(0) == 0 and grid_time(1) == 1 and grid_time(30) == 1
    assert grid_time(31) == 2 and grid_time(61) == 3  # 2 months = 60.875 days
    assert grid_time([3, 7, 8], 1).tolist() == [3, 7, 8]
    assert grid_time(np.array([[7, 8], [14, 15]]), 7).tolist() == [[1, 2], [2, 3]]
    assert grid_time(761, 30.44) == 25 and grid_time(762, "30.44") == 26
    with pytest.raises(ValueError, match=">= 0"):
        grid_time(-1)
    with pytest.raises(ValueError, match="whole numbers"):
        grid_time([1.5])
    with pytest.raises(ValueError, match="positive"):
        grid_time(3, 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**7), st.sampled_from([1, 7, 30.4375, 365.25, Fraction(487, 16)]))
def test_grid_time_is_ceiling_of_days_over_grid(days: int, grid_days: float) -> None:
    g = grid_time(days, grid_days)
    step = Fraction(grid_days)
    assert (g - 1) * step < days <= g * step
    # R: ceiling(days / 30.4375) in double precision gives the same grid time
    assert g == math.ceil(days / float(grid_days))


# ------------------------------------------------ per-patient reference implementations

Z975 = NormalDist().inv_cdf(0.975)


def reference_curve(rows: list[tuple[int, int]]) -> dict[str, list]:
    """KM, Greenwood and log CI by a loop over the sorted patient rows (exact fractions)."""
    rows = sorted(rows)
    out: dict[str, list] = {k: [] for k in ("time", "n_risk", "n_event", "n_censor")}
    out.update(surv=[], std_err=[], lower=[], upper=[], surv_exact=[])
    s, v = Fraction(1), Fraction(0)
    infinite = False
    i = 0
    while i < len(rows):
        t = rows[i][0]
        at_risk = len(rows) - i
        d = c = 0
        while i < len(rows) and rows[i][0] == t:
            d += rows[i][1]
            c += 1 - rows[i][1]
            i += 1
        if d > 0:
            s *= Fraction(at_risk - d, at_risk)
            if at_risk == d:
                infinite = True
            else:
                v += Fraction(d, at_risk * (at_risk - d))
        se = math.inf if infinite else math.sqrt(v)
        for key, value in zip(
            ("time", "n_risk", "n_event", "n_censor"), (t, at_risk, d, c), strict=True
        ):
            out[key].append(value)
        out["surv"].append(float(s))
        out["surv_exact"].append(s)
        out["std_err"].append(se)
        if s == 0:
            lower = upper = NA
        else:
            lower = math.exp(math.log(s) - Z975 * se)
            upper = min(1.0, math.exp(math.log(s) + Z975 * se))
        out["lower"].append(lower)
        out["upper"].append(upper)
    return out


def reference_first_crossing(times: list[int], values: list[float]) -> float | None:
    """First time where the curve is ≤ 0.5; on a flat at 0.5, midpoint with the time the
    curve next drops (or with the last time if it never does). NA values are skipped."""
    for i, (t, y) in enumerate(zip(times, values, strict=True)):
        if math.isnan(y) or y >= 0.5 + TOL:
            continue
        if abs(y - 0.5) < TOL:
            later = [u for u, z in zip(times[i:], values[i:], strict=True) if z < y - TOL]
            return (t + (later[0] if later else times[-1])) / 2
        return float(t)
    return None


def reference_print_median(times: list[int], values: list[float]) -> float | None:
    """survmean's rule: as above, but a flat at 0.5 that never drops gives its start."""
    for i, (t, y) in enumerate(zip(times, values, strict=True)):
        if math.isnan(y) or y >= 0.5 + TOL:
            continue
        later = [u for u, z in zip(times[i:], values[i:], strict=True) if z < y]
        if abs(y - 0.5) < TOL and later:
            return (t + later[0]) / 2
        return float(t)
    return None


def exact_solve(matrix: list[list[Fraction]], vector: list[Fraction]) -> list[Fraction] | None:
    """Gauss–Jordan elimination in fractions; None when singular."""
    n = len(vector)
    a = [[*row, b] for row, b in zip(matrix, vector, strict=True)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col] != 0), None)
        if pivot is None:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[r][n] / a[r][r] for r in range(n)]


def reference_log_rank(rows: list[tuple[int, int, int]], n_groups: int) -> dict | None:
    """Mantel's O, E, V by a loop over event times; χ² dropping the LAST group (R drops the
    first; the quadratic form does not depend on which one)."""
    times = sorted({t for t, e, _ in rows if e == 1})
    observed = [sum(e for _, e, g in rows if g == k) for k in range(n_groups)]
    expected = [Fraction(0)] * n_groups
    var = [[Fraction(0)] * n_groups for _ in range(n_groups)]
    for t in times:
        r = [sum(1 for u, _, g in rows if g == k and u >= t) for k in range(n_groups)]
        d = sum(e for u, e, _ in rows if u == t)
        n = sum(r)
        for k in range(n_groups):
            expected[k] += Fraction(d * r[k], n)
        if n > 1:
            for j in range(n_groups):
                for k in range(n_groups):
                    delta = (1 if j == k else 0) * Fraction(r[j], n) - Fraction(r[j] * r[k], n * n)
                    var[j][k] += Fraction(d * (n - d), n - 1) * delta
    keep = [k for k in range(n_groups) if expected[k] > 0]
    df = len(keep) - 1
    chisq = Fraction(0)
    if df >= 1:
        used = keep[:-1]
        diff = [observed[k] - expected[k] for k in used]
        solved = exact_solve([[var[j][k] for k in used] for j in used], diff)
        if solved is None:
            return None
        chisq = sum((a * b for a, b in zip(solved, diff, strict=True)), Fraction(0))
    return {"observed": observed, "expected": expected, "var": var, "chisq": chisq, "df": df}


@st.composite
def pooled_cohorts(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], int, list[int]]:
    """Stacked rows (t, e, group) and a random centre (0 … 3) for each row."""
    n_groups = draw(st.integers(1, 4))
    horizon = draw(st.integers(0, 14))
    row = st.tuples(st.integers(0, horizon), st.integers(0, 1), st.integers(0, n_groups - 1))
    rows = draw(st.lists(row, max_size=45))
    mode = draw(st.sampled_from(["mixed", "mixed", "all censored", "all events"]))
    if mode != "mixed":
        rows = [(t, int(mode == "all events"), g) for t, _, g in rows]
    centres = draw(st.lists(st.integers(0, 3), min_size=len(rows), max_size=len(rows)))
    return rows, n_groups, centres


def pool_over_centres(
    rows: list[tuple[int, int, int]], n_groups: int, centres: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each centre sends per-group histograms up to its own last time; the hub sums them."""
    length = max((t for t, _, _ in rows), default=-1) + 1
    events = np.zeros((n_groups, length), dtype=np.int64)
    censored = np.zeros((n_groups, length), dtype=np.int64)
    for centre in set(centres):
        mine = [row for row, c in zip(rows, centres, strict=True) if c == centre]
        own_length = max(t for t, _, _ in mine) + 1
        for g in range(n_groups):
            for status, pooled in ((1, events), (0, censored)):
                times = [t for t, e, h in mine if h == g and e == status]
                pooled[g, :own_length] += np.bincount(times, minlength=own_length)
    return events, censored


@settings(max_examples=300, deadline=None)
@given(pooled_cohorts())
def test_pooled_curves_equal_per_patient_reference(cohort) -> None:
    rows, n_groups, centres = cohort
    events, censored = pool_over_centres(rows, n_groups, centres)
    for g in range(n_groups):
        mine = [(t, e) for t, e, h in rows if h == g]
        curve = kaplan_meier(events[g], censored[g])
        ref = reference_curve(mine)
        assert curve.n == len(mine)
        for key in ("time", "n_risk", "n_event", "n_censor"):
            assert getattr(curve, key).tolist() == ref[key]
        for key in ("surv", "std_err", "lower", "upper"):
            got, want = getattr(curve, key), np.asarray(ref[key], dtype=np.float64)
            assert np.array_equal(np.isnan(got), np.isnan(want))
            assert np.array_equal(np.isinf(got), np.isinf(want))
            ok = np.isfinite(want)
            assert got[ok] == pytest.approx(want[ok], rel=1e-12, abs=1e-300)
        # median (the curve is monotone) and its lower limit: first crossing of 0.5
        median = median_survival(curve)
        assert median.median == reference_first_crossing(ref["time"], ref["surv"])
        assert median.lower == reference_first_crossing(ref["time"], ref["lower"])
        upper = [u for u in ref["upper"] if not math.isnan(u)]
        if all(a >= b for a, b in itertools.pairwise(upper)):
            assert median.upper == reference_first_crossing(ref["time"], ref["upper"])
        printed = median_survival(curve, rule="print")
        assert printed.median == reference_print_median(ref["time"], ref["surv"])
        assert printed.lower == reference_print_median(ref["time"], ref["lower"])
        assert printed.upper == reference_print_median(ref["time"], ref["upper"])
        assert (median.n, median.events) == (len(mine), sum(e for _, e in mine))
        # numbers at risk at every time from −1 to two past the end
        last = max((t for t, _ in mine), default=None)
        probe = list(range(-1, (last or 0) + 3))
        for extend in (False, True):
            table = number_at_risk(events[g], censored[g], probe, extend=extend)
            kept = [t for t in probe if extend or (last is not None and t <= max(last, 0))]
            assert table.time.tolist() == kept
            assert table.n_risk.tolist() == [sum(1 for u, _ in mine if u >= t) for t in kept]


@settings(max_examples=300, deadline=None)
@given(pooled_cohorts())
def test_pooled_log_rank_equals_per_patient_reference(cohort) -> None:
    rows, n_groups, centres = cohort
    events, censored = pool_over_centres(rows, n_groups, centres)
    groups_with_patients = len({g for _, _, g in rows})
    if groups_with_patients < 2:
        with pytest.raises(ValueError, match="at least 2 groups"):
            log_rank_test(events, censored)
        return
    ref = reference_log_rank(rows, n_groups)
    if ref is None:  # singular V: R's solve() stops too
        with pytest.raises(ValueError, match="singular"):
            log_rank_test(events, censored)
        return
    result = log_rank_test(events, censored)
    assert isinstance(result, LogRankResult)
    assert result.n.tolist() == [sum(1 for *_, g in rows if g == k) for k in range(n_groups)]
    assert result.observed.tolist() == ref["observed"]
    assert result.expected == pytest.approx([float(x) for x in ref["expected"]], rel=1e-12)
    scale = max(1.0, float(np.abs(result.variance).max()))
    want_var = np.array([[float(x) for x in row] for row in ref["var"]])
    assert np.allclose(result.variance, want_var, rtol=1e-12, atol=1e-14 * scale)
    assert result.df == ref["df"]
    assert result.chisq == pytest.approx(float(ref["chisq"]), rel=1e-12, abs=1e-12)
    if ref["df"] < 0:
        assert result.p_value is None
    elif ref["df"] == 0:
        assert result.p_value == 1.0
    else:
        want_p = float(stats.chi2.sf(float(ref["chisq"]), ref["df"]))
        assert result.p_value == pytest.approx(want_p, rel=1e-9, abs=1e-12)

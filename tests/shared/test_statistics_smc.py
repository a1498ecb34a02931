"""Tests of sscjak.shared.statistics.smc against R (metafor 3.8-1) literals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.smc import (
    smc_baseline,
    smc_change,
    smc_confidence_interval,
    smc_variance,
)

# The FVC cell of test_statistics_moments, in R 4.2.2:
#   x0 <- c(72.4,80.1,65.0,90.3,77.7,58.9); d <- c(1.2,-0.5,3.4,0.0,2.2,-1.1); x1 <- x0 + d
#   sprintf("%.17g", c(mean(d), sd(d), sd(x0), cor(x0, x1)))
MEAN_CHANGE = 0.8666666666666667
SD_CHANGE = 1.7200775176330474
SD_BASELINE = 11.208330235439471
R_BASELINE_FOLLOWUP = 0.98817127962363727
N = 6


def test_smc_baseline_is_metafor_smcr_without_bias_correction() -> None:
    # R: e <- escalc("SMCR", m1i=mean(x1), m2i=mean(x0), sd1i=sd(x0), ni=6, ri=cor(x0,x1))
    #    sprintf("%.17g", e$yi / metafor:::.cmicalc(5)) -> 0.077323441445932103
    smc = smc_baseline(MEAN_CHANGE, SD_BASELINE)
    assert smc == pytest.approx(0.077323441445932103, rel=1e-13)


def test_smc_change_is_metafor_smcc_without_bias_correction() -> None:
    # R: ec <- escalc("SMCC", m1i=mean(x1), m2i=mean(x0), sd1i=sd(x1), sd2i=sd(x0), ni=6,
    #    ri=cor(x0,x1)); sprintf("%.17g", ec$yi / metafor:::.cmicalc(5)) -> 0.50385326113631179
    assert smc_change(MEAN_CHANGE, SD_CHANGE) == pytest.approx(0.50385326113631179, rel=1e-13)


def test_variances_are_metafors_large_sample_formulas() -> None:
    # metafor's vi is computed from its (bias-corrected) yi with the same formulas:
    # R: sprintf("%.17g", c(e$yi, e$vi)) -> 0.065009581518916351 0.0042950939328929632
    assert smc_variance(0.065009581518916351, N, R_BASELINE_FOLLOWUP, "baseline") == (
        pytest.approx(0.0042950939328929632, rel=1e-12)
    )
    # R: sprintf("%.17g", c(ec$yi, ec$vi)) -> 0.42361396545337188 0.18162073264392753
    assert smc_variance(0.42361396545337188, N, None, "change") == pytest.approx(
        0.18162073264392753, rel=1e-12
    )


def test_confidence_intervals_match_r() -> None:
    # R: s <- mean(d)/sd(x0); v <- 2*(1-r)/6 + s^2/12; s + c(-1,1)*qnorm(0.975)*sqrt(v)
    #   -> -0.053292382992954052 0.2079392658848169
    smc = smc_baseline(MEAN_CHANGE, SD_BASELINE)
    ci = smc_confidence_interval(smc, N, R_BASELINE_FOLLOWUP, "baseline")
    assert ci == pytest.approx((-0.053292382992954052, 0.2079392658848169), rel=1e-12)
    # R: s <- mean(d)/sd(d); v <- 1/6 + s^2/12; s + c(-1,1)*qnorm(0.975)*sqrt(v)
    #   -> -0.3455652422660842 1.3532717645387125
    smc = smc_change(MEAN_CHANGE, SD_CHANGE)
    ci = smc_confidence_interval(smc, N, None, "change")
    assert ci == pytest.approx((-0.3455652422660842, 1.3532717645387125), rel=1e-12)


def test_undefined_statistics_are_none() -> None:
    assert smc_baseline(1.0, 0.0) is None
    assert smc_change(0.0, 0.0) is None  # all changes zero
    assert smc_change(None, 1.0) is None
    assert smc_baseline(1.0, None) is None
    assert smc_confidence_interval(None, 10, 0.5, "baseline") is None
    assert smc_confidence_interval(0.3, 10, None, "baseline") is None  # r undefined
    assert smc_confidence_interval(0.3, 0, 0.5, "change") is None


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        smc_variance(0.1, 10, 0.5, "post")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        smc_confidence_interval(0.1, 10, 0.5, "baseline", level=1.0)
    with pytest.raises(ValueError, match="correlation"):
        smc_variance(0.1, 10, 1.5, "baseline")
    with pytest.raises(ValueError, match=">= 0"):
        smc_baseline(1.0, -2.0)


@given(
    st.floats(-3, 3),
    st.integers(2, 10_000),
    st.floats(-1, 1),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_interval_is_symmetric_and_widens_with_level(
    smc: float, n: int, r: float, level: float
) -> None:
    low, high = smc_confidence_interval(smc, n, r, "baseline", level)  # type: ignore[misc]
    assert low <= smc <= high
    assert (low + high) / 2 == pytest.approx(smc, abs=1e-12)
    wider = smc_confidence_interval(smc, n, r, "baseline", min(0.999, level + 0.005))
    assert wider is not None and wider[1] - wider[0] >= high - low
    variance = 2 * (1 - r) / n + smc**2 / (2 * n)
    z = stats.norm.ppf((1 + level) / 2)
    assert (high - low) / 2 == pytest.approx(z * math.sqrt(variance), rel=1e-12, abs=1e-15)

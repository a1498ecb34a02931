"""Tests of sscjak.shared.statistics.poisson against R's poisson.test literals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.poisson import poisson_rate_ci, rate_per_100_patient_years

# R 4.2.2: for (k in c(0,1,3,10,57)) sprintf("%.17g", poisson.test(k, 52.8)$conf.int)
R_CI_52_8_PATIENT_YEARS = {
    0: (0.0, 0.069865141176400289),
    1: (0.0004795039390963996, 0.10552354907081249),
    3: (0.01171727505484094, 0.16604683844208948),
    10: (0.090821755608568838, 0.34830219776548826),
    57: (0.81763718490387771, 1.3986763523288415),
}


@pytest.mark.parametrize("events", sorted(R_CI_52_8_PATIENT_YEARS))
def test_exact_ci_matches_r_poisson_test(events: int) -> None:
    expected = R_CI_52_8_PATIENT_YEARS[events]
    assert poisson_rate_ci(events, 52.8) == pytest.approx(expected, rel=1e-12, abs=0)


def test_other_level_matches_r() -> None:
    # R 4.2.2: sprintf("%.17g", poisson.test(3, 52.8, conf.level = 0.9)$conf.int)
    #   -> 0.015486580438711237 0.14684955545327133
    assert poisson_rate_ci(3, 52.8, level=0.9) == pytest.approx(
        (0.015486580438711237, 0.14684955545327133), rel=1e-12
    )


def test_rate_per_100_patient_years_of_the_contract_example() -> None:
    # docs/results-file.md: 3 herpes zoster events over 52.8 patient-years -> 5.7 (1.2, 16.6)
    rate, (low, high) = rate_per_100_patient_years(3, 52.8)
    assert rate == pytest.approx(300 / 52.8, rel=1e-15)
    assert (round(rate, 1), round(low, 1), round(high, 1)) == (5.7, 1.2, 16.6)
    assert (low, high) == pytest.approx((1.171727505484094, 16.604683844208948), rel=1e-12)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="events"):
        poisson_rate_ci(-1, 10.0)
    with pytest.raises(ValueError, match="events"):
        poisson_rate_ci(2.5, 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exposure"):
        poisson_rate_ci(2, 0.0)
    with pytest.raises(ValueError, match="level"):
        poisson_rate_ci(2, 10.0, level=0)


@given(st.integers(0, 5000), st.floats(0.1, 1e5))
def test_limits_have_the_garwood_tail_probabilities(events: int, exposure: float) -> None:
    low, high = poisson_rate_ci(events, exposure)
    assert 0 <= low <= events / exposure <= high
    # Garwood: P(X >= x | mu = low·T) = 0.025 and P(X <= x | mu = high·T) = 0.025.
    assert stats.poisson.cdf(events, high * exposure) == pytest.approx(0.025, rel=1e-6)
    if events > 0:
        assert stats.poisson.sf(events - 1, low * exposure) == pytest.approx(0.025, rel=1e-6)

"""Tests of sscjak.shared.statistics.heterogeneity against metafor literals, a direct float
DerSimonian–Laird, an exact rational one, and the documented fixed-point error bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.statistics.heterogeneity import (
    FIXED_POINT_SCALE,
    HETEROGENEITY_LABELS,
    MAX_TERM_MAGNITUDE,
    RANDOM_EFFECTS_LABELS,
    HeterogeneityResult,
    RandomEffectsResult,
    decode,
    dersimonian_laird,
    dersimonian_laird_from_pooled,
    fixed_point,
    heterogeneity_terms,
    left_out_terms,
    random_effects_estimate,
    random_effects_terms,
)

EPS = 2.0**-52


@dataclass(frozen=True)
class Direct:
    """DerSimonian–Laird computed centre by centre in floats, as metafor's rma.uni does."""

    q: float
    p_q: float
    i2: float
    h2: float
    tau2: float
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    z: float
    p_value: float


def dl_direct(theta: list[float], variance: list[float]) -> Direct:
    y, v = np.asarray(theta, dtype=float), np.asarray(variance, dtype=float)
    k = y.size
    w = 1.0 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - fixed) ** 2)) if k > 1 else 0.0
    df = k - 1
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (q - df) / c) if k > 1 else 0.0
    wstar = 1.0 / (v + tau2)
    estimate = float(np.sum(wstar * y) / np.sum(wstar))
    se = float(math.sqrt(1.0 / np.sum(wstar)))
    z = estimate / se
    crit = float(stats.norm.ppf(0.975))
    p_q = float(stats.chi2.sf(q, df)) if k > 1 else 1.0
    i2 = 100.0 * max(0.0, (q - df) / q) if q > 0 else 0.0
    h2 = max(1.0, q / df) if k > 1 else 1.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    return Direct(
        q, p_q, i2, h2, tau2, estimate, se, estimate - crit * se, estimate + crit * se, z, p_value
    )


def pooled(rows: list[tuple[int, ...]]) -> tuple[int, ...]:
    """What secure aggregation gives: the element-wise sum, checked to fit in int64."""
    sums = tuple(sum(column) for column in zip(*rows, strict=True))
    assert all(-(2**63) <= s < 2**63 for s in sums)
    return sums


def fixed_point_dl(
    theta: list[float], variance: list[float], left_out: int = 0
) -> tuple[HeterogeneityResult, RandomEffectsResult]:
    """The two secure exchanges: nodes encode, the coordinator sees only the sums."""
    first = [heterogeneity_terms(t, v).as_tuple() for t, v in zip(theta, variance, strict=True)]
    first += [left_out_terms().as_tuple()] * left_out
    heterogeneity = dersimonian_laird_from_pooled(pooled(first))
    second = pooled(
        [
            random_effects_terms(t, v, heterogeneity.tau2).as_tuple()
            for t, v in zip(theta, variance, strict=True)
        ]
    )
    return heterogeneity, random_effects_estimate(decode(second[0]), decode(second[1]))


# --- metafor 3.8-1 (R 4.2.2) reference values, printed with sprintf("%.17g"). For each
# dataset: r <- rma(yi, vi, method = "DL"); c(r$tau2, r$QE, r$QEp, r$I2, r$H2) and
# c(r$b, r$se, r$ci.lb, r$ci.ub, r$zval, r$pval); f <- rma(yi, vi, method = "FE"); c(f$b, f$se)


@dataclass(frozen=True)
class Metafor:
    yi: list[float]
    vi: list[float]
    tau2: float
    q: float
    p_q: float
    i2: float
    h2: float
    b: float
    se: float
    ci_lb: float
    ci_ub: float
    zval: float
    pval: float
    fe_b: float
    fe_se: float


METAFOR = {
    # yi <- c(-0.42, -0.10, -0.65, 0.12, -0.30); vi <- c(0.045, 0.062, 0.081, 0.030, 0.052)
    "five_heterogeneous": Metafor(
        [-0.42, -0.10, -0.65, 0.12, -0.30],
        [0.045, 0.062, 0.081, 0.030, 0.052],
        tau2=0.041706255655550251,
        q=7.3424119920558395,
        p_q=0.11886240511105886,
        i2=45.52198917293363,
        h2=1.8356029980139599,
        b=-0.23420010010820502,
        se=0.13615490988510812,
        ci_lb=-0.5010588198013135,
        ci_ub=0.032658619584903459,
        zval=-1.7201002909541094,
        pval=0.085414212871280676,
        fe_b=-0.20085173922717503,
        fe_se=0.098408307129589173,
    ),
    # yi <- c(-0.30, -0.28, -0.35, -0.25); vi <- c(0.04, 0.05, 0.06, 0.045)  (tau2 = 0)
    "four_homogeneous": Metafor(
        [-0.30, -0.28, -0.35, -0.25],
        [0.04, 0.05, 0.06, 0.045],
        tau2=0.0,
        q=0.099746136865342089,
        p_q=0.99186787088593154,
        i2=0.0,
        h2=1.0,
        b=-0.29192052980132444,
        se=0.10918117878702584,
        ci_lb=-0.50591170801352359,
        ci_ub=-0.077929351589125284,
        zval=-2.6737257560733885,
        pval=0.0075013767480002838,
        fe_b=-0.29192052980132444,
        fe_se=0.10918117878702584,
    ),
    # yi <- c(1.2, -0.5, 0.3, 2.5, -1.1, 0.8); vi <- c(0.02, 0.15, 0.08, 0.3, 0.05, 0.5)
    "six_very_heterogeneous": Metafor(
        [1.2, -0.5, 0.3, 2.5, -1.1, 0.8],
        [0.02, 0.15, 0.08, 0.3, 0.05, 0.5],
        tau2=1.4849570036308046,
        q=96.367195767195767,
        p_q=3.0781546970491017e-19,
        i2=94.811512402956069,
        h2=19.273439153439153,
        b=0.48758642914588002,
        se=0.52481951457196285,
        ci_lb=-0.54104091779896124,
        ci_ub=1.5162137760907213,
        zval=0.9290554478401023,
        pval=0.35286035163978791,
        fe_b=0.51164021164021167,
        fe_se=0.10286889997472795,
    ),
    # yi <- c(-0.2, 0.4); vi <- c(0.05, 0.08)
    "two_centres": Metafor(
        [-0.2, 0.4],
        [0.05, 0.08],
        tau2=0.11500000000000003,
        q=2.7692307692307701,
        p_q=0.096092329455673683,
        i2=63.8888888888889,
        h2=2.7692307692307701,
        b=0.075000000000000025,
        se=0.29895651857753502,
        ci_lb=-0.51094400935544815,
        ci_ub=0.66094400935544828,
        zval=0.25087260300212727,
        pval=0.80191260680108245,
        fe_b=0.030769230769230785,
        fe_se=0.17541160386140583,
    ),
    # yi <- -0.37; vi <- 0.05  (k = 1: metafor gives QE = 0, QEp = 1, I2 = 0, H2 = 1)
    "one_centre": Metafor(
        [-0.37],
        [0.05],
        tau2=0.0,
        q=0.0,
        p_q=1.0,
        i2=0.0,
        h2=1.0,
        b=-0.36999999999999994,
        se=0.22360679774997896,
        ci_lb=-0.80826127028829065,
        ci_ub=0.068261270288290765,
        zval=-1.6546903033498441,
        pval=0.097987335009220425,
        fe_b=-0.36999999999999994,
        fe_se=0.22360679774997896,
    ),
    # yi <- c(0.5, 0.5, 0.5); vi <- c(0.1, 0.2, 0.3)  (Q = 0: I2 = 0, QEp = 1)
    "equal_estimates": Metafor(
        [0.5, 0.5, 0.5],
        [0.1, 0.2, 0.3],
        tau2=0.0,
        q=0.0,
        p_q=1.0,
        i2=0.0,
        h2=1.0,
        b=0.49999999999999967,
        se=0.23354968324845682,
        ci_lb=0.042251032232286767,
        ci_ub=0.95774896776771257,
        zval=2.1408720964441872,
        pval=0.032284353910766915,
        fe_b=0.49999999999999967,
        fe_se=0.23354968324845682,
    ),
}


def close(actual: float, expected: float, rel: float) -> bool:
    # metafor's own float rounding leaves ~1e-16 where the exact value is 0.
    return actual == pytest.approx(expected, rel=rel, abs=1e-14)


@pytest.mark.parametrize("name", sorted(METAFOR))
def test_direct_float_dl_matches_metafor(name: str) -> None:
    ref = METAFOR[name]
    direct = dl_direct(ref.yi, ref.vi)
    pairs = [
        (direct.tau2, ref.tau2),
        (direct.q, ref.q),
        (direct.p_q, ref.p_q),
        (direct.i2, ref.i2),
        (direct.h2, ref.h2),
        (direct.estimate, ref.b),
        (direct.se, ref.se),
        (direct.ci_lower, ref.ci_lb),
        (direct.ci_upper, ref.ci_ub),
        (direct.z, ref.zval),
        (direct.p_value, ref.pval),
    ]
    assert all(close(a, e, 1e-9) for a, e in pairs), pairs


@pytest.mark.parametrize("name", sorted(METAFOR))
def test_exact_sums_match_metafor(name: str) -> None:
    # dersimonian_laird and random_effects_estimate on exact (unrounded) sums of the
    # float inputs: the formulas themselves, to 1e-9.
    ref = METAFOR[name]
    theta = [Fraction(t) for t in ref.yi]
    w = [1 / Fraction(v) for v in ref.vi]
    result = dersimonian_laird(
        sum(w),
        sum(wi * t for wi, t in zip(w, theta, strict=True)),
        sum(wi * t * t for wi, t in zip(w, theta, strict=True)),
        sum(wi * wi for wi in w),
        len(w),
    )
    assert result.k == len(w) and result.df == len(w) - 1
    for actual, expected in [
        (result.tau2, ref.tau2),
        (result.q, ref.q),
        (result.p_value, ref.p_q),
        (result.i2_percent, ref.i2),
        (result.h2, ref.h2),
        (result.fixed_effect_estimate, ref.fe_b),
        (result.fixed_effect_se, ref.fe_se),
    ]:
        assert close(actual, expected, 1e-9), (actual, expected)
    wstar = [1 / (Fraction(v) + Fraction(result.tau2)) for v in ref.vi]
    estimate = random_effects_estimate(
        sum(wstar), sum(ws * t for ws, t in zip(wstar, theta, strict=True))
    )
    for actual, expected in [
        (estimate.estimate, ref.b),
        (estimate.se, ref.se),
        (estimate.ci_lower, ref.ci_lb),
        (estimate.ci_upper, ref.ci_ub),
        (estimate.z, ref.zval),
        (estimate.p_value, ref.pval),
    ]:
        assert close(actual, expected, 1e-9), (actual, expected)


@pytest.mark.parametrize("name", sorted(METAFOR))
def test_fixed_point_sums_match_metafor(name: str) -> None:
    ref = METAFOR[name]
    heterogeneity, estimate = fixed_point_dl(ref.yi, ref.vi, left_out=2)
    assert (heterogeneity.k, heterogeneity.centres_left_out) == (len(ref.yi), 2)
    for actual, expected in [
        (heterogeneity.tau2, ref.tau2),
        (heterogeneity.q, ref.q),
        (heterogeneity.p_value, ref.p_q),
        (heterogeneity.i2_percent, ref.i2),
        (heterogeneity.h2, ref.h2),
        (heterogeneity.fixed_effect_estimate, ref.fe_b),
        (heterogeneity.fixed_effect_se, ref.fe_se),
        (estimate.estimate, ref.b),
        (estimate.se, ref.se),
        (estimate.ci_lower, ref.ci_lb),
        (estimate.ci_upper, ref.ci_ub),
        (estimate.z, ref.zval),
        (estimate.p_value, ref.pval),
    ]:
        # Q = 0 and tau2 = 0 come out as exact zeros (Q is clamped, tau2 truncated).
        assert actual == pytest.approx(expected, rel=1e-6, abs=1e-12), (actual, expected)


# --- edge cases and the encoder ---


def test_one_centre_is_metafors_k_equals_one() -> None:
    heterogeneity, estimate = fixed_point_dl([-0.37], [0.05])
    assert (heterogeneity.q, heterogeneity.df, heterogeneity.p_value) == (0.0, 0, 1.0)
    assert (heterogeneity.tau2, heterogeneity.i2_percent, heterogeneity.h2) == (0.0, 0.0, 1.0)
    assert estimate.se == pytest.approx(math.sqrt(0.05), rel=1e-9)


def test_no_centre_and_impossible_sums_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one centre"):
        dersimonian_laird(0, 0, 0, 0, 0)
    # Only centres left out: the pooled "centres" is 0.
    with pytest.raises(ValueError, match="at least one centre"):
        dersimonian_laird_from_pooled(pooled([left_out_terms().as_tuple()] * 3))
    with pytest.raises(ValueError, match="inconsistent"):
        dersimonian_laird(-5, 0, 1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent"):
        dersimonian_laird(5, 1, -1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent"):
        # Σw² = (Σw)² with two centres: impossible (c = 0).
        dersimonian_laird(2, 1, 1, 4, 2)
    with pytest.raises(TypeError):
        dersimonian_laird(1, 1, 1, 1, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 6 integers"):
        dersimonian_laird_from_pooled((1, 2, 3))
    with pytest.raises(ValueError, match="> 0"):
        random_effects_estimate(0, 1)
    with pytest.raises(ValueError, match="level"):
        random_effects_estimate(1, 1, level=1.0)


def test_equal_estimates_give_q_zero_and_i2_zero() -> None:
    heterogeneity, _ = fixed_point_dl([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])
    assert (heterogeneity.q, heterogeneity.i2_percent, heterogeneity.tau2) == (0.0, 0.0, 0.0)
    assert (heterogeneity.h2, heterogeneity.p_value) == (1.0, 1.0)
    # Rounding can leave a tiny negative Q: clamped to 0.
    assert dersimonian_laird(2, 2, Fraction(19, 10), 2, 2).q == 0.0


def test_encoder_rounds_half_to_even_and_decodes_exactly() -> None:
    assert [fixed_point(x, 1) for x in (0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999999999994)] == [
        0,
        2,
        2,
        0,
        -2,
        0,
    ]
    assert fixed_point(0.1) == round(Fraction(0.1) * 2**32)
    assert decode(3 * 2**31) == Fraction(3, 2)
    terms = heterogeneity_terms(-0.5, 0.25)
    assert terms.as_tuple() == (4 * 2**32, -2 * 2**32, 2**32, 16 * 2**32, 1, 0)
    assert len(terms.as_tuple()) == len(HETEROGENEITY_LABELS)
    assert left_out_terms().as_tuple() == (0, 0, 0, 0, 0, 1)
    re_terms = random_effects_terms(-0.5, 0.25, 0.25)
    assert re_terms.as_tuple() == (2 * 2**32, -(2**32))
    assert len(re_terms.as_tuple()) == len(RANDOM_EFFECTS_LABELS)
    # A term is the exact rounding of the exact value of the float inputs.
    t, v = 0.3, 0.07
    assert heterogeneity_terms(t, v).w_theta2 == round(
        Fraction(t) ** 2 / Fraction(v) * FIXED_POINT_SCALE
    )


def test_encoder_refuses_bad_inputs_and_overflowing_terms() -> None:
    with pytest.raises(ValueError, match="> 0"):
        heterogeneity_terms(0.1, 0.0)
    with pytest.raises(ValueError, match="finite"):
        heterogeneity_terms(float("nan"), 0.1)
    with pytest.raises(ValueError, match="finite"):
        heterogeneity_terms(0.1, float("inf"))
    with pytest.raises(ValueError, match=">= 0"):
        random_effects_terms(0.1, 0.1, -0.01)
    with pytest.raises(ValueError, match="range"):
        heterogeneity_terms(0.1, 5e-5)  # S·w² = 4e8·2^32 ≥ 2^59
    with pytest.raises(TypeError):
        fixed_point(True)


def test_sixteen_most_precise_centres_fit_in_int64() -> None:
    # The documented capacity: v = 1e-4 (w = 1e4, w² = 1e8) and |θ| = 10 at 16 centres.
    rows = [heterogeneity_terms(10.0, 1e-4).as_tuple()] * 16
    assert max(abs(x) for row in rows for x in row) < MAX_TERM_MAGNITUDE
    sums = pooled(rows)
    assert np.array(rows, dtype=np.int64).sum(axis=0).tolist() == list(sums)
    heterogeneity_terms(10.0, 8.7e-5)  # still below 2**59
    result = dersimonian_laird_from_pooled(sums)
    assert (result.k, result.q, result.tau2) == (16, 0.0, 0.0)


# --- the documented fixed-point error bounds, on random centres ---


@dataclass(frozen=True)
class Exact:
    a: Fraction
    b: Fraction
    c: Fraction
    d: Fraction
    q: Fraction
    scaling: Fraction
    tau2: Fraction


def dl_exact(theta: list[float], variance: list[float]) -> Exact:
    t = [Fraction(x) for x in theta]
    w = [1 / Fraction(v) for v in variance]
    a = sum(w, Fraction(0))
    b = sum((wi * ti for wi, ti in zip(w, t, strict=True)), Fraction(0))
    c = sum((wi * ti * ti for wi, ti in zip(w, t, strict=True)), Fraction(0))
    d = sum((wi * wi for wi in w), Fraction(0))
    k = len(w)
    q = c - b * b / a if k > 1 else Fraction(0)
    scaling = a - d / a
    tau2 = max(Fraction(0), (q - (k - 1)) / scaling) if k > 1 else Fraction(0)
    return Exact(a, b, c, d, q, scaling, tau2)


def random_effects_exact(
    theta: list[float], variance: list[float], tau2: Fraction
) -> tuple[Fraction, Fraction]:
    wstar = [1 / (Fraction(v) + tau2) for v in variance]
    a = sum(wstar, Fraction(0))
    return a, sum((ws * Fraction(t) for ws, t in zip(wstar, theta, strict=True)), Fraction(0)) / a


centres_strategy = st.integers(1, 12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-10.0, 10.0), min_size=k, max_size=k),
        st.lists(st.floats(-4.0, 1.0).map(lambda e: 10.0**e), min_size=k, max_size=k),
    )
)


def check_documented_bounds(theta: list[float], variance: list[float]) -> None:
    """The first-order error bounds of the module docstring hold for these centres."""
    k = len(theta)
    heterogeneity, estimate = fixed_point_dl(theta, variance)
    exact = dl_exact(theta, variance)
    eta = Fraction(k, 2 * FIXED_POINT_SCALE)
    fixed = exact.b / exact.a
    slack = Fraction(101, 100)  # room for the neglected higher-order terms
    # Q: |ΔQ| <= η (1 + |θ̄|)²
    bound_q = eta * (1 + abs(fixed)) ** 2
    assert abs(Fraction(heterogeneity.q) - exact.q) <= slack * bound_q + EPS * exact.q
    # τ²: |Δτ²| <= (|ΔQ| + τ² |Δc|)/c
    delta_tau2 = abs(Fraction(heterogeneity.tau2) - exact.tau2)
    if k > 1:
        bound_c = eta * (1 + 1 / exact.a + exact.d / exact.a**2)
        bound_tau2 = (bound_q + exact.tau2 * bound_c) / exact.scaling
        assert delta_tau2 <= slack * bound_tau2 + EPS * exact.tau2
    else:
        assert delta_tau2 == 0
    # SE and μ̂: the step-2 rounding plus the τ² carried to the nodes (first order).
    a_star, mu = random_effects_exact(theta, variance, exact.tau2)
    se = 1 / math.sqrt(a_star)
    wstar = [1 / (Fraction(v) + exact.tau2) for v in variance]
    rho = max(delta_tau2 / (Fraction(v) + exact.tau2) for v in variance)
    bound_se = eta / (2 * a_star) + rho / 2
    assert abs(estimate.se - se) / se <= float(slack * bound_se) + 4 * EPS
    spread = sum(
        (ws * ws * abs(Fraction(t) - mu) for ws, t in zip(wstar, theta, strict=True)), Fraction(0)
    )
    bound_mu_in_se = eta * (1 + abs(mu)) * Fraction(se) + delta_tau2 * spread * Fraction(se)
    assert abs(Fraction(estimate.estimate) - mu) <= slack * bound_mu_in_se * Fraction(se) + EPS * (
        abs(mu) + Fraction(se)
    )


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(centres_strategy)
def test_fixed_point_errors_within_documented_bounds(
    data: tuple[list[float], list[float]],
) -> None:
    check_documented_bounds(*data)


@settings(max_examples=400, deadline=None)
@given(centres_strategy)
def test_fixed_point_relative_error_at_most_1e6_on_typical_smcs(
    data: tuple[list[float], list[float]],
) -> None:
    """The 10⁻⁶ statements of the module docstring, against the direct float DL."""
    theta, variance = data
    k = len(theta)
    df = k - 1
    heterogeneity, estimate = fixed_point_dl(theta, variance)
    direct = dl_direct(theta, variance)
    exact = dl_exact(theta, variance)
    q = float(exact.q)
    if q >= 0.0141 * k:
        assert heterogeneity.q == pytest.approx(direct.q, rel=1e-6)
        assert heterogeneity.p_value == pytest.approx(direct.p_q, rel=1e-6, abs=1e-300)
    else:
        assert abs(heterogeneity.q - q) <= 1.41e-8 * k
    if q - df >= 0.0145 * k:
        assert heterogeneity.tau2 == pytest.approx(direct.tau2, rel=1e-6)
        assert heterogeneity.i2_percent == pytest.approx(direct.i2, rel=1e-6)
        assert heterogeneity.h2 == pytest.approx(direct.h2, rel=1e-6)
    elif k > 1:
        assert abs(heterogeneity.tau2 - float(exact.tau2)) <= 1.5e-8 * k / float(exact.scaling)
    if max(variance) / min(variance) <= 30 or q - df >= 0.03 * k:
        assert estimate.se == pytest.approx(direct.se, rel=1e-6)
    if heterogeneity.tau2 == 0.0 and exact.tau2 == 0:
        # No τ² error to carry: only the step-2 rounding, ≤ 2.6e-8·√k SE.
        assert abs(estimate.estimate - direct.estimate) <= 1e-6 * direct.se
        assert estimate.z == pytest.approx(direct.z, rel=1e-6, abs=1e-6)
        assert estimate.se == pytest.approx(direct.se, rel=1e-6)


def test_realistic_smcs_agree_to_1e9() -> None:
    """SMCs of 3–40 centres of 8–400 patients: errors of about 1e-10 relative."""
    rng = np.random.default_rng(20261126)
    worst = 0.0
    for _ in range(200):
        k = int(rng.integers(3, 41))
        n = rng.integers(8, 401, size=k)
        theta = list(rng.normal(-0.4, 0.35, size=k))
        variance = [1 / ni + t * t / (2 * ni) for ni, t in zip(n, theta, strict=True)]
        heterogeneity, estimate = fixed_point_dl(theta, variance)
        direct = dl_direct(theta, variance)
        for actual, expected, unit in [
            (heterogeneity.q, direct.q, direct.q),
            (heterogeneity.tau2, direct.tau2, max(direct.tau2, 1e-3)),
            (heterogeneity.i2_percent, direct.i2, max(direct.i2, 1.0)),
            (estimate.estimate, direct.estimate, direct.se),
            (estimate.se, direct.se, direct.se),
            (estimate.ci_lower, direct.ci_lower, direct.se),
            (estimate.z, direct.z, 1.0),
        ]:
            worst = max(worst, abs(actual - expected) / unit)
    assert worst < 1e-9


@pytest.mark.parametrize("offset", [0.0, 1e-9, 1e-7, 1e-4])
def test_knife_edge_q_at_df_with_a_very_precise_centre(offset: float) -> None:
    """The knife edge of the docstring: Q ≈ df, v_max/v_min = 10⁵. The τ² sent to the nodes
    is off by about 10⁻⁹ (absolute), which moves w* of the v = 10⁻⁴ centre by about 10⁻⁵
    relative: the SE is then off by up to a few 10⁻⁶, still within the documented
    first-order bound (checked here), and μ̂ by about 10⁻⁸ SE."""
    theta = [0.0, math.sqrt(10.0001) + offset]  # Q = Δθ²/(v₁ + v₂) = 1 = df at offset 0
    variance = [1e-4, 10.0]
    check_documented_bounds(theta, variance)
    heterogeneity, estimate = fixed_point_dl(theta, variance)
    direct = dl_direct(theta, variance)
    assert abs(heterogeneity.q - direct.q) <= 1.41e-8 * 2
    assert abs(heterogeneity.tau2 - direct.tau2) <= 1.5e-8 * 2 / 0.1
    assert abs(estimate.se - direct.se) <= 1e-5 * direct.se
    assert abs(estimate.estimate - direct.estimate) <= 1e-6 * direct.se

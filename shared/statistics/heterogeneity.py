"""DerSimonian–Laird random-effects meta-analysis of the centres' SMCs, from secure sums.

Each centre i computes its own standardized mean change θᵢ and its sampling variance vᵢ
(:mod:`.smc`) and releases only fixed-point integers; the coordinator sees their sums.
Two secure exchanges are needed, because the random-effects weights depend on τ²:

1. **Heterogeneity** (:func:`heterogeneity_terms`, :func:`dersimonian_laird`): with
   wᵢ = 1/vᵢ each centre contributes round(S·wᵢ), round(S·wᵢθᵢ), round(S·wᵢθᵢ²),
   round(S·wᵢ²), a 1 in "centres" and a 0 in "centres left out" (a centre below the
   plan's per-centre minimum contributes :func:`left_out_terms`: zeros and a 1 in
   "centres left out"). From the sums A = Σw, B = Σwθ, C = Σwθ², D = Σw² and k
   (DerSimonian & Laird 1986, *Control. Clin. Trials* 7:177–188; metafor's
   ``rma(yi, vi, method = "DL")``, Viechtbauer 2010, *J. Stat. Softw.* 36(3)):

   * Q = C − B²/A (= Σwᵢ(θᵢ − θ̄)², θ̄ = B/A the fixed-effect estimate), df = k − 1,
     p = ``pchisq(Q, df, lower.tail = FALSE)``;
   * τ² = max(0, (Q − df)/c) with c = A − D/A;
   * I² = 100·max(0, (Q − df)/Q) **in percent**, as metafor reports it (Higgins &
     Thompson 2002, *Stat. Med.* 21:1539–1558; metafor's 100·τ²/(τ² + s²) with
     s² = df/c is the same number for DL), 0 when Q = 0;
   * H² = max(1, Q/df), metafor's τ²/s² + 1 for DL (not the untruncated Q/df).

2. **Random effects** (:func:`random_effects_terms`, :func:`random_effects_estimate`):
   the coordinator sends τ² to the nodes; each contributes round(S·w*ᵢ) and
   round(S·w*ᵢθᵢ) with w*ᵢ = 1/(vᵢ + τ²). Then μ̂ = Σw*θ/Σw*, SE = √(1/Σw*),
   z = μ̂/SE, p = 2·(1 − Φ(|z|)), CI μ̂ ± qnorm(0.975)·SE (metafor's ``b``, ``se``,
   ``zval``, ``pval``, ``ci.lb``, ``ci.ub``).

k = 1: metafor 3.8-1 reports τ² = 0, Q = 0, **QEp = 1** (not NA), I² = 0, H² = 1; so
does :func:`dersimonian_laird`. k = 0 is refused, as in metafor ("Processing terminated
since k = 0").

Fixed point and its error
-------------------------
The scale is S = :data:`FIXED_POINT_SCALE` = 2³². Every integer is the exact
round-half-to-even of S times the exact rational value of the node's float inputs
(Python ``round`` of a ``Fraction``), so each contributed term is off by at most
1/(2S) ≈ 1.2·10⁻¹⁰, and each k-centre sum by at most η = k/(2S). The coordinator
decodes with :func:`decode` (an exact ``Fraction``) and evaluates every formula above
in exact rational arithmetic, rounding once at the end: the nodes' fixed-point rounding
is the only error. To first order (the neglected terms are below 10⁻⁸ of each bound
when every vᵢ ≤ 10):

* |ΔQ| ≤ η·(1 + |θ̄|)², from ΔQ = ΔC − 2θ̄·ΔB + θ̄²·ΔA.
* |Δc| ≤ η·(1 + 1/A + D/A²) ≤ η·(2 + 1/A), with c ≥ (k − 1)·min wᵢ.
* |Δτ²| ≤ (|ΔQ| + τ²·|Δc|)/c (the truncation at 0 does not increase it); when τ² > 0,
  |Δτ²|/τ² ≤ |ΔQ|/(Q − df) + |Δc|/c. I² moves by at most 100·df·|ΔQ|/Q².
* Step 2 with the exact τ²: |ΔSE|/SE ≤ η/(2·Σw*), |Δμ̂|/SE ≤ η·(1 + |μ̂|)·SE.
* The error of the τ² carried to the nodes changes w*ᵢ by the factor
  1 − ρᵢ, ρᵢ = Δτ²/(vᵢ + τ²), adding max ρᵢ/2 to |ΔSE|/SE and
  Δτ²·Σw*ᵢ²|θᵢ − μ̂|/√Σw* to |Δμ̂|/SE. Since c·(v_min + τ²) = c·v_min + max(0, Q − df)
  and c ≥ (k − 1)/v_max: max ρᵢ ≤ |ΔQ|·v_max/((k − 1)·v_min) + |Δc|/c, and when τ² > 0
  also ≤ |Δτ²|/τ² (then the μ̂ term is at most (|Δτ²|/τ²)·√Q, Cauchy–Schwarz).

Typical SMCs (|θᵢ| ≤ 10, vᵢ ∈ [10⁻⁴, 10], τ² ≤ 400) give |ΔQ| ≤ 121·k·2⁻³³ ≈
1.41·10⁻⁸·k and |Δc|/c ≤ 1.7·10⁻⁸, hence a relative error of at most 10⁻⁶

* for Q whenever Q ≥ 0.0141·k, for τ² whenever Q − df ≥ 0.0145·k;
* for the SE always when v_max/v_min ≤ 30 (|ΔSE|/SE ≤ 2.4·10⁻⁸ + 4.3·10⁻⁷), or
  when Q − df ≥ 0.03·k;
* for μ̂ in units of its SE (hence the CI and z) the step-2 part is ≤ 2.6·10⁻⁸·√k,
  the τ² part ≤ (|Δτ²|/τ²)·√Q when τ² > 0 and 0 when both τ² are 0.

It cannot be bounded relative to Q near Q = 0 (equal θᵢ give Q = 0 exactly, the
fixed-point Q then about 10⁻⁹, clamped at 0) nor relative to τ² near Q = df; there only
the absolute bounds hold (|ΔQ| ≤ 1.4·10⁻⁸·k, a τ² of at most 1.4·10⁻⁸·k/c where the
exact one is 0). On that knife edge a very precise centre (v_max/v_min far above 30)
feels such a τ²: with v = 10⁻⁴ and 10 at Q = df the SE is off by 2·10⁻⁶ (tested). The
centres' rounding errors behave like independent ones, so typical errors are of order
√k·2⁻³³(1 + |θ̄|)², about 10⁻¹⁰ relative:
``tests/shared/test_statistics_heterogeneity.py`` checks the first-order bounds and the
10⁻⁶ on random data over the typical range.

Capacity: the secure sum is exact in int64 (``docs/secure-aggregation.md``), so each
contributed integer must stay below :data:`MAX_TERM_MAGNITUDE` = 2⁵⁹ in absolute value:
any 16 centres then sum exactly whatever their data (S·w² < 2⁵⁹ means v > 8.6·10⁻⁵,
covering v ≥ 10⁻⁴). More centres sum exactly as long as Σ|terms| < 2⁶³, e.g. 1000
centres with v ≥ 7·10⁻⁴. A scale of 10⁹ would give 4.3 times the capacity at 4.3 times
the error; 2³² makes the decoding a division by a power of two.

No I/O, no randomness.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from fractions import Fraction
from typing import Final

#: S, the fixed-point scale of every contributed term: an integer counts units of 2⁻³².
FIXED_POINT_SCALE: Final = 2**32
#: Contributed integers must be below this in absolute value: 16 of them sum within int64.
MAX_TERM_MAGNITUDE: Final = 2**59
#: Labels of the first exchange's integers, in the order of :meth:`HeterogeneityTerms.as_tuple`.
HETEROGENEITY_LABELS: Final = (
    "sum_w",
    "sum_w_theta",
    "sum_w_theta2",
    "sum_w2",
    "centres",
    "centres_left_out",
)
#: Labels of the second exchange's integers, in the order of :meth:`RandomEffectsTerms.as_tuple`.
RANDOM_EFFECTS_LABELS: Final = ("sum_wstar", "sum_wstar_theta")

Number = int | float | Fraction


@dataclass(frozen=True)
class HeterogeneityTerms:
    """One centre's integers for the first exchange (fixed point at scale S).

    ``w``, ``w_theta``, ``w_theta2``, ``w2`` are round(S·w), round(S·wθ), round(S·wθ²),
    round(S·w²) with w = 1/v; ``centres`` is 1 for a contributing centre and
    ``centres_left_out`` 1 for a centre below the plan's per-centre minimum.
    """

    w: int
    w_theta: int
    w_theta2: int
    w2: int
    centres: int
    centres_left_out: int

    def as_tuple(self) -> tuple[int, ...]:
        """The integers in the order of :data:`HETEROGENEITY_LABELS`."""
        return astuple(self)


@dataclass(frozen=True)
class RandomEffectsTerms:
    """One centre's integers for the second exchange: round(S·w*), round(S·w*θ)."""

    wstar: int
    wstar_theta: int

    def as_tuple(self) -> tuple[int, ...]:
        """The integers in the order of :data:`RANDOM_EFFECTS_LABELS`."""
        return astuple(self)


@dataclass(frozen=True)
class HeterogeneityResult:
    """DerSimonian–Laird heterogeneity from the pooled sums (metafor ``rma(method = "DL")``).

    Attributes
    ----------
    k:
        Contributing centres.
    q:
        Cochran's Q (metafor ``QE``), ≥ 0; 0 when k = 1.
    df:
        k − 1.
    p_value:
        ``pchisq(Q, df, lower.tail = FALSE)`` (metafor ``QEp``); 1 when k = 1, as metafor.
    i2_percent:
        I² in percent (metafor ``I2``): 100·max(0, (Q − df)/Q), 0 when Q = 0 or k = 1.
    h2:
        H² (metafor ``H2``): max(1, Q/df), 1 when k = 1.
    tau2:
        DL between-centre variance τ² = max(0, (Q − df)/(A − D/A)); 0 when k = 1.
    fixed_effect_estimate, fixed_effect_se:
        Inverse-variance estimate B/A and its SE √(1/A) (metafor ``method = "FE"``).
    centres_left_out:
        Centres left out for being below the plan's per-centre minimum (passed through).
    """

    k: int
    q: float
    df: int
    p_value: float
    i2_percent: float
    h2: float
    tau2: float
    fixed_effect_estimate: float
    fixed_effect_se: float
    centres_left_out: int = 0


@dataclass(frozen=True)
class RandomEffectsResult:
    """Random-effects estimate μ̂ = Σw*θ/Σw* and its Wald inference (metafor ``rma``)."""

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    z: float
    p_value: float
    level: float = 0.95


def _exact(value: Number, name: str) -> Fraction:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got a bool")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return Fraction(value)


def fixed_point(value: Number, scale: int = FIXED_POINT_SCALE) -> int:
    """round(scale·value), half to even, exactly; refused from :data:`MAX_TERM_MAGNITUDE` on."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    integer = round(_exact(value, "value") * scale)
    if abs(integer) >= MAX_TERM_MAGNITUDE:
        raise ValueError(
            f"{value} × {scale} exceeds the fixed-point range ±2**59: the pooled sum "
            "could leave int64 (is a variance tiny?)"
        )
    return integer


def decode(integer: int, scale: int = FIXED_POINT_SCALE) -> Fraction:
    """A pooled fixed-point integer back in its unit: integer / scale, exactly."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    return Fraction(int(integer), scale)


def _check_estimate(theta: Number, variance: Number) -> tuple[Fraction, Fraction]:
    exact_theta = _exact(theta, "theta")
    exact_variance = _exact(variance, "variance")
    if exact_variance <= 0:
        raise ValueError(f"a sampling variance must be > 0, got {variance}")
    return exact_theta, exact_variance


def heterogeneity_terms(
    theta: Number, variance: Number, scale: int = FIXED_POINT_SCALE
) -> HeterogeneityTerms:
    """A contributing centre's first-exchange integers from its θ and v (w = 1/v)."""
    exact_theta, exact_variance = _check_estimate(theta, variance)
    w = 1 / exact_variance
    return HeterogeneityTerms(
        w=fixed_point(w, scale),
        w_theta=fixed_point(w * exact_theta, scale),
        w_theta2=fixed_point(w * exact_theta * exact_theta, scale),
        w2=fixed_point(w * w, scale),
        centres=1,
        centres_left_out=0,
    )


def left_out_terms() -> HeterogeneityTerms:
    """First-exchange integers of a centre left out (n below the per-centre minimum)."""
    return HeterogeneityTerms(0, 0, 0, 0, 0, 1)


def dersimonian_laird(
    sum_w: Number,
    sum_w_theta: Number,
    sum_w_theta2: Number,
    sum_w2: Number,
    k: int,
    *,
    centres_left_out: int = 0,
) -> HeterogeneityResult:
    """DerSimonian–Laird Q, τ², I², H² from the pooled sums Σw, Σwθ, Σwθ², Σw² of k centres.

    The sums are taken as exact rationals (``Fraction``, int or float, e.g. from
    :func:`decode`) and every formula is evaluated exactly, rounding once; see the
    module docstring for the formulas (DerSimonian & Laird 1986; metafor's
    ``rma.uni``) and for the error caused by the nodes' fixed-point rounding. A Q below
    0 (possible only through rounding, when all θᵢ are about equal) is taken as 0.

    Raises ``ValueError`` for k < 1 (metafor stops at k = 0) and for sums that no set
    of centres can produce (Σw ≤ 0, Σw² ≤ 0 or Σwθ² < 0: e.g. a sum that left int64).
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {k!r}")
    if k < 1:
        raise ValueError(f"a meta-analysis needs at least one centre, got k = {k}")
    a = _exact(sum_w, "sum_w")
    b = _exact(sum_w_theta, "sum_w_theta")
    c_sum = _exact(sum_w_theta2, "sum_w_theta2")
    d = _exact(sum_w2, "sum_w2")
    if a <= 0 or d <= 0 or c_sum < 0:
        raise ValueError(
            "inconsistent pooled sums: Σw and Σw² must be > 0 and Σwθ² >= 0 "
            f"(got {float(a)}, {float(d)}, {float(c_sum)}); did a sum overflow?"
        )
    df = k - 1
    fixed_estimate = float(b / a)
    fixed_se = 1.0 / math.sqrt(a)
    if k == 1:
        return HeterogeneityResult(
            1, 0.0, 0, 1.0, 0.0, 1.0, 0.0, fixed_estimate, fixed_se, centres_left_out
        )
    q = max(Fraction(0), c_sum - b * b / a)
    scaling = a - d / a
    if scaling <= 0:
        raise ValueError("inconsistent pooled sums: Σw − Σw²/Σw must be > 0 for k >= 2 centres")
    excess = q - df
    tau2 = max(Fraction(0), excess / scaling)
    i2 = 100 * max(Fraction(0), excess / q) if q > 0 else Fraction(0)
    h2 = max(Fraction(1), q / df)
    from scipy import stats  # imported when used: every summary layout imports this module

    p_value = float(stats.chi2.sf(float(q), df))
    return HeterogeneityResult(
        k,
        float(q),
        df,
        p_value,
        float(i2),
        float(h2),
        float(tau2),
        fixed_estimate,
        fixed_se,
        centres_left_out,
    )


def dersimonian_laird_from_pooled(
    pooled: tuple[int, ...] | list[int], scale: int = FIXED_POINT_SCALE
) -> HeterogeneityResult:
    """:func:`dersimonian_laird` of the pooled first-exchange integers (order of
    :data:`HETEROGENEITY_LABELS`): the four sums decoded, k = the pooled "centres"."""
    if len(pooled) != len(HETEROGENEITY_LABELS):
        raise ValueError(f"expected {len(HETEROGENEITY_LABELS)} integers, got {len(pooled)}")
    sum_w, sum_w_theta, sum_w_theta2, sum_w2, centres, left_out = (int(v) for v in pooled)
    return dersimonian_laird(
        decode(sum_w, scale),
        decode(sum_w_theta, scale),
        decode(sum_w_theta2, scale),
        decode(sum_w2, scale),
        centres,
        centres_left_out=left_out,
    )


def random_effects_terms(
    theta: Number, variance: Number, tau2: Number, scale: int = FIXED_POINT_SCALE
) -> RandomEffectsTerms:
    """A centre's second-exchange integers: round(S·w*), round(S·w*θ), w* = 1/(v + τ²)."""
    exact_theta, exact_variance = _check_estimate(theta, variance)
    exact_tau2 = _exact(tau2, "tau2")
    if exact_tau2 < 0:
        raise ValueError(f"tau2 must be >= 0, got {tau2}")
    wstar = 1 / (exact_variance + exact_tau2)
    return RandomEffectsTerms(fixed_point(wstar, scale), fixed_point(wstar * exact_theta, scale))


def random_effects_estimate(
    sum_wstar: Number, sum_wstar_theta: Number, level: float = 0.95
) -> RandomEffectsResult:
    """μ̂ = Σw*θ/Σw*, SE = √(1/Σw*), Wald CI μ̂ ± qnorm((1 + level)/2)·SE, z, two-sided p.

    metafor's ``rma(yi, vi, method = "DL")`` with ``test = "z"`` (its default):
    ``b``, ``se``, ``ci.lb``, ``ci.ub``, ``zval``, ``pval = 2·pnorm(|z|, lower.tail =
    FALSE)``. The sums are exact rationals (e.g. :func:`decode` of the pooled integers).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    a = _exact(sum_wstar, "sum_wstar")
    b = _exact(sum_wstar_theta, "sum_wstar_theta")
    if a <= 0:
        raise ValueError(f"Σw* must be > 0, got {float(a)}")
    estimate = float(b / a)
    se = 1.0 / math.sqrt(a)
    z = float(b / a * math.sqrt(a))
    from scipy import stats  # imported when used, as above

    half_width = float(stats.norm.ppf(0.5 + level / 2.0)) * se
    p_value = float(2.0 * stats.norm.sf(abs(z)))
    return RandomEffectsResult(
        estimate, se, estimate - half_width, estimate + half_width, z, p_value, level
    )

"""Wilcoxon signed-rank test of paired changes, from the pooled change histogram.

The pooled summary holds, for every grid value of the change d (in integer grid units),
how many patients have it. Ties in |d| are exactly the grid ties, so the midranks R's
``rank(abs(d))`` assigns are functions of the histogram: a group of t equal |d| values
preceded by a smaller |d| values gets the midrank a + (t + 1)/2. Everything below works
on the distinct |d| values only (a loop-free numpy computation over at most a few
thousand grid values), never on patients.

Two p-values are offered:

* :func:`signed_rank_test` — R's ``wilcox.test(d)`` with its defaults (R 4.0–4.5,
  ``src/library/stats/R/wilcox.test.R``): mu = 0, two-sided, ``exact = NULL``,
  ``correct = TRUE``. Zeros are dropped (Wilcoxon 1945; Pratt 1959 would keep them);
  the exact null distribution (``psignrank``) is used when fewer than 50 non-zero
  changes remain and there are neither ties nor zeros; otherwise the normal
  approximation with the tie correction Σ(t³ − t)/48 of the variance and the
  continuity correction 0.5·sign(V − E[V]). (R-devel of 2025 changed this rule; the
  contract fixes R 4.x.)
* :func:`exact_conditional_p` — opt-in exact p-value of the permutation distribution
  conditional on the observed midranks, zeros dropped, as
  ``exactRankTests::wilcox.exact(d)`` (Hothorn & Hornik; Streitberg & Röhmel 1986).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from scipy import fft as sp_fft
from scipy.optimize import brentq
from scipy.special import expit

from sscjak.shared.statistics.histogram_input import checked_histogram
from sscjak.shared.statistics.normal_approximation import continuity_corrected_p

#: R's ``exact = NULL`` rule: exact p only for fewer than this many non-zero changes.
EXACT_MAX_NONZERO = 50


@dataclass(frozen=True)
class SignedRankResult:
    """Outcome of a one-sample Wilcoxon signed-rank test of the changes against 0.

    Attributes
    ----------
    statistic_v:
        R's V: the sum of the midranks of |d| over the positive changes (zeros dropped).
    p_value:
        Two-sided p-value, or ``None`` when undefined (all changes zero or no changes).
    method:
        ``"exact"`` (``psignrank``), ``"normal"`` (normal approximation with tie and
        continuity correction) or ``None`` when there is no p-value.
    n_nonzero:
        Number of non-zero changes, the n of the test.
    n_zero:
        Number of zero changes, dropped.
    has_ties:
        Whether two non-zero changes share |d| (then R's midranks have ties).
    """

    statistic_v: float
    p_value: float | None
    method: Literal["exact", "normal"] | None
    n_nonzero: int
    n_zero: int
    has_ties: bool


@dataclass(frozen=True)
class AbsoluteChangeRanks:
    """Midranks of |d| over the non-zero changes, one entry per distinct |d| (ascending).

    ``doubled_midrank`` is 2 × the midrank, an exact integer: a tie group of size t
    whose members are preceded by a smaller |d| values occupies ranks a+1 … a+t, so its
    midrank is a + (t + 1)/2 and twice that is 2a + t + 1.
    """

    absolute_change: np.ndarray
    tie_size: np.ndarray
    positive_count: np.ndarray
    doubled_midrank: np.ndarray

    @property
    def n_nonzero(self) -> int:
        return int(self.tie_size.sum())

    @property
    def doubled_statistic_v(self) -> int:
        """2V = Σ over positive changes of their doubled midranks, exact."""
        return sum(
            int(c) * int(r) for c, r in zip(self.positive_count, self.doubled_midrank, strict=True)
        )


def absolute_change_ranks(change_units: np.ndarray, counts: np.ndarray) -> AbsoluteChangeRanks:
    """Midranks of |d| (R ``rank(abs(d))``, ties.method "average") from the histogram.

    Zeros are dropped first (Wilcoxon 1945), as R's ``wilcox.test`` does.
    """
    change_units, counts = checked_histogram(
        change_units, counts, values_name="change_units", integer_values=True
    )
    keep = (change_units != 0) & (counts > 0)
    change_units, counts = change_units[keep], counts[keep]
    absolute, group = np.unique(np.abs(change_units), return_inverse=True)
    # bincount sums float64 weights: exact for cohorts below 2**53 patients.
    tie_size = np.bincount(group, weights=counts, minlength=absolute.size).astype(np.int64)
    positive = np.where(change_units > 0, counts, 0)
    positive_count = np.bincount(group, weights=positive, minlength=absolute.size).astype(np.int64)
    preceding = np.cumsum(tie_size) - tie_size
    doubled_midrank = 2 * preceding + tie_size + 1
    return AbsoluteChangeRanks(absolute, tie_size, positive_count, doubled_midrank)


def signed_rank_null_counts(n: int) -> np.ndarray:
    """Number of subsets of {1, …, n} with each rank sum 0 … n(n+1)/2 (exact int64).

    The null distribution of V without ties (Wilcoxon 1945; R's ``dsignrank`` is
    ``counts / 2^n``), by the recurrence c_k(s) = c_{k−1}(s) + c_{k−1}(s − k). The counts
    are at most 2^n, exact in int64 for n < 63.
    """
    if n < 0 or n >= 63:
        raise ValueError(f"exact signed-rank counts need 0 <= n < 63, got {n}")
    total = n * (n + 1) // 2
    counts = np.zeros(total + 1, dtype=np.int64)
    counts[0] = 1
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return counts


def exact_p_value(statistic_v: int, n: int) -> float:
    """Two-sided exact p-value of R's ``wilcox.test`` without ties or zeros.

    R: ``p <- if (V > n(n+1)/4) psignrank(V - 1, n, lower.tail = FALSE) else
    psignrank(V, n); min(2 * p, 1)``.
    """
    counts = signed_rank_null_counts(n)
    if 4 * statistic_v > n * (n + 1):
        tail = int(counts[statistic_v:].sum())
    else:
        tail = int(counts[: statistic_v + 1].sum())
    return float(min(Fraction(2 * tail, 2**n), Fraction(1)))


def normal_p_value(ranks: AbsoluteChangeRanks) -> float | None:
    """Two-sided p-value of R's normal approximation with tie and continuity correction.

    z = (V − n(n+1)/4 − 0.5·sign(V − n(n+1)/4)) / σ with
    σ² = n(n+1)(2n+1)/24 − Σ(t³ − t)/48 over the tie groups t of |d| (R's
    ``wilcox.test.default``; e.g. Hollander & Wolfe 1999, §3.1), p = 2·min(Φ(z), 1 − Φ(z)).
    ``None`` when σ = 0 (no non-zero change), where R returns NaN.
    """
    n = ranks.n_nonzero
    t = ranks.tie_size
    tie_term = sum(int(x) ** 3 - int(x) for x in t)
    # 4(V − E[V]) = 2·(2V) − n(n+1) is an exact integer, σ² an exact fraction.
    centred_v_times_4 = 2 * ranks.doubled_statistic_v - n * (n + 1)
    variance = Fraction(n * (n + 1) * (2 * n + 1), 24) - Fraction(tie_term, 48)
    return continuity_corrected_p(Fraction(centred_v_times_4, 4), variance)


def signed_rank_test(change_units: np.ndarray, counts: np.ndarray) -> SignedRankResult:
    """R's ``wilcox.test(d)`` with its defaults, from the histogram of rounded changes.

    Parameters
    ----------
    change_units:
        Distinct changes in integer grid units (any order, no repeats).
    counts:
        How many patients have each change (non-negative integers).

    Notes
    -----
    Branches, as in R 4.x ``wilcox.test.default``: with n the number of non-zero
    changes, the exact distribution is used iff n < 50, no |d| is tied and no change is
    0; otherwise the normal approximation with tie and continuity corrections. When all
    changes are 0 (n = 0) R reports V = 0 and p = NaN; here ``p_value`` and ``method``
    are ``None``. An empty histogram is an error, as in R ("not enough observations").
    """
    change_units, counts = checked_histogram(
        change_units, counts, values_name="change_units", integer_values=True
    )
    if int(counts.sum()) == 0:
        raise ValueError("the signed-rank test needs at least one change (total count is 0)")
    n_zero = int(counts[change_units == 0].sum())
    ranks = absolute_change_ranks(change_units, counts)
    n = ranks.n_nonzero
    has_ties = bool(np.any(ranks.tie_size > 1))
    doubled_v = ranks.doubled_statistic_v
    statistic_v = doubled_v / 2
    if n == 0:
        return SignedRankResult(0.0, None, None, 0, n_zero, False)
    if n < EXACT_MAX_NONZERO and not has_ties and n_zero == 0:
        # Without ties every midrank is an integer, so V is an exact integer.
        p_value = exact_p_value(doubled_v // 2, n)
        return SignedRankResult(statistic_v, p_value, "exact", n, n_zero, has_ties)
    p_value = normal_p_value(ranks)
    method: Literal["normal"] | None = "normal" if p_value is not None else None
    return SignedRankResult(statistic_v, p_value, method, n, n_zero, has_ties)


#: Size limit of :func:`exact_conditional_p`: FFT length × number of distinct |d|.
#: 6·10⁷ takes about a second; n = 2000 non-zero changes over 20 distinct |d| values
#: needs about 2.6·10⁷.
EXACT_CONDITIONAL_MAX_WORK = 60_000_000
#: Half-width of the FFT window in units of √(Σ t·s²): by Hoeffding (1963) the tilted
#: statistic leaves it with probability below 2·exp(−2·5²) ≈ 4·10⁻²², i.e. below 10⁻¹⁶
#: relative to the tilted mass at the evaluation point.
_WINDOW_HOEFFDING_MULTIPLE = 5.0


def exact_conditional_p(change_units: np.ndarray, counts: np.ndarray) -> float | None:
    """Exact two-sided p-value conditional on the observed midranks, zeros dropped.

    This is ``exactRankTests::wilcox.exact(d, exact = TRUE)`` (one sample, mu = 0; note
    that wilcox.exact's own default switches to a normal approximation from 50 non-zero
    changes on, while this function is always exact): under H0 the
    signs of the non-zero changes are independent fair coins, so with the doubled
    midranks s_g (integers) and tie-group sizes t_g the doubled statistic is
    T = Σ_g s_g·K_g with independent K_g ~ Binomial(t_g, 1/2) (Streitberg & Röhmel
    1986, the shift algorithm ``cperm`` uses). The two-sided p-value is exactRankTests'
    ``pperm``: 2·P(T ≤ 2V) if that is ≤ 1, else 2·P(T ≥ 2V), capped at 1; by the symmetry
    of T about its mean this is min(1, 2·P(T ≤ min(2V, S − 2V))) with S = Σ t_g s_g.

    Returns ``None`` when no change is non-zero, or beyond the documented size limit
    (:data:`EXACT_CONDITIONAL_MAX_WORK`, the FFT length times the number of distinct
    |d|; n = 2000 with 20 distinct |d| values takes ≈ 0.3 s).

    Notes
    -----
    The lower tail is computed by exponential tilting (Esscher 1932) and an FFT of the
    tilted distribution: the tilt θ ≤ 0 centres T at the evaluation point m, so that
    P(T ≤ m) = M(θ)·e^{−θm}·Σ_{j ≤ m} Q_θ(j)·e^{θ(m−j)} is obtained to near double
    precision *relative* accuracy (about 10⁻¹³, tested down to p ≈ 10⁻¹⁸⁰; p-values
    below the float range come out as 0.0); a window of a few Hoeffding widths around
    m keeps the FFT short. Agreement with an exact rational computation is tested.
    """
    ranks = absolute_change_ranks(change_units, counts)
    n = ranks.n_nonzero
    if n == 0:
        return None
    scores = ranks.doubled_midrank.astype(np.int64)
    sizes = ranks.tie_size.astype(np.int64)
    total = int(np.dot(scores, sizes))  # = n(n+1)
    observed = ranks.doubled_statistic_v  # 2V, on the same doubled scale as T
    m = min(observed, total - observed)
    if 2 * m >= total:
        return 1.0
    if m < int(scores[0]):
        # Only the all-negative sign pattern has T ≤ m < smallest score.
        return float(min(1.0, 2.0 * 2.0**-n))
    spread = math.sqrt(float(np.dot(sizes, scores.astype(np.float64) ** 2)))
    half_window = math.ceil(_WINDOW_HOEFFDING_MULTIPLE * spread)
    length = min(total + 1, 2 * half_window + 1)
    length = sp_fft.next_fast_len(length, real=True)
    if length * scores.size > EXACT_CONDITIONAL_MAX_WORK:
        return None
    theta = _tilt_centring(scores, sizes, m)
    log_lower_tail = _tilted_log_lower_tail(scores, sizes, m, theta, length, total)
    return float(min(1.0, 2.0 * math.exp(log_lower_tail)))


def _tilted_mean(theta: float, scores: np.ndarray, sizes: np.ndarray) -> float:
    """E_θ[T] = Σ t_g s_g·expit(θ s_g) under the tilted law Q_θ(j) ∝ P(j)·e^{θj}."""
    return float(np.dot(sizes * scores, expit(theta * scores.astype(np.float64))))


def _tilt_centring(scores: np.ndarray, sizes: np.ndarray, m: int) -> float:
    """The θ ≤ 0 with E_θ[T] = m (E_θ is increasing in θ; E_0 = S/2 > m)."""
    low = -1.0 / float(scores[-1])
    while _tilted_mean(low, scores, sizes) > m:
        low *= 2.0
    return float(brentq(lambda t: _tilted_mean(t, scores, sizes) - m, low, 0.0, xtol=1e-300))


def _tilted_log_lower_tail(
    scores: np.ndarray, sizes: np.ndarray, m: int, theta: float, length: int, total: int
) -> float:
    """log P(T ≤ m) via the FFT of the tilted law over a window of ``length`` points.

    Q_θ's characteristic function is Π_g ((1 − q_g) + q_g·e^{−2πik s_g/L})^{t_g} with
    q_g = expit(θ s_g); its inverse real FFT is Q_θ folded modulo L (aliasing beyond the
    Hoeffding window is below 10⁻¹⁶ relative). The original law is recovered by
    P(j) = Q_θ(j)·M(θ)·e^{−θj} with log M(θ) = Σ t_g·(log(1 + e^{θ s_g}) − log 2).
    """
    theta_scores = theta * scores.astype(np.float64)
    q = expit(theta_scores)
    frequencies = np.arange(length // 2 + 1, dtype=np.int64)
    angles = 2.0 * np.pi * np.arange(length) / length
    cos_table, sin_table = np.cos(angles), np.sin(angles)
    # Accumulate log|φ| and arg φ in real arithmetic: for z = (1 − q) + q·e^{−iα},
    # |z|² = 1 − 2q(1 − q)(1 − cos α) and arg z = atan2(−q sin α, 1 − q + q cos α).
    log_modulus = np.zeros(frequencies.size)
    argument = np.zeros(frequencies.size)
    with np.errstate(divide="ignore"):
        for score, size, q_g in zip(scores, sizes, q, strict=True):
            index = (frequencies * int(score)) % length
            cos_a, sin_a = cos_table[index], sin_table[index]
            log_modulus += (0.5 * int(size)) * np.log1p(-2.0 * q_g * (1.0 - q_g) * (1.0 - cos_a))
            argument += int(size) * np.arctan2(-q_g * sin_a, (1.0 - q_g) + q_g * cos_a)
    modulus = np.exp(log_modulus)
    phi = modulus * np.cos(argument) + 1j * (modulus * np.sin(argument))
    folded = np.fft.irfft(phi, n=length)
    # Window of T values represented: j in [first, first + length), ending at m + margin.
    first = max(0, m - (length - 1) // 2) if length <= total else 0
    j = np.arange(first, min(m, first + length - 1) + 1, dtype=np.int64)
    weights = np.exp(theta * (m - j).astype(np.float64))  # θ ≤ 0, m − j ≥ 0: weights ≤ 1
    tilted_sum = float(np.dot(np.clip(folded[j % length], 0.0, None), weights))
    log_m = float(np.dot(sizes, np.logaddexp(0.0, theta_scores) - math.log(2.0)))
    return log_m - theta * m + math.log(tilted_sum)

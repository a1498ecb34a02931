"""Rank tests of the change d between strata, exactly from the per-stratum histograms.

The pooled summary holds, for every stratum k and every grid value of the change d (in
integer grid units), how many patients of stratum k have it: a matrix ``counts[k, j]``
over the sorted distinct ``values[j]``. Ties in d are exactly the grid ties, so the
midranks R's ``rank(d)`` assigns to the stacked rows are functions of the column totals
t_j = Σ_k counts[k, j]: the t_j patients at ``values[j]``, preceded by a_j smaller
values, all get the midrank a_j + (t_j + 1)/2 (twice that, 2a_j + t_j + 1, is an exact
integer). Rank sums per stratum, the tie term Σ(t³ − t) and hence both statistics below
are exact rationals computed on the distinct values only, never on patients.

* :func:`kruskal_wallis` — R's ``kruskal.test(d ~ stratum)`` (R 4.x,
  ``src/library/stats/R/kruskal.test.R``; Kruskal & Wallis 1952; the tie correction
  divides H by 1 − Σ(t³ − t)/(N³ − N), Hollander & Wolfe 1999, §6.1).
* :func:`two_sample_wilcoxon` — R's ``wilcox.test(d ~ stratum)`` for two strata with its
  defaults (two-sided, mu = 0, ``exact = NULL``, ``correct = TRUE``; R 4.x,
  ``src/library/stats/R/wilcox.test.R``, Wilcoxon 1945, Mann & Whitney 1947).

Empty strata: both R formula methods turn the grouping variable into ``factor(g)``,
which drops levels without observations, so an empty stratum is simply not a group
(it does not count in the Kruskal–Wallis df, and ``wilcox.test`` accepts three levels
of which one is empty). Both functions here drop all-zero rows in the same way.

No I/O, no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import stats

from sscjak.shared.statistics.histogram_input import checked_histogram
from sscjak.shared.statistics.normal_approximation import continuity_corrected_p

#: R's ``exact = NULL`` rule of the two-sample test: exact p only when both strata have
#: fewer than this many patients (and there are no ties).
EXACT_MAX_PER_STRATUM = 50


@dataclass(frozen=True)
class StrataRanks:
    """Pooled midranks of d and the per-stratum rank sums, from the histograms.

    Attributes
    ----------
    values:
        Distinct grid values of d present in the pooled sample, ascending.
    tie_size:
        t_j, the number of patients (all strata) at each value.
    doubled_midrank:
        2 × R's ``rank(d)`` (ties "average") at each value: 2a_j + t_j + 1, exact.
    stratum_sizes:
        Patients per stratum, in the row order of the input (empty strata included).
    doubled_rank_sums:
        2 × the sum of the midranks of each stratum's patients, exact, same order.
    """

    values: np.ndarray
    tie_size: np.ndarray
    doubled_midrank: np.ndarray
    stratum_sizes: tuple[int, ...]
    doubled_rank_sums: tuple[int, ...]

    @property
    def n(self) -> int:
        """Patients over all strata."""
        return sum(self.stratum_sizes)

    @property
    def tie_term(self) -> int:
        """Σ(t³ − t) over the groups of tied values, exact."""
        return sum(int(t) ** 3 - int(t) for t in self.tie_size)

    @property
    def has_ties(self) -> bool:
        """Whether two patients (of any strata) share a value of d."""
        return bool(np.any(self.tie_size > 1))


@dataclass(frozen=True)
class KruskalWallisResult:
    """Outcome of R's ``kruskal.test(d ~ stratum)``.

    Attributes
    ----------
    statistic_h:
        The tie-corrected H ("Kruskal-Wallis chi-squared"), or ``None`` when every
        patient has the same d (R: NaN, the tie correction is 0/0).
    df:
        Non-empty strata − 1.
    p_value:
        ``pchisq(H, df, lower.tail = FALSE)``, ``None`` when H is.
    n:
        Patients over all strata.
    stratum_sizes:
        Patients per stratum in input order, empty strata included (they are not groups).
    has_ties:
        Whether two patients share a value of d.
    """

    statistic_h: float | None
    df: int
    p_value: float | None
    n: int
    stratum_sizes: tuple[int, ...]
    has_ties: bool


@dataclass(frozen=True)
class RankSumResult:
    """Outcome of R's ``wilcox.test(d ~ stratum)`` (Wilcoxon rank-sum / Mann–Whitney).

    Attributes
    ----------
    statistic_w:
        R's W: the rank sum of the first non-empty stratum minus n_x(n_x + 1)/2, i.e. the
        Mann–Whitney U of that stratum (ties count 1/2).
    p_value:
        Two-sided p-value, ``None`` when every patient has the same d (R: NaN).
    method:
        ``"exact"`` (``pwilcox``), ``"normal"`` (normal approximation with tie and
        continuity correction) or ``None`` when there is no p-value.
    n_x, n_y:
        Patients in the first and second non-empty stratum (R's x and y: the factor
        levels in order).
    strata:
        Row indices of the input of these two strata.
    has_ties:
        Whether two patients share a value of d.
    """

    statistic_w: float
    p_value: float | None
    method: Literal["exact", "normal"] | None
    n_x: int
    n_y: int
    strata: tuple[int, int]
    has_ties: bool


def strata_ranks(values: np.ndarray, counts: np.ndarray) -> StrataRanks:
    """Midranks of the pooled d (R ``rank(d)``) and the exact per-stratum rank sums.

    Parameters
    ----------
    values:
        Distinct changes in integer grid units (any order, no repeats).
    counts:
        ``counts[k, j]`` patients of stratum k with change ``values[j]`` (non-negative
        integers; one row per stratum, the summed per-centre histograms).
    """
    values, counts = checked_histogram(values, counts, integer_values=True, per_stratum=True)
    totals = counts.sum(axis=0)
    present = totals > 0
    values, counts, totals = values[present], counts[:, present], totals[present]
    preceding = np.cumsum(totals) - totals
    doubled_midrank = 2 * preceding + totals + 1
    sizes = tuple(int(s) for s in counts.sum(axis=1))
    rank_sums = tuple(
        sum(int(c) * int(r) for c, r in zip(row, doubled_midrank, strict=True)) for row in counts
    )
    return StrataRanks(values, totals, doubled_midrank, sizes, rank_sums)


def kruskal_wallis(values: np.ndarray, counts: np.ndarray) -> KruskalWallisResult:
    """R's ``kruskal.test(d ~ stratum)`` from the per-stratum histograms of d.

    H = [12/(N(N + 1)) · Σ_k R_k²/n_k − 3(N + 1)] / [1 − Σ(t³ − t)/(N³ − N)] over the
    non-empty strata k with rank sums R_k (R's ``kruskal.test.default``; Kruskal & Wallis
    1952, eq. 1.1 and the tie correction of §1.3), df = non-empty strata − 1,
    p = ``pchisq(H, df, lower.tail = FALSE)``. H is evaluated as an exact rational and
    rounded once.

    Raises ``ValueError`` where R stops: fewer than two patients ("not enough
    observations") or fewer than two non-empty strata ("all observations are in the same
    group"). When every patient has the same d, R gives H = NaN; here ``statistic_h``
    and ``p_value`` are ``None``.
    """
    ranks = strata_ranks(values, counts)
    n = ranks.n
    groups = [
        (size, s)
        for size, s in zip(ranks.stratum_sizes, ranks.doubled_rank_sums, strict=True)
        if size > 0
    ]
    if len(groups) < 2:
        raise ValueError(
            "all observations are in the same stratum (fewer than two non-empty strata)"
        )
    if n < 2:
        raise ValueError("not enough observations")
    df = len(groups) - 1
    # R_k = D_k / 2 with D_k the doubled rank sum: Σ R_k²/n_k = Σ D_k²/(4 n_k).
    spread = sum(Fraction(d * d, 4 * size) for size, d in groups)
    numerator = Fraction(12, n * (n + 1)) * spread - 3 * (n + 1)
    denominator = 1 - Fraction(ranks.tie_term, n**3 - n)
    if denominator == 0:
        return KruskalWallisResult(None, df, None, n, ranks.stratum_sizes, ranks.has_ties)
    statistic = float(numerator / denominator)
    p_value = float(stats.chi2.sf(statistic, df))
    return KruskalWallisResult(statistic, df, p_value, n, ranks.stratum_sizes, ranks.has_ties)


@lru_cache(maxsize=64)
def _rank_sum_null_counts(n_x: int, n_y: int) -> tuple[int, ...]:
    counts = np.zeros(n_x * n_y + 1, dtype=object)
    counts[:] = 0
    counts[0] = 1
    length = counts.size
    for i in range(1, n_x + 1):
        # Multiply by (1 − q^(n_y + i)), truncated to degree n_x·n_y …
        shift = n_y + i
        if shift < length:
            counts[shift:] = counts[shift:] - counts[:-shift]
        # … and divide by (1 − q^i): P[k] = A[k] + P[k − i], a cumulative sum per residue.
        padded = np.zeros(-(-length // i) * i, dtype=object)
        padded[:] = 0
        padded[:length] = counts
        counts = np.cumsum(padded.reshape(-1, i), axis=0).reshape(-1)[:length]
    return tuple(int(c) for c in counts)


def rank_sum_null_counts(n_x: int, n_y: int) -> tuple[int, ...]:
    """Number of rankings giving each W = 0 … n_x·n_y, exact (R's ``dwilcox`` × C(n, n_x)).

    Without ties, W of n_x patients among N = n_x + n_y has generating function the
    Gaussian binomial coefficient Π_{i=1}^{n_x} (1 − q^{n_y + i})/(1 − q^i) (Mann &
    Whitney 1947; Andrews 1976, Thm 3.1), expanded here in exact integers; the counts
    sum to C(N, n_x).
    """
    if n_x < 0 or n_y < 0:
        raise ValueError(f"stratum sizes must be >= 0, got {n_x} and {n_y}")
    return _rank_sum_null_counts(min(n_x, n_y), max(n_x, n_y))


def exact_p_value(statistic_w: int, n_x: int, n_y: int) -> float:
    """Two-sided exact p-value of R's ``wilcox.test`` for two samples without ties.

    R: ``p <- if (W > n_x n_y / 2) pwilcox(W - 1, n_x, n_y, lower.tail = FALSE) else
    pwilcox(W, n_x, n_y); min(2 * p, 1)``. The distribution of W is symmetric, so the
    counts are the same whichever stratum is x.
    """
    counts = rank_sum_null_counts(n_x, n_y)
    if 2 * statistic_w > n_x * n_y:
        tail = sum(counts[statistic_w:])
    else:
        tail = sum(counts[: statistic_w + 1])
    return float(min(Fraction(2 * tail, math.comb(n_x + n_y, n_x)), Fraction(1)))


def normal_p_value(doubled_w: int, n_x: int, n_y: int, tie_term: int) -> float | None:
    """Two-sided p-value of R's normal approximation with tie and continuity correction.

    z = (W − n_x n_y/2 − 0.5·sign(W − n_x n_y/2)) / σ with
    σ² = (n_x n_y/12)·[(N + 1) − Σ(t³ − t)/(N(N − 1))] (R's ``wilcox.test.default``;
    Hollander & Wolfe 1999, §4.1), p = 2·min(Φ(z), 1 − Φ(z)). ``doubled_w`` is 2W (an
    exact integer). ``None`` when σ = 0 (every patient has the same d), where R gives NaN.
    """
    n = n_x + n_y
    variance = Fraction(n_x * n_y, 12) * (n + 1 - Fraction(tie_term, n * (n - 1)))
    return continuity_corrected_p(Fraction(doubled_w - n_x * n_y, 2), variance)


def two_sample_wilcoxon(values: np.ndarray, counts: np.ndarray) -> RankSumResult:
    """R's ``wilcox.test(d ~ stratum)`` with its defaults, from the per-stratum histograms.

    Parameters
    ----------
    values:
        Distinct changes in integer grid units (any order, no repeats).
    counts:
        ``counts[k, j]`` patients of stratum k with change ``values[j]``; after dropping
        all-zero rows (R's ``factor(g)`` drops unused levels) exactly two strata must
        remain. The first is R's x (the first factor level), whose W is reported.

    Notes
    -----
    Branches, as in R 4.x ``wilcox.test.default``: W = R_x − n_x(n_x + 1)/2; the exact
    distribution (``pwilcox``) is used iff n_x < 50 and n_y < 50 and no two patients
    share a value of d; otherwise the normal approximation with the tie-corrected
    variance and the continuity correction 0.5·sign(W − n_x n_y/2). ``ValueError`` where
    R stops ("grouping factor must have exactly 2 levels").
    """
    ranks = strata_ranks(values, counts)
    strata = [k for k, size in enumerate(ranks.stratum_sizes) if size > 0]
    if len(strata) != 2:
        raise ValueError(
            f"the two-sample test needs exactly two non-empty strata, got {len(strata)}"
        )
    x, y = strata
    n_x, n_y = ranks.stratum_sizes[x], ranks.stratum_sizes[y]
    doubled_w = ranks.doubled_rank_sums[x] - n_x * (n_x + 1)
    statistic_w = doubled_w / 2
    has_ties = ranks.has_ties
    if n_x < EXACT_MAX_PER_STRATUM and n_y < EXACT_MAX_PER_STRATUM and not has_ties:
        # Without ties every midrank is an integer, so W is an exact integer.
        p_value = exact_p_value(doubled_w // 2, n_x, n_y)
        return RankSumResult(statistic_w, p_value, "exact", n_x, n_y, (x, y), has_ties)
    p_normal = normal_p_value(doubled_w, n_x, n_y, ranks.tie_term)
    method: Literal["normal"] | None = "normal" if p_normal is not None else None
    return RankSumResult(statistic_w, p_normal, method, n_x, n_y, (x, y), has_ties)

"""Means, standard deviations and correlations from exact integer sums.

The pooled summary carries, per change cell, the count n and exact integer sums in
grid units (value / resolution): Σx0, Σx0², Σd, Σd², Σx0·d, with x0 the baseline value
and d the change, so that the follow-up value is x1 = x0 + d. Every function here
forms its numerator and denominator in exact integer arithmetic (Python ints never
overflow), e.g. ``n·Σx² − (Σx)²`` for the sum of squared deviations times n, and only
then converts to float, so there is no catastrophic cancellation and the results equal
R's ``mean()``, ``sd()`` and ``cor()`` on the stacked rows to floating-point rounding.

Convention for degenerate data (docs/statistics.md: undefined statistics are ``null``):
an SD of 0 is a valid SD and is returned as ``0.0``; a correlation needs both SDs > 0
and is ``None`` otherwise (R's ``cor()`` returns NA there), and statistics that divide
by an SD (the SMCs) return ``None`` when it is 0 (see :mod:`.smc`).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


def _exact_int(name: str, value: object) -> int:
    """``value`` as a Python int (numpy integers accepted); floats and bools refused."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an exact integer (grid units), got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an exact integer (grid units), got {value!r}") from None


def _count(n: object) -> int:
    value = _exact_int("n", n)
    if value < 0:
        raise ValueError(f"n must be >= 0, got {value}")
    return value


def _units(units_per_value: object) -> int:
    value = _exact_int("units_per_value", units_per_value)
    if value <= 0:
        raise ValueError(f"units_per_value must be a positive integer, got {value}")
    return value


def mean_from_sums(n: int, sum_x: int, units_per_value: int = 1) -> float | None:
    """Arithmetic mean Σx / n in the measure's units (R ``mean(x)``); ``None`` if n = 0.

    ``sum_x`` is in grid units; the mean is ``sum_x / (n · units_per_value)``, computed as
    one correctly rounded division of exact integers.
    """
    n, sum_x, units_per_value = _count(n), _exact_int("sum_x", sum_x), _units(units_per_value)
    if n == 0:
        return None
    return float(Fraction(sum_x, n * units_per_value))


def sum_squared_deviations_times_n(n: int, sum_x: int, sum_x2: int) -> int:
    """n·Σ(x − x̄)² = n·Σx² − (Σx)², exact (the textbook identity, no float involved)."""
    n, sum_x, sum_x2 = _count(n), _exact_int("sum_x", sum_x), _exact_int("sum_x2", sum_x2)
    value = n * sum_x2 - sum_x * sum_x
    if value < 0:
        raise ValueError(
            f"inconsistent sums: n·Σx² − (Σx)² = {value} < 0 (n={n}, Σx={sum_x}, Σx²={sum_x2})"
        )
    return value


def sd_from_sums(n: int, sum_x: int, sum_x2: int, units_per_value: int = 1) -> float | None:
    """Sample standard deviation with denominator n − 1 (R ``sd(x)``).

    ``s² = (n·Σx² − (Σx)²) / (n·(n − 1))`` (e.g. Chan, Golub & LeVeque 1983, the "textbook"
    one-pass formula, here exact because the sums are integers), divided by
    ``units_per_value²`` to return to the measure's units. ``None`` when n < 2 (R gives NA);
    ``0.0`` when all values are equal.
    """
    units_per_value = _units(units_per_value)
    numerator = sum_squared_deviations_times_n(n, sum_x, sum_x2)
    n = _count(n)
    if n < 2:
        return None
    variance = Fraction(numerator, n * (n - 1) * units_per_value * units_per_value)
    return _sqrt_fraction(variance)


def _sqrt_fraction(value: Fraction) -> float:
    """√value of an exact non-negative fraction: a correctly rounded float, then sqrt
    (within 1 ulp; the fractions here are variances and r², far from float overflow)."""
    return math.sqrt(float(value))


def pearson_from_sums(
    n: int, sum_x: int, sum_y: int, sum_xx: int, sum_yy: int, sum_xy: int
) -> float | None:
    """Pearson product-moment correlation from exact sums (R ``cor(x, y)``).

    ``r = (n·Σxy − Σx·Σy) / √((n·Σx² − (Σx)²)·(n·Σy² − (Σy)²))`` (Pearson 1896). The
    numerator and both factors of the denominator are exact integers; ``None`` when
    n < 2 or either variable is constant (R returns NA with a warning). The result is
    clipped to [−1, 1] against the last-bit rounding of the square root.
    """
    n, sum_x, sum_y = _count(n), _exact_int("sum_x", sum_x), _exact_int("sum_y", sum_y)
    sum_xy = _exact_int("sum_xy", sum_xy)
    sxx = sum_squared_deviations_times_n(n, sum_x, sum_xx)
    syy = sum_squared_deviations_times_n(n, sum_y, sum_yy)
    if n < 2 or sxx == 0 or syy == 0:
        return None
    sxy = n * sum_xy - sum_x * sum_y
    # r² = sxy² / (sxx·syy) exactly; take the sign from sxy.
    r_squared = Fraction(sxy * sxy, sxx * syy)
    if r_squared > 1:
        raise ValueError("inconsistent sums: |r| > 1 (Cauchy-Schwarz violated)")
    r = math.copysign(_sqrt_fraction(r_squared), sxy)
    return max(-1.0, min(1.0, r))


def baseline_followup_correlation(
    n: int, s_x0: int, s_x0sq: int, s_d: int, s_dsq: int, s_x0d: int
) -> float | None:
    """Pearson r of (baseline x0, follow-up x1 = x0 + d) from the sums of x0 and d.

    The summary layout carries Σx0, Σx0², Σd, Σd², Σx0·d. By linearity
    Σx1 = Σx0 + Σd, Σx1² = Σx0² + 2·Σx0·d + Σd², Σx0·x1 = Σx0² + Σx0·d, all exact integers,
    and r is then :func:`pearson_from_sums` (this is the r in Becker's 1988 variance of the
    standardized mean change, docs/statistics.md). Units cancel in r, so grid units are fine.
    """
    s_x0, s_x0sq = _exact_int("s_x0", s_x0), _exact_int("s_x0sq", s_x0sq)
    s_d, s_dsq, s_x0d = (
        _exact_int("s_d", s_d),
        _exact_int("s_dsq", s_dsq),
        _exact_int("s_x0d", s_x0d),
    )
    s_x1 = s_x0 + s_d
    s_x1sq = s_x0sq + 2 * s_x0d + s_dsq
    s_x0x1 = s_x0sq + s_x0d
    return pearson_from_sums(n, s_x0, s_x1, s_x0sq, s_x1sq, s_x0x1)


@dataclass(frozen=True)
class ChangeCellSums:
    """The exact integer moments of a change cell, in grid units (see module docstring)."""

    n: int
    sum_baseline: int
    sum_baseline_squared: int
    sum_change: int
    sum_change_squared: int
    sum_baseline_times_change: int

    @classmethod
    def of(cls, baseline_units: np.ndarray, change_units: np.ndarray) -> ChangeCellSums:
        """The sums of one cell's patients: baseline x₀ and change d in grid units."""
        x0 = np.asarray(baseline_units, dtype=np.int64)
        d = np.asarray(change_units, dtype=np.int64)
        return cls(
            int(x0.size),
            int(x0.sum()),
            int((x0 * x0).sum()),
            int(d.sum()),
            int((d * d).sum()),
            int((x0 * d).sum()),
        )

    def correlation(self) -> float | None:
        """Pearson r of baseline and follow-up (:func:`baseline_followup_correlation`)."""
        return baseline_followup_correlation(
            self.n,
            self.sum_baseline,
            self.sum_baseline_squared,
            self.sum_change,
            self.sum_change_squared,
            self.sum_baseline_times_change,
        )

"""The normal approximation of a rank statistic, as R's ``wilcox.test`` computes it.

One function for the one-sample (signed-rank) and the two-sample (rank-sum) tests: the
statistic's distance from its mean, less a continuity correction of half a unit towards
the mean, divided by its standard deviation (tie-corrected by the caller), two-sided
(R 4.x ``src/library/stats/R/wilcox.test.R``, ``correct = TRUE``; Hollander & Wolfe 1999,
§3.1 and §4.1).
"""

from __future__ import annotations

import math
from fractions import Fraction

from scipy import stats


def continuity_corrected_p(centred: Fraction, variance: Fraction) -> float | None:
    """Two-sided p of z = (centred − ½·sign(centred)) / √variance, 2·min(Φ(z), 1 − Φ(z));
    ``None`` when the variance is not positive (every value tied: R gives NaN)."""
    if variance <= 0:
        return None
    sign = (centred > 0) - (centred < 0)
    z = float(centred - Fraction(sign, 2)) / math.sqrt(float(variance))
    return float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))

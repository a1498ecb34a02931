"""Standardized mean change of paired measurements and its large-sample CI.

docs/statistics.md: ``smc_baseline`` = mean change / SD of the baseline values (Becker 1988,
"Synthesizing standardized mean-change measures", Br. J. Math. Stat. Psychol.
41:257-278; metafor's ``escalc(measure = "SMCR")`` without the small-sample bias
correction) and ``smc_change`` = mean change / SD of the changes (metafor's "SMCC",
Cohen's d_z). Both are ``None`` (JSON null) when the SD they divide by is 0 or missing.
"""

from __future__ import annotations

import math
import operator
from typing import Literal

from sscjak.shared.statistics.moments import (
    ChangeCellSums,
    mean_from_sums,
    sd_from_sums,
)

SmcKind = Literal["baseline", "change"]


def _ratio(mean_change: float | None, sd: float | None) -> float | None:
    if mean_change is None or sd is None:
        return None
    if not (math.isfinite(mean_change) and math.isfinite(sd)):
        return None
    if sd < 0:
        raise ValueError(f"a standard deviation must be >= 0, got {sd}")
    if sd == 0:
        return None
    return mean_change / sd


def smc_baseline(mean_change: float | None, sd_baseline: float | None) -> float | None:
    """SMCR: mean change / SD of the baseline values (Becker 1988); ``None`` if SD is 0."""
    return _ratio(mean_change, sd_baseline)


def smc_change(mean_change: float | None, sd_change: float | None) -> float | None:
    """SMCC (d_z): mean change / SD of the changes; ``None`` if the SD is 0 or missing."""
    return _ratio(mean_change, sd_change)


def smc_variance(smc: float, n: int, r: float | None, kind: SmcKind) -> float | None:
    """Large-sample sampling variance of an SMC (docs/statistics.md).

    * ``kind="baseline"``: v = 2(1 − r)/n + smc²/(2n) (Becker 1988, eq. for the
      raw-score standardized change; metafor ``escalc`` "SMCR" without correction),
      r = Pearson correlation of baseline and follow-up.
    * ``kind="change"``: v = 1/n + smc²/(2n) (d_z; metafor "SMCC" large-sample form).

    ``None`` when r is needed but missing, or n < 1.
    """
    if kind not in ("baseline", "change"):
        raise ValueError(f"kind must be 'baseline' or 'change', got {kind!r}")
    if n < 1:
        return None
    if kind == "baseline":
        if r is None or not math.isfinite(r):
            return None
        if not -1.0 <= r <= 1.0:
            raise ValueError(f"a correlation must lie in [-1, 1], got {r}")
        return 2.0 * (1.0 - r) / n + smc * smc / (2.0 * n)
    return 1.0 / n + smc * smc / (2.0 * n)


def smc_confidence_interval(
    smc: float | None,
    n: int,
    r: float | None,
    kind: SmcKind,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Wald interval smc ± qnorm((1 + level)/2)·√v with v from :func:`smc_variance`.

    ``None`` when the SMC itself or its variance is undefined.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if smc is None or not math.isfinite(smc):
        return None
    variance = smc_variance(smc, n, r, kind)
    if variance is None:
        return None
    from scipy import stats  # imported when used: a node imports this module without it

    half_width = float(stats.norm.ppf(0.5 + level / 2.0)) * math.sqrt(variance)
    return (smc - half_width, smc + half_width)

def smc_estimate(
    sums: ChangeCellSums, units_per_value: int, smc_kind: Literal["baseline", "change"]
) -> tuple[float, float] | None:
    """(θ, v): a cell's ``smc`` of the chosen kind and its large-sample variance.

    The same moments, SMC and variance as
    :func:`~sscjak.shared.statistics.change_cell.change_cell_statistics` (Becker 1988),
    from the sums alone: what one centre contributes to the heterogeneity
    analysis (:mod:`.heterogeneity`). ``None`` when the SMC or its variance is undefined
    or the variance is not above 0 (every change 0 and r = 1, for example).
    """
    n = operator.index(sums.n)
    mean_change = mean_from_sums(n, sums.sum_change, units_per_value)
    if smc_kind == "baseline":
        sd = sd_from_sums(n, sums.sum_baseline, sums.sum_baseline_squared, units_per_value)
        smc = smc_baseline(mean_change, sd)
    else:
        sd = sd_from_sums(n, sums.sum_change, sums.sum_change_squared, units_per_value)
        smc = smc_change(mean_change, sd)
    if smc is None:
        return None
    variance = smc_variance(smc, n, sums.correlation(), smc_kind)
    if variance is None or not variance > 0:
        return None
    return smc, variance

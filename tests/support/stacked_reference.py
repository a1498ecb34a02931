"""Statistics computed directly on stacked patient rows with numpy and scipy.

This is what a statistician would do with every centre's rows in one table (the bar of
docs/statistics.md), written independently of ``sscjak.shared.statistics``: sample moments
with numpy, R type-7 quantiles as numpy's "linear" method, the signed-rank test with
scipy and R's choice of exact/normal, Pearson r with numpy, Poisson CIs with chi-square.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z_975 = 1.959963984540054  # qnorm(0.975)


def signed_rank_reference(d: np.ndarray) -> tuple[float, float | None, str | None]:
    """(V, p, method) as R's wilcox.test(d) with its defaults."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0, None, None
    ranks = stats.rankdata(np.abs(nonzero))
    v = float(ranks[nonzero > 0].sum())
    ties = np.unique(np.abs(nonzero)).size != nonzero.size
    if nonzero.size < 50 and not ties and nonzero.size == d.size:
        result = stats.wilcoxon(nonzero, method="exact")
        return v, float(result.pvalue), "exact"
    result = stats.wilcoxon(nonzero, zero_method="wilcox", correction=True, method="approx")
    return v, float(result.pvalue), "normal"


def change_cell_reference(baseline: np.ndarray, change: np.ndarray, smc_kind: str) -> dict:
    n = change.size
    follow = baseline + change
    mean_change = float(np.mean(change))
    sd_change = float(np.std(change, ddof=1)) if n > 1 else None
    sd_baseline = float(np.std(baseline, ddof=1)) if n > 1 else None
    r = None
    if n > 1 and np.ptp(baseline) > 0 and np.ptp(follow) > 0:
        r = float(np.corrcoef(baseline, follow)[0, 1])
    smc_b = mean_change / sd_baseline if sd_baseline else None
    smc_c = mean_change / sd_change if sd_change else None
    smc = smc_b if smc_kind == "baseline" else smc_c
    ci = None
    if smc is not None:
        if smc_kind == "baseline":
            variance = None if r is None else 2 * (1 - r) / n + smc**2 / (2 * n)
        else:
            variance = 1 / n + smc**2 / (2 * n)
        if variance is not None:
            ci = [smc - Z_975 * math.sqrt(variance), smc + Z_975 * math.sqrt(variance)]
    v, p, method = signed_rank_reference(change)
    q1, median, q3 = np.quantile(change, [0.25, 0.5, 0.75], method="linear")
    return {
        "n": n,
        "n_pos": int((change > 0).sum()),
        "n_neg": int((change < 0).sum()),
        "n_zero": int((change == 0).sum()),
        "mean_baseline": float(np.mean(baseline)),
        "sd_baseline": sd_baseline,
        "mean_change": mean_change,
        "sd_change": sd_change,
        "median_change": float(median),
        "q1_change": float(q1),
        "q3_change": float(q3),
        "smc_baseline": smc_b,
        "smc_change": smc_c,
        "smc": smc,
        "smc_ci": ci,
        "V": v,
        "p_value": p,
        "p_method": method,
    }


def poisson_ci_reference(events: int, exposure: float) -> tuple[float, float]:
    """Garwood's exact interval (as R poisson.test) in events per unit of exposure."""
    low = 0.0 if events == 0 else stats.chi2.ppf(0.025, 2 * events) / 2
    high = stats.chi2.ppf(0.975, 2 * events + 2) / 2
    return low / exposure, high / exposure

"""All docs/statistics.md statistics of one change cell (outcome × time point) at once.

A change cell of the pooled summary consists of exact integers in the measure's grid
units: the count n, the sums Σx0, Σx0², Σd, Σd², Σx0·d (x0 baseline, d change) and the
histogram of d. :func:`change_cell_statistics` turns them into the descriptives, the
signed-rank test and the standardized mean changes, each computed by the pure functions
of this package, and :meth:`ChangeCellStatistics.as_result` gives the change cell's keys
of the results file (docs/results-file.md).
Undefined statistics are ``None`` (JSON ``null``), never NaN.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sscjak.shared.statistics.moments import (
    ChangeCellSums,
    mean_from_sums,
    sd_from_sums,
)
from sscjak.shared.statistics.quantiles import quantile_type7
from sscjak.shared.statistics.signed_rank import exact_conditional_p, signed_rank_test
from sscjak.shared.statistics.smc import smc_baseline, smc_change, smc_confidence_interval


@dataclass(frozen=True)
class ChangeCellStatistics:
    """Pooled statistics of one change cell, in the measure's units."""

    n: int
    n_pos: int
    n_neg: int
    n_zero: int
    mean_baseline: float | None
    sd_baseline: float | None
    mean_change: float | None
    sd_change: float | None
    median_change: float | None
    q1_change: float | None
    q3_change: float | None
    r_baseline_followup: float | None
    smc: float | None
    smc_kind: Literal["baseline", "change"]
    smc_baseline: float | None
    smc_change: float | None
    smc_ci: tuple[float, float] | None
    statistic_v: float | None
    p_value: float | None
    p_method: Literal["exact", "normal"] | None
    p_value_exact_conditional: float | None

    def as_result(self) -> dict[str, Any]:
        """The ``changes`` row keys of docs/results-file.md (without outcome/months/suppressed)."""
        return {
            "n": self.n,
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "n_zero": self.n_zero,
            "mean_baseline": self.mean_baseline,
            "sd_baseline": self.sd_baseline,
            "mean_change": self.mean_change,
            "sd_change": self.sd_change,
            "median_change": self.median_change,
            "q1_change": self.q1_change,
            "q3_change": self.q3_change,
            "r_baseline_followup": self.r_baseline_followup,
            "smc": self.smc,
            "smc_kind": self.smc_kind,
            "smc_baseline": self.smc_baseline,
            "smc_change": self.smc_change,
            "smc_ci": list(self.smc_ci) if self.smc_ci is not None else None,
            "V": self.statistic_v,
            "p_value": self.p_value,
            "p_method": self.p_method,
            "p_value_exact_conditional": self.p_value_exact_conditional,
        }


def change_cell_statistics(
    sums: ChangeCellSums,
    change_units: np.ndarray,
    counts: np.ndarray,
    units_per_value: int,
    *,
    smc_kind: Literal["baseline", "change"] = "baseline",
    exact_conditional: bool = False,
    level: float = 0.95,
) -> ChangeCellStatistics:
    """Descriptives, signed-rank test and SMCs of one pooled change cell.

    Parameters
    ----------
    sums:
        Exact integer sums of the cell, in grid units.
    change_units, counts:
        Histogram of the changes in grid units; its total must equal ``sums.n``.
    units_per_value:
        Grid units per unit of the measure (10 for a 0.1 grid).
    smc_kind:
        Which SMC is reported as ``smc`` (docs/statistics.md; default the baseline-SD one).
    exact_conditional:
        Also compute the opt-in exact conditional p-value (exactRankTests).
    level:
        Confidence level of ``smc_ci``.

    Notes
    -----
    Mean and SD: :mod:`.moments` (R ``mean``/``sd``); median, Q1, Q3: R ``quantile``
    type 7 (Hyndman & Fan 1996); V and p: R ``wilcox.test`` defaults; SMCs and CI:
    Becker (1988) as in :mod:`.smc`. Suppression of small cells is the caller's
    (plan's) decision and is not applied here. ``n = 0`` gives a cell of ``None``s.
    """
    if smc_kind not in ("baseline", "change"):
        raise ValueError(f"smc_kind must be 'baseline' or 'change', got {smc_kind!r}")
    change_units = np.asarray(change_units)
    counts = np.asarray(counts)
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
    n = operator.index(sums.n)
    if int(counts.sum()) != n:
        raise ValueError(
            f"the change histogram holds {int(counts.sum())} patients but the sums n = {n}"
        )
    n_pos = int(counts[change_units > 0].sum())
    n_neg = int(counts[change_units < 0].sum())
    n_zero = int(counts[change_units == 0].sum())
    mean_baseline = mean_from_sums(n, sums.sum_baseline, units_per_value)
    sd_baseline = sd_from_sums(n, sums.sum_baseline, sums.sum_baseline_squared, units_per_value)
    mean_change = mean_from_sums(n, sums.sum_change, units_per_value)
    sd_change = sd_from_sums(n, sums.sum_change, sums.sum_change_squared, units_per_value)
    r = sums.correlation()
    value_smc_baseline = smc_baseline(mean_change, sd_baseline)
    value_smc_change = smc_change(mean_change, sd_change)
    smc = value_smc_baseline if smc_kind == "baseline" else value_smc_change
    smc_ci = smc_confidence_interval(smc, n, r, smc_kind, level)
    if n == 0:
        median = q1 = q3 = None
        statistic_v = p_value = p_exact = None
        p_method = None
    else:
        order = np.argsort(change_units)
        grid_values = change_units[order] / units_per_value
        q1, median, q3 = quantile_type7(grid_values, counts[order], [0.25, 0.5, 0.75])
        test = signed_rank_test(change_units, counts)
        statistic_v, p_value, p_method = test.statistic_v, test.p_value, test.method
        p_exact = exact_conditional_p(change_units, counts) if exact_conditional else None
    return ChangeCellStatistics(
        n=n,
        n_pos=n_pos,
        n_neg=n_neg,
        n_zero=n_zero,
        mean_baseline=mean_baseline,
        sd_baseline=sd_baseline,
        mean_change=mean_change,
        sd_change=sd_change,
        median_change=median,
        q1_change=q1,
        q3_change=q3,
        r_baseline_followup=r,
        smc=smc,
        smc_kind=smc_kind,
        smc_baseline=value_smc_baseline,
        smc_change=value_smc_change,
        smc_ci=smc_ci,
        statistic_v=statistic_v,
        p_value=p_value,
        p_method=p_method,
        p_value_exact_conditional=p_exact,
    )


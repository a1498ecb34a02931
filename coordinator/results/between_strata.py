"""Tests between the strata of a change cell, from the pooled per-stratum histograms:
R ``kruskal.test(d ~ stratum)``, and for exactly two strata with patients
``wilcox.test(d ~ stratum)`` with R's defaults (docs/statistics.md, "Strata").

R turns the stratum into ``factor(stratum)``: its levels sorted, unused ones dropped.
The histograms are therefore given in sorted stratum order, so that R's first level
(whose W is reported) is the first here. A cell whose whole-cohort n is below the
minimum cell has no test, like every other statistic of that cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sscjak.shared.disclosure import is_suppressed
from sscjak.shared.statistics.between_strata import kruskal_wallis, two_sample_wilcoxon
from sscjak.shared.summary_layout import SummaryLayout, cell_prefix, stratum_cell_prefix


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def between_strata_tests(
    layout: SummaryLayout, pooled: np.ndarray, outcome: str, months: int
) -> dict[str, Any]:
    """``{"kruskal": …, "wilcoxon": …}`` for one change cell; ``None`` where R has no test."""
    plan = layout.plan
    n = int(layout.view(pooled, f"{cell_prefix(outcome, months)}.sums")[0])
    none: dict[str, Any] = {"kruskal": None, "wilcoxon": None}
    if is_suppressed(n, plan.min_cell):
        return none
    strata = sorted(plan.strata)
    rows = np.vstack(
        [
            layout.view(pooled, f"{stratum_cell_prefix(outcome, months, s)}.histogram")
            for s in strata
        ]
    ).astype(np.int64)
    values = layout.segment(f"{stratum_cell_prefix(outcome, months, strata[0])}.histogram")
    occupied = rows.sum(axis=0) > 0
    values, rows = values.bin_values()[occupied], rows[:, occupied]
    present = [s for s, row in zip(strata, rows, strict=True) if row.sum() > 0]
    if len(present) < 2:
        return none
    kruskal = kruskal_wallis(values, rows)
    result: dict[str, Any] = {
        "kruskal": {
            "strata": present,
            "statistic": _finite(kruskal.statistic_h),
            "df": kruskal.df,
            "p_value": _finite(kruskal.p_value),
        },
        "wilcoxon": None,
    }
    if len(present) == 2:
        wilcoxon = two_sample_wilcoxon(values, rows)
        result["wilcoxon"] = {
            "strata": present,
            "statistic_w": float(wilcoxon.statistic_w),
            "p_value": _finite(wilcoxon.p_value),
            "method": wilcoxon.method,
        }
    return result

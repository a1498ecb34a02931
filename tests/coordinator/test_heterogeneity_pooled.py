"""Heterogeneity from two secure sums equals the meta-analysis of the centres' own estimates.

Random cohorts are split across random centres. Each centre is derived and summarised by
the node code (first sum), τ² comes from the pooled terms, and each centre's
random-effects vector for that τ² is summed (second sum); ``build_results`` turns both
into the heterogeneity rows. The reference computes every centre's SMC and variance
with numpy on that centre's stacked change rows, leaves out the centres below the
per-centre minimum or without an estimate, and runs the DerSimonian–Laird formulas in
plain floating point (metafor ``rma(yi, vi, method = "DL")``; the R literals of those
formulas are in tests/shared/test_statistics_heterogeneity.py). Centre counts equal;
statistics to the fixed-point bound the docs state (relative 1e-6).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres
from scipy import stats

from sscjak.coordinator.results.heterogeneity import RandomEffectsRound, tau2_per_cell
from sscjak.coordinator.results.pooled_consistency import consistency_problems
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.node.summarise.centre_estimates import random_effects_vector
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.disclosure import MIN_HETEROGENEITY_CENTRES
from sscjak.shared.plan import Plan
from sscjak.shared.summary_layout import SummaryLayout

PLANS = [
    Plan(outcomes=("fvc_pct", "mrss", "tjc"), min_cell=3, heterogeneity=True, min_centre_n=3),
    Plan(
        outcomes=("dlco_pct", "sjc"),
        months=(12,),
        smc="change",
        min_cell=5,
        heterogeneity=True,
        min_centre_n=4,
    ),
]


def centre_estimate(baseline: np.ndarray, change: np.ndarray, kind: str):
    """θ and v of one centre's cell by the formulas (docs/statistics.md), numpy only."""
    n = change.size
    mean_change = change.mean()
    sd = np.std(baseline if kind == "baseline" else change, ddof=1) if n > 1 else 0.0
    if not sd > 0:
        return None
    smc = mean_change / sd
    if kind == "change":
        v = 1 / n + smc**2 / (2 * n)
    else:
        followup = baseline + change
        if np.std(followup) == 0:
            return None
        r = float(np.corrcoef(baseline, followup)[0, 1])
        v = 2 * (1 - r) / n + smc**2 / (2 * n)
    return (float(smc), float(v)) if v > 0 else None


def dersimonian_laird(theta: list[float], variance: list[float]) -> dict[str, float]:
    y, v = np.array(theta), np.array(variance)
    w = 1 / v
    fixed = float((w * y).sum() / w.sum())
    q = float((w * (y - fixed) ** 2).sum())
    df = y.size - 1
    c = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (q - df) / c)
    wstar = 1 / (v + tau2)
    estimate = float((wstar * y).sum() / wstar.sum())
    se = float(1 / math.sqrt(wstar.sum()))
    return {
        "q": q,
        "p_value": float(stats.chi2.sf(q, df)),
        "i2_percent": 100 * max(0.0, (q - df) / q) if q > 0 else 0.0,
        "tau2": tau2,
        "fixed": fixed,
        "fixed_se": float(1 / math.sqrt(w.sum())),
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - stats.norm.ppf(0.975) * se,
        "ci_high": estimate + stats.norm.ppf(0.975) * se,
        "p_re": float(2 * stats.norm.sf(abs(estimate / se))),
    }


def close(got: float, expected: float, scale: float = 1.0) -> bool:
    return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-8 * scale)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(20, 200),
    n_centres=st.integers(1, 7),
    plan=st.sampled_from(PLANS),
)
def test_heterogeneity_equals_the_meta_analysis_of_the_centres_estimates(
    seed: int, n_patients: int, n_centres: int, plan: Plan
) -> None:
    frames = random_cohort(seed, n_patients)
    rng = np.random.default_rng(seed + 3)
    centres = split_into_centres(frames, n_centres, rng)
    derived = [derive_cohort(*centre, plan) for centre in centres]
    pooled = sum(summarise_derived(cohort, plan) for cohort in derived)
    layout = SummaryLayout.for_plan(plan)
    assert consistency_problems(pooled, layout, n_centres) == []
    tau2 = tau2_per_cell(pooled, plan)
    exact = tuple(Fraction(value) for value in tau2)
    second = sum(random_effects_vector(cohort, plan, exact) for cohort in derived)
    results = build_results(pooled, plan, n_centres, RandomEffectsRound(tau2, second))

    for row in results["heterogeneity"]:
        cell = (row["outcome"], row["months"])
        k = plan.measure(row["outcome"]).units_per_value
        theta, variance, left_out, n = [], [], 0, 0
        for cohort in derived:
            cell_rows = cohort.cells[cell]
            n += cell_rows.change_units.size
            estimate = (
                centre_estimate(cell_rows.baseline_units / k, cell_rows.change_units / k, plan.smc)
                if cell_rows.change_units.size >= plan.min_centre_n
                else None
            )
            if estimate is None:
                left_out += 1
            else:
                theta.append(estimate[0])
                variance.append(estimate[1])
        assert (row["centres"], row["centres_left_out"]) == (len(theta), left_out), cell
        if n < plan.min_cell or len(theta) < MIN_HETEROGENEITY_CENTRES:
            assert row["suppressed"] is True and "q" not in row and "tau2" not in row
            continue
        expected = dersimonian_laird(theta, variance)
        assert row["suppressed"] is False and row["df"] == len(theta) - 1
        scale = len(theta) * (1 + abs(expected["fixed"])) ** 2
        assert close(row["q"], expected["q"], scale), (cell, row["q"], expected["q"])
        assert close(row["tau2"], expected["tau2"], scale), (row["tau2"], expected["tau2"])
        assert close(row["i2_percent"], expected["i2_percent"], 100 * scale)
        assert "fixed_effect" not in row  # with Q and τ² it would give every first sum
        random_effects = row["random_effects"]
        assert random_effects["tau2_used"] == row["tau2"]
        for key, reference in (("estimate", "estimate"), ("se", "se"), ("p_value", "p_re")):
            assert close(random_effects[key], expected[reference]), (key, random_effects[key])
        assert close(random_effects["ci"][0], expected["ci_low"])
        assert close(random_effects["ci"][1], expected["ci_high"])

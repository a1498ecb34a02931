"""Stratified results, pooled from the centres' summaries, equal the stacked rows.

Random cohorts are split across random centres and summarised by the node code; the
reference is the node's own per-patient derivation stacked (derivation itself is checked
against a plain reading of the rules elsewhere) and split by stratum, with the
statistics of numpy/scipy: per stratum every change cell and rate, and between strata
``kruskal.test`` (scipy's ``kruskal``, tie-corrected like R) and, for two strata,
``wilcox.test`` (scipy's ``mannwhitneyu`` with R's exact/normal rule).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres
from scipy import stats
from stacked_reference import change_cell_reference

from sscjak.coordinator.results.pooled_results import build_results
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import stratum_values, summarise_derived
from sscjak.shared.data_contract import MEASURES
from sscjak.shared.disclosure import secondary_suppressions
from sscjak.shared.plan import Plan

PLANS = [
    Plan(min_cell=2, by="jaki_drug", outcomes=("fvc_pct", "mrss"), months=(12, 24)),
    Plan(min_cell=1, by="sex", outcomes=("mrss", "gc_dose_mg"), months=(12,)),
]


def close(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return got is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


def rank_sum_reference(x: np.ndarray, y: np.ndarray) -> tuple[float, float, str]:
    """R's wilcox.test(x, y): W of x, p with R's exact/normal rule."""
    ties = np.unique(np.concatenate([x, y])).size != x.size + y.size
    exact = x.size < 50 and y.size < 50 and not ties
    method = "exact" if exact else "asymptotic"
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    return float(result.statistic), float(result.pvalue), "exact" if exact else "normal"


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(10, 120),
    n_centres=st.integers(2, 5),
    plan=st.sampled_from(PLANS),
)
def test_stratified_results_equal_stacked_rows(
    seed: int, n_patients: int, n_centres: int, plan: Plan
) -> None:
    frames = random_cohort(seed, n_patients)
    rng = np.random.default_rng(seed + 1)
    pooled, derived_centres = None, []
    for patients, visits, events in split_into_centres(frames, n_centres, rng):
        derived = derive_cohort(patients, visits, events, plan)
        derived_centres.append(derived)
        vector = summarise_derived(derived, plan)
        pooled = vector if pooled is None else pooled + vector
    stratified = build_results(pooled, plan, nodes=n_centres)["stratified"]
    strata_per_centre = [stratum_values(d, plan.by) for d in derived_centres]
    assert stratified["left_out_missing_stratum"] == sum(
        int(np.count_nonzero(np.equal(s, None))) for s in strata_per_centre
    )
    sizes = [entry["patients"] for entry in stratified["strata"]]
    primary = [
        entry["patients"] < plan.min_cell or entry["centres"] < 2
        for entry in stratified["strata"]
    ]
    secondary = secondary_suppressions(sizes, primary)
    for index, entry in enumerate(stratified["strata"]):
        assert entry["suppressed"] is (primary[index] or index in secondary)
        stratum = entry["stratum"]
        members = [s == stratum for s in strata_per_centre]
        assert entry["patients"] == sum(int(m.sum()) for m in members)
        assert entry["centres"] == sum(int(m.any()) for m in members)
        pairs = zip(derived_centres, members, strict=True)
        days = sum(int(d.followup_days[m].sum()) for d, m in pairs)
        assert close(entry["patient_years"], days / 365.25)
        if entry["suppressed"]:
            assert "safety" not in entry
            continue
        for row in entry["safety"]:
            per_patient = np.concatenate(
                [
                    d.events_on_treatment[row["event_type"]][m]
                    for d, m in zip(derived_centres, members, strict=True)
                ]
            )
            assert row["events"] == int(per_patient.sum())
            assert row["patients"] == int((per_patient > 0).sum())

    for cell in stratified["changes"]:
        key = (cell["outcome"], cell["months"])
        k = MEASURES[key[0]].units_per_value
        changes, baselines, centres = {}, {}, {}
        for stratum in plan.strata:
            parts = [
                (d.cells[key], (s == stratum)[d.cells[key].patient_index])
                for d, s in zip(derived_centres, strata_per_centre, strict=True)
            ]
            changes[stratum] = np.concatenate([c.change_units[m] / k for c, m in parts])
            baselines[stratum] = np.concatenate([c.baseline_units[m] / k for c, m in parts])
            centres[stratum] = sum(int(m.any()) for _, m in parts)
        primary = [
            changes[s].size < plan.min_cell or centres[s] < 2 for s in plan.strata
        ]
        secondary = secondary_suppressions([changes[s].size for s in plan.strata], primary)
        for index, row in enumerate(cell["strata"]):
            stratum = row["stratum"]
            change = changes[stratum]
            if primary[index] or index in secondary:
                assert row["suppressed"] is True and "n" not in row
                continue
            expected = change_cell_reference(baselines[stratum], change, plan.smc)
            assert row["n"] == expected["n"]
            for name in ("mean_change", "sd_change", "median_change", "smc", "p_value"):
                assert close(row[name], expected[name]), (name, row[name], expected[name])
        present = [s for s in sorted(plan.strata) if changes[s].size]
        total = sum(changes[s].size for s in plan.strata)
        if len(present) < 2 or total < plan.min_cell:
            assert cell["kruskal"] is None
            continue
        groups = [changes[s] for s in present]
        if np.unique(np.concatenate(groups)).size > 1:
            h, p = stats.kruskal(*groups)
            assert close(cell["kruskal"]["statistic"], float(h))
            assert close(cell["kruskal"]["p_value"], float(p))
        assert cell["kruskal"]["df"] == len(present) - 1
        if len(present) == 2:
            w, p, method = rank_sum_reference(*groups)
            assert cell["wilcoxon"]["statistic_w"] == w
            assert cell["wilcoxon"]["method"] == method or cell["wilcoxon"]["p_value"] is None
            assert close(cell["wilcoxon"]["p_value"], p)
        else:
            assert cell["wilcoxon"] is None

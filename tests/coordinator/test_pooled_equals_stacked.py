"""Pooled-from-summaries equals the same statistics on the stacked rows, field by field.

Random cohorts are split across a random number of centres; each centre's rows are
derived and summarised by the node code; the summed vector goes through
``build_results``. The reference is computed on the stacked per-patient rows with
numpy/scipy (``stacked_reference``). Counts must be equal, floats to 1e-9 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres
from stacked_reference import change_cell_reference, poisson_ci_reference

from sscjak.coordinator.results.pooled_results import build_results
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.data_contract import EVENT_TYPES, JAKI_DRUGS, MEASURES
from sscjak.shared.plan import Plan

PLANS = [
    Plan(min_cell=3),
    Plan(min_cell=5, smc="change", months=(6, 12), window_months=3),
]


def close(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(3, 120),
    n_centres=st.integers(1, 6),
    plan=st.sampled_from(PLANS),
)
def test_pooled_results_equal_stacked_computation(
    seed: int, n_patients: int, n_centres: int, plan: Plan
) -> None:
    frames = random_cohort(seed, n_patients)
    rng = np.random.default_rng(seed + 1)
    pooled = None
    stacked_cells: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray]]] = {
        cell: [] for cell in plan.cells
    }
    derived_centres = []
    for patients, visits, events in split_into_centres(frames, n_centres, rng):
        derived = derive_cohort(patients, visits, events, plan)
        derived_centres.append(derived)
        vector = summarise_derived(derived, plan)
        pooled = vector if pooled is None else pooled + vector
        for key, cell in derived.cells.items():
            k = MEASURES[key[0]].units_per_value
            stacked_cells[key].append((cell.baseline_units / k, cell.change_units / k))

    results = build_results(pooled, plan, nodes=n_centres)

    # Change cells.
    for row in results["changes"]:
        parts = stacked_cells[(row["outcome"], row["months"])]
        baseline = np.concatenate([b for b, _ in parts])
        change = np.concatenate([d for _, d in parts])
        if change.size < plan.min_cell:
            assert row["suppressed"] is True
            assert "n" not in row and "mean_change" not in row
            continue
        assert row["suppressed"] is False
        expected = change_cell_reference(baseline, change, plan.smc)
        for key, value in expected.items():
            if key in ("n", "n_pos", "n_neg", "n_zero", "p_method"):
                assert row[key] == value, key
            elif key == "smc_ci":
                assert (row[key] is None) == (value is None), key
                if value is not None:
                    assert close(row[key][0], value[0]) and close(row[key][1], value[1]), key
            else:
                assert close(row[key], value), (key, row[key], value)

    # Cohort.
    followup_days = np.concatenate([d.followup_days for d in derived_centres])
    cohort = results["cohort"]
    assert cohort["patients"] == n_patients
    assert results["nodes"] == n_centres
    assert close(cohort["patient_years"], followup_days.sum() / 365.25)
    months = followup_days / 30.4375
    q1, median, q3 = np.quantile(months, [0.25, 0.5, 0.75], method="linear")
    assert close(cohort["followup_months"]["median"], float(median))
    assert close(cohort["followup_months"]["q1"], float(q1))
    assert close(cohort["followup_months"]["q3"], float(q3))
    drugs = np.concatenate([d.jaki_drug for d in derived_centres])
    assert cohort["drugs"] == {drug: int((drugs == drug).sum()) for drug in JAKI_DRUGS}
    # Age at JAKi start: year of jaki_start − birth_year, straight from the stacked rows.
    stacked = frames[0]  # every centre's patients rows, stacked
    age = stacked["jaki_start"].dt.year - stacked["birth_year"]
    in_range = age.notna() & (age >= 0) & (age <= 120)
    age_result = cohort["age_at_start_years"]
    assert age_result["n"] == int(in_range.sum())
    assert age_result["birth_year_missing"] == int(stacked["birth_year"].isna().sum())
    assert age_result["outside_0_120"] == int((age.notna() & ~in_range).sum())
    if in_range.sum() >= plan.min_cell:
        ages = age[in_range].to_numpy(dtype=np.float64)
        q1, median, q3 = np.quantile(ages, [0.25, 0.5, 0.75], method="linear")
        assert age_result["suppressed"] is False
        assert close(age_result["median"], float(median))
        assert close(age_result["q1"], float(q1)) and close(age_result["q3"], float(q3))
    else:
        assert age_result["suppressed"] is True and age_result["median"] is None
    sex = pd.Series(np.concatenate([d.sex for d in derived_centres]), dtype=object)
    assert cohort["sex"]["F"] == int((sex == "F").sum())
    assert cohort["sex"]["missing"] == int(sex.isna().sum())

    # Calcinosis, DU, glucocorticoids.
    def total(attribute: str) -> int:
        return int(sum(getattr(d, attribute).sum() for d in derived_centres))

    assert results["calcinosis"] == {
        "baseline_present": total("calcinosis_baseline"),
        "improved": total("calcinosis_improved"),
    }
    assert results["digital_ulcers"]["patients"] == total("developed_du")
    assert results["glucocorticoids"]["baseline_on_gc"] == total("on_gc_at_baseline")

    # Safety: recurrent events over the cohort's patient-years, exact Poisson CI.
    patient_years = followup_days.sum() / 365.25
    for row in results["safety"]:
        per_patient = np.concatenate(
            [d.events_on_treatment[row["event_type"]] for d in derived_centres]
        )
        assert row["events"] == int(per_patient.sum())
        assert row["patients"] == int((per_patient > 0).sum())
        if patient_years > 0:
            low, high = poisson_ci_reference(row["events"], patient_years)
            assert close(row["rate_per_100py"], 100 * row["events"] / patient_years)
            assert close(row["ci"][0], 100 * low) and close(row["ci"][1], 100 * high)
    assert [r["event_type"] for r in results["safety"]] == list(EVENT_TYPES)


@pytest.mark.parametrize("plan", PLANS)
def test_distribution_bins_never_show_fewer_patients_than_the_minimum_cell(plan: Plan) -> None:
    patients, visits, events = random_cohort(7, 150)
    derived = derive_cohort(patients, visits, events, plan)
    results = build_results(summarise_derived(derived, plan), plan, nodes=1)
    shown = results["distributions"]["changes"]
    assert shown, "expected at least one unsuppressed cell"
    for distribution in shown:
        row = next(
            r
            for r in results["changes"]
            if (r["outcome"], r["months"]) == (distribution["outcome"], distribution["months"])
        )
        assert sum(count for _, _, count in distribution["bins"]) == row["n"]
        assert all(count >= plan.min_cell for _, _, count in distribution["bins"])
    followup = results["distributions"]["followup_months"]
    assert all(c >= plan.min_cell for _, _, c in followup)
    # Follow-up starts at 0 at the earliest; every edge is written on its grid (0.01 month
    # for follow-up, the measure's resolution for a change): no 15-digit binary noise.
    assert followup[0][0] >= 0
    assert all(edge == round(edge, 2) for low, high, _ in followup for edge in (low, high))
    for distribution in shown:
        decimals = {0.1: 1, 1.0: 0, 0.25: 2}[float(MEASURES[distribution["outcome"]].resolution)]
        for low, high, _ in distribution["bins"]:
            assert low == round(low, decimals) and high == round(high, decimals)
            assert repr(low) == repr(float(f"{low:.{decimals}f}"))

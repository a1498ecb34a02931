"""A declared measure's pooled change cells equal the stacked-rows computation.

Random cohorts get two declared visit columns (HAQ-DI 0–3 by 0.125 with some values off
the grid, and a 6-minute walk 0–1000 m by 1); they are split across random centres,
each centre is derived and summarised by the node code, and the summed vector goes
through ``build_results``. The reference derives every patient with the plain reading
of the rules (``reference_derivation``) and computes the statistics with numpy/scipy on
the stacked changes (``stacked_reference``): counts equal, floats to 1e-9.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres
from reference_derivation import derive_reference
from stacked_reference import change_cell_reference

from sscjak.coordinator.results.pooled_results import build_results
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.plan import parse_plan

PLAN_TEXT = """
outcomes = ["haq_di", "six_minute_walk_m", "mrss"]
months = [12, 24]
min_cell = 3
smc = "{smc}"

[[measures]]
name = "haq_di"
label = "HAQ-DI"
unit = "points"
low = 0
high = 3
resolution = 0.125
benefit = "decrease"

[[measures]]
name = "six_minute_walk_m"
label = "6-minute walk distance"
unit = "m"
low = 0
high = 1000
resolution = 1
benefit = "increase"
"""
PLANS = [parse_plan(PLAN_TEXT.format(smc=kind)) for kind in ("baseline", "change")]


def close(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


def with_declared_columns(visits, seed: int):
    """The visits with HAQ-DI (some values off its grid) and walk distances added."""
    rng = np.random.default_rng([seed, 7])
    n = len(visits)
    haq = rng.integers(0, 25, n) * 0.125
    off_grid = rng.random(n) < 0.1
    haq[off_grid] = np.round(haq[off_grid] + 0.06, 2).clip(0, 3)
    walk = rng.integers(150, 600, n).astype(float)
    visits = visits.copy()
    visits["haq_di"] = np.where(rng.random(n) < 0.7, haq, np.nan)
    visits["six_minute_walk_m"] = np.where(rng.random(n) < 0.6, walk, np.nan)
    return visits


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(3, 90),
    n_centres=st.integers(1, 5),
    plan=st.sampled_from(PLANS),
)
def test_declared_measures_pooled_equal_stacked(
    seed: int, n_patients: int, n_centres: int, plan
) -> None:
    patients, visits, events = random_cohort(seed, n_patients)
    frames = (patients, with_declared_columns(visits, seed), events)
    reference = derive_reference(*frames, plan)
    rng = np.random.default_rng(seed + 1)
    pooled = None
    for centre in split_into_centres(frames, n_centres, rng):
        vector = summarise_derived(derive_cohort(*centre, plan), plan)
        pooled = vector if pooled is None else pooled + vector
    results = build_results(pooled, plan, nodes=n_centres)

    for row in results["changes"]:
        cell = (row["outcome"], row["months"])
        measure = plan.measure(row["outcome"])
        assert row["label"] == measure.label and row["benefit"] == measure.benefit
        pairs = [r.changes[cell] for r in reference if cell in r.changes]
        k = measure.units_per_value
        baseline = np.array([b for b, _ in pairs], dtype=float) / k
        change = np.array([d for _, d in pairs], dtype=float) / k
        if change.size < plan.min_cell:
            assert row["suppressed"] is True and "n" not in row
            continue
        expected = change_cell_reference(baseline, change, plan.smc)
        for key, value in expected.items():
            if key in ("n", "n_pos", "n_neg", "n_zero", "p_method"):
                assert row[key] == value, (cell, key)
            elif key == "smc_ci":
                assert (row[key] is None) == (value is None), key
                if value is not None:
                    assert close(row[key][0], value[0]) and close(row[key][1], value[1])
            else:
                assert close(row[key], value), (cell, key, row[key], value)

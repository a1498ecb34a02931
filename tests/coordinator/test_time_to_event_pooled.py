"""Time to event, pooled from the centres' summaries, equals the stacked rows.

Random cohorts are split across random centres; each centre is derived and summarised by
the node code and the vectors are summed. The reference reads the stacked raw rows one
patient at a time (dates as dates), puts each time on the grid with exact fractions,
and computes the Kaplan–Meier curve (Greenwood SE on the log scale, as R's survfit) and
the log-rank statistic (R's survdiff, rho = 0) with plain loops. Counts must be equal,
floats equal to 1e-9.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres
from scipy import stats

from sscjak.coordinator.results.pooled_results import build_results
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.disclosure import secondary_suppressions
from sscjak.shared.plan import Plan

PLANS = [
    Plan(min_cell=1, time_to_event=("drug_retention", "developed_du", "infection"), by="jaki_drug"),
    Plan(min_cell=2, time_to_event=("drug_retention",), by="sex", time_grid_days=1.0,
         horizon_months=36),
    Plan(min_cell=1, time_to_event=("developed_du", "digital_ulcer"), by="", horizon_months=24),
]


def reference_times(patients, visits, events, endpoint: str) -> list[tuple[int, bool]]:
    """(days, event) per patient, straight from docs/derivation.md."""
    rows = []
    for patient in patients.itertuples(index=False):
        start = patient.jaki_start.date()
        stopped = not pd.isna(patient.jaki_stop)
        end = (patient.jaki_stop if stopped else patient.followup_end).date()
        end_day = (end - start).days
        if endpoint == "drug_retention":
            rows.append((end_day, stopped))
            continue
        own_events = events[events["patient_id"] == patient.patient_id]
        days = [
            (e.event_date.date() - start).days
            for e in own_events.itertuples(index=False)
            if e.event_type == ("digital_ulcer" if endpoint == "developed_du" else endpoint)
            and 0 <= (e.event_date.date() - start).days <= end_day
        ]
        if endpoint == "developed_du":
            own = visits[visits["patient_id"] == patient.patient_id]
            days += [
                (v.visit_date.date() - start).days
                for v in own.itertuples(index=False)
                if 0 < (v.visit_date.date() - start).days <= end_day
                and not pd.isna(v.du_count)
                and v.du_count > 0
            ]
        rows.append((min(days), True) if days else (end_day, False))
    return rows


def on_grid(days: int, event: bool, plan: Plan) -> tuple[int, bool]:
    grid = Fraction(repr(plan.time_grid_days))
    t = math.ceil(Fraction(days) / grid)
    horizon = math.ceil(plan.horizon_months * Fraction(487, 16) / grid)
    return (t, event) if t <= horizon else (horizon, False)


def kaplan_meier_reference(times: list[tuple[int, bool]]):
    """R survfit's rows: (time, n_risk, n_event, n_censor, surv, std_err) per distinct time."""
    rows, surv, greenwood = [], 1.0, 0.0
    for time in sorted({t for t, _ in times}):
        at_risk = sum(1 for t, _ in times if t >= time)
        died = sum(1 for t, e in times if t == time and e)
        censored = sum(1 for t, e in times if t == time and not e)
        if died:
            surv *= 1 - died / at_risk
            greenwood += died / (at_risk * (at_risk - died)) if at_risk > died else math.inf
        rows.append((time, at_risk, died, censored, surv, math.sqrt(greenwood)))
    return rows


def log_rank_reference(groups: list[list[tuple[int, bool]]]) -> tuple[float, int]:
    """survdiff's chi-square and df: (O − E)' V⁻ (O − E) over the groups with patients."""
    groups = [g for g in groups if g]
    everyone = [row for g in groups for row in g]
    k = len(groups)
    observed, expected = np.zeros(k), np.zeros(k)
    variance = np.zeros((k, k))
    for time in sorted({t for t, e in everyone if e}):
        n_j = np.array([sum(1 for t, _ in g if t >= time) for g in groups], dtype=float)
        d_j = np.array([sum(1 for t, e in g if t == time and e) for g in groups], dtype=float)
        n, d = n_j.sum(), d_j.sum()
        observed += d_j
        expected += d * n_j / n
        if n > 1:
            factor = d * (n - d) / (n * n * (n - 1))
            variance += factor * (np.diag(n_j * n) - np.outer(n_j, n_j))
    keep = [i for i in range(k) if expected[i] > 0]
    df = len(keep) - 1
    if df < 1:
        return 0.0, df
    reduced = keep[1:]  # R drops the first group with expected > 0
    diff = (observed - expected)[reduced]
    chisq = float(diff @ np.linalg.solve(variance[np.ix_(reduced, reduced)], diff))
    return chisq, df


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isinf(b):
        return a is None and (b is None or math.isinf(b))
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(3, 90),
    n_centres=st.integers(2, 5),
    plan=st.sampled_from(PLANS),
)
def test_time_to_event_pooled_equals_stacked_rows(
    seed: int, n_patients: int, n_centres: int, plan: Plan
) -> None:
    frames = random_cohort(seed, n_patients)
    rng = np.random.default_rng(seed + 1)
    pooled, centre_strata = None, []
    for patients, visits, events in split_into_centres(frames, n_centres, rng):
        vector = summarise_derived(derive_cohort(patients, visits, events, plan), plan)
        pooled = vector if pooled is None else pooled + vector
        column = patients[plan.by] if plan.by else pd.Series("all", index=patients.index)
        centre_strata.append(set(column.dropna()))
    results = build_results(pooled, plan, nodes=n_centres)
    patients, visits, events = frames
    strata = patients[plan.by] if plan.by else pd.Series("all", index=patients.index)

    assert [entry["endpoint"] for entry in results["time_to_event"]] == list(plan.time_to_event)
    for entry in results["time_to_event"]:
        times = [
            on_grid(days, event, plan)
            for days, event in reference_times(patients, visits, events, entry["endpoint"])
        ]
        assert entry["left_out_missing_stratum"] == int(strata.isna().sum())
        groups = {
            s: [times[i] for i in np.flatnonzero((strata == s).to_numpy())] for s in plan.strata
        }
        sizes = [len(groups[s]) for s in plan.strata]
        primary = [
            len(groups[s]) < plan.min_cell
            or sum(s in present for present in centre_strata) < 2
            for s in plan.strata
        ]
        secondary = secondary_suppressions(sizes, primary)
        for index, row in enumerate(entry["strata"]):
            group = groups[row["stratum"]]
            assert row["n"] == len(group)
            centres = sum(row["stratum"] in present for present in centre_strata)
            assert row["centres"] == centres
            if primary[index] or index in secondary:
                assert row["suppressed"] is True
                assert "curve" not in row and "events" not in row and "median" not in row
                continue
            assert row["events"] == sum(e for _, e in group)
            expected = [r for r in kaplan_meier_reference(group) if r[1] >= plan.min_cell]
            curve = row["curve"]
            assert curve["time"] == [r[0] for r in expected]
            assert curve["n_risk"] == [r[1] for r in expected]
            assert curve["n_event"] == [r[2] for r in expected]
            assert curve["n_censor"] == [r[3] for r in expected]
            assert all(close(a, r[4]) for a, r in zip(curve["surv"], expected, strict=True))
            assert all(close(a, r[5]) for a, r in zip(curve["std_err"], expected, strict=True))
            # a median or limit beyond the released curve is withheld, never shown
            median, last = row["median"], curve["time"][-1] if curve["time"] else -1
            for key in ("time", "lower", "upper"):
                if key in median["withheld"]:
                    assert median[key] is None
                else:
                    assert median[key] is None or median[key] <= last
        if not plan.by:
            assert entry["log_rank"] is None
            continue
        with_patients = [groups[s] for s in plan.strata if groups[s]]
        if len(with_patients) < 2:
            assert entry["log_rank"] is None
            continue
        chisq, df = log_rank_reference(with_patients)
        log_rank = entry["log_rank"]
        if log_rank is None:  # survdiff's variance is singular (R's solve() stops)
            continue
        assert log_rank["df"] == df
        assert close(log_rank["chisq"], chisq)
        if df >= 1:
            assert close(log_rank["p_value"], float(stats.chi2.sf(chisq, df)))

"""Pooled results computed from the pooled summary vector alone.

Methods: docs/statistics.md; the file written: docs/results-file.md.

The coordinator never sees a row or a single centre's vector: ``build_results`` takes the
securely aggregated sum and the plan, decodes it with the shared layout, and calls the
pure statistics of :mod:`sscjak.shared.statistics`. Undefined statistics are ``None``
(JSON ``null``); change cells with pooled n below the plan's minimum are suppressed.

Before anything is computed, ``build_results`` checks the pooled vector's internal
consistency (:mod:`sscjak.coordinator.results.pooled_consistency`) and raises
:class:`~sscjak.coordinator.results.pooled_consistency.InconsistentPooledSummaryError` naming every
failing check: every path that writes results goes through ``build_results``, so none
can skip the check, and nothing is written for a vector that fails it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from importlib import metadata
from typing import Any

import numpy as np

from sscjak.coordinator.results.between_strata import between_strata_tests
from sscjak.coordinator.results.heterogeneity import (
    RandomEffectsRound,
    heterogeneity_results,
    random_effects_problems,
    tau2_per_cell,
)
from sscjak.coordinator.results.pooled_consistency import (
    InconsistentPooledSummaryError,
    check_pooled_summary,
)
from sscjak.coordinator.results.schema import RESULTS_SCHEMA, Results
from sscjak.coordinator.results.time_to_event import ONE_CENTRE_RULE, time_to_event_results
from sscjak.shared.data_contract import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    EVENT_TYPES,
    MONTH_IN_DAYS,
)
from sscjak.shared.disclosure import (
    SECONDARY_SUPPRESSION_RULE,
    is_suppressed,
    released_bins,
    secondary_suppressions,
    suppression_rule,
)
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.change_cell import change_cell_statistics
from sscjak.shared.statistics.moments import ChangeCellSums
from sscjak.shared.statistics.poisson import poisson_rate_ci
from sscjak.shared.statistics.quantiles import quantile_type7
from sscjak.shared.summary_layout import SummaryLayout, cell_prefix, stratum_cell_prefix


def _software_versions() -> dict[str, str]:
    versions = {}
    for distribution in ("sscjak", "flwr"):
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = "unknown"
    return versions


def _histogram(layout: SummaryLayout, pooled: np.ndarray, name: str) -> tuple[np.ndarray, ...]:
    """(grid values in units, counts) of the non-empty bins of a histogram segment."""
    segment = layout.segment(name)
    counts = layout.view(pooled, name)
    nonzero = np.flatnonzero(counts)
    return segment.bin_values()[nonzero], counts[nonzero].astype(np.int64)


#: Months per day of follow-up, exactly (docs/derivation.md).
MONTHS_PER_DAY = 1 / MONTH_IN_DAYS
#: Grid of the released follow-up bin edges, in months: 0.01 (a day is 0.033 months, so
#: neighbouring days keep distinct edges).
FOLLOWUP_EDGE_GRID = Fraction(1, 100)


def change_cell_result(
    layout: SummaryLayout,
    pooled: np.ndarray,
    outcome: str,
    months: int,
    prefix: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One row of ``changes`` and its merged distribution (``None`` when suppressed).

    ``prefix`` names the segments of a change cell within one stratum (default: the
    cell over the whole cohort). A stratum's cell also counts its centres: with patients
    from one centre only it is suppressed, since it would be that centre's own result.
    """
    plan = layout.plan
    measure = plan.measure(outcome)
    k = measure.units_per_value
    prefix = prefix or cell_prefix(outcome, months)
    sums = [int(v) for v in layout.view(pooled, f"{prefix}.sums")]
    n, s_x0, s_x0sq, s_d, s_dsq, s_x0d = sums[:6]
    row: dict[str, Any] = {
        "outcome": outcome,
        "months": months,
        "label": measure.label,
        "unit": measure.unit,
        "resolution": float(measure.resolution),
        "benefit": measure.benefit,
    }
    if is_suppressed(n, plan.min_cell):
        row.update(suppressed=True, suppression_rule=suppression_rule(plan.min_cell))
        return row, None
    if len(sums) > 6 and sums[6] < 2:
        row.update(suppressed=True, suppression_rule=ONE_CENTRE_RULE)
        return row, None
    units, counts = _histogram(layout, pooled, f"{prefix}.histogram")
    statistics = change_cell_statistics(
        ChangeCellSums(n, s_x0, s_x0sq, s_d, s_dsq, s_x0d),
        units,
        counts,
        k,
        smc_kind=plan.smc,
        exact_conditional=plan.exact_conditional_p,
    )
    row["suppressed"] = False
    row.update(statistics.as_result())
    if not plan.exact_conditional_p:
        del row["p_value_exact_conditional"]
    distribution = {
        "outcome": outcome,
        "months": months,
        "bins": released_bins(units, counts, plan.min_cell, measure.resolution, measure.resolution),
    }
    return row, distribution


def build_results(
    pooled: np.ndarray,
    plan: Plan,
    nodes: int,
    random_effects: RandomEffectsRound | None = None,
) -> Results:
    """The results object of docs/results-file.md from the pooled vector of ``nodes`` centres.

    ``random_effects`` is the random-effects secure sum of a heterogeneity plan; without
    it the heterogeneity rows carry ``random_effects = null``.

    Raises InconsistentPooledSummaryError (a ValueError) if the vector fails any consistency
    check (:func:`~sscjak.coordinator.results.pooled_consistency.check_pooled_summary`), or
    the random-effects sums do not fit it.
    """
    layout = SummaryLayout.for_plan(plan)
    pooled = np.asarray(pooled)
    check_pooled_summary(pooled, layout, nodes)
    if random_effects is not None:
        problems = random_effects_problems(
            pooled, np.asarray(random_effects.pooled), plan, random_effects.tau2
        )
        if problems:
            raise InconsistentPooledSummaryError(problems)
    patients, followup_days_total = (int(v) for v in layout.view(pooled, "cohort"))
    patient_years = followup_days_total / DAYS_PER_YEAR
    days, day_counts = _histogram(layout, pooled, "followup_days_histogram")
    months_values = days / DAYS_PER_MONTH
    if patients:
        median, q1, q3 = quantile_type7(months_values, day_counts, [0.5, 0.25, 0.75])
        followup = {"median": median, "q1": q1, "q3": q3}
    else:
        followup = {"median": None, "q1": None, "q3": None}

    changes: list[dict[str, Any]] = []
    change_distributions: list[dict[str, Any]] = []
    for outcome, months in plan.cells:
        row, distribution = change_cell_result(layout, pooled, outcome, months)
        changes.append(row)
        if distribution is not None:
            change_distributions.append(distribution)

    results: Results = {
        "schema": RESULTS_SCHEMA,
        "plan_sha256": plan.sha256,
        "nodes": nodes,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": _software_versions(),
        "plan": {
            "toml": plan.canonical_toml,
            "title": plan.title,
            "outcomes": list(plan.outcomes),
            "months": list(plan.months),
            "window_months": plan.window_months,
            "min_cell": plan.min_cell,
            "smc": plan.smc,
            "exact_conditional_p": plan.exact_conditional_p,
            "time_to_event": list(plan.time_to_event),
            "by": plan.by,
            "time_grid_days": plan.time_grid_days,
            "horizon_months": plan.horizon_months,
            "at_risk_months": list(plan.at_risk_months),
            "heterogeneity": plan.heterogeneity,
            "min_centre_n": plan.min_centre_n,
            "declared_measures": [m.name for m in plan.measures],
        },
        "cohort": {
            "patients": patients,
            "centres": int(layout.view(pooled, "centres")[0]),
            "patient_years": patient_years,
            "followup_months": followup,
            "drugs": layout.counts(pooled, "drugs"),
            "sex": layout.counts(pooled, "sex"),
            "ssc_subset": layout.counts(pooled, "ssc_subset"),
            "age_at_start_years": _age_at_start(layout, pooled, plan.min_cell),
        },
        "changes": changes,
        "calcinosis": layout.counts(pooled, "calcinosis"),
        "digital_ulcers": {"patients": layout.counts(pooled, "digital_ulcers")["developed"]},
        "glucocorticoids": layout.counts(pooled, "glucocorticoids"),
        "safety": _safety_rows(layout, pooled, patient_years),
        "distributions": {
            "changes": change_distributions,
            "followup_months": released_bins(
                days, day_counts, plan.min_cell, MONTHS_PER_DAY, FOLLOWUP_EDGE_GRID, Fraction(0)
            ),
        },
    }
    if plan.by:
        results["stratified"] = stratified_results(layout, pooled)
    if plan.time_to_event:
        results["time_to_event"] = time_to_event_results(layout, pooled)
    if plan.heterogeneity:
        results["heterogeneity"] = heterogeneity_results(
            pooled,
            plan,
            None if random_effects is None else np.asarray(random_effects.pooled),
            tau2_per_cell(pooled, plan) if random_effects is None else random_effects.tau2,
        )
    return results


def _age_at_start(layout: SummaryLayout, pooled: np.ndarray, min_cell: int) -> dict[str, Any]:
    """Age at JAKi start in whole years: n with an age, median and quartiles (R type 7),
    and the patients without one. Only these are released, never the age histogram; the
    quartiles are suppressed (``None``) when fewer than ``min_cell`` patients have an age.
    """
    years, counts = _histogram(layout, pooled, "age_at_start_histogram")
    unavailable = layout.counts(pooled, "age_at_start")
    n = int(counts.sum())
    age: dict[str, Any] = {"n": n, **unavailable}
    if not is_suppressed(n, min_cell) and n > 0:
        median, q1, q3 = quantile_type7(years.astype(np.float64), counts, [0.5, 0.25, 0.75])
        age.update(suppressed=False, median=median, q1=q1, q3=q3)
    else:
        age.update(
            suppressed=True,
            suppression_rule=suppression_rule(min_cell),
            median=None,
            q1=None,
            q3=None,
        )
    return age


def _safety_rows(
    layout: SummaryLayout, pooled: np.ndarray, patient_years: float, segment: str = "safety"
) -> list[dict[str, Any]]:
    """Events, patients and rate per 100 patient-years with exact Poisson 95% CI, per type
    (``segment``: ``safety``, or ``by.<stratum>.safety`` within one stratum)."""
    events = layout.counts(pooled, f"{segment}.events")
    patients = layout.counts(pooled, f"{segment}.patients")
    rows = []
    for event_type in EVENT_TYPES:
        row: dict[str, Any] = {
            "event_type": event_type,
            "events": events[event_type],
            "patients": patients[event_type],
            "rate_per_100py": None,
            "ci": None,
        }
        if patient_years > 0:
            low, high = poisson_rate_ci(events[event_type], patient_years)
            row["rate_per_100py"] = 100.0 * events[event_type] / patient_years
            row["ci"] = [100.0 * low, 100.0 * high]
        rows.append(row)
    return rows


#: The keys of a change row that say which cell it is (kept when it is suppressed).
_CELL_IDENTITY = ("outcome", "months", "label", "unit", "resolution", "benefit", "stratum")


def _secondary(row: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    """``row`` suppressed by secondary suppression: only the keys ``keep`` stay."""
    return {
        **{key: row[key] for key in keep if key in row},
        "suppressed": True,
        "suppression_rule": SECONDARY_SUPPRESSION_RULE,
    }


def stratified_results(layout: SummaryLayout, pooled: np.ndarray) -> dict[str, Any]:
    """Every change cell and rate per stratum of the plan's ``by``, and the tests between
    strata of each cell's changes (docs/statistics.md, "Strata")."""
    plan = layout.plan
    centres = layout.counts(pooled, "strata")
    strata = []
    for stratum in plan.strata:
        patients, days = (int(v) for v in layout.view(pooled, f"by.{stratum}.cohort"))
        years = days / DAYS_PER_YEAR
        entry: dict[str, Any] = {
            "stratum": stratum,
            "patients": patients,
            "patient_years": years,
            "centres": centres[stratum],
        }
        if is_suppressed(patients, plan.min_cell) or centres[stratum] < 2:
            rule = (
                suppression_rule(plan.min_cell)
                if is_suppressed(patients, plan.min_cell)
                else ONE_CENTRE_RULE
            )
            entry.update(suppressed=True, suppression_rule=rule)
        else:
            entry.update(
                suppressed=False,
                safety=_safety_rows(layout, pooled, years, f"by.{stratum}.safety"),
            )
        strata.append(entry)
    for index in secondary_suppressions(
        [entry["patients"] for entry in strata], [entry["suppressed"] for entry in strata]
    ):
        strata[index] = _secondary(
            strata[index], ("stratum", "patients", "patient_years", "centres")
        )
    changes = []
    for outcome, months in plan.cells:
        rows = [
            change_cell_result(
                layout, pooled, outcome, months, stratum_cell_prefix(outcome, months, stratum)
            )[0]
            | {"stratum": stratum}
            for stratum in plan.strata
        ]
        sizes = [
            int(layout.view(pooled, f"{stratum_cell_prefix(outcome, months, s)}.sums")[0])
            for s in plan.strata
        ]
        for index in secondary_suppressions(sizes, [row["suppressed"] for row in rows]):
            rows[index] = _secondary(rows[index], _CELL_IDENTITY)
        changes.append(
            {
                "outcome": outcome,
                "months": months,
                "strata": rows,
                **between_strata_tests(layout, pooled, outcome, months),
            }
        )
    return {
        "by": plan.by,
        "left_out_missing_stratum": centres["missing"],
        "strata": strata,
        "changes": changes,
    }

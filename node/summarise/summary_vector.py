"""The node's release: one centre's derived cohort folded into the summary vector.

The vector's layout is :class:`~sscjak.shared.summary_layout.SummaryLayout` (defined once,
in ``shared/``); this module only fills it. Every element is an exact integer, so the sum
of the centres' vectors is the vector of the stacked cohort.
"""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import numpy as np

from sscjak.node.data.centre_reader import CentreData, read_centre
from sscjak.node.summarise.centre_estimates import fill_heterogeneity
from sscjak.node.summarise.derivation import DerivedCohort, derive_cohort
from sscjak.shared.data_contract import EVENT_TYPES, JAKI_DRUGS, SEXES, SSC_SUBSETS
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.moments import ChangeCellSums
from sscjak.shared.statistics.survival import on_time_grid
from sscjak.shared.summary_layout import (
    MAX_AGE_YEARS,
    MAX_FOLLOWUP_DAYS,
    SummaryLayout,
    cell_prefix,
    stratum_cell_prefix,
    tte_segment,
)


def summarise_centre(folder: Path | str, plan: Plan) -> np.ndarray:
    """Read, validate, derive and summarise one centre's folder (raises CentreDataError)."""
    return summarise_data(read_centre(folder, plan.measures), plan)


def summarise_data(data: CentreData, plan: Plan) -> np.ndarray:
    """The summary vector of already-read centre data."""
    return summarise_derived(derive_cohort(data.patients, data.visits, data.events, plan), plan)


def _category_counts(values: np.ndarray, categories: tuple[str, ...]) -> list[int]:
    """Counts per category, then the count of missing values (None)."""
    counts = [int(np.count_nonzero(values == category)) for category in categories]
    missing = int(np.count_nonzero(np.equal(values, None)))
    return [*counts, missing]


def summarise_derived(derived: DerivedCohort, plan: Plan) -> np.ndarray:
    """Fill the layout of ``plan`` from one centre's :class:`DerivedCohort`."""
    layout = SummaryLayout.for_plan(plan)
    vector = layout.zeros()
    if derived.followup_days.size and (
        derived.followup_days.min() < 0 or derived.followup_days.max() > MAX_FOLLOWUP_DAYS
    ):
        raise ValueError(f"follow-up outside 0…{MAX_FOLLOWUP_DAYS} days: validate the files first")
    layout.view(vector, "centres")[:] = 1
    layout.view(vector, "cohort")[:] = [derived.n_patients, int(derived.followup_days.sum())]
    layout.view(vector, "drugs")[:] = [
        int(np.count_nonzero(derived.jaki_drug == drug)) for drug in JAKI_DRUGS
    ]
    layout.view(vector, "sex")[:] = _category_counts(derived.sex, SEXES)
    layout.view(vector, "ssc_subset")[:] = _category_counts(derived.ssc_subset, SSC_SUBSETS)
    layout.view(vector, "followup_days_histogram")[:] = np.bincount(
        derived.followup_days, minlength=MAX_FOLLOWUP_DAYS + 1
    )
    in_range = derived.birth_year_known & (derived.age_at_start >= 0)
    in_range &= derived.age_at_start <= MAX_AGE_YEARS
    layout.view(vector, "age_at_start")[:] = [
        int(np.count_nonzero(~derived.birth_year_known)),
        int(np.count_nonzero(derived.birth_year_known & ~in_range)),
    ]
    layout.view(vector, "age_at_start_histogram")[:] = np.bincount(
        derived.age_at_start[in_range], minlength=MAX_AGE_YEARS + 1
    )
    for (outcome, months), cell in derived.cells.items():
        _fill_cell(
            layout, vector, cell_prefix(outcome, months), cell.baseline_units, cell.change_units
        )
    layout.view(vector, "calcinosis")[:] = [
        int(derived.calcinosis_baseline.sum()),
        int(derived.calcinosis_improved.sum()),
    ]
    layout.view(vector, "digital_ulcers")[:] = [int(derived.developed_du.sum())]
    layout.view(vector, "glucocorticoids")[:] = [int(derived.on_gc_at_baseline.sum())]
    per_type = derived.events_on_treatment
    layout.view(vector, "safety.events")[:] = [int(per_type[t].sum()) for t in EVENT_TYPES]
    layout.view(vector, "safety.patients")[:] = [
        int(np.count_nonzero(per_type[t])) for t in EVENT_TYPES
    ]
    if plan.by or plan.time_to_event:
        strata = stratum_values(derived, plan.by)
        layout.view(vector, "strata")[:] = [
            *(int(np.any(strata == stratum)) for stratum in plan.strata),
            int(np.count_nonzero(np.equal(strata, None))),
        ]
    if plan.by:
        _fill_strata(layout, vector, derived, plan)
    if plan.time_to_event:
        _fill_time_to_event(layout, vector, derived, plan)
    if plan.heterogeneity:
        fill_heterogeneity(layout, vector, derived, plan)
    return vector


def _fill_cell(
    layout: SummaryLayout, vector: np.ndarray, prefix: str, x0: np.ndarray, d: np.ndarray
) -> None:
    """A change cell's exact sums (n, Σx₀, Σx₀², Σd, Σd², Σx₀d) and its histogram of d."""
    sums = list(astuple(ChangeCellSums.of(x0, d)))
    segment = layout.segment(f"{prefix}.sums")
    if segment.length == len(sums) + 1:  # a stratum's cell also counts its centres
        sums.append(int(x0.size > 0))
    layout.view(vector, segment.name)[:] = sums
    histogram = layout.segment(f"{prefix}.histogram")
    layout.view(vector, histogram.name)[:] = np.bincount(
        d - histogram.origin, minlength=histogram.length
    )


def _fill_strata(
    layout: SummaryLayout, vector: np.ndarray, derived: DerivedCohort, plan: Plan
) -> None:
    """Per stratum of ``by``: the cohort, every change cell and the safety counts."""
    strata = stratum_values(derived, plan.by)
    for stratum in plan.strata:
        members = strata == stratum
        layout.view(vector, f"by.{stratum}.cohort")[:] = [
            int(members.sum()),
            int(derived.followup_days[members].sum()),
        ]
        for (outcome, months), cell in derived.cells.items():
            inside = members[cell.patient_index]
            _fill_cell(
                layout,
                vector,
                stratum_cell_prefix(outcome, months, stratum),
                cell.baseline_units[inside],
                cell.change_units[inside],
            )
        per_type = derived.events_on_treatment
        layout.view(vector, f"by.{stratum}.safety.events")[:] = [
            int(per_type[t][members].sum()) for t in EVENT_TYPES
        ]
        layout.view(vector, f"by.{stratum}.safety.patients")[:] = [
            int(np.count_nonzero(per_type[t][members])) for t in EVENT_TYPES
        ]


def stratum_values(derived: DerivedCohort, by: str) -> np.ndarray:
    """Each patient's stratum: the value of ``by`` ("all" when the plan has none; None
    when the patient's value is missing)."""
    if not by:
        return np.full(derived.n_patients, "all", dtype=object)
    return {"jaki_drug": derived.jaki_drug, "sex": derived.sex, "ssc_subset": derived.ssc_subset}[
        by
    ]


def _fill_time_to_event(
    layout: SummaryLayout, vector: np.ndarray, derived: DerivedCohort, plan: Plan
) -> None:
    """Per endpoint and stratum: the histograms of event and censoring times on the grid."""
    strata = stratum_values(derived, plan.by)
    in_stratum = {stratum: strata == stratum for stratum in plan.strata}
    length = plan.horizon_grid + 1
    for endpoint in plan.time_to_event:
        days, event = derived.time_to_event[endpoint]
        t, e = on_time_grid(days, event, plan.time_grid, plan.horizon_grid)
        for stratum, members in in_stratum.items():
            for kind, flag in (("events", e), ("censored", ~e)):
                chosen = members & flag
                layout.view(vector, tte_segment(endpoint, stratum, kind))[:] = np.bincount(
                    t[chosen], minlength=length
                )

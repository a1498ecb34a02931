"""Derivation of each patient's paired changes and events, locally at the node (CONTRACT.md §2).

Input is a validated :class:`~sscjak.node.centre_reader.CentreData`; output is a
:class:`DerivedCohort` of per-patient arrays (indexed by patient position, never by id),
from which :mod:`sscjak.node.summary` builds the released vector. Everything is
vectorised: a sort and a first-per-patient pick replace any loop over rows.

Rules (CONTRACT.md §2):

- month = 30.4375 days; treatment end = jaki_stop, else followup_end;
  follow-up = (end − start) days.
- Baseline of a measure: visits with the measure present and date in
  [start − 90 d, start + 14 d]; the closest to start wins, a tie goes to the earlier visit.
- Value at T months: visits with the measure present, date ≤ treatment end and
  |date − (start + T × 30.4375 d)| ≤ window × 30.4375 d; closest wins, tie → earlier.
- Values are put on the measure's grid (half away from zero) before the change
  d = value(T) − baseline is taken, so d is an exact integer number of grid units.
- gc_dose_mg counts only patients with a baseline dose > 0.
- Calcinosis improved: baseline calcinosis = 1 and the last calcinosis_course recorded on
  treatment after baseline (start < date ≤ end) is "improved".
- Developed DU: a visit with start < date ≤ end and du_count > 0, or a digital_ulcer event
  with start ≤ date ≤ end.
- Safety: events with start ≤ date ≤ end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sscjak.shared.data_contract import (
    BASELINE_DAYS_AFTER,
    BASELINE_DAYS_BEFORE,
    DAYS_PER_MONTH,
    EVENT_TYPES,
    MEASURES,
    POSITIVE_BASELINE_ONLY,
    Measure,
)
from sscjak.shared.plan import Plan

_NAT_DAYS = np.iinfo(np.int64).min


@dataclass(frozen=True)
class ChangeCell:
    """The patients counting for one (outcome, months) cell: baseline and change in grid units."""

    outcome: str
    months: int
    patient_index: np.ndarray  # int64 positions into the patients table
    baseline_units: np.ndarray  # int64
    change_units: np.ndarray  # int64


@dataclass(frozen=True)
class DerivedCohort:
    """Per-patient derived quantities of one centre; arrays are aligned with ``patients`` rows."""

    n_patients: int
    followup_days: np.ndarray  # int64 per patient
    jaki_drug: np.ndarray  # object (str) per patient
    sex: np.ndarray  # object (str or None)
    ssc_subset: np.ndarray  # object (str or None)
    cells: dict[tuple[str, int], ChangeCell]
    calcinosis_baseline: np.ndarray  # bool per patient
    calcinosis_improved: np.ndarray  # bool per patient
    developed_du: np.ndarray  # bool per patient
    on_gc_at_baseline: np.ndarray  # bool per patient
    events_on_treatment: dict[str, np.ndarray]  # event type -> int64 count per patient


def to_grid_units(values: np.ndarray, measure: Measure) -> np.ndarray:
    """Values as integer grid units, rounded half away from zero (CONTRACT.md §2).

    ``80.35`` on a 0.1 grid is 803.5 units → 804. The product is first rounded to 9
    decimals so that binary floating point (80.35 × 10 = 803.4999999999999) cannot move a
    decimal half down.
    """
    scaled = np.round(np.asarray(values, dtype=np.float64) * measure.units_per_value, 9)
    return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)


def _days(series: pd.Series) -> np.ndarray:
    """Dates as whole days since 1970-01-01 (int64); missing dates become a sentinel."""
    as_days = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    days = as_days.astype(np.int64)
    days[np.isnat(as_days)] = _NAT_DAYS
    return days


def _first_per_patient(
    patient_index: np.ndarray, distance: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Row positions of the closest row per patient; ties go to the earlier day."""
    order = np.lexsort((day, distance, patient_index))
    sorted_patients = patient_index[order]
    first = np.ones(sorted_patients.shape[0], dtype=bool)
    first[1:] = sorted_patients[1:] != sorted_patients[:-1]
    return order[first]


def _pick_closest(
    patient_index: np.ndarray,
    day: np.ndarray,
    units: np.ndarray,
    target: np.ndarray,
    eligible: np.ndarray,
    n_patients: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: (has a value, the value) of the eligible visit closest to its target."""
    rows = np.flatnonzero(eligible)
    picked = rows[
        _first_per_patient(patient_index[rows], np.abs(day[rows] - target[rows]), day[rows])
    ]
    has = np.zeros(n_patients, dtype=bool)
    value = np.zeros(n_patients, dtype=np.int64)
    has[patient_index[picked]] = True
    value[patient_index[picked]] = units[picked]
    return has, value


def derive_cohort(
    patients: pd.DataFrame, visits: pd.DataFrame, events: pd.DataFrame, plan: Plan
) -> DerivedCohort:
    """Apply CONTRACT.md §2 to one centre's validated tables (see the module docstring)."""
    n = len(patients)
    ids = pd.Index(patients["patient_id"].astype(str))
    start = _days(patients["jaki_start"])
    stop = _days(patients["jaki_stop"])
    end = np.where(stop != _NAT_DAYS, stop, _days(patients["followup_end"]))
    followup_days = end - start

    visit_patient = ids.get_indexer(visits["patient_id"].astype(str)).astype(np.int64)
    visit_day = _days(visits["visit_date"])
    visit_start = start[visit_patient]
    visit_end = end[visit_patient]
    in_baseline_window = (visit_day >= visit_start - BASELINE_DAYS_BEFORE) & (
        visit_day <= visit_start + BASELINE_DAYS_AFTER
    )
    on_treatment_after_start = (visit_day > visit_start) & (visit_day <= visit_end)
    start_as_float = visit_start.astype(np.float64)
    day_as_float = visit_day.astype(np.float64)
    window_days = plan.window_months * DAYS_PER_MONTH

    needed = set(plan.outcomes) | {"gc_dose_mg"}
    baselines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cells: dict[tuple[str, int], ChangeCell] = {}
    for name in [m for m in MEASURES if m in needed]:
        measure = MEASURES[name]
        raw = visits[name].to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(raw)
        units = np.zeros(raw.shape[0], dtype=np.int64)
        units[present] = to_grid_units(raw[present], measure)
        has_base, base_units = _pick_closest(
            visit_patient, day_as_float, units, start_as_float, present & in_baseline_window, n
        )
        baselines[name] = (has_base, base_units)
        if name not in plan.outcomes:
            continue
        counts = has_base & (base_units > 0) if name in POSITIVE_BASELINE_ONLY else has_base
        for months in plan.months:
            target = start_as_float + months * DAYS_PER_MONTH
            eligible = (
                present & (visit_day <= visit_end) & (np.abs(day_as_float - target) <= window_days)
            )
            has_t, t_units = _pick_closest(visit_patient, day_as_float, units, target, eligible, n)
            members = np.flatnonzero(counts & has_t)
            cells[(name, months)] = ChangeCell(
                outcome=name,
                months=months,
                patient_index=members,
                baseline_units=base_units[members],
                change_units=t_units[members] - base_units[members],
            )

    calcinosis_baseline, calcinosis_improved = _calcinosis(
        visits,
        visit_patient,
        day_as_float,
        start_as_float,
        in_baseline_window,
        on_treatment_after_start,
        n,
    )
    developed_du = _developed_du(
        visits, visit_patient, on_treatment_after_start, events, ids, start, end, n
    )
    has_gc, gc_units = baselines["gc_dose_mg"]
    return DerivedCohort(
        n_patients=n,
        followup_days=followup_days,
        jaki_drug=patients["jaki_drug"].astype(str).to_numpy(dtype=object),
        sex=_optional_text(patients["sex"]),
        ssc_subset=_optional_text(patients["ssc_subset"]),
        cells=cells,
        calcinosis_baseline=calcinosis_baseline,
        calcinosis_improved=calcinosis_improved,
        developed_du=developed_du,
        on_gc_at_baseline=has_gc & (gc_units > 0),
        events_on_treatment=_events_on_treatment(events, ids, start, end, n),
    )


def _optional_text(series: pd.Series) -> np.ndarray:
    values = series.astype(object).to_numpy(dtype=object)
    return np.where(pd.isna(values), None, values)


def _calcinosis(
    visits: pd.DataFrame,
    visit_patient: np.ndarray,
    day: np.ndarray,
    start: np.ndarray,
    in_baseline_window: np.ndarray,
    on_treatment_after_start: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(calcinosis = 1 at baseline, and of those: last course on treatment is 'improved')."""
    calcinosis = visits["calcinosis"].to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(calcinosis)
    units = np.where(present, calcinosis, 0).astype(np.int64)
    has_base, base_value = _pick_closest(
        visit_patient, day, units, start, present & in_baseline_window, n
    )
    baseline_present = has_base & (base_value == 1)

    course = visits["calcinosis_course"].astype(object).to_numpy(dtype=object)
    course_present = ~pd.isna(course) & on_treatment_after_start
    rows = np.flatnonzero(course_present)
    # The last recorded course: the closest to +infinity, i.e. the latest date first.
    last = rows[_first_per_patient(visit_patient[rows], -day[rows], day[rows])]
    improved = np.zeros(n, dtype=bool)
    improved[visit_patient[last]] = course[last] == "improved"
    return baseline_present, baseline_present & improved


def _developed_du(
    visits: pd.DataFrame,
    visit_patient: np.ndarray,
    on_treatment_after_start: np.ndarray,
    events: pd.DataFrame,
    ids: pd.Index,
    start: np.ndarray,
    end: np.ndarray,
    n: int,
) -> np.ndarray:
    """A visit after baseline on treatment with du_count > 0, or a DU event on treatment."""
    du_count = visits["du_count"].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        ulcer_visit = on_treatment_after_start & (du_count > 0)
    developed = np.zeros(n, dtype=bool)
    developed[visit_patient[ulcer_visit]] = True
    event_patient, on_treatment = _events_in_treatment(events, ids, start, end)
    du_event = on_treatment & (events["event_type"].astype(str).to_numpy() == "digital_ulcer")
    developed[event_patient[du_event]] = True
    return developed


def _events_in_treatment(
    events: pd.DataFrame, ids: pd.Index, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    event_patient = ids.get_indexer(events["patient_id"].astype(str)).astype(np.int64)
    event_day = _days(events["event_date"])
    on_treatment = (event_day >= start[event_patient]) & (event_day <= end[event_patient])
    return event_patient, on_treatment


def _events_on_treatment(
    events: pd.DataFrame, ids: pd.Index, start: np.ndarray, end: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Per event type, the number of events on treatment of each patient."""
    event_patient, on_treatment = _events_in_treatment(events, ids, start, end)
    types = events["event_type"].astype(str).to_numpy()
    return {
        event_type: np.bincount(
            event_patient[on_treatment & (types == event_type)], minlength=n
        ).astype(np.int64)
        for event_type in EVENT_TYPES
    }

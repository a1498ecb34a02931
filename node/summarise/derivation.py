"""Derivation of each patient's paired changes and events, locally at the node (docs/derivation.md).

Input is a validated :class:`~sscjak.node.data.centre_reader.CentreData`; output is a
:class:`DerivedCohort` of per-patient arrays (indexed by patient position, never by id),
from which :mod:`sscjak.node.summarise.summary_vector` builds the released vector. Everything is
vectorised: a sort and a first-per-patient pick replace any loop over rows.

Rules (docs/derivation.md):

- month = 30.4375 days; treatment end = jaki_stop, else followup_end;
  follow-up = (end − start) days.
- Age at JAKi start = calendar year of jaki_start − birth_year, in whole years (the
  contract collects the birth year only); unknown when birth_year is missing.
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
- Time to event, from jaki_start in days: drug retention — to jaki_stop (event) or
  followup_end (censored); developed DU — to the first date meeting the rule above
  (event) or treatment end (censored); each event type — to its first event in
  [start, end] (event) or treatment end (censored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sscjak.shared.data_contract import (
    BASELINE_DAYS_AFTER,
    BASELINE_DAYS_BEFORE,
    EVENT_TYPES,
    MONTH_IN_DAYS,
    POSITIVE_BASELINE_ONLY,
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
    age_at_start: np.ndarray  # int64 whole years per patient; 0 where birth_year is missing
    birth_year_known: np.ndarray  # bool per patient
    cells: dict[tuple[str, int], ChangeCell]
    calcinosis_baseline: np.ndarray  # bool per patient
    calcinosis_improved: np.ndarray  # bool per patient
    developed_du: np.ndarray  # bool per patient
    on_gc_at_baseline: np.ndarray  # bool per patient
    events_on_treatment: dict[str, np.ndarray]  # event type -> int64 count per patient
    #: endpoint -> (days from jaki_start to the event or censoring, event happened)
    time_to_event: dict[str, tuple[np.ndarray, np.ndarray]]


def _days(series: pd.Series) -> np.ndarray:
    """Dates as whole days since 1970-01-01 (int64); missing dates become a sentinel."""
    as_days = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    days = as_days.astype(np.int64)
    days[np.isnat(as_days)] = _NAT_DAYS
    return days


#: Days are counted in fractions of a day fine enough that a month is a whole number of
#: them (sixteenths: 30.4375 × 16 = 487), so distances compare exactly in integers.
FRACTIONS_PER_DAY = MONTH_IN_DAYS.denominator
FRACTIONS_PER_MONTH = MONTH_IN_DAYS.numerator


def _smallest_key_per_patient(patient_index: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Positions (into the given arrays) of each patient's row with the smallest key.

    Rows must be grouped by patient (ascending) and keys be non-negative and distinct
    within a patient. The position is packed under the key so that one
    ``minimum.reduceat`` per patient group finds both: O(rows), no sort.
    """
    if patient_index.size == 0:
        return np.zeros(0, dtype=np.int64)
    shift = int(patient_index.size).bit_length()
    composite = (key.astype(np.int64) << shift) | np.arange(patient_index.size, dtype=np.int64)
    group_starts = np.flatnonzero(np.r_[True, patient_index[1:] != patient_index[:-1]])
    return np.minimum.reduceat(composite, group_starts) & ((1 << shift) - 1)


@dataclass(frozen=True)
class _Visits:
    """Per-visit arrays, grouped by patient; days relative to the patient's jaki_start."""

    order: np.ndarray  # positions into the visits table, grouped by patient
    patient: np.ndarray  # patient position of each visit
    day: np.ndarray  # visit_date − jaki_start, in days
    end_day: np.ndarray  # treatment end − jaki_start of the visit's patient
    n_patients: int

    def column(self, visits: pd.DataFrame, name: str) -> np.ndarray:
        return visits[name].to_numpy(dtype=np.float64, na_value=np.nan)[self.order]

    def pick_closest(
        self, units: np.ndarray, eligible: np.ndarray, target_sixteenths: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per patient: (has a value, the value) of the eligible visit closest to the target
        (in sixteenths of a day after jaki_start); a tie goes to the earlier visit."""
        rows = np.flatnonzero(eligible)
        offset = FRACTIONS_PER_DAY * self.day[rows] - target_sixteenths
        # distance first, then "after the target" so that the earlier of two equals wins
        key = 2 * np.abs(offset) + (offset > 0)
        picked = rows[_smallest_key_per_patient(self.patient[rows], key)]
        has = np.zeros(self.n_patients, dtype=bool)
        value = np.zeros(self.n_patients, dtype=np.int64)
        has[self.patient[picked]] = True
        value[self.patient[picked]] = units[picked]
        return has, value

    def window(self, months: int, window_months: float) -> np.ndarray:
        """Visits on treatment within ±window of the time point (docs/derivation.md)."""
        offset = np.abs(FRACTIONS_PER_DAY * self.day - FRACTIONS_PER_MONTH * months)
        return (self.day <= self.end_day) & (offset <= FRACTIONS_PER_MONTH * window_months)


def derive_cohort(
    patients: pd.DataFrame, visits: pd.DataFrame, events: pd.DataFrame, plan: Plan
) -> DerivedCohort:
    """Apply docs/derivation.md to one centre's validated tables (see the module docstring)."""
    n = len(patients)
    ids = pd.Index(patients["patient_id"])
    start = _days(patients["jaki_start"])
    stop = _days(patients["jaki_stop"])
    end = np.where(stop != _NAT_DAYS, stop, _days(patients["followup_end"]))
    followup_days = end - start

    visit_patient = ids.get_indexer(visits["patient_id"]).astype(np.int64)
    order = np.argsort(visit_patient, kind="stable")
    patient = visit_patient[order]
    timeline = _Visits(
        order=order,
        patient=patient,
        day=_days(visits["visit_date"])[order] - start[patient],
        end_day=followup_days[patient],
        n_patients=n,
    )
    in_baseline_window = (timeline.day >= -BASELINE_DAYS_BEFORE) & (
        timeline.day <= BASELINE_DAYS_AFTER
    )
    on_treatment_after_start = (timeline.day > 0) & (timeline.day <= timeline.end_day)

    needed = set(plan.outcomes) | {"gc_dose_mg"}
    baselines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cells: dict[tuple[str, int], ChangeCell] = {}
    for name in [m for m in plan.measure_names if m in needed]:
        measure = plan.measure(name)
        raw = timeline.column(visits, name)
        present = ~np.isnan(raw)
        units = np.zeros(raw.shape[0], dtype=np.int64)
        units[present] = measure.to_units(raw[present])
        has_base, base_units = timeline.pick_closest(units, present & in_baseline_window, 0)
        baselines[name] = (has_base, base_units)
        if name not in plan.outcomes:
            continue
        counts = has_base & (base_units > 0) if name in POSITIVE_BASELINE_ONLY else has_base
        for months in plan.months:
            has_t, t_units = timeline.pick_closest(
                units,
                present & timeline.window(months, plan.window_months),
                FRACTIONS_PER_MONTH * months,
            )
            members = np.flatnonzero(counts & has_t)
            cells[(name, months)] = ChangeCell(
                outcome=name,
                months=months,
                patient_index=members,
                baseline_units=base_units[members],
                change_units=t_units[members] - base_units[members],
            )

    calcinosis_baseline, calcinosis_improved = _calcinosis(
        visits, timeline, in_baseline_window, on_treatment_after_start
    )
    event_patient = ids.get_indexer(events["patient_id"]).astype(np.int64)
    event_day = _days(events["event_date"]) - start[event_patient]
    on_treatment = (event_day >= 0) & (event_day <= followup_days[event_patient])
    event_types = events["event_type"].to_numpy(dtype=object)
    events_on_treatment = {
        event_type: np.bincount(
            event_patient[on_treatment & (event_types == event_type)], minlength=n
        ).astype(np.int64)
        for event_type in EVENT_TYPES
    }
    du_count = timeline.column(visits, "du_count")
    with np.errstate(invalid="ignore"):
        ulcer_visit = on_treatment_after_start & (du_count > 0)
    developed_du = events_on_treatment["digital_ulcer"] > 0
    developed_du[timeline.patient[ulcer_visit]] = True

    first_event_day = {
        event_type: _first_day_per_patient(
            event_patient[on_treatment & (event_types == event_type)],
            event_day[on_treatment & (event_types == event_type)],
            n,
        )
        for event_type in EVENT_TYPES
    }
    first_du_day = np.minimum(
        first_event_day["digital_ulcer"],
        _first_day_per_patient(timeline.patient[ulcer_visit], timeline.day[ulcer_visit], n),
    )
    time_to_event: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for endpoint in plan.time_to_event:
        if endpoint == "drug_retention":
            time_to_event[endpoint] = (followup_days.copy(), stop != _NAT_DAYS)
            continue
        first = first_du_day if endpoint == "developed_du" else first_event_day[endpoint]
        happened = first <= followup_days
        time_to_event[endpoint] = (np.where(happened, first, followup_days), happened)

    has_gc, gc_units = baselines["gc_dose_mg"]
    age_at_start, birth_year_known = _age_at_start(patients, start)
    return DerivedCohort(
        n_patients=n,
        followup_days=followup_days,
        jaki_drug=patients["jaki_drug"].to_numpy(dtype=object),
        sex=_optional_text(patients["sex"]),
        ssc_subset=_optional_text(patients["ssc_subset"]),
        age_at_start=age_at_start,
        birth_year_known=birth_year_known,
        cells=cells,
        calcinosis_baseline=calcinosis_baseline,
        calcinosis_improved=calcinosis_improved,
        developed_du=developed_du,
        on_gc_at_baseline=has_gc & (gc_units > 0),
        events_on_treatment=events_on_treatment,
        time_to_event=time_to_event,
    )


def _first_day_per_patient(patient: np.ndarray, day: np.ndarray, n: int) -> np.ndarray:
    """Per patient the smallest of ``day`` over their rows; a value above any day where
    the patient has none."""
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, patient.astype(np.int64), day.astype(np.int64))
    return first


def _age_at_start(patients: pd.DataFrame, start_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(age in whole years at JAKi start, birth_year known): year(jaki_start) − birth_year."""
    if "birth_year" not in patients:
        return np.zeros(len(patients), dtype=np.int64), np.zeros(len(patients), dtype=bool)
    birth_year = patients["birth_year"].to_numpy(dtype=np.float64, na_value=np.nan)
    known = ~np.isnan(birth_year)
    start_year = start_days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    age = np.zeros(len(patients), dtype=np.int64)
    age[known] = start_year[known] - birth_year[known].astype(np.int64)
    return age, known


def _optional_text(series: pd.Series) -> np.ndarray:
    values = series.astype(object).to_numpy(dtype=object)
    return np.where(pd.isna(values), None, values)


def _calcinosis(
    visits: pd.DataFrame,
    timeline: _Visits,
    in_baseline_window: np.ndarray,
    on_treatment_after_start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(calcinosis = 1 at baseline, and of those: last course on treatment is 'improved')."""
    calcinosis = timeline.column(visits, "calcinosis")
    present = ~np.isnan(calcinosis)
    has_base, base_value = timeline.pick_closest(
        np.where(present, calcinosis, 0).astype(np.int64), present & in_baseline_window, 0
    )
    baseline_present = has_base & (base_value == 1)

    course = visits["calcinosis_course"].to_numpy(dtype=object)[timeline.order]
    rows = np.flatnonzero(~pd.isna(course) & on_treatment_after_start)
    # The last recorded course is the visit with the largest day: the smallest −day.
    latest_first = (timeline.end_day[rows] - timeline.day[rows]).astype(np.int64)
    last = rows[_smallest_key_per_patient(timeline.patient[rows], latest_first)]
    improved = np.zeros(timeline.n_patients, dtype=bool)
    improved[timeline.patient[last]] = course[last] == "improved"
    return baseline_present, baseline_present & improved

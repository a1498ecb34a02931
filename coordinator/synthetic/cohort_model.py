"""Synthetic multi-centre cohorts of SSc patients treated with JAK inhibitors.

The generator writes centre folders exactly in the format of docs/input-files.md and is
used three ways: by the bundled demo (``demo_centres/``, four centres whose pooled
result resembles the published reference study, docs/statistics.md), by property
tests that need random cohorts of any size split across any number of centres, and by
the one-node benchmark (100,000 patients / 1,000,000 visits), which is why every step
is vectorised numpy over all patients or all visits at once — no Python loop over rows.

Nothing here is an estimate from real data. The distributions are plausible choices,
tuned so that the pooled demo looks like the published cohort. Measured on 20,000
generated patients with the node's derivation: follow-up median about 17 months (IQR
about 10–31); FVC% and DLCO% change at 12 months about +2.4 points; mRSS about −2.9,
tender joints about −3, swollen joints about −1.5; 30% on glucocorticoids at baseline,
their dose falling by about 2.3 mg/day; calcinosis at baseline in 21%, 40% of them
improving; new digital ulcers in a third; infections the commonest adverse event, then
digital ulcers, herpes zoster and serious infections.

Every value is drawn on the measure's recording grid (``MEASURES[...].resolution``);
values off the grid appear only when ``off_grid_fraction`` asks for them. Each
generated folder is valid per docs/input-files.md: patient ids unique, at most one visit per
patient and date, ``jaki_stop`` and ``followup_end`` never before ``jaki_start``,
``followup_end`` present whenever ``jaki_stop`` is empty, and every value in range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from sscjak.shared.data_contract import (
    BASELINE_DAYS_AFTER,
    BASELINE_DAYS_BEFORE,
    CALCINOSIS_COURSES,
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    EVENT_TYPES,
    JAKI_DRUGS,
    MEASURES,
    SEXES,
    SSC_SUBSETS,
    VISITS,
)

#: pandas' default text dtype (Arrow-backed, missing = NaN), as ``pd.Series(..., dtype="str")``.
_STR = pd.StringDtype("pyarrow", na_value=np.nan)

# ---------------------------------------------------------------------------------------
# Plausible cohort parameters (choices, not estimates; see the module docstring).
# ---------------------------------------------------------------------------------------

#: First and last possible JAKi initiation, and the data cut-off of the retrospective study.
_FIRST_START = np.datetime64("2014-01-01", "D")
_LAST_START = np.datetime64("2024-06-30", "D")
_DATA_CUTOFF = np.datetime64("2025-12-31", "D")
#: Drug shares: tofacitinib and baricitinib dominate published SSc JAKi series.
_DRUG_SHARES = {
    "tofacitinib": 0.42,
    "baricitinib": 0.28,
    "upadacitinib": 0.18,
    "ruxolitinib": 0.06,
    "filgotinib": 0.04,
    "other": 0.02,
}
#: Time on treatment is log-normal: median 17 months, log-SD 0.84 gives an IQR of about
#: 9.6–30 months (the reference study: 16.9 (10.3, 31.8)).
_FOLLOWUP_MEDIAN_MONTHS = 17.0
_FOLLOWUP_LOG_SD = 0.84
_MIN_FOLLOWUP_DAYS = 30
#: Share of patients with a jaki_stop date (the others are ongoing at last contact).
_STOPPED_SHARE = 0.40
#: Among stopped patients, share seen again after the stop (followup_end > jaki_stop).
_SEEN_AFTER_STOP_SHARE = 0.5
_FEMALE_SHARE = 0.85
_SUBSET_SHARES = {"dcSSc": 0.55, "lcSSc": 0.40, "other": 0.05}
#: Share of optional patient fields left empty.
_MISSING_DEMOGRAPHY_SHARE = 0.03

#: Scheduled follow-up visits (months after JAKi initiation); jitter SD in days, and
#: share of visits moved 61–100 days away (outside every ±2-month window).
_SCHEDULED_MONTHS = np.array([3, 6, 9, 12, 18, 24, 30, 36, 48, 60, 72, 84, 96], dtype=float)
_SCHEDULED_SHARE = 0.75
_JITTER_SD_DAYS = 18.0
_OFF_SCHEDULE_SHARE = 0.08
#: Share of patients with no visit in the baseline window, and with a second,
#: earlier screening visit inside it.
_NO_BASELINE_SHARE = 0.10
_SCREENING_VISIT_SHARE = 0.15

#: Probability that a measure is recorded at a baseline-window visit / later visit.
_PRESENT_AT_BASELINE = {
    "fvc_pct": 0.85,
    "dlco_pct": 0.80,
    "mrss": 0.90,
    "tjc": 0.85,
    "sjc": 0.85,
    "du_count": 0.75,
    "gc_dose_mg": 0.90,
}
_PRESENT_LATER = {
    "fvc_pct": 0.55,
    "dlco_pct": 0.50,
    "mrss": 0.65,
    "tjc": 0.60,
    "sjc": 0.60,
    "du_count": 0.55,
    "gc_dose_mg": 0.80,
}
#: Share of patients never given pulmonary function tests during the study.
_NO_PFT_SHARE = 0.08

_ON_GC_SHARE = 0.36  # about 30% with a recorded baseline dose > 0
_GC_START_DOSES = np.array([2.5, 5.0, 5.0, 5.0, 7.5, 7.5, 10.0, 10.0, 12.5, 15.0, 20.0])
_CALCINOSIS_SHARE = 0.30
_CALCINOSIS_OUTCOMES = {"improved": 0.55, "stable": 0.33, "worsened": 0.12}
_ARTHRITIS_SHARE = 0.55
_DU_PRONE_SHARE = 0.30

#: Adverse-event rates per 100 patient-years of observation, recurrent events allowed
#: (plausible for JAKi-treated autoimmune cohorts). Digital ulcers: (DU-prone, others).
_EVENT_RATES_PER_100PY = {
    "infection": 22.0,
    "serious_infection": 4.0,
    "herpes_zoster": 4.5,
    "vte": 0.8,
    "mace": 1.0,
    "malignancy": 1.0,
    "other": 10.0,
}
_DIGITAL_ULCER_RATES_PER_100PY = (30.0, 3.0)
#: Share of patients who die, on the day of their last contact.
_DEATH_SHARE = 0.02
#: Events are recorded from this many days before JAKi initiation to the last contact.
_EVENT_HISTORY_DAYS = 90


@dataclass(frozen=True)
class CohortTables:
    """One cohort (or one centre) as the three tables of docs/input-files.md.

    Columns are those of ``data_contract.PATIENTS``, ``VISITS`` and ``EVENTS`` in that
    order; dates are ISO ``YYYY-MM-DD`` strings, text columns strings, integer measures
    pandas ``Int64``, other measures ``float64``; a missing value is NA, written as an
    empty cell.
    """

    patients: pd.DataFrame
    visits: pd.DataFrame
    events: pd.DataFrame

    @property
    def n_patients(self) -> int:
        return len(self.patients)


def generate_cohort(
    n_patients: int,
    seed: int,
    *,
    visits_per_patient: float = 8.0,
    off_grid_fraction: float = 0.0,
    equidistant_visits: bool = False,
    window_edge_visits: bool = False,
    id_prefix: str = "P",
) -> CohortTables:
    """Draw a synthetic SSc JAKi cohort of ``n_patients`` patients, reproducibly from ``seed``.

    Parameters
    ----------
    n_patients
        Number of patients (≥ 1).
    seed
        Seed of numpy's ``default_rng``; the same arguments always give the same tables.
    visits_per_patient
        Mean number of visits per patient (about; visits of one patient falling on the
        same date are merged). 10 gives the 1,000,000-visit benchmark from 100,000
        patients.
    off_grid_fraction
        Share of FVC%, DLCO% and glucocorticoid values moved off their recording grid
        (80.35 instead of 80.3, including exact half-way cases), to exercise the
        contract's rounding rule and ``validate``'s off-grid count. Default 0: every
        value on its grid.
    equidistant_visits
        Add, for every patient, two baseline-window visits exactly equidistant from
        ``jaki_start`` (start − k, start + k, k in 1..14) and, when the patient is
        still observed there, two visits exactly equidistant from the 24-month target
        (start + 730.5 ∓ (k + 0.5) days; 12 months = 365.25 days has no equidistant
        pair of whole days). All measures are recorded at these visits, with
        different values, so the contract's "a tie goes to the earlier visit" decides.
    window_edge_visits
        Add, for every patient, one visit on a window boundary: the first/last day in
        or the first day out of the baseline window or of the 12- or 24-month window.
    id_prefix
        Patient ids are ``id_prefix`` followed by a zero-padded serial number.

    Notes
    -----
    The schedule: most patients have a visit in [start − 90, start + 14] days (the
    baseline window of docs/derivation.md), some a second screening visit there, about 10%
    none; later visits cluster around 3, 6, 9, 12, 18, 24, 30, 36, … months with
    normal jitter, 8% of them 61–100 days off (outside every ±2-month window), others
    unscheduled; patients seen after ``jaki_stop`` have visits after it. Visits never
    fall after the last contact (``followup_end``, else ``jaki_stop``).
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    if not visits_per_patient >= 1.0:
        raise ValueError(f"visits_per_patient must be at least 1, got {visits_per_patient}")
    if any(c in id_prefix for c in ',"\r\n'):
        raise ValueError(f"id_prefix must not hold a comma, quote or line break: {id_prefix!r}")
    if not 0.0 <= off_grid_fraction <= 1.0:
        raise ValueError(f"off_grid_fraction must be in [0, 1], got {off_grid_fraction}")
    rng = np.random.default_rng(seed)
    cohort = _draw_patients(rng, n_patients)
    visit_patient, visit_day = _draw_visit_days(rng, cohort, visits_per_patient)
    forced = np.zeros(len(visit_day), dtype=bool)
    extra_patient, extra_day = [], []
    if equidistant_visits:
        patients, days, closer = _equidistant_visit_days(rng, cohort, visit_patient, visit_day)
        # Drop ordinary visits closer to a target than its pair, so the tie decides.
        visit_patient, visit_day = visit_patient[~closer], visit_day[~closer]
        forced = forced[~closer]
        extra_patient.append(patients)
        extra_day.append(days)
    if window_edge_visits:
        patients, days = _window_edge_visit_days(rng, cohort)
        extra_patient.append(patients)
        extra_day.append(days)
    if extra_patient:
        visit_patient = np.concatenate([visit_patient, *extra_patient])
        visit_day = np.concatenate([visit_day, *extra_day])
        forced = np.concatenate([forced, np.ones(len(visit_patient) - len(forced), bool)])
        # One visit per patient and date: sort, keep the first of each (patient, day);
        # the edge-case visits sort first so they survive a collision.
        order = np.lexsort((~forced, visit_day, visit_patient))
        visit_patient, visit_day, forced = visit_patient[order], visit_day[order], forced[order]
        keep = np.ones(len(visit_day), dtype=bool)
        keep[1:] = (np.diff(visit_patient) != 0) | (np.diff(visit_day) != 0)
        visit_patient, visit_day, forced = visit_patient[keep], visit_day[keep], forced[keep]

    visit_values = _draw_visit_values(rng, cohort, visit_patient, visit_day, forced)
    if off_grid_fraction > 0:
        _move_off_grid(rng, visit_values, off_grid_fraction)
    event_patient, event_day, event_type = _draw_events(rng, cohort)

    ids = _patient_ids(id_prefix, n_patients)
    patients = _patients_frame(ids, cohort)
    visits = _visits_frame(ids, visit_patient, visit_day, visit_values)
    events = _events_frame(ids, event_patient, event_day, event_type)
    return CohortTables(patients, visits, events)


def split_into_centres(
    cohort: CohortTables,
    n_centres: int,
    seed: int,
    *,
    sizes: Sequence[int] | None = None,
) -> list[CohortTables]:
    """Split ``cohort`` at random into ``n_centres`` centres of at least one patient each.

    Every patient goes, with all of its visits and events, to exactly one centre; the
    centres' sizes are random (a Dirichlet(2) share of the patients beyond the one each
    centre is guaranteed) unless ``sizes`` fixes them. Row order within each table is
    kept, so ids stay unique within a centre.
    """
    n = cohort.n_patients
    if n_centres < 1:
        raise ValueError(f"n_centres must be at least 1, got {n_centres}")
    if n < n_centres:
        raise ValueError(f"cannot split {n} patients into {n_centres} non-empty centres")
    rng = np.random.default_rng(seed)
    if sizes is None:
        shares = rng.dirichlet(np.full(n_centres, 2.0))
        extra = rng.multinomial(n - n_centres, shares)
        centre_sizes = extra + 1
    else:
        centre_sizes = np.asarray(sizes, dtype=np.int64)
        if len(centre_sizes) != n_centres or centre_sizes.sum() != n or centre_sizes.min() < 1:
            raise ValueError(f"sizes {list(sizes)} do not split {n} patients into {n_centres}")
    centre_of_patient = np.repeat(np.arange(n_centres), centre_sizes)[rng.permutation(n)]
    patient_index = pd.Index(cohort.patients["patient_id"])
    visit_centre = centre_of_patient[patient_index.get_indexer(cohort.visits["patient_id"])]
    event_centre = centre_of_patient[patient_index.get_indexer(cohort.events["patient_id"])]
    return [
        CohortTables(
            cohort.patients[centre_of_patient == c].reset_index(drop=True),
            cohort.visits[visit_centre == c].reset_index(drop=True),
            cohort.events[event_centre == c].reset_index(drop=True),
        )
        for c in range(n_centres)
    ]


@dataclass(frozen=True)
class _PatientDraw:
    """Per-patient draws, as parallel arrays (days are integer days since 1970-01-01)."""

    start: np.ndarray
    stop: np.ndarray  # treatment end when stopped, else -1
    followup_end: np.ndarray  # last contact when recorded, else -1
    treatment_end: np.ndarray  # jaki_stop, else followup_end (docs/derivation.md)
    last_contact: np.ndarray  # followup_end, else jaki_stop
    drug: np.ndarray
    female: np.ndarray
    birth_year: np.ndarray
    subset: np.ndarray
    died: np.ndarray
    # latent disease state
    arthritis: np.ndarray
    du_prone: np.ndarray
    calcinosis: np.ndarray
    calcinosis_outcome: np.ndarray  # index into CALCINOSIS_COURSES
    on_gc: np.ndarray
    no_pft: np.ndarray
    # optional demographic fields left empty
    sex_missing: np.ndarray
    birth_year_missing: np.ndarray
    subset_missing: np.ndarray


def _draw_patients(rng: np.random.Generator, n: int) -> _PatientDraw:
    first = int(_FIRST_START.astype(np.int64))
    last = int(_LAST_START.astype(np.int64))
    cutoff = int(_DATA_CUTOFF.astype(np.int64))
    start = rng.integers(first, last + 1, size=n)
    months = np.exp(rng.normal(math.log(_FOLLOWUP_MEDIAN_MONTHS), _FOLLOWUP_LOG_SD, size=n))
    duration = np.maximum(np.round(months * DAYS_PER_MONTH).astype(np.int64), _MIN_FOLLOWUP_DAYS)
    # Patients still followed at the data cut-off were last seen in its final two months.
    censored = start + duration > cutoff
    treatment_end = np.where(censored, cutoff - rng.integers(0, 61, size=n), start + duration)
    treatment_end = np.maximum(treatment_end, start + _MIN_FOLLOWUP_DAYS)
    stopped = (rng.random(n) < _STOPPED_SHARE) & ~censored
    seen_after = stopped & (rng.random(n) < _SEEN_AFTER_STOP_SHARE)
    after_days = rng.integers(30, 366, size=n)
    last_contact = np.where(
        seen_after, np.minimum(treatment_end + after_days, cutoff), treatment_end
    )
    stop = np.where(stopped, treatment_end, -1)
    followup_end = np.where(stopped & ~seen_after, -1, last_contact)

    drugs = np.array(list(_DRUG_SHARES))
    drug = drugs[rng.choice(len(drugs), size=n, p=list(_DRUG_SHARES.values()))]
    female = rng.random(n) < _FEMALE_SHARE
    subsets = np.array(list(_SUBSET_SHARES))
    subset = subsets[rng.choice(len(subsets), size=n, p=list(_SUBSET_SHARES.values()))]
    start_year = start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    age = np.clip(np.round(rng.normal(54, 12, size=n)), 18, 85).astype(np.int64)
    birth_year = start_year - age
    outcomes = np.array([CALCINOSIS_COURSES.index(c) for c in _CALCINOSIS_OUTCOMES])
    return _PatientDraw(
        start=start,
        stop=stop,
        followup_end=followup_end,
        treatment_end=treatment_end,
        last_contact=last_contact,
        drug=drug,
        female=female,
        birth_year=birth_year,
        subset=subset,
        died=rng.random(n) < _DEATH_SHARE,
        arthritis=rng.random(n) < _ARTHRITIS_SHARE,
        du_prone=rng.random(n) < _DU_PRONE_SHARE,
        calcinosis=rng.random(n) < _CALCINOSIS_SHARE,
        calcinosis_outcome=outcomes[
            rng.choice(len(outcomes), size=n, p=list(_CALCINOSIS_OUTCOMES.values()))
        ],
        on_gc=rng.random(n) < _ON_GC_SHARE,
        no_pft=rng.random(n) < _NO_PFT_SHARE,
        sex_missing=rng.random(n) < _MISSING_DEMOGRAPHY_SHARE,
        birth_year_missing=rng.random(n) < _MISSING_DEMOGRAPHY_SHARE,
        subset_missing=rng.random(n) < _MISSING_DEMOGRAPHY_SHARE,
    )


# ---------------------------------------------------------------------------------------
# Visit dates
# ---------------------------------------------------------------------------------------


def _draw_visit_days(
    rng: np.random.Generator, cohort: _PatientDraw, visits_per_patient: float
) -> tuple[np.ndarray, np.ndarray]:
    """Visit (patient index, day) pairs: baseline-window visits, then follow-up visits."""
    n = len(cohort.start)
    start, last = cohort.start, cohort.last_contact
    # Baseline: 60% in [-30, 0], 30% in [-90, -31], 10% in [1, 14]; the rest outside.
    has_baseline = rng.random(n) >= _NO_BASELINE_SHARE
    part = rng.random(n)
    offset = np.where(
        part < 0.6,
        rng.integers(-30, 1, size=n),
        np.where(
            part < 0.9,
            rng.integers(-BASELINE_DAYS_BEFORE, -30, size=n),
            rng.integers(1, BASELINE_DAYS_AFTER + 1, size=n),
        ),
    )
    outside = np.where(
        rng.random(n) < 0.5,
        rng.integers(-200, -BASELINE_DAYS_BEFORE, size=n),
        rng.integers(BASELINE_DAYS_AFTER + 1, 46, size=n),
    )
    # A patient without a baseline-window visit may have no early visit at all.
    early_visit = has_baseline | (rng.random(n) < 0.5)
    first_day = start + np.where(has_baseline, offset, outside)
    first_day = np.minimum(first_day, last)
    screening = has_baseline & (rng.random(n) < _SCREENING_VISIT_SHARE)
    screening_day = start - rng.integers(31, BASELINE_DAYS_BEFORE + 1, size=n)

    # Patients followed longer are seen more often: the number of follow-up visits is
    # Poisson with a mean proportional to 3 + observed months (capped at 60), scaled so
    # that the cohort's mean number of visits is ``visits_per_patient``.
    expected_early = early_visit.mean() + screening.mean()
    weight = 3.0 + np.minimum((last - start) / DAYS_PER_MONTH, 60.0)
    weight /= weight.mean()
    n_follow = rng.poisson(max(visits_per_patient - expected_early, 0.0) * weight)
    follow_patient = np.repeat(np.arange(n), n_follow)
    m = len(follow_patient)
    rank = np.arange(m) - np.repeat(np.cumsum(n_follow) - n_follow, n_follow)
    fp_start, fp_last = start[follow_patient], last[follow_patient]
    observed_months = (fp_last - fp_start) / DAYS_PER_MONTH
    # Scheduled visits spread evenly over the slots up to the last contact (the j-th of
    # k visits takes a slot in the j-th of k equal strata); the rest are unscheduled.
    n_slots = np.searchsorted(_SCHEDULED_MONTHS, observed_months + 1.0, side="right")
    scheduled = (rng.random(m) < _SCHEDULED_SHARE) & (n_slots > 0)
    stratum = (rank + rng.random(m)) / n_follow[follow_patient]
    slot = np.minimum(np.floor(stratum * n_slots).astype(np.int64), len(_SCHEDULED_MONTHS) - 1)
    nominal = np.where(
        scheduled,
        _SCHEDULED_MONTHS[slot],
        rng.uniform(0.0, 1.0, size=m) * observed_months,
    )
    jitter = rng.normal(0.0, _JITTER_SD_DAYS, size=m)
    off = rng.random(m) < _OFF_SCHEDULE_SHARE
    jitter = np.where(off, rng.choice([-1.0, 1.0], size=m) * rng.uniform(61, 100, size=m), jitter)
    day = fp_start + np.round(nominal * DAYS_PER_MONTH + jitter).astype(np.int64)
    # Keep follow-up visits after the baseline window and never after the last contact.
    # Visits that would fall outside are redrawn within 30 days of the nearer end (not
    # piled on one day, which would make many same-day collisions).
    first_allowed = fp_start + BASELINE_DAYS_AFTER + 1
    spread = rng.integers(0, 31, size=m)
    day = np.where(day > fp_last, fp_last - spread, day)
    day = np.where(day < first_allowed, first_allowed + spread, day)
    day = np.clip(day, first_allowed, fp_last)

    patients = np.concatenate(
        [np.flatnonzero(early_visit), np.flatnonzero(screening), follow_patient]
    )
    days = np.concatenate([first_day[early_visit], screening_day[screening], day])
    return _separate_same_day_visits(patients.astype(np.int64), days.astype(np.int64), last)


def _separate_same_day_visits(
    patient: np.ndarray, day: np.ndarray, last_contact: np.ndarray, rounds: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Move a visit that falls on the same day as another of its patient to the next day.

    The contract allows one visit per patient and date, and dropping the collisions would
    lose about 1% of the visits asked for. A visit that cannot move forward (the day
    after is past the last contact) moves back a day; after ``rounds`` rounds the few
    collisions left are dropped. Returns the visits sorted by patient and day.
    """
    # One int64 sort key per visit, patient in the high bits and day in the low 32: a
    # plain sort of the keys is several times faster than a lexsort of two arrays.
    base = int(day.min()) - rounds - 1 if len(day) else 0
    key = np.sort((patient << 32) | (day - base))
    for _ in range(rounds):
        repeat = np.zeros(len(key), dtype=bool)
        repeat[1:] = key[1:] == key[:-1]
        if not repeat.any():
            break
        forward = (key & 0xFFFFFFFF) + base + 1 <= last_contact[key >> 32]
        key = np.sort(np.where(repeat, np.where(forward, key + 1, key - 1), key))
    distinct = np.ones(len(key), dtype=bool)
    distinct[1:] = key[1:] != key[:-1]
    key = key[distinct]
    return key >> 32, (key & 0xFFFFFFFF) + base


def _equidistant_visit_days(
    rng: np.random.Generator,
    cohort: _PatientDraw,
    visit_patient: np.ndarray,
    visit_day: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of visits exactly equidistant from jaki_start and from the 24-month target.

    Returns the pairs' (patient, day) and a mask of the given visits lying strictly
    closer to one of those targets than its pair (they would decide instead of the tie).
    """
    n = len(cohort.start)
    idx = np.arange(n)
    k = rng.integers(1, BASELINE_DAYS_AFTER + 1, size=n)
    # 24 months = 730.5 days: days 730 − j and 731 + j are both j + 0.5 days away; the
    # pair is placed only where both are on treatment (≤ treatment end).
    j = rng.integers(0, 60, size=n)
    early, late = cohort.start + 730 - j, cohort.start + 731 + j
    seen = late <= cohort.treatment_end
    offset = visit_day - cohort.start[visit_patient]
    closer = (np.abs(offset) < k[visit_patient]) | (
        seen[visit_patient] & (np.abs(offset - 730.5) < j[visit_patient] + 0.5)
    )
    patients = np.concatenate([idx, idx, idx[seen], idx[seen]])
    days = np.concatenate([cohort.start - k, cohort.start + k, early[seen], late[seen]])
    return patients, days, closer


def _window_edge_visit_days(
    rng: np.random.Generator, cohort: _PatientDraw
) -> tuple[np.ndarray, np.ndarray]:
    """One visit per patient on a window boundary (just inside or just outside)."""
    offsets = [
        -BASELINE_DAYS_BEFORE - 1,
        -BASELINE_DAYS_BEFORE,
        BASELINE_DAYS_AFTER,
        BASELINE_DAYS_AFTER + 1,
    ]
    half_width = 2 * DAYS_PER_MONTH
    for months in (12, 24):
        target = months * DAYS_PER_MONTH
        first_in, last_in = math.ceil(target - half_width), math.floor(target + half_width)
        offsets += [first_in - 1, first_in, last_in, last_in + 1]
    n = len(cohort.start)
    day = cohort.start + np.array(offsets)[rng.integers(0, len(offsets), size=n)]
    seen = day <= cohort.last_contact
    return np.flatnonzero(seen), day[seen]


# ---------------------------------------------------------------------------------------
# Visit values
# ---------------------------------------------------------------------------------------


def _draw_visit_values(
    rng: np.random.Generator,
    cohort: _PatientDraw,
    patient: np.ndarray,
    day: np.ndarray,
    forced: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every visit column as an array: measures in grid units' float values, NaN = missing."""
    n = len(cohort.start)
    m = len(day)
    offset = day - cohort.start[patient]
    in_baseline_window = (offset >= -BASELINE_DAYS_BEFORE) & (offset <= BASELINE_DAYS_AFTER)
    t = np.clip(offset / DAYS_PER_MONTH, 0.0, None)  # months on treatment (0 before)
    t12 = np.minimum(t, 12.0)  # lung function drifts up during the first year, then holds
    subset = cohort.subset[patient]

    def present(name: str) -> np.ndarray:
        p = np.where(in_baseline_window, _PRESENT_AT_BASELINE[name], _PRESENT_LATER[name])
        return forced | (rng.random(m) < p)

    def per_patient(values: np.ndarray) -> np.ndarray:
        return values[patient]

    values: dict[str, np.ndarray] = {}
    # FVC% and DLCO%: stable on average, a small positive drift in the first year.
    no_pft = per_patient(cohort.no_pft)
    fvc0 = per_patient(np.clip(rng.normal(82, 17, n), 35, 140))
    fvc_slope = per_patient(rng.normal(0.2, 0.25, n))
    fvc = fvc0 + fvc_slope * t12 + rng.normal(0, 2.5, m)
    values["fvc_pct"] = _on_grid(fvc, "fvc_pct", present("fvc_pct") & (forced | ~no_pft))
    dlco0 = per_patient(np.clip(rng.normal(58, 16, n), 15, 130))
    dlco_slope = per_patient(rng.normal(0.2, 0.30, n))
    dlco = dlco0 + dlco_slope * t12 + rng.normal(0, 3.5, m)
    values["dlco_pct"] = _on_grid(dlco, "dlco_pct", present("dlco_pct") & (forced | ~no_pft))
    # mRSS: higher in diffuse disease; most patients soften, about 15% progress.
    mrss_mean = np.select([subset == "dcSSc", subset == "lcSSc"], [17.0, 6.0], 10.0)
    mrss_sd = np.select([subset == "dcSSc", subset == "lcSSc"], [8.0, 4.0], 6.0)
    mrss0_patient = np.clip(rng.normal(0, 1, n), -2.5, 2.5)
    mrss0 = np.clip(mrss_mean + mrss_sd * per_patient(mrss0_patient), 0, 45)
    response = per_patient(rng.uniform(0.0, 0.55, n))
    progress = per_patient((rng.random(n) < 0.15) * rng.uniform(0, 6, n))
    ramp12 = np.minimum(t / 12.0, 1.0)
    mrss = mrss0 * (1 - response * ramp12) + progress * ramp12 + rng.normal(0, 1.2, m)
    values["mrss"] = _on_grid(mrss, "mrss", present("mrss"))
    # Joint counts: arthritis patients respond markedly within about 6 months.
    arthritis = cohort.arthritis
    tjc0 = np.where(arthritis, rng.poisson(7, n) + 1, rng.poisson(0.4, n))
    sjc0 = np.where(arthritis & (rng.random(n) < 0.8), rng.poisson(3.5, n) + 1, rng.poisson(0.2, n))
    joint_response = rng.beta(4, 2, n)
    keep_share = 1 - per_patient(joint_response) * np.minimum(t / 6.0, 1.0)
    tjc = rng.binomial(np.minimum(per_patient(tjc0), 28), keep_share) + rng.poisson(0.3, m)
    sjc = rng.binomial(np.minimum(per_patient(sjc0), 28), keep_share) + rng.poisson(0.15, m)
    values["tjc"] = _on_grid(tjc, "tjc", present("tjc"))
    values["sjc"] = _on_grid(sjc, "sjc", present("sjc"))
    # Active digital ulcers: DU-prone patients have them at baseline and now and then later.
    du_prone = per_patient(cohort.du_prone)
    du_at_baseline = per_patient(rng.random(n) < 0.6)
    du = np.where(
        in_baseline_window,
        np.where(du_prone & du_at_baseline, rng.poisson(1.2, m) + 1, 0),
        np.where(du_prone, rng.poisson(0.45, m), rng.random(m) < 0.03),
    )
    values["du_count"] = _on_grid(du, "du_count", present("du_count"))
    # Calcinosis present (0/1) at baseline and now and then later; course at later visits.
    calcinosis = per_patient(cohort.calcinosis)
    calc_recorded = np.where(in_baseline_window, rng.random(m) < 0.75, rng.random(m) < 0.15)
    values["calcinosis"] = np.where(forced | calc_recorded, calcinosis.astype(float), np.nan)
    follow_up = offset > BASELINE_DAYS_AFTER
    course_recorded = calcinosis & follow_up & (forced | (rng.random(m) < 0.5))
    outcome = per_patient(cohort.calcinosis_outcome)
    course = np.where(t >= 6.0, outcome, CALCINOSIS_COURSES.index("stable"))
    values["calcinosis_course"] = np.where(course_recorded, course, -1)  # codes, -1 = none
    # Glucocorticoids: about 30% on a low dose at baseline, tapering; a few start later.
    on_gc = per_patient(cohort.on_gc)
    gc0 = per_patient(rng.choice(_GC_START_DOSES, size=n))
    taper = per_patient(rng.uniform(0.0, 0.04, n))
    floor = per_patient(rng.uniform(0.4, 1.0, n))
    stops_gc = per_patient(rng.random(n) < 0.10)
    # Tapering goes in the usual steps: 2.5 mg above 10 mg/day, 1.25 mg at or below.
    gc_on = gc0 * np.maximum(floor, 1 - taper * t)
    gc_on = np.where(gc_on > 10, np.round(gc_on / 2.5) * 2.5, np.round(gc_on / 1.25) * 1.25)
    gc_on = np.where(stops_gc & (t > 9), 0.0, gc_on)
    starts_later = per_patient(rng.random(n) < 0.05)
    gc_off = np.where(starts_later & (t > 6), 5.0, 0.0)
    gc = np.where(on_gc, gc_on, gc_off)
    values["gc_dose_mg"] = _on_grid(gc, "gc_dose_mg", present("gc_dose_mg"))
    return values


def _on_grid(raw: np.ndarray, name: str, present: np.ndarray) -> np.ndarray:
    """Round to the measure's grid (half away from zero), clip to its range, NaN where absent."""
    measure = MEASURES[name]
    units = measure.to_units(np.where(np.isfinite(raw), raw, 0.0))
    grid = np.clip(units, measure.low_units, measure.high_units) / measure.units_per_value
    return np.where(present, grid, np.nan)


def _move_off_grid(rng: np.random.Generator, values: dict[str, np.ndarray], share: float) -> None:
    """Move ``share`` of the present FVC%, DLCO% and glucocorticoid values off their grid."""
    shifts = {
        # half a grid step (the half-away-from-zero case) and other fractions of a step
        "fvc_pct": np.array([0.05, -0.05, 0.03, 0.02, -0.04]),
        "dlco_pct": np.array([0.05, -0.05, 0.03, 0.02, -0.04]),
        "gc_dose_mg": np.array([0.125, 0.1, 0.05]),
    }
    for name, choices in shifts.items():
        column = values[name]
        measure = MEASURES[name]
        # only positive values move: a dose of 0 stays 0 (it decides the GC subgroup)
        chosen = (column > 0) & (rng.random(len(column)) < share)
        moved = np.round(column + rng.choice(choices, size=len(column)), 3)
        in_range = (moved >= measure.low) & (moved <= measure.high)
        values[name] = np.where(chosen & in_range, moved, column)


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


def _draw_events(
    rng: np.random.Generator, cohort: _PatientDraw
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adverse events as Poisson processes over [start − 90 days, last contact]."""
    n = len(cohort.start)
    window_start = cohort.start - _EVENT_HISTORY_DAYS
    window_days = cohort.last_contact - window_start
    years = window_days / DAYS_PER_YEAR
    patients, days, types = [], [], []
    du_rate = np.where(cohort.du_prone, *_DIGITAL_ULCER_RATES_PER_100PY)
    rates = {
        **{k: np.full(n, v) for k, v in _EVENT_RATES_PER_100PY.items()},
        "digital_ulcer": du_rate,
    }
    for event_type in EVENT_TYPES:
        if event_type == "death":
            continue
        counts = rng.poisson(rates[event_type] / 100.0 * years)
        who = np.repeat(np.arange(n), counts)
        patients.append(who)
        days.append(window_start[who] + rng.integers(0, window_days[who] + 1))
        types.append(np.full(len(who), EVENT_TYPES.index(event_type)))
    died = np.flatnonzero(cohort.died)
    patients.append(died)
    days.append(cohort.last_contact[died])
    types.append(np.full(len(died), EVENT_TYPES.index("death")))
    patient = np.concatenate(patients)
    day = np.concatenate(days)
    event_type = np.concatenate(types)
    order = np.lexsort((event_type, day, patient))
    return patient[order], day[order], event_type[order]


# ---------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------


def _patient_ids(prefix: str, n: int) -> np.ndarray:
    width = max(3, len(str(n)))
    serial = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, serial).astype(object)


def _iso(days: np.ndarray) -> pd.Series:
    """Integer days since 1970-01-01 as ISO ``YYYY-MM-DD`` text; negative days are missing."""
    distinct, codes = np.unique(days, return_inverse=True)
    labels = np.datetime_as_string(np.maximum(distinct, 0).astype("datetime64[D]"), unit="D")
    return _text(np.where(days >= 0, codes, -1), labels)


def _text(codes: np.ndarray, labels: Sequence[str] | np.ndarray) -> pd.Series:
    """A text column from integer codes into ``labels`` (−1 = missing), built in Arrow.

    Building the strings through an Arrow dictionary keeps a 1,000,000-row column to
    tens of milliseconds (an object array of Python strings takes several times longer).
    """
    codes = np.asarray(codes)
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    dictionary = pa.array(np.asarray(labels, dtype=object), type=pa.large_string())
    text = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())
    return pd.Series(pd.array(text, dtype=_STR))


def _choice_codes(values: np.ndarray, labels: Sequence[str], missing: np.ndarray) -> np.ndarray:
    """Codes of ``values`` (each one of ``labels``) into ``labels``; −1 where ``missing``."""
    label_array = np.asarray(labels)
    order = np.argsort(label_array)
    codes = order[np.searchsorted(label_array[order], values)]
    return np.where(missing, -1, codes)


def _patients_frame(ids: np.ndarray, cohort: _PatientDraw) -> pd.DataFrame:
    n = len(ids)
    none = np.zeros(n, dtype=bool)
    birth_year = pd.array(cohort.birth_year, dtype="Int64")
    birth_year[cohort.birth_year_missing] = pd.NA
    return pd.DataFrame(
        {
            "patient_id": _text(np.arange(n), ids),
            "jaki_drug": _text(_choice_codes(cohort.drug, JAKI_DRUGS, none), JAKI_DRUGS),
            "jaki_start": _iso(cohort.start),
            "jaki_stop": _iso(cohort.stop),
            "followup_end": _iso(cohort.followup_end),
            "sex": _text(np.where(cohort.sex_missing, -1, np.where(cohort.female, 0, 1)), SEXES),
            "birth_year": birth_year,
            "ssc_subset": _text(
                _choice_codes(cohort.subset, SSC_SUBSETS, cohort.subset_missing), SSC_SUBSETS
            ),
        }
    )


def _visits_frame(
    ids: np.ndarray, patient: np.ndarray, day: np.ndarray, values: dict[str, np.ndarray]
) -> pd.DataFrame:
    columns: dict[str, object] = {"patient_id": _text(patient, ids), "visit_date": _iso(day)}
    for name in VISITS.column_names[2:]:
        column = values[name]
        if name == "calcinosis_course":
            columns[name] = _text(column, CALCINOSIS_COURSES)
        elif name == "calcinosis" or MEASURES[name].integer:
            missing = np.isnan(column)
            integers = pd.array(np.where(missing, 0, column).astype(np.int64), dtype="Int64")
            integers[missing] = pd.NA
            columns[name] = integers
        else:
            columns[name] = column.astype(np.float64)
    return pd.DataFrame(columns)


def _events_frame(
    ids: np.ndarray, patient: np.ndarray, day: np.ndarray, event_type: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": _text(patient, ids),
            "event_date": _iso(day),
            "event_type": _text(event_type, EVENT_TYPES),
        }
    )

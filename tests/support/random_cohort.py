"""Random small cohorts as validated-table DataFrames, built to hit the derivation's edges.

Visits cluster around baseline and the 12/24-month targets, including days just inside
and just outside every window, equidistant pairs, visits after treatment end, values on
and off the grid, zero glucocorticoid doses and frequent ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sscjak.shared.data_contract import EVENT_TYPES, JAKI_DRUGS, MEASURES, VISITS

EPOCH = np.datetime64("2018-01-01")
#: Day offsets that sit on or next to the windows' edges (baseline, 12 and 24 months).
EDGE_OFFSETS = np.array(
    [-91, -90, -3, 0, 3, 14, 15, 304, 305, 365, 366, 426, 427, 669, 670, 730, 731, 791, 792]
)


def random_cohort(
    seed: int, n_patients: int, id_prefix: str = "p"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(patients, visits, events) in the shape ``read_centre`` returns."""
    rng = np.random.default_rng(seed)
    start_offset = rng.integers(0, 1500, n_patients)
    starts = EPOCH + start_offset.astype("timedelta64[D]")
    duration = rng.choice([0, 200, 366, 420, 731, 800, 1500], n_patients) + rng.integers(
        0, 30, n_patients
    )
    stopped = rng.random(n_patients) < 0.4
    patients = pd.DataFrame(
        {
            "patient_id": [f"{id_prefix}{i}" for i in range(n_patients)],
            "jaki_drug": rng.choice(JAKI_DRUGS, n_patients),
            "jaki_start": pd.to_datetime(starts),
            "jaki_stop": pd.to_datetime(np.where(stopped, starts + duration, np.datetime64("NaT"))),
            "followup_end": pd.to_datetime(
                np.where(stopped, np.datetime64("NaT"), starts + duration)
            ),
            "sex": pd.array(rng.choice(["F", "M", None], n_patients, p=[0.7, 0.2, 0.1]), "str"),
            "birth_year": pd.array(rng.integers(1940, 2000, n_patients), dtype="Int64"),
            "ssc_subset": pd.array(
                rng.choice(["lcSSc", "dcSSc", "other", None], n_patients), dtype="str"
            ),
        }
    )
    # Birth years missing or giving an age outside 0…120 at JAKi start, drawn from their own
    # generator so that every other column keeps the values earlier seeds gave.
    age_rng = np.random.default_rng([seed, 1])
    birth_year = patients["birth_year"].to_numpy(dtype=np.float64)
    kind = age_rng.random(n_patients)
    birth_year[kind < 0.08] = np.nan
    birth_year[(kind >= 0.08) & (kind < 0.11)] = 2090  # born after JAKi start
    birth_year[(kind >= 0.11) & (kind < 0.13)] = 1900  # older than 120 at JAKi start
    patients["birth_year"] = pd.array(
        np.where(np.isnan(birth_year), None, birth_year), dtype="Int64"
    )
    visits_per_patient = rng.integers(0, 12, n_patients)
    owner = np.repeat(np.arange(n_patients), visits_per_patient)
    n_visits = owner.size
    use_edge = rng.random(n_visits) < 0.6
    offsets = np.where(
        use_edge, rng.choice(EDGE_OFFSETS, n_visits), rng.integers(-120, 900, n_visits)
    )
    visit_days = starts[owner] + offsets.astype("timedelta64[D]")
    visits = pd.DataFrame({"patient_id": patients["patient_id"].to_numpy()[owner]})
    visits["visit_date"] = pd.to_datetime(visit_days)
    visits = visits.drop_duplicates(["patient_id", "visit_date"]).reset_index(drop=True)
    n_visits = len(visits)
    for name, measure in MEASURES.items():
        present = rng.random(n_visits) < 0.7
        if measure.integer:
            values = rng.integers(
                int(measure.low), int(min(measure.high, measure.low + 12)) + 1, n_visits
            ).astype(float)
        elif name == "gc_dose_mg":
            values = rng.choice([0.0, 0.0, 2.5, 5.0, 7.5, 10.0, 12.25, 2.125], n_visits)
        else:
            values = np.round(rng.uniform(60, 110, n_visits), 1)
            off_grid = rng.random(n_visits) < 0.05
            values[off_grid] = np.round(values[off_grid] + 0.05, 2)
        visits[name] = np.where(present, values, np.nan)
    visits["calcinosis"] = np.where(
        rng.random(n_visits) < 0.5, rng.integers(0, 2, n_visits), np.nan
    )
    visits["calcinosis_course"] = pd.array(
        rng.choice(["improved", "stable", "worsened", None, None], n_visits), dtype="str"
    )
    visits = visits[list(VISITS.column_names)]

    n_events = int(rng.integers(0, 2 * n_patients + 1))
    event_owner = rng.integers(0, n_patients, n_events)
    event_days = starts[event_owner] + rng.integers(-30, 1600, n_events).astype("timedelta64[D]")
    events = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy()[event_owner],
            "event_date": pd.to_datetime(event_days),
            "event_type": rng.choice(EVENT_TYPES, n_events),
        }
    )
    return patients, visits, events


def split_into_centres(frames, n_centres: int, rng: np.random.Generator):
    """Deal a cohort's patients at random to ``n_centres`` centres: yields each centre's
    (patients, visits, events), every patient's rows at exactly one centre."""
    patients, visits, events = frames
    centre_of = dict(
        zip(patients["patient_id"], rng.integers(0, n_centres, len(patients)), strict=True)
    )
    for centre in range(n_centres):
        ids = {pid for pid, c in centre_of.items() if c == centre}
        yield (
            patients[patients["patient_id"].isin(ids)].reset_index(drop=True),
            visits[visits["patient_id"].isin(ids)].reset_index(drop=True),
            events[events["patient_id"].isin(ids)].reset_index(drop=True),
        )

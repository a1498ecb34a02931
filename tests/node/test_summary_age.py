"""The age segments of the summary: a histogram of whole years at JAKi start (year of
jaki_start − birth_year, 0…120) and the patients without an age."""

from __future__ import annotations

import numpy as np
import pandas as pd
from random_cohort import random_cohort

from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.summary_layout import MAX_AGE_YEARS, SummaryLayout

#: The default plan's vector: 36,030 int64 (288,240 bytes), as docs/benchmarks.md states.
DEFAULT_LENGTH = 36_030


def _patients(birth_years: list[int | None], starts: list[str]) -> pd.DataFrame:
    n = len(birth_years)
    return pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(n)],
            "jaki_drug": ["tofacitinib"] * n,
            "jaki_start": pd.to_datetime(starts),
            "jaki_stop": pd.to_datetime([None] * n),
            "followup_end": pd.to_datetime(starts) + pd.Timedelta(days=400),
            "sex": pd.array(["F"] * n, dtype="str"),
            "birth_year": pd.array(birth_years, dtype="Int64"),
            "ssc_subset": pd.array(["lcSSc"] * n, dtype="str"),
        }
    )


def _empty_visits_events() -> tuple[pd.DataFrame, pd.DataFrame]:
    _, visits, events = random_cohort(0, 1)
    return visits.iloc[0:0], events.iloc[0:0]


def test_age_is_the_year_of_jaki_start_minus_the_birth_year() -> None:
    plan = Plan(outcomes=("mrss",), months=(12,))
    patients = _patients(
        [1960, 1960, None, 2030, 1899 + 1, 2020, 1975],
        [
            "2020-01-01",  # 60
            "2020-12-31",  # 60: whole calendar years, the birthday is not collected
            "2021-05-05",  # missing
            "2021-05-05",  # −9: outside
            "2021-05-05",  # 121: outside
            "2020-06-01",  # 0: in range
            "2019-03-03",  # 44
        ],
    )
    visits, events = _empty_visits_events()
    derived = derive_cohort(patients, visits, events, plan)
    assert derived.age_at_start[derived.birth_year_known].tolist() == [60, 60, -9, 121, 0, 44]
    layout = SummaryLayout.for_plan(plan)
    vector = summarise_derived(derived, plan)
    assert layout.counts(vector, "age_at_start") == {"birth_year_missing": 1, "outside_0_120": 2}
    histogram = layout.view(vector, "age_at_start_histogram")
    assert histogram.shape == (MAX_AGE_YEARS + 1,)
    assert {int(age): int(histogram[age]) for age in np.flatnonzero(histogram)} == {
        0: 1,
        44: 1,
        60: 2,
    }
    assert int(histogram.sum()) + 3 == len(patients)


def test_age_segments_hold_every_patient_of_a_random_cohort() -> None:
    plan = default_plan()
    patients, visits, events = random_cohort(11, 200)
    vector = summarise_derived(derive_cohort(patients, visits, events, plan), plan)
    layout = SummaryLayout.for_plan(plan)
    unavailable = layout.counts(vector, "age_at_start")
    ages = patients["jaki_start"].dt.year - patients["birth_year"]
    in_range = ages.notna() & (ages >= 0) & (ages <= MAX_AGE_YEARS)
    assert unavailable["birth_year_missing"] == int(patients["birth_year"].isna().sum())
    assert unavailable["outside_0_120"] == int((ages.notna() & ~in_range).sum())
    expected = np.bincount(ages[in_range].to_numpy(dtype=np.int64), minlength=MAX_AGE_YEARS + 1)
    assert layout.view(vector, "age_at_start_histogram").tolist() == expected.tolist()


def test_the_default_layout_length_is_the_documented_one() -> None:
    layout = SummaryLayout.for_plan(default_plan())
    assert layout.length == DEFAULT_LENGTH and 8 * layout.length == 288_240
    assert layout.unit_text("age_at_start_histogram") == "value in years → patients"
    assert "sum_baseline in grid units of 0.1 % predicted" in layout.unit_text(
        "change.fvc_pct.12.sums"
    )

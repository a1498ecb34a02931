"""Derivation rules of docs/derivation.md at their edges, on hand-made tables."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from sscjak.node.summarise.derivation import derive_cohort
from sscjak.shared.data_contract import MEASURES, VISITS
from sscjak.shared.plan import Plan

START = date(2020, 1, 1)
PLAN = Plan()


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def patients_frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "jaki_drug": "tofacitinib",
        "jaki_start": START,
        "jaki_stop": None,
        "followup_end": day(1000),
        "sex": "F",
        "birth_year": 1960,
        "ssc_subset": "dcSSc",
    }
    frame = pd.DataFrame([{**base, **row} for row in rows])
    for column in ("jaki_start", "jaki_stop", "followup_end"):
        frame[column] = pd.to_datetime(frame[column])
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    return frame


def visits_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(VISITS.column_names))
    frame["visit_date"] = pd.to_datetime(frame["visit_date"])
    for name in [*MEASURES, "calcinosis"]:
        frame[name] = frame[name].astype("float64")
    return frame


def events_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["patient_id", "event_date", "event_type"])
    frame["event_date"] = pd.to_datetime(frame["event_date"])
    return frame


def derive(patients: list[dict], visits: list[dict], events: list[dict] | None = None):
    return derive_cohort(
        patients_frame(patients), visits_frame(visits), events_frame(events or []), PLAN
    )


def mrss_change(cohort, months: int) -> dict[int, int]:
    cell = cohort.cells[("mrss", months)]
    return dict(zip(cell.patient_index.tolist(), cell.change_units.tolist(), strict=True))


def test_month_window_boundaries_at_12_months() -> None:
    # target = start + 365.25 days, window ±60.875 days: day 305 and 426 are in, 304 and 427 out
    offsets = {"in_low": 305, "out_low": 304, "in_high": 426, "out_high": 427}
    patients = [{"patient_id": name} for name in offsets]
    visits = [{"patient_id": name, "visit_date": day(0), "mrss": 20} for name in offsets]
    visits += [
        {"patient_id": name, "visit_date": day(o), "mrss": 15} for name, o in offsets.items()
    ]
    changes = mrss_change(derive(patients, visits), 12)
    assert changes == {0: -5, 2: -5}


def test_baseline_window_boundaries() -> None:
    offsets = {"in_before": -90, "out_before": -91, "in_after": 14, "out_after": 15}
    patients = [{"patient_id": name} for name in offsets]
    visits = [{"patient_id": name, "visit_date": day(o), "mrss": 10} for name, o in offsets.items()]
    visits += [{"patient_id": name, "visit_date": day(365), "mrss": 12} for name in offsets]
    changes = mrss_change(derive(patients, visits), 12)
    assert changes == {0: 2, 2: 2}


def test_equidistant_visits_go_to_the_earlier_one() -> None:
    # 24 months: target = start + 730.5 days; days 730 and 731 are equally close.
    # Baseline: days -3 and +3 are equally close to the start.
    visits = [
        {"patient_id": "p", "visit_date": day(-3), "mrss": 10},
        {"patient_id": "p", "visit_date": day(3), "mrss": 30},
        {"patient_id": "p", "visit_date": day(730), "mrss": 14},
        {"patient_id": "p", "visit_date": day(731), "mrss": 40},
    ]
    cohort = derive([{"patient_id": "p"}], visits)
    assert mrss_change(cohort, 24) == {0: 4}


def test_closest_visit_wins_over_earlier_one() -> None:
    visits = [
        {"patient_id": "p", "visit_date": day(-20), "mrss": 10},
        {"patient_id": "p", "visit_date": day(-2), "mrss": 12},
        {"patient_id": "p", "visit_date": day(330), "mrss": 30},
        {"patient_id": "p", "visit_date": day(370), "mrss": 15},
    ]
    assert mrss_change(derive([{"patient_id": "p"}], visits), 12) == {0: 3}


def test_visits_after_treatment_end_do_not_count() -> None:
    patients = [
        {"patient_id": "stopped_before", "jaki_stop": day(360)},
        {"patient_id": "stopped_on_visit", "jaki_stop": day(366)},
        {"patient_id": "followup_ends_before", "followup_end": day(300)},
    ]
    visits = []
    for p in patients:
        visits += [
            {"patient_id": p["patient_id"], "visit_date": day(0), "mrss": 10},
            {"patient_id": p["patient_id"], "visit_date": day(366), "mrss": 8},
        ]
    cohort = derive(patients, visits)
    assert mrss_change(cohort, 12) == {1: -2}
    assert cohort.followup_days.tolist() == [360, 366, 300]


def test_float_changes_on_the_grid_are_ties() -> None:
    visits = [
        {"patient_id": "a", "visit_date": day(0), "fvc_pct": 75.1},
        {"patient_id": "a", "visit_date": day(365), "fvc_pct": 80.3},
        {"patient_id": "b", "visit_date": day(0), "fvc_pct": 76.1},
        {"patient_id": "b", "visit_date": day(365), "fvc_pct": 81.3},
    ]
    cell = derive([{"patient_id": "a"}, {"patient_id": "b"}], visits).cells[("fvc_pct", 12)]
    assert cell.change_units.tolist() == [52, 52]
    assert cell.baseline_units.tolist() == [751, 761]


def test_glucocorticoid_change_counts_only_patients_on_glucocorticoids_at_baseline() -> None:
    visits = [
        {"patient_id": "on", "visit_date": day(0), "gc_dose_mg": 7.5},
        {"patient_id": "on", "visit_date": day(365), "gc_dose_mg": 5},
        {"patient_id": "off", "visit_date": day(0), "gc_dose_mg": 0},
        {"patient_id": "off", "visit_date": day(365), "gc_dose_mg": 5},
    ]
    cohort = derive([{"patient_id": "on"}, {"patient_id": "off"}], visits)
    cell = cohort.cells[("gc_dose_mg", 12)]
    assert cell.patient_index.tolist() == [0]
    assert cell.change_units.tolist() == [-10]  # −2.5 mg in units of 0.25 mg
    assert cohort.on_gc_at_baseline.tolist() == [True, False]


def test_calcinosis_improvement_uses_the_last_course_on_treatment() -> None:
    patients = [
        {"patient_id": "improved_last", "jaki_stop": day(700)},
        {"patient_id": "worsened_last", "jaki_stop": day(700)},
        {"patient_id": "improved_after_stop", "jaki_stop": day(400)},
        {"patient_id": "no_baseline_calcinosis", "jaki_stop": day(700)},
    ]
    visits = [
        {"patient_id": "improved_last", "visit_date": day(0), "calcinosis": 1},
        {"patient_id": "improved_last", "visit_date": day(200), "calcinosis_course": "worsened"},
        {"patient_id": "improved_last", "visit_date": day(600), "calcinosis_course": "improved"},
        {"patient_id": "worsened_last", "visit_date": day(-10), "calcinosis": 1},
        {"patient_id": "worsened_last", "visit_date": day(200), "calcinosis_course": "improved"},
        {"patient_id": "worsened_last", "visit_date": day(600), "calcinosis_course": "worsened"},
        {"patient_id": "improved_after_stop", "visit_date": day(0), "calcinosis": 1},
        {
            "patient_id": "improved_after_stop",
            "visit_date": day(300),
            "calcinosis_course": "stable",
        },
        {
            "patient_id": "improved_after_stop",
            "visit_date": day(500),
            "calcinosis_course": "improved",
        },
        {"patient_id": "no_baseline_calcinosis", "visit_date": day(0), "calcinosis": 0},
        {
            "patient_id": "no_baseline_calcinosis",
            "visit_date": day(300),
            "calcinosis_course": "improved",
        },
    ]
    cohort = derive(patients, visits)
    assert cohort.calcinosis_baseline.tolist() == [True, True, True, False]
    assert cohort.calcinosis_improved.tolist() == [True, False, False, False]


def test_developed_digital_ulcers_from_visits_and_events() -> None:
    patients = [{"patient_id": name, "jaki_stop": day(500)} for name in "abcde"]
    visits = [
        {"patient_id": "a", "visit_date": day(100), "du_count": 2},  # on treatment: yes
        {"patient_id": "b", "visit_date": day(0), "du_count": 1},  # at baseline only: no
        {"patient_id": "c", "visit_date": day(501), "du_count": 1},  # after stop: no
        {"patient_id": "e", "visit_date": day(100), "du_count": 0},
    ]
    events = [
        {"patient_id": "d", "event_date": day(500), "event_type": "digital_ulcer"},  # on end: yes
        {"patient_id": "e", "event_date": day(-1), "event_type": "digital_ulcer"},  # before: no
    ]
    cohort = derive(patients, visits, events)
    assert cohort.developed_du.tolist() == [True, False, False, True, False]


def test_safety_events_count_inside_treatment_inclusive() -> None:
    patients = [{"patient_id": "a", "jaki_stop": day(100)}, {"patient_id": "b"}]
    events = [
        {"patient_id": "a", "event_date": day(0), "event_type": "herpes_zoster"},
        {"patient_id": "a", "event_date": day(100), "event_type": "herpes_zoster"},
        {"patient_id": "a", "event_date": day(101), "event_type": "herpes_zoster"},
        {"patient_id": "a", "event_date": day(-1), "event_type": "infection"},
        {"patient_id": "b", "event_date": day(999), "event_type": "vte"},
    ]
    cohort = derive(patients, [], events)
    assert cohort.events_on_treatment["herpes_zoster"].tolist() == [2, 0]
    assert cohort.events_on_treatment["infection"].tolist() == [0, 0]
    assert cohort.events_on_treatment["vte"].tolist() == [0, 1]


@pytest.mark.parametrize("months", [12, 24])
def test_patient_without_baseline_or_followup_does_not_count(months: int) -> None:
    visits = [
        {"patient_id": "no_base", "visit_date": day(365), "mrss": 5},
        {"patient_id": "no_base", "visit_date": day(730), "mrss": 5},
        {"patient_id": "no_follow", "visit_date": day(0), "mrss": 5},
    ]
    cohort = derive([{"patient_id": "no_base"}, {"patient_id": "no_follow"}], visits)
    assert cohort.cells[("mrss", months)].patient_index.size == 0

"""The synthetic cohort generator, the demo centres and ``sscjak-coordinator synthesize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.synthetic.cohort_model import (
    CohortTables,
    generate_cohort,
    split_into_centres,
)
from sscjak.coordinator.synthetic.demo_bundle import (
    DEMO_CENTRES,
    bundled_demo_folder,
    write_demo_centres,
)
from sscjak.coordinator.synthetic.writers import write_centre
from sscjak.node.data.centre_reader import read_centre
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.shared.data_contract import (
    BASELINE_DAYS_AFTER,
    BASELINE_DAYS_BEFORE,
    CALCINOSIS_COURSES,
    DAYS_PER_MONTH,
    EVENT_TYPES,
    EVENTS,
    JAKI_DRUGS,
    MEASURES,
    PATIENTS,
    SEXES,
    SSC_SUBSETS,
    VISITS,
)
from sscjak.shared.plan import Plan

# --- an independent check of docs/input-files.md on the generated frames ----------------------


def as_days(text: pd.Series) -> np.ndarray:
    """ISO dates as integer days; raises on anything that is not YYYY-MM-DD."""
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="raise")
    return (parsed.to_numpy().astype("datetime64[D]")).astype(np.int64)


def assert_valid_centre(tables: CohortTables, *, on_grid: bool = True) -> None:
    """Every rule of docs/input-files.md that a generated table could break."""
    patients, visits, events = tables.patients, tables.visits, tables.events
    assert tuple(patients.columns) == PATIENTS.column_names
    assert tuple(visits.columns) == VISITS.column_names
    assert tuple(events.columns) == EVENTS.column_names
    assert len(patients) >= 1
    assert patients["patient_id"].notna().all()
    assert patients["patient_id"].is_unique
    assert patients["jaki_drug"].isin(JAKI_DRUGS).all()
    start = as_days(patients["jaki_start"])
    has_stop = patients["jaki_stop"].notna().to_numpy()
    has_end = patients["followup_end"].notna().to_numpy()
    assert (has_stop | has_end).all(), "followup_end is required when jaki_stop is empty"
    stop = as_days(patients["jaki_stop"][has_stop])
    assert (stop >= start[has_stop]).all()
    end = as_days(patients["followup_end"][has_end])
    assert (end >= start[has_end]).all()
    assert patients["sex"].dropna().isin(SEXES).all()
    assert patients["ssc_subset"].dropna().isin(SSC_SUBSETS).all()
    assert patients["birth_year"].dropna().between(1900, 2100).all()

    known = set(patients["patient_id"])
    assert set(visits["patient_id"]) <= known
    assert set(events["patient_id"]) <= known
    assert visits["visit_date"].notna().all()
    as_days(visits["visit_date"])
    assert not visits.duplicated(["patient_id", "visit_date"]).any()
    for name, measure in MEASURES.items():
        values = visits[name].dropna().astype(float).to_numpy()
        assert ((values >= measure.low) & (values <= measure.high)).all(), name
        if measure.integer:
            assert (values == np.round(values)).all(), name
        if on_grid:
            units = values * measure.units_per_value
            assert np.allclose(units, np.round(units), rtol=0, atol=1e-9), name
    assert visits["calcinosis"].dropna().isin([0, 1]).all()
    assert visits["calcinosis_course"].dropna().isin(CALCINOSIS_COURSES).all()
    assert events["event_type"].isin(EVENT_TYPES).all()
    as_days(events["event_date"])


def offsets_from_start(tables: CohortTables) -> tuple[pd.DataFrame, np.ndarray]:
    """The visits joined with their patient, and each visit's day offset from jaki_start."""
    joined = tables.visits.merge(tables.patients, on="patient_id", validate="many_to_one")
    return joined, as_days(joined["visit_date"]) - as_days(joined["jaki_start"])


# --- generation ------------------------------------------------------------------------


def test_same_seed_gives_the_same_cohort_and_another_seed_another() -> None:
    first = generate_cohort(120, seed=11)
    again = generate_cohort(120, seed=11)
    other = generate_cohort(120, seed=12)
    for name in ("patients", "visits", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.patients.equals(other.patients)
    assert not first.visits.equals(other.visits)


@pytest.mark.parametrize("n_patients", [1, 2, 7, 165, 1500])
def test_generated_cohort_is_valid(n_patients: int) -> None:
    tables = generate_cohort(n_patients, seed=n_patients)
    assert len(tables.patients) == n_patients
    assert_valid_centre(tables)


@settings(max_examples=40, deadline=None)
@given(
    n_patients=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
    visits_per_patient=st.floats(1.0, 15.0),
    equidistant=st.booleans(),
    edges=st.booleans(),
)
def test_any_cohort_with_any_knobs_is_valid(
    n_patients: int, seed: int, visits_per_patient: float, equidistant: bool, edges: bool
) -> None:
    tables = generate_cohort(
        n_patients,
        seed,
        visits_per_patient=visits_per_patient,
        equidistant_visits=equidistant,
        window_edge_visits=edges,
    )
    assert_valid_centre(tables)


@pytest.mark.parametrize("visits_per_patient", [1.5, 4.0, 8.0, 12.0])
def test_mean_number_of_visits_is_what_was_asked(visits_per_patient: float) -> None:
    tables = generate_cohort(20_000, seed=1, visits_per_patient=visits_per_patient)
    mean = len(tables.visits) / len(tables.patients)
    assert abs(mean - visits_per_patient) <= 0.03 * visits_per_patient + 0.05


def test_cohort_looks_like_a_retrospective_ssc_jaki_cohort() -> None:
    tables = generate_cohort(4000, seed=3)
    patients, visits, events = tables.patients, tables.visits, tables.events
    stopped = patients["jaki_stop"].notna().mean()
    assert 0.33 <= stopped <= 0.45
    assert 0.80 <= (patients["sex"] == "F").mean() <= 0.90
    assert set(patients["ssc_subset"].dropna()) == {"lcSSc", "dcSSc", "other"}
    assert set(patients["jaki_drug"]) == set(JAKI_DRUGS)
    start = as_days(patients["jaki_start"])
    end = np.where(
        patients["jaki_stop"].notna(),
        as_days(patients["jaki_stop"].fillna("1970-01-01")),
        as_days(patients["followup_end"].fillna("1970-01-01")),
    )
    assert 14 <= np.median((end - start) / DAYS_PER_MONTH) <= 20
    assert 7.2 <= len(visits) / len(patients) <= 8.4

    joined, offset = offsets_from_start(tables)
    in_baseline = (offset >= -BASELINE_DAYS_BEFORE) & (offset <= BASELINE_DAYS_AFTER)
    with_baseline = joined.loc[in_baseline, "patient_id"].nunique() / len(patients)
    assert 0.85 <= with_baseline <= 0.95, "most but not all patients have a baseline visit"
    assert (in_baseline & (offset < -30)).any() and (in_baseline & (offset > 0)).any()
    # Visits cluster around 12 months, and some fall just outside its ±2-month window.
    window = 2 * DAYS_PER_MONTH
    near_12 = np.abs(offset - 12 * DAYS_PER_MONTH)
    assert (near_12 <= 30).sum() > 2 * ((near_12 > 30) & (near_12 <= 60)).sum()
    assert ((near_12 > window) & (near_12 <= window + 40)).any()
    stop = as_days(joined["jaki_stop"].fillna("2999-01-01"))
    assert (as_days(joined["visit_date"]) > stop).any(), "some visits after jaki_stop"
    # Measures are often missing; integer measures tie often.
    assert 0.3 <= visits["fvc_pct"].isna().mean() <= 0.6
    assert visits["mrss"].dropna().value_counts().max() > 100
    assert set(visits["calcinosis_course"].dropna()) == set(CALCINOSIS_COURSES)
    assert (visits["du_count"].dropna() > 0).any()
    # Every event type occurs, infections most often, some outside the treatment period.
    counts = events["event_type"].value_counts()
    assert set(counts.index) == set(EVENT_TYPES)
    assert counts.idxmax() == "infection"
    event_joined = events.merge(patients, on="patient_id")
    event_offset = as_days(event_joined["event_date"]) - as_days(event_joined["jaki_start"])
    assert (event_offset < 0).any()


def test_about_a_third_on_glucocorticoids_at_baseline_with_the_dose_falling() -> None:
    tables = generate_cohort(3000, seed=5)
    data_cells = derive_cohort(*_typed(tables), Plan())
    on_gc = data_cells.on_gc_at_baseline.mean()
    assert 0.22 <= on_gc <= 0.38
    change = data_cells.cells[("gc_dose_mg", 12)].change_units
    assert change.mean() < 0


def _typed(tables: CohortTables) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The tables as the node's reader types them (dates as datetimes)."""
    patients = tables.patients.copy()
    for column in ("jaki_start", "jaki_stop", "followup_end"):
        patients[column] = pd.to_datetime(patients[column])
    visits = tables.visits.copy()
    visits["visit_date"] = pd.to_datetime(visits["visit_date"])
    for column in ("mrss", "tjc", "sjc", "du_count", "calcinosis"):
        visits[column] = visits[column].astype("float64")
    events = tables.events.copy()
    events["event_date"] = pd.to_datetime(events["event_date"])
    return patients, visits, events


def test_values_stay_on_the_grid_unless_asked_off_it() -> None:
    tables = generate_cohort(400, seed=8, off_grid_fraction=0.2)
    assert_valid_centre(tables, on_grid=False)
    for name, measure in MEASURES.items():
        values = tables.visits[name].dropna().to_numpy(dtype=float)
        if name == "gc_dose_mg":
            values = values[values > 0]  # only doses > 0 move off the grid
        units = values * measure.units_per_value
        off = ~np.isclose(units, np.round(units), rtol=0, atol=1e-9)
        if name in ("fvc_pct", "dlco_pct", "gc_dose_mg"):
            assert 0.1 <= off.mean() <= 0.3, name
        else:
            assert not off.any(), name
    # Exact half-way cases (80.35) are among them, to exercise half-away-from-zero.
    fvc_units = tables.visits["fvc_pct"].dropna().to_numpy() * 100
    assert (np.round(fvc_units) % 10 == 5).any()
    # A glucocorticoid dose of 0 stays 0: it decides who counts for gc_dose_mg.
    plain = generate_cohort(400, seed=8)
    zero = plain.visits["gc_dose_mg"] == 0
    assert (tables.visits.loc[zero, "gc_dose_mg"] == 0).all()


def test_equidistant_visits_make_the_tie_rule_decide() -> None:
    tables = generate_cohort(200, seed=21, equidistant_visits=True)
    assert_valid_centre(tables)
    joined, offset = offsets_from_start(tables)
    joined = joined.assign(offset=offset)
    baseline_ties = 0
    for _, visits in joined[joined["fvc_pct"].notna()].groupby("patient_id"):
        in_window = visits[(visits.offset >= -BASELINE_DAYS_BEFORE) & (visits.offset <= 14)]
        distance = in_window.offset.abs()
        closest = in_window[distance == distance.min()]
        baseline_ties += len(closest) == 2 and closest.offset.sum() == 0
    assert baseline_ties == 200, "every patient has a decisive equidistant baseline pair"
    # Around 24 months (730.5 days) the pair is 730 − j and 731 + j, both on treatment.
    near_24 = joined[np.abs(joined.offset - 730.5) <= 60.875]
    pairs = near_24.groupby("patient_id").offset.agg(lambda o: (o.min() + o.max()) == 1461)
    assert pairs.sum() >= 20


def test_window_edge_visits_land_on_the_boundaries() -> None:
    tables = generate_cohort(300, seed=4, window_edge_visits=True)
    assert_valid_centre(tables)
    _, offset = offsets_from_start(tables)
    # Baseline window [−90, +14]; 12 months: days 305..426 in; 24 months: 670..791 in.
    edges = {-91, -90, 14, 15, 304, 305, 426, 427, 669, 670, 791, 792}
    assert edges <= set(offset.tolist())


@pytest.mark.parametrize(
    "arguments",
    [
        {"n_patients": 0, "seed": 1},
        {"n_patients": 5, "seed": 1, "visits_per_patient": 0.5},
        {"n_patients": 5, "seed": 1, "off_grid_fraction": 1.5},
        {"n_patients": 5, "seed": 1, "id_prefix": "a,b"},
    ],
)
def test_bad_arguments_are_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        generate_cohort(**arguments)


# --- splitting -------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_patients=st.integers(1, 60), data=st.data())
def test_split_keeps_every_patient_with_all_rows_exactly_once(
    n_patients: int, data: st.DataObject
) -> None:
    n_centres = data.draw(st.integers(1, min(n_patients, 12)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    cohort = generate_cohort(n_patients, seed)
    centres = split_into_centres(cohort, n_centres, seed)
    assert len(centres) == n_centres
    assert all(len(c.patients) >= 1 for c in centres)
    for centre in centres:
        assert_valid_centre(centre)
    for name in ("patients", "visits", "events"):
        stacked = pd.concat([getattr(c, name) for c in centres], ignore_index=True)
        original = getattr(cohort, name)
        key = list(original.columns)
        pd.testing.assert_frame_equal(
            stacked.sort_values(key, ignore_index=True),
            original.sort_values(key, ignore_index=True),
        )


def test_split_is_random_but_reproducible_and_sizes_can_be_fixed() -> None:
    cohort = generate_cohort(100, seed=2)
    first = split_into_centres(cohort, 4, seed=9)
    again = split_into_centres(cohort, 4, seed=9)
    other = split_into_centres(cohort, 4, seed=10)
    assert [list(c.patients.patient_id) for c in first] == [
        list(c.patients.patient_id) for c in again
    ]
    assert [list(c.patients.patient_id) for c in first] != [
        list(c.patients.patient_id) for c in other
    ]
    fixed = split_into_centres(cohort, 3, seed=1, sizes=[50, 30, 20])
    assert [len(c.patients) for c in fixed] == [50, 30, 20]
    with pytest.raises(ValueError):
        split_into_centres(cohort, 3, seed=1, sizes=[50, 30, 19])
    with pytest.raises(ValueError):
        split_into_centres(generate_cohort(2, seed=1), 3, seed=1)


# --- writing and reading back ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_written_folder_passes_the_node_reader_with_the_same_values(
    tmp_path: Path, fmt: str
) -> None:
    tables = generate_cohort(
        60, seed=6, equidistant_visits=True, window_edge_visits=True, off_grid_fraction=0.1
    )
    write_centre(tables, tmp_path, fmt=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"events.{fmt}",
        f"patients.{fmt}",
        f"visits.{fmt}",
    ]
    data = read_centre(tmp_path)
    assert list(data.patients["patient_id"]) == list(tables.patients["patient_id"])
    assert len(data.visits) == len(tables.visits)
    assert len(data.events) == len(tables.events)
    read_visits = data.visits.sort_values(["patient_id", "visit_date"], ignore_index=True)
    written = tables.visits.sort_values(["patient_id", "visit_date"], ignore_index=True)
    for name in MEASURES:
        np.testing.assert_array_equal(
            read_visits[name].to_numpy(dtype=float, na_value=np.nan),
            written[name].to_numpy(dtype=float, na_value=np.nan),
        )
    assert data.off_grid["fvc_pct"] > 0 and data.off_grid["mrss"] == 0
    start = data.patients["jaki_start"].dt.strftime("%Y-%m-%d")
    assert list(start) == list(tables.patients["jaki_start"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_patients=st.integers(1, 150),
    seed=st.integers(0, 2**32 - 1),
    off_grid=st.sampled_from([0.0, 0.05, 1.0]),
    equidistant=st.booleans(),
    edges=st.booleans(),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_any_generated_folder_passes_the_node_reader(
    tmp_path_factory: pytest.TempPathFactory,
    n_patients: int,
    seed: int,
    off_grid: float,
    equidistant: bool,
    edges: bool,
    fmt: str,
) -> None:
    tables = generate_cohort(
        n_patients,
        seed,
        off_grid_fraction=off_grid,
        equidistant_visits=equidistant,
        window_edge_visits=edges,
    )
    folder = tmp_path_factory.mktemp("centre")
    write_centre(tables, folder, fmt=fmt)
    data = read_centre(folder)  # raises CentreDataError listing any problem
    assert len(data.patients) == n_patients
    assert len(data.visits) == len(tables.visits)
    if off_grid == 0:
        assert sum(data.off_grid.values()) == 0


def test_xlsx_has_one_workbook_per_table_with_its_sheet_named_like_the_file(
    tmp_path: Path,
) -> None:
    write_centre(generate_cohort(5, seed=1), tmp_path, fmt="xlsx")
    for table in ("patients", "visits", "events"):
        workbook = openpyxl.load_workbook(tmp_path / f"{table}.xlsx", read_only=True)
        assert workbook.sheetnames == [table]


def test_csv_is_plain_utf8_with_empty_cells_for_missing_values(tmp_path: Path) -> None:
    tables = generate_cohort(30, seed=2)
    write_centre(tables, tmp_path)
    lines = (tmp_path / "visits.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(VISITS.column_names)
    assert len(lines) == len(tables.visits) + 1
    assert '"' not in "".join(lines) and "nan" not in "".join(lines).lower()
    assert any(",," in line for line in lines[1:])


def test_rewriting_in_another_format_leaves_each_table_once(tmp_path: Path) -> None:
    tables = generate_cohort(10, seed=3)
    write_centre(tables, tmp_path, fmt="xlsx")
    (tmp_path / "notes.txt").write_text("kept")
    write_centre(tables, tmp_path, fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.csv",
        "notes.txt",
        "patients.csv",
        "visits.csv",
    ]
    assert len(read_centre(tmp_path).patients) == 10


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        write_centre(generate_cohort(2, seed=1), tmp_path, fmt="json")


# --- the bundled demo --------------------------------------------------------------------


def test_bundled_demo_is_exactly_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_demo_centres(tmp_path)
    bundled = bundled_demo_folder()
    assert [p.name for p in written] == ["centre_a", "centre_b", "centre_c", "centre_d"]
    for folder in written:
        for file in sorted(folder.iterdir()):
            assert file.read_bytes() == (bundled / folder.name / file.name).read_bytes(), file
    total = sum(p.stat().st_size for p in bundled.rglob("*") if p.is_file())
    assert total < 1_000_000
    assert "synthetic" in (bundled / "README.md").read_text(encoding="utf-8").lower()


def test_bundled_demo_centres_pool_like_the_reference_study() -> None:
    plan = Plan()
    folders = [bundled_demo_folder() / name for name, *_ in DEMO_CENTRES]
    centres = [read_centre(folder) for folder in folders]
    assert [len(c.patients) for c in centres] == [size for _, size, *_ in DEMO_CENTRES]
    derived = [derive_cohort(c.patients, c.visits, c.events, plan) for c in centres]

    def pooled(name: str, months: int) -> np.ndarray:
        units = MEASURES[name].units_per_value
        return np.concatenate([d.cells[(name, months)].change_units for d in derived]) / units

    # Minimum cell 5: nothing suppressed at 12 months, and at most a few cells at 24.
    assert all(len(pooled(name, 12)) >= plan.min_cell for name in plan.outcomes)
    assert sum(len(pooled(name, 24)) >= plan.min_cell for name in plan.outcomes) >= 5
    followup_months = np.concatenate([d.followup_days for d in derived]) / DAYS_PER_MONTH
    assert 13 <= np.median(followup_months) <= 21
    assert 0 < pooled("fvc_pct", 12).mean() < 5
    assert -5 < pooled("dlco_pct", 12).mean() < 5
    assert -3.5 <= pooled("mrss", 12).mean() <= -1.5
    assert pooled("tjc", 12).mean() < -1.5 and pooled("sjc", 12).mean() < -0.5
    assert pooled("gc_dose_mg", 12).mean() < 0
    calcinosis = sum(int(d.calcinosis_baseline.sum()) for d in derived)
    improved = sum(int(d.calcinosis_improved.sum()) for d in derived)
    assert calcinosis >= 10 and 0 < improved < calcinosis
    assert sum(int(d.developed_du.sum()) for d in derived) >= 10
    on_treatment = {
        t: sum(int(d.events_on_treatment[t].sum()) for d in derived) for t in EVENT_TYPES
    }
    assert on_treatment["infection"] > 0 and on_treatment["herpes_zoster"] > 0
    stacked_events = pd.concat([c.events for c in centres])
    assert set(stacked_events["event_type"]) == set(EVENT_TYPES)


# --- the command -------------------------------------------------------------------------


def test_synthesize_writes_valid_centre_folders(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cohort"
    code = coordinator_main(
        ["synthesize", str(out), "--centres", "3", "--patients", "40", "--seed", "7"]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["centre_1", "centre_2", "centre_3"]
    centres = [read_centre(out / f"centre_{i}") for i in (1, 2, 3)]
    assert sum(len(c.patients) for c in centres) == 40
    assert "invented" in capsys.readouterr().out
    # A second run refuses to overwrite, unless asked; a new format replaces the old files.
    assert coordinator_main(["synthesize", str(out), "--centres", "3", "--patients", "40"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    code = coordinator_main(
        [
            "synthesize",
            str(out),
            "--centres",
            "3",
            "--patients",
            "40",
            "--format",
            "parquet",
            "--overwrite",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in (out / "centre_2").iterdir()) == [
        "events.parquet",
        "patients.parquet",
        "visits.parquet",
    ]
    assert sum(len(read_centre(out / f"centre_{i}").patients) for i in (1, 2, 3)) == 40


def test_synthesize_reports_an_unwritable_folder_without_a_traceback(
    tmp_path: Path, capsys
) -> None:
    blocker = tmp_path / "centre_1"
    blocker.write_text("a file where a folder should go")
    assert coordinator_main(["synthesize", str(tmp_path), "--patients", "8"]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_synthesize_refuses_fewer_patients_than_centres(tmp_path: Path, capsys) -> None:
    assert coordinator_main(["synthesize", str(tmp_path), "--centres", "5", "--patients", "3"]) == 1
    assert "every centre needs one patient" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- the benchmark's input ---------------------------------------------------------------


@pytest.mark.slow
def test_one_million_visits_generate_and_write(tmp_path: Path) -> None:
    """The benchmark's input (bench/bench_node.py times it; docs/benchmarks.md)."""
    tables = generate_cohort(100_000, seed=2026, visits_per_patient=10.0)
    write_centre(tables, tmp_path)
    assert 980_000 <= len(tables.visits) <= 1_020_000
    assert (tmp_path / "visits.csv").stat().st_size > 20_000_000

"""Tests of sscjak.node.data.centre_reader: every input rule of docs/input-files.md.

Each rule in CSV, xlsx and parquet."""

from __future__ import annotations

import datetime as dt
import math
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscjak.node.data.centre_reader import (
    MAX_TREATMENT_DAYS,
    CentreData,
    CentreDataError,
    Problem,
    read_centre,
)
from sscjak.node.data.problems import PROBLEMS_LISTED_PER_RULE
from sscjak.shared.data_contract import EVENTS, MEASURES, PATIENTS, VISITS

PATIENT_ROWS = [
    {
        "patient_id": "A01",
        "jaki_drug": "tofacitinib",
        "jaki_start": "2020-01-10",
        "jaki_stop": "",
        "followup_end": "2021-06-01",
        "sex": "F",
        "birth_year": "1960",
        "ssc_subset": "dcSSc",
    },
    {
        "patient_id": "A02",
        "jaki_drug": "baricitinib",
        "jaki_start": "2019-05-01",
        "jaki_stop": "2020-05-01",
        "followup_end": "",
        "sex": "M",
        "birth_year": "",
        "ssc_subset": "lcSSc",
    },
]
VISIT_ROWS = [
    {
        "patient_id": "A01",
        "visit_date": "2020-01-05",
        "fvc_pct": "80.3",
        "dlco_pct": "61.2",
        "mrss": "12",
        "tjc": "3",
        "sjc": "1",
        "du_count": "0",
        "calcinosis": "1",
        "calcinosis_course": "",
        "gc_dose_mg": "5",
    },
    {
        "patient_id": "A01",
        "visit_date": "2021-01-12",
        "fvc_pct": "82.1",
        "dlco_pct": "",
        "mrss": "10",
        "tjc": "1",
        "sjc": "0",
        "du_count": "2",
        "calcinosis": "1",
        "calcinosis_course": "improved",
        "gc_dose_mg": "2.5",
    },
    {
        "patient_id": "A02",
        "visit_date": "2019-04-20",
        "fvc_pct": "70",
        "dlco_pct": "50",
        "mrss": "20",
        "tjc": "",
        "sjc": "",
        "du_count": "",
        "calcinosis": "0",
        "calcinosis_course": "",
        "gc_dose_mg": "0",
    },
]
EVENT_ROWS = [
    {"patient_id": "A01", "event_date": "2020-06-01", "event_type": "herpes_zoster"},
    {"patient_id": "A02", "event_date": "2019-12-24", "event_type": "infection"},
]


def csv_text(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    """Plain CSV text (no quoting needed for the values used here)."""
    columns = columns or list(rows[0])
    lines = [",".join(columns)] + [",".join(row.get(c, "") for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write_folder(
    folder: Path,
    patients: list[dict[str, str]] | str | None = None,
    visits: list[dict[str, str]] | str | None = None,
    events: list[dict[str, str]] | str | None = None,
) -> Path:
    """A centre folder of CSV files: the valid rows above unless replaced (a str is raw text)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "patients": PATIENT_ROWS if patients is None else patients,
        "visits": VISIT_ROWS if visits is None else visits,
        "events": EVENT_ROWS if events is None else events,
    }
    for name, content in tables.items():
        text = content if isinstance(content, str) else csv_text(content)
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def changed(rows: list[dict[str, str]], index: int, **values: str) -> list[dict[str, str]]:
    """A copy of ``rows`` with row ``index`` updated."""
    copy = [dict(row) for row in rows]
    copy[index].update(values)
    return copy


def problems_of(folder: Path) -> list[Problem]:
    with pytest.raises(CentreDataError) as raised:
        read_centre(folder)
    return raised.value.problems


def only_problem(folder: Path) -> Problem:
    problems = problems_of(folder)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# --- a valid folder -----------------------------------------------------------------------


def test_valid_csv_folder_gives_typed_tables(tmp_path: Path) -> None:
    centre = read_centre(write_folder(tmp_path))
    assert isinstance(centre, CentreData)
    assert centre.files == {
        "patients": "patients.csv",
        "visits": "visits.csv",
        "events": "events.csv",
    }
    patients = centre.patients
    assert list(patients.columns) == list(PATIENTS.column_names)
    assert patients["patient_id"].tolist() == ["A01", "A02"]
    for column in ("jaki_start", "jaki_stop", "followup_end"):
        assert patients[column].dtype == "datetime64[ns]"
    assert patients["jaki_start"].iloc[0] == pd.Timestamp("2020-01-10")
    assert pd.isna(patients["jaki_stop"].iloc[0])
    assert patients["birth_year"].dtype == "Int64"
    assert patients["birth_year"].iloc[0] == 1960
    assert patients["birth_year"].iloc[1] is pd.NA
    visits = centre.visits
    assert list(visits.columns) == list(VISITS.column_names)
    for name in (*MEASURES, "calcinosis"):
        assert visits[name].dtype == np.float64
    assert visits["visit_date"].dtype == "datetime64[ns]"
    assert visits["fvc_pct"].tolist()[:2] == [80.3, 82.1]
    assert math.isnan(visits["dlco_pct"].iloc[1])
    assert visits["calcinosis_course"].iloc[1] == "improved"
    assert visits["calcinosis_course"].iloc[0] is pd.NA
    events = centre.events
    assert list(events.columns) == list(EVENTS.column_names)
    assert events["event_type"].tolist() == ["herpes_zoster", "infection"]
    assert centre.off_grid == dict.fromkeys(MEASURES, 0)


def test_events_file_is_optional_and_absent_gives_an_empty_frame(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").unlink()
    centre = read_centre(folder)
    assert "events" not in centre.files
    assert len(centre.events) == 0
    assert list(centre.events.columns) == ["patient_id", "event_date", "event_type"]
    assert centre.events["event_date"].dtype == "datetime64[ns]"


def test_missing_required_files_are_file_level_problems(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    problems = problems_of(tmp_path)
    assert {p.file for p in problems} == {"patients.csv", "visits.csv"}
    assert all(p.row is None and p.column is None for p in problems)
    assert all("required file missing" in p.message for p in problems)


def test_folder_that_does_not_exist_or_is_a_file(tmp_path: Path) -> None:
    assert "no such folder" in only_problem(tmp_path / "nowhere").message
    a_file = tmp_path / "file.csv"
    a_file.write_text("x\n")
    assert "not a folder" in only_problem(a_file).message


def test_unreadable_table_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "c")
    (folder / "events.csv").unlink()
    (folder / "events.csv").mkdir()  # a folder where a file is expected: reading fails
    problem = only_problem(folder)
    assert problem.file == "events.csv"
    assert "cannot be read" in problem.message


def test_header_only_files_are_valid_and_empty(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path,
        visits=",".join(VISITS.column_names) + "\n",
        events=",".join(EVENTS.column_names) + "\n",
    )
    centre = read_centre(folder)
    assert len(centre.visits) == 0
    assert len(centre.events) == 0
    assert len(centre.patients) == 2


# --- CSV form -----------------------------------------------------------------------------


def test_bom_crlf_and_quoted_fields_are_fine(tmp_path: Path) -> None:
    plain = read_centre(write_folder(tmp_path / "plain"))
    columns = [*PATIENTS.column_names, "comment"]
    rows = [dict(row, comment='said "fine", then left') for row in PATIENT_ROWS]
    lines = [",".join(f'"{c}"' for c in columns)]
    for row in rows:
        cells = [row[c].replace('"', '""') for c in columns]
        lines.append(",".join(f'"{cell}"' for cell in cells))
    text = "\r\n".join(lines) + "\r\n"
    folder = write_folder(tmp_path / "fancy")
    (folder / "patients.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    fancy = read_centre(folder)
    pd.testing.assert_frame_equal(fancy.patients, plain.patients)
    assert "comment" not in fancy.patients.columns


def test_semicolon_delimited_file_is_an_error_that_says_so(tmp_path: Path) -> None:
    text = csv_text(PATIENT_ROWS).replace(",", ";")
    problem = only_problem(write_folder(tmp_path, patients=text))
    assert (problem.file, problem.row) == ("patients.csv", 1)
    assert "semicolons" in problem.message and "comma" in problem.message


def test_tab_delimited_file_is_an_error_that_says_so(tmp_path: Path) -> None:
    text = csv_text(EVENT_ROWS).replace(",", "\t")
    problem = only_problem(write_folder(tmp_path, events=text))
    assert "tabs" in problem.message


def test_record_with_too_few_or_too_many_fields_is_located(tmp_path: Path) -> None:
    text = csv_text(VISIT_ROWS)
    lines = text.splitlines()
    lines[2] = lines[2].rsplit(",", 3)[0]  # truncated: 3 fields short
    lines[3] = lines[3] + ",extra"
    problems = problems_of(write_folder(tmp_path, visits="\n".join(lines) + "\n"))
    assert [(p.file, p.row, p.message) for p in problems] == [
        ("visits.csv", 3, "expected 11 fields, found 8"),
        ("visits.csv", 4, "expected 11 fields, found 12"),
    ]


def test_row_numbers_count_records_across_blank_lines_and_multiline_fields(
    tmp_path: Path,
) -> None:
    columns = [*EVENTS.column_names, "note"]
    text = (
        ",".join(columns)
        + "\n"
        + 'A01,2020-06-01,vte,"two\nlines"\n'  # row 2, spans two lines
        + "\n"  # row 3: an empty line, skipped
        + "A02,2020-13-01,vte,\n"  # row 4: bad date
    )
    problem = only_problem(write_folder(tmp_path, events=text))
    assert (problem.row, problem.column) == (4, "event_date")


def test_empty_file_is_a_problem(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, events=""))
    assert problem.file == "events.csv"
    assert "empty" in problem.message


def test_header_without_line_end_is_a_valid_empty_table(tmp_path: Path) -> None:
    centre = read_centre(write_folder(tmp_path, events=",".join(EVENTS.column_names)))
    assert len(centre.events) == 0


def test_last_record_without_line_end_is_read(tmp_path: Path) -> None:
    centre = read_centre(write_folder(tmp_path, events=csv_text(EVENT_ROWS).rstrip("\n")))
    assert centre.events["event_type"].tolist() == ["herpes_zoster", "infection"]


def test_empty_header_line_is_a_problem(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, events="\n" + csv_text(EVENT_ROWS)))
    assert (problem.file, problem.row) == ("events.csv", 1)
    assert "header row (row 1) is empty" in problem.message


def test_file_not_in_utf8_names_the_row(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    text = csv_text(changed(PATIENT_ROWS, 1, patient_id="Müller"))
    (folder / "patients.csv").write_bytes(text.encode("latin-1"))
    problem = only_problem(folder)
    assert (problem.file, problem.row) == ("patients.csv", 3)
    assert "not UTF-8" in problem.message


def test_utf16_file_is_a_problem(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "patients.csv").write_bytes(csv_text(PATIENT_ROWS).encode("utf-16"))
    assert "UTF-16" in only_problem(folder).message


def test_binary_file_named_csv_is_a_problem(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "patients.csv").write_bytes(bytes(range(256)) * 4)
    problem = only_problem(folder)
    assert problem.file == "patients.csv"
    assert "not a CSV text file" in problem.message


def test_unclosed_quote_is_reported(tmp_path: Path) -> None:
    text = csv_text(EVENT_ROWS).replace("A02", '"A02', 1)
    problem = only_problem(write_folder(tmp_path, events=text))
    assert problem.row == 3
    assert "quoted field is not closed" in problem.message


def test_unclosed_quote_in_the_header_is_reported(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, events='"' + csv_text(EVENT_ROWS)))
    assert (problem.file, problem.row) == ("events.csv", 1)
    assert "quoted column name is not closed" in problem.message


# --- columns ------------------------------------------------------------------------------


def test_missing_required_column_is_an_error(tmp_path: Path) -> None:
    columns = [c for c in PATIENTS.column_names if c != "jaki_start"]
    problem = only_problem(write_folder(tmp_path, patients=csv_text(PATIENT_ROWS, columns)))
    assert (problem.file, problem.row, problem.column) == ("patients.csv", 1, "jaki_start")
    assert "required column" in problem.message


def test_column_names_must_be_lower_case(tmp_path: Path) -> None:
    text = csv_text(VISIT_ROWS).replace("fvc_pct", "FVC_pct", 1)
    problem = only_problem(write_folder(tmp_path, visits=text))
    assert problem.column == "FVC_pct"
    assert "'fvc_pct'" in problem.message and "lower-case" in problem.message


def test_duplicated_column_is_an_error(tmp_path: Path) -> None:
    text = csv_text(EVENT_ROWS, [*EVENTS.column_names, "event_type"])
    problem = only_problem(write_folder(tmp_path, events=text))
    assert problem.column == "event_type"
    assert "more than once" in problem.message


def test_unknown_extra_columns_are_dropped_at_once(tmp_path: Path) -> None:
    rows = [dict(row, name="Jane Doe", mrn="not a number") for row in VISIT_ROWS]
    centre = read_centre(write_folder(tmp_path, visits=rows))
    assert list(centre.visits.columns) == list(VISITS.column_names)
    assert "Jane Doe" not in centre.visits.to_string()


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    columns = ["patient_id", "visit_date", "mrss"]
    centre = read_centre(write_folder(tmp_path, visits=csv_text(VISIT_ROWS, columns)))
    assert centre.visits["mrss"].tolist() == [12.0, 10.0, 20.0]
    assert centre.visits["fvc_pct"].isna().all()
    assert centre.visits["calcinosis_course"].isna().all()


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("80.3", 80.3), ("80", 80.0), ("8.03e1", 80.3)])
def test_number_notations_accepted(tmp_path: Path, text: str, value: float) -> None:
    centre = read_centre(write_folder(tmp_path, visits=changed(VISIT_ROWS, 0, fvc_pct=text)))
    assert centre.visits["fvc_pct"].iloc[0] == value


@pytest.mark.parametrize("text", ["NaN", "inf", "1,5", "80 %", "0x50", "1e400"])
def test_number_notations_rejected(tmp_path: Path, text: str) -> None:
    rows = changed(VISIT_ROWS, 0, fvc_pct=f'"{text}"' if "," in text else text)
    problem = only_problem(write_folder(tmp_path, visits=rows))
    assert (problem.file, problem.row, problem.column) == ("visits.csv", 2, "fvc_pct")
    fix = ": decimal comma — write 1.5" if text == "1,5" else ""
    assert problem.message == f"expected a number from 10 to 200, got {text!r}{fix}"


def test_empty_cell_is_missing(tmp_path: Path) -> None:
    centre = read_centre(write_folder(tmp_path, visits=changed(VISIT_ROWS, 0, mrss="")))
    assert math.isnan(centre.visits["mrss"].iloc[0])


def test_whitespace_around_values_is_stripped(tmp_path: Path) -> None:
    rows = changed(VISIT_ROWS, 0, patient_id=" A01 ", visit_date=" 2020-01-05", fvc_pct="80.3 ")
    rows = changed(rows, 1, calcinosis_course="  improved\t")
    centre = read_centre(write_folder(tmp_path, visits=rows))
    assert centre.visits["patient_id"].iloc[0] == "A01"
    assert centre.visits["fvc_pct"].iloc[0] == 80.3
    assert centre.visits["calcinosis_course"].iloc[1] == "improved"


@pytest.mark.parametrize(
    ("column", "text", "expected"),
    [
        ("fvc_pct", "250", "a number from 10 to 200"),
        ("dlco_pct", "4.9", "a number from 5 to 200"),
        ("mrss", "52", "a whole number from 0 to 51"),
        ("tjc", "-1", "a whole number from 0 to 28"),
        ("du_count", "21", "a whole number from 0 to 20"),
        ("gc_dose_mg", "100.25", "a number from 0 to 100"),
        ("calcinosis", "2", "0 or 1"),
    ],
)
def test_value_out_of_range_is_an_error(
    tmp_path: Path, column: str, text: str, expected: str
) -> None:
    problem = only_problem(write_folder(tmp_path, visits=changed(VISIT_ROWS, 1, **{column: text})))
    assert (problem.file, problem.row, problem.column) == ("visits.csv", 3, column)
    assert problem.message == f"expected {expected}, got {text!r}"


def test_non_integer_value_of_an_integer_measure_is_an_error(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, visits=changed(VISIT_ROWS, 0, mrss="3.5")))
    assert (problem.row, problem.column) == (2, "mrss")
    assert problem.message == "expected a whole number from 0 to 51, got '3.5'"
    centre = read_centre(write_folder(tmp_path / "b", visits=changed(VISIT_ROWS, 0, mrss="3.0")))
    assert centre.visits["mrss"].iloc[0] == 3.0


def test_non_integer_birth_year_is_an_error(tmp_path: Path) -> None:
    problem = only_problem(
        write_folder(tmp_path, patients=changed(PATIENT_ROWS, 0, birth_year="1960.5"))
    )
    assert (problem.row, problem.column) == (2, "birth_year")


def test_off_grid_value_is_counted_not_an_error_and_kept_raw(tmp_path: Path) -> None:
    rows = changed(VISIT_ROWS, 0, fvc_pct="80.35", gc_dose_mg="2.6")
    centre = read_centre(write_folder(tmp_path, visits=rows))
    assert centre.off_grid["fvc_pct"] == 1
    assert centre.off_grid["gc_dose_mg"] == 1
    assert centre.off_grid["dlco_pct"] == 0
    assert centre.visits["fvc_pct"].iloc[0] == 80.35
    assert centre.visits["gc_dose_mg"].iloc[0] == 2.6


@pytest.mark.parametrize("text", ["01/10/2020", "2020-1-10", "2020/01/10", "20200110", "tomorrow"])
def test_date_not_iso_is_an_error(tmp_path: Path, text: str) -> None:
    problem = only_problem(
        write_folder(tmp_path, patients=changed(PATIENT_ROWS, 0, jaki_start=text))
    )
    assert (problem.file, problem.row, problem.column) == ("patients.csv", 2, "jaki_start")
    assert problem.message == f"expected a date written YYYY-MM-DD, got {text!r}"


@pytest.mark.parametrize("text", ["2021-02-29", "2020-13-01", "1850-01-01", "0202-01-01"])
def test_date_that_is_no_calendar_day_in_range_is_an_error(tmp_path: Path, text: str) -> None:
    problem = only_problem(write_folder(tmp_path, events=changed(EVENT_ROWS, 1, event_date=text)))
    assert (problem.file, problem.row, problem.column) == ("events.csv", 3, "event_date")
    assert "calendar date from 1900-01-01 to 2100-12-31" in problem.message


@pytest.mark.parametrize(
    ("table", "column", "text"),
    [
        ("patients", "jaki_drug", "Tofacitinib"),
        ("patients", "jaki_drug", "tofa"),
        ("patients", "sex", "f"),
        ("patients", "ssc_subset", "diffuse"),
        ("visits", "calcinosis_course", "better"),
        ("events", "event_type", "zoster"),
    ],
)
def test_unknown_choice_is_an_error_case_sensitive(
    tmp_path: Path, table: str, column: str, text: str
) -> None:
    base = {"patients": PATIENT_ROWS, "visits": VISIT_ROWS, "events": EVENT_ROWS}[table]
    problem = only_problem(write_folder(tmp_path, **{table: changed(base, 0, **{column: text})}))
    assert (problem.file, problem.row, problem.column) == (f"{table}.csv", 2, column)
    assert problem.message.startswith("expected one of ")
    assert f"got {text!r}" in problem.message
    assert ("case must match" in problem.message) == (text in ("Tofacitinib", "f"))


def test_required_value_missing_is_an_error(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, events=changed(EVENT_ROWS, 0, event_type="")))
    assert (problem.row, problem.column) == (2, "event_type")
    assert "required" in problem.message


# --- rules across rows and tables ---------------------------------------------------------


def test_visit_and_event_of_unknown_patient_are_errors(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path,
        visits=changed(VISIT_ROWS, 2, patient_id="Z99"),
        events=changed(EVENT_ROWS, 0, patient_id="Z98"),
    )
    problems = problems_of(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("visits.csv", 4, "patient_id"),
        ("events.csv", 2, "patient_id"),
    ]
    assert all(p.message == "patient_id not found in patients.csv" for p in problems)


def test_duplicate_patient_id_is_an_error(tmp_path: Path) -> None:
    rows = [*PATIENT_ROWS, dict(PATIENT_ROWS[0])]
    problem = only_problem(write_folder(tmp_path, patients=rows))
    assert (problem.row, problem.column) == (4, "patient_id")
    assert "row 2" in problem.message


@pytest.mark.parametrize("column", ["jaki_stop", "followup_end"])
def test_end_before_jaki_start_is_an_error(tmp_path: Path, column: str) -> None:
    problem = only_problem(
        write_folder(tmp_path, patients=changed(PATIENT_ROWS, 1, **{column: "2019-04-30"}))
    )
    assert (problem.row, problem.column) == (3, column)
    assert "before jaki_start" in problem.message


def test_followup_end_required_when_jaki_stop_empty(tmp_path: Path) -> None:
    problem = only_problem(
        write_folder(tmp_path, patients=changed(PATIENT_ROWS, 0, followup_end=""))
    )
    assert (problem.row, problem.column) == (2, "followup_end")
    assert "required when jaki_stop is empty" in problem.message


def test_treatment_period_over_fifty_years_is_an_error(tmp_path: Path) -> None:
    start = pd.Timestamp("2000-01-01")
    longest = (start + pd.Timedelta(days=MAX_TREATMENT_DAYS)).strftime("%Y-%m-%d")
    too_long = (start + pd.Timedelta(days=MAX_TREATMENT_DAYS + 1)).strftime("%Y-%m-%d")
    rows = changed(PATIENT_ROWS, 0, jaki_start="2000-01-01", followup_end=longest)
    assert len(read_centre(write_folder(tmp_path / "ok", patients=rows)).patients) == 2
    rows = changed(PATIENT_ROWS, 1, jaki_start="2000-01-01", jaki_stop=too_long)
    problem = only_problem(write_folder(tmp_path / "bad", patients=rows))
    assert (problem.row, problem.column) == (3, "jaki_stop")
    assert f"{MAX_TREATMENT_DAYS + 1:,} days" in problem.message


def test_same_date_visits_with_different_values_are_an_error(tmp_path: Path) -> None:
    second = dict(VISIT_ROWS[0], fvc_pct="79.0", mrss="12")
    problems = problems_of(write_folder(tmp_path, visits=[*VISIT_ROWS, second]))
    assert [(p.row, p.column) for p in problems] == [(2, "fvc_pct"), (5, "fvc_pct")]
    assert all("row 2" in p.message and "same visit_date" in p.message for p in problems)


def test_same_date_visits_that_agree_are_merged_into_one(tmp_path: Path) -> None:
    first = changed(VISIT_ROWS, 0, dlco_pct="", tjc="")
    second = {"patient_id": "A01", "visit_date": "2020-01-05", "dlco_pct": "61.2", "mrss": "12"}
    centre = read_centre(write_folder(tmp_path, visits=[*first, second]))
    visits = centre.visits
    assert len(visits) == 3
    merged = visits.iloc[0]
    assert (merged["patient_id"], merged["visit_date"]) == ("A01", pd.Timestamp("2020-01-05"))
    assert (merged["fvc_pct"], merged["dlco_pct"], merged["mrss"]) == (80.3, 61.2, 12.0)
    assert math.isnan(merged["tjc"])


def test_visits_are_sorted_by_patient_and_date(tmp_path: Path) -> None:
    rows = [VISIT_ROWS[2], VISIT_ROWS[1], VISIT_ROWS[0]]
    visits = read_centre(write_folder(tmp_path, visits=rows)).visits
    keys = list(
        zip(visits["patient_id"], visits["visit_date"].dt.strftime("%Y-%m-%d"), strict=True)
    )
    assert keys == [("A01", "2020-01-05"), ("A01", "2021-01-12"), ("A02", "2019-04-20")]


# --- reporting ----------------------------------------------------------------------------


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    patients = changed(PATIENT_ROWS, 0, sex="X", jaki_start="2020/01/10", birth_year="old")
    visits = changed(VISIT_ROWS, 1, tjc="29")
    events = changed(EVENT_ROWS, 1, event_type="flu")
    problems = problems_of(write_folder(tmp_path, patients=patients, visits=visits, events=events))
    located = {(p.file, p.row, p.column) for p in problems}
    assert located == {
        ("patients.csv", 2, "sex"),
        ("patients.csv", 2, "jaki_start"),
        ("patients.csv", 2, "birth_year"),
        ("visits.csv", 3, "tjc"),
        ("events.csv", 3, "event_type"),
    }


def test_many_rows_with_one_problem_are_listed_briefly(tmp_path: Path) -> None:
    rows = [dict(VISIT_ROWS[0], visit_date=f"2020-02-{day:02d}", mrss="99") for day in range(1, 29)]
    rows += [
        dict(VISIT_ROWS[0], visit_date=f"2020-03-{day:02d}", mrss="99") for day in range(1, 31)
    ]
    with pytest.raises(CentreDataError) as raised:
        read_centre(write_folder(tmp_path, visits=rows))
    error = raised.value
    assert error.problem_count == 58
    assert len(error.problems) == PROBLEMS_LISTED_PER_RULE + 1
    assert [p.row for p in error.problems[:PROBLEMS_LISTED_PER_RULE]] == list(range(2, 22))
    summary = error.problems[-1]
    assert (summary.row, summary.column) == (None, "mrss")
    assert (
        summary.message == f"… and {58 - PROBLEMS_LISTED_PER_RULE} more rows with the same problem"
    )


def test_problem_text_names_file_row_and_column() -> None:
    assert str(Problem("visits.csv", 7, "fvc_pct", "expected x")) == (
        "visits.csv, row 7, column fvc_pct: expected x"
    )
    assert str(Problem("visits.csv", None, None, "empty")) == "visits.csv: empty"


def test_messages_never_echo_a_patient_id(tmp_path: Path) -> None:
    secret = "SECRET-7731"
    patients = [
        *changed(PATIENT_ROWS, 0, patient_id=secret),
        dict(PATIENT_ROWS[0], patient_id=secret),
    ]
    visits = changed(VISIT_ROWS, 0, patient_id=secret + "x", mrss="x")
    events = changed(EVENT_ROWS, 0, patient_id=secret + "y")
    with pytest.raises(CentreDataError) as raised:
        read_centre(write_folder(tmp_path, patients=patients, visits=visits, events=events))
    assert len(raised.value.problems) >= 4
    assert secret not in str(raised.value)


def test_long_cell_values_are_cut_in_messages(tmp_path: Path) -> None:
    problem = only_problem(write_folder(tmp_path, visits=changed(VISIT_ROWS, 0, fvc_pct="9" * 500)))
    assert len(problem.message) < 120


@pytest.mark.slow
def test_row_numbers_are_right_deep_in_a_large_file(tmp_path: Path) -> None:
    # several pyarrow blocks; each patient's visits on distinct past days after its birth
    early = pd.date_range("1901-01-01", periods=40_000, freq="D").strftime("%Y-%m-%d")
    late = pd.date_range("1961-01-01", periods=20_000, freq="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame(
        {
            "patient_id": ["A02"] * 40_000 + ["A01"] * 20_000,
            "visit_date": [*early, *late],
            "mrss": "5",
        }
    )
    frame.loc[45_000, "mrss"] = "77"
    text = frame.to_csv(index=False).splitlines()
    text[30_001] += ",surplus"  # record 30_002 of the file: one field too many
    problems = problems_of(write_folder(tmp_path, visits="\n".join(text) + "\n"))
    assert [(p.row, p.column) for p in problems] == [(30_002, None), (45_002, "mrss")]


@pytest.mark.slow
def test_million_row_visits_file_validates_in_bounded_memory(tmp_path: Path) -> None:
    """docs/input-files.md data at scale: 1,000,000 visits read in a child process under 2 GiB.

    Not a timing test: the measured time is in docs/benchmarks.md.
    """
    rng = np.random.default_rng(20261125)
    patients = 100_000
    ids = np.char.add("P", np.arange(patients).astype(str))
    starts = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 1500, patients), "D")
    pd.DataFrame(
        {
            "patient_id": ids,
            "jaki_drug": "tofacitinib",
            "jaki_start": starts.strftime("%Y-%m-%d"),
            "followup_end": (starts + pd.Timedelta(days=900)).strftime("%Y-%m-%d"),
        }
    ).to_csv(tmp_path / "patients.csv", index=False)
    rows = 1_000_000
    owner = np.repeat(np.arange(patients), rows // patients)
    dates = starts[owner] + pd.to_timedelta(np.tile(np.arange(10) * 60, patients), "D")
    pd.DataFrame(
        {
            "patient_id": ids[owner],
            "visit_date": dates.strftime("%Y-%m-%d"),
            "fvc_pct": np.round(rng.uniform(40, 120, rows), 1),
            "mrss": rng.integers(0, 40, rows),
            "gc_dose_mg": rng.integers(0, 40, rows) * 0.25,
        }
    ).to_csv(tmp_path / "visits.csv", index=False)
    script = (
        "import sys; from sscjak.node.data.centre_reader import read_centre; "
        "c = read_centre(sys.argv[1]); print(len(c.visits), len(c.patients))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout.split() == ["1000000", "100000"]
    peak_bytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    assert peak_bytes < 2 * 1024**3


# --- xlsx and parquet ---------------------------------------------------------------------


def _native(table: str, rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """Rows with dates as dates and numbers as numbers, as Excel or parquet hold them."""
    kinds = {
        c.name: c.kind for t in (PATIENTS, VISITS, EVENTS) if t.name == table for c in t.columns
    }
    native: list[dict[str, object]] = []
    for row in rows:
        converted: dict[str, object] = {}
        for name, text in row.items():
            if text == "":
                converted[name] = None
            elif kinds[name] == "date":
                converted[name] = dt.date.fromisoformat(text)
            elif kinds[name] in ("int", "number", "binary"):
                number = float(text)
                converted[name] = int(number) if number.is_integer() else number
            else:
                converted[name] = text
        native.append(converted)
    return native


def write_xlsx(path: Path, sheet: str, rows: list[dict[str, object]]) -> None:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    columns = list(rows[0])
    worksheet.append(columns)
    for row in rows:
        worksheet.append([row[c] for c in columns])
    workbook.save(path)


def test_xlsx_with_native_dates_and_numbers_reads_like_csv(tmp_path: Path) -> None:
    expected = read_centre(write_folder(tmp_path / "csv"))
    folder = tmp_path / "xlsx"
    folder.mkdir()
    for table, rows in (("patients", PATIENT_ROWS), ("visits", VISIT_ROWS), ("events", EVENT_ROWS)):
        write_xlsx(folder / f"{table}.xlsx", table, _native(table, rows))
    centre = read_centre(folder)
    assert centre.files["visits"] == "visits.xlsx"
    pd.testing.assert_frame_equal(centre.patients, expected.patients)
    pd.testing.assert_frame_equal(centre.visits, expected.visits)
    pd.testing.assert_frame_equal(centre.events, expected.events)


def test_xlsx_with_text_cells_reads_like_csv(tmp_path: Path) -> None:
    expected = read_centre(write_folder(tmp_path / "csv"))
    folder = write_folder(tmp_path / "xlsx")
    (folder / "visits.csv").unlink()
    write_xlsx(folder / "visits.xlsx", "visits", VISIT_ROWS)
    pd.testing.assert_frame_equal(read_centre(folder).visits, expected.visits)


def test_xlsx_problems_use_sheet_rows(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "patients.csv").unlink()
    rows = _native("patients", PATIENT_ROWS)
    rows[1]["jaki_start"] = dt.datetime(2019, 5, 1, 14, 30)  # a time of day: not a date
    rows[0]["birth_year"] = True
    write_xlsx(folder / "patients.xlsx", "patients", rows)
    problems = problems_of(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("patients.xlsx", 3, "jaki_start"),
        ("patients.xlsx", 2, "birth_year"),
    ]
    assert "'2019-05-01 14:30:00'" in problems[0].message


def test_xlsx_without_the_named_sheet_is_an_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").unlink()
    write_xlsx(folder / "events.xlsx", "Sheet1", _native("events", EVENT_ROWS))
    problem = only_problem(folder)
    assert problem.file == "events.xlsx"
    assert "no sheet named 'events'" in problem.message and "'Sheet1'" in problem.message


def test_damaged_xlsx_is_a_problem(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").unlink()
    (folder / "events.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    problem = only_problem(folder)
    assert problem.file == "events.xlsx"
    assert "cannot be read" in problem.message


def test_parquet_with_native_types_reads_like_csv(tmp_path: Path) -> None:
    expected = read_centre(write_folder(tmp_path / "csv"))
    folder = tmp_path / "parquet"
    folder.mkdir()
    patients = pd.DataFrame(_native("patients", PATIENT_ROWS))
    for column in ("jaki_start", "jaki_stop", "followup_end"):
        patients[column] = pd.to_datetime(patients[column])  # timestamps at midnight
    patients["birth_year"] = patients["birth_year"].astype("Int64")
    patients.to_parquet(folder / "patients.parquet")
    visits = pd.DataFrame(_native("visits", VISIT_ROWS))
    visits["visit_date"] = pd.to_datetime(visits["visit_date"]).dt.date  # date32
    for name in (*MEASURES, "calcinosis"):
        visits[name] = visits[name].astype("float64")  # NaN for missing
    visits["mrss"] = visits["mrss"].astype("int64")
    visits.to_parquet(folder / "visits.parquet")
    pd.DataFrame(_native("events", EVENT_ROWS)).to_parquet(folder / "events.parquet")
    centre = read_centre(folder)
    assert centre.files["patients"] == "patients.parquet"
    pd.testing.assert_frame_equal(centre.patients, expected.patients)
    pd.testing.assert_frame_equal(centre.visits, expected.visits)
    pd.testing.assert_frame_equal(centre.events, expected.events)


def test_parquet_problems_are_located_as_in_csv(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "visits.csv").unlink()
    visits = pd.DataFrame({"patient_id": ["A01", "A02"], "visit_date": ["2020-01-05", "x"]})
    visits["mrss"] = [3.5, np.inf]
    visits.to_parquet(folder / "visits.parquet")
    problems = problems_of(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("visits.parquet", 3, "visit_date"),
        ("visits.parquet", 2, "mrss"),
        ("visits.parquet", 3, "mrss"),
    ]


def test_parquet_timestamps_must_be_dates(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").unlink()
    events = pd.DataFrame(
        {
            "patient_id": ["A01", "A02", "A02"],
            "event_date": pd.to_datetime(
                ["2020-06-01 00:00", "2019-12-24 08:15", "2019-12-25 00:00"]
            ),
            "event_type": ["vte", "vte", "mace"],
        }
    )
    events["event_date"] = events["event_date"].dt.tz_localize("Europe/Zurich")
    events.to_parquet(folder / "events.parquet")
    problem = only_problem(folder)
    assert (problem.file, problem.row, problem.column) == ("events.parquet", 3, "event_date")
    assert "got '2019-12-24 08:15:00" in problem.message


def test_parquet_date_outside_the_span_is_located(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = write_folder(tmp_path)
    (folder / "events.csv").unlink()
    table = pa.table(
        {
            "patient_id": ["A01", "A02"],
            "event_date": pa.array([dt.date(2020, 6, 1), dt.date(1, 1, 1)], pa.date32()),
            "event_type": ["vte", "mace"],
        }
    )
    pq.write_table(table, folder / "events.parquet")
    problem = only_problem(folder)
    assert (problem.row, problem.column) == (3, "event_date")
    assert "got '0001-01-01'" in problem.message


def test_two_formats_of_one_table_is_an_error_naming_both(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    pd.DataFrame(EVENT_ROWS).to_parquet(folder / "events.parquet")
    problem = only_problem(folder)
    assert "events.csv" in problem.message and "events.parquet" in problem.message


def test_file_name_in_wrong_case_is_named(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").rename(folder / "Events.csv")
    problem = only_problem(folder)
    assert "'Events.csv'" in problem.message and "'events.csv'" in problem.message


def test_table_in_an_unread_format_is_named_not_ignored(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "events.csv").rename(folder / "events.xls")
    problem = only_problem(folder)
    assert "'events.xls'" in problem.message and "events.csv" in problem.message


@st.composite
def visit_tables(draw: st.DrawFn) -> pd.DataFrame:
    """Valid visits of patients A01/A02: grid values, some missing, distinct dates."""
    count = draw(st.integers(1, 12))
    days = draw(st.lists(st.integers(0, 3000), min_size=count, max_size=count, unique=True))

    def column(units: st.SearchStrategy[int], scale: float) -> list[float]:
        values = draw(st.lists(st.one_of(st.none(), units), min_size=count, max_size=count))
        return [np.nan if v is None else v / scale for v in values]

    return pd.DataFrame(
        {
            "patient_id": draw(
                st.lists(st.sampled_from(["A01", "A02"]), min_size=count, max_size=count)
            ),
            "visit_date": pd.Timestamp("2015-01-01") + pd.to_timedelta(days, "D"),
            "fvc_pct": column(st.integers(100, 2000), 10),
            "mrss": column(st.integers(0, 51), 1),
            "gc_dose_mg": column(st.integers(0, 400), 4),
        }
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(visits=visit_tables(), form=st.sampled_from(["csv", "xlsx", "parquet"]))
def test_values_read_back_exactly_in_every_format(
    tmp_path_factory: pytest.TempPathFactory, visits: pd.DataFrame, form: str
) -> None:
    folder = write_folder(tmp_path_factory.mktemp("roundtrip"))
    (folder / "visits.csv").unlink()
    if form == "csv":
        text = visits.assign(visit_date=visits["visit_date"].dt.strftime("%Y-%m-%d"))
        text.to_csv(folder / "visits.csv", index=False)
    elif form == "parquet":
        visits.to_parquet(folder / "visits.parquet")
    else:
        rows = visits.astype(object).where(visits.notna(), None)
        write_xlsx(folder / "visits.xlsx", "visits", rows.to_dict("records"))
    read = read_centre(folder).visits
    expected = visits.sort_values(["patient_id", "visit_date"], ignore_index=True)
    assert read["patient_id"].tolist() == expected["patient_id"].tolist()
    np.testing.assert_array_equal(read["visit_date"].to_numpy(), expected["visit_date"].to_numpy())
    for name in ("fvc_pct", "mrss", "gc_dose_mg"):
        np.testing.assert_array_equal(read[name].to_numpy(), expected[name].to_numpy())

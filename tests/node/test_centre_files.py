"""Tests of sscjak.node.data.table_files: locating table files, loading them as cell texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl

from sscjak.node.data.problems import PROBLEMS_LISTED_PER_RULE, ProblemList
from sscjak.node.data.table_files import (
    close_columns,
    find_table_files,
    identifying_kind,
    read_table_cells,
    same_column,
    table_file_label,
)
from sscjak.shared.data_contract import EVENTS, PATIENTS, VISITS


def test_add_rows_lists_a_few_and_counts_all() -> None:
    problems = ProblemList()
    mask = np.zeros(10_000, dtype=bool)
    mask[5:] = True
    rows = np.arange(2, 10_002)
    seen: list[int] = []

    def message(position: int) -> str:
        seen.append(position)
        return f"bad at {position}"

    problems.add_rows("visits.csv", "mrss", mask, rows, message)
    assert problems.count == 9_995
    assert len(problems.problems) == PROBLEMS_LISTED_PER_RULE + 1
    assert seen == list(range(5, 5 + PROBLEMS_LISTED_PER_RULE))
    assert problems.problems[0].row == 7
    assert str(problems.problems[-1]) == (
        f"visits.csv, column mrss: … and {9_995 - PROBLEMS_LISTED_PER_RULE:,} more rows "
        "with the same problem"
    )


def test_add_rows_with_nothing_flagged_adds_nothing() -> None:
    problems = ProblemList()
    problems.add_rows("x.csv", "c", np.zeros(3, dtype=bool), np.arange(2, 5), "bad")
    assert not problems
    assert problems.problems == []


def test_find_table_files_by_suffix(tmp_path: Path) -> None:
    for name in ("patients.csv", "visits.parquet", "events.xlsx", "notes.txt"):
        (tmp_path / name).write_text("")
    problems = ProblemList()
    found = find_table_files(tmp_path, problems)
    assert not problems
    assert {table: path.name for table, path in found.items()} == {
        "patients": "patients.csv",
        "visits": "visits.parquet",
        "events": "events.xlsx",
    }


def test_csv_cells_are_stripped_text_with_record_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_type , patient_id,event_date,extra\n"
        " vte ,A01,2020-01-01,x\n"
        ",,,\n"
        "mace,A02, 2020-02-02 ,y\n"
    )
    problems = ProblemList()
    cells = read_table_cells(path, EVENTS, problems)
    assert not problems
    assert cells is not None
    assert list(cells.cells.columns) == ["event_type", "patient_id", "event_date"]
    assert cells.cells["event_type"].tolist() == ["vte", "mace"]
    assert cells.cells["event_date"].tolist() == ["2020-01-01", "2020-02-02"]
    assert cells.row_numbers.tolist() == [2, 4]


def test_close_columns_suggest_what_an_export_likely_meant() -> None:
    assert close_columns("fvc", VISITS.column_names)[0] == "fvc_pct"
    assert close_columns("mRSS_total", VISITS.column_names)[0] == "mrss"
    assert "jaki_stop" in close_columns("jaki_end", PATIENTS.column_names)
    assert close_columns("subset", PATIENTS.column_names) == ["ssc_subset"]
    assert close_columns("centre", PATIENTS.column_names) == []
    assert same_column("Visit Date", VISITS.column_names) == "visit_date"
    assert same_column("FVC_PCT", VISITS.column_names) == "fvc_pct"


def test_identifying_column_names_are_recognised_not_clinical_ones() -> None:
    assert identifying_kind("DateOfBirth") == "a date of birth"
    assert identifying_kind("Patient Name") == "a name"
    assert identifying_kind("NHSNumber") == "a national identity number"
    assert identifying_kind("home_address") == "an address"
    for clinical in ("drug_name", "visit_date", "mrss", "birth_year", "fvc_pct", "notes"):
        assert identifying_kind(clinical) is None, clinical


def test_workbook_sheet_holds_a_table_without_its_own_file(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "Visits"
    workbook.active.append(["patient_id", "visit_date"])
    workbook.save(tmp_path / "export.xlsx")
    (tmp_path / "patients.csv").write_text("patient_id\n")
    problems = ProblemList()
    found = find_table_files(tmp_path, problems)
    assert not problems
    assert found["visits"].name == "export.xlsx"
    assert table_file_label(found["visits"], VISITS) == "export.xlsx, sheet visits"

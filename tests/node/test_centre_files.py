"""Tests of sscjak.node.centre_files: locating table files, loading them as cell texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscjak.node.centre_files import (
    PROBLEMS_LISTED_PER_RULE,
    ProblemList,
    find_table_files,
    read_table_cells,
)
from sscjak.shared.data_contract import EVENTS


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

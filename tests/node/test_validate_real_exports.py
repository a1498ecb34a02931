"""``sscjak-node validate`` on folders shaped like real hospital exports.

Misnamed and identifying columns, implausible dates, decimal commas and one-workbook
xlsx exports, each checked through the real command: the message names the file, the
row (where there is one), the column and the fix.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from sscjak.node.cli import main

PATIENT_HEADER = "patient_id,jaki_drug,jaki_start,jaki_stop,followup_end,sex,birth_year,ssc_subset"
PATIENT_RECORDS = [
    "A01,tofacitinib,2020-01-10,,2022-06-01,F,1960,dcSSc",
    "A02,baricitinib,2019-05-01,2020-05-01,,M,,lcSSc",
]
VISIT_HEADER = "patient_id,visit_date,fvc_pct,mrss"
VISIT_RECORDS = [
    "A01,2020-01-05,80.3,12",
    "A01,2021-01-12,82.1,10",
    "A01,2022-01-20,83.0,9",
    "A02,2019-04-20,70.0,20",
]
EVENTS = "patient_id,event_date,event_type\nA01,2020-06-01,herpes_zoster\n"


def export_folder(
    folder: Path,
    patients: list[str] | None = None,
    visits: list[str] | None = None,
    patient_header: str = PATIENT_HEADER,
    visit_header: str = VISIT_HEADER,
) -> Path:
    """A CSV export folder: the records above unless replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    patient_lines = [patient_header, *(PATIENT_RECORDS if patients is None else patients)]
    visit_lines = [visit_header, *(VISIT_RECORDS if visits is None else visits)]
    (folder / "patients.csv").write_text("\n".join(patient_lines) + "\n", encoding="utf-8")
    (folder / "visits.csv").write_text("\n".join(visit_lines) + "\n", encoding="utf-8")
    (folder / "events.csv").write_text(EVENTS, encoding="utf-8")
    return folder


def validate(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sscjak-node validate FOLDER`` in process: (exit code, stdout, stderr)."""
    code = main(["validate", str(folder)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def line_of(text: str, start: str) -> str:
    """The one line of ``text`` that starts (after its indent) with ``start``."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, (start, text)
    return lines[0]


def outcome_row(text: str, outcome: str) -> list[str]:
    """The row of ``outcome`` in the summary's per-outcome table, split into words."""
    table = text.split("Patients counted per outcome (default plan):\n")[1]
    return line_of(table, f"{outcome} ").split()


# --- misnamed and identifying columns -----------------------------------------------------


def test_misnamed_outcome_columns_are_errors_naming_the_close_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = export_folder(tmp_path, visit_header="patient_id,visit_date,fvc,mRSS_total")
    code, _, err = validate(folder, capsys)
    assert code == 1
    assert err.splitlines()[0] == f"2 problems in {folder}:"
    fvc = line_of(err, "visits.csv, row 1, column fvc:")
    assert "did you mean 'fvc_pct'?" in fvc and "Rename it to 'fvc_pct'" in fvc
    mrss = line_of(err, "visits.csv, row 1, column mRSS_total:")
    assert "did you mean 'mrss'?" in mrss and "remove it from the export" in mrss


def test_misnamed_optional_columns_are_warnings_naming_the_close_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = PATIENT_HEADER.replace("jaki_stop", "jaki_end").replace("ssc_subset", "subset")
    records = [PATIENT_RECORDS[0], "A02,baricitinib,2019-05-01,2020-05-01,2020-06-01,M,,lcSSc"]
    code, out, _ = validate(export_folder(tmp_path, records, patient_header=header), capsys)
    assert code == 0
    assert "valid, with 2 warnings (listed at the end)" in out
    jaki_end = line_of(out, "warning: patients.csv, row 1, column jaki_end:")
    assert "ignored and never sent: did you mean 'jaki_stop'?" in jaki_end
    subset = line_of(out, "warning: patients.csv, row 1, column subset:")
    assert "did you mean 'ssc_subset'?" in subset


def test_a_measure_close_match_is_a_warning_when_the_measure_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = VISIT_HEADER + ",fvc_litres"
    visits = [record + ",2.9" for record in VISIT_RECORDS]
    code, out, _ = validate(export_folder(tmp_path, visits=visits, visit_header=header), capsys)
    assert code == 0
    warning = line_of(out, "warning: visits.csv, row 1, column fvc_litres:")
    assert "did you mean 'fvc_pct' (already in the file)?" in warning


def test_upper_case_column_is_an_error_to_write_it_lower_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "patient_id,Visit Date,FVC_PCT,mrss"
    code, _, err = validate(export_folder(tmp_path, visit_header=header), capsys)
    assert code == 1
    assert "must be named 'fvc_pct' (column names are lower-case)" in line_of(
        err, "visits.csv, row 1, column FVC_PCT:"
    )
    assert "must be named 'visit_date'" in line_of(err, "visits.csv, row 1, column Visit Date:")
    assert "required column" not in err


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("name", "a name"),
        ("First Name", "a name"),
        ("last_name", "a name"),
        ("DateOfBirth", "a date of birth"),
        ("dob", "a date of birth"),
        ("birth_date", "a date of birth"),
        ("national_id", "a national identity number"),
        ("NHS number", "a national identity number"),
        ("SSN", "a national identity number"),
        ("insurance_number", "a national identity number"),
        ("address", "an address"),
        ("phone", "a phone number"),
        ("Email", "an e-mail address"),
        ("MRN", "a medical record number"),
        ("medical_record_number", "a medical record number"),
    ],
)
def test_identifying_columns_are_loud_warnings_to_remove_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, kind: str
) -> None:
    header = f"{PATIENT_HEADER},{column}"
    records = [record + ",x" for record in PATIENT_RECORDS]
    code, out, _ = validate(export_folder(tmp_path, records, patient_header=header), capsys)
    assert code == 0
    warning = line_of(out, f"warning: patients.csv, row 1, column {column}:")
    assert f"looks like {kind}, which identifies a patient" in warning
    assert "ignored and never sent" in warning and "remove it from the export" in warning


def test_every_other_ignored_column_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = f"{PATIENT_HEADER},centre,diagnosis"
    records = [record + ",Lyon,SSc" for record in PATIENT_RECORDS]
    code, out, _ = validate(export_folder(tmp_path, records, patient_header=header), capsys)
    assert code == 0
    assert line_of(out, "warning: patients.csv, row 1:") == (
        "warning: patients.csv, row 1: 2 columns are not in the data contract, ignored and "
        "never sent: 'centre', 'diagnosis'"
    )


def test_ignored_columns_are_listed_also_when_the_folder_has_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = f"{VISIT_HEADER},email"
    visits = [record + ",a@b.org" for record in VISIT_RECORDS]
    visits[0] = visits[0].replace("80.3", "80,3")
    code, _, err = validate(export_folder(tmp_path, visits=visits, visit_header=header), capsys)
    assert code == 1
    assert "1 warning (not errors, but look at each):" in err
    assert "warning: visits.csv, row 1, column email:" in err


def test_parquet_columns_not_read_are_still_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = export_folder(tmp_path)
    (folder / "visits.csv").unlink()
    visits = pd.DataFrame(
        {
            "patient_id": ["A01", "A02"],
            "visit_date": pd.to_datetime(["2020-01-05", "2019-04-20"]),
            "fvc": [80.3, 70.0],
        }
    )
    visits.to_parquet(folder / "visits.parquet")
    code, _, err = validate(folder, capsys)
    assert code == 1
    assert "did you mean 'fvc_pct'?" in line_of(err, "visits.parquet, row 1, column fvc:")


# --- implausible data ---------------------------------------------------------------------


def test_visit_before_the_birth_year_is_an_error_naming_both_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    visits = [*VISIT_RECORDS, "A01,1959-06-01,75.0,14"]
    code, _, err = validate(export_folder(tmp_path, visits=visits), capsys)
    assert code == 1
    assert line_of(err, "visits.csv, row 6, column visit_date:") == (
        "visits.csv, row 6, column visit_date: visit_date 1959-06-01 is before the patient's "
        "birth_year 1960 (patients.csv row 2): one of the two is wrong"
    )


def test_future_birth_year_and_jaki_start_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    next_year = dt.date.today().year + 1
    records = [
        f"A01,tofacitinib,{next_year}-01-10,,{next_year}-06-01,F,1960,dcSSc",
        f"A02,baricitinib,2019-05-01,2020-05-01,,M,{next_year},lcSSc",
    ]
    code, _, err = validate(export_folder(tmp_path, records, visits=[]), capsys)
    assert code == 1
    start = line_of(err, "patients.csv, row 2, column jaki_start:")
    assert f"jaki_start {next_year}-01-10 is in the future" in start
    birth = line_of(err, "patients.csv, row 3, column birth_year:")
    assert f"birth_year {next_year} is in the future" in birth


def test_future_visit_date_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    visits = [*VISIT_RECORDS, f"A01,{future},75.0,14"]
    code, _, err = validate(export_folder(tmp_path, visits=visits), capsys)
    assert code == 1
    assert f"visit_date {future} is in the future" in line_of(
        err, "visits.csv, row 6, column visit_date:"
    )


def test_header_only_visits_file_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = validate(export_folder(tmp_path, visits=[]), capsys)
    assert code == 0
    assert "there are no visits to analyse" in line_of(out, "warning: visits.csv:")


def test_no_baseline_for_any_measure_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # visit dates shifted by three years, treatment dates not
    visits = [
        f"{pid},{int(date[:4]) + 3}{date[4:]},{fvc},{mrss}"
        for pid, date, fvc, mrss in (record.split(",") for record in VISIT_RECORDS)
    ]
    code, out, _ = validate(export_folder(tmp_path, visits=visits), capsys)
    assert code == 0
    warning = line_of(out, "warning: visits.csv, column visit_date:")
    assert "no patient has a baseline value of any measure" in warning
    assert "same calendar" in warning


def test_summary_counts_baseline_and_time_points_per_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = validate(export_folder(tmp_path), capsys)
    assert code == 0
    assert out.splitlines()[0] == f"{tmp_path}: valid."
    assert "Patients counted per outcome (default plan):" in out
    assert outcome_row(out, "outcome") == [
        "outcome",
        "baseline",
        "12",
        "months",
        "24",
        "months",
    ]
    # A01: baseline, 12 and 24 months; A02: baseline only (stopped before 12 months)
    assert outcome_row(out, "fvc_pct") == ["fvc_pct", "2", "1", "1"]
    assert outcome_row(out, "mrss") == ["mrss", "2", "1", "1"]
    assert outcome_row(out, "dlco_pct") == ["dlco_pct", "0", "0", "0"]


# --- decimal commas -----------------------------------------------------------------------


def test_decimal_comma_says_write_a_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    visits = list(VISIT_RECORDS)
    visits[1] = 'A01,2021-01-12,"67,4",10'
    code, _, err = validate(export_folder(tmp_path, visits=visits), capsys)
    assert code == 1
    assert line_of(err, "visits.csv, row 3, column fvc_pct:") == (
        "visits.csv, row 3, column fvc_pct: expected a number from 10 to 200, got '67,4': "
        "decimal comma — write 67.4"
    )


# --- xlsx exports -------------------------------------------------------------------------


def workbook_rows(text_rows: list[str]) -> list[list[object]]:
    """CSV-like records as spreadsheet rows: dates as dates, numbers as numbers."""
    rows: list[list[object]] = []
    for record in text_rows:
        row: list[object] = []
        for cell in record.split(","):
            if cell == "":
                row.append(None)
            elif len(cell) == 10 and cell[4] == "-":
                row.append(dt.datetime.fromisoformat(cell))  # Excel's dates are datetimes
            else:
                try:
                    row.append(float(cell) if "." in cell else int(cell))
                except ValueError:
                    row.append(cell)
        rows.append(row)
    return rows


def write_workbook(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    """A workbook with one sheet per entry, header row first."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def export_sheets(visits: list[list[object]] | None = None) -> dict[str, list[list[object]]]:
    """The three tables as sheets, named as an export tool might (any case)."""
    return {
        "Patients": [PATIENT_HEADER.split(","), *workbook_rows(PATIENT_RECORDS)],
        "VISITS": visits or [VISIT_HEADER.split(","), *workbook_rows(VISIT_RECORDS)],
        "events": [
            ["patient_id", "event_date", "event_type"],
            *workbook_rows(["A01,2020-06-01,herpes_zoster"]),
        ],
    }


def test_one_workbook_with_the_three_sheets_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "centre"
    folder.mkdir()
    write_workbook(folder / "export.xlsx", export_sheets())
    code, out, _ = validate(folder, capsys)
    assert code == 0, out
    assert line_of(out, "Files read:") == (
        "Files read: export.xlsx, sheet patients, export.xlsx, sheet visits, "
        "export.xlsx, sheet events"
    )
    assert "Patients: 2   visits: 4" in out


def test_problem_in_a_workbook_names_file_sheet_row_column_and_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "centre"
    folder.mkdir()
    visits = [VISIT_HEADER.split(","), *workbook_rows(VISIT_RECORDS)]
    visits[1][1] = dt.datetime(2020, 1, 5, 0, 0)  # midnight: the date itself
    visits[2][1] = dt.datetime(2021, 1, 12, 14, 30)  # a time of day
    visits[3][2] = "83,0"
    write_workbook(folder / "centre.xlsx", export_sheets(visits))
    code, _, err = validate(folder, capsys)
    assert code == 1
    assert err.splitlines()[0] == f"2 problems in {folder}:"
    time_of_day = line_of(err, "centre.xlsx, sheet visits, row 3, column visit_date:")
    assert "got '2021-01-12 14:30:00'" in time_of_day
    assert "cell B3 holds a time other than midnight" in time_of_day
    assert "write the date alone, YYYY-MM-DD" in time_of_day
    comma = line_of(err, "centre.xlsx, sheet visits, row 4, column fvc_pct:")
    assert comma.endswith("decimal comma — write 83.0")


def test_two_workbooks_holding_one_table_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "centre"
    folder.mkdir()
    write_workbook(folder / "export.xlsx", export_sheets())
    write_workbook(folder / "centre.xlsx", {"visits": export_sheets()["VISITS"]})
    code, _, err = validate(folder, capsys)
    assert code == 1
    assert (
        f"{folder}: table visits is given twice (sheet 'visits' of centre.xlsx and "
        "sheet 'visits' of export.xlsx): keep one"
    ) in err


def test_table_file_and_workbook_sheet_together_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = export_folder(tmp_path / "centre")
    write_workbook(folder / "export.xlsx", {"Visits": export_sheets()["VISITS"]})
    code, _, err = validate(folder, capsys)
    assert code == 1
    assert "table visits is given twice (visits.csv and sheet 'visits' of export.xlsx)" in err


def test_csv_dates_with_a_time_are_an_error_saying_write_the_date_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV dates are YYYY-MM-DD: nothing else is silently taken as a date."""
    visits = [record.replace("2020-01-05", "2020-01-05 00:00:00") for record in VISIT_RECORDS]
    code, _, err = validate(export_folder(tmp_path, visits=visits), capsys)
    assert code == 1
    assert "visits.csv" in err and "visit_date" in err
    assert "got '2020-01-05 00:00:00'" in err and "write the date alone, YYYY-MM-DD" in err


def test_cli_prints_warnings_and_exits_0(tmp_path: Path) -> None:
    header = f"{PATIENT_HEADER},patient_name"
    records = [record + ",Jane Doe" for record in PATIENT_RECORDS]
    folder = export_folder(tmp_path, records, patient_header=header)
    result = subprocess.run(
        ["sscjak-node", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: patients.csv, row 1, column patient_name: this column looks like a name" in (
        result.stdout
    )
    assert "Jane Doe" not in result.stdout + result.stderr

"""Fuzzing sscjak.node.data.centre_reader: damaged files give CentreDataError, never
anything else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscjak.node.data.centre_reader import CentreData, CentreDataError, read_centre

VALID_FILES: dict[str, bytes] = {
    "patients.csv": (
        b"patient_id,jaki_drug,jaki_start,jaki_stop,followup_end,sex,birth_year,ssc_subset\n"
        b"A01,tofacitinib,2020-01-10,,2021-06-01,F,1960,dcSSc\n"
        b'A02,baricitinib,2019-05-01,2020-05-01,,M,,"lcSSc"\n'
        b"A03,other,2018-03-03,,2022-01-01,,1971,other\n"
    ),
    "visits.csv": (
        b"patient_id,visit_date,fvc_pct,dlco_pct,mrss,tjc,sjc,du_count,calcinosis,"
        b"calcinosis_course,gc_dose_mg\n"
        b"A01,2020-01-05,80.3,61.2,12,3,1,0,1,,5\n"
        b"A01,2021-01-12,82.1,,10,1,0,2,1,improved,2.5\n"
        b"A02,2019-04-20,70,50,20,,,,0,,0\n"
        b"A03,2018-03-01,99.9,45,7,0,0,0,0,,7.75\n"
    ),
    "events.csv": (
        b"patient_id,event_date,event_type\nA01,2020-06-01,herpes_zoster\nA03,2019-01-01,other\n"
    ),
}

SPECIAL_TEXTS = [
    b"1e400",
    b"-1e400",
    b"NaN",
    b"inf",
    b"9" * 400,
    b"\xff\xfe",
    b"\x00",
    b'"',
    b",,,,,,,,,,,,",
    b"\r",
    b"\n",
    b";",
    b"2020-02-30",
    b"0000-00-00",
    b"\xc3\xa9",
    b"\xe9",
    b"\xef\xbb\xbf",
    b" ",
]


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits: truncation, byte noise, special texts, re-encoding."""
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["truncate", "insert", "replace", "delete", "encode"]))
        at = draw(st.integers(0, len(data)))
        if edit == "truncate":
            data = data[:at]
        elif edit == "insert":
            chunk = draw(st.one_of(st.sampled_from(SPECIAL_TEXTS), st.binary(max_size=12)))
            data = data[:at] + chunk + data[at:]
        elif edit == "replace":
            chunk = draw(
                st.one_of(st.sampled_from(SPECIAL_TEXTS), st.binary(min_size=1, max_size=4))
            )
            data = data[:at] + chunk + data[at + len(chunk) :]
        elif edit == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 20)) :]
        else:
            encoding = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
            data = data.decode("utf-8", errors="replace").encode(encoding, errors="replace")
    return data


def _assert_reads_or_reports(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            (Path(folder) / name).write_bytes(content)
        try:
            centre = read_centre(folder)
        except CentreDataError as error:
            assert error.problems, "a CentreDataError lists at least one problem"
            assert error.problem_count >= len(
                [p for p in error.problems if not p.message.startswith("…")]
            )
            for problem in error.problems:
                assert problem.message
                # every damage of a CSV file is located by the reader's own checks
                assert not problem.message.startswith("the file cannot be read as csv")
                assert problem.row is None or problem.row >= 1
                str(problem)
        else:
            assert isinstance(centre, CentreData)
            assert centre.visits["patient_id"].isin(centre.patients["patient_id"]).all()


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_csv_files_never_escape_as_other_exceptions(data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(sorted(VALID_FILES)))
    files = dict(VALID_FILES)
    files[target] = data.draw(damaged(VALID_FILES[target]))
    _assert_reads_or_reports(files)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["patients.xlsx", "visits.parquet", "events.xlsx", "events.parquet"]),
    st.binary(max_size=300),
)
def test_random_bytes_as_xlsx_or_parquet_are_reported(name: str, content: bytes) -> None:
    files = {k: v for k, v in VALID_FILES.items() if k.split(".")[0] != name.split(".")[0]}
    files[name] = content
    with tempfile.TemporaryDirectory() as folder:
        for file_name, file_content in files.items():
            (Path(folder) / file_name).write_bytes(file_content)
        try:
            read_centre(folder)
        except CentreDataError as error:
            assert any(p.file == name for p in error.problems)
        else:
            raise AssertionError("random bytes were accepted as a table file")


def test_unchanged_files_read_cleanly() -> None:
    _assert_reads_or_reports(VALID_FILES)
    with tempfile.TemporaryDirectory() as folder:
        for name, content in VALID_FILES.items():
            (Path(folder) / name).write_bytes(content)
        assert len(read_centre(folder).visits) == 4


def _storable_in_excel(value: object) -> object:
    """``value`` as openpyxl can store it: no control characters, integers within 2**53."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch.isprintable())
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)
    return value


CELL_VALUES = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),  # naive, as Excel stores them
)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELL_VALUES, min_size=4, max_size=4), min_size=1, max_size=6))
def test_any_excel_cell_values_give_data_or_problems(rows: list[list[object]]) -> None:
    import openpyxl

    with tempfile.TemporaryDirectory() as folder:
        for name in ("patients.csv", "events.csv"):
            (Path(folder) / name).write_bytes(VALID_FILES[name])
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.title = "visits"
        sheet.append(["patient_id", "visit_date", "fvc_pct", "calcinosis_course"])
        for row in rows:
            sheet.append([_storable_in_excel(value) for value in row])
        workbook.save(Path(folder) / "visits.xlsx")
        try:
            centre = read_centre(folder)
        except CentreDataError as error:
            assert all(p.file == "visits.xlsx" for p in error.problems)
        else:
            assert len(centre.visits) <= len(rows)

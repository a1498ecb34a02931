"""Reading and validating a centre's data folder (docs/input-files.md).

:func:`read_centre` loads ``patients``, ``visits`` and (optionally) ``events`` -- each a
CSV, xlsx or parquet file, see :mod:`sscjak.node.data.table_files` for the accepted file
forms -- checks every value against the rules of :mod:`sscjak.shared.data_contract`
and returns typed tables (:class:`CentreData`) or raises :class:`CentreDataError` listing
*every* problem found in all files, each located by file, row (header = row 1) and
column and saying what was expected and what was found.

Values are never silently coerced (docs/input-files.md): an unparsable number or date, a
value out of its range, a non-whole value of a whole-number measure (mRSS 3.5), a text
outside the listed choices (spellings are case-sensitive, exactly as the contract lists
them), a visit or event of a patient not in patients, a duplicate patient_id, a
jaki_stop or followup_end before jaki_start, a missing followup_end of an ongoing
treatment, a treatment period over 50 years (:data:`MAX_TREATMENT_DAYS`), two visits
of a patient on one date disagreeing on a measure, a birth_year, jaki_start, visit_date
or event_date in the future (after today) and a jaki_start, visit or event in a year
before the patient's birth_year are all errors. A patients or visits file with no
records is a warning (valid, but nothing to analyse). Whitespace around a value is
stripped; an empty cell is a missing value. A value off its measure's grid
(FVC 80.35) is not an error: it is counted in :attr:`CentreData.off_grid` and rounded
later, in the derivation (docs/derivation.md).

Privacy: problem messages go only to the local data steward's terminal. They name rows
and may quote the offending cell, but never echo a patient_id; the row number is enough
to find the record.

Everything works on whole columns (pyarrow compute, numpy masks, group-bys on integer
keys); no Python loop runs over rows, and at most a few problems are listed per (file,
column, rule); docs/benchmarks.md has the measured time and memory for 100,000 patients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sscjak.node.data.problems import Problem, ProblemList
from sscjak.node.data.table_files import (
    TableCells,
    find_table_files,
    read_table_cells,
    table_file_label,
)
from sscjak.node.data.value_parsing import (
    EARLIEST_DATE,
    LATEST_DATE,
    ParsedNumbers,
    cell_strings,
    decimal_point,
    is_whole_number,
    parse_dates,
    parse_numbers,
    shown,
    true_where,
)
from sscjak.shared.data_contract import (
    MAX_TREATMENT_DAYS,
    MEASURES,
    Column,
    Measure,
    Table,
    contract_tables,
)
from sscjak.shared.errors import SscjakError

__all__ = ["MAX_TREATMENT_DAYS", "CentreData", "CentreDataError", "Problem", "read_centre"]

#: The longest accepted treatment period, 50 years in days (50 × 365.25, rounded up):
#: the released follow-up histogram of whole days ends there.

#: Text columns: Arrow-backed strings with ``<NA>`` for a missing value.
TEXT_DTYPE = pd.StringDtype("pyarrow")

#: Columns of the visits table that are not values: the rest are compared when two
#: visits of one patient fall on the same date.
VISIT_KEY_COLUMNS: tuple[str, ...] = ("patient_id", "visit_date")


class CentreDataError(SscjakError, ValueError):
    """A centre's folder breaks the contract; ``problems`` lists what and where.

    ``problems`` lists at most a few problems per (file, column, rule) plus one summary
    line for the rest; ``problem_count`` counts them all. ``warnings`` are the warnings
    found along the way (ignored columns, for example).
    """

    def __init__(
        self,
        problems: list[Problem],
        problem_count: int | None = None,
        warnings: list[Problem] | None = None,
    ) -> None:
        self.problems = list(problems)
        self.problem_count = len(self.problems) if problem_count is None else problem_count
        self.warnings = list(warnings or [])
        noun = "problem" if self.problem_count == 1 else "problems"
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{self.problem_count:,} {noun} in the centre's data:\n{lines}")


@dataclass(frozen=True)
class CentreData:
    """A centre's validated tables.

    patients
        patient_id, jaki_drug (string); jaki_start, jaki_stop, followup_end
        (``datetime64[ns]``, NaT = missing); sex, ssc_subset (string, ``<NA>`` =
        missing); birth_year (Int64).
    visits
        One row per (patient_id, visit_date), sorted by both: rows of the same patient
        and date are merged (they never disagree, that is an error). The measures of
        :data:`~sscjak.shared.data_contract.MEASURES` and the declared ones read with
        them as float64 raw values (NaN = missing; not rounded to the grid); calcinosis
        float64 (0, 1 or NaN); calcinosis_course (string or ``<NA>``).
    events
        patient_id, event_date, event_type; empty with these columns if no events file.
    off_grid
        For each measure, how many values were off its grid (a note, not an error).
    files
        Table name -> the file name read (``export.xlsx, sheet visits`` for a sheet of a
        workbook named otherwise).
    warnings
        What the steward should look at although the folder is valid: ignored columns,
        columns that look identifying, a file without records.
    """

    patients: pd.DataFrame
    visits: pd.DataFrame
    events: pd.DataFrame
    off_grid: dict[str, int]
    files: dict[str, str]
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class _ParsedTable:
    """A table's typed columns; invalid values already reported and set missing.

    ``empty`` marks, per column, the cells that were empty in the file (as opposed to
    holding an invalid value), for rules such as "required when jaki_stop is empty".
    """

    file: str
    frame: pd.DataFrame
    row_numbers: np.ndarray
    empty: dict[str, np.ndarray]
    off_grid: dict[str, int]


def read_centre(folder: Path | str, declared: tuple[Measure, ...] = ()) -> CentreData:
    """Read and validate a centre's folder (docs/input-files.md).

    ``declared`` are visit measures a plan declares (:mod:`sscjak.shared.declared_measures`):
    their columns are read and validated like the built-in measures'.

    Raises
    ------
    CentreDataError
        Listing every problem found, across all files, if any.
    """
    folder = Path(folder)
    tables = contract_tables(declared)
    measures = {**MEASURES, **{measure.name: measure for measure in declared}}
    problems = ProblemList()
    paths = find_table_files(folder, problems)
    labels = {
        table.name: table_file_label(paths[table.name], table)
        for table in tables
        if table.name in paths
    }
    parsed: dict[str, _ParsedTable] = {}
    for table in tables:
        if table.name not in paths:
            continue
        cells = read_table_cells(paths[table.name], table, problems)
        if cells is not None:
            parsed[table.name] = _parse_table(cells, measures, problems)
    _check_tables(parsed, problems)
    if problems:
        # Grouped by file (folder-level first, then tables in contract order), each
        # file's problems in the order the checks found them.
        order = {label: rank for rank, label in enumerate(labels.values(), start=1)}
        listed = sorted(problems.problems, key=lambda problem: order.get(problem.file, 0))
        raise CentreDataError(listed, problems.count, problems.warnings)
    events = parsed["events"].frame if "events" in parsed else _empty_events()
    return CentreData(
        patients=parsed["patients"].frame,
        visits=_merge_same_date_visits(parsed["visits"].frame, tables[1]),
        events=events,
        off_grid=parsed["visits"].off_grid,
        files=labels,
        warnings=tuple(problems.warnings),
    )


def _check_tables(parsed: dict[str, _ParsedTable], problems: ProblemList) -> None:
    """The rules across rows and tables, on the tables that could be parsed."""
    for name in ("patients", "visits"):
        if name in parsed and len(parsed[name].frame) == 0:
            problems.warn(
                parsed[name].file,
                None,
                None,
                f"the file has a header but no records: there are no {name} to analyse",
            )
    if "patients" in parsed:
        _check_patients(parsed["patients"], problems)
    if "visits" in parsed:
        _check_same_date_visits(parsed["visits"], problems)
    for name, column in (("visits", "visit_date"), ("events", "event_date")):
        if name in parsed:
            _check_not_in_future(parsed[name], column, problems)
    if "patients" in parsed:
        for name, column in (("visits", "visit_date"), ("events", "event_date")):
            if name in parsed:
                _check_patient_rows(parsed[name], column, parsed["patients"], problems)


# --- one column at a time -----------------------------------------------------------------


def _range_text(column: Column) -> str:
    return f" from {column.low:g} to {column.high:g}" if column.low is not None else ""


def _parse_table(
    cells: TableCells, measures: dict[str, Measure], problems: ProblemList
) -> _ParsedTable:
    """Type every column of the table, reporting each invalid cell (vectorised per column)."""
    frame: dict[str, pd.Series | np.ndarray] = {}
    empty: dict[str, np.ndarray] = {}
    off_grid: dict[str, int] = {}
    n = len(cells.cells)
    for column in cells.table.columns:
        text = cells.cells[column.name] if column.name in cells.cells else pd.Series([""] * n)
        text = text.astype("str").reset_index(drop=True)
        is_empty = (text == "").to_numpy(dtype=bool)
        empty[column.name] = is_empty
        if column.required:
            problems.add_rows(
                cells.file,
                column.name,
                is_empty,
                cells.row_numbers,
                "a value is required here; the cell is empty",
            )
        if column.kind in ("text", "choice"):
            frame[column.name] = _parse_text(column, text, cells, problems)
        elif column.kind == "date":
            frame[column.name] = _parse_date(column, text, cells, problems)
        else:
            values = _parse_number(column, text, cells, problems)
            frame[column.name] = values
            measure = measures.get(column.name)
            if measure is not None:
                off_grid[column.name] = (
                    0
                    if measure.integer
                    else int(measure.is_off_grid(values).sum())
                )
    typed = pd.DataFrame(frame, index=pd.RangeIndex(n))
    if "birth_year" in typed:
        typed["birth_year"] = typed["birth_year"].astype("Int64")
    return _ParsedTable(cells.file, typed, cells.row_numbers, empty, off_grid)


def _quoting(text: pd.Series, expected: str) -> Callable[[int], str]:
    """A message function quoting the cell found at a row position."""
    return lambda position: f"expected {expected}, got {shown(text.iat[position])}"


def _parse_text(
    column: Column, text: pd.Series, cells: TableCells, problems: ProblemList
) -> pd.Series:
    strings = cell_strings(text)
    is_empty = true_where(pc.equal(strings, ""))
    values = pd.Series(strings.to_pandas(), dtype=TEXT_DTYPE).mask(is_empty)
    if column.kind == "choice":
        listed = true_where(pc.is_in(strings, value_set=pa.array(column.choices)))
        unknown = ~listed & ~is_empty
        choices = ", ".join(column.choices)
        lower_choices = {c.lower() for c in column.choices}

        def message(position: int) -> str:
            found = text.iat[position]
            hint = " (spelling and case must match)" if found.lower() in lower_choices else ""
            return f"expected one of {choices}, got {shown(found)}{hint}"

        problems.add_rows(cells.file, column.name, unknown, cells.row_numbers, message)
        values = values.mask(unknown)
    return values


def _parse_date(
    column: Column, text: pd.Series, cells: TableCells, problems: ProblemList
) -> np.ndarray:
    dates = parse_dates(text)
    letter = cells.sheet_columns.get(column.name)

    def with_time(position: int) -> str:
        # a sheet's native date cell at midnight was already read as its date
        cell = (
            f"cell {letter}{cells.row_numbers[position]} holds a time other than midnight; "
            if letter
            else ""
        )
        return (
            f"expected a date without a time of day, got {shown(text.iat[position])}: "
            f"{cell}write the date alone, YYYY-MM-DD"
        )

    problems.add_rows(cells.file, column.name, dates.with_time, cells.row_numbers, with_time)
    problems.add_rows(
        cells.file,
        column.name,
        dates.unparsable,
        cells.row_numbers,
        _quoting(text, "a date written YYYY-MM-DD"),
    )
    problems.add_rows(
        cells.file,
        column.name,
        dates.not_a_day,
        cells.row_numbers,
        _quoting(
            text,
            f"a calendar date from {EARLIEST_DATE:%Y-%m-%d} to {LATEST_DATE:%Y-%m-%d}",
        ),
    )
    return dates.values


def _number_message(text: pd.Series, expected: str, numbers: ParsedNumbers) -> Callable[[int], str]:
    """A message function for a bad number; a decimal comma gets its fix."""
    quoting = _quoting(text, expected)

    def message(position: int) -> str:
        if numbers.decimal_comma[position]:
            return f"{quoting(position)}: decimal comma — write {decimal_point(text.iat[position])}"
        return quoting(position)

    return message


def _parse_number(
    column: Column, text: pd.Series, cells: TableCells, problems: ProblemList
) -> np.ndarray:
    numbers = parse_numbers(text)
    values = numbers.values
    if column.kind == "binary":
        expected = "0 or 1"
        bad = numbers.unparsable | (~numbers.missing & ~np.isin(values, (0.0, 1.0)))
    else:
        whole = column.kind == "int"
        expected = ("a whole number" if whole else "a number") + _range_text(column)
        bad = numbers.unparsable | (~numbers.missing & ~np.isfinite(values))
        if column.low is not None and column.high is not None:
            with np.errstate(invalid="ignore"):
                bad |= (values < column.low) | (values > column.high)
        if whole:
            bad |= ~numbers.missing & ~is_whole_number(values)
    problems.add_rows(
        cells.file, column.name, bad, cells.row_numbers, _number_message(text, expected, numbers)
    )
    values = values.copy()
    values[bad] = np.nan
    return values


# --- rules across rows and tables ---------------------------------------------------------


def _day(value: np.datetime64) -> str:
    return str(value)[:10]


def _check_patients(patients: _ParsedTable, problems: ProblemList) -> None:
    """Unique patient_id; stop and follow-up end after start; ongoing needs followup_end."""
    frame, rows, file = patients.frame, patients.row_numbers, patients.file
    ids = frame["patient_id"]
    duplicate = (ids.notna() & ids.duplicated(keep="first")).to_numpy(dtype=bool)
    if duplicate.any():
        first_row = pd.Series(rows).groupby(ids.to_numpy(na_value="")).transform("min")
        problems.add_rows(
            file,
            "patient_id",
            duplicate,
            rows,
            lambda position: f"duplicate patient_id: the same as in row {first_row.iat[position]}",
        )
    _check_not_in_future(patients, "jaki_start", problems)
    _check_birth_year(patients, problems)
    start = frame["jaki_start"].to_numpy()
    for column in ("jaki_stop", "followup_end"):
        end = frame[column].to_numpy()
        before = ~np.isnat(start) & ~np.isnat(end) & (end < start)
        problems.add_rows(
            file,
            column,
            before,
            rows,
            lambda position, end=end, column=column: (
                f"{column} {_day(end[position])} is before jaki_start {_day(start[position])}"
            ),
        )
    no_end = patients.empty["jaki_stop"] & patients.empty["followup_end"]
    problems.add_rows(
        file,
        "followup_end",
        no_end,
        rows,
        "followup_end (last contact) is required when jaki_stop is empty (ongoing treatment)",
    )
    stop = frame["jaki_stop"].to_numpy()
    treatment_end = np.where(np.isnat(stop), frame["followup_end"].to_numpy(), stop)
    with np.errstate(invalid="ignore"):
        days = (treatment_end - start) / np.timedelta64(1, "D")
    too_long = ~np.isnan(days) & (days > MAX_TREATMENT_DAYS)
    for column, is_end in (("jaki_stop", ~np.isnat(stop)), ("followup_end", np.isnat(stop))):
        problems.add_rows(
            file,
            column,
            too_long & is_end,
            rows,
            lambda position: (
                f"expected a treatment period of at most {MAX_TREATMENT_DAYS:,} days "
                f"(50 years) from jaki_start, got {days[position]:,.0f} days"
            ),
        )


def _today() -> np.datetime64:
    """Today's date: no record can be dated after it."""
    return np.datetime64(dt.date.today(), "D")


def _check_not_in_future(table: _ParsedTable, column: str, problems: ProblemList) -> None:
    """No date of ``column`` lies after today."""
    today = _today()
    dates = table.frame[column].to_numpy()
    future = ~np.isnat(dates) & (dates > today)
    problems.add_rows(
        table.file,
        column,
        future,
        table.row_numbers,
        lambda position: (
            f"{column} {_day(dates[position])} is in the future (today is {today}): "
            "a date of record cannot be after today"
        ),
    )


def _check_birth_year(patients: _ParsedTable, problems: ProblemList) -> None:
    """birth_year not after this year; jaki_start not in a year before birth_year."""
    frame, rows, file = patients.frame, patients.row_numbers, patients.file
    birth = frame["birth_year"].to_numpy(dtype=np.float64, na_value=np.nan)
    this_year = int(str(_today())[:4])
    with np.errstate(invalid="ignore"):
        future = birth > this_year
    problems.add_rows(
        file,
        "birth_year",
        future,
        rows,
        lambda position: (
            f"birth_year {birth[position]:.0f} is in the future (this year is {this_year})"
        ),
    )
    start = frame["jaki_start"].to_numpy()
    _check_after_birth(patients, "jaki_start", start, birth, lambda position: "", problems)


def _years(dates: np.ndarray) -> np.ndarray:
    """The calendar year of each date as float64 (NaN for NaT)."""
    years = dates.astype("datetime64[Y]").astype(np.int64).astype(np.float64) + 1970
    years[np.isnat(dates)] = np.nan
    return years


def _check_after_birth(
    table: _ParsedTable,
    column: str,
    dates: np.ndarray,
    birth: np.ndarray,
    where: Callable[[int], str],
    problems: ProblemList,
) -> None:
    """No date of ``column`` in a year before the patient's birth year (``birth``, NaN if
    unknown, aligned with the rows); ``where`` names the patient's row in patients."""
    with np.errstate(invalid="ignore"):
        before = _years(dates) < birth
    problems.add_rows(
        table.file,
        column,
        before,
        table.row_numbers,
        lambda position: (
            f"{column} {_day(dates[position])} is before the patient's birth_year "
            f"{birth[position]:.0f}{where(position)}: one of the two is wrong"
        ),
    )


def _check_patient_rows(
    table: _ParsedTable, date_column: str, patients: _ParsedTable, problems: ProblemList
) -> None:
    """Every visit or event belongs to a patient listed in patients, and is not dated
    in a year before the patient's birth_year."""
    ids = table.frame["patient_id"]
    listed_ids = patients.frame["patient_id"].dropna()
    found = pc.index_in(cell_strings(ids), value_set=cell_strings(listed_ids))
    position = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    unknown = ids.notna().to_numpy(dtype=bool) & (position < 0)
    problems.add_rows(
        table.file,
        "patient_id",
        unknown,
        table.row_numbers,
        f"patient_id not found in {patients.file}",
    )
    listed_rows = patients.row_numbers[listed_ids.index.to_numpy()]
    listed_birth = patients.frame["birth_year"].to_numpy(dtype=np.float64, na_value=np.nan)[
        listed_ids.index.to_numpy()
    ]
    birth = np.full(len(position), np.nan)
    if len(listed_birth):
        birth = np.where(position >= 0, listed_birth[np.maximum(position, 0)], np.nan)
    _check_after_birth(
        table,
        date_column,
        table.frame[date_column].to_numpy(),
        birth,
        lambda row: f" ({patients.file} row {listed_rows[position[row]]})",
        problems,
    )


#: Day numbers of visit dates, counted from EARLIEST_DATE, fit in this many bits.
_DAY_BITS = 17


def _visit_keys(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per visit that orders by (patient_id, visit_date), and where it is valid.

    The key is the patient's rank among the sorted distinct ids, shifted left by
    :data:`_DAY_BITS`, plus the day number of the visit (dates span 1900-2100, under
    2**17 days): grouping and sorting on integers instead of strings keeps a
    1,000,000-row visits file fast.
    """
    codes, _ = pd.factorize(frame["patient_id"], sort=True, use_na_sentinel=True)
    dates = frame["visit_date"].to_numpy()
    valid = (codes >= 0) & ~np.isnat(dates)
    origin = EARLIEST_DATE.to_datetime64().astype("datetime64[ns]")
    days = (np.where(valid, dates, origin) - origin) // np.timedelta64(1, "D")
    keys = np.where(valid, (codes.astype(np.int64) << _DAY_BITS) + days, -1)
    return keys, valid


def _same_date_groups(keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """True for visit rows sharing patient_id and visit_date with another row."""
    return valid & pd.Series(keys).duplicated(keep=False).to_numpy()


def _check_same_date_visits(visits: _ParsedTable, problems: ProblemList) -> None:
    """Two visits of one patient on one date must not disagree on any value."""
    keys, valid = _visit_keys(visits.frame)
    shared = _same_date_groups(keys, valid)
    if not shared.any():
        return
    positions = np.flatnonzero(shared)
    subset = visits.frame.iloc[positions].reset_index(drop=True)
    groups = keys[positions]
    first_row = pd.Series(visits.row_numbers[positions]).groupby(groups).transform("min")
    first_of = np.zeros(len(visits.frame), dtype=np.int64)
    first_of[positions] = first_row.to_numpy()
    for column in [c for c in visits.frame.columns if c not in VISIT_KEY_COLUMNS]:
        distinct = subset[column].groupby(groups).transform("nunique").to_numpy()
        conflict = np.zeros(len(visits.frame), dtype=bool)
        conflict[positions] = (distinct > 1) & subset[column].notna().to_numpy()
        problems.add_rows(
            visits.file,
            column,
            conflict,
            visits.row_numbers,
            lambda position: (
                "visits of the same patient on the same visit_date disagree on this value "
                f"(the first of them is row {first_of[position]})"
            ),
        )


def _merge_same_date_visits(visits: pd.DataFrame, table: Table) -> pd.DataFrame:
    """One row per (patient_id, visit_date), sorted by both; same-date rows merged.

    Same-date rows never disagree (checked before), so the merged row takes, per
    column, the value present in any of them.
    """
    keys, _ = _visit_keys(visits)
    order = np.argsort(keys, kind="stable")
    merged = visits.take(order).reset_index(drop=True)
    sorted_keys = keys[order]
    if len(sorted_keys) > 1 and (sorted_keys[1:] == sorted_keys[:-1]).any():
        merged = merged.groupby(sorted_keys, sort=False).first().reset_index(drop=True)
    return merged[list(table.column_names)]


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.Series([], dtype=TEXT_DTYPE),
            "event_date": pd.Series([], dtype="datetime64[ns]"),
            "event_type": pd.Series([], dtype=TEXT_DTYPE),
        }
    )

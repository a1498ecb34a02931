"""Finding and loading a centre's table files as columns of cell texts (docs/input-files.md).

Each table (``patients``, ``visits``, ``events``) may be a CSV, an Excel workbook or a
parquet file with the table's base name. This module finds the one file of each table,
loads it whatever its format into the same shape -- :class:`TableCells`, the known
columns as stripped cell texts with the row number of every record -- and reports what
stops it from doing so as :class:`Problem` values. Judging the values is left to
:mod:`sscjak.node.data.centre_reader`.

Decisions where the contract is silent (documented for the data steward):

* CSV must be UTF-8 (a byte-order mark is fine), comma-separated, with a header row;
  CRLF line ends and quoted fields (also with embedded commas, quotes and line breaks)
  are fine. A header with ``;`` (or a tab) and no comma is reported as the wrong
  delimiter. A record with more or fewer fields than the header is an error of its row
  (its other fields are not judged). A file that is not UTF-8 is reported with the row
  of its first undecodable byte and not read further.
* Row numbers count records: the header is row 1, the first record row 2. For xlsx the
  row number is the sheet's row; for parquet, which has no header row, record *k*
  (from 0) is row *k* + 2, as it would be in the same table written as CSV.
* Whitespace around values and column names is stripped. Rows with no value in any of
  the table's columns (blank lines, rows filled only in unknown columns) are skipped;
  their row numbers still count.
* xlsx, parquet and CSV are judged alike: each cell becomes a text (a native number is
  written the shortest way that reads back to the same float, a native date as
  ``YYYY-MM-DD``) and the text is parsed strictly.
* Column names are matched exactly (lower-case). A known column spelled in another
  case, or with other separators (``FVC_PCT``, ``Visit Date``), is an error naming the
  right spelling. Every other column is ignored: it is dropped as soon as the file is
  read and never goes further, and ``validate`` lists it as a warning -- with the close
  match among the table's columns ("did you mean 'fvc_pct'?"), or, for a column that
  looks like it identifies a patient (:data:`IDENTIFYING_COLUMN_PATTERNS`), asking the
  steward to remove it from the export. A close match to a *measure* missing from the
  file (``fvc`` in a visits file without ``fvc_pct``, ``mRSS_total`` without ``mrss``) is
  an error: the measure would otherwise be lost without a word.
* xlsx: the sheet named like the table, in any case (``patients`` or ``Patients`` in
  ``patients.xlsx``). A table without a file of its own may be a sheet of one workbook
  of the folder holding the tables (``export.xlsx`` with sheets patients, visits and
  events); a table found in two places is an error naming both. Native Excel dates and
  numbers are accepted, a date with a time of day only at midnight, nor a TRUE/FALSE
  cell. A formula cell counts with the value Excel saved for it (openpyxl
  reads cached values; a formula never calculated reads as empty). openpyxl yields
  Python objects cell by cell, so xlsx suits the small tables it is used for.
* parquet: native dates, timestamps at midnight (a time-zone-aware one at its local
  wall-clock time), integers and floats are accepted; a float NaN is a missing value,
  a boolean is not a number. Only the table's columns are read from the file.
"""


from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sscjak.node.data.csv_reader import read_csv
from sscjak.node.data.loaded_file import LoadedFile
from sscjak.node.data.parquet_reader import read_parquet
from sscjak.node.data.problems import ProblemList
from sscjak.node.data.spreadsheet_reader import read_xlsx, sheet_names
from sscjak.shared.data_contract import (
    FILE_SUFFIXES,
    IDENTIFYING_COLUMN_PATTERNS,
    MEASURES,
    TABLES,
    Table,
)


@dataclass(frozen=True)
class TableCells:
    """One table as loaded: its known columns as stripped cell texts.

    ``cells`` holds, for each column of the table present in the file, a pandas string
    column (``""`` = empty cell), on a 0..n-1 index; ``row_numbers[i]`` is the row
    number of record ``i`` in the file. Completely empty rows are already dropped.
    ``sheet_columns`` maps a column to its spreadsheet column letter (xlsx only), so
    that a message can name the cell (``C3``).
    """

    table: Table
    file: str
    cells: pd.DataFrame
    row_numbers: np.ndarray
    sheet_columns: dict[str, str] = field(default_factory=dict)

def find_table_files(folder: Path, problems: ProblemList) -> dict[str, Path]:
    """The file of each table present in ``folder``; problems for missing or doubled files.

    A table's own file (``visits.csv``) comes first; a table without one may be a sheet
    of one workbook of the folder (``export.xlsx``), see :func:`table_file_label`.
    """
    label = str(folder)
    try:
        if not folder.exists():
            problems.add(label, None, None, "no such folder")
            return {}
        if not folder.is_dir():
            problems.add(label, None, None, "not a folder: expected the centre's data folder")
            return {}
        entries = {path.name: path for path in folder.iterdir()}
    except OSError as error:
        problems.add(label, None, None, f"the folder cannot be read ({error.strerror})")
        return {}
    holders = _sheet_holders(entries, problems)
    found: dict[str, Path] = {}
    for table in TABLES:
        path = _table_file(folder, entries, table, holders.get(table.name, []), problems)
        if path is not None:
            found[table.name] = path
    return found

def _table_file(
    folder: Path,
    entries: dict[str, Path],
    table: Table,
    holders: list[str],
    problems: ProblemList,
) -> Path | None:
    """The one file holding ``table`` (its own file or a workbook's sheet), else a problem."""
    label = str(folder)
    candidates = [table.name + suffix for suffix in FILE_SUFFIXES]
    present = [name for name in candidates if name in entries]
    places = present + [f"sheet {table.name!r} of {name}" for name in holders]
    if len(places) > 1:
        problems.add(
            label,
            None,
            None,
            f"table {table.name} is given twice ({' and '.join(places)}): keep one",
        )
        return None
    if present:
        return entries[present[0]]
    if holders:
        return entries[holders[0]]
    lower_names = {name.lower(): name for name in entries}
    miscased = [lower_names[c] for c in candidates if c in lower_names]
    other_formats = sorted(
        name
        for name in entries
        if Path(name).stem.lower() == table.name and name.lower() not in candidates
    )
    if other_formats:
        problems.add(
            label,
            None,
            None,
            f"found {other_formats[0]!r}, a format sscjak does not read: save the "
            f"{table.name} table as {table.name}.csv (or .xlsx or .parquet)",
        )
    elif miscased:
        problems.add(
            label,
            None,
            None,
            f"found {miscased[0]!r}: name it {miscased[0].lower()!r} (file names are lower-case)",
        )
    elif table.required:
        problems.add(
            f"{table.name}.csv",
            None,
            None,
            f"required file missing: expected {table.name}.csv (or .xlsx or .parquet, or a "
            f"sheet {table.name!r} in one workbook) in {folder}",
        )
    return None

def _sheet_holders(entries: dict[str, Path], problems: ProblemList) -> dict[str, list[str]]:
    """For each table, the folder's workbooks (other than its own file) with its sheet.

    Excel's lock files (``~$export.xlsx``) are skipped; a workbook that cannot be opened
    is a warning (it may hold no table at all).
    """
    holders: dict[str, list[str]] = {}
    for name in sorted(entries):
        if not name.lower().endswith(".xlsx") or name.startswith("~$"):
            continue
        try:
            sheets = sheet_names(entries[name])
        except Exception as error:  # openpyxl raises many types on damaged files
            if Path(name).stem not in {table.name for table in TABLES}:
                problems.warn(
                    name,
                    None,
                    None,
                    f"this workbook cannot be opened ({type(error).__name__}); it is not read",
                )
            continue
        lowered = {sheet.strip().lower() for sheet in sheets}
        for table in TABLES:
            if table.name in lowered and name != f"{table.name}.xlsx":
                holders.setdefault(table.name, []).append(name)
    return holders

def table_file_label(path: Path, table: Table) -> str:
    """How problems name a table's file: ``visits.csv``, or ``export.xlsx, sheet visits``
    for a table that is a sheet of a workbook named otherwise."""
    if path.stem == table.name:
        return path.name
    return f"{path.name}, sheet {table.name}"

def read_table_cells(path: Path, table: Table, problems: ProblemList) -> TableCells | None:
    """Load one table file as :class:`TableCells`; ``None`` (with problems) if it can't be.

    Any failure of the underlying parsers on a damaged file is reported as a problem of
    the file, never raised.
    """
    file = table_file_label(path, table)
    try:
        if path.suffix == ".csv":
            loaded = read_csv(path, file, problems)
        elif path.suffix == ".xlsx":
            loaded = read_xlsx(path, table, file, problems)
        else:
            loaded = read_parquet(path, table, file, problems)
    except (OSError, MemoryError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        problems.add(file, None, None, f"the file cannot be read ({reason})")
        return None
    except Exception as error:  # third-party parsers raise many types on damaged files
        # The parser's own words, cut short; for CSV only the error's kind, since a CSV
        # parser's message may quote a record, and with it a patient_id.
        detail = type(error).__name__ if path.suffix == ".csv" else str(error).split("\n")[0]
        problems.add(
            file, None, None, f"the file cannot be read as {path.suffix[1:]}: {detail[:200]}"
        )
        return None
    if loaded is None:
        return None
    return _known_columns(table, file, loaded, problems)

def _known_columns(
    table: Table, file: str, loaded: LoadedFile, problems: ProblemList
) -> TableCells | None:
    """Match the header to the table's columns; keep only known ones, strip, drop empty rows."""
    before = problems.count
    position_of = _known_positions(table, file, loaded.header, problems)
    renamed = _check_other_columns(table, file, loaded.header, position_of, problems)
    for column in table.columns:
        if column.required and column.name not in position_of and column.name not in renamed:
            problems.add(file, 1, column.name, f"required column {column.name!r} is missing")
    if problems.count > before:
        return None
    rows = loaded.rows
    cells = pd.DataFrame(
        {
            name: _column_of(loaded, position).astype("str").fillna("").str.strip()
            for name, position in position_of.items()
        },
        index=pd.RangeIndex(len(rows)),
    )
    if len(cells.columns) and len(cells):
        empty_row = (cells == "").all(axis=1).to_numpy()
        if empty_row.any():
            cells = cells.loc[~empty_row].reset_index(drop=True)
            rows = rows[~empty_row]
    letters = (
        {name: loaded.letters[position] for name, position in position_of.items()}
        if loaded.letters
        else {}
    )
    return TableCells(
        table=table,
        file=file,
        cells=cells,
        row_numbers=rows,
        sheet_columns=letters,
    )

def _column_of(loaded: LoadedFile, position: int) -> pd.Series:
    """The loaded column at ``position`` (the readers load every known column)."""
    column = loaded.columns[position]
    if column is None:
        raise ValueError(f"column {position + 1} was not loaded")
    return column

def _known_positions(
    table: Table, file: str, header: list[str], problems: ProblemList
) -> dict[str, int]:
    """The position of each of the table's columns in the header; doubled columns reported."""
    position_of: dict[str, int] = {}
    for position, name in enumerate(header):
        if name not in table.column_names:
            continue
        if name in position_of:
            problems.add(
                file,
                1,
                name,
                f"column {name!r} appears more than once (columns "
                f"{position_of[name] + 1} and {position + 1})",
            )
        else:
            position_of[name] = position
    return position_of


# --- columns the contract does not know ---------------------------------------------------

def column_words(name: str) -> str:
    """A column name as lower-case words joined by ``_`` (``DateOfBirth`` -> ``date_of_birth``)."""
    split = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", split.lower()).strip("_")

def _compact(name: str) -> str:
    """A column name with case and every separator ignored (``Visit Date`` -> ``visitdate``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())

def identifying_kind(name: str) -> str | None:
    """What a column name looks like if it may identify a patient ("a name"), else None."""
    words = column_words(name)
    for kind, pattern in IDENTIFYING_COLUMN_PATTERNS:
        if re.fullmatch(pattern, words):
            return kind
    return None

def same_column(name: str, known: tuple[str, ...]) -> str | None:
    """The known column ``name`` spells in another case or with other separators, if any."""
    compact = _compact(name)
    for candidate in known:
        if compact and _compact(candidate) == compact:
            return candidate
    return None

def close_columns(name: str, known: tuple[str, ...]) -> list[str]:
    """Known columns ``name`` may have been meant as, the likeliest first (at most three).

    Close spellings (:func:`difflib.get_close_matches` on the lower-case name and on its
    words), a known column that is one of the name's words (``mrss`` in ``mRSS_total``),
    and known columns whose first word is the whole name (``fvc`` -> ``fvc_pct``).
    """
    words = column_words(name)
    tokens = words.split("_")
    found = difflib.get_close_matches(name.strip().lower(), known, n=3, cutoff=0.55)
    found += difflib.get_close_matches(words, known, n=3, cutoff=0.55)
    found += [k for k in known if k in tokens or _compact(k) in tokens]
    if len(tokens) == 1:
        found += [k for k in known if k.split("_")[0] == words]
    return list(dict.fromkeys(found))[:3]

def _check_other_columns(
    table: Table,
    file: str,
    header: list[str],
    position_of: dict[str, int],
    problems: ProblemList,
) -> set[str]:
    """Report every header column that is not one of the table's (errors or warnings).

    Returns the table's columns that an error already names as misspelled, so that
    they are not reported missing as well.
    """
    renamed: set[str] = set()
    ignored: list[str] = []
    for name in header:
        if not name or name in table.column_names:
            continue
        meant = _misnamed_column(table, file, name, position_of, problems)
        if meant is None:
            ignored.append(name)
        elif meant:
            renamed.add(meant)
    if ignored:
        names = ", ".join(repr(name) for name in ignored)
        noun = "column is" if len(ignored) == 1 else f"{len(ignored)} columns are"
        problems.warn(
            file,
            1,
            None,
            f"{noun} not in the data contract, ignored and never sent: {names}",
        )
    return renamed

def _misnamed_column(
    table: Table, file: str, name: str, position_of: dict[str, int], problems: ProblemList
) -> str | None:
    """Report one unknown column that is identifying or close to a known one.

    Returns the known column an error says it should be named, ``""`` when a warning
    was given, ``None`` when the column is simply not in the contract.
    """
    kind = identifying_kind(name)
    if kind is not None:
        problems.warn(
            file,
            1,
            name,
            f"this column looks like {kind}, which identifies a patient: it is ignored and "
            "never sent, but remove it from the export",
        )
        return ""
    spelled = same_column(name, table.column_names)
    if spelled is not None and spelled not in position_of:
        how = "lower-case" if name.lower() == spelled else "lower-case, words joined by '_'"
        problems.add(
            file, 1, name, f"column {name!r} must be named {spelled!r} (column names are {how})"
        )
        return spelled
    if spelled is not None:
        problems.warn(
            file,
            1,
            name,
            f"ignored and never sent: it looks like {spelled!r}, which is also in the file",
        )
        return ""
    return _close_column(table, file, name, position_of, problems)

def _close_column(
    table: Table, file: str, name: str, position_of: dict[str, int], problems: ProblemList
) -> str | None:
    """Report an unknown column close to a known one: an error when it is a measure the
    file lacks (the measure would be lost), else a warning; ``None`` if close to none."""
    close = close_columns(name, table.column_names)
    if not close:
        return None
    absent = [c for c in close if c not in position_of]
    if absent and absent[0] in MEASURES:
        measure = MEASURES[absent[0]]
        problems.add(
            file,
            1,
            name,
            f"column {name!r} is not in the data contract and would be ignored: did you "
            f"mean {absent[0]!r}? Rename it to {absent[0]!r} if it holds "
            f"{measure.label} ({measure.unit}), else remove it from the export",
        )
        return absent[0]
    meant = " or ".join(repr(c) for c in (absent or close))
    also = "" if absent else " (already in the file)"
    problems.warn(
        file,
        1,
        name,
        f"ignored and never sent: did you mean {meant}{also}? Rename the column if so",
    )
    return ""


# --- CSV ----------------------------------------------------------------------------------

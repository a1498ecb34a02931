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

import contextlib
import datetime as dt
import difflib
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sscjak.node.data.value_parsing import true_where
from sscjak.shared.data_contract import (
    FILE_SUFFIXES,
    IDENTIFYING_COLUMN_PATTERNS,
    MEASURES,
    TABLES,
    Table,
)

#: At most this many problems are listed for one (file, column, rule); the rest are
#: summarised in one line, so that a 1,000,000-row bad file gives a readable report.
PROBLEMS_LISTED_PER_RULE = 20
#: CSV files bigger than this are refused before reading (a centre's tables are far smaller).
MAX_CSV_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Problem:
    """One located problem in a centre's folder.

    ``row`` is 1-based with the header as row 1 (first record = row 2), ``None`` for a
    problem of the whole file or column. Messages say what was expected and what was
    found; they may quote cell values but never a patient_id (row numbers locate the
    record for the data steward, who alone sees these messages).
    """

    file: str
    row: int | None
    column: str | None
    message: str
    #: "error" (the folder is not valid) or "warning" (valid, but worth a look).
    severity: str = "error"

    def __str__(self) -> str:
        location = [self.file]
        if self.row is not None:
            location.append(f"row {self.row}")
        if self.column is not None:
            location.append(f"column {self.column}")
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{', '.join(location)}: {self.message}"


@dataclass
class ProblemList:
    """Problems collected while reading a folder, at most a few listed per rule.

    ``count`` is the number of problems (errors) found, including those not listed.
    ``warnings`` are listed in full and do not make the folder invalid.
    """

    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    warnings: list[Problem] = field(default_factory=list)

    def add(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(file, row, column, message))
        self.count += 1

    def warn(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one warning: worth the steward's look, but the folder stays valid."""
        self.warnings.append(Problem(file, row, column, message, severity="warning"))

    def add_rows(
        self,
        file: str,
        column: str | None,
        mask: np.ndarray,
        row_numbers: np.ndarray,
        message: str | Callable[[int], str],
    ) -> None:
        """Record the problem of every row where ``mask`` is true, listing at most a few.

        ``message`` is one text for all flagged rows, or a function of a flagged row's
        position (0-based, as in ``mask``) giving its text; it is called only for the
        first :data:`PROBLEMS_LISTED_PER_RULE` rows, the rest are counted in one line.
        """
        flagged = np.flatnonzero(mask)
        if flagged.size == 0:
            return
        listed = flagged[:PROBLEMS_LISTED_PER_RULE]
        for position in listed:
            text = message if isinstance(message, str) else message(int(position))
            self.problems.append(Problem(file, int(row_numbers[position]), column, text))
        more = flagged.size - listed.size
        if more:
            self.problems.append(
                Problem(file, None, column, f"… and {more:,} more rows with the same problem")
            )
        self.count += flagged.size

    def extend(self, other: ProblemList) -> None:
        self.problems.extend(other.problems)
        self.count += other.count
        self.warnings.extend(other.warnings)

    def __bool__(self) -> bool:
        return self.count > 0


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


@dataclass(frozen=True)
class _Loaded:
    """A file as its reader found it: header names, columns of texts, record row numbers.

    ``columns[i]`` is ``None`` for a column the reader did not load (parquet reads only
    the table's own columns); ``letters`` are the spreadsheet column letters (xlsx).
    """

    header: list[str]
    columns: list[pd.Series | None]
    rows: np.ndarray
    letters: list[str] = field(default_factory=list)


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
            sheets = _sheet_names(entries[name])
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


def _sheet_names(path: Path) -> list[str]:
    """The sheet names of a workbook, without reading its cells."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            return list(workbook.sheetnames)
        finally:
            with contextlib.suppress(Exception):
                workbook.close()


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
            loaded = _read_csv(path, file, problems)
        elif path.suffix == ".xlsx":
            loaded = _read_xlsx(path, table, file, problems)
        else:
            loaded = _read_parquet(path, table, file, problems)
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
    table: Table, file: str, loaded: _Loaded, problems: ProblemList
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


def _column_of(loaded: _Loaded, position: int) -> pd.Series:
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

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def _read_csv(path: Path, file: str, problems: ProblemList) -> _Loaded | None:
    """Read a CSV file with pyarrow, every field as text; check encoding and delimiter."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.stat().st_size > MAX_CSV_BYTES:
        problems.add(file, None, None, f"the file is larger than {MAX_CSV_BYTES:,} bytes")
        return None
    data = path.read_bytes()
    if not data.removeprefix(_UTF8_BOM).strip():
        problems.add(file, None, None, "the file is empty: expected a header row")
        return None
    if data.startswith(_UTF16_BOMS):
        problems.add(file, None, None, "the file is UTF-16 text: save it as CSV in UTF-8")
        return None
    if b"\x00" in data:
        problems.add(
            file,
            _line_of(data, data.index(b"\x00")),
            None,
            "the file contains NUL bytes: it is not a CSV text file (a binary or UTF-16 file?)",
        )
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_byte = data[error.start]
        problems.add(
            file,
            _line_of(data, error.start),
            None,
            f"the file is not UTF-8 text (byte 0x{bad_byte:02x} here is not UTF-8, perhaps "
            "Latin-1 or Windows-1252): save it as 'CSV UTF-8'",
        )
        return None
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    if not body.endswith((b"\n", b"\r")):
        body += b"\n"  # pyarrow cannot read a lone header line without its line end
    first_line = body.split(b"\n", 1)[0]
    if not first_line.strip():
        problems.add(file, 1, None, "the header row (row 1) is empty: it must name the columns")
        return None
    if b"," not in first_line:
        for delimiter, name in ((b";", "semicolons"), (b"\t", "tabs")):
            if delimiter in first_line:
                problems.add(
                    file,
                    1,
                    None,
                    f"the header is separated by {name}, not commas: save the file as "
                    "comma-separated CSV",
                )
                return None
    # Per malformed record: its number, fields expected and found, whether it is a blank
    # line (skipped silently) and whether it holds an odd number of quotes.
    invalid_rows: list[tuple[int, int, int, bool, bool]] = []

    def remember_invalid(row: pacsv.InvalidRow) -> str:
        text = row.text
        invalid_rows.append(
            (
                row.number or 0,
                row.expected_columns,
                row.actual_columns,
                text.strip() == "",
                text.count('"') % 2 == 1,
            )
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=remember_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(4096)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        if first_line.count(b'"') % 2 == 0:
            raise
        # pyarrow finds no complete header record: the header's quotes do not pair up
        # (the file's other records are handled one by one by remember_invalid).
        problems.add(
            file,
            1,
            None,
            "the header row cannot be read: a quoted column name is not closed",
        )
        return None
    del data, body
    if invalid_rows:
        number, expected, actual, blank, open_quote = (
            np.array(v) for v in zip(*invalid_rows, strict=True)
        )
        problems.add_rows(
            file,
            None,
            ~blank,
            np.where(number > 0, number, 0),
            lambda i: (
                f"expected {expected[i]} fields, found {actual[i]}"
                + (" (a quoted field is not closed)" if open_quote[i] else "")
            ),
        )
    frame = table.to_pandas()
    del table
    if len(frame) == 0:
        problems.add(file, None, None, "the file has no header row")
        return None
    header = [str(name).strip() for name in frame.iloc[0].fillna("").tolist()]
    columns = [frame[name].iloc[1:].reset_index(drop=True) for name in frame.columns]
    skipped = np.array(sorted(n for n, *_ in invalid_rows if n), dtype=np.int64)
    all_rows = np.arange(2, len(frame) + 1 + len(skipped) + 1, dtype=np.int64)
    rows = np.setdiff1d(all_rows, skipped, assume_unique=True)[: len(frame) - 1]
    return _Loaded(header, list(columns), rows)


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


# --- xlsx ---------------------------------------------------------------------------------


def _cell_text(value: object) -> str:
    """The text of one Excel cell as the reader judges it (native dates and numbers kept)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path, table: Table, file: str, problems: ProblemList) -> _Loaded | None:
    """Read the sheet named like the table with openpyxl (read-only, cached values)."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = _table_sheet(workbook.sheetnames, table, file, problems)
            if sheet is None:
                return None
            records = list(workbook[sheet].iter_rows(min_row=1, values_only=True))
        finally:
            with contextlib.suppress(Exception):
                workbook.close()
    if not records or all(v is None for v in records[0]):
        problems.add(file, 1, None, "the header row (row 1) is empty")
        return None
    width = max(len(r) for r in records)
    texts = [[_cell_text(v) for v in record] + [""] * (width - len(record)) for record in records]
    header = [t.strip() for t in texts[0]]
    body = texts[1:]
    columns: list[pd.Series | None] = [
        pd.Series([r[i] for r in body], dtype="str") for i in range(width)
    ]
    rows = np.arange(2, len(body) + 2, dtype=np.int64)
    letters = [get_column_letter(i + 1) for i in range(width)]
    return _Loaded(header, columns, rows, letters)


def _table_sheet(sheets: list[str], table: Table, file: str, problems: ProblemList) -> str | None:
    """The workbook's sheet holding ``table``, its name matched in any case; else a problem."""
    matching = [sheet for sheet in sheets if sheet.strip().lower() == table.name]
    if len(matching) == 1:
        return matching[0]
    if matching:
        named = " and ".join(repr(sheet) for sheet in matching)
        problems.add(file, None, None, f"sheets {named} both name table {table.name}: keep one")
        return None
    listed = ", ".join(repr(sheet) for sheet in sheets)
    problems.add(file, None, None, f"no sheet named {table.name!r} (the workbook has {listed})")
    return None


# --- parquet ------------------------------------------------------------------------------


def _arrow_column_text(column: object) -> pd.Series:
    """A pyarrow column as cell texts: native dates and numbers written the CSV way."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_date(kind):
        return pd.Series(pc.cast(array, pa.string()).to_pandas(), dtype="str").fillna("")
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            array = pc.local_timestamp(array)  # the wall-clock time where it was recorded
        day = pc.floor_temporal(array, unit="day")
        text = pd.Series(pc.cast(pc.cast(day, pa.date32()), pa.string()).to_pandas(), dtype="str")
        with_time = np.flatnonzero(true_where(pc.not_equal(day, array)))
        if with_time.size:  # shown in full, so that the date check rejects them
            full = pc.strftime(array.take(pa.array(with_time)), format="%Y-%m-%d %H:%M:%S")
            text.iloc[with_time] = full.to_pylist()
        return text.fillna("")
    if pa.types.is_floating(kind):
        # Arrow writes the shortest text that reads back to the same float ("80.3").
        text = pd.Series(pc.cast(array, pa.string()).to_pandas(), dtype="str").fillna("")
        return text.mask(text.isin(["nan", "-nan"]), "")  # a float NaN is a missing value
    if pa.types.is_boolean(kind):
        return pd.Series(array.to_pandas(), dtype="object").map(_cell_text).astype("str")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.Series(array.to_pandas(), dtype="str").fillna("")
    return pd.Series(pc.cast(array, pa.string()).to_pandas(), dtype="str").fillna("")


def _read_parquet(path: Path, table: Table, file: str, problems: ProblemList) -> _Loaded:
    """Read only the table's own columns with pyarrow; the header names every column."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    header = [str(name).strip() for name in schema.names]
    wanted = [
        raw for raw, name in zip(schema.names, header, strict=True) if name in table.column_names
    ]
    parquet_table = pq.read_table(path, columns=wanted) if wanted else None
    count = parquet_table.num_rows if parquet_table is not None else pq.read_metadata(path).num_rows
    loaded: dict[str, pd.Series] = {}
    if parquet_table is not None:
        for index, raw in enumerate(parquet_table.column_names):
            loaded.setdefault(str(raw).strip(), _arrow_column_text(parquet_table.column(index)))
    columns: list[pd.Series | None] = [loaded.get(name) for name in header]
    return _Loaded(header, columns, np.arange(2, count + 2, dtype=np.int64))

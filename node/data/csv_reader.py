"""Reading a CSV table file: UTF-8, comma-separated, with a header row (docs/input-files.md).

The rules a CSV file is held to are listed in :mod:`sscjak.node.data.table_files`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscjak.node.data.loaded_file import LoadedFile
from sscjak.node.data.problems import ProblemList

#: CSV files bigger than this are refused before reading (a centre's tables are far smaller).
MAX_CSV_BYTES = 2 * 1024**3

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

_UTF8_BOM = b"\xef\xbb\xbf"

def read_csv(path: Path, file: str, problems: ProblemList) -> LoadedFile | None:
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
    return LoadedFile(header, list(columns), rows)

def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


# --- xlsx ---------------------------------------------------------------------------------

"""Writing a synthetic centre's tables as files in the formats docs/input-files.md accepts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv

from sscjak.coordinator.synthetic.cohort_model import CohortTables
from sscjak.shared.data_contract import EVENTS, PATIENTS, VISITS

#: Formats ``write_centre`` can write (docs/input-files.md accepts all three).
WRITE_FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet")

_NEEDS_QUOTES = r'[,"\r\n]'


def write_centre(tables: CohortTables, folder: Path, *, fmt: str = "csv") -> None:
    """Write one centre's folder: ``patients``, ``visits`` and ``events`` as docs/input-files.md.

    ``fmt`` is ``"csv"`` (UTF-8, comma, header row, empty cell = missing), ``"xlsx"``
    (one workbook per table, its only sheet named like the file) or ``"parquet"``.
    Dates are written as ISO text in every format. The folder is created if needed; a
    table file of another format already there (``patients.xlsx`` beside a new
    ``patients.csv``) is removed, so that the folder names each table once.
    """
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for table in (PATIENTS, VISITS, EVENTS):
        for other in WRITE_FORMATS:
            stale = folder / f"{table.name}.{other}"
            if other != fmt and stale.is_file():
                stale.unlink()
    for table, frame in (
        (PATIENTS, tables.patients),
        (VISITS, tables.visits),
        (EVENTS, tables.events),
    ):
        path = folder / f"{table.name}.{fmt}"
        if fmt == "csv":
            _write_csv(frame, path)
        elif fmt == "xlsx":
            with pd.ExcelWriter(path, engine="openpyxl") as writer:
                frame.to_excel(writer, sheet_name=table.name, index=False)
        else:
            frame.to_parquet(path, index=False)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV through Arrow's writer (several times faster than ``DataFrame.to_csv``).

    No field is quoted: ids, dates and choices never contain a comma, quote or line
    break (``generate_cohort`` checks the id prefix), so none needs quoting. Missing
    values are empty cells; numbers are written in their shortest exact form (80.3, 10).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name, column in zip(table.column_names, table.columns, strict=True):
        is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if is_text and pa_compute.any(pa_compute.match_substring_regex(column, _NEEDS_QUOTES)):
            raise ValueError(f"{name} holds a comma, quote or line break: not plain CSV")
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as out:
        out.write((",".join(frame.columns) + "\n").encode("utf-8"))
        pa_csv.write_csv(table, out, write_options=options)


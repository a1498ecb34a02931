"""Reading an Excel workbook (xlsx): the sheet named like the table, native dates and
numbers as their texts (docs/input-files.md).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sscjak.node.data.loaded_file import LoadedFile, cell_text
from sscjak.node.data.problems import ProblemList
from sscjak.shared.data_contract import (
    Table,
)


def sheet_names(path: Path) -> list[str]:
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

def read_xlsx(path: Path, table: Table, file: str, problems: ProblemList) -> LoadedFile | None:
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
    texts = [[cell_text(v) for v in record] + [""] * (width - len(record)) for record in records]
    header = [t.strip() for t in texts[0]]
    body = texts[1:]
    columns: list[pd.Series | None] = [
        pd.Series([r[i] for r in body], dtype="str") for i in range(width)
    ]
    rows = np.arange(2, len(body) + 2, dtype=np.int64)
    letters = [get_column_letter(i + 1) for i in range(width)]
    return LoadedFile(header, columns, rows, letters)

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

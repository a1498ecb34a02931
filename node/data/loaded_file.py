"""A table file as a reader loaded it, before its columns are matched to the table's:
the same shape whatever the format (CSV, xlsx, parquet).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LoadedFile:
    """A file as its reader found it: header names, columns of texts, record row numbers.

    ``columns[i]`` is ``None`` for a column the reader did not load (parquet reads only
    the table's own columns); ``letters`` are the spreadsheet column letters (xlsx).
    """

    header: list[str]
    columns: list[pd.Series | None]
    rows: np.ndarray
    letters: list[str] = field(default_factory=list)

def cell_text(value: object) -> str:
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

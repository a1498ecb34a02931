"""Reading a parquet table file: only the table's columns, native types as their texts
(docs/input-files.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sscjak.node.data.loaded_file import LoadedFile, cell_text
from sscjak.node.data.problems import ProblemList
from sscjak.node.data.value_parsing import true_where
from sscjak.shared.data_contract import (
    Table,
)


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
        return pd.Series(array.to_pandas(), dtype="object").map(cell_text).astype("str")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.Series(array.to_pandas(), dtype="str").fillna("")
    return pd.Series(pc.cast(array, pa.string()).to_pandas(), dtype="str").fillna("")

def read_parquet(path: Path, table: Table, file: str, problems: ProblemList) -> LoadedFile:
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
    return LoadedFile(header, columns, np.arange(2, count + 2, dtype=np.int64))

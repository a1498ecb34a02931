"""Strict, vectorised parsing of a centre's cell texts into numbers and dates (docs/input-files.md).

The reader turns every input file -- CSV, xlsx or parquet -- into columns of *cell
texts* (whitespace stripped, ``""`` for an empty cell) and parses them here. Parsing
never coerces: a text either is exactly a number or a date in the accepted notation, or
it is reported as unparsable. Every function works on whole columns (pandas string
operations and numpy masks), never row by row.

Accepted notations
------------------
number
    Decimal with an optional sign, decimal point and exponent: ``80.3``, ``80``,
    ``8.03e1``, ``-.5``, ``+2``. Rejected: ``NaN``, ``inf``, ``1,5`` (decimal comma,
    flagged as such so that the message can say "write 1.5"), ``1 000``, ``1_000``,
    ``0x10``. A number too large for a float (``1e400``) parses to ``inf`` and is then
    rejected by the range check of its column.
date
    ISO 8601 calendar date ``YYYY-MM-DD`` (docs/input-files.md), a real calendar day, from
    :data:`EARLIEST_DATE` to :data:`LATEST_DATE`. The bounds keep every date
    representable as ``datetime64[ns]`` and catch typing slips such as ``0202-03-01``.
    A date written with a time of day (``2020-01-05 00:00:00``) is flagged as such, with
    the fix: write the date alone. (A spreadsheet's native date cell at midnight, or a
    parquet timestamp at midnight, is read as its date before it gets here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: A decimal number: optional sign, digits with an optional point, optional exponent.
NUMBER_PATTERN = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
#: A number written with a decimal comma (``67,4``).
DECIMAL_COMMA_PATTERN = r"[+-]?\d+,\d+"
#: An ISO calendar date, strictly ``YYYY-MM-DD``.
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
#: A date with a time of day: ``2020-01-05 14:30`` or ``2020-01-05T14:30:00``.
DATE_TIME_PATTERN = DATE_PATTERN + r"[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
#: Dates outside these bounds are rejected as implausible for a clinical record.
EARLIEST_DATE = pd.Timestamp("1900-01-01")
LATEST_DATE = pd.Timestamp("2100-12-31")


@dataclass(frozen=True)
class ParsedNumbers:
    """One column of cell texts parsed as numbers.

    ``values`` is float64 with NaN where the cell is empty or unparsable; ``missing``
    marks empty cells; ``unparsable`` marks non-empty cells that are not a number;
    ``decimal_comma`` marks the unparsable cells written with a decimal comma (``67,4``).
    """

    values: np.ndarray
    missing: np.ndarray
    unparsable: np.ndarray
    decimal_comma: np.ndarray


@dataclass(frozen=True)
class ParsedDates:
    """One column of cell texts parsed as ISO dates.

    ``values`` is ``datetime64[ns]`` with NaT where the cell is empty or not a date;
    ``missing`` marks empty cells; ``unparsable`` marks cells that are not written
    ``YYYY-MM-DD`` (nor with a time of day); ``with_time`` marks dates written with a
    time of day (``2020-01-05 14:30``, ``2020-01-05 00:00:00``); ``not_a_day`` marks well-formed
    texts that are no calendar day in the accepted span (``2021-02-30``, ``1850-01-01``).
    """

    values: np.ndarray
    missing: np.ndarray
    unparsable: np.ndarray
    not_a_day: np.ndarray
    with_time: np.ndarray


def cell_strings(cells: pd.Series) -> pa.Array:
    """The cells as one pyarrow string array, ``""`` for a missing cell (zero-copy when
    the column is already Arrow-backed, as pandas 3's default string columns are)."""
    strings = pa.array(cells, type=pa.large_string(), from_pandas=True)
    return pc.fill_null(strings, "") if strings.null_count else strings


def true_where(condition: pa.Array) -> np.ndarray:
    """A pyarrow boolean array as a numpy bool mask, null counting as False."""
    return pc.fill_null(condition, False).to_numpy(zero_copy_only=False)


def parse_numbers(cells: pd.Series) -> ParsedNumbers:
    """Parse stripped cell texts as decimal numbers (notation in the module docstring)."""
    text = cell_strings(cells)
    missing = true_where(pc.equal(text, ""))
    well_formed = true_where(pc.match_substring_regex(text, f"^(?:{NUMBER_PATTERN})$"))
    values = np.full(len(text), np.nan)
    if well_formed.any():
        # Arrow's decimal parser reads every text the pattern admits ("1.", ".5e-3");
        # too large a number becomes inf, rejected later by its column's range check.
        chosen = text.filter(pa.array(well_formed))
        values[well_formed] = pc.cast(chosen, pa.float64()).to_numpy(zero_copy_only=False)
    unparsable = ~missing & ~well_formed
    return ParsedNumbers(
        values=values,
        missing=missing,
        unparsable=unparsable,
        decimal_comma=_matching(text, unparsable, DECIMAL_COMMA_PATTERN),
    )


def _matching(text: pa.Array, among: np.ndarray, pattern: str) -> np.ndarray:
    """True where ``among`` is true and the text matches ``pattern`` in full (the regex
    runs only on those cells: usually none)."""
    found = np.zeros(len(text), dtype=bool)
    if among.any():
        positions = np.flatnonzero(among)
        chosen = text.take(pa.array(positions))
        found[positions] = true_where(pc.match_substring_regex(chosen, f"^(?:{pattern})$"))
    return found


def decimal_point(text: str) -> str:
    """A number written with a decimal comma, with a decimal point (``67,4`` -> ``67.4``)."""
    return text.replace(",", ".")


def parse_dates(cells: pd.Series) -> ParsedDates:
    """Parse stripped cell texts as ISO ``YYYY-MM-DD`` calendar dates."""
    text = cell_strings(cells)
    missing = true_where(pc.equal(text, ""))
    well_formed = true_where(pc.match_substring_regex(text, f"^(?:{DATE_PATTERN})$"))
    with_time = _matching(text, ~missing & ~well_formed, DATE_TIME_PATTERN)
    values = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    not_a_day = np.zeros(len(text), dtype=bool)
    if well_formed.any():
        chosen = text.filter(pa.array(well_formed))
        # The year is checked before conversion so that no year outside the span ever
        # reaches a datetime64[ns] conversion (which would overflow); pandas' strict
        # format parser then rejects days that do not exist (2021-02-30).
        years = pc.cast(pc.utf8_slice_codeunits(chosen, 0, 4), pa.int64()).to_numpy()
        in_span = (years >= EARLIEST_DATE.year) & (years <= LATEST_DATE.year)
        candidates = pd.Series(chosen.to_pandas(), dtype="str").where(in_span)
        parsed = pd.to_datetime(candidates, format="%Y-%m-%d", errors="coerce")
        parsed = parsed.astype("datetime64[ns]").to_numpy()
        good = ~np.isnat(parsed)
        good &= (parsed >= EARLIEST_DATE.to_datetime64()) & (parsed <= LATEST_DATE.to_datetime64())
        positions = np.flatnonzero(well_formed)
        values[positions[good]] = parsed[good]
        not_a_day[positions[~good]] = True
    return ParsedDates(
        values=values,
        missing=missing,
        unparsable=~missing & ~well_formed & ~with_time,
        not_a_day=not_a_day,
        with_time=with_time,
    )


def is_whole_number(values: np.ndarray) -> np.ndarray:
    """True where a finite float is a whole number (``3.0`` yes, ``3.5`` no); NaN gives False."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.floor(values) == values)


def shown(text: str, limit: int = 40) -> str:
    """A cell text quoted for an error message, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)
